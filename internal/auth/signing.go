package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// Signing keys: generated on first start, rotated on demand, pruned once
// no token they signed can still be valid. The issuer is rebuilt from the
// store after every change and swapped in whole, so a request sees either
// the old key set or the new one.

// loadIssuer makes sure a signing key of the configured algorithm exists,
// prunes keys that can no longer verify anything, and builds the issuer.
func (s *Service) loadIssuer() error {
	if err := s.ensureSigner(); err != nil {
		return fmt.Errorf("authgate: signing key: %w", err)
	}
	if _, err := s.pruneSigningKeys(); err != nil {
		return err
	}
	return s.ReloadIssuer()
}

// ensureSigner makes sure an unretired key of the configured algorithm
// signs. After a signing_alg change, the old algorithm's keys are still
// unretired in the store: a rotation to the new algorithm retires them
// there, so they are pruned like any rotated key once their tokens have
// expired (else they would stay in the JWKS for good).
func (s *Service) ensureSigner() error {
	alg := s.cfg.SigningAlg
	keys, err := s.st.SigningKeys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Alg != alg && k.RetiredAt.IsZero() {
			nk, err := RotateSigningKey(s.st, alg, s.now())
			if err == nil {
				s.logger.Infow("signing_alg changed: rotated to a new key; the old algorithm's keys are retired",
					"kid", nk.KID, "alg", alg, "retired_alg", k.Alg)
				s.observer.Event(context.Background(), Event{Kind: EventKeyRotated, SigningKID: nk.KID, Reason: "signing_alg changed"})
			}
			return err
		}
	}
	_, err = s.st.EnsureSigningKey(alg, func() (store.SigningKey, error) {
		return tokens.GenerateKey(alg, s.now())
	})
	return err
}

// ReloadIssuer builds the issuer from every stored key, so tokens signed
// before a rotation keep verifying, and swaps it in.
func (s *Service) ReloadIssuer() error {
	gen := s.st.Generation() // before the read: a change after it is seen next time
	keys, err := s.st.SigningKeys()
	if err != nil {
		return fmt.Errorf("authgate: signing keys: %w", err)
	}
	issuer, err := tokens.New(tokens.Config{
		Issuer:    s.cfg.Issuer,
		Audience:  s.cfg.Audience,
		AccessTTL: s.cfg.AccessTTL,
	}, retireOtherAlgs(keys, s.cfg.SigningAlg))
	if err != nil {
		return fmt.Errorf("authgate: token issuer: %w", err)
	}
	s.issuer.Store(issuer)
	s.issuerGen.Store(gen)
	return nil
}

// reloadIfRotated rebuilds the issuer if the signing keys changed since it
// was built: another instance rotated or pruned. It reports whether it
// did. At most one reload runs at a time, and at most every
// minReloadInterval, so a flood of tokens signed by unknown keys costs no
// more than that.
func (s *Service) reloadIfRotated() bool {
	if !s.st.SigningKeysChangedSince(s.issuerGen.Load()) {
		return false
	}
	if !s.reloading.TryLock() {
		return false
	}
	defer s.reloading.Unlock()
	now := s.now()
	if last := s.lastReload.Load(); last != 0 && now.Sub(time.Unix(0, last)) < minReloadInterval {
		return false
	}
	s.lastReload.Store(now.UnixNano())
	if err := s.ReloadIssuer(); err != nil {
		s.logger.Warnw("reloading the signing keys", "error", err)
		return false
	}
	return true
}

// minReloadInterval bounds how often a token signed by a key this
// instance does not know yet makes it read the signing keys.
const minReloadInterval = 100 * time.Millisecond

// retireOtherAlgs hands the issuer every key, with unretired keys of other
// algorithms (left from an earlier signing_alg) shown as retired: they keep
// verifying the tokens they signed, but only a key of the configured
// algorithm signs.
func retireOtherAlgs(keys []store.SigningKey, alg string) []store.SigningKey {
	out := make([]store.SigningKey, 0, len(keys))
	for _, k := range keys {
		if k.Alg != alg && k.RetiredAt.IsZero() {
			k.RetiredAt = k.CreatedAt
		}
		out = append(out, k)
	}
	return out
}

// RotateSigningKey makes a new key of the configured algorithm the signer
// and swaps the issuer. The old keys are retired, not deleted: they keep
// verifying (and stay in the JWKS) until every token they signed has
// expired.
func (s *Service) RotateSigningKey() (store.SigningKey, error) {
	k, err := RotateSigningKey(s.st, s.cfg.SigningAlg, s.now())
	if err != nil {
		return k, err
	}
	return k, s.ReloadIssuer()
}

// RotateSigningKey adds a new key of alg to st and retires every other
// one: what Service.RotateSigningKey does, for a store no service runs on
// (the CLI on a stopped server's file).
func RotateSigningKey(st store.Store, alg string, now time.Time) (store.SigningKey, error) {
	now = now.UTC()
	k, err := tokens.GenerateKey(alg, now)
	if err != nil {
		return store.SigningKey{}, err
	}
	if err := st.AddSigningKey(k, true, now); err != nil {
		return store.SigningKey{}, err
	}
	return k, nil
}

// pruneSigningKeys deletes retired keys whose tokens have all expired: a
// key retired at R signed its last token before R, and that token expired
// by R + access_ttl (+ the verification leeway).
func (s *Service) pruneSigningKeys() (int, error) {
	cutoff := s.now().Add(-s.cfg.AccessTTL - tokens.MaxLeeway)
	keys, err := s.st.SigningKeys()
	if err != nil {
		return 0, fmt.Errorf("authgate: signing keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		if k.RetiredAt.IsZero() || !k.RetiredAt.Before(cutoff) {
			continue
		}
		if err := s.st.DeleteSigningKey(k.KID); err != nil {
			return n, fmt.Errorf("authgate: pruning signing key %s: %w", k.KID, err)
		}
		s.logger.Infow("pruned retired signing key", "kid", k.KID)
		n++
	}
	return n, nil
}

// pruneAndReload is the upkeep loop's part: prune, and rebuild the issuer
// if anything went.
func (s *Service) pruneAndReload() {
	n, err := s.pruneSigningKeys()
	if err == nil && n > 0 {
		err = s.ReloadIssuer()
	}
	if err != nil {
		s.logger.Warnw("pruning signing keys", "error", err)
	}
}
