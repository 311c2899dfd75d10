package admin

import (
	"slices"
	"time"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store"
)

// Signing keys as administration shows and rotates them. On a running
// server the service (internal/auth) rotates, keeping its issuer in step
// (Backend.Rotate); on a stopped server's file, only the store changes.

// SigningKeyView is a signing key as administration shows it: never the
// private half.
type SigningKeyView struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"createdAt"`
	RetiredAt time.Time `json:"retiredAt,omitzero"`
	Signing   bool      `json:"signing"`
}

// viewNewSigningKey shows k, just made the signer by a rotation.
func viewNewSigningKey(k store.SigningKey) SigningKeyView {
	return SigningKeyView{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, Signing: true}
}

// ListSigningKeys shows every key, the signer marked: the newest unretired
// key of alg (as the issuer chooses it); with alg "", of any algorithm.
func (o Ops) ListSigningKeys(alg string) ([]SigningKeyView, error) {
	keys, err := o.Store.SigningKeys()
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
	out := make([]SigningKeyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, SigningKeyView{KID: k.KID, Alg: k.Alg, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt, Signing: k.KID == signer})
	}
	return out, nil
}

// RotateSigningKey adds a new key of alg to the store and retires every
// other one, for a store no server runs on. With alg empty (a stopped
// server, whose configuration is unknown here) the current signer's
// algorithm is kept.
func (o Ops) RotateSigningKey(alg string) (SigningKeyView, error) {
	if alg == "" {
		keys, err := o.ListSigningKeys("")
		if err != nil {
			return SigningKeyView{}, err
		}
		for _, k := range keys {
			if k.Signing {
				alg = k.Alg
			}
		}
		if alg == "" {
			return SigningKeyView{}, conflictf("the store has no signing key yet: start the server on it once")
		}
	}
	k, err := auth.RotateSigningKey(o.Store, alg, o.now())
	if err != nil {
		return SigningKeyView{}, err
	}
	return viewNewSigningKey(k), nil
}
