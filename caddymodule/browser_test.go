package caddymodule

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A gateway with the browser login under /auth, in front of an app that
// has its own cookie; requests are made as a browser on an HTTPS site.
func newBrowserGateway(t *testing.T, edit ...func(*BrowserConfig)) *gateway {
	t.Helper()
	c := &BrowserConfig{Prefix: "/auth"}
	for _, e := range edit {
		e(c)
	}
	g := newGateway(t, &Handler{
		APIs:    []APIMount{{Dialect: "plentymarkets", Prefix: "/rest"}},
		Allow:   []string{"/public/*"},
		Browser: c,
	})
	g.addUser("bea", "pw-bea-12345", "staff")
	return g
}

// page is a request a browser makes: over HTTPS to the site, a navigation
// from the site itself, with the cookies given.
func page(method, target string, cookies []*http.Cookie, form url.Values) *http.Request {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "https://legacy.example"+target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "https://legacy.example"+target, nil)
	}
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// cookieOf returns the Set-Cookie of name in w.
func cookieOf(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// loginForm fetches the login page: its CSRF cookie and the form's token.
func (g *gateway) loginForm(rd string) (*http.Cookie, string) {
	g.t.Helper()
	w := g.do(page("GET", "/auth/login?rd="+url.QueryEscape(rd), nil, nil))
	if w.Code != http.StatusOK {
		g.t.Fatalf("login page: %d %s", w.Code, w.Body)
	}
	m := csrfField.FindStringSubmatch(w.Body.String())
	c := cookieOf(w, "__Host-authgate-csrf")
	if m == nil || c == nil || c.Value != m[1] {
		g.t.Fatalf("login page: no CSRF token and matching cookie: %v %v", m, c)
	}
	return c, m[1]
}

// browserLogin signs in through the form and returns the response.
func (g *gateway) browserLogin(user, password, rd string, extra ...*http.Cookie) *httptest.ResponseRecorder {
	g.t.Helper()
	csrf, token := g.loginForm(rd)
	form := url.Values{"username": {user}, "password": {password}, "csrf": {token}, "rd": {rd}}
	return g.do(page("POST", "/auth/login", append([]*http.Cookie{csrf}, extra...), form))
}

// session signs bea in and returns her session cookie.
func (g *gateway) session() *http.Cookie {
	g.t.Helper()
	w := g.browserLogin("bea", "pw-bea-12345", "/")
	c := cookieOf(w, "__Host-authgate")
	if w.Code != http.StatusSeeOther || c == nil {
		g.t.Fatalf("browser login: %d %v %s", w.Code, w.Header(), w.Body)
	}
	return &http.Cookie{Name: c.Name, Value: c.Value}
}

// The walk: a page without a credential goes to the login page with rd;
// signing in lands on it with a __Host- cookie; the app sees who, as a
// session, and only its own cookie; signing out ends it for good.
func TestBrowserLoginWalk(t *testing.T) {
	g := newBrowserGateway(t)

	w := g.do(page("GET", "/orders?page=2", nil, nil))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/auth/login?rd="+url.QueryEscape("/orders?page=2") {
		t.Fatalf("a page without a credential: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	if g.hits != 0 {
		t.Fatal("the upstream was reached without a credential")
	}
	// An API client still gets the JSON 401.
	api := httptest.NewRequest("GET", "/orders", nil)
	api.Header.Set("Accept", "application/json")
	if w := g.do(api); w.Code != http.StatusUnauthorized || refusalOf(t, w, shapeOAuth) != "unauthorized" {
		t.Errorf("an API client without a credential: %d %s", w.Code, w.Body)
	}

	w = g.browserLogin("bea", "pw-bea-12345", "/orders?page=2")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/orders?page=2" {
		t.Fatalf("sign in: %d Location %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	c := cookieOf(w, "__Host-authgate")
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || !strings.HasPrefix(c.Value, "ags_") {
		t.Fatalf("session cookie %+v: want __Host-, HttpOnly, Secure, SameSite=Lax, Path=/", c)
	}
	if csrf := cookieOf(w, "__Host-authgate-csrf"); csrf == nil || csrf.MaxAge >= 0 {
		t.Errorf("the login form's CSRF cookie was not cleared: %+v", csrf)
	}
	session := &http.Cookie{Name: c.Name, Value: c.Value}

	w = g.do(page("GET", "/orders?page=2", []*http.Cookie{session, {Name: "app_sid", Value: "42"}}, nil))
	if w.Code != http.StatusOK || g.seen == nil {
		t.Fatalf("the page with the session: %d %s", w.Code, w.Body)
	}
	if got := g.seen.Header.Get("X-Auth-User"); got != "bea" {
		t.Errorf("X-Auth-User = %q", got)
	}
	if got := g.seen.Header.Get("X-Auth-Method"); got != "session" {
		t.Errorf("X-Auth-Method = %q, want session", got)
	}
	if got := g.seen.Header.Get("Cookie"); got != "app_sid=42" {
		t.Errorf("the upstream's Cookie header = %q, want only the app's cookie", got)
	}
	if v, _ := g.repl.GetString("http.auth.user.method"); v != "session" {
		t.Errorf("{http.auth.user.method} = %q", v)
	}

	// Sign out: a form with its token, then the old cookie is dead.
	w = g.do(page("GET", "/auth/logout", []*http.Cookie{session}, nil))
	m := csrfField.FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil || !strings.Contains(w.Body.String(), "bea") {
		t.Fatalf("sign-out page: %d %s", w.Code, w.Body)
	}
	if w := g.do(page("POST", "/auth/logout", []*http.Cookie{session}, url.Values{"csrf": {"wrong"}})); w.Code != http.StatusForbidden {
		t.Errorf("sign out with a wrong token: %d, want 403", w.Code)
	}
	w = g.do(page("POST", "/auth/logout", []*http.Cookie{session}, url.Values{"csrf": {m[1]}}))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/auth/login" {
		t.Fatalf("sign out: %d %q", w.Code, w.Header().Get("Location"))
	}
	if cleared := cookieOf(w, "__Host-authgate"); cleared == nil || cleared.MaxAge >= 0 {
		t.Errorf("sign out did not clear the cookie: %+v", cleared)
	}
	hits := g.hits
	if w := g.do(page("GET", "/orders", []*http.Cookie{session}, nil)); w.Code != http.StatusSeeOther {
		t.Errorf("the old cookie after sign-out (a page): %d, want the login redirect", w.Code)
	}
	old := httptest.NewRequest("GET", "https://legacy.example/orders", nil)
	old.TLS = &tls.ConnectionState{}
	old.AddCookie(session)
	if w := g.do(old); w.Code != http.StatusUnauthorized || refusalOf(t, w, shapeOAuth) != "invalid_token" {
		t.Errorf("the old cookie after sign-out (an API call): %d %s", w.Code, w.Body)
	}
	if g.hits != hits {
		t.Error("SECURITY: a signed-out cookie reached the upstream")
	}
}

// A wrong password and an unknown user read the same; a lock says when
// to retry.
func TestBrowserLoginFailures(t *testing.T) {
	g := newBrowserGateway(t)
	wrong := g.browserLogin("bea", "not-her-password", "/")
	unknown := g.browserLogin("nobody-at-all", "not-her-password", "/")
	for _, w := range []*httptest.ResponseRecorder{wrong, unknown} {
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "The username or password is wrong.") || cookieOf(w, "__Host-authgate") != nil {
			t.Errorf("a failed login: %d %s", w.Code, w.Body)
		}
	}
	if strip(wrong.Body.String()) != strip(unknown.Body.String()) {
		t.Error("a wrong password and an unknown user give different pages")
	}
	for range 4 {
		g.browserLogin("bea", "not-her-password", "/")
	}
	w := g.browserLogin("bea", "pw-bea-12345", "/")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "Try again in 5 minutes") {
		t.Errorf("the right password on a locked account: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if cookieOf(w, "__Host-authgate") != nil {
		t.Error("SECURITY: a locked account got a session")
	}
}

