package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/store"
)

func testConfusableUsernamesRefused(t *testing.T, s store.Store) {
	MustUser(t, s, "alice")
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
			if err := s.CreateUser(&store.User{Username: tc.name}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("username %q: err = %v, want ErrInvalid", tc.name, err)
			}
		})
	}
}

func testScriptsAllowedTogether(t *testing.T, s store.Store) {
	for _, name := range []string{
		"Ωμέγα", "иван", "José", "yamada山田", "山田たろうタロウ", "chen陳ㄅ", "kim김철수", "user_42", "o'brien.x-y",
	} {
		if err := s.CreateUser(&store.User{Username: name}); err != nil {
			t.Errorf("username %q: %v", name, err)
		}
	}
	for _, name := range []string{"たろう김", "ㄅたろう", "Ωиван"} {
		if err := s.CreateUser(&store.User{Username: name}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("username %q: err = %v, want ErrInvalid", name, err)
		}
	}
}

func testEquivalentSpellingsCollide(t *testing.T, s store.Store) {
	for _, tc := range []struct{ what, first, second string }{
		{"NFD after NFC", "josé", "jose\u0301"},
		{"NFC after NFD", "rene\u0301", "rené"},
		{"fullwidth after ASCII", "alice", "ａｌｉｃｅ"},
		{"ASCII after fullwidth", "ｂｏｂ", "bob"},
		{"case", "Carol", "CAROL"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			MustUser(t, s, tc.first)
			if err := s.CreateUser(&store.User{Username: tc.second}); !errors.Is(err, store.ErrExists) {
				t.Errorf("%q beside %q: err = %v, want ErrExists", tc.second, tc.first, err)
			}
		})
	}
	// Emails and usernames share the namespace under the same keys.
	if err := s.CreateUser(&store.User{Username: "dave", Email: "Dave@Example.com"}); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"ｄａｖｅ@example.com", "DAVE@EXAMPLE.COM"} {
		if err := s.CreateUser(&store.User{Username: "other", Email: email}); !errors.Is(err, store.ErrExists) {
			t.Errorf("email %q: err = %v, want ErrExists", email, err)
		}
	}
	if err := s.CreateUser(&store.User{Username: "ｄａｖｅ@example.com"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("username equal to an email: err = %v, want ErrExists", err)
	}
}

func testStoredFormIsCasePreservedNFC(t *testing.T, s store.Store) {
	for in, want := range map[string]string{
		"ａｌｉｃｅ":      "alice",
		"Ｂｏｂ":        "Bob",
		"Jose\u0301": "José",
		"Zoë":        "Zoë",
	} {
		u := MustUser(t, s, in)
		if u.Username != want {
			t.Errorf("CreateUser(%q) stored %q, want %q", in, u.Username, want)
		}
		if got, err := s.UserByID(u.ID); err != nil || got.Username != want {
			t.Errorf("UserByID after CreateUser(%q) = %+v, %v", in, got, err)
		}
	}
	u := &store.User{Username: "erin", Email: "Ｅｒｉｎ@Example.com"}
	if err := s.CreateUser(u); err != nil || u.Email != "Erin@Example.com" {
		t.Errorf("email stored as %q, %v", u.Email, err)
	}
	got, err := s.UpdateUser(u.ID, func(x *store.User) error { x.Username = "Ｅｒｉｎ2"; return nil })
	if err != nil || got.Username != "Erin2" {
		t.Errorf("renamed to %+v, %v", got, err)
	}
}

func testUserByLoginEquivalentSpellings(t *testing.T, s store.Store) {
	u := &store.User{Username: "Alice", Email: "Alice@Example.com"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"Alice", "alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ", "alice@example.com", "ＡＬＩＣＥ@EXAMPLE.COM"} {
		if got, err := s.UserByLogin(login); err != nil || got.ID != u.ID {
			t.Errorf("UserByLogin(%q) = %+v, %v", login, got, err)
		}
	}
	// Un-normalisable input is ErrNotFound itself, as an unknown login is.
	for _, login := range []string{"nobody", "", "alice\u200b", "\u202ealice", "аlice", "ali\xffce", strings.Repeat("a", store.MaxEmailBytes+1), u.ID, "USR_" + u.ID[4:]} {
		if _, err := s.UserByLogin(login); err != store.ErrNotFound {
			t.Errorf("UserByLogin(%q): err = %v, want exactly ErrNotFound", login, err)
		}
	}
}

func testBadEmailsRefused(t *testing.T, s store.Store) {
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
		"a@" + strings.Repeat("b", store.MaxEmailBytes-1), // 255 bytes
	} {
		if err := s.CreateUser(&store.User{Username: "u", Email: email}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("email %q: err = %v, want ErrInvalid", email, err)
		}
	}
	// An address has an '@', which no id has: one that starts like an id
	// is a plain address.
	for _, email := range []string{"a@b", "first.last+tag@example.co.uk", "user@例え.jp", "usr_abcdefghijklmnopqrst@x.com", "a@" + strings.Repeat("b", store.MaxEmailBytes-2)} {
		u := &store.User{Username: store.NewID("u"), Email: email}
		if err := s.CreateUser(u); err != nil || u.Email != email {
			t.Errorf("email %q: stored %q, %v", email, u.Email, err)
		}
	}
}

func testIDShapedLoginsRefused(t *testing.T, s store.Store) {
	victim := MustUser(t, s, "victim")
	attacker := MustUser(t, s, "attacker")
	for _, name := range []string{"usr_x", "USR_x", "Key_x", "ses_x", "ｕｓｒ＿x", victim.ID} {
		if err := s.CreateUser(&store.User{Username: name}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("username %q: err = %v, want ErrInvalid", name, err)
		}
	}
	for _, email := range []string{victim.ID, "USR_x", "key_x"} {
		if _, err := s.UpdateUser(attacker.ID, func(u *store.User) error { u.Email = email; return nil }); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("email %q: err = %v, want ErrInvalid", email, err)
		}
	}
	if got, err := s.UserByID(victim.ID); err != nil || got.Username != "victim" {
		t.Errorf("victim by id: %+v, %v", got, err)
	}
}

func testLoginByteCaps(t *testing.T, s store.Store) {
	for _, tc := range []struct {
		what     string
		u        store.User
		accepted bool
	}{
		{"username 64 bytes", store.User{Username: strings.Repeat("a", store.MaxUsernameBytes)}, true},
		{"username 65 bytes", store.User{Username: strings.Repeat("b", store.MaxUsernameBytes+1)}, false},
		{"username 32 two-byte letters", store.User{Username: strings.Repeat("é", 32)}, true},
		{"username 33 two-byte letters", store.User{Username: strings.Repeat("è", 33)}, false},
		{"email 254 bytes", store.User{Username: "c", Email: "c@" + strings.Repeat("d", store.MaxEmailBytes-2)}, true},
		{"email 255 bytes", store.User{Username: "e", Email: "e@" + strings.Repeat("f", store.MaxEmailBytes-1)}, false},
		{"huge username", store.User{Username: strings.Repeat("g", 1<<20)}, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			err := s.CreateUser(&tc.u)
			if tc.accepted && err != nil {
				t.Errorf("err = %v, want accepted", err)
			}
			if !tc.accepted && !errors.Is(err, store.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
