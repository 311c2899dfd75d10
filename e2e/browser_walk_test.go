package e2e

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
)

// loginScreenshot is the picture of the login page the README shows. The
// walk checks the one checked in is a real screenshot of the page; with
// AUTHGATE_UPDATE_SCREENSHOT=1 it writes a new one.
const loginScreenshot = "../docs/login-page.png"

// TestBrowserWalk drives a real headless Chromium through the browser
// login of the built binary: a protected page sends it to the login page,
// a wrong password shows the generic message, the right one lands on the
// page it asked for with the upstream seeing the identity and not the
// cookie, signing out ends the session, and the old cookie is refused.
func TestBrowserWalk(t *testing.T) {
	ctx := newBrowser(t)
	up := newUpstream(t)
	g := newGateway(t, up)
	g.HandlerExtra = "\t\tbrowser /auth"
	g.WriteConfig("Caddyfile", "")
	vicID := g.AddUser(t, "vic", "vic-pass-1234", "staff", "vic@example.com")
	g.Start(t)
	base := g.Base()

	// A protected page: the login page, with where to go back to.
	visit(t, ctx, base+"/app/orders?page=2", "input[name=username]")
	here, err := url.Parse(currentURL(t, ctx))
	if err != nil || here.Path != "/auth/login" || here.Query().Get("rd") != "/app/orders?page=2" {
		t.Fatalf("a protected page led to %s, want the login page with rd=/app/orders?page=2", here)
	}
	shot := screenshot(t, ctx, filepath.Join(t.TempDir(), "login.png"))
	checkScreenshot(t, "of the login page", shot)
	if os.Getenv("AUTHGATE_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(loginScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if checked, err := os.ReadFile(loginScreenshot); err != nil {
		t.Errorf("the README's screenshot %s: %v (run this test with AUTHGATE_UPDATE_SCREENSHOT=1)", loginScreenshot, err)
	} else {
		checkScreenshot(t, loginScreenshot, checked)
	}

	// A wrong password: the generic message, still the login page.
	mark := up.Mark()
	fill(t, ctx, "username", "vic")
	fill(t, ctx, "password", "not-the-password")
	submitForm(t, ctx, "button[type=submit]")
	waitVisible(t, ctx, "p.error")
	if text := pageText(t, ctx); !strings.Contains(text, "The username or password is wrong.") {
		t.Errorf("after a wrong password the page says:\n%s", text)
	}
	wantNothingUpstream(t, "a wrong password", up, mark)

	// The right one: back on the page asked for, as vic, by session.
	fill(t, ctx, "username", "vic")
	fill(t, ctx, "password", "vic-pass-1234")
	res := submitForm(t, ctx, "button[type=submit]")
	if got := currentURL(t, ctx); got != base+"/app/orders?page=2" || res == nil || res.Status != 200 {
		t.Fatalf("after signing in: %s (status %v), want %s/app/orders?page=2", got, res, base)
	}
	s := wantOneUpstream(t, "the page after signing in", up, mark)
	wantIdentity(t, "the page after signing in", s, map[string]string{
		"x-auth-user": "vic", "x-auth-user-id": vicID, "x-auth-email": "vic@example.com", "x-auth-roles": "staff", "x-auth-method": "session",
	})
	if c := s.Header.Get("Cookie"); strings.Contains(c, "authgate") {
		t.Errorf("SECURITY: the upstream received authgate's cookie: %q", c)
	}
	cookie := cookieNamed(browserCookies(t, ctx, base+"/"), "authgate")
	if cookie == nil || !cookie.HTTPOnly || cookie.SameSite != network.CookieSameSiteLax || cookie.Path != "/" || !strings.HasPrefix(cookie.Value, "ags_") {
		t.Fatalf("the session cookie in the browser: %+v", cookie)
	}
	secret(cookie.Value)
	if v := evalJS[string](t, ctx, "document.cookie"); strings.Contains(v, "ags_") {
		t.Errorf("SECURITY: page script can read the session cookie")
	}

	// Sign out through the sign-out page.
	visit(t, ctx, base+"/auth/logout", "button[type=submit]")
	if text := pageText(t, ctx); !strings.Contains(text, "vic") {
		t.Errorf("the sign-out page does not name the user:\n%s", text)
	}
	submitForm(t, ctx, "button[type=submit]")
	if here, _ := url.Parse(currentURL(t, ctx)); here == nil || here.Path != "/auth/login" {
		t.Errorf("after signing out: %v, want the login page", here)
	}
	if c := cookieNamed(browserCookies(t, ctx, base+"/"), "authgate"); c != nil {
		t.Errorf("the session cookie outlived the sign-out: %+v", c)
	}

	// The old cookie, put back, is refused: the login page again.
	setBrowserCookie(t, ctx, network.SetCookieParams{Name: "authgate", Value: cookie.Value, URL: base + "/", HTTPOnly: new(true), SameSite: network.CookieSameSiteLax})
	mark = up.Mark()
	visit(t, ctx, base+"/app/orders", "input[name=username]")
	if here, _ := url.Parse(currentURL(t, ctx)); here == nil || here.Path != "/auth/login" {
		t.Errorf("SECURITY: the signed-out cookie opened %v", here)
	}
	wantNothingUpstream(t, "the signed-out cookie", up, mark)
}
