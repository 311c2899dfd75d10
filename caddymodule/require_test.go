package caddymodule

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The rules of API.md section 2's example, on the default test mounts.
func requireGateway(t *testing.T, rules ...RequireRule) *gateway {
	t.Helper()
	if rules == nil {
		rules = []RequireRule{
			{Paths: []string{"/admin/*"}, Roles: []string{"admin"}},
			{Paths: []string{"/reports/*"}, Roles: []string{"admin", "auditor"}, Methods: []string{"GET", "HEAD"}},
		}
	}
	return newGateway(t, &Handler{
		APIs:    []APIMount{{Dialect: "plentymarkets", Prefix: "/rest"}},
		Allow:   []string{"/health", "/public/*"},
		Require: rules,
	})
}

// descriptionOf is a section 3 refusal's error_description.
func descriptionOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return body.Description
}

// Every kind of credential against the two rules: who gets through is
// written out by hand from the contract.
func TestRequireByCredential(t *testing.T) {
	g := requireGateway(t)
	g.addUser("alice", "pw-alice-123", "admin")
	g.addUser("audrey", "pw-audrey-123", "auditor")
	g.addUser("bob", "pw-bob-1234")
	g.addUser("carl", "pw-carl-1234", "ops", "admin") // the role is not the first
	g.addUser("adam", "pw-adam-1234", "administrator", "Admin")
	alice := g.login("alice", "pw-alice-123").AccessToken
	audrey := g.login("audrey", "pw-audrey-123").AccessToken
	bob := g.login("bob", "pw-bob-1234").AccessToken
	carl := g.login("carl", "pw-carl-1234").AccessToken
	adam := g.login("adam", "pw-adam-1234").AccessToken
	aliceRead := g.addKey("alice", "read")
	aliceAll := g.addKey("alice", "all")
	bobAll := g.addKey("bob", "all")
	audreyAll := g.addKey("audrey", "all")
	audreyRead := g.addKey("audrey", "read")
	aliceQuick := decodeTokens(t, quickLogin(g, aliceRead.ID, aliceRead.ClientSecret)).AccessToken
	bobQuick := decodeTokens(t, quickLogin(g, bobAll.ID, bobAll.ClientSecret)).AccessToken

	const (
		role   = "the user has none of the roles this path requires"
		method = "this path does not permit this method"
		perm   = "the credential does not permit this method" // the key's own permissions
	)
	type cred struct{ kind, value string }
	tok := func(s string) cred { return cred{"bearer", s} }
	key := func(s string) cred { return cred{"key", s} }
	cases := []struct {
		name         string
		cred         cred
		method, path string
		status       int
		description  string // of a 403
	}{
		{"no credential", cred{}, "GET", "/admin/x", 401, ""},
		{"bad token", tok("not-a-token"), "GET", "/admin/x", 401, ""},
		{"bad key", key("ag_nonsense"), "GET", "/admin/x", 401, ""},
		{"allowed path", cred{}, "GET", "/public/x", 200, ""},

		{"admin bearer", tok(alice), "GET", "/admin/x", 200, ""},
		{"admin bearer POST", tok(alice), "POST", "/admin/x", 200, ""},
		{"admin bearer reports", tok(alice), "GET", "/reports/q1", 200, ""},
		{"admin bearer reports HEAD", tok(alice), "HEAD", "/reports/q1", 200, ""},
		{"admin bearer reports POST", tok(alice), "POST", "/reports/q1", 403, method},
		{"admin bearer reports OPTIONS", tok(alice), "OPTIONS", "/reports/q1", 403, method},
		{"admin bearer reports lower-case get", tok(alice), "get", "/reports/q1", 403, method},
		{"role not first", tok(carl), "GET", "/admin/x", 200, ""},
		{"roles match whole and by case", tok(adam), "GET", "/admin/x", 403, role},
		{"auditor bearer admin", tok(audrey), "GET", "/admin/x", 403, role},
		{"auditor bearer reports", tok(audrey), "GET", "/reports/q1", 200, ""},
		{"auditor bearer reports PUT", tok(audrey), "PUT", "/reports/q1", 403, method},
		{"no-role bearer admin", tok(bob), "GET", "/admin/x", 403, role},
		{"no-role bearer reports", tok(bob), "GET", "/reports/q1", 403, role},
		{"no-role bearer elsewhere", tok(bob), "DELETE", "/app/x", 200, ""},
		{"no-role bearer upper case", tok(bob), "GET", "/ADMIN/X", 403, role},
		// Caddy's path matcher: /admin/* covers /admin/ and below, not /admin.
		{"no-role bearer bare prefix", tok(bob), "GET", "/admin", 200, ""},
		{"no-role bearer trailing slash", tok(bob), "GET", "/admin/", 403, role},

		{"admin's read key", key(aliceRead.Key), "GET", "/admin/x", 200, ""},
		{"admin's read key POST", key(aliceRead.Key), "POST", "/admin/x", 403, perm},
		{"admin's all key POST", key(aliceAll.Key), "POST", "/admin/x", 200, ""},
		{"admin's all key reports DELETE", key(aliceAll.Key), "DELETE", "/reports/q1", 403, method},
		{"no-role owner's all key", key(bobAll.Key), "GET", "/admin/x", 403, role},
		{"auditor's all key reports", key(audreyAll.Key), "GET", "/reports/q1", 200, ""},
		{"auditor's all key reports DELETE", key(audreyAll.Key), "DELETE", "/reports/q1", 403, method},
		{"auditor's read key reports POST", key(audreyRead.Key), "POST", "/reports/q1", 403, perm},
		{"auditor's all key admin", key(audreyAll.Key), "GET", "/admin/x", 403, role},

		{"admin's quick_login", tok(aliceQuick), "GET", "/admin/x", 200, ""},
		{"admin's quick_login POST", tok(aliceQuick), "POST", "/admin/x", 403, perm},
		{"no-role owner's quick_login", tok(bobQuick), "GET", "/admin/x", 403, role},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for pass := range 2 { // resolved, then cached
				r := httptest.NewRequest(c.method, c.path, nil)
				switch c.cred.kind {
				case "bearer":
					r.Header.Set("Authorization", "Bearer "+c.cred.value)
				case "key":
					r.Header.Set("X-Api-Key", c.cred.value)
				}
				w := g.do(r)
				switch c.status {
				case 200:
					if w.Code != 200 || g.seen == nil {
						t.Fatalf("pass %d: status %d, want 200 (%s)", pass, w.Code, w.Body)
					}
				case 401:
					code := "unauthorized"
					if c.cred.kind != "" {
						code = "invalid_token"
					}
					expectRefused(t, g, w, 401, code)
				case 403:
					expectRefused(t, g, w, 403, "insufficient_scope")
					if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate", error="insufficient_scope"` {
						t.Errorf("WWW-Authenticate %q", got)
					}
					if got := descriptionOf(t, w); got != c.description {
						t.Errorf("error_description %q, want %q", got, c.description)
					}
				}
				g.waitCache()
			}
		})
	}
}

