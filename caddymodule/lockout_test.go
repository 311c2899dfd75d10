package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/store"
)

func TestLockoutTracker(t *testing.T) {
	tr := newLockoutTracker(10)
	now := time.Unix(1_000_000, 0)
	p := lockPolicy{attempts: 3, window: time.Minute}
	a := userAccount("a")
	fail := func(at time.Time) {
		t.Helper()
		att, wait := tr.reserve(a, at, p)
		if wait > 0 {
			t.Fatalf("refused a reservation (wait %s) before the account locked", wait)
		}
		att.failed(at)
	}
	fail(now)
	fail(now)
	if n, d := tr.state(a, now); n != 2 || d != 0 {
		t.Fatalf("after 2 failures: %d failures, locked %s", n, d)
	}
	fail(now)
	if _, wait := tr.reserve(a, now.Add(10*time.Second), p); wait != 50*time.Second {
		t.Fatalf("locked for %s, want 50s", wait)
	}
	att, wait := tr.reserve(a, now.Add(time.Minute), p)
	if wait != 0 {
		t.Fatalf("still locked after the window: %s", wait)
	}
	att.succeeded(now.Add(time.Minute))

	// Failures older than the window no longer count.
	b := userAccount("b")
	p2 := lockPolicy{attempts: 2, window: time.Minute}
	att, _ = tr.reserve(b, now, p2)
	att.failed(now)
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.failed(now.Add(time.Minute))
	if _, d := tr.state(b, now.Add(time.Minute)); d != 0 {
		t.Fatal("a failure from a whole window ago still counted")
	}
	// Success clears; an abandoned check counts for nothing.
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.succeeded(now.Add(time.Minute))
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.abandoned(now.Add(time.Minute))
	if n, _ := tr.state(b, now.Add(time.Minute)); n != 0 {
		t.Fatalf("%d failures survived a success", n)
	}
	if len(tr.entries) != 0 {
		t.Errorf("%d entries left for accounts with nothing to count", len(tr.entries))
	}
}

// A reservation counts until it is settled: with the threshold's worth of
// checks in flight, the next attempt is refused without being checked.
func TestLockoutReservesBeforeChecking(t *testing.T) {
	tr := newLockoutTracker(10)
	now := time.Unix(1_000_000, 0)
	p := lockPolicy{attempts: 3, window: time.Minute}
	a := loginAccount("victim")
	var held []attempt
	for range 3 {
		att, wait := tr.reserve(a, now, p)
		if wait > 0 {
			t.Fatalf("reservation %d refused", len(held)+1)
		}
		held = append(held, att)
	}
	if _, wait := tr.reserve(a, now, p); wait != p.window {
		t.Fatalf("a fourth concurrent check was let through (wait %s)", wait)
	}
	held[0].succeeded(now) // the right password among them clears the count
	if _, wait := tr.reserve(a, now, p); wait != 0 {
		t.Fatalf("refused after a check settled: %s", wait)
	}
}

// Counters are keyed by a fixed-size digest, so a 60 KB identifier costs no
// more than a short one, and the tracker stays under its bound. Which
// entries survive a flood depends on when they were last active, never on
// whether the account exists: a real user's counter and an unknown
// login's fare the same.
func TestLockoutTrackerBound(t *testing.T) {
	p := lockPolicy{attempts: 5, window: time.Hour}
	for _, early := range []accountKey{userAccount("usr_victim"), loginAccount("ghost-early")} {
		tr := newLockoutTracker(40)
		now := time.Unix(1_000_000, 0)
		att, _ := tr.reserve(early, now, p)
		att.failed(now)
		for i := range 100 {
			at := now.Add(time.Duration(i+1) * time.Second)
			att, wait := tr.reserve(loginAccount(strings.Repeat("x", 60<<10)+strconv.Itoa(i)), at, p)
			if wait > 0 {
				t.Fatal("a new account was refused while idle entries could be evicted")
			}
			att.failed(at)
		}
		if len(tr.entries) > 40 {
			t.Fatalf("%d entries, bound is 40", len(tr.entries))
		}
		if n, _ := tr.state(early, now.Add(time.Hour/2)); n != 0 {
			t.Errorf("the least recently active counter survived a flood: eviction must go by age alone")
		}
	}
	// An entry with a check in flight is never evicted.
	tr := newLockoutTracker(1)
	now := time.Unix(1_000_000, 0)
	busy, _ := tr.reserve(userAccount("busy"), now, p)
	if _, wait := tr.reserve(userAccount("other"), now, p); wait == 0 {
		t.Fatal("the tracker evicted an account with a check in flight")
	}
	busy.abandoned(now)
}

