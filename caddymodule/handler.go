package caddymodule

import (
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/browser"
	"github.com/authgate/authgate/internal/dialect/babel"
	"github.com/authgate/authgate/internal/dialect/plentymarkets"
	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/store"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is http.handlers.authgate: it strips identity headers, serves the
// login routes of the configured dialects, passes allowed paths, and lets
// every other request through only with a valid credential, with the
// caller's identity in headers.
type Handler struct {
	// APIs mounts dialects: plentymarkets or babel, each under a prefix.
	APIs []APIMount `json:"apis,omitempty"`
	// JWKS is the path that publishes the public signing keys.
	JWKS string `json:"jwks,omitempty"`
	// Allow lists path patterns (as Caddy's path matcher) that need no
	// credential.
	Allow []string `json:"allow,omitempty"`
	// APIKeyHeader carries API keys. Default x-api-key.
	APIKeyHeader string `json:"api_key_header,omitempty"`
	// HeaderPrefix starts every identity header. Default X-Auth-.
	HeaderPrefix string `json:"header_prefix,omitempty"`
	// ForwardCredentials passes the caller's Authorization and API key
	// headers upstream. Off by default.
	ForwardCredentials bool `json:"forward_credentials,omitempty"`
	// Health is the path of the health check: 200 while the store
	// answers, else 503, with a JSON body.
	Health string `json:"health,omitempty"`
	// Browser serves a login page and cookie sessions for browsers.
	Browser *BrowserConfig `json:"browser,omitempty"`
	// Require lists rules a path's requests must meet (require.go).
	Require []RequireRule `json:"require,omitempty"`

	app      *App
	routes   map[string]http.HandlerFunc
	allow    allowList
	hygiene  httpx.Hygiene
	cred     httpx.Credentials
	identity identityHeaders
	browser  *browser.Browser // nil unless configured
	metrics  *metrics
	logger   *zap.Logger
	plenty   prefixes // of the plentymarkets mounts: refusals there take its shape
	require  requireRules
}

// BrowserConfig is `browser <prefix> { idle, lifetime, template }`.
type BrowserConfig struct {
	// Prefix mounts {prefix}/login and {prefix}/logout.
	Prefix string `json:"prefix"`
	// Idle ends a session unused this long (default 30m); Lifetime ends
	// it regardless (default 12h).
	Idle     caddy.Duration `json:"idle,omitempty"`
	Lifetime caddy.Duration `json:"lifetime,omitempty"`
	// Template is an html/template file to use instead of the built-in
	// login page.
	Template string `json:"template,omitempty"`
}

// APIMount is one `api <dialect> <prefix>` line.
type APIMount struct {
	Dialect string `json:"dialect"`
	Prefix  string `json:"prefix"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.authgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the authgate app and builds the route table.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("authgate")
	if err != nil {
		return fmt.Errorf("authgate: loading app: %v", err)
	}
	return h.setup(ctx, appIface.(*App))
}

// setup builds the handler on a provisioned app.
func (h *Handler) setup(ctx caddy.Context, app *App) (err error) {
	h.app = app
	h.metrics = app.metrics
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.APIKeyHeader == "" {
		h.APIKeyHeader = "x-api-key"
	}
	if why := badKeyHeader(h.APIKeyHeader); why != "" {
		return fmt.Errorf("authgate: api_key_header %q: %s", h.APIKeyHeader, why)
	}
	if h.HeaderPrefix == "" {
		h.HeaderPrefix = "X-Auth-"
	}
	h.hygiene = httpx.NewHygiene(h.HeaderPrefix, h.APIKeyHeader)
	h.cred = httpx.Credentials{KeyHeader: h.hygiene.KeyHeader()}
	h.identity = newIdentityHeaders(h.HeaderPrefix)

	h.routes = map[string]http.HandlerFunc{}
	h.plenty = nil
	for _, m := range h.APIs {
		var routes map[string]http.HandlerFunc
		switch m.Dialect {
		case "plentymarkets":
			routes = plentymarkets.New(app.svc, h.cred, h.logger).Routes()
			h.plenty = append(h.plenty, strings.TrimSuffix(m.Prefix, "/"))
		case "babel":
			routes = babel.New(app.svc, h.cred, h.logger).Routes()
		default:
			return fmt.Errorf("authgate: api %q: unknown dialect (want plentymarkets or babel)", m.Dialect)
		}
		if err := h.mount(m.Prefix, routes); err != nil {
			return err
		}
	}
	if h.JWKS != "" {
		if err := h.mount("", map[string]http.HandlerFunc{h.JWKS: h.serveJWKS}); err != nil {
			return err
		}
	}
	if h.Health != "" {
		if err := h.mount("", map[string]http.HandlerFunc{h.Health: h.serveHealth}); err != nil {
			return err
		}
	}
	if c := h.Browser; c != nil {
		if h.browser, err = browser.New(app.svc, browser.Config{
			Prefix: c.Prefix, Idle: time.Duration(c.Idle), Lifetime: time.Duration(c.Lifetime), Template: c.Template,
		}, h.logger); err != nil {
			return fmt.Errorf("authgate: %v", err)
		}
		if err := h.mount(c.Prefix, nil); err != nil {
			return err
		}
		if err := h.mount("", h.browser.Routes()); err != nil {
			return err
		}
	}

	if h.allow, err = newAllowList(ctx, h.Allow); err != nil {
		return err
	}
	h.require, err = newRequireRules(ctx, h.Require, h.Allow)
	return err
}

// badKeyHeader says why name cannot carry API keys, or "". Authorization
// carries Bearer tokens: keys there would make every key a second
// credential in the one header, and a Bearer token a key lookup.
func badKeyHeader(name string) string {
	switch {
	case name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}):
		return "not a header name"
	case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"):
		return "that header carries Bearer tokens and proxy credentials; API keys need a header of their own, such as x-api-key"
	case strings.EqualFold(name, "Cookie"):
		return "cookies are not API keys; use a header of its own, such as x-api-key"
	}
	return ""
}

// mount adds routes under prefix; a path may be served by one route only.
func (h *Handler) mount(prefix string, routes map[string]http.HandlerFunc) error {
	if prefix != "" && (!strings.HasPrefix(prefix, "/") || path.Clean(prefix) != prefix) {
		return fmt.Errorf("authgate: prefix %q must be a clean absolute path like /rest", prefix)
	}
	for p, fn := range routes {
		full := prefix + p
		if _, dup := h.routes[full]; dup {
			return fmt.Errorf("authgate: route %s is mounted twice", full)
		}
		h.routes[full] = fn
	}
	return nil
}

// ServeHTTP is the request path: strip, own route, allowed path, or
// authenticate, authorize, inject and pass on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.hygiene.Strip(r.Header)
	if !h.app.isReady.Load() {
		// Caddy may start the HTTP app before ours: wait for the store.
		if err := h.app.awaitStart(r.Context()); err != nil {
			return h.deny(w, r, err)
		}
	}

	if route, ok := h.routes[path.Clean(r.URL.Path)]; ok {
		route(w, r)
		return nil
	}

	if h.allow.allows(r) {
		h.metrics.request(resultAllowed, credNone)
		h.dropCredentials(r)
		h.hygiene.FilterTrailers(r)
		return next.ServeHTTP(w, r)
	}

	p, err := h.cred.Authenticate(h.app.svc, r)
	if err == httpx.ErrNoCredential && h.browser != nil {
		p, err = h.authenticateBrowser(r)
		// A page without a working session goes to the login page; a
		// cross-site request and a store that cannot answer are refused
		// as they are (a 403, a 503: the session may be fine).
		if err != nil && err != browser.ErrCrossSite && !httpx.Unavailable(err) && browser.WantsPage(r) {
			h.metrics.request(resultUnauthorized, credSession)
			h.browser.RedirectToLogin(w, r)
			return nil
		}
	}
	if err != nil {
		return h.deny(w, r, err)
	}
	if p.Restricted() {
		check := p.MethodCheck()
		if !check(r.Method) || !httpx.AllowsOverrides(r.Header, check) {
			return h.deny(w, r, auth.ErrForbidden)
		}
		if p.Permissions()&store.PermAll != store.PermAll {
			done, err := httpx.CheckMethodParams(r, check)
			if err != nil {
				return h.deny(w, r, err)
			}
			if done != nil {
				defer done() // frees a spooled body, whoever else reads it
			}
		}
	}
	done, err := h.require.check(r, &p)
	if err != nil {
		return h.deny(w, r, err)
	}
	if done != nil {
		defer done()
	}
	cred := credBearer
	switch {
	case p.ByKey():
		cred = credAPIKey
	case p.BySession():
		cred = credSession
	}
	h.metrics.request(resultAuthenticated, cred)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	h.identity.inject(r, repl, &p)
	h.dropCredentials(r)
	h.hygiene.FilterTrailers(r)
	return next.ServeHTTP(w, r)
}

func (h *Handler) dropCredentials(r *http.Request) {
	if !h.ForwardCredentials {
		h.hygiene.DropCredentials(r.Header)
	}
	if h.browser != nil {
		// The session cookie is authgate's, never the app's: it is not
		// forwarded, even with forward_credentials.
		h.browser.StripCookies(r.Header)
	}
}

// authenticateBrowser resolves the session cookie of a request that
// carries no other credential. An unsafe request it authenticates must
// come from this site (CSRF).
func (h *Handler) authenticateBrowser(r *http.Request) (auth.Principal, error) {
	cookie, ok := h.browser.SessionCookie(r)
	if !ok {
		return auth.Principal{}, httpx.ErrNoCredential
	}
	p, err := h.browser.Authenticate(cookie)
	if err != nil {
		return p, err
	}
	if err := h.browser.CheckSameSite(r); err != nil {
		return auth.Principal{}, err
	}
	return p, nil
}

// deny counts a refused proxied request and answers it.
func (h *Handler) deny(w http.ResponseWriter, r *http.Request, err error) error {
	cred := credNone
	switch {
	case len(r.Header[h.cred.KeyHeader]) > 0:
		cred = credAPIKey
	case len(r.Header["Authorization"]) > 0:
		cred = credBearer
	case h.browser != nil:
		if _, ok := h.browser.SessionCookie(r); ok {
			cred = credSession
		}
	}
	h.metrics.request(refusalResult(httpx.RefusalOf(err)), cred)
	return h.refuse(w, r, err)
}

// refuse answers a failed request; the upstream is never reached. A store
// failure is logged with its cause (never shown to the client). Below a
// plentymarkets prefix the body is that dialect's error object (API.md
// section 4); the prefix check runs on refusals only.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) error {
	if httpx.Unavailable(err) {
		h.logger.Error("credential store unavailable", zap.Error(err))
	}
	if h.plenty.cover(r.URL) {
		return plentymarkets.WriteRefusal(w, httpx.RefusalOf(err))
	}
	return httpx.WriteRefusal(w, httpx.RefusalOf(err))
}

func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		_ = httpx.WriteRefusal(w, httpx.MethodNotAllowed("GET"))
		return
	}
	body := h.app.svc.JWKS()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// serveHealth answers the health check: {"status":"ok","store":"bbolt"}
// while the store answers, else 503 with "status":"unavailable" (the
// cause goes to the log, not to a public route's body).
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		_ = httpx.WriteRefusal(w, httpx.MethodNotAllowed("GET or HEAD"))
		return
	}
	kind, _ := h.app.store.Backend()
	status, code := "ok", http.StatusOK
	if err := h.app.store.Health(); err != nil {
		status, code = "unavailable", http.StatusServiceUnavailable
		h.logger.Warn("health check: the store does not answer", zap.String("store", kind), zap.Error(err))
	}
	_ = httpx.WriteJSON(w, code, struct {
		Status string `json:"status"`
		Store  string `json:"store"`
	}{status, kind})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
