package bbolt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/storetest"
)

// The conformance suite, each test on a fresh file.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// openTest opens a fresh store in a temporary directory, closed at the end.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "authgate.db"))
}

// openAt opens the store at path, closed at the end of the test.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The helpers of the suite, on a *Store.
var (
	mustUser    = storetest.MustUser
	mustKey     = storetest.MustKey
	mustSession = storetest.MustSession
	newDigest   = storetest.NewDigest
)