// strip removes the CSRF token, the one part of two login pages that
// differs by design.
func strip(body string) string { return csrfField.ReplaceAllString(body, "") }

// CSRF and cross-site: a form without the matching token, a login posted
// from another site, and an unsafe request from another site riding the
// cookie are refused; same-site unsafe requests pass.
func TestBrowserCSRF(t *testing.T) {
	g := newBrowserGateway(t)
	csrf, token := g.loginForm("/")
	form := func(tok string) url.Values {
		return url.Values{"username": {"bea"}, "password": {"pw-bea-12345"}, "csrf": {tok}, "rd": {"/"}}
	}
	cases := map[string]*http.Request{
		"no token":          page("POST", "/auth/login", []*http.Cookie{csrf}, form("")),
		"a wrong token":     page("POST", "/auth/login", []*http.Cookie{csrf}, form("agf_forged")),
		"no CSRF cookie":    page("POST", "/auth/login", nil, form(token)),
		"a cross-site post": page("POST", "/auth/login", []*http.Cookie{csrf}, form(token)),
	}
	cases["a cross-site post"].Header.Set("Sec-Fetch-Site", "cross-site")
	for name, r := range cases {
		w := g.do(r)
		if w.Code != http.StatusForbidden || cookieOf(w, "__Host-authgate") != nil {
			t.Errorf("login with %s: %d, session cookie %v; want 403 and none", name, w.Code, cookieOf(w, "__Host-authgate"))
		}
	}

	session := g.session()
	for name, edit := range map[string]func(r *http.Request){
		"Sec-Fetch-Site: cross-site": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"Sec-Fetch-Site: same-site":  func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
		"another Origin": func(r *http.Request) {
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "https://evil.example")
		},
	} {
		hits := g.hits
		r := page("POST", "/orders", []*http.Cookie{session}, url.Values{"qty": {"1"}})
		edit(r)
		if w := g.do(r); w.Code != http.StatusForbidden || g.hits != hits {
			t.Errorf("SECURITY: an unsafe request from another site (%s) riding the cookie: %d", name, w.Code)
		}
	}
	if w := g.do(page("POST", "/orders", []*http.Cookie{session}, url.Values{"qty": {"1"}})); w.Code != http.StatusOK {
		t.Errorf("a same-origin form post with the session: %d %s", w.Code, w.Body)
	}
	cross := page("GET", "/orders", []*http.Cookie{session}, nil)
	cross.Header.Set("Sec-Fetch-Site", "cross-site")
	if w := g.do(cross); w.Code != http.StatusOK {
		t.Errorf("a cross-site link (GET) with the session: %d, want 200 (SameSite=Lax sends it; GET changes nothing)", w.Code)
	}
}

