package bbolt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "authgate.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, s, "alice")
	k, key := mustKey(t, s, u.ID)
	sess, refresh := mustSession(t, s, u.ID)
	sk := store.SigningKey{KID: "k1", Alg: "EdDSA", Private: []byte("private-bytes")}
	if err := s.AddSigningKey(sk, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // twice is harmless
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.UserByID(u.ID); err != nil || got.Username != "alice" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("user after reopen: %+v, %v", got, err)
	}
	if got, err := s.APIKeyByDigest(store.DigestOf(key)); err != nil || got.ID != k.ID {
		t.Fatalf("key after reopen: %+v, %v", got, err)
	}
	if got, err := s.SessionByID(sess.ID); err != nil || got.UserID != u.ID {
		t.Fatalf("session after reopen: %+v, %v", got, err)
	}
	if _, err := s.RotateRefresh(refresh, newDigest(t), time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("refresh entry after reopen: %v", err)
	}
	keys, err := s.SigningKeys()
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Private, sk.Private) {
		t.Fatalf("signing keys after reopen: %+v, %v", keys, err)
	}
}

func TestFileAndDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "authgate.db")
	openAt(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	st, err = os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	openAt(t, path)

	start := time.Now()
	s2, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Open gave up after %v, want about the 100ms timeout", took)
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("err = %v, want ErrLocked", err)
	}
	want := "database " + path + " is locked by another process"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	s := openAt(t, path)
	s.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return bucketMeta.of(tx).Put(keySchemaVersion, []byte("99"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted schema version 99")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("err = %v, want ErrSchemaTooNew", err)
	}
	// The refusal released the file: a plain bbolt open works.
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after refusal: %v", err)
	}
	db.Close()
}

func TestSchemaVersionStamped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	// A file without a version (made by bare bbolt) gets stamped.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	openAt(t, path).Close()

	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if v, want := string(bucketMeta.of(tx).Get(keySchemaVersion)), strconv.Itoa(len(migrations)); v != want {
			t.Errorf("schema_version = %q, want %s", v, want)
		}
		for _, b := range allBuckets {
			if b.of(tx) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A backup is a database file of its own: it opens and holds the records.
func TestBackupOpens(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "bob")
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v (buffer %d)", n, err, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := openAt(t, path)
	if got, err := c.UserByID(u.ID); err != nil || got.Username != "bob" {
		t.Fatalf("user in backup: %+v, %v", got, err)
	}
	if !strings.HasSuffix(c.Path(), "copy.db") {
		t.Errorf("Path() = %q", c.Path())
	}
	if kind, location := c.Backend(); kind != "bbolt" || location != c.Path() {
		t.Errorf("Backend() = %q, %q", kind, location)
	}
}

// A write that returned has been fsynced (SECURITY.md: a 200 means it is on
// disk): the file is opened with bbolt's syncs on, and nothing turns them
// off later. kill -9 (e2e TestCrashKeepsAcknowledgedWrites) cannot tell a
// synced write from one in the page cache; this pins the options that do.
func TestWritesAreSynced(t *testing.T) {
	s := openTest(t)
	check := func(when string) {
		t.Helper()
		if s.db.NoSync || s.db.NoGrowSync {
			t.Errorf("%s: NoSync %v, NoGrowSync %v: writes would return before they are on disk", when, s.db.NoSync, s.db.NoGrowSync)
		}
		if s.db.IsReadOnly() {
			t.Errorf("%s: opened read-only", when)
		}
	}
	check("after Open")
	mustUser(t, s, "synced")
	mustSession(t, s, mustUser(t, s, "synced2").ID)
	check("after writes")
}

// A reuse revocation is committed, not rolled back with the refusal: it
// survives a reopen.
func TestRefreshReuseSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, s, "jack")
	sess, r0 := mustSession(t, s, u.ID)
	now := time.Now()
	if _, err := s.RotateRefresh(r0, newDigest(t), now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(r0, newDigest(t), now, now.Add(time.Hour)); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse: err = %v, want ErrRefreshReused", err)
	}
	s.Close()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, _ := s2.SessionByID(sess.ID); got == nil || !got.Revoked {
		t.Error("reuse revocation was not committed")
	}
}
