// Package browser is authgate's browser login (API.md section 9): the
// login and sign-out pages, the session cookie, the CSRF tokens of their
// forms, the redirect to the login page, and the cross-site check of
// cookie-authenticated requests. Sessions themselves are the service's
// (internal/auth): the same lockout, session limit, revocation and audit
// as every other login.
package browser

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/internal/secret"
)

// Config is the `browser <prefix> { ... }` block.
type Config struct {
	// Prefix mounts the routes: {Prefix}/login, {Prefix}/logout.
	Prefix string
	// Idle ends a session unused this long; Lifetime ends it regardless.
	Idle, Lifetime time.Duration
	// Template is the operator's html/template file; "" for ours.
	Template string
}

// Defaults of the block.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultLifetime = 12 * time.Hour
)

// The cookie names. On HTTPS the session cookie is __Host-authgate:
// Secure, Path=/, no Domain, so no other host or path can set or shadow
// it. A plain-http site can hold no Secure cookie: there (loopback only,
// see secureEnough) the names drop the prefix.
const (
	cookieName     = "authgate"
	csrfCookieName = "authgate-csrf"
	hostPrefix     = "__Host-"
	csrfPrefix     = "agf_" // a login form's CSRF token
)

// Browser serves the routes and answers the handler's questions about
// browser requests.
type Browser struct {
	svc    *auth.Service
	cfg    Config
	page   *page
	cop    *http.CrossOriginProtection
	logger *zap.Logger
}

// New builds the browser login over svc.
func New(svc *auth.Service, cfg Config, logger *zap.Logger) (*Browser, error) {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Idle > cfg.Lifetime {
		return nil, fmt.Errorf("browser: idle (%v) is longer than lifetime (%v)", cfg.Idle, cfg.Lifetime)
	}
	if cfg.Idle < 2*time.Minute {
		// Uses are kept to the minute (auth.noteSessionUse): a shorter idle
		// timeout would end sessions in use.
		return nil, fmt.Errorf("browser: idle (%v) must be at least 2m", cfg.Idle)
	}
	p, err := loadPage(cfg.Template)
	if err != nil {
		return nil, err
	}
	if err := svc.EnableBrowserSessions(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Browser{svc: svc, cfg: cfg, page: p, cop: http.NewCrossOriginProtection(), logger: logger}, nil
}

// Routes are the browser routes, by path.
func (b *Browser) Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		b.cfg.Prefix + "/login":  b.login,
		b.cfg.Prefix + "/logout": b.logout,
	}
}

func (b *Browser) loginPath() string  { return b.cfg.Prefix + "/login" }
func (b *Browser) logoutPath() string { return b.cfg.Prefix + "/logout" }

// ctx names the browser dialect for the metrics and the audit trail.
func ctx(r *http.Request) context.Context { return auth.WithDialect(r.Context(), "browser") }

// names are the cookie names for r's scheme.
func names(r *http.Request) (session, csrf string) {
	if r.TLS != nil {
		return hostPrefix + cookieName, hostPrefix + csrfCookieName
	}
	return cookieName, csrfCookieName
}

