package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
)

// clock is a settable g.app.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func useClock(g *gateway) *clock {
	c := &clock{t: time.Now()}
	g.app.now = c.now
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quickLogin(g *gateway, id, secret string) *httptest.ResponseRecorder {
	return g.do(formRequest("/rest/quick_login", url.Values{"client_id": {id}, "client_secret": {secret}}))
}

// decodeTokens checks a 200 token body with both spellings.
func decodeTokens(t *testing.T, w *httptest.ResponseRecorder) tokenBody {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", w.Code, w.Body)
	}
	var tb tokenBody
	if err := json.Unmarshal(w.Body.Bytes(), &tb); err != nil {
		t.Fatal(err)
	}
	if tb.AccessToken == "" || tb.AccessToken != tb.AccessCamel || tb.RefreshToken == "" || tb.RefreshToken != tb.RefreshCamel ||
		tb.TokenType != "Bearer" || tb.ExpiresIn != 86400 {
		t.Errorf("token body: type %q, expires_in %d, access %d chars (camel equal %v), refresh %d chars (camel equal %v)",
			tb.TokenType, tb.ExpiresIn, len(tb.AccessToken), tb.AccessToken == tb.AccessCamel, len(tb.RefreshToken), tb.RefreshToken == tb.RefreshCamel)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	return tb
}

// checkSecret posts a check_password / check_pin request with a JSON body.
func checkSecret(g *gateway, route, token, body string) *httptest.ResponseRecorder {
	r := jsonRequest("POST", "/rest/"+route, body)
	r.Header.Set("Authorization", "Bearer "+token)
	return g.do(r)
}

