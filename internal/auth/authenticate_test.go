package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// Every decision about a credential, each made twice (the second from the
// cache) after the store changed as the case says: what a credential may
// do must follow its records at once, cached or not.
func TestAuthenticateDecisions(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(e *env, u *store.User, k *store.APIKey, pair TokenPair) // after a first, cached use
		bearer bool                                                         // the token, else the key
		want   error
	}{
		{"key, unchanged", nil, false, nil},
		{"token, unchanged", nil, true, nil},
		{"key revoked", func(e *env, _ *store.User, k *store.APIKey, _ TokenPair) {
			mustDo(e, e.st.RevokeAPIKey(k.ID, e.clock.now()))
		}, false, ErrInvalidKey},
		{"key expired", func(e *env, _ *store.User, k *store.APIKey, _ TokenPair) {
			_, err := e.st.UpdateAPIKey(k.ID, func(k *store.APIKey) error { k.ExpiresAt = e.clock.now().Add(time.Minute); return nil })
			mustDo(e, err)
			e.clock.add(2 * time.Minute)
		}, false, ErrInvalidKey},
		{"key's owner disabled", disable, false, ErrInvalidKey},
		{"token's user disabled", disable, true, ErrInvalidToken},
		{"key's owner deleted", func(e *env, u *store.User, _ *store.APIKey, _ TokenPair) { mustDo(e, e.st.DeleteUser(u.ID)) }, false, ErrInvalidKey},
		{"token's user deleted", func(e *env, u *store.User, _ *store.APIKey, _ TokenPair) { mustDo(e, e.st.DeleteUser(u.ID)) }, true, ErrInvalidToken},
		{"token after logout", func(e *env, _ *store.User, _ *store.APIKey, pair TokenPair) {
			p, err := e.svc.AuthenticateBearer(pair.Access)
			mustDo(e, err)
			mustDo(e, e.svc.Logout(context.Background(), &p))
		}, true, ErrInvalidToken},
		{"token after its session was revoked", func(e *env, u *store.User, _ *store.APIKey, _ TokenPair) {
			_, err := e.st.RevokeUserSessions(u.ID, "test", e.clock.now())
			mustDo(e, err)
		}, true, ErrInvalidToken},
		{"token after the user's epoch moved (password change)", func(e *env, u *store.User, _ *store.APIKey, _ TokenPair) {
			_, err := e.st.UpdateUser(u.ID, func(u *store.User) error { u.TokenEpoch++; return nil })
			mustDo(e, err)
		}, true, ErrInvalidToken},
		{"token past its exp", func(e *env, _ *store.User, _ *store.APIKey, _ TokenPair) {
			e.clock.add(e.svc.Config().AccessTTL + 2*time.Minute)
		}, true, ErrInvalidToken},
		{"key, another user written", func(e *env, _ *store.User, _ *store.APIKey, _ TokenPair) { e.addUser("other", "pw-other-123") }, false, nil},
		{"token, another user disabled", func(e *env, _ *store.User, _ *store.APIKey, _ TokenPair) {
			disable(e, e.addUser("other", "pw-other-123"), nil, TokenPair{})
		}, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			u := e.addUser("ann", "pw-ann-123")
			k, key, _ := e.addKey(u, store.PermRead)
			pair := e.login("ann", "pw-ann-123")
			auth := func() error {
				var err error
				if c.bearer {
					_, err = e.svc.AuthenticateBearer(pair.Access)
				} else {
					_, err = e.svc.AuthenticateKey(key)
				}
				return err
			}
			if err := auth(); err != nil {
				t.Fatalf("first use: %v", err)
			}
			e.wait()
			if c.change != nil {
				c.change(e, u, k, pair)
			}
			for pass := range 2 {
				if err := auth(); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
					t.Fatalf("pass %d: %v, want %v", pass+1, err, c.want)
				}
				e.wait()
			}
		})
	}
}

func disable(e *env, u *store.User, _ *store.APIKey, _ TokenPair) {
	_, err := e.st.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil })
	mustDo(e, err)
}

func mustDo(e *env, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// A cache hit compares the whole digest: a decision planted under the
// cache slot of another credential (what a collision of the slot's 8
// bytes would look like) is not served for it.
func TestCacheHitComparesCredential(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("alice", "correct horse")
	_, key, _ := e.addKey(u, store.PermRead|store.PermWrite)
	token := e.login("alice", "correct horse").Access
	if _, err := e.svc.AuthenticateKey(key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AuthenticateBearer(token); err != nil {
		t.Fatal(err)
	}
	e.wait()
	keyDigest, tokenDigest := store.DigestOf(key), store.DigestOf(token)
	keyDecision, ok1 := e.svc.keys.Get(keyDigest.Slot())
	tokenDecision, ok2 := e.svc.bearers.Get(tokenDigest.Slot())
	if !ok1 || !ok2 {
		t.Fatal("the decisions were not cached")
	}
	other, otherKey, _ := e.addKey(u, store.PermRead) // well-formed, and then revoked
	mustDo(e, e.st.RevokeAPIKey(other.ID, e.clock.now()))
	forged := token[:len(token)-4] + "AAAA"
	otherDigest, forgedDigest := store.DigestOf(otherKey), store.DigestOf(forged)
	e.svc.keys.Set(otherDigest.Slot(), keyDecision, 1)
	e.svc.bearers.SetWithTTL(forgedDigest.Slot(), tokenDecision, 1, time.Hour)
	e.wait()
	if _, err := e.svc.AuthenticateKey(otherKey); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("a revoked key found another key's decision: %v", err)
	}
	if _, err := e.svc.AuthenticateBearer(forged); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a forged token found another token's decision: %v", err)
	}
}
