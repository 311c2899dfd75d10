package caddymodule

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestLockoutTracker(t *testing.T) {
	tr := newLockoutTracker(10)
	now := time.Unix(1_000_000, 0)
	const window = time.Minute
	for i := 1; i <= 2; i++ {
		if tr.fail("user:a", now, 3, window) {
			t.Fatalf("locked after %d failures, want 3", i)
		}
	}
	if !tr.fail("user:a", now, 3, window) {
		t.Fatal("not locked after 3 failures")
	}
	if d := tr.lockedFor("user:a", now.Add(10*time.Second)); d != 50*time.Second {
		t.Fatalf("locked for %s, want 50s", d)
	}
	if d := tr.lockedFor("user:a", now.Add(window)); d != 0 {
		t.Fatalf("still locked after the window: %s", d)
	}

	// Failures older than the window no longer count.
	tr.fail("user:b", now, 2, window)
	if tr.fail("user:b", now.Add(window), 2, window) {
		t.Fatal("a failure from a whole window ago still counted")
	}
	// Success clears.
	tr.succeed("user:b")
	if tr.fail("user:b", now.Add(window), 2, window) {
		t.Fatal("failures survived a success")
	}
}

// A flood of made-up logins cannot push a real account's counter out.
func TestLockoutTrackerBound(t *testing.T) {
	tr := newLockoutTracker(4)
	now := time.Unix(1_000_000, 0)
	tr.fail("user:victim", now, 5, time.Hour)
	tr.fail("user:victim", now, 5, time.Hour)
	for i := range 100 {
		tr.fail(loginAccount("ghost"+strconv.Itoa(i)), now, 5, time.Hour)
	}
	if len(tr.entries) > 4 {
		t.Fatalf("%d entries, bound is 4", len(tr.entries))
	}
	if e := tr.entries["user:victim"]; e == nil || e.failures != 2 {
		t.Fatalf("the victim's counter was evicted or reset: %+v", e)
	}
}

// Through the login route: N failures lock the account, whichever
// identifier named it; while locked even the right password gets 429 with
// Retry-After; after the lock passes it works again.
func TestLoginLockout(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("kim", "pw-kim-123") // email kim@example.com
	g.app.LockoutAttempts = 3
	clock := time.Now()
	g.app.now = func() time.Time { return clock }
	login := func(name, pw string) *httptest.ResponseRecorder {
		return g.do(jsonRequest("POST", "/rest/login", `{"username":"`+name+`","password":"`+pw+`"}`))
	}

	expectRefused(t, g, login("kim", "wrong-1"), 401, "invalid_credentials")
	expectRefused(t, g, login("KIM@example.com", "wrong-2"), 401, "invalid_credentials")
	expectRefused(t, g, login("kim@example.com", "wrong-3"), 401, "invalid_credentials")

	for _, name := range []string{"kim", "kim@example.com"} {
		w := login(name, "pw-kim-123")
		expectRefused(t, g, w, 429, "locked")
		want := strconv.Itoa(int(time.Duration(g.app.LockoutDuration).Seconds()))
		if got := w.Header().Get("Retry-After"); got != want {
			t.Errorf("Retry-After %q, want %q", got, want)
		}
	}

	clock = clock.Add(time.Duration(g.app.LockoutDuration))
	if w := login("kim", "pw-kim-123"); w.Code != 200 {
		t.Fatalf("login after the lock passed: %d %s", w.Code, w.Body)
	}
}

// Unknown and known usernames fail alike: same status, same body, same
// headers, for a wrong password and once locked.
func TestUnknownAndKnownUsersFailAlike(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("lee", "pw-lee-123")
	g.app.LockoutAttempts = 2
	clock := time.Now()
	g.app.now = func() time.Time { return clock }

	type outcome struct {
		status                   int
		body, retry, wwwAuth, ct string
	}
	attempt := func(name string) outcome {
		w := g.do(jsonRequest("POST", "/rest/login", `{"username":"`+name+`","password":"not-it"}`))
		return outcome{w.Code, w.Body.String(), w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), w.Header().Get("Content-Type")}
	}
	for i, step := range []string{"wrong password", "wrong password (locks)", "locked"} {
		known, unknown := attempt("lee"), attempt("nobody-here")
		if known != unknown {
			t.Errorf("%s (attempt %d): known user %+v, unknown user %+v", step, i+1, known, unknown)
		}
		if want := []int{401, 401, 429}[i]; known.status != want {
			t.Errorf("%s: status %d, want %d", step, known.status, want)
		}
	}
}