// parallel sends n copies of the request mk makes at once and counts the
// statuses. Each request gets its own replacer and recorder.
func parallel(t *testing.T, g *gateway, n int, mk func() *http.Request) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mk()
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			w := httptest.NewRecorder()
			<-start
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(http.StatusOK)
				return nil
			})
			if err := g.h.ServeHTTP(w, r, next); err != nil {
				t.Errorf("ServeHTTP: %v", err)
			}
			mu.Lock()
			counts[w.Code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

// The lockout holds under concurrency: 40 wrong guesses sent at once, with
// `lockout 5`, get at most 5 checks (401); every other one is refused as
// locked (429) without a hash. Before the reservation, all 40 were checked.
func TestLockoutRace(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("race", "pw-race-123")
	g.app.LockoutAttempts = 5
	tok := g.login("race", "pw-race-123").AccessToken
	k := g.addKey("race", "read")

	for i, c := range []struct {
		name string
		mk   func() *http.Request
		want int // the refusal status of a checked guess
	}{
		{"login", func() *http.Request {
			return jsonRequest("POST", "/rest/login", `{"username":"race","password":"wrong"}`)
		}, 401},
		{"check_pin with a live token", func() *http.Request {
			r := jsonRequest("POST", "/rest/check_pin", `{"pin":"0000"}`)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}, 401},
		{"quick_login client secret", func() *http.Request {
			return formRequest("/rest/quick_login", url.Values{"client_id": {k.ID}, "client_secret": {"agcs_wrong"}})
		}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := time.Now().Add(time.Duration(i) * 10 * time.Minute) // a fresh window per case
			g.app.now = func() time.Time { return clock }
			counts := parallel(t, g, 40, c.mk)
			if counts[c.want] > 5 || counts[c.want]+counts[429] != 40 {
				t.Fatalf("statuses %v: want at most 5 × %d and the rest 429", counts, c.want)
			}
		})
	}
}

// Identifiers are capped before any lookup: a login, an email or a client
// id longer than any account can have is a 400, and leaves no counter.
func TestIdentifierCaps(t *testing.T) {
	g := newGateway(t, nil)
	for _, c := range []struct {
		name string
		r    *http.Request
	}{
		{"65-byte username", jsonRequest("POST", "/rest/login", `{"username":"`+strings.Repeat("u", 65)+`","password":"x"}`)},
		{"255-byte email", jsonRequest("POST", "/rest/login", `{"username":"`+strings.Repeat("e", 243)+`@example.com","password":"x"}`)},
		{"60 KB client id", formRequest("/rest/quick_login", url.Values{"client_id": {strings.Repeat("k", 60<<10)}, "client_secret": {"agcs_x"}})},
		{"65-byte client id", formRequest("/rest/quick_login", url.Values{"client_id": {"key_" + strings.Repeat("k", 61)}, "client_secret": {"agcs_x"}})},
	} {
		expectRefused(t, g, g.do(c.r), 400, "invalid_request")
	}
	if n := len(g.app.lockout.logins.entries) + len(g.app.lockout.clients.entries); n != 0 {
		t.Errorf("%d lockout counters after refused identifiers, want 0", n)
	}
	// At the caps they are looked up (and fail as unknown).
	expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"`+strings.Repeat("u", 64)+`","password":"x"}`)), 401, "invalid_credentials")
	expectRefused(t, g, g.do(formRequest("/rest/quick_login", url.Values{"client_id": {"key_" + strings.Repeat("k", 60)}, "client_secret": {"agcs_x"}})), 401, "invalid_client")
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
	expectRefused(t, g, login("ｋｉｍ@example.com", "wrong-3"), 401, "invalid_credentials")

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

// An unknown login is counted by its normalised form: every spelling of
// one made-up name shares a counter, as a real user's logins do.
func TestUnknownLoginSpellingsShareACounter(t *testing.T) {
	g := newGateway(t, nil)
	g.app.LockoutAttempts = 3
	for _, name := range []string{"nobody", "NOBODY", "ｎｏｂｏｄｙ"} {
		expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"`+name+`","password":"x"}`)), 401, "invalid_credentials")
	}
	expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"Nobody","password":"x"}`)), 429, "locked")
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

// An unknown user costs exactly the hash a known user's wrong password
// costs: without the dummy hash, response time would tell them apart. The
// same for a PIN check on a user who has no PIN.
func TestUnknownUserCostsOneHash(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("tim", "pw-tim-1234")
	tok := g.login("tim", "pw-tim-1234").AccessToken
	hashes := func(r *http.Request, status int) uint64 {
		t.Helper()
		before, _ := store.HashStats()
		if w := g.do(r); w.Code != status {
			t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
		}
		after, _ := store.HashStats()
		return after - before
	}
	known := hashes(jsonRequest("POST", "/rest/login", `{"username":"tim","password":"wrong"}`), 401)
	unknown := hashes(jsonRequest("POST", "/rest/login", `{"username":"nobody-at-all","password":"wrong"}`), 401)
	unusable := hashes(jsonRequest("POST", "/rest/login", `{"username":"nob\u200body","password":"wrong"}`), 401)
	r := jsonRequest("POST", "/rest/check_pin", `{"pin":"1234"}`)
	r.Header.Set("Authorization", "Bearer "+tok)
	noPIN := hashes(r, 401)
	if known != 1 || unknown != 1 || unusable != 1 || noPIN != 1 {
		t.Errorf("hashes: known user %d, unknown %d, un-normalisable %d, no PIN %d; want 1 each", known, unknown, unusable, noPIN)
	}
}
