package bbolt

import (
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole database file to w (a read
// transaction: writers are not blocked) and returns the bytes written. The
// copy is itself a database Open accepts. It contains signing keys: create
// its file 0600.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
