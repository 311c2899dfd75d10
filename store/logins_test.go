package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

func TestConfusableUsernamesRefused(t *testing.T) {
	s := openTest(t)
	mustUser(t, s, "alice")
	for _, tc := range []struct{ what, name string }{
		{"long s", "ſam"},
		{"zero-width space", "alice\u200b"},
		{"soft hyphen", "ali\u00adce"},
		{"right-to-left override", "\u202ealice"},
		{"left-to-right mark", "alice\u200e"},
		{"word joiner", "ali\u2060ce"},
		{"variation selector", "alice\ufe0f"},
		{"hangul filler", "alice\u3164"},
		{"Cyrillic a", "аlice"},
		{"Greek with Latin", "Ωmega"},
		{"Cyrillic o between Latin", "bоb1"},
		{"one dot leader", "a\u2024b"},
		{"ligature", "ﬁle"},
		{"black-letter H", "ℌello"},
		{"space", "al ice"},
		{"no-break space", "al\u00a0ice"},
		{"ideographic space", "al\u3000ice"},
		{"control", "ali\x1bce"},
		{"invalid UTF-8", "ali\xffce"},
		{"empty", ""},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if err := s.CreateUser(&User{Username: tc.name}); !errors.Is(err, ErrInvalid) {
				t.Errorf("username %q: err = %v, want ErrInvalid", tc.name, err)
			}
		})
	}
}

