// Package plentymarkets is the plentymarkets REST login dialect (API.md
// section 4): clients of the plentymarkets API log in, refresh, log out,
// use quick_login and check secrets against authgate unchanged. It only
// translates requests into calls of the auth service and the service's
// answers and refusals into the plentymarkets wire.
package plentymarkets

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
)

// Dialect serves the routes of one `api plentymarkets <prefix>` mount.
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
		"/login":          d.login,
		"/login/refresh":  d.refresh,
		"/logout":         d.logout,
		"/user":           d.user,
		"/quick_login":    d.quickLogin,
		"/check_password": d.checkSecret(false),
		"/check_pin":      d.checkSecret(true),
		"/session_limits": d.sessionLimits,
	}
}

var (
	errMissingLogin    = httpx.Refuse(http.StatusBadRequest, "invalid_request", "username and password are required")
	errMissingRefresh  = httpx.Refuse(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	errMissingClient   = httpx.Refuse(http.StatusBadRequest, "invalid_request", "client_id and client_secret are required")
	errMissingPassword = httpx.Refuse(http.StatusBadRequest, "invalid_request", "password is required")
	errMissingPIN      = httpx.Refuse(http.StatusBadRequest, "invalid_request", "pin is required")
)

// The dialect answers refusals in two shapes (API.md section 4), one per
// route, so a client knows which one to parse:
//   - login, login/refresh and quick_login: the OAuth shape section 3
//     writes, plus "message" (the same text), which plentymarkets login
//     clients print;
//   - every other route, and proxied traffic below the prefix (the handler
//     calls WriteRefusal): the error object the plentymarkets service writes
//     for a refused API call, {"error":{"code","message","reason"}}; clients
//     read error.message and crash on a string there.
//
// In both, a locked account is 403, not 429: plentymarkets clients read 429
// as throttling and retry forever, and know 403 as "locked".

// refuse answers a refusal of a Bearer route in the error-object shape.
func (d *Dialect) refuse(w http.ResponseWriter, err error) {
	d.logUnavailable(err)
	_ = WriteRefusal(w, httpx.RefusalOf(err))
}

// refuseLogin answers a refusal of a login route in the OAuth shape.
func (d *Dialect) refuseLogin(w http.ResponseWriter, err error) {
	d.logUnavailable(err)
	r := lockAsForbidden(httpx.RefusalOf(err))
	httpx.SetChallenge(w.Header(), r)
	_ = httpx.WriteJSON(w, r.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}{r.Code, r.Description, r.Description})
}

// logUnavailable logs a store failure with its cause (never shown to the
// client).
func (d *Dialect) logUnavailable(err error) {
	if httpx.Unavailable(err) {
		d.logger.Error("credential store unavailable", zap.Error(err))
	}
}

// ctx is the request's context, naming this dialect for the logins
// metric and the audit trail.
func (d *Dialect) ctx(r *http.Request) context.Context {
	return auth.WithDialect(r.Context(), "plentymarkets")
}

// errorObject is the body of a refused plentymarkets API call.
type errorObject struct {
	Error struct {
		Code    int    `json:"code"`    // the HTTP status
		Message string `json:"message"` // the human description
		Reason  string `json:"reason"`  // the RFC 6750 / OAuth code
	} `json:"error"`
}

// WriteRefusal writes r in the plentymarkets error-object shape, with the
// status, WWW-Authenticate and Retry-After of section 3 (a lock as 403).
// The handler uses it for proxied traffic below a plentymarkets prefix.
func WriteRefusal(w http.ResponseWriter, r *httpx.Refusal) error {
	r = lockAsForbidden(r)
	httpx.SetChallenge(w.Header(), r)
	var body errorObject
	body.Error.Code, body.Error.Message, body.Error.Reason = r.Status, r.Description, r.Code
	return httpx.WriteJSON(w, r.Status, body)
}

// lockAsForbidden turns section 3's 429 for a locked account into the 403
// plentymarkets clients understand; Retry-After stays.
func lockAsForbidden(r *httpx.Refusal) *httpx.Refusal {
	if r.Status != http.StatusTooManyRequests {
		return r
	}
	c := *r
	c.Status = http.StatusForbidden
	return &c
}

// only answers 405 (with refuse) unless r uses one of methods; it reports
// whether r may go on.
func (d *Dialect) only(w http.ResponseWriter, r *http.Request, refuse func(http.ResponseWriter, error), methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", methods[0])
	refuse(w, httpx.MethodNotAllowed(methods[0]))
	return false
}

