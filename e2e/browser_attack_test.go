package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The browser login attacked through the built binary, over plain http to
// 127.0.0.1 (a loopback site: the cookies are named authgate and
// authgate-csrf, without Secure). The real-browser walk is in
// browser_walk_test.go; these are the requests an attacker writes by hand.

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browserForm fetches the login page and returns its CSRF cookie and token.
func browserForm(t *testing.T, g *Gateway) (cookie, token string) {
	t.Helper()
	r := g.Do(t, "GET", "/auth/login", nil, H{{"Sec-Fetch-Mode", "navigate"}})
	m := csrfInput.FindStringSubmatch(string(r.Body))
	c := setCookie(r, "authgate-csrf")
	if r.Status != http.StatusOK || m == nil || c == nil {
		t.Fatalf("login page: %d, token %v, cookie %v", r.Status, m != nil, c)
	}
	return c.Value, m[1]
}

func setCookie(r Resp, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// postLogin posts the login form with the given cookies and headers.
func postLogin(t *testing.T, g *Gateway, form url.Values, cookies string, hdr H) Resp {
	t.Helper()
	h := H{{"Content-Type", "application/x-www-form-urlencoded"}, {"Sec-Fetch-Mode", "navigate"}}
	if len(hdr) == 0 {
		h = append(h, [2]string{"Sec-Fetch-Site", "same-origin"}) // else the test says where it came from
	}
	if cookies != "" {
		h = append(h, [2]string{"Cookie", cookies})
	}
	return g.Do(t, "POST", "/auth/login", strings.NewReader(form.Encode()), append(h, hdr...))
}

func TestBrowserAttacks(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	g.HandlerExtra = "\t\tbrowser /auth"
	g.WriteConfig("Caddyfile", "")
	g.AddUser(t, "wendy", "wendy-pass-1234", "staff", "")
	g.Start(t)

	login := func(rd string, extraCookie string) Resp {
		t.Helper()
		csrf, token := browserForm(t, g)
		cookies := "authgate-csrf=" + csrf
		if extraCookie != "" {
			cookies += "; " + extraCookie
		}
		return postLogin(t, g, url.Values{"username": {"wendy"}, "password": {"wendy-pass-1234"}, "csrf": {token}, "rd": {rd}}, cookies, nil)
	}

	// Open redirects: every payload lands on /.
	for _, rd := range []string{
		"//evil.example", "/\\evil.example", "https:evil.example", "https://evil.example/", "http:/evil.example",
		"/%2F%2Fevil.example", "/%2f/evil.example", "/%5Cevil.example", "%2F%2Fevil.example", "/%252F%252Fevil.example",
		"\\\\evil.example", "/\t/evil.example", "javascript:alert(document.cookie)", "//evil.example@legacy/", "/ //evil.example", "/\r\n//evil.example",
	} {
		r := login(rd, "")
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Errorf("SECURITY: rd %q: %d Location %q, want 303 to /", rd, r.Status, r.Header.Get("Location"))
		}
	}
	ok := login("/app/orders?page=3", "")
	session := setCookie(ok, "authgate")
	if ok.Status != http.StatusSeeOther || ok.Header.Get("Location") != "/app/orders?page=3" || session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Fatalf("a good login: %d %q cookie %+v", ok.Status, ok.Header.Get("Location"), session)
	}
	secret(session.Value)

	// CSRF: no token, a wrong one, a token without its cookie, a login
	// form posted from another site.
	csrf, token := browserForm(t, g)
	good := url.Values{"username": {"wendy"}, "password": {"wendy-pass-1234"}, "csrf": {token}, "rd": {"/"}}
	for name, r := range map[string]Resp{
		"no token":               postLogin(t, g, url.Values{"username": {"wendy"}, "password": {"wendy-pass-1234"}}, "authgate-csrf="+csrf, nil),
		"a wrong token":          postLogin(t, g, url.Values{"username": {"wendy"}, "password": {"wendy-pass-1234"}, "csrf": {"agf_x"}}, "authgate-csrf="+csrf, nil),
		"a token without cookie": postLogin(t, g, good, "", nil),
		"a cross-site post":      postLogin(t, g, good, "authgate-csrf="+csrf, H{{"Sec-Fetch-Site", "cross-site"}}),
		"another Origin":         postLogin(t, g, good, "authgate-csrf="+csrf, H{{"Origin", "http://evil.example"}}),
	} {
		if r.Status != http.StatusForbidden || setCookie(r, "authgate") != nil {
			t.Errorf("SECURITY: login with %s: %d, session %v; want 403 and none", name, r.Status, setCookie(r, "authgate") != nil)
		}
	}

	// A cross-site form riding the cookie never reaches the app.
	mark := up.Mark()
	for name, hdr := range map[string]H{
		"Sec-Fetch-Site cross-site": {{"Sec-Fetch-Site", "cross-site"}},
		"Origin of another site":    {{"Origin", "http://evil.example"}},
	} {
		r := g.Do(t, "POST", "/app/transfer", strings.NewReader("amount=1000"),
			append(H{{"Content-Type", "application/x-www-form-urlencoded"}, {"Cookie", "authgate=" + session.Value}}, hdr...))
		if r.Status != http.StatusForbidden {
			t.Errorf("SECURITY: a cross-site POST riding the cookie (%s): %d, want 403", name, r.Status)
		}
	}
	wantNothingUpstream(t, "cross-site posts", up, mark)

	// The cookie reaches the app neither as ours nor spelled otherwise;
	// the app's own cookies pass.
	mark = up.Mark()
	r := g.Do(t, "GET", "/app/page", nil, H{{"Cookie", "app=1; authgate=" + session.Value + "; AUTHGATE=x; authgate-csrf=" + csrf}, {"Sec-Fetch-Site", "same-origin"}})
	s := wantOneUpstream(t, "the page with the cookie", up, mark)
	if r.Status != http.StatusOK || s.Header.Get("Cookie") != "app=1" || s.Header.Get("X-Auth-Method") != "session" || s.Header.Get("X-Auth-User") != "wendy" {
		t.Errorf("the upstream saw Cookie %q, method %q, user %q (status %d)", s.Header.Get("Cookie"), s.Header.Get("X-Auth-Method"), s.Header.Get("X-Auth-User"), r.Status)
	}

	// Session fixation: a planted cookie is replaced, and stays worthless.
	planted := "ags_0000000000000000000000000000000000000000000000000"
	fixed := login("/", "authgate="+planted)
	if c := setCookie(fixed, "authgate"); c == nil || c.Value == planted {
		t.Errorf("SECURITY: the login kept a planted cookie")
	} else {
		secret(c.Value)
	}
	if r := g.Do(t, "GET", "/app/page", nil, H{{"Cookie", "authgate=" + planted}}); r.Status != http.StatusUnauthorized {
		t.Errorf("SECURITY: a planted cookie after a login: %d", r.Status)
	}

	// The page: not frameable, no script, no reflected markup.
	page := g.Do(t, "GET", "/auth/login?rd="+url.QueryEscape(`/"><script>alert(1)</script><iframe src=//evil>`), nil, nil)
	body := strings.ToLower(string(page.Body))
	if strings.Contains(body, "<script") || strings.Contains(body, "<iframe") {
		t.Errorf("SECURITY: the login page reflects markup")
	}
	if page.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		!strings.Contains(page.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("SECURITY: the login page's headers allow framing or scripts: %v", page.Header)
	}

	// An API client is never redirected; a navigation is.
	if r := g.Do(t, "GET", "/app/x", nil, H{{"Accept", "application/json"}}); r.Status != http.StatusUnauthorized {
		t.Errorf("an API client without a credential: %d, want 401", r.Status)
	}
	if r := g.Do(t, "GET", "/app/x?y=1", nil, H{{"Sec-Fetch-Mode", "navigate"}}); r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/auth/login?rd=%2Fapp%2Fx%3Fy%3D1" {
		t.Errorf("a navigation without a credential: %d %q", r.Status, r.Header.Get("Location"))
	}

	// Browser sessions are sessions: listed, and revocable.
	list := g.LiveCLI(t, "", "session", "list", "--user", "wendy", "--json")
	if !strings.Contains(list, `"browser": true`) {
		t.Errorf("session list does not show the browser sessions:\n%s", list)
	}
	for _, id := range regexp.MustCompile(`"id": "(ses_\w+)"`).FindAllStringSubmatch(list, -1) {
		g.LiveCLI(t, "", "session", "revoke", id[1])
	}
	if r := g.Do(t, "GET", "/app/page", nil, H{{"Cookie", "authgate=" + session.Value}}); r.Status != http.StatusUnauthorized {
		t.Errorf("a revoked browser session: %d, want 401", r.Status)
	}
}