func expectValid(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"valid":true}` {
		t.Fatalf("got %d %s, want 200 {\"valid\":true}", w.Code, w.Body)
	}
}

func TestQuickLoginTokenHasTheKeysLimits(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("quinn", "pw-quinn-123", "ops")
	ro := g.addKey("quinn", "read")

	tb := decodeTokens(t, quickLogin(g, ro.ID, ro.ClientSecret))

	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Fatalf("GET with the quick_login token: %d %s", w.Code, w.Body)
	}
	h := g.seen.Header
	if h.Get("X-Auth-User") != "quinn" || h.Get("X-Auth-Method") != "bearer" || h.Get("X-Auth-Permissions") != "read" {
		t.Errorf("identity headers: %v", h)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		expectRefused(t, g, g.do(bearer(m, "/app", tb.AccessToken)), 403, "insufficient_scope")
	}
	// Its own routes follow the same rule: reading the profile is a GET.
	if w := g.do(bearer("GET", "/rest/user", tb.AccessToken)); w.Code != 200 {
		t.Errorf("GET /rest/user: %d %s", w.Code, w.Body)
	}
	expectRefused(t, g, checkSecret(g, "check_password", tb.AccessToken, `{"password":"pw-quinn-123"}`), 403, "insufficient_scope")

	// A refreshed token keeps the limits.
	next := decodeTokens(t, g.refresh(tb.RefreshToken))
	expectRefused(t, g, g.do(bearer("POST", "/app", next.AccessToken)), 403, "insufficient_scope")
	if w := g.do(bearer("GET", "/app", next.AccessToken)); w.Code != 200 || g.seen.Header.Get("X-Auth-Permissions") != "read" {
		t.Errorf("GET with the refreshed token: %d, permissions %q", w.Code, g.seen.Header.Get("X-Auth-Permissions"))
	}

	// A full key's quick_login token can write, JSON body and camelCase too.
	all := g.addKey("quinn", "all")
	tb = decodeTokens(t, g.do(jsonRequest("POST", "/rest/quick_login", `{"clientId":"`+all.ID+`","clientSecret":"`+all.ClientSecret+`"}`)))
	if w := g.do(bearer("DELETE", "/app", tb.AccessToken)); w.Code != 200 {
		t.Errorf("DELETE with a full key's token: %d %s", w.Code, w.Body)
	}
}

func TestQuickLoginRefusalsAllLookAlike(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("rita", "pw-rita-123")
	g.addUser("sam", "pw-sam-123")
	good := g.addKey("rita", "read")
	revoked := g.addKey("rita", "read")
	expired := g.addKey("rita", "read")
	ofDisabled := g.addKey("sam", "read")
	noSecret, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "rita", Name: "plain", Permissions: "read"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ops.RevokeKey(revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := g.app.store.UpdateAPIKey(expired.ID, func(k *store.APIKey) error {
		k.ExpiresAt = time.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ops.SetDisabled("sam", true); err != nil {
		t.Fatal(err)
	}
	other := g.addKey("sam", "read") // a well-formed secret that is not rita's
	// An imported key without permissions must not open an unlimited session.
	noPerms := g.addKey("rita", "read")
	if _, err := g.app.store.UpdateAPIKey(noPerms.ID, func(k *store.APIKey) error {
		k.Permissions = 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	cases := map[string][2]string{
		"wrong secret":        {good.ID, other.ClientSecret},
		"malformed secret":    {good.ID, "agcs_nope"},
		"the key as secret":   {good.ID, good.Key},
		"unknown id":          {"key_doesnotexist", good.ClientSecret},
		"revoked key":         {revoked.ID, revoked.ClientSecret},
		"expired key":         {expired.ID, expired.ClientSecret},
		"disabled owner":      {ofDisabled.ID, ofDisabled.ClientSecret},
		"key without secret":  {noSecret.ID, good.ClientSecret},
		"id and secret mixed": {other.ID, good.ClientSecret},
		"no permissions":      {noPerms.ID, noPerms.ClientSecret},
	}
	var first string
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w := quickLogin(g, c[0], c[1])
			expectRefused(t, g, w, 401, "invalid_client")
			if first == "" {
				first = w.Body.String()
			} else if w.Body.String() != first {
				t.Errorf("body %q differs from %q", w.Body, first)
			}
			if strings.Contains(w.Body.String(), c[1]) {
				t.Errorf("the body echoes the secret")
			}
		})
	}

	for name, r := range map[string]*http.Request{
		"no secret": formRequest("/rest/quick_login", url.Values{"client_id": {good.ID}}),
		"no id":     formRequest("/rest/quick_login", url.Values{"client_secret": {good.ClientSecret}}),
		"bad json":  jsonRequest("POST", "/rest/quick_login", `{"client_id":`),
	} {
		t.Run(name, func(t *testing.T) { expectRefused(t, g, g.do(r), 400, "invalid_request") })
	}
	if w := g.do(httptest.NewRequest("GET", "/rest/quick_login", nil)); w.Code != 405 {
		t.Errorf("GET quick_login: %d", w.Code)
	}
	decodeTokens(t, quickLogin(g, good.ID, good.ClientSecret))
}

func TestQuickLoginLockout(t *testing.T) {
	g := newGateway(t, nil)
	clk := useClock(g)
	g.app.LockoutAttempts = 3
	g.app.LockoutDuration = caddy.Duration(time.Minute)
	g.reconfigure()
	g.addUser("tess", "pw-tess-123")
	k := g.addKey("tess", "read")
	wrong := g.addKey("tess", "read").ClientSecret

	for i := 0; i < 3; i++ {
		expectRefused(t, g, quickLogin(g, k.ID, wrong), 401, "invalid_client")
	}
	w := quickLogin(g, k.ID, k.ClientSecret)
	expectRefused(t, g, w, 403, "locked") // 403, not 429: API.md section 4
	if ra := w.Header().Get("Retry-After"); ra != "60" {
		t.Errorf("Retry-After %q, want 60", ra)
	}

	// Another key of the same user, and the user's password, are other accounts.
	k2 := g.addKey("tess", "read")
	decodeTokens(t, quickLogin(g, k2.ID, k2.ClientSecret))
	g.login("tess", "pw-tess-123")

	// Unknown ids lock alike, so a 403 tells nothing about an id.
	for i := 0; i < 3; i++ {
		expectRefused(t, g, quickLogin(g, "key_unknown", wrong), 401, "invalid_client")
	}
	expectRefused(t, g, quickLogin(g, "key_unknown", wrong), 403, "locked")

	clk.advance(time.Minute)
	decodeTokens(t, quickLogin(g, k.ID, k.ClientSecret))
}

func TestCheckPasswordAndPin(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("uma", "pw-uma-123")
	tok := g.login("uma", "pw-uma-123").AccessToken
	key := g.addKey("uma", "all")

	expectValid(t, checkSecret(g, "check_password", tok, `{"password":"pw-uma-123"}`))
	r := formRequest("/rest/check_password", url.Values{"password": {"pw-uma-123"}})
	r.Header.Set("Authorization", "Bearer "+tok)
	expectValid(t, g.do(r))
	expectRefused(t, g, checkSecret(g, "check_password", tok, `{"password":"nope"}`), 401, "invalid_credentials")

	// No PIN yet: refused like a wrong one.
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"1234"}`), 401, "invalid_credentials")
	if _, err := g.ops.SetPIN("uma", "1234"); err != nil {
		t.Fatal(err)
	}
	expectValid(t, checkSecret(g, "check_pin", tok, `{"pin":"1234"}`))
	expectValid(t, checkSecret(g, "check_pin", tok, `{"pin":1234}`)) // a JSON number reads as its text
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"4321"}`), 401, "invalid_credentials")
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"pw-uma-123"}`), 401, "invalid_credentials")
	expectRefused(t, g, checkSecret(g, "check_password", tok, `{"password":"1234"}`), 401, "invalid_credentials")

	for _, route := range []string{"check_password", "check_pin"} {
		t.Run(route, func(t *testing.T) {
			expectRefused(t, g, checkSecret(g, route, tok, `{}`), 400, "invalid_request")
			expectRefused(t, g, checkSecret(g, route, tok, `{"password":"x","pin":"x"`), 400, "invalid_request")

			withAPIKey := jsonRequest("POST", "/rest/"+route, `{"password":"pw-uma-123","pin":"1234"}`)
			withAPIKey.Header.Set("X-Api-Key", key.Key)
			expectRefused(t, g, g.do(withAPIKey), 400, "invalid_request")

			w := g.do(jsonRequest("POST", "/rest/"+route, `{"password":"pw-uma-123","pin":"1234"}`))
			expectRefused(t, g, w, 401, "unauthorized")
			if w.Header().Get("WWW-Authenticate") != `Bearer realm="authgate"` {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			expectRefused(t, g, checkSecret(g, route, "not-a-token", `{"password":"pw-uma-123","pin":"1234"}`), 401, "invalid_token")
			if w := g.do(bearer("GET", "/rest/"+route, tok)); w.Code != 405 {
				t.Errorf("GET: %d", w.Code)
			}
		})
	}
}

