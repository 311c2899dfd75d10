package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// The login, refresh and logout logic shared by both dialects. The dialect
// files only translate requests and responses.

var (
	errBadCredentials = &authError{http.StatusUnauthorized, "invalid_credentials", "the username or password is wrong"}
	errMissingLogin   = &authError{http.StatusBadRequest, "invalid_request", "username and password are required"}
	errBadRefresh     = &authError{http.StatusUnauthorized, "invalid_grant", "the refresh token is invalid, expired or already used"}
	errMissingRefresh = &authError{http.StatusBadRequest, "invalid_request", "refresh_token is required"}
	errNeedsBearer    = &authError{http.StatusBadRequest, "invalid_request", "this route needs a Bearer access token; API keys are revoked with `caddy authgate key revoke`"}
)

// tokenPair is what a login or a refresh hands out.
type tokenPair struct {
	access    string
	expiresIn int64 // seconds
	refresh   string
}

// checkPassword finds the account named by login (username or email) and
// verifies password. Unknown accounts cost one hash too, and every failure
// is the same error, so neither status, body nor timing tells them apart.
func (a *App) checkPassword(login, password string) (*store.User, *authError) {
	u, err := a.store.UserByLogin(login)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return nil, errStore
		}
		store.VerifyDummy(password)
		return nil, errBadCredentials
	}
	if u.PasswordHash == "" {
		store.VerifyDummy(password)
		return nil, errBadCredentials
	}
	ok, rehash, err := store.VerifySecret(u.PasswordHash, password)
	if err != nil || !ok || u.Disabled {
		return nil, errBadCredentials
	}
	if rehash {
		a.upgradeHash(u.ID, password)
	}
	return u, nil
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
	if err := a.store.CreateSession(s, store.DigestOf(refresh)); err != nil {
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
	return a.issuePair(u, s, next, now)
}

func (a *App) issuePair(u *store.User, s *store.Session, refresh string, now time.Time) (tokenPair, *authError) {
	access, exp, err := a.issuer.Issue(tokens.Claims{
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
	if p.session == nil {
		return errNeedsBearer
	}
	err := a.store.RevokeSession(p.session.ID, "logout", a.now().UTC())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return errStore
	}
	return nil
}
