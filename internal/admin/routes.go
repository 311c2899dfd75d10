package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/store"
)

// The operations as JSON routes. The plugin mounts them on Caddy's admin
// endpoint (localhost or a unix socket; never the sites' listeners);
// `caddy authgate ...` calls them there, or, with --db, serves them
// in-process on the opened file.
//
//	GET    /authgate/users                       list
//	POST   /authgate/users                       add {username,password,email,roles}
//	GET    /authgate/users/{user}                show (username, email or id)
//	PATCH  /authgate/users/{user}                set profile fields, roles, session limit
//	DELETE /authgate/users/{user}                delete, with their keys and sessions
//	POST   /authgate/users/{user}/disable|enable
//	POST   /authgate/users/{user}/unlock         clears the lockout's failures and lock
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
//	GET    /authgate/lockouts                    accounts with failures or a lock now
//	GET    /authgate/signing-keys
//	POST   /authgate/signing-keys/rotate
//	GET    /authgate/backup                      the whole store, consistent (a bbolt file, or for
//	                                             other backends their JSON snapshot: see X-Authgate-Backup)
//	POST   /authgate/import/users|keys           imports.go
//
// Errors are {"error": "..."} with 400, 404, 409, 415 or 503. No route
// ever returns a secret, except a key and client secret once, at creation.

// Backend is what the routes work on. It is looked up on every request:
// on a running server, the live config's.
type Backend struct {
	Ops Ops
	// Rotate makes a new signing key the signer and, on a running server,
	// swaps the live issuer (auth.Service.RotateSigningKey). nil rotates in
	// the store only (Ops.RotateSigningKey of Alg).
	Rotate func() (store.SigningKey, error)
	// Alg is the configured signing algorithm; "" when unknown (--db).
	Alg string
	// Caddyfile reads Caddyfiles for the caddyfile import; nil refuses
	// that format.
	Caddyfile CaddyfileAdapter
	// Audit hears every change the routes make (audit.go); nil hears
	// nothing (--db: the commands run on a file, by whoever holds it).
	Audit func(AdminEvent)
}

func (b Backend) rotate() (SigningKeyView, error) {
	if b.Rotate == nil {
		return b.Ops.RotateSigningKey(b.Alg)
	}
	k, err := b.Rotate()
	if err != nil {
		return SigningKeyView{}, err
	}
	return viewNewSigningKey(k), nil
}

// MaxBody caps request bodies; no admin request needs more.
const MaxBody = 1 << 20

// Handler serves the routes.
type Handler struct {
	mux *http.ServeMux
}

// route serves one route: it returns the status and the value to encode
// as JSON, or an error.
type route func(b Backend, r *http.Request) (int, any, error)

// failure is where a route leaves its error for Serve to return.
type failure struct{ err *Error }

type failureKey struct{}

func fail(r *http.Request, err error) {
	r.Context().Value(failureKey{}).(*failure).err = asError(err)
}