func TestCheckPasswordLockout(t *testing.T) {
	g := newGateway(t, nil)
	clk := useClock(g)
	g.app.LockoutAttempts = 3
	g.app.LockoutDuration = caddy.Duration(time.Minute)
	g.reconfigure()
	g.addUser("vera", "pw-vera-123")
	if _, err := g.ops.SetPIN("vera", "2468"); err != nil {
		t.Fatal(err)
	}
	tok := g.login("vera", "pw-vera-123").AccessToken

	// Password and PIN failures count on the account the logins use.
	expectRefused(t, g, checkSecret(g, "check_password", tok, `{"password":"wrong-1"}`), 401, "invalid_credentials")
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"0000"}`), 401, "invalid_credentials")
	expectRefused(t, g, checkSecret(g, "check_password", tok, `{"password":"wrong-3"}`), 401, "invalid_credentials")

	w := g.do(jsonRequest("POST", "/rest/login", `{"username":"vera","password":"pw-vera-123"}`))
	expectRefused(t, g, w, 403, "locked")
	if ra := w.Header().Get("Retry-After"); ra != "60" {
		t.Errorf("login Retry-After %q, want 60", ra)
	}
	clk.advance(20 * time.Second)
	w = checkSecret(g, "check_password", tok, `{"password":"pw-vera-123"}`)
	expectRefused(t, g, w, 403, "locked")
	if ra := w.Header().Get("Retry-After"); ra != "40" {
		t.Errorf("check_password Retry-After %q, want 40", ra)
	}
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"2468"}`), 403, "locked")
	// The lock guards secrets, not the session: the token still passes.
	if w := g.do(bearer("GET", "/app", tok)); w.Code != 200 {
		t.Errorf("GET with the token while locked: %d", w.Code)
	}

	clk.advance(40 * time.Second)
	g.login("vera", "pw-vera-123")
	expectValid(t, checkSecret(g, "check_pin", tok, `{"pin":"2468"}`))
}

