package caddymodule

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/store"
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

// authenticateBearer resolves an access token. On a cache hit with its
// records unchanged, it costs one cache read: no signature check, no store
// read.
func (a *App) authenticateBearer(token string, now time.Time) (principal, *authError) {
	if p, ok := a.bearers.Get(token); ok && p.credential() == token && !p.lapsed(now) {
		if a.unchanged(&p) {
			return p, nil
		}
		// One of its records was written since it was built: decide afresh
		// from the token's already-verified facts.
		return a.buildBearer(token, p.token(), a.store.Generation(), now)
	}
	gen := a.store.Generation()
	claims, err := a.issuer.Load().Verify(token, now)
	if err != nil {
		return principal{}, errBadToken
	}
	t := verifiedToken{userID: claims.UserID, sessionID: claims.SessionID, epoch: claims.Epoch, expires: claims.ExpiresAt}
	return a.buildBearer(token, t, gen, now)
}

// buildBearer decides about a verified token from the store's records,
// which it reads after gen was loaded, and caches the decision.
func (a *App) buildBearer(token string, t verifiedToken, gen uint64, now time.Time) (principal, *authError) {
	u, err := a.store.UserByID(t.userID)
	if err != nil {
		return principal{}, storeFailure(err, errBadToken)
	}
	if u.Disabled || t.epoch < u.TokenEpoch {
		return principal{}, errBadToken
	}
	s, err := a.store.SessionByID(t.sessionID)
	if err != nil {
		return principal{}, storeFailure(err, errBadToken)
	}
	if !s.Alive() || s.UserID != u.ID {
		return principal{}, errBadToken
	}
	// A quick_login session lives only as long as the key it was opened
	// with: revoking or expiring the key ends its tokens too.
	var k *store.APIKey
	if s.KeyID != "" {
		if k, err = a.store.APIKeyByID(s.KeyID); err != nil {
			return principal{}, storeFailure(err, errBadToken)
		}
		if k.OwnerID != u.ID || !k.Usable(now) {
			return principal{}, errBadToken
		}
	}
	p := bearerPrincipal(token, t, u, s, k)
	p.built = gen
	if ttl := t.expires.Sub(now); ttl > 0 {
		a.bearers.SetWithTTL(token, p, 1, ttl)
	}
	return p, nil
}

// maxLegacyKey bounds the imported keys looked up without a checksum.
const maxLegacyKey = 512

// authenticateKey resolves an API key. A cached key with its records
// unchanged costs one cache read: no checksum, no digest, no store read. A
// key with a bad checksum is refused without a store read.
func (a *App) authenticateKey(key string, now time.Time) (principal, *authError) {
	if p, ok := a.keys.Get(key); ok && p.credential() == key && !p.lapsed(now) && a.unchanged(&p) {
		if a.noteKeyUse(&p, now) {
			a.keys.Set(key, p, 1)
		}
		return p, nil
	}
	gen := a.store.Generation()
	digest, err := store.ParseSecret(store.KeyPrefix, key)
	if err != nil {
		// Not one of ours. Keys imported from a legacy app have no
		// checksum; only if there are any is such a key looked up.
		if !a.store.HasLegacyKeys() || len(key) > maxLegacyKey {
			return principal{}, errBadKey
		}
		digest = store.DigestOf(key)
	}
	k, err := a.store.APIKeyByDigest(digest)
	if err != nil {
		return principal{}, storeFailure(err, errBadKey)
	}
	if !k.Usable(now) {
		return principal{}, errBadKey
	}
	u, err := a.store.UserByID(k.OwnerID)
	if err != nil {
		return principal{}, storeFailure(err, errBadKey)
	}
	if u.Disabled {
		return principal{}, errBadKey
	}
	p := keyPrincipal(key, k, u)
	p.built = gen
	a.noteKeyUse(&p, now)
	a.keys.Set(key, p, 1)
	return p, nil
}

// unchanged reports whether a cached principal, not lapsed, may be reused:
// nothing was written since it was built, or at least none of its records.
func (a *App) unchanged(p *principal) bool {
	return p.built == a.store.Generation() ||
		!a.store.ChangedSince(p.built, p.userID(), p.sessionID(), p.keyID())
}
