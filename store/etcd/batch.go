package etcd

import (
	"errors"
	"slices"

	"github.com/authgate/authgate/store"
)

// Lists and batches: the two things etcd's transactions make this
// backend do differently from bbolt.

// idList is the value of a listing key (keys_by_owner, sessions_by_user,
// refresh_by_session): ids, sorted except for refresh digests, which
// stay in the order they were issued (the live one last).
type idList struct {
	V   int      `json:"v"`
	IDs []string `json:"ids"`
}

// list reads a listing key; an absent one is an empty list.
func (tx *txn) list(key string, cmp bool) (*idList, error) {
	l := &idList{}
	if _, err := tx.getJSON(key, cmp, l); err != nil {
		return nil, err
	}
	return l, nil
}

// putList writes a listing key, or deletes it when the list is empty.
func (tx *txn) putList(key string, l *idList) error {
	if len(l.IDs) == 0 {
		tx.del(key)
		return nil
	}
	l.V = store.RecordVersion
	return tx.putJSON(key, l)
}

// add inserts id in sorted order (once).
func (l *idList) add(id string) {
	if i, found := slices.BinarySearch(l.IDs, id); !found {
		l.IDs = slices.Insert(l.IDs, i, id)
	}
}

// remove drops ids, wherever they are.
func (l *idList) remove(ids ...string) {
	if len(ids) == 0 {
		return
	}
	l.IDs = slices.DeleteFunc(l.IDs, func(id string) bool { return slices.Contains(ids, id) })
}

// batchItem is one record of a batch creation: what it costs a
// transaction (writes and compared reads, with its share of the lists it
// adds to), how to write it in one, and how to take it back.
type batchItem struct {
	ops, cmps int
	write     func(tx *txn) error
	undo      func() error
}

// inBatches stores items in as few transactions as etcd's cap on
// operations allows: one for a small batch, which is then all or nothing
// as in bbolt. A larger batch is split; each part checks its own items,
// and when one fails the parts already committed are taken back, so the
// batch is still all or nothing unless the process dies (or etcd is lost)
// in between: then the records of the parts committed stay, each whole
// and consistent.
func (s *Store) inBatches(items []batchItem) error {
	budget := s.maxOps - 4
	var parts [][]batchItem
	ops, cmps := 0, 0
	for i, it := range items {
		if i == 0 || ops+it.ops > budget || cmps+it.cmps > budget {
			parts = append(parts, nil)
			ops, cmps = 0, 0
		}
		parts[len(parts)-1] = append(parts[len(parts)-1], it)
		ops, cmps = ops+it.ops, cmps+it.cmps
	}
	for n, part := range parts {
		ctx, cancel := s.opCtx()
		_, err := s.update(ctx, func(tx *txn) error {
			for _, it := range part {
				if err := it.write(tx); err != nil {
					return err
				}
			}
			return nil
		})
		cancel()
		if err != nil {
			for _, done := range slices.Backward(parts[:n]) {
				for _, it := range done {
					if uerr := it.undo(); uerr != nil {
						s.warn("etcd: taking back a part of a failed batch", "error", uerr)
					}
				}
			}
			return err
		}
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
