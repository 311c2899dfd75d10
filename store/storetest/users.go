package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

func testUsernameUniqueIgnoringCase(t *testing.T, s store.Store) {
	MustUser(t, s, "Alice")
	if err := s.CreateUser(&store.User{Username: "aLICE"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second alice: err = %v, want ErrExists", err)
	}
	got, err := s.UserByLogin("ALICE")
	if err != nil || got.Username != "Alice" {
		t.Fatalf("UserByLogin(ALICE) = %+v, %v", got, err)
	}
}

func testEmailIsALogin(t *testing.T, s store.Store) {
	u := &store.User{Username: "bob", Email: "Bob@Example.com"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByLogin("bob@example.COM")
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByLogin by email = %+v, %v", got, err)
	}
	// The email belongs to bob, as an email or as someone's username.
	if err := s.CreateUser(&store.User{Username: "other", Email: "BOB@example.com"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate email: err = %v, want ErrExists", err)
	}
	if err := s.CreateUser(&store.User{Username: "bob@example.com"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("username equal to an email: err = %v, want ErrExists", err)
	}
	MustUser(t, s, "dan@example.com")
	if err := s.CreateUser(&store.User{Username: "carl", Email: "DAN@example.com"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("email equal to a username: err = %v, want ErrExists", err)
	}
	if _, err := s.UserByLogin("nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown login: err = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByLogin(""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("empty login: err = %v, want ErrNotFound", err)
	}
}

func testCreateUserValidates(t *testing.T, s store.Store) {
	for _, name := range []string{"", "a b", "tab\there", "nl\n", "nul\x00", strings.Repeat("x", store.MaxUsernameBytes+1), strings.Repeat("ü", store.MaxUsernameBytes/2+1), "\xff\xfe"} {
		if err := s.CreateUser(&store.User{Username: name}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("username %q: err = %v, want ErrInvalid", name, err)
		}
	}
	if err := s.CreateUser(&store.User{Username: "ok", ID: "usr/evil"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("id with '/': err = %v, want ErrInvalid", err)
	}
	u := MustUser(t, s, strings.Repeat("ü", store.MaxUsernameBytes/2)) // 64 bytes
	if !strings.HasPrefix(u.ID, "usr_") || len(u.ID) != 24 || u.V != store.RecordVersion || u.CreatedAt.IsZero() || u.UpdatedAt.IsZero() {
		t.Errorf("filled fields: %+v", u)
	}
	if err := s.CreateUser(&store.User{ID: u.ID, Username: "again"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate id: err = %v, want ErrExists", err)
	}
}

func testUpdateUser(t *testing.T, s store.Store) {
	u := &store.User{Username: "dora", Email: "dora@example.com"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	MustUser(t, s, "eve")

	got, err := s.UpdateUser(u.ID, func(x *store.User) error {
		x.ID = "usr_hijack"
		x.CreatedAt = time.Time{}
		x.Username = "Dorothy"
		x.Email = "dorothy@example.com"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || !got.CreatedAt.Equal(u.CreatedAt) || !got.UpdatedAt.After(u.CreatedAt) && !got.UpdatedAt.Equal(u.CreatedAt) {
		t.Errorf("fixed fields changed: %+v", got)
	}
	for login, want := range map[string]bool{"dorothy": true, "DOROTHY@example.com": true, "dora": false, "dora@example.com": false} {
		_, err := s.UserByLogin(login)
		if found := err == nil; found != want {
			t.Errorf("UserByLogin(%q) err = %v, want found=%v", login, err, want)
		}
	}
	// Taking eve's name fails and changes nothing.
	if _, err := s.UpdateUser(u.ID, func(x *store.User) error { x.Username = "EVE"; return nil }); !errors.Is(err, store.ErrExists) {
		t.Fatalf("rename onto eve: err = %v, want ErrExists", err)
	}
	if got, _ := s.UserByLogin("dorothy"); got == nil || got.ID != u.ID {
		t.Error("failed rename lost the old name")
	}
	// fn's error aborts.
	boom := errors.New("boom")
	if _, err := s.UpdateUser(u.ID, func(x *store.User) error { x.Username = "zed"; return boom }); err != boom {
		t.Fatalf("err = %v, want fn's error", err)
	}
	if _, err := s.UserByLogin("zed"); !errors.Is(err, store.ErrNotFound) {
		t.Error("aborted update was stored")
	}
	// Clearing the email frees it.
	if _, err := s.UpdateUser(u.ID, func(x *store.User) error { x.Email = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByLogin("dorothy@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Error("cleared email still logs in")
	}
	if _, err := s.UpdateUser("usr_nobody", func(*store.User) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
}

func testDeleteUserRemovesCredentials(t *testing.T, s store.Store) {
	u := &store.User{Username: "fred", Email: "fred@example.com"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	other := MustUser(t, s, "gail")
	_, key := MustKey(t, s, u.ID)
	_, otherKey := MustKey(t, s, other.ID)
	sess, refresh := MustSession(t, s, u.ID)
	otherSess, _ := MustSession(t, s, other.ID)
	// Read the user first: a backend that caches must drop the entry, not
	// just delete the record.
	if _, err := s.UserByID(u.ID); err != nil {
		t.Fatal(err)
	}

	if err := s.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APIKeyByDigest(store.DigestOf(key)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("key of deleted user: err = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(sess.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of deleted user: err = %v, want ErrNotFound", err)
	}
	if _, err := s.RotateRefresh(refresh, NewDigest(t), time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh of deleted user: err = %v, want ErrNotFound", err)
	}
	for _, login := range []string{"fred", "fred@example.com"} {
		if _, err := s.UserByLogin(login); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("login %q of deleted user: err = %v", login, err)
		}
	}
	if keys, _ := s.ListAPIKeys(""); len(keys) != 1 || keys[0].OwnerID != other.ID {
		t.Errorf("keys left: %+v", keys)
	}
	if _, err := s.APIKeyByDigest(store.DigestOf(otherKey)); err != nil {
		t.Errorf("other user's key: %v", err)
	}
	if _, err := s.SessionByID(otherSess.ID); err != nil {
		t.Errorf("other user's session: %v", err)
	}
	if err := s.DeleteUser(u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
	// The name is free again.
	MustUser(t, s, "FRED")
}

func testListUsersSorted(t *testing.T, s store.Store) {
	for _, n := range []string{"zoe", "Adam", "mike"} {
		MustUser(t, s, n)
	}
	list, err := s.ListUsers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range list {
		names = append(names, u.Username)
	}
	if got := strings.Join(names, ","); got != "Adam,mike,zoe" {
		t.Errorf("ListUsers = %s", got)
	}
}
