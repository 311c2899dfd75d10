package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

const idle = 10 * time.Minute

func (e *env) browserLogin(name, password string) string {
	e.t.Helper()
	cookie, err := e.svc.BrowserLogin(context.Background(), name, password, time.Hour)
	if err != nil {
		e.t.Fatalf("browser login %s: %v", name, err)
	}
	return cookie
}

// A browser session's cookie authenticates as a session of its user, and
// nothing else does: not a refresh token, not a token, not garbage. The
// cookie mints no tokens.
func TestBrowserSessionCredentials(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("bo", "pw-bo-12345", "staff")
	cookie := e.browserLogin("bo", "pw-bo-12345")
	p, err := e.svc.AuthenticateSession(cookie, idle)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID() != u.ID || !p.BySession() || p.Method() != MethodSession || p.SessionID() == "" || p.Roles() != "staff" || p.Restricted() {
		t.Errorf("principal %+v", p)
	}
	sess, err := e.st.SessionByID(p.SessionID())
	if err != nil || !sess.Browser || !sess.ExpiresAt.Equal(e.clock.now().Add(time.Hour)) {
		t.Errorf("the stored session: %+v %v", sess, err)
	}

	pair := e.login("bo", "pw-bo-12345")
	for name, c := range map[string]string{
		"a refresh token": pair.Refresh, "an access token": pair.Access, "garbage": "ags_nope",
		"a cookie of another length": cookie + "x", "a too long cookie": string(make([]byte, 4096)),
	} {
		if _, err := e.svc.AuthenticateSession(c, idle); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s as a session cookie: %v, want ErrInvalidToken", name, err)
		}
	}
	if _, err := e.svc.Refresh(context.Background(), cookie); !errors.Is(err, ErrBadGrant) {
		t.Errorf("a session cookie as a refresh token: %v, want ErrBadGrant", err)
	}
	if _, err := e.svc.AuthenticateBearer(cookie); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a session cookie as a Bearer token: %v", err)
	}
	if _, err := e.svc.AuthenticateKey(cookie); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("a session cookie as an API key: %v", err)
	}
}

// Idle (sliding), lifetime, logout, a disabled user: each ends the session,
// cached or not.
func TestBrowserSessionEnds(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("cy", "pw-cy-12345")
	start := e.clock.now()

	cookie := e.browserLogin("cy", "pw-cy-12345")
	for _, at := range []time.Duration{9, 18, 27, 36, 45, 54} {
		e.clock.set(start.Add(at * time.Minute))
		if _, err := e.svc.AuthenticateSession(cookie, idle); err != nil {
			t.Fatalf("used every 9 minutes, at +%dm: %v", at, err)
		}
		e.wait()
	}
	e.svc.FlushKeyUsage() // the uses reach the store
	e.clock.set(start.Add(60 * time.Minute))
	if _, err := e.svc.AuthenticateSession(cookie, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("at its lifetime (1h): %v, want refused", err)
	}

	e.clock.set(start)
	idleCookie := e.browserLogin("cy", "pw-cy-12345")
	e.wait()
	e.clock.set(start.Add(idle))
	if _, err := e.svc.AuthenticateSession(idleCookie, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("unused for the idle timeout: %v, want refused", err)
	}

	e.clock.set(start)
	c := e.browserLogin("cy", "pw-cy-12345")
	p, err := e.svc.AuthenticateSession(c, idle)
	if err != nil {
		t.Fatal(err)
	}
	e.wait()
	if err := e.svc.Logout(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AuthenticateSession(c, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("after logout: %v, want refused", err)
	}

	c = e.browserLogin("cy", "pw-cy-12345")
	if _, err := e.svc.AuthenticateSession(c, idle); err != nil {
		t.Fatal(err)
	}
	e.wait()
	if _, err := e.st.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AuthenticateSession(c, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("the user disabled: %v, want refused", err)
	}
}

// Browser logins share the lockout and the session limit of every login.
func TestBrowserLoginRules(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SessionLimit = 2 })
	e.addUser("di", "pw-di-12345")
	for range 5 {
		_, _ = e.svc.BrowserLogin(context.Background(), "di", "wrong", time.Hour)
	}
	var locked *LockedError
	if _, err := e.svc.Login(context.Background(), "di", "pw-di-12345"); !errors.As(err, &locked) {
		t.Errorf("an API login after five wrong browser logins: %v, want locked", err)
	}
	e.clock.add(6 * time.Minute)
	first := e.browserLogin("di", "pw-di-12345")
	e.clock.add(time.Second)
	e.login("di", "pw-di-12345")
	e.clock.add(time.Second)
	e.login("di", "pw-di-12345") // the limit (2) ends the oldest: the browser session
	if _, err := e.svc.AuthenticateSession(first, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("the oldest session past the limit: %v, want ended", err)
	}
}

// A cache hit compares the whole cookie digest, as for tokens and keys: a
// session's decision planted under another cookie's slot (a collision of
// the slot's 8 bytes) is not served for that cookie.
func TestSessionCacheHitComparesCookie(t *testing.T) {
	e := newEnv(t)
	e.addUser("ed", "pw-ed-12345")
	good := e.browserLogin("ed", "pw-ed-12345")
	if _, err := e.svc.AuthenticateSession(good, idle); err != nil {
		t.Fatal(err)
	}
	e.wait()
	gd := store.DigestOf(good)
	decision, ok := e.svc.sessions.Get(gd.Slot())
	if !ok {
		t.Fatal("the decision was not cached")
	}
	// A well-formed cookie no session was ever opened with.
	other, err := secret.NewSecret(secret.SessionPrefix)
	if err != nil {
		t.Fatal(err)
	}
	od := store.DigestOf(other)
	e.svc.sessions.Set(od.Slot(), decision, 1)
	e.wait()
	if _, err := e.svc.AuthenticateSession(other, idle); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("SECURITY: an unknown cookie found another session's decision: %v", err)
	}
}