// tokenBody is the plentymarkets token response, with both the snake_case
// and the camelCase spellings clients read.
type tokenBody struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`

	TokenTypeCamel    string `json:"tokenType"`
	AccessTokenCamel  string `json:"accessToken"`
	ExpiresInCamel    int64  `json:"expiresIn"`
	RefreshTokenCamel string `json:"refreshToken"`
}

func writeTokenPair(w http.ResponseWriter, t auth.TokenPair) {
	_ = httpx.WriteJSON(w, http.StatusOK, tokenBody{
		TokenType: "Bearer", AccessToken: t.Access, ExpiresIn: t.ExpiresIn, RefreshToken: t.Refresh,
		TokenTypeCamel: "Bearer", AccessTokenCamel: t.Access, ExpiresInCamel: t.ExpiresIn, RefreshTokenCamel: t.Refresh,
	})
}

// POST {p}/login: username and password as JSON, form or query.
func (d *Dialect) login(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuseLogin, http.MethodPost) {
		return
	}
	in, err := httpx.ReadParams(w, r)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	username, password := in.First("username"), in.First("password")
	if username == "" || password == "" {
		d.refuseLogin(w, errMissingLogin)
		return
	}
	pair, err := d.svc.Login(d.ctx(r), username, password)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	writeTokenPair(w, pair)
}

// POST {p}/login/refresh: refresh_token (or refreshToken) as JSON, form or
// query. A Bearer header may come along (clients send their expired access
// token); it plays no part.
func (d *Dialect) refresh(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuseLogin, http.MethodPost) {
		return
	}
	in, err := httpx.ReadParams(w, r)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	refresh := in.First("refresh_token", "refreshToken")
	if refresh == "" {
		d.refuseLogin(w, errMissingRefresh)
		return
	}
	pair, err := d.svc.Refresh(d.ctx(r), refresh)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	writeTokenPair(w, pair)
}

// POST {p}/logout: revokes the Bearer token's session; empty 200.
func (d *Dialect) logout(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuse, http.MethodPost) {
		return
	}
	p, err := d.cred.Authenticate(d.svc, r)
	if err == nil {
		err = d.svc.Logout(d.ctx(r), &p)
	}
	if err != nil {
		d.refuse(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// userBody is the plentymarkets user object.
type userBody struct {
	ID       string   `json:"id"`
	User     string   `json:"user"`
	RealName string   `json:"realName"`
	Email    string   `json:"email"`
	Lang     string   `json:"lang"`
	Timezone string   `json:"timezone"`
	Roles    []string `json:"roles"`
}

// GET {p}/user: the caller, by Bearer token or API key.
func (d *Dialect) user(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuse, http.MethodGet, http.MethodHead) {
		return
	}
	p, err := d.cred.AuthenticateRoute(d.svc, r)
	if err != nil {
		d.refuse(w, err)
		return
	}
	u, err := d.svc.User(&p)
	if err != nil {
		d.refuse(w, err)
		return
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	_ = httpx.WriteJSON(w, http.StatusOK, userBody{
		ID: u.ID, User: u.Username, RealName: u.RealName(), Email: u.Email,
		Lang: u.Lang, Timezone: u.Timezone, Roles: roles,
	})
}

// POST {p}/quick_login: an API key's client_id and client_secret (camelCase
// spellings accepted too) log its owner in; the session's tokens may only do
// what the key may.
func (d *Dialect) quickLogin(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuseLogin, http.MethodPost) {
		return
	}
	in, err := httpx.ReadParams(w, r)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	id, secret := in.First("client_id", "clientId"), in.First("client_secret", "clientSecret")
	if id == "" || secret == "" {
		d.refuseLogin(w, errMissingClient)
		return
	}
	pair, err := d.svc.QuickLogin(d.ctx(r), id, secret)
	if err != nil {
		d.refuseLogin(w, err)
		return
	}
	writeTokenPair(w, pair)
}

// POST {p}/check_password and {p}/check_pin: does the Bearer token's user
// have this password (or PIN)? A wrong one counts toward the account's
// lockout, as a failed login does.
func (d *Dialect) checkSecret(pin bool) http.HandlerFunc {
	name, missing := "password", errMissingPassword
	if pin {
		name, missing = "pin", errMissingPIN
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !d.only(w, r, d.refuse, http.MethodPost) {
			return
		}
		p, err := d.cred.Authenticate(d.svc, r)
		if err != nil {
			d.refuse(w, err)
			return
		}
		if p.SessionID() == "" {
			d.refuse(w, auth.ErrNeedsBearer)
			return
		}
		// A quick_login session follows its key's permissions here too.
		if !p.Allows(r.Method) {
			d.refuse(w, auth.ErrForbidden)
			return
		}
		in, err := httpx.ReadParams(w, r)
		if err != nil {
			d.refuse(w, err)
			return
		}
		given := in.First(name)
		if given == "" {
			d.refuse(w, missing)
			return
		}
		if err := d.svc.CheckSecret(d.ctx(r), &p, given, pin); err != nil {
			d.refuse(w, err)
			return
		}
		_ = httpx.WriteJSON(w, http.StatusOK, struct {
			Valid bool `json:"valid"`
		}{true})
	}
}

// GET {p}/session_limits: how many live sessions the Bearer token's user
// may have, and has, in the budget of the caller's own session (logins
// share one; each key's quick_login sessions have their own). A login past
// the limit ends the oldest session of its budget.
func (d *Dialect) sessionLimits(w http.ResponseWriter, r *http.Request) {
	if !d.only(w, r, d.refuse, http.MethodGet, http.MethodHead) {
		return
	}
	p, err := d.cred.AuthenticateRoute(d.svc, r)
	if err != nil {
		d.refuse(w, err)
		return
	}
	limit, live, err := d.svc.SessionLimits(&p)
	if err != nil {
		d.refuse(w, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, struct {
		Limit  int `json:"limit"`
		Active int `json:"active"`
	}{limit, live})
}
