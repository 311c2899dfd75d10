package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// Refusals below the plentymarkets prefix are the body the plentymarkets
// service writes (API.md section 4), byte for byte, with section 3's status
// and headers; outside the prefix, and on look-alike paths, section 3's.
func TestPlentymarketsRefusalBodies(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("pia", "pw-pia-1234")
	tok := g.login("pia", "pw-pia-1234").AccessToken
	ro := g.addKey("pia", "read")

	const (
		noCred   = `{"error":{"code":401,"message":"a Bearer token or an API key is required","reason":"unauthorized"}}`
		noCred3  = `{"error":"unauthorized","error_description":"a Bearer token or an API key is required"}`
		badToken = `"reason":"invalid_token"}}`
	)
	for _, c := range []struct {
		name      string
		r         *http.Request
		status    int
		body      string // the exact body, or a suffix starting with `"`
		challenge string
	}{
		{"proxied, no credential", httptest.NewRequest("GET", "/rest/items?page=2", nil), 401, noCred, `Bearer realm="authgate"`},
		{"the prefix itself", httptest.NewRequest("GET", "/rest", nil), 401, noCred, `Bearer realm="authgate"`},
		{"proxied, a revoked-looking token", bearer("GET", "/rest/items", "not-a-token"), 401, badToken, `Bearer realm="authgate", error="invalid_token"`},
		{"proxied, a read-only key writing", withKey("POST", "/rest/items", ro.Key), 403,
			`{"error":{"code":403,"message":"the credential does not permit this method","reason":"insufficient_scope"}}`, `Bearer realm="authgate", error="insufficient_scope"`},
		{"own route, no credential", httptest.NewRequest("GET", "/rest/user", nil), 401, noCred, `Bearer realm="authgate"`},
		{"own route, a bad token", bearer("POST", "/rest/logout", "not-a-token"), 401, badToken, `Bearer realm="authgate", error="invalid_token"`},

		{"outside the prefix", httptest.NewRequest("GET", "/app/items", nil), 401, noCred3, `Bearer realm="authgate"`},
		{"a longer name", httptest.NewRequest("GET", "/restx/items", nil), 401, noCred3, `Bearer realm="authgate"`},
		{"an encoded slash", httptest.NewRequest("GET", "/rest%2Fitems", nil), 401, noCred3, `Bearer realm="authgate"`},
		{"dot segments out of it", httptest.NewRequest("GET", "/rest/../app", nil), 401, noCred3, `Bearer realm="authgate"`},
		{"another case", httptest.NewRequest("GET", "/REST/items", nil), 401, noCred3, `Bearer realm="authgate"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := g.do(c.r)
			body := strings.TrimSpace(w.Body.String())
			if w.Code != c.status || !(body == c.body || strings.HasPrefix(c.body, `"`) && strings.HasSuffix(body, c.body)) {
				t.Errorf("got %d %s, want %d %s", w.Code, body, c.status, c.body)
			}
			if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if strings.Contains(body, "not-a-token") || strings.Contains(body, ro.Key) {
				t.Errorf("the body echoes the credential")
			}
			if g.seen != nil {
				t.Errorf("the upstream was reached")
			}
		})
	}

	// Two credentials: 400 in each shape.
	two := bearer("GET", "/rest/items", tok)
	two.Header.Set("X-Api-Key", ro.Key)
	expectRefused(t, g, g.do(two), 400, "invalid_request")
	if g.shapeFor(two) != shapeErrorObj {
		t.Fatalf("the oracle reads %s as %s", two.URL, g.shapeFor(two))
	}
	two = bearer("GET", "/app", tok)
	two.Header.Set("X-Api-Key", ro.Key)
	expectRefused(t, g, g.do(two), 400, "invalid_request")
}

// Each plentymarkets route has one refusal shape: the login routes the
// OAuth one with message, the Bearer routes the error object, whatever the
// refusal (credential, method, input, secret).
func TestPlentymarketsRouteShapes(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("rue", "pw-rue-1234")
	tok := g.login("rue", "pw-rue-1234").AccessToken
	k := g.addKey("rue", "read")

	for _, c := range []struct {
		r      *http.Request
		status int
		code   string
		shape  string
	}{
		{jsonRequest("POST", "/rest/login", `{"username":"rue","password":"wrong"}`), 401, "invalid_credentials", shapeLogin},
		{jsonRequest("POST", "/rest/login", `{"username":"rue"}`), 400, "invalid_request", shapeLogin},
		{httptest.NewRequest("GET", "/rest/login", nil), 405, "invalid_request", shapeLogin},
		{jsonRequest("POST", "/rest/login/refresh", `{"refresh_token":"spent"}`), 401, "invalid_grant", shapeLogin},
		{formRequest("/rest/quick_login", url.Values{"client_id": {k.ID}, "client_secret": {"agcs_wrong"}}), 401, "invalid_client", shapeLogin},
		{httptest.NewRequest("POST", "/rest/logout", nil), 401, "unauthorized", shapeErrorObj},
		{withKey("POST", "/rest/logout", k.Key), 400, "invalid_request", shapeErrorObj},
		{bearer("GET", "/rest/logout", tok), 405, "invalid_request", shapeErrorObj},
		{bearer("GET", "/rest/user", "not-a-token"), 401, "invalid_token", shapeErrorObj},
		{withKey("GET", "/rest/session_limits", k.Key), 400, "invalid_request", shapeErrorObj},
		{checkSecretRequest("check_password", tok, `{"password":"wrong"}`), 401, "invalid_credentials", shapeErrorObj},
		{checkSecretRequest("check_pin", tok, `{}`), 400, "invalid_request", shapeErrorObj},
		{checkSecretRequest("check_pin", "not-a-token", `{"pin":"1"}`), 401, "invalid_token", shapeErrorObj},
	} {
		t.Run(c.r.Method+" "+c.r.URL.Path, func(t *testing.T) {
			if got := g.shapeFor(c.r); got != c.shape {
				t.Fatalf("the oracle reads it as %s, want %s", got, c.shape)
			}
			w := g.do(c.r)
			expectRefused(t, g, w, c.status, c.code)
		})
	}
}