// A methods rule covers every method the request names: the override
// headers, and _method in the query and in form and JSON bodies, for a
// Bearer token (whose own method is never restricted) and for keys.
func TestRequireMethodOverrides(t *testing.T) {
	g := requireGateway(t)
	g.addUser("audrey", "pw-audrey-123", "auditor")
	audrey := "Bearer " + g.login("audrey", "pw-audrey-123").AccessToken
	all := g.addKey("audrey", "all")
	read := g.addKey("audrey", "read")
	var got []byte
	g.next = func(r *http.Request) { got, _ = io.ReadAll(r.Body) }

	const override = "this path does not permit a method the request names in a method override"
	type req struct {
		name         string
		header, cred string
		target       string
		hdr          map[string]string
		ctype, body  string
		status       int
		description  string
	}
	var cases []req
	for _, c := range []struct{ header, cred string }{{"Authorization", audrey}, {"X-Api-Key", all.Key}, {"X-Api-Key", read.Key}} {
		cases = append(cases,
			req{"header DELETE", c.header, c.cred, "/reports/q1", map[string]string{"X-Http-Method-Override": "DELETE"}, "", "", 403, override},
			req{"header HEAD", c.header, c.cred, "/reports/q1", map[string]string{"X-Http-Method-Override": "head"}, "", "", 200, ""},
			req{"X-Method-Override PUT", c.header, c.cred, "/reports/q1", map[string]string{"X-Method-Override": "PUT"}, "", "", 403, override},
			req{"query DELETE", c.header, c.cred, "/reports/q1?_method=DELETE", nil, "", "", 403, override},
			req{"query escaped", c.header, c.cred, "/reports/q1?%5Fmethod=delete", nil, "", "", 403, override},
			req{"query GET", c.header, c.cred, "/reports/q1?_method=get", nil, "", "", 200, ""},
			req{"form PUT", c.header, c.cred, "/reports/q1", nil, "application/x-www-form-urlencoded", "a=1&_method=PUT", 403, override},
			req{"json PATCH", c.header, c.cred, "/reports/q1", nil, "application/json", `{"a":1,"_method":"PATCH"}`, 403, override},
			req{"json HEAD", c.header, c.cred, "/reports/q1", nil, "application/json", `{"a":1,"_method":"HEAD"}`, 200, ""},
			req{"form without override", c.header, c.cred, "/reports/q1", nil, "application/x-www-form-urlencoded", "a=1&b=2", 200, ""},
			// Outside the rule the user's token may name anything.
			req{"elsewhere", c.header, c.cred, "/app/x?_method=DELETE", nil, "", "", 200, ""},
		)
	}
	for _, c := range cases {
		if c.cred != audrey && c.name == "elsewhere" {
			continue // the keys' own permissions decide there
		}
		who := "bearer"
		if c.cred == all.Key {
			who = "all key"
		} else if c.cred == read.Key {
			who = "read key"
		}
		t.Run(who+"/"+c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			r := httptest.NewRequest("GET", c.target, body)
			r.Header.Set(c.header, c.cred)
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			got = nil
			w := g.do(r)
			if c.status == 200 {
				if w.Code != 200 || string(got) != c.body {
					t.Fatalf("status %d, upstream body %q; want 200 and %q (%s)", w.Code, got, c.body, w.Body)
				}
				return
			}
			expectRefused(t, g, w, 403, "insufficient_scope")
			// A read key is refused by its own permissions first; either
			// way the upstream is not reached.
			if d := descriptionOf(t, w); c.cred != read.Key && d != c.description {
				t.Errorf("error_description %q, want %q", d, c.description)
			}
		})
	}

	// A body the rule cannot check as the upstream reads it is refused
	// for a Bearer token too, as it is for a restricted key.
	r := httptest.NewRequest("GET", "/reports/q1", strings.NewReader("a=1"))
	r.Header.Set("Authorization", audrey)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Content-Encoding", "gzip")
	expectRefused(t, g, g.do(r), 415, "invalid_request")
}

