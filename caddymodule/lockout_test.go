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

	"github.com/authgate/authgate/internal/secret"
)

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
// locked (the plentymarkets dialect's 403, API.md section 4) without a
// hash. Before the reservation, all 40 were checked.
func TestLockoutRace(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("race", "pw-race-123")
	g.app.LockoutAttempts = 5
	g.reconfigure()
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
			if counts[c.want] > 5 || counts[c.want]+counts[403] != 40 {
				t.Fatalf("statuses %v: want at most 5 × %d and the rest 403 (locked)", counts, c.want)
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
	if l, err := g.app.store.ListAttempts(time.Now()); err != nil || len(l) != 0 {
		n := len(l)
		t.Errorf("%d lockout counters after refused identifiers, want 0", n)
	}
	// At the caps they are looked up (and fail as unknown).
	expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"`+strings.Repeat("u", 64)+`","password":"x"}`)), 401, "invalid_credentials")
	expectRefused(t, g, g.do(formRequest("/rest/quick_login", url.Values{"client_id": {"key_" + strings.Repeat("k", 60)}, "client_secret": {"agcs_x"}})), 401, "invalid_client")
}

// Through the login route: N failures lock the account, whichever
// identifier named it; while locked even the right password gets 403 with
// Retry-After; after the lock passes it works again.
func TestLoginLockout(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("kim", "pw-kim-123") // email kim@example.com
	g.app.LockoutAttempts = 3
	g.reconfigure()
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
		expectRefused(t, g, w, 403, "locked")
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
	g.reconfigure()
	for _, name := range []string{"nobody", "NOBODY", "ｎｏｂｏｄｙ"} {
		expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"`+name+`","password":"x"}`)), 401, "invalid_credentials")
	}
	expectRefused(t, g, g.do(jsonRequest("POST", "/rest/login", `{"username":"Nobody","password":"x"}`)), 403, "locked")
}

// Unknown and known usernames fail alike: same status, same body, same
// headers, for a wrong password and once locked.
func TestUnknownAndKnownUsersFailAlike(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("lee", "pw-lee-123")
	g.app.LockoutAttempts = 2
	g.reconfigure()
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
		if want := []int{401, 401, 403}[i]; known.status != want {
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
		before, _ := secret.HashStats()
		if w := g.do(r); w.Code != status {
			t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
		}
		after, _ := secret.HashStats()
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