func checkSecretRequest(route, token, body string) *http.Request {
	r := jsonRequest("POST", "/rest/"+route, body)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// A locked account is 403 with Retry-After on every plentymarkets route
// that checks a secret (clients read 429 as throttling and retry forever),
// in the route's shape; the Babel dialect keeps its 429.
func TestPlentymarketsLockIs403(t *testing.T) {
	g := newGateway(t, &Handler{APIs: []APIMount{{Dialect: "plentymarkets", Prefix: "/rest"}, {Dialect: "babel", Prefix: "/v1/auth"}}})
	clk := useClock(g)
	g.app.LockoutAttempts = 2
	g.app.LockoutDuration = caddy.Duration(time.Minute)
	g.reconfigure()
	g.addUser("lou", "pw-lou-1234")
	tok := g.login("lou", "pw-lou-1234").AccessToken
	for range 2 {
		expectRefused(t, g, g.do(formRequest("/rest/login?username=lou&password=wrong", nil)), 401, "invalid_credentials")
	}
	for _, r := range []*http.Request{
		formRequest("/rest/login?username=lou&password=pw-lou-1234", nil),
		checkSecretRequest("check_password", tok, `{"password":"pw-lou-1234"}`),
		checkSecretRequest("check_pin", tok, `{"pin":"1234"}`),
	} {
		w := g.do(r)
		expectRefused(t, g, w, 403, "locked")
		if ra := w.Header().Get("Retry-After"); ra != "60" {
			t.Errorf("%s: Retry-After %q, want 60", r.URL.Path, ra)
		}
		if strings.Contains(w.Body.String(), "pw-lou-1234") {
			t.Errorf("%s: the body echoes the password", r.URL.Path)
		}
	}
	if w := g.do(jsonRequest("POST", "/v1/auth/login", `{"username":"lou","password":"pw-lou-1234"}`)); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("Babel login while locked: %d (Retry-After %q), want its 429", w.Code, w.Header().Get("Retry-After"))
	}
	clk.advance(time.Minute)
	g.login("lou", "pw-lou-1234")
}

// The shape follows the mount: another prefix, no plentymarkets mount, and
// a store failure (503) below and outside the prefix.
func TestPlentymarketsShapeFollowsTheMount(t *testing.T) {
	g := newGateway(t, &Handler{APIs: []APIMount{{Dialect: "plentymarkets", Prefix: "/pm"}, {Dialect: "babel", Prefix: "/rest"}}})
	g.h.logger = zap.NewNop()
	g.addUser("moe", "pw-moe-1234")
	k := g.addKey("moe", "read")
	for _, p := range []string{"/pm", "/pm/items", "/pm//items", "/pm/a%2Fb", "/rest/items", "/pmx", "/app"} {
		expectRefused(t, g, g.do(httptest.NewRequest("GET", p, nil)), 401, "unauthorized")
	}
	if s := g.shapeFor(httptest.NewRequest("GET", "/pm/items", nil)); s != shapeErrorObj {
		t.Errorf("the oracle reads /pm/items as %s", s)
	}

	if err := g.app.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/pm/items", "/app"} {
		w := g.do(withKey("GET", p, k.Key))
		expectRefused(t, g, w, 503, "temporarily_unavailable")
		if w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s: WWW-Authenticate on a 503", p)
		}
	}
}

func TestPrefixesCover(t *testing.T) {
	for _, c := range []struct {
		ps   prefixes
		path string
		want bool
	}{
		{prefixes{"/rest"}, "/rest", true},
		{prefixes{"/rest"}, "/rest/", true},
		{prefixes{"/rest"}, "/rest/items/1", true},
		{prefixes{"/rest"}, "/rest/a%2Fb", true},
		{prefixes{"/rest"}, "/rest%2Fitems", false},
		{prefixes{"/rest"}, "/restx", false},
		{prefixes{"/rest"}, "/rest/%2e%2e/app", false},
		{prefixes{"/rest"}, "/app", false},
		{prefixes{"/a", "/rest"}, "/rest/x", true},
		{prefixes{""}, "/anything", true}, // a dialect mounted at the root
		{nil, "/rest", false},
	} {
		u, err := url.Parse(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ps.cover(u); got != c.want {
			t.Errorf("%q cover %q = %v, want %v", c.ps, c.path, got, c.want)
		}
	}
}