// Where several rules match, each must hold.
func TestRequireSeveralRules(t *testing.T) {
	g := requireGateway(t,
		RequireRule{Paths: []string{"/a/*"}, Roles: []string{"x"}},
		RequireRule{Paths: []string{"/a/b/*", "/z"}, Roles: []string{"y"}},
		RequireRule{Paths: []string{"/A/B/C/*"}, Methods: []string{"get", "POST"}}, // patterns and methods in any case
	)
	g.addUser("xonly", "pw-xonly-123", "x")
	g.addUser("xy", "pw-xy-1234", "x", "y")
	xonly := g.login("xonly", "pw-xonly-123").AccessToken
	xy := g.login("xy", "pw-xy-1234").AccessToken
	for _, c := range []struct {
		token, method, path string
		status              int
	}{
		{xonly, "GET", "/a/1", 200},
		{xonly, "GET", "/a/b/1", 403},
		{xonly, "GET", "/z", 403},
		{xy, "GET", "/a/b/1", 200},
		{xy, "GET", "/z", 200},
		{xy, "GET", "/a/b/c/1", 200},
		{xy, "POST", "/a/b/c/1", 200},
		{xy, "PUT", "/a/b/c/1", 403},
		{xonly, "GET", "/a/b/c/1", 403},
	} {
		w := g.do(bearer(c.method, c.path, c.token))
		if c.status == 200 && (w.Code != 200 || g.seen == nil) {
			t.Errorf("%s %s: %d, want 200 (%s)", c.method, c.path, w.Code, w.Body)
		}
		if c.status == 403 {
			expectRefused(t, g, w, 403, "insufficient_scope")
		}
	}
}

