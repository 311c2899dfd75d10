package bbolt

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// legacyUser is a user as schema 1 stored it: the record as it is, indexed
// under strings.ToLower.
type legacyUser struct{ id, name, email string }

// writeSchema1 builds a schema-1 file the way that build wrote it.
func writeSchema1(t *testing.T, path string, users []legacyUser) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucket(b.name); err != nil {
				return err
			}
		}
		if err := bucketMeta.of(tx).Put(keySchemaVersion, []byte("1")); err != nil {
			return err
		}
		for _, l := range users {
			u := &store.User{V: 1, ID: l.id, Username: l.name, Email: l.email, CreatedAt: utcNow(), UpdatedAt: utcNow()}
			if err := putJSON(bucketUsers.of(tx), []byte(u.ID), u); err != nil {
				return err
			}
			if err := bucketUsersByName.of(tx).Put([]byte(strings.ToLower(l.name)), []byte(l.id)); err != nil {
				return err
			}
			if l.email != "" {
				if err := bucketUsersByEmail.of(tx).Put([]byte(strings.ToLower(l.email)), []byte(l.id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrationReindexesLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	writeSchema1(t, path, []legacyUser{
		{"usr_1", "Alice", "Alice@Example.com"},
		{"usr_2", "ａｌｉｃｅ", ""},         // collides with usr_1 now: unindexed
		{"usr_3", "jose\u0301", ""},    // NFD
		{"usr_4", "josé", ""},          // NFC twin of usr_3: unindexed
		{"usr_5", "аlice", ""},         // Cyrillic а: kept under its PRECIS key
		{"usr_6", "bad\u200bname", ""}, // PRECIS refuses: kept under ToLower
		{"usr_7", "mallory", "usr_1"},  // squats usr_1's id as an email
		{"usr_8", strings.Repeat("long", 30), ""},
	})
	s := openAt(t, path)
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after migration: %v", err)
	}
	for login, want := range map[string]string{
		"ALICE": "usr_1", "ａｌｉｃｅ": "usr_1", "alice@example.com": "usr_1",
		"josé": "usr_3", "jose\u0301": "usr_3", "mallory": "usr_7", strings.Repeat("LONG", 30): "usr_8",
	} {
		if got, err := s.UserByLogin(login); err != nil || got.ID != want {
			t.Errorf("UserByLogin(%q) = %+v, %v; want %s", login, got, err, want)
		}
	}
	// No one logs in with an id, not even the squatter.
	if _, err := s.UserByLogin("usr_1"); err != store.ErrNotFound {
		t.Errorf("UserByLogin(usr_1): err = %v, want ErrNotFound", err)
	}
	// Every user is kept, and can still be edited and renamed.
	for _, id := range []string{"usr_1", "usr_2", "usr_3", "usr_4", "usr_5", "usr_6", "usr_7", "usr_8"} {
		if _, err := s.UpdateUser(id, func(u *store.User) error { u.Roles = []string{"kept"}; return nil }); err != nil {
			t.Errorf("UpdateUser(%s) keeping its login: %v", id, err)
		}
	}
	for id, name := range map[string]string{"usr_4": "jorge", "usr_5": "alicia", "usr_6": "goodname"} {
		if _, err := s.UpdateUser(id, func(u *store.User) error { u.Username = name; return nil }); err != nil {
			t.Errorf("renaming %s: %v", id, err)
		}
		if got, err := s.UserByLogin(name); err != nil || got.ID != id {
			t.Errorf("UserByLogin(%q) after rename = %+v, %v", name, got, err)
		}
	}
	// Deleting the user left unindexed does not free the winner's key.
	if err := s.DeleteUser("usr_2"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserByLogin("alice"); err != nil || got.ID != "usr_1" {
		t.Errorf("alice after deleting her twin = %+v, %v", got, err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after the edits: %v", err)
	}
	s.Close()

	// The file is stamped with the new version and its indexes hold only
	// new keys.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if v, want := string(bucketMeta.of(tx).Get(keySchemaVersion)), strconv.FormatUint(schemaVersion, 10); v != want {
			t.Errorf("schema_version = %q, want %s", v, want)
		}
		if bucketUsersByName.of(tx).Get([]byte("ａｌｉｃｅ")) != nil {
			t.Error("a schema-1 key survived the migration")
		}
		return nil
	})
}

func TestCheckUsesLoginKeys(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "Ａｌｉｃｅ")
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// An entry under a schema-1 key, and a user whose entry is gone.
	for _, tc := range []struct {
		what string
		fn   func(tx *bolt.Tx) error
	}{
		{"stale key", func(tx *bolt.Tx) error {
			return bucketUsersByName.of(tx).Put([]byte("ａｌｉｃｅ"), []byte(u.ID))
		}},
		{"missing entry", func(tx *bolt.Tx) error {
			b := bucketUsersByName.of(tx)
			if err := b.Delete([]byte("ａｌｉｃｅ")); err != nil {
				return err
			}
			return b.Delete([]byte("alice"))
		}},
	} {
		if err := s.db.Update(tc.fn); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(); !errors.Is(err, store.ErrMalformed) {
			t.Errorf("%s: Check err = %v, want ErrMalformed", tc.what, err)
		}
	}
}

