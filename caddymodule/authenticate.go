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

// authenticateBearer resolves an access token. On a cache hit with its
// records unchanged, it costs a SHA-256 of the token and one cache read: no
// signature check, no store read.
func (a *App) authenticateBearer(token string, now time.Time) (principal, *authError) {
	if len(token) > tokens.MaxTokenSize {
		return principal{}, errBadToken // not one of ours: not worth hashing
	}
	d := store.DigestOf(token)
	if p, ok := a.bearers.Get(d.Slot()); ok && p.of(&d) && !p.lapsed(now) {
		if a.unchanged(&p) {
			return p, nil
		}
		// One of its records was written since it was built: decide afresh
		// from the token's already-verified facts.
		return a.buildBearer(&d, p.token(), a.store.Generation(), now)
	}
	gen := a.store.Generation()
	claims, err := a.issuer.Load().Verify(token, now)
	if err != nil {
		return principal{}, errBadToken
	}
	t := verifiedToken{userID: claims.UserID, sessionID: claims.SessionID, epoch: claims.Epoch, expires: claims.ExpiresAt}
	return a.buildBearer(&d, t, gen, now)
}

// buildBearer decides about a verified token, whose digest is d, from the
// store's records, which it reads after gen was loaded, and caches the
// decision.
func (a *App) buildBearer(d *store.Digest, t verifiedToken, gen uint64, now time.Time) (principal, *authError) {
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
	p := bearerPrincipal(d, t, u, s, k)
	p.built = gen
	if ttl := t.expires.Sub(now); ttl > 0 {
		a.bearers.SetWithTTL(d.Slot(), p, 1, ttl)
	}
	return p, nil
}

// maxLegacyKey bounds the keys an import takes in (ours are far shorter):
// no longer key is worth hashing.
const maxLegacyKey = 512

// authenticateKey resolves an API key. A cached key with its records
// unchanged costs a SHA-256 of the key and one cache read: no checksum, no
// store read. A key with a bad checksum is refused without a store read.
func (a *App) authenticateKey(key string, now time.Time) (principal, *authError) {
	if len(key) > maxLegacyKey {
		return principal{}, errBadKey // not worth hashing
	}
	d := store.DigestOf(key)
	if p, ok := a.keys.Get(d.Slot()); ok && p.of(&d) && !p.lapsed(now) && a.unchanged(&p) {
		if a.noteKeyUse(&p, now) {
			a.keys.Set(d.Slot(), p, 1)
		}
		return p, nil
	}
	gen := a.store.Generation()
	if _, err := store.ParseSecret(store.KeyPrefix, key); err != nil {
		// Not one of ours. Keys imported from a legacy app have no
		// checksum; only if there are any is such a key looked up.
		if !a.store.HasLegacyKeys() {
			return principal{}, errBadKey
		}
	}
	k, err := a.store.APIKeyByDigest(d)
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
	p := keyPrincipal(k, u)
	p.built = gen
	a.noteKeyUse(&p, now)
	a.keys.Set(d.Slot(), p, 1)
	return p, nil
}

// unchanged reports whether a cached principal, not lapsed, may be reused:
// nothing was written since it was built, or at least none of its records.
func (a *App) unchanged(p *principal) bool {
	return p.built == a.store.Generation() ||
		!a.store.ChangedSince(p.built, p.userID(), p.sessionID(), p.keyID())
}
