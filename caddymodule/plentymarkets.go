package caddymodule

import (
	"net/http"
)

// The plentymarkets REST login dialect (API.md section 4): clients of the
// plentymarkets API log in, refresh, log out and check secrets against
// authgate unchanged.

func (h *Handler) plentymarketsRoutes() map[string]routeFunc {
	return map[string]routeFunc{
		"/login":          h.pmLogin,
		"/login/refresh":  h.pmRefresh,
		"/logout":         h.pmLogout,
		"/user":           h.pmUser,
		"/quick_login":    h.pmQuickLogin,
		"/check_password": h.pmCheckSecret(false),
		"/check_pin":      h.pmCheckSecret(true),
		"/session_limits": h.pmSessionLimits,
	}
}

var (
	errMissingClient   = refusal(http.StatusBadRequest, "invalid_request", "client_id and client_secret are required")
	errMissingPassword = refusal(http.StatusBadRequest, "invalid_request", "password is required")
	errMissingPIN      = refusal(http.StatusBadRequest, "invalid_request", "pin is required")
	errBearerOnly      = refusal(http.StatusBadRequest, "invalid_request", "this route needs a Bearer access token, not an API key")
)

// pmTokenBody is the plentymarkets token response, with both the snake_case
// and the camelCase spellings clients read.
type pmTokenBody struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`

	TokenTypeCamel    string `json:"tokenType"`
	AccessTokenCamel  string `json:"accessToken"`
	ExpiresInCamel    int64  `json:"expiresIn"`
	RefreshTokenCamel string `json:"refreshToken"`
}

func writeTokenPair(w http.ResponseWriter, t tokenPair) error {
	return writeJSON(w, http.StatusOK, pmTokenBody{
		TokenType: "Bearer", AccessToken: t.access, ExpiresIn: t.expiresIn, RefreshToken: t.refresh,
		TokenTypeCamel: "Bearer", AccessTokenCamel: t.access, ExpiresInCamel: t.expiresIn, RefreshTokenCamel: t.refresh,
	})
}

// POST {p}/login: username and password as JSON, form or query.
func (h *Handler) pmLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	in, aerr := readParams(w, r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	username, password := in.first("username"), in.first("password")
	if username == "" || password == "" {
		return h.refuse(w, errMissingLogin)
	}
	u, aerr := h.app.checkPassword(username, password)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	pair, aerr := h.app.openSession(u, 0, "")
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	return writeTokenPair(w, pair)
}

// POST {p}/login/refresh: refresh_token (or refreshToken) as JSON, form or
// query. A Bearer header may come along (clients send their expired access
// token); it plays no part.
func (h *Handler) pmRefresh(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	in, aerr := readParams(w, r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	refresh := in.first("refresh_token", "refreshToken")
	if refresh == "" {
		return h.refuse(w, errMissingRefresh)
	}
	pair, aerr := h.app.refreshSession(refresh)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	return writeTokenPair(w, pair)
}

// POST {p}/logout: revokes the Bearer token's session; empty 200.
func (h *Handler) pmLogout(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	p, aerr := h.authenticate(r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	if aerr := h.app.closeSession(&p); aerr != nil {
		return h.refuse(w, aerr)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// pmUserBody is the plentymarkets user object.
type pmUserBody struct {
	ID       string   `json:"id"`
	User     string   `json:"user"`
	RealName string   `json:"realName"`
	Email    string   `json:"email"`
	Lang     string   `json:"lang"`
	Timezone string   `json:"timezone"`
	Roles    []string `json:"roles"`
}

// GET {p}/user: the caller, by Bearer token or API key.
func (h *Handler) pmUser(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, http.MethodGet)
	}
	p, aerr := h.authenticateRoute(r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	u, err := h.app.store.UserByID(p.userID())
	if err != nil {
		return h.refuse(w, storeFailure(err, errBadToken))
	}
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return writeJSON(w, http.StatusOK, pmUserBody{
		ID: u.ID, User: u.Username, RealName: u.RealName(), Email: u.Email,
		Lang: u.Lang, Timezone: u.Timezone, Roles: roles,
	})
}

// POST {p}/quick_login: an API key's client_id and client_secret (camelCase
// spellings accepted too) log its owner in; the session's tokens may only do
// what the key may.
func (h *Handler) pmQuickLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, http.MethodPost)
	}
	in, aerr := readParams(w, r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	id, secret := in.first("client_id", "clientId"), in.first("client_secret", "clientSecret")
	if id == "" || secret == "" {
		return h.refuse(w, errMissingClient)
	}
	k, u, aerr := h.app.checkClientSecret(id, secret)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	pair, aerr := h.app.openSession(u, k.Permissions, k.ID)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	return writeTokenPair(w, pair)
}

// POST {p}/check_password and {p}/check_pin: does the Bearer token's user
// have this password (or PIN)? A wrong one counts toward the account's
// lockout, as a failed login does.
func (h *Handler) pmCheckSecret(pin bool) routeFunc {
	name, missing := "password", errMissingPassword
	if pin {
		name, missing = "pin", errMissingPIN
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, http.MethodPost)
		}
		p, aerr := h.authenticate(r)
		if aerr != nil {
			return h.refuse(w, aerr)
		}
		if p.sessionID() == "" {
			return h.refuse(w, errBearerOnly)
		}
		// A quick_login session follows its key's permissions here too.
		if !p.allows(r.Method) {
			return h.refuse(w, errForbidden)
		}
		in, aerr := readParams(w, r)
		if aerr != nil {
			return h.refuse(w, aerr)
		}
		secret := in.first(name)
		if secret == "" {
			return h.refuse(w, missing)
		}
		u, err := h.app.store.UserByID(p.userID())
		if err != nil {
			return h.refuse(w, storeFailure(err, errBadToken))
		}
		if aerr := h.app.checkUserSecret(u, secret, pin); aerr != nil {
			return h.refuse(w, aerr)
		}
		return writeJSON(w, http.StatusOK, struct {
			Valid bool `json:"valid"`
		}{true})
	}
}

// GET {p}/session_limits: how many live sessions the Bearer token's user
// may have, and has, in the budget of the caller's own session (logins
// share one; each key's quick_login sessions have their own). A login past
// the limit ends the oldest session of its budget.
func (h *Handler) pmSessionLimits(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(w, http.MethodGet)
	}
	p, aerr := h.authenticateRoute(r)
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	if p.sessionID() == "" {
		return h.refuse(w, errBearerOnly)
	}
	u, err := h.app.store.UserByID(p.userID())
	if err != nil {
		return h.refuse(w, storeFailure(err, errBadToken))
	}
	limit, live, aerr := h.app.sessionLimits(u, p.keyID())
	if aerr != nil {
		return h.refuse(w, aerr)
	}
	return writeJSON(w, http.StatusOK, struct {
		Limit  int `json:"limit"`
		Active int `json:"active"`
	}{limit, live})
}