// session_limits reports the limit and the live sessions; a login past the
// limit ends the oldest session, whose token is refused on the next request.
func TestSessionLimits(t *testing.T) {
	g := newGateway(t, nil)
	nia := g.addUser("nia", "pw-nia-123")
	g.app.SessionLimit = 2
	g.reconfigure()
	limits := func(token string) (int, int) {
		t.Helper()
		w := g.do(bearer("GET", "/rest/session_limits", token))
		if w.Code != 200 {
			t.Fatalf("session_limits: %d %s", w.Code, w.Body)
		}
		var body struct{ Limit, Active int }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return body.Limit, body.Active
	}
	first := g.login("nia", "pw-nia-123")
	if l, a := limits(first.AccessToken); l != 2 || a != 1 {
		t.Fatalf("limits %d/%d, want 2/1", l, a)
	}
	second := g.login("nia", "pw-nia-123")
	g.waitCache()
	third := g.login("nia", "pw-nia-123")
	if l, a := limits(third.AccessToken); l != 2 || a != 2 {
		t.Fatalf("limits %d/%d after three logins, want 2/2", l, a)
	}
	expectRefused(t, g, g.do(bearer("GET", "/app", first.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.refresh(first.RefreshToken), 401, "invalid_grant")
	if w := g.do(bearer("GET", "/app", second.AccessToken)); w.Code != 200 {
		t.Fatalf("second session: %d", w.Code)
	}

	// A user's own limit overrides the gateway's.
	if _, err := g.app.store.UpdateUser(nia.ID, func(u *store.User) error { u.SessionLimit = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	if l, _ := limits(third.AccessToken); l != 5 {
		t.Fatalf("limit %d after the user's override, want 5", l)
	}

	// API keys have no session: 400; no credential: 401.
	k := g.addKey("nia", "read")
	expectRefused(t, g, g.do(withKey("GET", "/rest/session_limits", k.Key)), 400, "invalid_request")
	expectRefused(t, g, g.do(httptest.NewRequest("GET", "/rest/session_limits", nil)), 401, "unauthorized")
}

// A quick_login session rests on its key: revoking the key, or its expiry,
// refuses the session's access tokens on the next request, cached or not,
// and its refresh tokens too.
func TestQuickLoginEndsWithItsKey(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("oli", "pw-oli-123")
	revoked := g.addKey("oli", "read")
	tb := decodeTokens(t, quickLogin(g, revoked.ID, revoked.ClientSecret))
	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Fatalf("quick_login token: %d", w.Code)
	}
	g.waitCache()
	if err := g.ops.RevokeKey(revoked.ID); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.refresh(tb.RefreshToken), 401, "invalid_grant")

	expiring, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "oli", Name: "short", Permissions: "read", ExpiresIn: admin.Duration(time.Hour), ClientSecret: true})
	if err != nil {
		t.Fatal(err)
	}
	tb = decodeTokens(t, quickLogin(g, expiring.ID, expiring.ClientSecret))
	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Fatalf("quick_login token: %d", w.Code)
	}
	g.waitCache()
	later := time.Now().Add(time.Hour + time.Minute)
	g.app.now = func() time.Time { return later }
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.refresh(tb.RefreshToken), 401, "invalid_grant")
}
