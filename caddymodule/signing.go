package caddymodule

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// Signing keys: generated on first start, rotated on demand, pruned once
// no token they signed can still be valid. The issuer is rebuilt from the
// store after every change and swapped in whole, so a request sees either
// the old key set or the new one.

// loadIssuer makes sure a signing key of the configured algorithm exists
// (generated on first start, kept in the store), prunes keys that can no
// longer verify anything, and builds the issuer.
func (a *App) loadIssuer() error {
	alg := a.SigningAlg
	if _, err := a.store.EnsureSigningKey(alg, func() (store.SigningKey, error) {
		return tokens.GenerateKey(alg, a.now())
	}); err != nil {
		return fmt.Errorf("authgate: signing key: %w", err)
	}
	if _, err := a.pruneSigningKeys(); err != nil {
		return err
	}
	return a.reloadIssuer()
}

// reloadIssuer builds the issuer from every stored key, so tokens signed
// before a rotation keep verifying, and swaps it in.
func (a *App) reloadIssuer() error {
	keys, err := a.store.SigningKeys()
	if err != nil {
		return fmt.Errorf("authgate: signing keys: %w", err)
	}
	issuer, err := tokens.New(tokens.Config{
		Issuer:    a.Issuer,
		Audience:  a.Audience,
		AccessTTL: time.Duration(a.AccessTTL),
	}, retireOtherAlgs(keys, a.SigningAlg))
	if err != nil {
		return fmt.Errorf("authgate: token issuer: %w", err)
	}
	a.issuer.Store(issuer)
	return nil
}

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

// rotateSigningKey makes a new key of the configured algorithm the signer.
// The old keys are retired, not deleted: they keep verifying (and stay in
// the JWKS) until every token they signed has expired.
func (a *App) rotateSigningKey() (signingKeyView, error) {
	k, err := adminOps{st: a.store, now: a.now}.rotateSigningKey(a.SigningAlg)
	if err != nil {
		return k, err
	}
	return k, a.reloadIssuer()
}

// pruneSigningKeys deletes retired keys whose tokens have all expired: a
// key retired at R signed its last token before R, and that token expired
// by R + access_ttl (+ the verification leeway).
func (a *App) pruneSigningKeys() (int, error) {
	cutoff := a.now().Add(-time.Duration(a.AccessTTL) - tokens.MaxLeeway)
	keys, err := a.store.SigningKeys()
	if err != nil {
		return 0, fmt.Errorf("authgate: signing keys: %w", err)
	}
	n := 0
	for _, k := range keys {
		if k.RetiredAt.IsZero() || !k.RetiredAt.Before(cutoff) {
			continue
		}
		if err := a.store.DeleteSigningKey(k.KID); err != nil {
			return n, fmt.Errorf("authgate: pruning signing key %s: %w", k.KID, err)
		}
		a.logger.Info("pruned retired signing key", zap.String("kid", k.KID))
		n++
	}
	return n, nil
}

// pruneAndReload is the upkeep loop's part: prune, and rebuild the issuer
// if anything went.
func (a *App) pruneAndReload() {
	n, err := a.pruneSigningKeys()
	if err == nil && n > 0 {
		err = a.reloadIssuer()
	}
	if err != nil {
		a.logger.Warn("pruning signing keys", zap.Error(err))
	}
}

// signingKeyView is a signing key as administration shows it: never the
// private half.
type signingKeyView struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"createdAt"`
	RetiredAt time.Time `json:"retiredAt,omitzero"`
	Signing   bool      `json:"signing"`
}

// listSigningKeys shows every key, the signer marked: the newest unretired
// key of alg (as the issuer chooses it).
func (o adminOps) listSigningKeys(alg string) ([]signingKeyView, error) {
	keys, err := o.st.SigningKeys()
	if err != nil {
		return nil, err
	}
	signer := ""
	for _, k := range slices.Backward(keys) { // oldest first: the last match is the newest
		if k.RetiredAt.IsZero() && (alg == "" || k.Alg == alg) {
			signer = k.KID
			break
		}
	}
	out := make([]signingKeyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, signingKeyView{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Signing: k.KID == signer})
	}
	return out, nil
}

// rotateSigningKey adds a new key of alg and retires every other one. With
// alg empty (a stopped server, whose configuration is unknown here) the
// current signer's algorithm is kept.
func (o adminOps) rotateSigningKey(alg string) (signingKeyView, error) {
	if alg == "" {
		keys, err := o.listSigningKeys("")
		if err != nil {
			return signingKeyView{}, err
		}
		for _, k := range keys {
			if k.Signing {
				alg = k.Alg
			}
		}
		if alg == "" {
			return signingKeyView{}, conflictf("the store has no signing key yet: start the server on it once")
		}
	}
	now := o.now().UTC()
	k, err := tokens.GenerateKey(alg, now)
	if err != nil {
		return signingKeyView{}, err
	}
	if err := o.st.AddSigningKey(k, true, now); err != nil {
		return signingKeyView{}, err
	}
	return signingKeyView{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, Signing: true}, nil
}
