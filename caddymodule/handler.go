package caddymodule

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

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

	app     *App
	routes  map[string]routeFunc
	allow   allowList
	headers identityHeaders
	logger  *zap.Logger
}

// APIMount is one `api <dialect> <prefix>` line.
type APIMount struct {
	Dialect string `json:"dialect"`
	Prefix  string `json:"prefix"`
}

// routeFunc serves one of the handler's own routes.
type routeFunc func(w http.ResponseWriter, r *http.Request) error

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
	if h.APIKeyHeader == "" {
		h.APIKeyHeader = "x-api-key"
	}
	if h.HeaderPrefix == "" {
		h.HeaderPrefix = "X-Auth-"
	}
	h.headers = newIdentityHeaders(h.HeaderPrefix, h.APIKeyHeader)

	h.routes = map[string]routeFunc{}
	for _, m := range h.APIs {
		var routes map[string]routeFunc
		switch m.Dialect {
		case "plentymarkets":
			routes = h.plentymarketsRoutes()
		case "babel":
			routes = h.babelRoutes()
		default:
			return fmt.Errorf("authgate: api %q: unknown dialect (want plentymarkets or babel)", m.Dialect)
		}
		if err := h.mount(m.Prefix, routes); err != nil {
			return err
		}
	}
	if h.JWKS != "" {
		if err := h.mount("", map[string]routeFunc{h.JWKS: h.serveJWKS}); err != nil {
			return err
		}
	}

	h.allow, err = newAllowList(ctx, h.Allow)
	return err
}

// mount adds routes under prefix; a path may be served by one route only.
func (h *Handler) mount(prefix string, routes map[string]routeFunc) error {
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
	h.headers.strip(r.Header)

	if route, ok := h.routes[path.Clean(r.URL.Path)]; ok {
		return route(w, r)
	}

	if h.allow.allows(r) {
		h.dropCredentials(r)
		h.headers.filterTrailers(r)
		return next.ServeHTTP(w, r)
	}

	p, aerr := h.authenticate(r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	if !p.allows(r.Method) || !p.allowsOverrides(r.Header) {
		return h.refuse(w, errForbidden)
	}
	if p.restricted && p.perms != store.PermAll {
		if aerr := checkMethodParams(r, permissionChecks[p.perms&store.PermAll]); aerr != nil {
			return h.refuse(w, aerr)
		}
		if body, ok := r.Body.(*overrideReplay); ok {
			defer body.Close() // frees a spooled body, whoever else reads it
		}
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	h.headers.inject(r, repl, &p)
	h.dropCredentials(r)
	h.headers.filterTrailers(r)
	return next.ServeHTTP(w, r)
}

// authenticate finds the request's one credential and resolves it.
func (h *Handler) authenticate(r *http.Request) (principal, *authError) {
	authz := r.Header["Authorization"]
	keys := r.Header[h.headers.keyHeader]
	switch {
	case len(authz) > 1 || len(keys) > 1 || (len(authz) == 1 && len(keys) == 1):
		return principal{}, errTwoMethods
	case len(keys) == 1:
		return h.app.authenticateKey(keys[0], h.app.now())
	case len(authz) == 1:
		token, ok := bearerToken(authz[0])
		if !ok {
			return principal{}, errBadScheme
		}
		return h.app.authenticateBearer(token, h.app.now())
	}
	return principal{}, errNoCredential
}

// authenticateRoute authenticates a request to one of the handler's own
// routes and applies the same method rule as on proxied traffic: an API key
// (or a quick_login session) may only do what its permissions allow.
func (h *Handler) authenticateRoute(r *http.Request) (principal, *authError) {
	p, aerr := h.authenticate(r)
	if aerr != nil {
		return principal{}, aerr
	}
	if !p.allows(r.Method) {
		return principal{}, errForbidden
	}
	return p, nil
}

// bearerToken extracts the token of "Bearer <token>" (scheme in any case).
func bearerToken(v string) (string, bool) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (h *Handler) dropCredentials(r *http.Request) {
	if !h.ForwardCredentials {
		h.headers.dropCredentials(r.Header)
	}
}

// refuse answers a failed request; the upstream is never reached.
func (h *Handler) refuse(w http.ResponseWriter, e *authError) error {
	if e == errStore {
		h.logger.Error("credential store unavailable")
	}
	return writeAuthError(w, e)
}

func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, "GET")
	}
	body := h.app.issuer.Load().JWKS()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(body)
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