// secureEnough reports whether a session cookie may be set for r: over
// HTTPS, or plain http to a loopback host (a development machine). A
// cookie sent in clear text over a network could be read by anyone on it.
func secureEnough(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// SessionCookie returns the value of r's session cookie, if it has one.
func (b *Browser) SessionCookie(r *http.Request) (string, bool) {
	name, _ := names(r)
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// Authenticate resolves r's session cookie.
func (b *Browser) Authenticate(cookie string) (auth.Principal, error) {
	return b.svc.AuthenticateSession(cookie, b.cfg.Idle)
}

// StripCookies removes authgate's cookies from the Cookie header the
// upstream gets; the app's own cookies pass unchanged.
func (b *Browser) StripCookies(h http.Header) {
	values := h["Cookie"]
	if len(values) == 0 || !slices.ContainsFunc(values, mentionsOurs) {
		return
	}
	// A new slice: the values may be shared with whoever built the header.
	kept := make([]string, 0, len(values))
	for _, v := range values {
		var pairs []string
		changed := false
		for _, pair := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if isOurs(name) {
				changed = true
				continue
			}
			pairs = append(pairs, strings.TrimSpace(pair))
		}
		if !changed {
			kept = append(kept, v)
		} else if len(pairs) > 0 {
			kept = append(kept, strings.Join(pairs, "; "))
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}

// mentionsOurs is a quick look for our cookie name in a Cookie header, so
// that requests without it are left as they are.
func mentionsOurs(v string) bool {
	for i := 0; i+len(cookieName) <= len(v); i++ {
		if strings.EqualFold(v[i:i+len(cookieName)], cookieName) {
			return true
		}
	}
	return false
}

// isOurs reports whether a cookie name is one of authgate's, in any
// spelling a server might read as it.
func isOurs(name string) bool {
	if len(name) > len(hostPrefix) && strings.EqualFold(name[:len(hostPrefix)], hostPrefix) {
		name = name[len(hostPrefix):]
	}
	return strings.EqualFold(name, cookieName) || strings.EqualFold(name, csrfCookieName)
}

// WantsPage reports whether r is a browser asking for a page (a top-level
// navigation), which is sent to the login page rather than given a 401:
// Sec-Fetch-Mode: navigate, or, from a client that sends no Sec-Fetch-*
// header, an Accept that puts HTML first.
func WantsPage(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	for name := range r.Header {
		if strings.HasPrefix(name, "Sec-Fetch-") {
			return false
		}
	}
	first, _, _ := strings.Cut(r.Header.Get("Accept"), ",")
	mt, _, _ := strings.Cut(first, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// RedirectToLogin sends a page request to the login page with rd = its
// path and query. A session cookie that no longer works is cleared.
func (b *Browser) RedirectToLogin(w http.ResponseWriter, r *http.Request) {
	if _, ok := b.SessionCookie(r); ok {
		b.clearSession(w, r)
	}
	target := b.loginPath() + "?rd=" + url.QueryEscape(SafeRedirect(r.URL.RequestURI()))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// ErrCrossSite is the refusal of an unsafe request from another site that
// rides the session cookie: a 403, never a redirect to the login page.
var ErrCrossSite = httpx.Refuse(http.StatusForbidden, "insufficient_scope", "a cross-site request cannot use the browser session")

// CheckSameSite refuses an unsafe cookie-authenticated request from
// another origin (Go's CrossOriginProtection: Sec-Fetch-Site, else Origin
// against Host). GET, HEAD and OPTIONS pass.
func (b *Browser) CheckSameSite(r *http.Request) error {
	if err := b.cop.Check(r); err != nil {
		return ErrCrossSite
	}
	return nil
}

// ---- The routes ----

// GET {b}/login shows the form; POST checks it.
func (b *Browser) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b.showLogin(w, r, http.StatusOK, SafeRedirect(r.URL.Query().Get("rd")), "")
	case http.MethodPost:
		b.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		_ = httpx.WriteRefusal(w, httpx.MethodNotAllowed("GET or POST"))
	}
}

// showLogin renders the form with a fresh CSRF token, set in a cookie
// that only this site's pages can send back (double submit).
func (b *Browser) showLogin(w http.ResponseWriter, r *http.Request, status int, rd, msg string) {
	token, err := secret.NewSecret(csrfPrefix)
	if err != nil {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	_, csrfName := names(r)
	http.SetCookie(w, &http.Cookie{
		Name: csrfName, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(time.Hour / time.Second),
	})
	b.page.render(w, status, PageData{Action: b.loginPath(), CSRF: token, Redirect: rd, Error: msg})
}

// genericFailure is the one message of every failed login.
const genericFailure = "The username or password is wrong."

func (b *Browser) postLogin(w http.ResponseWriter, r *http.Request) {
	if err := b.cop.Check(r); err != nil {
		b.showLogin(w, r, http.StatusForbidden, "/", "This sign-in form came from another site. Sign in here.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxAuthBody)
	if !isForm(r) || r.ParseForm() != nil {
		b.showLogin(w, r, http.StatusBadRequest, "/", "The form could not be read. Try again.")
		return
	}
	rd := SafeRedirect(r.PostForm.Get("rd"))
	_, csrfName := names(r)
	c, err := r.Cookie(csrfName)
	if err != nil || !equal(c.Value, r.PostForm.Get("csrf")) {
		b.showLogin(w, r, http.StatusForbidden, rd, "The form expired. Sign in again.")
		return
	}
	if !secureEnough(r) {
		b.showLogin(w, r, http.StatusForbidden, rd, "Signing in needs HTTPS.")
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	if username == "" || password == "" {
		b.showLogin(w, r, http.StatusOK, rd, genericFailure)
		return
	}
	cookie, err := b.svc.BrowserLogin(ctx(r), username, password, b.cfg.Lifetime)
	if err != nil {
		b.loginFailed(w, r, rd, err)
		return
	}
	// A new session, a new cookie: a cookie the browser had before (a
	// planted one included) is replaced, never adopted.
	name, _ := names(r)
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: cookie, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteLaxMode, MaxAge: int(b.cfg.Lifetime / time.Second),
	})
	http.SetCookie(w, &http.Cookie{Name: csrfName, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// loginFailed shows the form again with the one generic message, when to
// retry a locked account, or that the store failed.
func (b *Browser) loginFailed(w http.ResponseWriter, r *http.Request, rd string, err error) {
	var locked *auth.LockedError
	var input *auth.InputError
	switch {
	case errors.As(err, &locked):
		secs := int(math.Ceil(locked.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		b.showLogin(w, r, http.StatusTooManyRequests, rd, fmt.Sprintf("Too many failed attempts. Try again in %s.", wait(locked.RetryAfter)))
	case errors.As(err, &input), errors.Is(err, auth.ErrBadCredentials):
		b.showLogin(w, r, http.StatusOK, rd, genericFailure)
	default:
		b.logger.Error("browser login: the credential store is unavailable", zap.Error(err))
		b.showLogin(w, r, http.StatusServiceUnavailable, rd, "Signing in is not possible right now. Try again in a moment.")
	}
}

// wait says a duration the way a person reads it.
func wait(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	}
	m := int(math.Ceil(d.Minutes()))
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// GET {b}/logout shows a sign-out form (an app links to it); POST with
// its token ends the session, clears the cookie and goes to the login
// page.
func (b *Browser) logout(w http.ResponseWriter, r *http.Request) {
	cookie, hasCookie := b.SessionCookie(r)
	var p auth.Principal
	var err error
	if hasCookie {
		p, err = b.Authenticate(cookie)
	}
	signedIn := hasCookie && err == nil
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !signedIn {
			b.toLogin(w, r)
			return
		}
		b.page.render(w, http.StatusOK, PageData{Title: "Sign out", SignOut: true, LogoutAction: b.logoutPath(), CSRF: logoutToken(cookie), Username: p.Username()})
	case http.MethodPost:
		if err := b.cop.Check(r); err != nil {
			_ = httpx.WriteRefusal(w, ErrCrossSite)
			return
		}
		if signedIn {
			r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxAuthBody)
			if !isForm(r) || r.ParseForm() != nil || !equal(r.PostForm.Get("csrf"), logoutToken(cookie)) {
				_ = httpx.WriteRefusal(w, httpx.Refuse(http.StatusForbidden, "invalid_request", "the sign-out form's token is missing or wrong"))
				return
			}
			if err := b.svc.Logout(ctx(r), &p); err != nil {
				_ = httpx.WriteRefusal(w, httpx.RefusalOf(err))
				return
			}
		}
		b.toLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		_ = httpx.WriteRefusal(w, httpx.MethodNotAllowed("GET or POST"))
	}
}

// toLogin clears the session cookie and goes to the login page.
func (b *Browser) toLogin(w http.ResponseWriter, r *http.Request) {
	b.clearSession(w, r)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, b.loginPath(), http.StatusSeeOther)
}

func (b *Browser) clearSession(w http.ResponseWriter, r *http.Request) {
	name, _ := names(r)
	http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// logoutToken is the sign-out form's CSRF token, derived from the session
// cookie: only a page that could read the cookie's session (ours) can
// know it, and it needs no state.
func logoutToken(cookie string) string {
	sum := sha256.Sum256([]byte("authgate logout\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func isForm(r *http.Request) bool {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
