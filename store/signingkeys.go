package store

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Signing keys are few and read once per provision by the token issuer,
// which keeps its own parsed copies: they are not cached here.

// SigningKeys returns every signing key, retired ones included, sorted by
// CreatedAt then KID. Each is a copy the caller owns.
func (s *Store) SigningKeys() ([]SigningKey, error) {
	var list []SigningKey
	err := s.db.View(func(tx *bbolt.Tx) error {
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
func (s *Store) EnsureSigningKey(alg string, generate func() (SigningKey, error)) (SigningKey, error) {
	var out SigningKey
	err := s.update(func(tx *bbolt.Tx, _ *invalidation) error {
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
			return fmt.Errorf("%w: generated a %s key, want %s", ErrInvalid, k.Alg, alg)
		}
		if err := putSigningKey(tx, &k, utcNow()); err != nil {
			return err
		}
		out = k
		return nil
	})
	if err != nil {
		return SigningKey{}, err
	}
	return out, nil
}

// AddSigningKey stores a new key (rotation). With retireOthers, every other
// unretired key gets RetiredAt = at: the new key signs from now on, the old
// ones still verify the tokens they signed.
func (s *Store) AddSigningKey(k SigningKey, retireOthers bool, at time.Time) error {
	at = at.UTC()
	return s.update(func(tx *bbolt.Tx, _ *invalidation) error {
		if err := putSigningKey(tx, &k, at); err != nil {
			return err
		}
		if !retireOthers {
			return nil
		}
		list, err := signingKeys(tx)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketSigningKeys)
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
	return s.update(func(tx *bbolt.Tx, _ *invalidation) error {
		b := tx.Bucket(bucketSigningKeys)
		if b.Get([]byte(kid)) == nil {
			return fmt.Errorf("signing key %q: %w", kid, ErrNotFound)
		}
		return b.Delete([]byte(kid))
	})
}

// signingKeys decodes every key, oldest first.
func signingKeys(tx *bbolt.Tx) ([]SigningKey, error) {
	var list []SigningKey
	err := tx.Bucket(bucketSigningKeys).ForEach(func(_, v []byte) error {
		var k SigningKey
		if err := decode(v, &k); err != nil {
			return err
		}
		list = append(list, k)
		return nil
	})
	slices.SortFunc(list, func(a, b SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return list, err
}

// putSigningKey stores a new key; its KID must be unused (ErrExists).
// CreatedAt defaults to created.
func putSigningKey(tx *bbolt.Tx, k *SigningKey, created time.Time) error {
	if k.KID == "" || len(k.KID) > maxIDLen {
		return fmt.Errorf("%w: signing key id must be 1 to %d bytes", ErrInvalid, maxIDLen)
	}
	if k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("%w: signing key %q without algorithm or key material", ErrInvalid, k.KID)
	}
	b := tx.Bucket(bucketSigningKeys)
	if b.Get([]byte(k.KID)) != nil {
		return fmt.Errorf("signing key %q: %w", k.KID, ErrExists)
	}
	k.V = recordVersion
	if k.CreatedAt.IsZero() {
		k.CreatedAt = created
	}
	return putJSON(b, []byte(k.KID), k)
}