func TestScriptsAllowedTogether(t *testing.T) {
	s := openTest(t)
	for _, name := range []string{
		"Ωμέγα", "иван", "José", "yamada山田", "山田たろうタロウ", "chen陳ㄅ", "kim김철수", "user_42", "o'brien.x-y",
	} {
		if err := s.CreateUser(&User{Username: name}); err != nil {
			t.Errorf("username %q: %v", name, err)
		}
	}
	for _, name := range []string{"たろう김", "ㄅたろう", "Ωиван"} {
		if err := s.CreateUser(&User{Username: name}); !errors.Is(err, ErrInvalid) {
			t.Errorf("username %q: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestEquivalentSpellingsCollide(t *testing.T) {
	s := openTest(t)
	for _, tc := range []struct{ what, first, second string }{
		{"NFD after NFC", "josé", "jose\u0301"},
		{"NFC after NFD", "rene\u0301", "rené"},
		{"fullwidth after ASCII", "alice", "ａｌｉｃｅ"},
		{"ASCII after fullwidth", "ｂｏｂ", "bob"},
		{"case", "Carol", "CAROL"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			mustUser(t, s, tc.first)
			if err := s.CreateUser(&User{Username: tc.second}); !errors.Is(err, ErrExists) {
				t.Errorf("%q beside %q: err = %v, want ErrExists", tc.second, tc.first, err)
			}
		})
	}
	// Emails and usernames share the namespace under the same keys.
	if err := s.CreateUser(&User{Username: "dave", Email: "Dave@Example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"ｄａｖｅ@example.com", "DAVE@EXAMPLE.COM"} {
		if err := s.CreateUser(&User{Username: "other", Email: email}); !errors.Is(err, ErrExists) {
			t.Errorf("email %q: err = %v, want ErrExists", email, err)
		}
	}
	if err := s.CreateUser(&User{Username: "ｄａｖｅ@example.com"}); !errors.Is(err, ErrExists) {
		t.Errorf("username equal to an email: err = %v, want ErrExists", err)
	}
}

func TestStoredFormIsCasePreservedNFC(t *testing.T) {
	s := openTest(t)
	for in, want := range map[string]string{
		"ａｌｉｃｅ":      "alice",
		"Ｂｏｂ":        "Bob",
		"Jose\u0301": "José",
		"Zoë":        "Zoë",
	} {
		u := mustUser(t, s, in)
		if u.Username != want {
			t.Errorf("CreateUser(%q) stored %q, want %q", in, u.Username, want)
		}
		if got, err := s.UserByID(u.ID); err != nil || got.Username != want {
			t.Errorf("UserByID after CreateUser(%q) = %+v, %v", in, got, err)
		}
	}
	u := &User{Username: "erin", Email: "Ｅｒｉｎ@Example.com"}
	if err := s.CreateUser(u); err != nil || u.Email != "Erin@Example.com" {
		t.Errorf("email stored as %q, %v", u.Email, err)
	}
	got, err := s.UpdateUser(u.ID, func(x *User) error { x.Username = "Ｅｒｉｎ2"; return nil })
	if err != nil || got.Username != "Erin2" {
		t.Errorf("renamed to %+v, %v", got, err)
	}
}

func TestUserByLoginEquivalentSpellings(t *testing.T) {
	s := openTest(t)
	u := &User{Username: "Alice", Email: "Alice@Example.com"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"Alice", "alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ", "alice@example.com", "ＡＬＩＣＥ@EXAMPLE.COM"} {
		if got, err := s.UserByLogin(login); err != nil || got.ID != u.ID {
			t.Errorf("UserByLogin(%q) = %+v, %v", login, got, err)
		}
	}
	// Un-normalisable input is ErrNotFound itself, as an unknown login is.
	for _, login := range []string{"nobody", "", "alice\u200b", "\u202ealice", "аlice", "ali\xffce", strings.Repeat("a", MaxEmailBytes+1), u.ID, "USR_" + u.ID[4:]} {
		if _, err := s.UserByLogin(login); err != ErrNotFound {
			t.Errorf("UserByLogin(%q): err = %v, want exactly ErrNotFound", login, err)
		}
	}
}

func TestNormalizeLogin(t *testing.T) {
	for in, want := range map[string]string{
		"ALICE": "alice", "ａｌｉｃｅ": "alice", "jose\u0301": "josé", "Bob@Example.COM": "bob@example.com",
	} {
		if got, err := NormalizeLogin(in); err != nil || got != want {
			t.Errorf("NormalizeLogin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// A password typed into the login field must not reach a log line.
	for _, in := range []string{"", "hunter2\u200b", "hunter2 secret", "usr_hunter2", strings.Repeat("hunter2", 40)} {
		_, err := NormalizeLogin(in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeLogin(%q): err = %v, want ErrInvalid", in, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NormalizeLogin(%q): error %q quotes the input", in, err)
		}
	}
}

func TestBadEmailsRefused(t *testing.T) {
	s := openTest(t)
	for _, email := range []string{
		"root",
		"a@x,b@y",
		"a@x, b@y",
		"Bob <b@x.com>",
		"<b@x.com>",
		`"a b"@x.com`,
		`"ab"@x.com`,
		"a@",
		"@x.com",
		"a@x.com (work)",
		" a@x.com",
		"a@x.com ",
		"a@x.com\n",
		"a@x，b@y",           // a fullwidth comma folds to a list
		"a@b﹫c.com",         // a small commercial at folds to a second '@'
		"alice@exаmple.com", // Cyrillic а in the domain
		"al\u200bice@x.com",
		"a@" + strings.Repeat("b", MaxEmailBytes-1), // 255 bytes
	} {
		if err := s.CreateUser(&User{Username: "u", Email: email}); !errors.Is(err, ErrInvalid) {
			t.Errorf("email %q: err = %v, want ErrInvalid", email, err)
		}
	}
	// An address has an '@', which no id has: one that starts like an id
	// is a plain address.
	for _, email := range []string{"a@b", "first.last+tag@example.co.uk", "user@例え.jp", "usr_abcdefghijklmnopqrst@x.com", "a@" + strings.Repeat("b", MaxEmailBytes-2)} {
		u := &User{Username: NewID("u"), Email: email}
		if err := s.CreateUser(u); err != nil || u.Email != email {
			t.Errorf("email %q: stored %q, %v", email, u.Email, err)
		}
	}
}

func TestIDShapedLoginsRefused(t *testing.T) {
	s := openTest(t)
	victim := mustUser(t, s, "victim")
	attacker := mustUser(t, s, "attacker")
	for _, name := range []string{"usr_x", "USR_x", "Key_x", "ses_x", "ｕｓｒ＿x", victim.ID} {
		if err := s.CreateUser(&User{Username: name}); !errors.Is(err, ErrInvalid) {
			t.Errorf("username %q: err = %v, want ErrInvalid", name, err)
		}
	}
	for _, email := range []string{victim.ID, "USR_x", "key_x"} {
		if _, err := s.UpdateUser(attacker.ID, func(u *User) error { u.Email = email; return nil }); !errors.Is(err, ErrInvalid) {
			t.Errorf("email %q: err = %v, want ErrInvalid", email, err)
		}
	}
	if got, err := s.UserByID(victim.ID); err != nil || got.Username != "victim" {
		t.Errorf("victim by id: %+v, %v", got, err)
	}
}

func TestLoginByteCaps(t *testing.T) {
	s := openTest(t)
	for _, tc := range []struct {
		what     string
		u        User
		accepted bool
	}{
		{"username 64 bytes", User{Username: strings.Repeat("a", MaxUsernameBytes)}, true},
		{"username 65 bytes", User{Username: strings.Repeat("b", MaxUsernameBytes+1)}, false},
		{"username 32 two-byte letters", User{Username: strings.Repeat("é", 32)}, true},
		{"username 33 two-byte letters", User{Username: strings.Repeat("è", 33)}, false},
		{"email 254 bytes", User{Username: "c", Email: "c@" + strings.Repeat("d", MaxEmailBytes-2)}, true},
		{"email 255 bytes", User{Username: "e", Email: "e@" + strings.Repeat("f", MaxEmailBytes-1)}, false},
		{"huge username", User{Username: strings.Repeat("g", 1<<20)}, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			err := s.CreateUser(&tc.u)
			if tc.accepted && err != nil {
				t.Errorf("err = %v, want accepted", err)
			}
			if !tc.accepted && !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// legacyUser is a user as schema 1 stored it: the record as it is, indexed
// under strings.ToLower.
type legacyUser struct{ id, name, email string }

// writeSchema1 builds a schema-1 file the way that build wrote it.
func writeSchema1(t *testing.T, path string, users []legacyUser) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("1")); err != nil {
			return err
		}
		for _, l := range users {
			u := &User{V: 1, ID: l.id, Username: l.name, Email: l.email, CreatedAt: utcNow(), UpdatedAt: utcNow()}
			if err := putJSON(tx.Bucket(bucketUsers), []byte(u.ID), u); err != nil {
				return err
			}
			if err := tx.Bucket(bucketUsersByName).Put([]byte(strings.ToLower(l.name)), []byte(l.id)); err != nil {
				return err
			}
			if l.email != "" {
				if err := tx.Bucket(bucketUsersByEmail).Put([]byte(strings.ToLower(l.email)), []byte(l.id)); err != nil {
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
	if _, err := s.UserByLogin("usr_1"); err != ErrNotFound {
		t.Errorf("UserByLogin(usr_1): err = %v, want ErrNotFound", err)
	}
	// Every user is kept, and can still be edited and renamed.
	for _, id := range []string{"usr_1", "usr_2", "usr_3", "usr_4", "usr_5", "usr_6", "usr_7", "usr_8"} {
		if _, err := s.UpdateUser(id, func(u *User) error { u.Roles = []string{"kept"}; return nil }); err != nil {
			t.Errorf("UpdateUser(%s) keeping its login: %v", id, err)
		}
	}
	for id, name := range map[string]string{"usr_4": "jorge", "usr_5": "alicia", "usr_6": "goodname"} {
		if _, err := s.UpdateUser(id, func(u *User) error { u.Username = name; return nil }); err != nil {
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
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchemaVersion)); v != "2" {
			t.Errorf("schema_version = %q, want 2", v)
		}
		if tx.Bucket(bucketUsersByName).Get([]byte("ａｌｉｃｅ")) != nil {
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
		fn   func(tx *bbolt.Tx) error
	}{
		{"stale key", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketUsersByName).Put([]byte("ａｌｉｃｅ"), []byte(u.ID))
		}},
		{"missing entry", func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketUsersByName)
			if err := b.Delete([]byte("ａｌｉｃｅ")); err != nil {
				return err
			}
			return b.Delete([]byte("alice"))
		}},
	} {
		if err := s.db.Update(tc.fn); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check err = %v, want ErrMalformed", tc.what, err)
		}
	}
}
