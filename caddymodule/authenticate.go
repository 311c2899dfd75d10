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

// authenticateBearer resolves an access token. On a cache hit with nothing
// written since, it costs one cache read: no signature check, no store read.
func (a *App) authenticateBearer(token string, now time.Time) (*principal, *authError) {
	if p, ok := a.bearers.Get(token); ok && p.credential == token && !p.lapsed(now) {
		if a.fresh(p, now) {
			return p, nil
		}
		// Something changed since the principal was built: decide afresh
		// from the token's already-verified facts.
		return a.buildBearer(token, p.token(), a.store.Generation(), now)
	}
	gen := a.store.Generation()
	claims, err := a.issuer.Load().Verify(token, now)
	if err != nil {
		return nil, errBadToken
	}
	t := verifiedToken{userID: claims.UserID, sessionID: claims.SessionID, epoch: claims.Epoch, expires: claims.ExpiresAt}
	return a.buildBearer(token, t, gen, now)
}

// buildBearer decides about a verified token from the store's records,
// which it reads after gen was loaded, and caches the decision.
func (a *App) buildBearer(token string, t verifiedToken, gen uint64, now time.Time) (*principal, *authError) {
	u, err := a.store.UserByID(t.userID)
	if err != nil {
		return nil, storeFailure(err, errBadToken)
	}
	if u.Disabled || t.epoch < u.TokenEpoch {
		return nil, errBadToken
	}
	s, err := a.store.SessionByID(t.sessionID)
	if err != nil {
		return nil, storeFailure(err, errBadToken)
	}
	if !s.Alive() || s.UserID != u.ID {
		return nil, errBadToken
	}
	// A quick_login session lives only as long as the key it was opened
	// with: revoking or expiring the key ends its tokens too.
	var k *store.APIKey
	if s.KeyID != "" {
		if k, err = a.sessionKey(s.KeyID); err != nil {
			return nil, storeFailure(err, errBadToken)
		}
		if k.OwnerID != u.ID || !k.Usable(now) {
			return nil, errBadToken
		}
	}
	p := bearerPrincipal(token, t, u, s, k)
	p.checked.Store(gen)
	if ttl := t.expires.Sub(now); ttl > 0 {
		a.bearers.SetWithTTL(token, p, 1, ttl)
	}
	return p, nil
}

// sessionKey returns the key a quick_login session was opened with, as the
// store's cache holds it (so current can compare pointers).
func (a *App) sessionKey(keyID string) (*store.APIKey, error) {
	k, err := a.store.APIKeyByID(keyID)
	if err != nil {
		return nil, err
	}
	return a.store.APIKeyByDigest(k.Digest)
}

// maxLegacyKey bounds the imported keys looked up without a checksum.
const maxLegacyKey = 512

// authenticateKey resolves an API key. A cached key with nothing written
// since costs one cache read: no checksum, no digest, no store read. A key
// with a bad checksum is refused without a store read.
func (a *App) authenticateKey(key string, now time.Time) (*principal, *authError) {
	if p, ok := a.keys.Get(key); ok && p.credential == key && !p.lapsed(now) && a.fresh(p, now) {
		a.noteKeyUse(p, now)
		return p, nil
	}
	gen := a.store.Generation()
	digest, err := store.ParseSecret(store.KeyPrefix, key)
	if err != nil {
		// Not one of ours. Keys imported from a legacy app have no
		// checksum; only if there are any is such a key looked up.
		if !a.store.HasLegacyKeys() || len(key) > maxLegacyKey {
			return nil, errBadKey
		}
		digest = store.DigestOf(key)
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
	p.checked.Store(gen)
	a.keys.Set(key, p, 1)
	a.noteKeyUse(p, now)
	return p, nil
}

// fresh reports whether a cached principal, not lapsed, may be reused:
// nothing was written since it was last checked, or the store still hands
// out the very records it was built from.
func (a *App) fresh(p *principal, now time.Time) bool {
	gen := a.store.Generation()
	if p.checked.Load() == gen {
		return true
	}
	if !a.current(p, now) {
		return false
	}
	// Records read after loading gen were the principal's own: it was
	// current at gen. (A racing check may store an older gen; that only
	// costs one more check.)
	p.checked.Store(gen)
	return true
}

// current reports whether a cached principal may be reused at now: the
// store still hands out the very records it was built from (every write
// replaces the records it touches, so an unchanged pointer means nothing
// changed), and its key, if any, has not expired since.
func (a *App) current(p *principal, now time.Time) bool {
	if u, err := a.store.UserByID(p.user.ID); err != nil || u != p.user {
		return false
	}
	if p.session != nil {
		if s, err := a.store.SessionByID(p.session.ID); err != nil || s != p.session {
			return false
		}
	}
	if p.key != nil {
		if k, err := a.store.APIKeyByDigest(p.key.Digest); err != nil || k != p.key || !k.Usable(now) {
			return false
		}
	}
	return true
}
