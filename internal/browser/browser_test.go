package browser

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestWantsPage(t *testing.T) {
	cases := []struct {
		name string
		hdr  map[string]string
		want bool
	}{
		{"a navigation", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}, true},
		{"a navigation accepting anything", map[string]string{"Sec-Fetch-Mode": "navigate", "Accept": "*/*"}, true},
		{"fetch() from a page", map[string]string{"Sec-Fetch-Mode": "cors", "Accept": "text/html"}, false},
		{"an image", map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, false},
		{"an old browser", map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{"xhtml first", map[string]string{"Accept": "application/xhtml+xml"}, true},
		{"an API client", map[string]string{"Accept": "application/json"}, false},
		{"curl", map[string]string{"Accept": "*/*"}, false},
		{"no Accept", nil, false},
		{"JSON first, HTML after", map[string]string{"Accept": "application/json, text/html"}, false},
		{"Sec-Fetch-Site alone", map[string]string{"Sec-Fetch-Site": "same-origin", "Accept": "text/html"}, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/app", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		if got := WantsPage(r); got != c.want {
			t.Errorf("%s: WantsPage = %v, want %v", c.name, got, c.want)
		}
	}
}

// The app's own cookies pass; authgate's never reach it, in any spelling.
func TestStripCookies(t *testing.T) {
	b := &Browser{}
	cases := []struct {
		in   []string
		want []string
	}{
		{[]string{"sid=app; theme=dark"}, []string{"sid=app; theme=dark"}},
		{[]string{"__Host-authgate=ags_x; sid=app"}, []string{"sid=app"}},
		{[]string{"sid=app; authgate=ags_x; theme=dark"}, []string{"sid=app; theme=dark"}},
		{[]string{"AuthGate=ags_x", "sid=app"}, []string{"sid=app"}},
		{[]string{"__Host-authgate-csrf=agf_x;__host-AUTHGATE=ags_y"}, nil},
		{[]string{"authgate=a; authgate=b"}, nil},
		{[]string{"authgatex=keep; xauthgate=keep"}, []string{"authgatex=keep; xauthgate=keep"}},
	}
	for _, c := range cases {
		h := http.Header{"Cookie": append([]string(nil), c.in...)}
		b.StripCookies(h)
		if got := h["Cookie"]; strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("StripCookies(%q) = %q, want %q", c.in, got, c.want)
		}
		if c.want == nil {
			if _, ok := h["Cookie"]; ok {
				t.Errorf("StripCookies(%q) left an empty Cookie header", c.in)
			}
		}
	}
}

// The built-in page: no script, nothing from another origin, never framed,
// its one inline style allowed by hash; what the client sent is escaped.
func TestDefaultPage(t *testing.T) {
	p, err := loadPage("")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.render(w, http.StatusOK, PageData{Action: "/auth/login", CSRF: "agf_token", Redirect: `/x"><script>alert(1)</script>`, Error: "<b>bad</b>"})
	body := w.Body.String()
	for _, bad := range []string{"<script", "http://", "https://", "<b>bad</b>", "javascript:"} {
		if strings.Contains(strings.ToLower(body), bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	for _, want := range []string{`name="csrf" value="agf_token"`, `action="/auth/login"`, `autocomplete="current-password"`, `<label for="password">`, `role="alert"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q allows more than the page needs", csp)
	}
	if w.Header().Get("X-Frame-Options") != "DENY" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", w.Header())
	}
	// The hash in the CSP is the hash of the style the page carries.
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no style block")
	}
	sum := sha256.Sum256([]byte(m[1]))
	if want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
		t.Errorf("CSP %q does not allow the page's own style (%s): the browser would drop it", csp, want)
	}
}

// An operator's template replaces ours; one that cannot render fails at
// load, not at a user's login.
func TestOperatorTemplate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "login.html")
	if err := os.WriteFile(good, []byte(`<!doctype html><title>ACME</title><form method="post" action="{{.Action}}"><input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="rd" value="{{.Redirect}}">{{.Error}}<input name="username"><input type="password" name="password"><button>Go</button></form>`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := loadPage(good)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.render(w, http.StatusOK, PageData{Action: "/auth/login", CSRF: "agf_t"})
	if !strings.Contains(w.Body.String(), "<title>ACME</title>") {
		t.Errorf("the operator's template was not used: %s", w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script") {
		t.Errorf("operator template CSP %q", csp)
	}
	bad := filepath.Join(dir, "bad.html")
	if err := os.WriteFile(bad, []byte(`{{.NoSuchField}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadPage(bad); err == nil {
		t.Error("a template naming a field PageData lacks was accepted")
	}
	if _, err := loadPage(filepath.Join(dir, "missing.html")); err == nil {
		t.Error("a missing template file was accepted")
	}
}
