package auth

import (
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// The request path: a credential in, a decision out. A cached credential
// whose records did not change costs a SHA-256 and one cache read: no
// signature check, no checksum, no store read.

// MaxLegacyKey bounds the keys an import takes in (ours are far shorter):
// no longer key is worth hashing.
const MaxLegacyKey = 512

// AuthenticateBearer resolves an access token.
func (s *Service) AuthenticateBearer(token string) (Principal, error) {
	if len(token) > tokens.MaxTokenSize {
		return Principal{}, ErrInvalidToken // not one of ours: not worth hashing
	}
	now := s.now()
	d := store.DigestOf(token)
	if p, ok := s.bearers.Get(d.Slot()); ok && p.of(&d) && !p.lapsed(now) {
		if s.unchanged(&p) {
			s.cacheHits.Add(1)
			return p, nil
		}
		// One of its records was written since it was built: decide afresh
		// from the token's already-verified facts.
		s.cacheMisses.Add(1)
		return s.buildBearer(&d, p.token(), s.st.Generation())
	}
	s.cacheMisses.Add(1)
	gen := s.st.Generation()
	claims, err := s.issuer.Load().Verify(token, now)
	if err != nil && s.reloadIfRotated() {
		// Signed by a key another instance has just made: try once more
		// with the keys now in the store.
		claims, err = s.issuer.Load().Verify(token, now)
	}
	if err != nil {
		return Principal{}, ErrInvalidToken
	}
	t := verifiedToken{userID: claims.UserID, sessionID: claims.SessionID, epoch: claims.Epoch, expires: claims.ExpiresAt}
	return s.buildBearer(&d, t, gen)
}

// buildBearer decides about a verified token, whose digest is d, from the
// store's records, which it reads after gen was loaded, and caches the
// decision.
func (s *Service) buildBearer(d *store.Digest, t verifiedToken, gen uint64) (Principal, error) {
	now := s.now()
	u, err := s.st.UserByID(t.userID)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidToken)
	}
	if u.Disabled || t.epoch < u.TokenEpoch {
		return Principal{}, ErrInvalidToken
	}
	sess, err := s.st.SessionByID(t.sessionID)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidToken)
	}
	if !sess.Alive() || sess.UserID != u.ID {
		return Principal{}, ErrInvalidToken
	}
	// A quick_login session lives only as long as the key it was opened
	// with: revoking or expiring the key ends its tokens too.
	var k *store.APIKey
	if sess.KeyID != "" {
		if k, err = s.st.APIKeyByID(sess.KeyID); err != nil {
			return Principal{}, refusedOr(err, ErrInvalidToken)
		}
		if k.OwnerID != u.ID || !k.Usable(now) {
			return Principal{}, ErrInvalidToken
		}
	}
	p := bearerPrincipal(d, t, u, sess, k)
	p.built = gen
	if ttl := t.expires.Sub(now); ttl > 0 {
		s.bearers.SetWithTTL(d.Slot(), p, 1, ttl)
	}
	return p, nil
}

// AuthenticateKey resolves an API key. A key with a bad checksum is
// refused without a store read.
func (s *Service) AuthenticateKey(key string) (Principal, error) {
	if len(key) > MaxLegacyKey {
		return Principal{}, ErrInvalidKey // not worth hashing
	}
	now := s.now()
	d := store.DigestOf(key)
	if p, ok := s.keys.Get(d.Slot()); ok && p.of(&d) && !p.lapsed(now) && s.unchanged(&p) {
		s.cacheHits.Add(1)
		if s.noteKeyUse(&p, now) {
			s.keys.Set(d.Slot(), p, 1)
		}
		return p, nil
	}
	s.cacheMisses.Add(1)
	gen := s.st.Generation()
	if _, err := secret.ParseSecret(secret.KeyPrefix, key); err != nil {
		// Not one of ours. Keys imported from a legacy app have no
		// checksum; only if there are any is such a key looked up.
		if !s.st.HasLegacyKeys() {
			return Principal{}, ErrInvalidKey
		}
	}
	k, err := s.st.APIKeyByDigest(d)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidKey)
	}
	if !k.Usable(now) {
		return Principal{}, ErrInvalidKey
	}
	u, err := s.st.UserByID(k.OwnerID)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidKey)
	}
	if u.Disabled {
		return Principal{}, ErrInvalidKey
	}
	p := keyPrincipal(k, u)
	p.built = gen
	s.noteKeyUse(&p, now)
	s.keys.Set(d.Slot(), p, 1)
	return p, nil
}

// unchanged reports whether a cached principal, not lapsed, may be reused:
// nothing was written since it was built, or at least none of its records.
func (s *Service) unchanged(p *Principal) bool {
	return p.built == s.st.Generation() ||
		!s.st.ChangedSince(p.built, p.UserID(), p.SessionID(), p.KeyID())
}
