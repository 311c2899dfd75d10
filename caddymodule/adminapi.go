package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// Registers basic_auth (and basicauth) with the Caddyfile adapter, for
	// the Caddyfile import.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"

	"github.com/authgate/authgate/internal/admin"
)

// admin.api.authgate: the administration routes (internal/admin) on
// Caddy's admin endpoint (localhost or a unix socket; never the sites'
// listeners). `caddy authgate ...` calls them there; with --db it serves
// the very same routes in-process on the opened file.

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin.api.authgate module.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.authgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes mounts the routes. Admin modules outlive configs, so the store is
// looked up on each request, never kept. A failure goes back to Caddy's
// admin endpoint as an APIError, which it logs and answers as
// {"error": "..."} with the status.
func (adminAPI) Routes() []caddy.AdminRoute {
	h := admin.NewHandler(liveBackend)
	return []caddy.AdminRoute{{
		Pattern: "/authgate/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if err := h.Serve(w, r); err != nil {
				return caddy.APIError{HTTPStatus: err.Status, Err: err}
			}
			return nil
		}),
	}}
}

// liveBackend finds the running config's authgate app.
func liveBackend() (admin.Backend, error) {
	appIface, err := caddy.ActiveContext().AppIfConfigured("authgate")
	if err != nil {
		return admin.Backend{}, &admin.Error{Status: http.StatusServiceUnavailable, Msg: "authgate is not running in this server's configuration"}
	}
	app := appIface.(*App)
	if !app.isReady.Load() {
		return admin.Backend{}, &admin.Error{Status: http.StatusServiceUnavailable, Msg: "authgate has not started yet: its store is not open"}
	}
	return admin.Backend{
		Ops:       admin.Ops{Store: app.store, Now: app.now, MinPasswordLength: app.PasswordMinLength},
		Rotate:    app.svc.RotateSigningKey,
		Alg:       app.SigningAlg,
		Caddyfile: caddyfileAdapter{},
		Audit:     func(e admin.AdminEvent) { auditAdmin(app.audit, e) },
	}, nil
}

// caddyfileAdapter is Caddy's side of the Caddyfile import.
type caddyfileAdapter struct{}

func (caddyfileAdapter) Adapt(caddyfile []byte) ([]byte, error) {
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile, nil)
	return adapted, err
}

func (caddyfileAdapter) Expand(value string) string {
	return caddy.NewReplacer().ReplaceKnown(value, "")
}

// Interface guards
var (
	_ caddy.AdminRouter      = (*adminAPI)(nil)
	_ admin.CaddyfileAdapter = caddyfileAdapter{}
)
