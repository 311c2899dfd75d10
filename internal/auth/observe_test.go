package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
	ctxs   []context.Context
}

func (r *recorder) Event(ctx context.Context, e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.ctxs = append(r.ctxs, ctx)
}

// take returns the events so far and forgets them.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events, r.ctxs = nil, nil
	return out
}

func observed(t *testing.T) (*env, *recorder) {
	rec := &recorder{}
	return newEnv(t, func(c *Config) { c.Observer = rec }), rec
}

// one asserts that events holds exactly one event, equal to want.
func one(t *testing.T, what string, events []Event, want Event) {
	t.Helper()
	if len(events) != 1 || events[0] != want {
		t.Errorf("%s: events %+v, want exactly %+v", what, events, want)
	}
}

// TestLoginEvents: each outcome of a password login is one event, with
// who and why; an unknown login's event names no one.
func TestLoginEvents(t *testing.T) {
	e, rec := observed(t)
	u := e.addUser("olga", "pw-olga-1234")
	dis := e.addUser("dora", "pw-dora-1234")
	if _, err := e.st.UpdateUser(dis.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	rec.take()

	if _, err := e.svc.Login(WithDialect(context.Background(), "babel"), "olga", "pw-olga-1234"); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	if len(rec.ctxs) != 1 || DialectOf(rec.ctxs[0]) != "babel" {
		t.Errorf("the login's event did not come with the request's context (dialect babel)")
	}
	rec.mu.Unlock()
	events := rec.take()
	if len(events) != 1 || events[0].Kind != EventLogin || events[0].UserID != u.ID || events[0].Username != "olga" ||
		!strings.HasPrefix(events[0].SessionID, "ses_") || events[0].Check != "password" {
		t.Errorf("login: %+v", events)
	}

	cases := []struct {
		login, password string
		want            Event
	}{
		{"olga", "wrong-password", Event{Kind: EventLoginFailed, Reason: ReasonWrongPassword, Check: "password", UserID: u.ID, Username: "olga"}},
		{"nobody-at-all", "whatever-1234", Event{Kind: EventLoginFailed, Reason: ReasonUnknownUser, Check: "password"}},
		{"dora", "pw-dora-1234", Event{Kind: EventLoginFailed, Reason: ReasonDisabled, Check: "password", UserID: dis.ID, Username: "dora"}},
		{strings.Repeat("x", 65), "whatever", Event{Kind: EventLoginFailed, Reason: ReasonInvalid, Check: "password"}},
	}
	for _, c := range cases {
		_, _ = e.svc.Login(context.Background(), c.login, c.password)
		one(t, c.login[:min(len(c.login), 12)], rec.take(), c.want)
	}
}

// TestLockEvents: the failure that locks reports the lock with its end;
// attempts on the locked account report reason locked, without a check.
func TestLockEvents(t *testing.T) {
	e, rec := observed(t)
	u := e.addUser("lena", "pw-lena-1234")
	for i := range 5 {
		_, _ = e.svc.Login(context.Background(), "lena", fmt.Sprintf("wrong-%d", i))
	}
	events := rec.take()
	var locks []Event
	failures := 0
	for _, ev := range events {
		switch ev.Kind {
		case EventLocked:
			locks = append(locks, ev)
		case EventLoginFailed:
			failures++
		}
	}
	if failures != 5 || len(locks) != 1 {
		t.Fatalf("5 wrong passwords: %d failures and %d locks reported, want 5 and 1: %+v", failures, len(locks), events)
	}
	if l := locks[0]; l.UserID != u.ID || l.Username != "lena" || !l.Until.Equal(e.clock.now().Add(5*time.Minute)) {
		t.Errorf("lock event %+v, want lena locked until %v", l, e.clock.now().Add(5*time.Minute))
	}
	_, _ = e.svc.Login(context.Background(), "lena", "pw-lena-1234")
	one(t, "the right password while locked", rec.take(), Event{Kind: EventLoginFailed, Reason: ReasonLocked, Check: "password", UserID: u.ID, Username: "lena"})
}

// TestSessionEvents: refresh reuse names the session it revoked; logout,
// secret checks, quick_login and the session limit report theirs.
func TestSessionEvents(t *testing.T) {
	e, rec := observed(t)
	u := e.addUser("sam", "pw-sam-1234")
	k, _, clientSecret := e.addKey(u, store.PermRead)
	first := e.login("sam", "pw-sam-1234")
	sid := rec.take()[0].SessionID
	if _, err := e.svc.Refresh(context.Background(), first.Refresh); err != nil {
		t.Fatal(err)
	}
	if len(rec.take()) != 0 {
		t.Error("a refresh reported an event")
	}
	if _, err := e.svc.Refresh(context.Background(), first.Refresh); err == nil {
		t.Fatal("a replayed refresh token was accepted")
	}
	one(t, "refresh reuse", rec.take(), Event{Kind: EventRefreshReused, UserID: u.ID, Username: "sam", SessionID: sid})

	second := e.login("sam", "pw-sam-1234")
	sid2 := rec.take()[0].SessionID
	p, err := e.svc.AuthenticateBearer(second.Access)
	if err != nil {
		t.Fatal(err)
	}
	_ = e.svc.CheckSecret(context.Background(), &p, "0000", true)
	one(t, "a wrong PIN", rec.take(), Event{Kind: EventLoginFailed, Reason: ReasonWrongPIN, Check: "pin", UserID: u.ID, Username: "sam", SessionID: sid2})
	if err := e.svc.Logout(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	one(t, "logout", rec.take(), Event{Kind: EventLogout, UserID: u.ID, Username: "sam", SessionID: sid2})

	if _, err := e.svc.QuickLogin(context.Background(), k.ID, "agc_wrong"); err == nil {
		t.Fatal("a wrong client secret was accepted")
	}
	one(t, "a wrong client secret", rec.take(), Event{Kind: EventLoginFailed, Reason: ReasonBadClient, Check: "client_secret", UserID: u.ID, KeyID: k.ID})
	if _, err := e.svc.QuickLogin(context.Background(), "key_unknown", "agc_wrong"); err == nil {
		t.Fatal("an unknown client id was accepted")
	}
	one(t, "an unknown client id", rec.take(), Event{Kind: EventLoginFailed, Reason: ReasonBadClient, Check: "client_secret"})
	if _, err := e.svc.QuickLogin(context.Background(), k.ID, clientSecret); err != nil {
		t.Fatal(err)
	}
	if ev := rec.take(); len(ev) != 1 || ev[0].Kind != EventLogin || ev[0].KeyID != k.ID || ev[0].Check != "client_secret" {
		t.Errorf("quick_login: %+v", ev)
	}

	// Past the session limit, the login that ended the oldest says so.
	if _, err := e.st.UpdateUser(u.ID, func(u *store.User) error { u.SessionLimit = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	e.login("sam", "pw-sam-1234")
	rec.take()
	e.login("sam", "pw-sam-1234")
	if ev := rec.take(); len(ev) != 2 || ev[1].Kind != EventSessionsEnded || ev[1].Count != 1 || ev[1].UserID != u.ID {
		t.Errorf("a login past the session limit: %+v, want login then sessions_ended (1)", ev)
	}
}

// TestCacheStats: a decision from the cache is a hit, one made from the
// store a miss.
func TestCacheStats(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("cora", "pw-cora-1234")
	_, key, _ := e.addKey(u, store.PermRead)
	if _, err := e.svc.AuthenticateKey(key); err != nil {
		t.Fatal(err)
	}
	e.wait()
	if _, err := e.svc.AuthenticateKey(key); err != nil {
		t.Fatal(err)
	}
	if hits, misses := e.svc.CacheStats(); hits != 1 || misses != 1 {
		t.Errorf("CacheStats = %d hits, %d misses; want 1 and 1", hits, misses)
	}
}