// Open redirects after login: rd that leaves the site lands on "/".
func TestBrowserRedirectTargets(t *testing.T) {
	g := newBrowserGateway(t)
	for _, rd := range []string{"//evil.example", "/\\evil.example", "https:evil.example", "https://evil.example/x", "/%2F%2Fevil.example", "/%5Cevil.example", "\\\\evil.example", "javascript:alert(1)", "/\t/evil.example"} {
		w := g.browserLogin("bea", "pw-bea-12345", rd)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("SECURITY: rd %q led to %q, want /", rd, w.Header().Get("Location"))
		}
	}
	// Reflected input: the page shows rd only escaped, in its attribute.
	w := g.do(page("GET", "/auth/login?rd="+url.QueryEscape(`/x"><script>alert(1)</script>`), nil, nil))
	if strings.Contains(w.Body.String(), "<script") {
		t.Errorf("SECURITY: the login page reflects markup: %s", w.Body)
	}
	if w.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the login page may be framed: %v", w.Header())
	}
}

// Session fixation: a cookie the browser had before signing in (planted by
// an attacker) is replaced by a new one and never becomes a session.
func TestBrowserSessionFixation(t *testing.T) {
	g := newBrowserGateway(t)
	planted := &http.Cookie{Name: "__Host-authgate", Value: "ags_0000000000000000000000000000000000000000000000000"}
	w := g.browserLogin("bea", "pw-bea-12345", "/", planted)
	got := cookieOf(w, "__Host-authgate")
	if got == nil || got.Value == planted.Value {
		t.Fatalf("SECURITY: the login kept the planted cookie: %+v", got)
	}
	hits := g.hits
	if w := g.do(page("GET", "/orders", []*http.Cookie{planted}, nil)); w.Code != http.StatusSeeOther || g.hits != hits {
		t.Errorf("SECURITY: the planted cookie works after the login: %d", w.Code)
	}
	// An attacker's own live session, planted: the victim's login replaces it.
	attacker := g.session()
	w = g.browserLogin("bea", "pw-bea-12345", "/", attacker)
	if got := cookieOf(w, "__Host-authgate"); got == nil || got.Value == attacker.Value {
		t.Errorf("SECURITY: the login adopted the attacker's session cookie")
	}
}

