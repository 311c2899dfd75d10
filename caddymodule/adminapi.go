package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/store"
)

// admin.api.authgate: the administrative operations as JSON routes on
// Caddy's admin endpoint (localhost or a unix socket; never the sites'
// listeners). `caddy authgate ...` calls them on a running server; with
// --db it serves the very same handler in-process on the opened file.
//
//	GET    /authgate/users                       list
//	POST   /authgate/users                       add {username,password,email,roles}
//	GET    /authgate/users/{user}                show (username, email or id)
//	PATCH  /authgate/users/{user}                set profile fields, roles, session limit
//	DELETE /authgate/users/{user}                delete, with their keys and sessions
//	POST   /authgate/users/{user}/disable|enable
//	PUT    /authgate/users/{user}/password       {password}; ends their sessions
//	PUT    /authgate/users/{user}/pin            {pin}
//	GET    /authgate/users/{user}/settings
//	PUT    /authgate/users/{user}/settings/{name} {value,category,group,type,description,readOnly}
//	DELETE /authgate/users/{user}/settings/{name}
//	GET    /authgate/keys[?user=]
//	POST   /authgate/keys                        {user,name,permissions,expiresIn,clientSecret,description}
//	POST   /authgate/keys/{id}/revoke
//	POST   /authgate/keys/revoke                 {key}: by the key itself
//	GET    /authgate/sessions[?user=]
//	POST   /authgate/sessions/{id}/revoke
//	GET    /authgate/signing-keys
//	POST   /authgate/signing-keys/rotate
//	GET    /authgate/backup                      the whole store file, consistent
//
// Errors are {"error": "..."} with 400, 404, 409 or 503. No route ever
// returns a secret, except a key and client secret once, at creation.

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

// Routes mounts the handler. Admin modules outlive configs, so the store is
// looked up on each request, never kept.
func (adminAPI) Routes() []caddy.AdminRoute {
	h := newAdminHandler(liveBackend)
	return []caddy.AdminRoute{{
		Pattern: "/authgate/",
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			h.ServeHTTP(w, r)
			return nil
		}),
	}}
}

// adminBackend is what the routes work on: a store, and how to rotate its
// signing key.
type adminBackend struct {
	ops adminOps
	// rotate makes a new signing key the signer (and, on a running server,
	// swaps the live issuer).
	rotate func() (signingKeyView, error)
	// alg is the configured signing algorithm; "" when unknown (--db).
	alg string
}

// liveBackend finds the running config's authgate app.
func liveBackend() (adminBackend, error) {
	appIface, err := caddy.ActiveContext().AppIfConfigured("authgate")
	if err != nil {
		return adminBackend{}, &opError{http.StatusServiceUnavailable, "authgate is not running in this server's configuration"}
	}
	app := appIface.(*App)
	if app.store == nil {
		return adminBackend{}, &opError{http.StatusServiceUnavailable, "authgate is not provisioned yet"}
	}
	return adminBackend{
		ops:    adminOps{st: app.store, now: app.now},
		rotate: app.rotateSigningKey,
		alg:    app.SigningAlg,
	}, nil
}

// localBackend is a store opened directly by the CLI (--db).
func localBackend(st *store.Store, now func() time.Time) func() (adminBackend, error) {
	ops := adminOps{st: st, now: now}
	return func() (adminBackend, error) {
		return adminBackend{ops: ops, rotate: func() (signingKeyView, error) { return ops.rotateSigningKey("") }}, nil
	}
}

// maxAdminBody caps request bodies; no admin request needs more.
const maxAdminBody = 1 << 20

// adminRoute serves one route: it returns the status and the value to
// encode as JSON, or an error.
type adminRoute func(b adminBackend, r *http.Request) (int, any, error)

