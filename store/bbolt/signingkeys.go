package bbolt

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// Signing keys are few and read once per provision by the token issuer,
// which keeps its own parsed copies: they are not cached here. Every write
// that adds, retires or deletes one moves Generation and marks the signing
// keys changed (SigningKeysChangedSince), so an issuer knows to rebuild.

// SigningKeys returns every signing key, retired ones included, sorted by
// CreatedAt then KID. Each is a copy the caller owns.
func (s *Store) SigningKeys() ([]store.SigningKey, error) {
	var list []store.SigningKey
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		list, err = signingKeys(tx)
		return err
	})
	return list, err
}

// EnsureSigningKey returns the newest unretired key for alg, or, when there
// is none, calls generate and stores its key. It runs in one write
// transaction, so two instances provisioning at once never create two keys
// (generate runs while other writers wait: keep it to key generation).
func (s *Store) EnsureSigningKey(alg string, generate func() (store.SigningKey, error)) (store.SigningKey, error) {
	var out store.SigningKey
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		list, err := signingKeys(tx)
		if err != nil {
			return err
		}
		// The list is oldest first: the last match is the newest.
		for _, k := range slices.Backward(list) {
			if k.Alg == alg && k.RetiredAt.IsZero() {
				out = k
				return nil
			}
		}
		k, err := generate()
		if err != nil {
			return err
		}
		if k.Alg != alg {
			return fmt.Errorf("%w: generated a %s key, want %s", store.ErrInvalid, k.Alg, alg)
		}
		if err := putSigningKey(tx, &k, utcNow()); err != nil {
			return err
		}
		out = k
		inv.signingKeys = true
		return nil
	})
	if err != nil {
		return store.SigningKey{}, err
	}
	return out, nil
}

// AddSigningKey stores a new key (rotation). With retireOthers, every other
// unretired key gets RetiredAt = at: the new key signs from now on, the old
// ones still verify the tokens they signed.
func (s *Store) AddSigningKey(k store.SigningKey, retireOthers bool, at time.Time) error {
	at = at.UTC()
	return s.update(func(tx *bolt.Tx, inv *invalidation) error {
		if err := putSigningKey(tx, &k, at); err != nil {
			return err
		}
		inv.signingKeys = true
		if !retireOthers {
			return nil
		}
		list, err := signingKeys(tx)
		if err != nil {
			return err
		}
		b := bucketSigningKeys.of(tx)
		for _, other := range list {
			if other.KID == k.KID || !other.RetiredAt.IsZero() {
				continue
			}
			other.RetiredAt = at
			if err := putJSON(b, []byte(other.KID), other); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteSigningKey removes a key for good: tokens it signed stop verifying.
func (s *Store) DeleteSigningKey(kid string) error {
	return s.update(func(tx *bolt.Tx, inv *invalidation) error {
		b := bucketSigningKeys.of(tx)
		if b.Get([]byte(kid)) == nil {
			return fmt.Errorf("signing key %q: %w", kid, store.ErrNotFound)
		}
		inv.signingKeys = true
		return b.Delete([]byte(kid))
	})
}

// signingKeys decodes every key, oldest first.
func signingKeys(tx *bolt.Tx) ([]store.SigningKey, error) {
	var list []store.SigningKey
	err := bucketSigningKeys.of(tx).ForEach(func(_, v []byte) error {
		var k store.SigningKey
		if err := decode(v, &k); err != nil {
			return err
		}
		list = append(list, k)
		return nil
	})
	slices.SortFunc(list, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return list, err
}

// putSigningKey stores a new key; its KID must be unused (ErrExists).
// CreatedAt defaults to created.
func putSigningKey(tx *bolt.Tx, k *store.SigningKey, created time.Time) error {
	if k.KID == "" || len(k.KID) > store.MaxIDLen {
		return fmt.Errorf("%w: signing key id must be 1 to %d bytes", store.ErrInvalid, store.MaxIDLen)
	}
	if k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("%w: signing key %q without algorithm or key material", store.ErrInvalid, k.KID)
	}
	b := bucketSigningKeys.of(tx)
	if b.Get([]byte(k.KID)) != nil {
		return fmt.Errorf("signing key %q: %w", k.KID, store.ErrExists)
	}
	k.V = store.RecordVersion
	if k.CreatedAt.IsZero() {
		k.CreatedAt = created
	}
	return putJSON(b, []byte(k.KID), k)
}