// A session ends after going unused for idle, and at its lifetime however
// much it is used; a revocation by the administrator ends it at once.
func TestBrowserSessionTimeouts(t *testing.T) {
	g := newBrowserGateway(t, func(c *BrowserConfig) {
		c.Idle = caddy.Duration(10 * time.Minute)
		c.Lifetime = caddy.Duration(time.Hour)
	})
	start := time.Now()
	clock := start
	g.app.now = func() time.Time { return clock }
	session := g.session()
	use := func(at time.Duration) int {
		clock = start.Add(at)
		return g.do(page("GET", "/orders", []*http.Cookie{session}, nil)).Code
	}
	// Used every 8 minutes: alive, past the first idle deadline.
	for _, at := range []time.Duration{8, 16, 24, 32, 40, 48, 56} {
		if code := use(at * time.Minute); code != http.StatusOK {
			t.Fatalf("used at +%dm: %d, want 200 (idle 10m, sliding)", at, code)
		}
		g.waitCache()
	}
	if code := use(61 * time.Minute); code != http.StatusSeeOther {
		t.Errorf("past the 1h lifetime: %d, want the login redirect", code)
	}

	clock = start
	idle := g.session()
	session = idle
	if code := use(5 * time.Minute); code != http.StatusOK {
		t.Fatalf("a fresh session: %d", code)
	}
	g.waitCache()
	if code := use(16 * time.Minute); code != http.StatusSeeOther {
		t.Errorf("unused for 11 minutes: %d, want the login redirect", code)
	}
	// Even once the use is written: the idle deadline holds from the store.
	g.app.svc.FlushKeyUsage()

	clock = start
	session = g.session()
	sessions, err := g.ops.ListSessions("bea")
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, s := range sessions {
		if s.Browser && !s.Revoked {
			live++
			if err := g.ops.RevokeSession(s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if live == 0 {
		t.Fatalf("session list shows no live browser session: %+v", sessions)
	}
	if code := use(time.Minute); code != http.StatusSeeOther {
		t.Errorf("after `session revoke`: %d, want the login redirect", code)
	}
}

// Plain http: a loopback site (a developer's machine) gets cookies without
// the __Host- prefix and Secure; any other host is refused a session.
func TestBrowserPlainHTTP(t *testing.T) {
	g := newBrowserGateway(t)
	get := httptest.NewRequest("GET", "http://127.0.0.1:8080/auth/login", nil)
	w := g.do(get)
	csrf := cookieOf(w, "authgate-csrf")
	m := csrfField.FindStringSubmatch(w.Body.String())
	if csrf == nil || csrf.Secure || m == nil {
		t.Fatalf("the login page over plain http on loopback: cookie %+v", csrf)
	}
	post := httptest.NewRequest("POST", "http://127.0.0.1:8080/auth/login", strings.NewReader(url.Values{"username": {"bea"}, "password": {"pw-bea-12345"}, "csrf": {m[1]}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.AddCookie(csrf)
	w = g.do(post)
	if c := cookieOf(w, "authgate"); w.Code != http.StatusSeeOther || c == nil || c.Secure || !c.HttpOnly {
		t.Errorf("sign in on plain-http loopback: %d %+v", w.Code, c)
	}

	remote := httptest.NewRequest("POST", "http://legacy.example/auth/login", strings.NewReader(url.Values{"username": {"bea"}, "password": {"pw-bea-12345"}, "csrf": {m[1]}}.Encode()))
	remote.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	remote.AddCookie(csrf)
	w = g.do(remote)
	if w.Code != http.StatusForbidden || cookieOf(w, "authgate") != nil || !strings.Contains(w.Body.String(), "HTTPS") {
		t.Errorf("SECURITY: sign in over plain http to a remote host: %d %s", w.Code, w.Body)
	}
}
