package store

import (
	"errors"
	"strings"
	"testing"
)

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

// LoginKey is what NormalizeLogin compares for every login that validates,
// and still gives a key to a login stored under older rules.
func TestLoginKey(t *testing.T) {
	for _, login := range []string{"ALICE", "ａｌｉｃｅ", "jose\u0301", "Bob@Example.COM"} {
		want, err := NormalizeLogin(login)
		if err != nil {
			t.Fatal(err)
		}
		if got := LoginKey(login); got != want {
			t.Errorf("LoginKey(%q) = %q, want %q as NormalizeLogin", login, got, want)
		}
	}
	for login, want := range map[string]string{"": "", "Bad\u200bName": "bad\u200bname"} {
		if got := LoginKey(login); got != want {
			t.Errorf("LoginKey(%q) = %q, want %q", login, got, want)
		}
	}
}

// PrepareLogins stores the case-preserved form, and on an update leaves a
// login that did not change unchecked: a record stored under older rules
// can still be edited.
func TestPrepareLogins(t *testing.T) {
	u := &User{Username: "Ｅｒｉｎ", Email: "Ｅｒｉｎ@Example.com"}
	if err := PrepareLogins(u, nil); err != nil || u.Username != "Erin" || u.Email != "Erin@Example.com" {
		t.Fatalf("PrepareLogins = %v: %q, %q", err, u.Username, u.Email)
	}
	old := &User{Username: "bad\u200bname"}
	edited := *old
	edited.Roles = []string{"kept"}
	if err := PrepareLogins(&edited, old); err != nil {
		t.Errorf("an unchanged legacy login was checked again: %v", err)
	}
	if err := PrepareLogins(&User{Username: "bad\u200bname"}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a new invisible character: %v, want ErrInvalid", err)
	}
}
