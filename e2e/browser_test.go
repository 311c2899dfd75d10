package e2e

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
)

// formSite is a tiny site with an HTML login form, on loopback: GET / is
// the form, POST /login sets an HttpOnly cookie and answers 303 to /home,
// GET /home greets whoever the cookie names. It records every request.
type formSite struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []Seen
}

const smokeSID = "s3ss10n-f0r-th3-br0ws3r-sm0k3-t3st"

func newFormSite(t *testing.T) *formSite {
	t.Helper()
	s := &formSite{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html>
<html><head><title>Sign in</title>
<style>body{font-family:sans-serif;margin:40px;font-size:20px} input,button{font-size:20px;margin:6px 0}</style>
</head><body>
<h1>Sign in to the smoke test</h1>
<form method="post" action="/login">
<label>Username <input name="username" autocomplete="username"></label><br>
<label>Password <input name="password" type="password" autocomplete="current-password"></label><br>
<button type="submit" id="go">Sign in</button>
</form>
</body></html>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.record(r, []byte(r.PostForm.Encode()))
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: smokeSID + "-" + r.PostForm.Get("username"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		// Does Chromium keep a Secure cookie that plain http on 127.0.0.1 set?
		http.SetCookie(w, &http.Cookie{Name: "securetry", Value: "1", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil)
		who := "nobody"
		if c, err := r.Cookie("sid"); err == nil {
			who = strings.TrimPrefix(c.Value, smokeSID+"-")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Home</title></head>
<body style="font-family:sans-serif;margin:40px;font-size:20px"><h1 id="hello">Welcome, %s</h1><p>You are signed in.</p></body></html>`, html.EscapeString(who))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r, nil)
		http.NotFound(w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	if ip := s.srv.Listener.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("form site listens on %v, want loopback", ip)
	}
	return s
}

func (s *formSite) record(r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, Seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Proto: r.Proto})
}

// last returns the last request for method and path.
func (s *formSite) last(t *testing.T, method, path string) Seen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.log) - 1; i >= 0; i-- {
		if s.log[i].Method == method && s.log[i].Path == path {
			return s.log[i]
		}
	}
	t.Fatalf("the form site never received %s %s", method, path)
	return Seen{}
}

// TestBrowserSmoke proves the browser harness on a plain page, without
// authgate: a form filled and submitted, a 303 followed, an HttpOnly
// cookie read with its flags, one planted, a screenshot, and the fetch
// metadata Chromium sends on navigations (the browser login relies on
// Sec-Fetch-*).
func TestBrowserSmoke(t *testing.T) {
	ctx := newBrowser(t)
	site := newFormSite(t)
	base := site.srv.URL

	res := visit(t, ctx, base+"/", "input[name=username]")
	if res == nil || res.Status != http.StatusOK {
		t.Fatalf("GET /: response %+v, want 200", res)
	}
	if u := currentURL(t, ctx); u != base+"/" {
		t.Errorf("location = %q, want %q", u, base+"/")
	}
	if txt := pageText(t, ctx); !strings.Contains(txt, "Sign in to the smoke test") {
		t.Errorf("page text %q lacks the heading", txt)
	}

	const password = `c0rrect "horse" <battery> & stäple`
	fill(t, ctx, "username", "alice")
	fill(t, ctx, "password", password)
	res = submitForm(t, ctx, "#go")
	if res == nil || res.Status != http.StatusOK {
		t.Fatalf("after submit: response %+v, want the 200 of /home", res)
	}
	waitVisible(t, ctx, "#hello")
	if u := currentURL(t, ctx); u != base+"/home" {
		t.Errorf("after the 303: location = %q, want %q", u, base+"/home")
	}
	if txt := pageText(t, ctx); !strings.Contains(txt, "Welcome, alice") {
		t.Errorf("after login the page reads %q, want it to contain %q", txt, "Welcome, alice")
	}

	// What the server got: the form as typed, from this origin.
	post := site.last(t, "POST", "/login")
	if got, want := string(post.Body), (url.Values{"username": {"alice"}, "password": {password}}).Encode(); got != want {
		t.Errorf("POST /login form = %q, want %q", got, want)
	}
	if ct := post.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("POST /login Content-Type = %q", ct)
	}
	if o := post.Header.Get("Origin"); o != base {
		t.Errorf("POST /login Origin = %q, want %q", o, base)
	}
	home := site.last(t, "GET", "/home")
	if c := home.Header.Get("Cookie"); !strings.Contains(c, "sid="+smokeSID+"-alice") {
		t.Errorf("GET /home after the 303 carried Cookie %q, want the sid set by the POST", c)
	}

	// Fetch metadata on the three navigations: typed (Page.navigate), the
	// form POST, the redirect it followed.
	for _, n := range []struct {
		what string
		s    Seen
		site string // "" = log only
	}{
		{"navigation GET /", site.last(t, "GET", "/"), ""},
		{"form POST /login", post, "same-origin"},
		{"303 to GET /home", home, "same-origin"},
	} {
		h := n.s.Header
		t.Logf("%s: Sec-Fetch-Site=%q Sec-Fetch-Mode=%q Sec-Fetch-Dest=%q Sec-Fetch-User=%q Origin=%q Referer=%q Upgrade-Insecure-Requests=%q Accept=%q User-Agent=%q",
			n.what, h.Get("Sec-Fetch-Site"), h.Get("Sec-Fetch-Mode"), h.Get("Sec-Fetch-Dest"), h.Get("Sec-Fetch-User"),
			h.Get("Origin"), h.Get("Referer"), h.Get("Upgrade-Insecure-Requests"), h.Get("Accept"), h.Get("User-Agent"))
		if m := h.Get("Sec-Fetch-Mode"); m != "navigate" {
			t.Errorf("%s: Sec-Fetch-Mode = %q, want navigate", n.what, m)
		}
		if d := h.Get("Sec-Fetch-Dest"); d != "document" {
			t.Errorf("%s: Sec-Fetch-Dest = %q, want document", n.what, d)
		}
		if s := h.Get("Sec-Fetch-Site"); s == "" || (n.site != "" && s != n.site) {
			t.Errorf("%s: Sec-Fetch-Site = %q, want %q", n.what, s, n.site)
		}
		if a := h.Get("Accept"); !strings.HasPrefix(a, "text/html") {
			t.Errorf("%s: Accept = %q, want it to start with text/html", n.what, a)
		}
	}

	// The cookie, with its flags, as the browser keeps it.
	cookies := browserCookies(t, ctx, base+"/")
	sid := cookieNamed(cookies, "sid")
	if sid == nil {
		t.Fatalf("the browser holds no sid cookie for %s; it holds %v", base, cookieNames(cookies))
	}
	if sid.Value != smokeSID+"-alice" || !sid.HTTPOnly || sid.Secure || sid.SameSite != network.CookieSameSiteLax || sid.Path != "/" || !sid.Session {
		t.Errorf("sid cookie = {value %q httpOnly %v secure %v sameSite %q path %q session %v}, want {%q true false Lax / true}",
			sid.Value, sid.HTTPOnly, sid.Secure, sid.SameSite, sid.Path, sid.Session, smokeSID+"-alice")
	}
	if js := evalJS[string](t, ctx, "document.cookie"); strings.Contains(js, "sid=") {
		t.Errorf("document.cookie = %q: an HttpOnly cookie is visible to scripts", js)
	}
	if c := cookieNamed(cookies, "securetry"); c != nil {
		t.Logf("a Secure cookie set over http://127.0.0.1 was kept (secure=%v, sameSite=%s)", c.Secure, c.SameSite)
	} else {
		t.Logf("a Secure cookie set over http://127.0.0.1 was dropped")
	}

	// A planted cookie (what a session-fixation test does) reaches the server.
	setBrowserCookie(t, ctx, network.SetCookieParams{Name: "planted", Value: "attacker-chosen", URL: base + "/", HTTPOnly: new(true), SameSite: network.CookieSameSiteLax})
	visit(t, ctx, base+"/home", "#hello")
	if c := site.last(t, "GET", "/home").Header.Get("Cookie"); !strings.Contains(c, "planted=attacker-chosen") {
		t.Errorf("after setBrowserCookie, GET /home carried Cookie %q, want planted=attacker-chosen", c)
	}
	if c := cookieNamed(browserCookies(t, ctx, base+"/"), "planted"); c == nil || !c.HTTPOnly {
		t.Errorf("planted cookie as the browser keeps it: %+v, want HttpOnly", c)
	}

	// A screenshot of the signed-in page: a real PNG, of the window's
	// width, with text drawn (dark pixels on the white page).
	visit(t, ctx, base+"/", "input[name=username]")
	fill(t, ctx, "username", "alice")
	dir := os.Getenv("AUTHGATE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "browser-smoke.png")
	shot := screenshot(t, ctx, path)
	checkScreenshot(t, path, shot)
}

// checkScreenshot asserts b is a PNG of plausible size with something drawn.
func checkScreenshot(t *testing.T, path string, b []byte) {
	t.Helper()
	if len(b) < 2000 || len(b) > 20<<20 {
		t.Errorf("screenshot %s is %d bytes, want 2 KB..20 MB", path, len(b))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || format != "png" {
		t.Fatalf("screenshot %s: not a PNG (%q, %v)", path, format, err)
	}
	if cfg.Width != 1280 || cfg.Height < 200 || cfg.Height > 20000 {
		t.Errorf("screenshot %s is %dx%d, want 1280 wide and 200..20000 high", path, cfg.Width, cfg.Height)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: decoding: %v", path, err)
	}
	dark := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r < 0x6000 && g < 0x6000 && b < 0x6000 {
				dark++
			}
		}
	}
	// The heading, labels and button text at 20px are thousands of dark
	// pixels; a blank page, or one whose text found no font, has none.
	if dark < 1000 {
		t.Errorf("screenshot %s has %d dark pixels: no text drawn (a missing font?)", path, dark)
	}
	t.Logf("screenshot %s: %dx%d, %d bytes, %d dark pixels", path, cfg.Width, cfg.Height, len(b), dark)
}

func cookieNames(cs []*network.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// TestBrowserFinder checks the lookup of the browser binary: an explicit
// AUTHGATE_CHROMIUM that does not exist is an error naming it (newBrowser
// fails rather than skips on it).
func TestBrowserFinder(t *testing.T) {
	t.Setenv("AUTHGATE_CHROMIUM", filepath.Join(t.TempDir(), "no-such-chromium"))
	if p, err := findChromium(); err == nil || !strings.Contains(err.Error(), "no-such-chromium") {
		t.Errorf("findChromium with a missing AUTHGATE_CHROMIUM = %q, %v; want an error naming it", p, err)
	}
}