// A path that is not canonical is judged by every rule (require.go): it
// escapes none. Under the rules of the example, a user without a role
// reaches none of these, an auditor none (the admin rule applies too), and
// an admin every one with GET (both rules hold) but none with POST (the
// reports rule's methods apply too).
func TestRequirePathTricks(t *testing.T) {
	g := requireGateway(t)
	g.addUser("alice", "pw-alice-123", "admin")
	g.addUser("audrey", "pw-audrey-123", "auditor")
	g.addUser("bob", "pw-bob-1234")
	alice := g.login("alice", "pw-alice-123").AccessToken
	audrey := g.login("audrey", "pw-audrey-123").AccessToken
	bob := g.login("bob", "pw-bob-1234").AccessToken
	const allRules = "the path is not in canonical form, so every require rule applies to it, and "

	for _, c := range []struct {
		target    string
		canonical bool
	}{
		{"/admin%2F..", false},
		{"/admin%2f..%2fx", false},
		{"/ADMIN/x", true},
		{"/admin;x", false},
		{"/admin/x;jsessionid=1", false},
		{"//admin/x", false},
		{"/public/../admin/x", false},
		{"/admin/./x", false},
		{"/%61dmin/x", true},
		{"/%2561dmin/x", false},
		{"/admin\\x", false},
		{"/reports/%2e%2e/admin/x", false},
		{"/app;x", false}, // under no rule's patterns, but not canonical
	} {
		t.Run(c.target, func(t *testing.T) {
			send := func(token, method string) *httptest.ResponseRecorder {
				u, err := url.ParseRequestURI(c.target) // as the server parses a request-target
				if err != nil {
					t.Fatal(err)
				}
				r := httptest.NewRequest(method, "/", nil)
				r.URL, r.RequestURI = u, c.target
				r.Header.Set("Authorization", "Bearer "+token)
				return g.do(r)
			}
			w := send(bob, "GET")
			expectRefused(t, g, w, 403, "insufficient_scope")
			if d := descriptionOf(t, w); strings.HasPrefix(d, allRules) == c.canonical {
				t.Errorf("canonical %v, but error_description %q", c.canonical, d)
			}
			if c.canonical {
				return
			}
			expectRefused(t, g, send(audrey, "GET"), 403, "insufficient_scope")
			if w := send(alice, "GET"); w.Code != 200 || g.seen == nil {
				t.Errorf("admin GET: %d, want 200 (every rule holds) (%s)", w.Code, w.Body)
			}
			w = send(alice, "POST")
			expectRefused(t, g, w, 403, "insufficient_scope")
			if d := descriptionOf(t, w); !strings.HasPrefix(d, allRules) {
				t.Errorf("admin POST: error_description %q", d)
			}
		})
	}
	// Canonical paths elsewhere meet no rule.
	if w := g.do(bearer("POST", "/app/x", bob)); w.Code != 200 {
		t.Errorf("POST /app/x: %d", w.Code)
	}
}

// Without rules, the same tricks reach the upstream with a credential, as
// before; and the check costs nothing.
func TestRequireNoRulesNoCost(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("bob", "pw-bob-1234")
	bob := g.login("bob", "pw-bob-1234").AccessToken
	if w := g.do(bearer("GET", "/admin;x", bob)); w.Code != 200 {
		t.Errorf("/admin;x without rules: %d", w.Code)
	}
	r := httptest.NewRequest("GET", "/admin/x?_method=DELETE", nil)
	rules := g.h.require
	allocs := testing.AllocsPerRun(100, func() {
		if done, err := rules.check(r, nil); done != nil || err != nil {
			t.Fatal("a check without rules refused")
		}
	})
	if allocs != 0 {
		t.Errorf("check without rules allocates %v times", allocs)
	}
}

