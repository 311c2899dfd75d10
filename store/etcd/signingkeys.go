package etcd

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/authgate/authgate/store"
)

// Signing keys are few and read once per provision (and after another
// instance rotated: SigningKeysChangedSince) by the token issuer, which
// keeps its own parsed copies. Every write of one also rewrites
// meta/signing_keys, which the transactions that read them all compare
// (layout.go), and which the change feed counts as a signing-key change.

// SigningKeys returns every signing key, retired ones included, sorted by
// CreatedAt then KID, as of one revision. Each is a copy the caller owns.
func (s *Store) SigningKeys() ([]store.SigningKey, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var list []store.SigningKey
	err := s.view(ctx, func(tx *txn) error {
		var err error
		list, err = s.signingKeys(tx)
		return err
	})
	return list, err
}

// EnsureSigningKey returns the newest unretired key for alg or, when
// there is none, stores the key generate returns, in one transaction
// that compares meta/signing_keys: of instances provisioning at once, one
// stores its key and the others find it. generate runs at most once per
// call (and once at a time in this process); a key it made that lost the
// race is dropped.
func (s *Store) EnsureSigningKey(alg string, generate func() (store.SigningKey, error)) (store.SigningKey, error) {
	s.signingMu.Lock()
	defer s.signingMu.Unlock()
	ctx, cancel := s.opCtx()
	defer cancel()
	var out store.SigningKey
	var made *store.SigningKey
	_, err := s.update(ctx, func(tx *txn) error {
		if err := tx.fetch(true, s.meta(keyMetaSigningKeys)); err != nil {
			return err
		}
		list, err := s.signingKeys(tx)
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
		if made == nil {
			k, err := generate()
			if err != nil {
				return err
			}
			if k.Alg != alg {
				return fmt.Errorf("%w: generated a %s key, want %s", store.ErrInvalid, k.Alg, alg)
			}
			if k.CreatedAt.IsZero() {
				k.CreatedAt = utcNow()
			}
			made = &k
		}
		k := *made
		if err := s.putSigningKey(tx, &k, k.CreatedAt); err != nil {
			return err
		}
		out = k
		return nil
	})
	if err != nil {
		return store.SigningKey{}, err
	}
	return out, nil
}

// AddSigningKey stores a new key (rotation). With retireOthers, every
// other unretired key gets RetiredAt = at, in the same transaction.
func (s *Store) AddSigningKey(k store.SigningKey, retireOthers bool, at time.Time) error {
	at = at.UTC()
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.update(ctx, func(tx *txn) error {
		key := k
		var list []store.SigningKey
		if retireOthers {
			if err := tx.fetch(true, s.meta(keyMetaSigningKeys)); err != nil {
				return err
			}
			var err error
			if list, err = s.signingKeys(tx); err != nil {
				return err
			}
		}
		if err := s.putSigningKey(tx, &key, at); err != nil {
			return err
		}
		for _, other := range list {
			if other.KID == key.KID || !other.RetiredAt.IsZero() {
				continue
			}
			other.RetiredAt = at
			if err := tx.putJSON(s.key(kindSigningKeys, other.KID), other); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// DeleteSigningKey removes a key for good: tokens it signed stop
// verifying.
func (s *Store) DeleteSigningKey(kid string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.update(ctx, func(tx *txn) error {
		key := s.key(kindSigningKeys, kid)
		if _, ok, err := tx.get(key, true); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("signing key %q: %w", kid, store.ErrNotFound)
		}
		tx.del(key)
		tx.touch(s.meta(keyMetaSigningKeys))
		return nil
	})
	return err
}

// signingKeys decodes every key at tx's revision, oldest first.
func (s *Store) signingKeys(tx *txn) ([]store.SigningKey, error) {
	var list []store.SigningKey
	err := tx.scan(s.key(kindSigningKeys, ""), func(kv *mvccpb.KeyValue) error {
		var k store.SigningKey
		if err := decode(string(kv.Key), kv.Value, &k); err != nil {
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

// putSigningKey stores a new key in tx; its KID must be unused
// (ErrExists). CreatedAt defaults to created.
func (s *Store) putSigningKey(tx *txn, k *store.SigningKey, created time.Time) error {
	if err := checkSigningKey(k); err != nil {
		return err
	}
	key := s.key(kindSigningKeys, k.KID)
	if _, ok, err := tx.get(key, true); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("signing key %q: %w", k.KID, store.ErrExists)
	}
	k.V = store.RecordVersion
	if k.CreatedAt.IsZero() {
		k.CreatedAt = created
	}
	tx.touch(s.meta(keyMetaSigningKeys))
	return tx.putJSON(key, k)
}

// checkSigningKey refuses a key no backend stores.
func checkSigningKey(k *store.SigningKey) error {
	if k.KID == "" || len(k.KID) > store.MaxIDLen {
		return fmt.Errorf("%w: signing key id must be 1 to %d bytes", store.ErrInvalid, store.MaxIDLen)
	}
	if k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("%w: signing key %q without algorithm or key material", store.ErrInvalid, k.KID)
	}
	return nil
}
