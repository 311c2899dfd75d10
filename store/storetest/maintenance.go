package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// testCheckCounts: a consistent store passes Check, which counts each kind
// of record; deleting a user takes its keys and sessions out of the count.
func testCheckCounts(t *testing.T, s store.Store) {
	if c, err := s.Check(); err != nil || c != (store.Counts{}) {
		t.Fatalf("Check of an empty store = %+v, %v", c, err)
	}
	u, v := MustUser(t, s, "cy"), MustUser(t, s, "di")
	MustKey(t, s, u.ID)
	MustKey(t, s, v.ID)
	MustSession(t, s, u.ID)
	MustSession(t, s, v.ID)
	MustSession(t, s, v.ID)
	if err := s.AddSigningKey(store.SigningKey{KID: "k1", Alg: "EdDSA", Private: []byte{1}}, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := store.Counts{Users: 2, APIKeys: 2, Sessions: 3, SigningKeys: 1}
	if c, err := s.Check(); err != nil || c != want {
		t.Fatalf("Check = %+v, %v; want %+v", c, err, want)
	}
	if err := s.DeleteUser(v.ID); err != nil {
		t.Fatal(err)
	}
	want = store.Counts{Users: 1, APIKeys: 1, Sessions: 1, SigningKeys: 1}
	if c, err := s.Check(); err != nil || c != want {
		t.Fatalf("Check after deleting a user = %+v, %v; want %+v", c, err, want)
	}
}

// testBackup: a backup is written whole, and the store works on after it;
// the backend names itself. What a backup can be restored into is the
// backend's own test.
func testBackup(t *testing.T, s store.Store) {
	u := MustUser(t, s, "bob")
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (buffer %d)", n, err, buf.Len())
	}
	if _, err := s.UpdateUser(u.ID, func(u *store.User) error { u.FirstName = "Bob"; return nil }); err != nil {
		t.Fatalf("write after a backup: %v", err)
	}
	if kind, location := s.Backend(); kind == "" || location == "" {
		t.Errorf("Backend() = %q, %q: want both named", kind, location)
	}
}

// testCloseTwice: Close is safe to call more than once (the opener's
// cleanup closes once more).
func testCloseTwice(t *testing.T, s store.Store) {
	MustUser(t, s, "eli")
	if err := s.Health(); err != nil {
		t.Fatalf("Health of an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A health check after Close says so: a probe must not see a closed
	// store as healthy.
	if err := s.Health(); err == nil {
		t.Error("Health of a closed store is nil")
	}
}
