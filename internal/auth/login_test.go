package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Logins, refreshes and quick_logins, each refusal by its domain error.
func TestLoginRefusals(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("bob", "pw-bob-1234")
	e.addUser("dis", "pw-dis-1234")
	disable(e, mustUserByLogin(e, "dis"), nil, TokenPair{})
	k, _, clientSecret := e.addKey(u, store.PermRead)
	revoked, _, revokedSecret := e.addKey(u, store.PermRead)
	mustDo(e, e.st.RevokeAPIKey(revoked.ID, e.clock.now()))
	unknownRefresh, _ := secret.NewSecret(secret.RefreshPrefix)

	var tooLong *InputError
	for _, c := range []struct {
		name string
		do   func() error
		is   error
		as   any
	}{
		{"right password", func() error { _, err := e.svc.Login(context.Background(), "bob", "pw-bob-1234"); return err }, nil, nil},
		{"by email, other spelling", func() error {
			_, err := e.svc.Login(context.Background(), "ＢＯＢ@example.com", "pw-bob-1234")
			return err
		}, nil, nil},
		{"wrong password", func() error { _, err := e.svc.Login(context.Background(), "bob", "nope"); return err }, ErrBadCredentials, nil},
		{"unknown user", func() error { _, err := e.svc.Login(context.Background(), "nobody", "nope"); return err }, ErrBadCredentials, nil},
		{"disabled user, right password", func() error { _, err := e.svc.Login(context.Background(), "dis", "pw-dis-1234"); return err }, ErrBadCredentials, nil},
		{"a 65-byte username", func() error { _, err := e.svc.Login(context.Background(), strings.Repeat("u", 65), "x"); return err }, nil, &tooLong},
		{"quick_login", func() error { _, err := e.svc.QuickLogin(context.Background(), k.ID, clientSecret); return err }, nil, nil},
		{"quick_login, wrong secret", func() error { _, err := e.svc.QuickLogin(context.Background(), k.ID, revokedSecret); return err }, ErrBadClient, nil},
		{"quick_login, revoked key", func() error { _, err := e.svc.QuickLogin(context.Background(), revoked.ID, revokedSecret); return err }, ErrBadClient, nil},
		{"quick_login, unknown id", func() error { _, err := e.svc.QuickLogin(context.Background(), "key_nobody", clientSecret); return err }, ErrBadClient, nil},
		{"quick_login, a 65-byte id", func() error {
			_, err := e.svc.QuickLogin(context.Background(), strings.Repeat("k", 65), clientSecret)
			return err
		}, nil, &tooLong},
		{"refresh, garbage", func() error { _, err := e.svc.Refresh(context.Background(), "agr_garbage"); return err }, ErrBadGrant, nil},
		{"refresh, unknown", func() error { _, err := e.svc.Refresh(context.Background(), unknownRefresh); return err }, ErrBadGrant, nil},
	} {
		err := c.do()
		switch {
		case c.as != nil:
			if !errors.As(err, c.as) {
				t.Errorf("%s: %v, want a %T", c.name, err, c.as)
			}
		case c.is == nil && err != nil, c.is != nil && !errors.Is(err, c.is):
			t.Errorf("%s: %v, want %v", c.name, err, c.is)
		}
	}
}

// A refresh token is good once; the spent one presented again revokes the
// whole session, its successor included.
func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	e := newEnv(t)
	e.addUser("cat", "pw-cat-1234")
	first := e.login("cat", "pw-cat-1234")
	second, err := e.svc.Refresh(context.Background(), first.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Refresh(context.Background(), first.Refresh); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("replay: %v, want ErrBadGrant", err)
	}
	for name, tok := range map[string]string{"first access": first.Access, "second access": second.Access} {
		if _, err := e.svc.AuthenticateBearer(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s after the replay: %v, want ErrInvalidToken", name, err)
		}
	}
	if _, err := e.svc.Refresh(context.Background(), second.Refresh); !errors.Is(err, ErrBadGrant) {
		t.Errorf("the successor's refresh after the replay: %v", err)
	}
}

// The lockout through the service, with the fake clock: the threshold
// locks the account for every spelling and the right password, for the
// lock duration, and unknown logins fail the same way.
func TestLockoutThroughTheService(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LockoutAttempts = 3; c.LockoutDuration = time.Minute })
	e.addUser("kim", "pw-kim-1234")
	for _, login := range []string{"kim", "KIM", "kim@example.com"} {
		if _, err := e.svc.Login(context.Background(), login, "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("wrong password as %s: %v", login, err)
		}
	}
	var locked *LockedError
	if _, err := e.svc.Login(context.Background(), "kim", "pw-kim-1234"); !errors.As(err, &locked) || locked.RetryAfter != time.Minute {
		t.Fatalf("the right password while locked: %v, want a minute's LockedError", err)
	}
	e.clock.add(time.Minute)
	if _, err := e.svc.Login(context.Background(), "kim", "pw-kim-1234"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	for range 3 {
		_, _ = e.svc.Login(context.Background(), "nobody", "wrong")
	}
	if _, err := e.svc.Login(context.Background(), "NOBODY", "wrong"); !errors.As(err, &locked) {
		t.Fatalf("an unknown login did not lock like a known one: %v", err)
	}
}

// A user may respell or remove their own email, never move it; the move
// is refused alike whatever the address.
func TestEditProfileEmailRule(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("lea", "pw-lea-1234")
	e.addUser("max", "pw-max-1234")
	set := func(email string) error {
		_, err := e.svc.EditProfile(u.ID, func(u *store.User) (bool, error) { u.Email = email; return true, nil })
		return err
	}
	for _, email := range []string{"max@example.com", "free@example.com", "not an address"} {
		if err := set(email); !errors.Is(err, ErrEmailByAdmin) {
			t.Errorf("move to %q: %v, want ErrEmailByAdmin", email, err)
		}
	}
	if err := set("LEA@example.com"); err != nil {
		t.Errorf("respelling: %v", err)
	}
	if err := set(""); err != nil {
		t.Errorf("removing: %v", err)
	}
	// An edit that changes nothing writes nothing.
	before, _ := e.st.UserByID(u.ID)
	if _, err := e.svc.EditProfile(u.ID, func(*store.User) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.st.UserByID(u.ID); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Error("an edit without a change moved updatedAt")
	}
}

func mustUserByLogin(e *env, login string) *store.User {
	e.t.Helper()
	u, err := e.st.UserByLogin(login)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}