// What setup refuses: rules without a condition or a pattern, and a
// require pattern that can match a path an allow pattern matches.
func TestRequireConfigErrors(t *testing.T) {
	g := newGateway(t, nil)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	setup := func(allow []string, rules ...RequireRule) error {
		return (&Handler{Allow: allow, Require: rules}).setup(ctx, g.app)
	}
	admin := []string{"admin"}
	for _, c := range []struct {
		name  string
		allow []string
		rule  RequireRule
		ok    bool
	}{
		{"no condition", nil, RequireRule{Paths: []string{"/admin/*"}}, false},
		{"no pattern", nil, RequireRule{Roles: admin}, false},
		{"relative pattern", nil, RequireRule{Paths: []string{"admin/*"}, Roles: admin}, false},
		{"empty role", nil, RequireRule{Paths: []string{"/admin/*"}, Roles: []string{""}}, false},
		{"comma role", nil, RequireRule{Paths: []string{"/admin/*"}, Roles: []string{"a,b"}}, false},
		{"bad method", nil, RequireRule{Paths: []string{"/admin/*"}, Methods: []string{"GET HEAD"}}, false},
		{"disjoint", []string{"/health", "/public/*"}, RequireRule{Paths: []string{"/admin/*", "/publicity"}, Roles: admin}, true},
		{"inside an allowed prefix", []string{"/public/*"}, RequireRule{Paths: []string{"/public/admin/*"}, Roles: admin}, false},
		{"around an allowed path", []string{"/admin/login"}, RequireRule{Paths: []string{"/admin/*"}, Roles: admin}, false},
		{"the same path", []string{"/health"}, RequireRule{Paths: []string{"/Health"}, Roles: admin}, false},
		{"everything", []string{"/health"}, RequireRule{Paths: []string{"*"}, Roles: admin}, false},
		{"allow everything", []string{"*"}, RequireRule{Paths: []string{"/admin/*"}, Roles: admin}, false},
		{"a suffix allow", []string{"*.css"}, RequireRule{Paths: []string{"/admin/*"}, Roles: admin}, false},
		{"prefixes that share", []string{"/pub*"}, RequireRule{Paths: []string{"/public/x"}, Roles: admin}, false},
		{"a placeholder", []string{"/{http.request.host}/*"}, RequireRule{Paths: []string{"/admin/*"}, Roles: admin}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := setup(c.allow, c.rule)
			if (err == nil) != c.ok {
				t.Errorf("setup error %v, want ok %v", err, c.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "authgate: ") {
				t.Errorf("error %q does not start with authgate:", err)
			}
		})
	}
	h := &Handler{Require: []RequireRule{{Paths: []string{"/x/*"}, Methods: []string{"get", "Head"}}}}
	if err := h.setup(ctx, g.app); err != nil || strings.Join(h.Require[0].Methods, " ") != "GET HEAD" {
		t.Errorf("methods %q (%v), want them upper-cased", h.Require[0].Methods, err)
	}
}

// patternsMayOverlap never says no where a path matches both patterns.
func TestRequireOverlapIsSound(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	patterns := []string{
		"*", "/health", "/Health", "/health/", "/public/*", "/pub*", "/public/a", "/admin/*", "/admin",
		"*.css", "/a?c", "/x[yz]/*", "/docs/*.html", "*/robots", "/%61dmin/*", "/{http.request.host}/*",
		"/caf\u00e9/*", "/\u212aelvin",
	}
	paths := []string{
		"/", "/health", "/HEALTH", "/health/", "/public/a", "/public/", "/pub", "/publicity", "/admin",
		"/admin/x", "/admin/x.css", "/abc", "/xy/1", "/docs/a.html", "/a/robots", "/caf\u00e9/x", "/kelvin",
		"/example.com/x",
	}
	match := func(pattern, p string) bool {
		m := caddyMatcher(t, ctx, pattern)
		r := httptest.NewRequest("GET", "http://example.com"+escapePathForTest(p), nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		return m.Match(r)
	}
	for _, a := range patterns {
		for _, b := range patterns {
			for _, p := range paths {
				if match(a, p) && match(b, p) && !patternsMayOverlap(caddyMatcher(t, ctx, a)[0], caddyMatcher(t, ctx, b)[0]) {
					t.Errorf("%q and %q both match %q, but patternsMayOverlap says no", a, b, p)
				}
			}
		}
	}
}

func caddyMatcher(t *testing.T, ctx caddy.Context, pattern string) caddyhttp.MatchPath {
	t.Helper()
	m := caddyhttp.MatchPath{pattern}
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}
