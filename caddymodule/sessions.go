package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// The login, refresh and logout logic shared by both dialects. The dialect
// files only translate requests and responses.

var (
	errBadCredentials = refusal(http.StatusUnauthorized, "invalid_credentials", "the username or password is wrong")
	errMissingLogin   = refusal(http.StatusBadRequest, "invalid_request", "username and password are required")
	errWrongPassword  = refusal(http.StatusUnauthorized, "invalid_credentials", "the password is wrong")
	errWrongPIN       = refusal(http.StatusUnauthorized, "invalid_credentials", "the PIN is wrong or not set")
	errBadRefresh     = refusal(http.StatusUnauthorized, "invalid_grant", "the refresh token is invalid, expired or already used")
	errMissingRefresh = refusal(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	errNeedsBearer    = refusal(http.StatusBadRequest, "invalid_request", "this route needs a Bearer access token; API keys are revoked with `caddy authgate key revoke`")
)

// tokenPair is what a login or a refresh hands out.
type tokenPair struct {
	access    string
	expiresIn int64 // seconds
	refresh   string
}

// checkPassword finds the account named by login (username or email) and
// verifies password, under the account's lockout. Unknown accounts cost one
// hash too and lock alike, and every failure is the same error, so neither
// status, body nor timing tells them apart.
func (a *App) checkPassword(login, password string) (*store.User, *authError) {
	if aerr := checkLoginSize(login); aerr != nil {
		return nil, aerr
	}
	u, err := a.store.UserByLogin(login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, errStore
	}
	account := unknownLoginAccount(login)
	if u != nil {
		account = userAccount(u.ID)
	}
	aerr := a.guard(a.lockout.logins, account, func() *authError {
		if u == nil || u.PasswordHash == "" {
			store.VerifyDummy(password)
			return errBadCredentials
		}
		ok, rehash, err := store.VerifySecret(u.PasswordHash, password)
		if err != nil || !ok || u.Disabled {
			return errBadCredentials
		}
		if rehash {
			a.upgradeHash(u.ID, password)
		}
		return nil
	})
	if aerr != nil {
		return nil, aerr
	}
	return u, nil
}

// errLoginTooLong refuses an identifier no account can have, before any
// lookup or hash (API.md section 6).
var errLoginTooLong = refusal(http.StatusBadRequest, "invalid_request",
	fmt.Sprintf("the username may have at most %d bytes, an email %d", store.MaxUsernameBytes, store.MaxEmailBytes))

// checkLoginSize caps a login identifier: an email (it has an @) at
// store.MaxEmailBytes, a username at store.MaxUsernameBytes.
func checkLoginSize(login string) *authError {
	limit := store.MaxUsernameBytes
	if strings.Contains(login, "@") {
		limit = store.MaxEmailBytes
	}
	if len(login) > limit {
		return errLoginTooLong
	}
	return nil
}

// unknownLoginAccount is the lockout account of a login that names no
// user: its normalised form, so every spelling of one name shares one
// counter, as the spellings of a real user's login do.
func unknownLoginAccount(login string) accountKey {
	if norm, err := store.NormalizeLogin(login); err == nil {
		login = norm
	}
	return loginAccount(login)
}

// checkUserSecret verifies the password (or, with pin, the PIN) of an
// already authenticated user, under the same lockout as their logins.
func (a *App) checkUserSecret(u *store.User, secret string, pin bool) *authError {
	return a.guard(a.lockout.logins, userAccount(u.ID), func() *authError {
		phc, wrong := u.PasswordHash, errWrongPassword
		if pin {
			phc, wrong = u.PINHash, errWrongPIN
		}
		if phc == "" {
			store.VerifyDummy(secret)
			return wrong
		}
		if ok, _, err := store.VerifySecret(phc, secret); err != nil || !ok {
			return wrong
		}
		return nil
	})
}

// upgradeHash replaces an imported (bcrypt) hash with argon2id after a
// successful login. A failure here does not fail the login.
func (a *App) upgradeHash(userID, password string) {
	phc, err := store.HashSecret(password)
	if err != nil {
		return
	}
	_, _ = a.store.UpdateUser(userID, func(u *store.User) error {
		u.PasswordHash = phc
		return nil
	})
}

// openSession starts a session for u and issues its first token pair.
// perms and keyID limit a session opened with an API key's client secret.
func (a *App) openSession(u *store.User, perms store.Permission, keyID string) (tokenPair, *authError) {
	now := a.now().UTC()
	refresh, err := store.NewSecret(store.RefreshPrefix)
	if err != nil {
		return tokenPair{}, errStore
	}
	s := &store.Session{
		UserID:      u.ID,
		CreatedAt:   now,
		ExpiresAt:   now.Add(time.Duration(a.RefreshTTL)),
		Permissions: perms,
		KeyID:       keyID,
	}
	if _, err := a.store.CreateSession(s, store.DigestOf(refresh), a.sessionLimit(u)); err != nil {
		return tokenPair{}, errStore
	}
	if _, err := a.store.UpdateUser(u.ID, func(u *store.User) error {
		u.LastLogIn = now
		return nil
	}); err != nil {
		return tokenPair{}, errStore
	}
	return a.issuePair(u, s, refresh, now)
}

// sessionLimit is how many live sessions u may have.
func (a *App) sessionLimit(u *store.User) int {
	if u.SessionLimit > 0 {
		return u.SessionLimit
	}
	return a.SessionLimit
}

// sessionLimits reports u's session limit and the live sessions it counts
// in the budget of sessions opened with keyID ("" for logins), for the
// session_limits route.
func (a *App) sessionLimits(u *store.User, keyID string) (limit, live int, aerr *authError) {
	live, err := a.store.LiveSessionsLike(u.ID, keyID, a.now().UTC())
	if err != nil {
		return 0, 0, storeFailure(err, errBadToken)
	}
	return a.sessionLimit(u), live, nil
}

// refreshSession spends a refresh token and issues the next pair. A spent
// token presented again revokes its whole session (RFC 9700 §4.14.2).
func (a *App) refreshSession(refresh string) (tokenPair, *authError) {
	old, err := store.ParseSecret(store.RefreshPrefix, refresh)
	if err != nil {
		return tokenPair{}, errBadRefresh
	}
	next, err := store.NewSecret(store.RefreshPrefix)
	if err != nil {
		return tokenPair{}, errStore
	}
	now := a.now().UTC()
	s, err := a.store.RotateRefresh(old, store.DigestOf(next), now, now.Add(time.Duration(a.RefreshTTL)))
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		a.logger.Warn("refresh token reused; session revoked")
		return tokenPair{}, errBadRefresh
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSessionRevoked):
		return tokenPair{}, errBadRefresh
	case err != nil:
		return tokenPair{}, errStore
	}
	u, err := a.store.UserByID(s.UserID)
	if err != nil {
		return tokenPair{}, storeFailure(err, errBadRefresh)
	}
	if u.Disabled {
		return tokenPair{}, errBadRefresh
	}
	if s.KeyID != "" { // a quick_login session ends with its key
		k, err := a.store.APIKeyByID(s.KeyID)
		if err != nil {
			return tokenPair{}, storeFailure(err, errBadRefresh)
		}
		if k.OwnerID != u.ID || !k.Usable(now) {
			return tokenPair{}, errBadRefresh
		}
	}
	return a.issuePair(u, s, next, now)
}

func (a *App) issuePair(u *store.User, s *store.Session, refresh string, now time.Time) (tokenPair, *authError) {
	access, exp, err := a.issuer.Load().Issue(tokens.Claims{
		UserID:      u.ID,
		Username:    u.Username,
		Roles:       u.Roles,
		SessionID:   s.ID,
		Epoch:       u.TokenEpoch,
		Permissions: s.Permissions,
	}, now)
	if err != nil {
		return tokenPair{}, errStore
	}
	// exp is whole seconds (as in the token); count from now's whole second
	// so a 24h lifetime reads 86400, not 86399.
	return tokenPair{access: access, expiresIn: exp.Unix() - now.Unix(), refresh: refresh}, nil
}

// closeSession revokes the session of a Bearer principal: its access and
// refresh tokens stop working on the very next request.
func (a *App) closeSession(p *principal) *authError {
	if p.sessionID() == "" {
		return errNeedsBearer
	}
	err := a.store.RevokeSession(p.sessionID(), "logout", a.now().UTC())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return errStore
	}
	return nil
}