// newAdminHandler builds the router over backend.
func newAdminHandler(backend func() (adminBackend, error)) http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, route adminRoute) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := checkAdminContentType(r); err != nil {
				writeAdminError(w, err)
				return
			}
			b, err := backend()
			if err != nil {
				writeAdminError(w, err)
				return
			}
			status, v, err := route(b, r)
			if err != nil {
				writeAdminError(w, err)
				return
			}
			writeAdminJSON(w, status, v)
		})
	}
	user := func(r *http.Request) string { return r.PathValue("user") }

	handle("GET /authgate/users", func(b adminBackend, _ *http.Request) (int, any, error) {
		v, err := b.ops.listUsers()
		return http.StatusOK, v, err
	})
	handle("POST /authgate/users", func(b adminBackend, r *http.Request) (int, any, error) {
		var req addUserRequest
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.addUser(req)
		return http.StatusCreated, v, err
	})
	handle("GET /authgate/users/{user}", func(b adminBackend, r *http.Request) (int, any, error) {
		v, err := b.ops.showUser(user(r))
		return http.StatusOK, v, err
	})
	handle("PATCH /authgate/users/{user}", func(b adminBackend, r *http.Request) (int, any, error) {
		var c userChanges
		if err := decodeAdmin(r, &c); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.setProfile(user(r), c)
		return http.StatusOK, v, err
	})
	handle("DELETE /authgate/users/{user}", func(b adminBackend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.ops.deleteUser(user(r))
	})
	for _, state := range []struct {
		verb     string
		disabled bool
	}{{"disable", true}, {"enable", false}} {
		handle("POST /authgate/users/{user}/"+state.verb, func(b adminBackend, r *http.Request) (int, any, error) {
			v, err := b.ops.setDisabled(user(r), state.disabled)
			return http.StatusOK, v, err
		})
	}
	handle("PUT /authgate/users/{user}/password", func(b adminBackend, r *http.Request) (int, any, error) {
		var req struct {
			Password string `json:"password"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.setPassword(user(r), req.Password)
		return http.StatusOK, v, err
	})
	handle("PUT /authgate/users/{user}/pin", func(b adminBackend, r *http.Request) (int, any, error) {
		var req struct {
			PIN string `json:"pin"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.setPIN(user(r), req.PIN)
		return http.StatusOK, v, err
	})
	handle("GET /authgate/users/{user}/settings", func(b adminBackend, r *http.Request) (int, any, error) {
		v, err := b.ops.listSettings(user(r))
		return http.StatusOK, v, err
	})
	handle("PUT /authgate/users/{user}/settings/{name}", func(b adminBackend, r *http.Request) (int, any, error) {
		var req settingRequest
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		req.Name = r.PathValue("name")
		v, err := b.ops.setSetting(user(r), req)
		return http.StatusOK, v, err
	})
	handle("DELETE /authgate/users/{user}/settings/{name}", func(b adminBackend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.ops.deleteSetting(user(r), r.PathValue("name"))
	})

	handle("GET /authgate/keys", func(b adminBackend, r *http.Request) (int, any, error) {
		v, err := b.ops.listKeys(r.URL.Query().Get("user"))
		return http.StatusOK, v, err
	})
	handle("POST /authgate/keys", func(b adminBackend, r *http.Request) (int, any, error) {
		var req createKeyRequest
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.createKey(req)
		return http.StatusCreated, v, err
	})
	handle("POST /authgate/keys/{id}/revoke", func(b adminBackend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.ops.revokeKey(r.PathValue("id"))
	})
	// By the key itself, in the body: never in a URL, which is logged.
	handle("POST /authgate/keys/revoke", func(b adminBackend, r *http.Request) (int, any, error) {
		var req revokeKeyRequest
		if err := decodeAdmin(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.ops.revokeKeyBySecret(req.Key)
		return http.StatusOK, v, err
	})

	handle("GET /authgate/sessions", func(b adminBackend, r *http.Request) (int, any, error) {
		v, err := b.ops.listSessions(r.URL.Query().Get("user"))
		return http.StatusOK, v, err
	})
	handle("POST /authgate/sessions/{id}/revoke", func(b adminBackend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.ops.revokeSession(r.PathValue("id"))
	})

	handle("GET /authgate/signing-keys", func(b adminBackend, _ *http.Request) (int, any, error) {
		v, err := b.ops.listSigningKeys(b.alg)
		return http.StatusOK, v, err
	})
	handle("POST /authgate/signing-keys/rotate", func(b adminBackend, _ *http.Request) (int, any, error) {
		v, err := b.rotate()
		return http.StatusOK, v, err
	})

	addImportRoutes(handle)

	// The backup streams the file instead of encoding JSON.
	mux.HandleFunc("GET /authgate/backup", func(w http.ResponseWriter, r *http.Request) {
		b, err := backend()
		if err != nil {
			writeAdminError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="authgate.db"`)
		w.Header().Set("Cache-Control", "no-store")
		// A read transaction: writers go on; the copy is one consistent
		// point in time. A failure midway truncates the body, which the
		// CLI detects by checking the copy.
		_, _ = b.ops.st.WriteBackup(w)
	})

	mux.HandleFunc("/authgate/", func(w http.ResponseWriter, r *http.Request) {
		writeAdminError(w, notFoundf("no authgate admin route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// decodeAdmin reads a JSON body into v, refusing unknown fields (a typo
// must not pass silently), a member given twice, and bodies over
// maxAdminBody.
func decodeAdmin(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return invalidf("request body: %v", err)
	}
	if len(body) > maxAdminBody {
		return &opError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: larger than %d bytes", maxAdminBody)}
	}
	if aerr := checkDuplicateNames(body); aerr != nil {
		return invalidf("request body: %s", aerr.description)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("request body: %v", err)
	}
	return nil
}

// checkAdminContentType refuses a write whose Content-Type is not JSON,
// body or not. Defence in depth behind Caddy's origin checks: a web page
// can send a cross-site form or text/plain POST without a CORS preflight,
// never an application/json one.
func checkAdminContentType(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &opError{http.StatusUnsupportedMediaType, "admin write routes accept Content-Type: application/json only"}
	}
	return nil
}

// adminStatus is the HTTP status of an operation's error.
func adminStatus(err error) int {
	var oe *opError
	switch {
	case errors.As(err, &oe):
		return oe.status
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrMalformed):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func writeAdminError(w http.ResponseWriter, err error) {
	writeAdminJSON(w, adminStatus(err), struct {
		Error string `json:"error"`
	}{err.Error()})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
)
