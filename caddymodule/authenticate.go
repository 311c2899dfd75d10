package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// authError is a refusal with the status and RFC 6750 error code of API.md
// section 3. Descriptions never contain the credential.
type authError struct {
	status      int
	code        string
	description string
	retryAfter  int // seconds; set only on 429
}

func refusal(status int, code, description string) *authError {
	return &authError{status: status, code: code, description: description}
}

func (e *authError) Error() string { return e.code + ": " + e.description }

var (
	errNoCredential = refusal(http.StatusUnauthorized, "unauthorized", "a Bearer token or an API key is required")
	errBadToken     = refusal(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
	errBadKey       = refusal(http.StatusUnauthorized, "invalid_token", "the API key is invalid, expired or revoked")
	errTwoMethods   = refusal(http.StatusBadRequest, "invalid_request", "use exactly one credential per request: one Authorization header or one API key, not both")
	errBadScheme    = refusal(http.StatusUnauthorized, "invalid_token", "the Authorization header must be \"Bearer <token>\"")
	errForbidden    = refusal(http.StatusForbidden, "insufficient_scope", "the credential does not permit this method")
	errStore        = refusal(http.StatusServiceUnavailable, "temporarily_unavailable", "the credential store could not be read; try again")
)

// storeFailure maps a store lookup error: a missing record refuses the
// credential, anything else is our fault and fails closed with a 503.
func storeFailure(err error, refused *authError) *authError {
	if errors.Is(err, store.ErrNotFound) {
		return refused
	}
	return errStore
}

// authenticateBearer resolves an access token. On a cache hit it costs three
// cache reads and no signature check; the signature is verified once per
// token.
func (a *App) authenticateBearer(token string, now time.Time) (*principal, *authError) {
	if p, ok := a.bearers.Get(token); ok && p.credential == token && now.Before(p.expires) {
		u, uerr := a.store.UserByID(p.user.ID)
		s, serr := a.store.SessionByID(p.session.ID)
		if uerr == nil && serr == nil && u == p.user && s == p.session {
			return p, nil
		}
		// Something changed since the principal was built: decide afresh
		// from the already-verified claims.
		return a.buildBearer(token, p.claims, now)
	}
	claims, err := a.issuer.Verify(token, now)
	if err != nil {
		return nil, errBadToken
	}
	return a.buildBearer(token, claims, now)
}

func (a *App) buildBearer(token string, c *tokens.Claims, now time.Time) (*principal, *authError) {
	u, err := a.store.UserByID(c.UserID)
	if err != nil {
		return nil, storeFailure(err, errBadToken)
	}
	if u.Disabled || c.Epoch < u.TokenEpoch {
		return nil, errBadToken
	}
	s, err := a.store.SessionByID(c.SessionID)
	if err != nil {
		return nil, storeFailure(err, errBadToken)
	}
	if !s.Alive() || s.UserID != u.ID {
		return nil, errBadToken
	}
	p := bearerPrincipal(token, c, u, s)
	if ttl := c.ExpiresAt.Sub(now); ttl > 0 {
		a.bearers.SetWithTTL(token, p, 1, ttl)
	}
	return p, nil
}

// authenticateKey resolves an API key. A cached key costs three cache
// reads: no checksum, no digest. A key with a bad checksum is refused
// without a store read.
func (a *App) authenticateKey(key string, now time.Time) (*principal, *authError) {
	if p, ok := a.keys.Get(key); ok && p.credential == key {
		k, kerr := a.store.APIKeyByDigest(p.key.Digest)
		u, uerr := a.store.UserByID(p.user.ID)
		if kerr == nil && uerr == nil && k == p.key && u == p.user && k.Usable(now) {
			return p, nil
		}
		// Changed, evicted or expired since cached: decide afresh.
	}
	digest, err := store.ParseSecret(store.KeyPrefix, key)
	if err != nil {
		return nil, errBadKey
	}
	k, err := a.store.APIKeyByDigest(digest)
	if err != nil {
		return nil, storeFailure(err, errBadKey)
	}
	if !k.Usable(now) {
		return nil, errBadKey
	}
	u, err := a.store.UserByID(k.OwnerID)
	if err != nil {
		return nil, storeFailure(err, errBadKey)
	}
	if u.Disabled {
		return nil, errBadKey
	}
	p := keyPrincipal(key, k, u)
	a.keys.Set(key, p, 1)
	return p, nil
}
