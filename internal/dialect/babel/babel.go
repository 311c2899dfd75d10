// Package babel is the Babel Licensing Service management dialect (API.md
// section 5): its clients log in, read and edit their own profile, and log
// out against authgate unchanged. Every answer, success or refusal, is a
// JSON envelope {"success","code","message",...}. It only translates
// requests into calls of the auth service and its answers into envelopes.
package babel

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/store"
)

// Dialect serves the routes of one `api babel <prefix>` mount.
type Dialect struct {
	svc    *auth.Service
	cred   httpx.Credentials
	logger *zap.Logger
}

// New serves the dialect on svc, reading credentials as cred says.
func New(svc *auth.Service, cred httpx.Credentials, logger *zap.Logger) *Dialect {
	return &Dialect{svc: svc, cred: cred, logger: logger}
}

// Routes are the dialect's routes, relative to its prefix.
func (d *Dialect) Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/login":  d.login,
		"/user":   d.user,
		"/logout": d.logout,
	}
}

// Envelope codes. 0 is success; each kind of refusal has its own code, so
// clients can branch on it without reading messages. The numbers are part
// of the public contract: never renumber, only add.
//
//	code  HTTP  meaning
//	   0  200   success
//	   1  400   bad request: malformed JSON, a missing or mistyped field, an
//	            attempt to change an immutable field, an unknown setting,
//	            more than one credential, an API key on logout
//	   2  415   unsupported content type (send application/json)
//	   3  413   body larger than 64 KiB
//	   4  401   wrong username or password
//	   5  429   account locked after too many failures (see Retry-After)
//	   6  401   no credential
//	   7  401   invalid, expired or revoked token or API key
//	   8  403   forbidden: the key lacks the permission, a readOnly setting,
//	            or an email change (an administrator makes those)
//	   9  409   conflict (no route answers it since email changes moved to
//	            administration; kept, as codes are never reused)
//	  10  503   credential store unavailable; try again
//	  11  405   method not allowed (see Allow)
const (
	CodeBadRequest        = 1
	CodeUnsupportedType   = 2
	CodeBodyTooLarge      = 3
	CodeBadCredentials    = 4
	CodeLocked            = 5
	CodeMissingCredential = 6
	CodeInvalidToken      = 7
	CodeForbidden         = 8
	CodeConflict          = 9
	CodeUnavailable       = 10
	CodeMethodNotAllowed  = 11
)

// envelope starts every Babel response body.
type envelope struct {
	Success bool   `json:"success"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func ok(message string) envelope { return envelope{Success: true, Message: message} }

// codeOf maps a refusal of any route to its envelope code: the service's
// errors by what they are, the request's own by their status.
func codeOf(err error, r *httpx.Refusal) int {
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		return CodeLocked
	case httpx.Unavailable(err):
		return CodeUnavailable
	}
	switch r.Status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		switch r.Code {
		case "unauthorized":
			return CodeMissingCredential
		case "invalid_credentials":
			return CodeBadCredentials
		}
		return CodeInvalidToken
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeBodyTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedType
	}
	if r.Status < 500 {
		return CodeBadRequest
	}
	return CodeUnavailable
}

// refuse answers a refusal as an envelope, with the status, challenge and
// Retry-After the other dialect would give; a store failure is logged with
// its cause (never shown to the client).
func (d *Dialect) refuse(w http.ResponseWriter, err error) {
	if httpx.Unavailable(err) {
		d.logger.Error("credential store unavailable", zap.Error(err))
	}
	r := httpx.RefusalOf(err)
	httpx.SetChallenge(w.Header(), r)
	_ = httpx.WriteJSON(w, r.Status, envelope{Code: codeOf(err, r), Message: r.Description})
}

// ctx is the request's context, naming this dialect for the logins
// metric and the audit trail.
func (d *Dialect) ctx(r *http.Request) context.Context {
	return auth.WithDialect(r.Context(), "babel")
}

// only answers 405 unless r uses one of methods; it reports whether r may go on.
func (d *Dialect) only(w http.ResponseWriter, r *http.Request, allow string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", allow)
	d.refuse(w, httpx.MethodNotAllowed(allow))
	return false
}

var errMissingLogin = httpx.Refuse(http.StatusBadRequest, "invalid_request", "username and password are required")

// POST {p}/login: {"username","password"}; the username may be the email.
func (d *Dialect) login(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, http.MethodPost, http.MethodPost) {
		return
	}
	in, err := readFields(w, r)
	if err != nil {
		d.refuse(w, err)
		return
	}
	var username, password string
	if err := in.decode("username", &username); err != nil {
		d.refuse(w, err)
		return
	}
	if err := in.decode("password", &password); err != nil {
		d.refuse(w, err)
		return
	}
	if username == "" || password == "" {
		d.refuse(w, errMissingLogin)
		return
	}
	pair, err := d.svc.Login(d.ctx(r), username, password)
	if err != nil {
		d.refuse(w, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, struct {
		envelope
		Token     string `json:"token"`
		ExpiresIn int64  `json:"expiresIn"`
	}{ok("logged in"), pair.Access, pair.ExpiresIn})
}

// POST {p}/logout: revokes the Bearer token's session. API keys are
// revoked by administration, not here.
func (d *Dialect) logout(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, http.MethodPost, http.MethodPost) {
		return
	}
	p, err := d.cred.Authenticate(d.svc, r)
	if err == nil {
		_, err = readFields(w, r)
	}
	if err == nil {
		err = d.svc.Logout(d.ctx(r), &p)
	}
	if err != nil {
		d.refuse(w, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, ok("logged out"))
}

// {p}/user: GET reads the caller's profile, POST edits it.
func (d *Dialect) user(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, "GET, HEAD, POST", http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	p, err := d.cred.AuthenticateRoute(d.svc, r)
	if err != nil {
		d.refuse(w, err)
		return
	}
	keys, err := d.svc.OwnKeys(&p)
	if err != nil {
		d.refuse(w, err)
		return
	}
	var u *store.User
	message := "OK"
	if r.Method == http.MethodPost {
		message = "user updated"
		u, err = d.edit(w, r, &p, keys)
	} else {
		u, err = d.svc.User(&p)
	}
	if err != nil {
		d.refuse(w, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, struct {
		envelope
		User userBody `json:"user"`
	}{ok(message), userOf(u, keys)})
}