// NewHandler builds the routes over backend.
func NewHandler(backend func() (Backend, error)) *Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, route route) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := checkAdminContentType(r); err != nil {
				fail(r, err)
				return
			}
			b, err := backend()
			if err != nil {
				fail(r, err)
				return
			}
			status, v, err := route(b, r)
			if err != nil {
				fail(r, err)
				return
			}
			if b.Audit != nil && audited(r) {
				b.Audit(adminEvent(pattern, r, v))
			}
			writeJSON(w, status, v)
		})
	}
	user := func(r *http.Request) string { return r.PathValue("user") }

	handle("GET /authgate/users", func(b Backend, _ *http.Request) (int, any, error) {
		v, err := b.Ops.ListUsers()
		return http.StatusOK, v, err
	})
	handle("POST /authgate/users", func(b Backend, r *http.Request) (int, any, error) {
		var req AddUserRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.AddUser(req)
		return http.StatusCreated, v, err
	})
	handle("GET /authgate/users/{user}", func(b Backend, r *http.Request) (int, any, error) {
		v, err := b.Ops.ShowUser(user(r))
		return http.StatusOK, v, err
	})
	handle("PATCH /authgate/users/{user}", func(b Backend, r *http.Request) (int, any, error) {
		var c UserChanges
		if err := decode(r, &c); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.SetProfile(user(r), c)
		return http.StatusOK, v, err
	})
	handle("DELETE /authgate/users/{user}", func(b Backend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.Ops.DeleteUser(user(r))
	})
	for _, state := range []struct {
		verb     string
		disabled bool
	}{{"disable", true}, {"enable", false}} {
		handle("POST /authgate/users/{user}/"+state.verb, func(b Backend, r *http.Request) (int, any, error) {
			v, err := b.Ops.SetDisabled(user(r), state.disabled)
			return http.StatusOK, v, err
		})
	}
	handle("POST /authgate/users/{user}/unlock", func(b Backend, r *http.Request) (int, any, error) {
		v, err := b.Ops.UnlockUser(user(r))
		return http.StatusOK, v, err
	})
	handle("GET /authgate/lockouts", func(b Backend, _ *http.Request) (int, any, error) {
		v, err := b.Ops.ListLockouts()
		return http.StatusOK, v, err
	})
	handle("PUT /authgate/users/{user}/password", func(b Backend, r *http.Request) (int, any, error) {
		var req struct {
			Password string `json:"password"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.SetPassword(user(r), req.Password)
		return http.StatusOK, v, err
	})
	handle("PUT /authgate/users/{user}/pin", func(b Backend, r *http.Request) (int, any, error) {
		var req struct {
			PIN string `json:"pin"`
		}
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.SetPIN(user(r), req.PIN)
		return http.StatusOK, v, err
	})
	handle("GET /authgate/users/{user}/settings", func(b Backend, r *http.Request) (int, any, error) {
		v, err := b.Ops.ListSettings(user(r))
		return http.StatusOK, v, err
	})
	handle("PUT /authgate/users/{user}/settings/{name}", func(b Backend, r *http.Request) (int, any, error) {
		var req SettingRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		req.Name = r.PathValue("name")
		v, err := b.Ops.SetSetting(user(r), req)
		return http.StatusOK, v, err
	})
	handle("DELETE /authgate/users/{user}/settings/{name}", func(b Backend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.Ops.DeleteSetting(user(r), r.PathValue("name"))
	})

	handle("GET /authgate/keys", func(b Backend, r *http.Request) (int, any, error) {
		v, err := b.Ops.ListKeys(r.URL.Query().Get("user"))
		return http.StatusOK, v, err
	})
	handle("POST /authgate/keys", func(b Backend, r *http.Request) (int, any, error) {
		var req CreateKeyRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.CreateKey(req)
		return http.StatusCreated, v, err
	})
	handle("POST /authgate/keys/{id}/revoke", func(b Backend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.Ops.RevokeKey(r.PathValue("id"))
	})
	// By the key itself, in the body: never in a URL, which is logged.
	handle("POST /authgate/keys/revoke", func(b Backend, r *http.Request) (int, any, error) {
		var req revokeKeyRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		v, err := b.Ops.RevokeKeyBySecret(req.Key)
		return http.StatusOK, v, err
	})

	handle("GET /authgate/sessions", func(b Backend, r *http.Request) (int, any, error) {
		v, err := b.Ops.ListSessions(r.URL.Query().Get("user"))
		return http.StatusOK, v, err
	})
	handle("POST /authgate/sessions/{id}/revoke", func(b Backend, r *http.Request) (int, any, error) {
		return http.StatusOK, struct{}{}, b.Ops.RevokeSession(r.PathValue("id"))
	})

	handle("GET /authgate/signing-keys", func(b Backend, _ *http.Request) (int, any, error) {
		v, err := b.Ops.ListSigningKeys(b.Alg)
		return http.StatusOK, v, err
	})
	handle("POST /authgate/signing-keys/rotate", func(b Backend, _ *http.Request) (int, any, error) {
		v, err := b.rotate()
		return http.StatusOK, v, err
	})

	addImportRoutes(handle)

	// The backup streams the store instead of encoding JSON.
	mux.HandleFunc("GET /authgate/backup", func(w http.ResponseWriter, r *http.Request) {
		b, err := backend()
		if err != nil {
			fail(r, err)
			return
		}
		if b.Audit != nil {
			b.Audit(adminEvent("GET /authgate/backup", r, nil))
		}
		kind, _ := b.Ops.Store.Backend()
		w.Header().Set(BackupFormatHeader, kind)
		if kind == "bbolt" {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="authgate.db"`)
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Disposition", `attachment; filename="authgate-backup.json"`)
		}
		w.Header().Set("Cache-Control", "no-store")
		// A read transaction: writers go on; the copy is one consistent
		// point in time. A failure midway truncates the body, which the
		// CLI detects by checking the copy.
		_, _ = b.Ops.Store.Backup(w)
	})

	mux.HandleFunc("/authgate/", func(_ http.ResponseWriter, r *http.Request) {
		fail(r, notFoundf("no authgate admin route %s %s", r.Method, r.URL.Path))
	})
	return &Handler{mux: mux}
}

// ServeHTTP serves a request and writes a failure itself, as
// {"error": "..."} with its status.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.Serve(w, r); err != nil {
		writeJSON(w, err.Status, struct {
			Error string `json:"error"`
		}{err.Msg})
	}
}

// Serve serves a request, but returns a failure instead of writing it:
// nothing is written then but the Cache-Control header, so that the
// caller may answer it in its own way (Caddy's admin endpoint, as an
// APIError) and no cache keeps it.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) *Error {
	f := &failure{}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), failureKey{}, f)))
	if f.err != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	return f.err
}

// decode reads a JSON body into v, refusing unknown fields (a typo must
// not pass silently), a member given twice, and bodies over MaxBody.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return invalidf("request body: %v", err)
	}
	if len(body) > MaxBody {
		return &Error{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body: larger than %d bytes", MaxBody)}
	}
	if err := httpx.CheckDuplicateNames(body); err != nil {
		return invalidf("request body: %s", httpx.RefusalOf(err).Description)
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
		return &Error{http.StatusUnsupportedMediaType, "admin write routes accept Content-Type: application/json only"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
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