// Deleting a key's owner deletes its last-use time too; Check finds one
// that names no key.
func TestLastUsedGoesWithItsKey(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "dov")
	k, _ := mustKey(t, s, u.ID)
	if err := s.TouchAPIKeys(map[string]time.Time{k.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after deleting the owner: %v", err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return bucketKeysLastUsed.of(tx).Put([]byte("key_gone"), make([]byte, 8))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); !errors.Is(err, store.ErrMalformed) {
		t.Errorf("Check with a last-use time of no key: %v, want ErrMalformed", err)
	}
}

// A file of the previous build (same schema version, no
// sessions_last_seen bucket, sessions without browser or lastSeen) opens
// without a migration: the bucket is created with the others, the old
// records read as non-browser sessions never seen, and touches land and
// survive a reopen. Check then finds a last-seen time that names no
// session.
func TestSessionsLastSeenNeedsNoMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const (
		user = `{"v":1,"id":"usr_old","userName":"old","createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`
		sess = `{"v":1,"id":"ses_old","userId":"usr_old","createdAt":"2026-01-01T00:00:00Z","expiresAt":"2099-01-01T00:00:00Z","generation":0}`
	)
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if b.String() == bucketSessionsLastSeen.String() {
				continue
			}
			if _, err := tx.CreateBucket(b.name); err != nil {
				return err
			}
		}
		if err := bucketMeta.of(tx).Put(keySchemaVersion, []byte(strconv.FormatUint(schemaVersion, 10))); err != nil {
			return err
		}
		if err := bucketUsers.of(tx).Put([]byte("usr_old"), []byte(user)); err != nil {
			return err
		}
		if err := bucketUsersByName.of(tx).Put([]byte("old"), []byte("usr_old")); err != nil {
			return err
		}
		if err := bucketSessions.of(tx).Put([]byte("ses_old"), []byte(sess)); err != nil {
			return err
		}
		return bucketSessionsByUser.of(tx).Put(pairKey("usr_old", "ses_old"), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s := openAt(t, path)
	got, err := s.SessionByID("ses_old")
	if err != nil || got.Browser || !got.LastSeen.IsZero() {
		t.Fatalf("an old session: %+v, %v", got, err)
	}
	seen := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	if err := s.TouchSessions(map[string]time.Time{"ses_old": seen}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Errorf("Check of the old file after a touch: %v", err)
	}
	s.Close()

	s = openAt(t, path)
	defer s.Close()
	if got, err := s.SessionByID("ses_old"); err != nil || !got.LastSeen.Equal(seen) {
		t.Errorf("LastSeen after reopen = %v, %v; want %v", got.LastSeen, err, seen)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return bucketSessionsLastSeen.of(tx).Put([]byte("ses_gone"), make([]byte, 8))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); !errors.Is(err, store.ErrMalformed) {
		t.Errorf("Check with a last-seen time of no session: %v, want ErrMalformed", err)
	}
}
