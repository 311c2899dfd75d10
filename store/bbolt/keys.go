package bbolt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// CreateAPIKey stores a new key for an existing owner (else ErrNotFound).
// It fills k.ID (when empty), k.V and k.CreatedAt (when zero). k.Digest must
// be set and not belong to another key (ErrExists).
func (s *Store) CreateAPIKey(k *store.APIKey) error {
	return s.CreateAPIKeys([]*store.APIKey{k})
}

// CreateAPIKeys stores new keys as CreateAPIKey does, all in one
// transaction: all of them or, on the first error, none.
func (s *Store) CreateAPIKeys(ks []*store.APIKey) error {
	legacy := false
	for _, k := range ks {
		if err := store.PrepareAPIKey(k); err != nil {
			return err
		}
		legacy = legacy || k.Legacy
	}
	err := s.update(func(tx *bolt.Tx, _ *invalidation) error {
		for _, k := range ks {
			if err := insertAPIKey(tx, k); err != nil {
				return err
			}
		}
		if legacy {
			return bucketMeta.of(tx).Put(keyHasLegacyKeys, []byte("1"))
		}
		return nil
	})
	if err == nil && legacy {
		s.legacyKeys.Store(true)
	}
	return err
}

// insertAPIKey stores a prepared key and its index entries.
func insertAPIKey(tx *bolt.Tx, k *store.APIKey) error {
	if bucketUsers.of(tx).Get([]byte(k.OwnerID)) == nil {
		return fmt.Errorf("owner %q: %w", k.OwnerID, store.ErrNotFound)
	}
	keys, byDigest := bucketKeys.of(tx), bucketKeysByDigest.of(tx)
	if keys.Get([]byte(k.ID)) != nil {
		return fmt.Errorf("key id %q: %w", k.ID, store.ErrExists)
	}
	if byDigest.Get(k.Digest[:]) != nil {
		return fmt.Errorf("api key digest: %w", store.ErrExists)
	}
	if err := byDigest.Put(k.Digest[:], []byte(k.ID)); err != nil {
		return err
	}
	if err := bucketKeysByOwner.of(tx).Put(pairKey(k.OwnerID, k.ID), nil); err != nil {
		return err
	}
	return putJSON(keys, []byte(k.ID), k)
}

// APIKeyByDigest returns the key whose digest is d, read from bbolt (keys
// are not cached: see caches): the caller's own copy. Revoked and expired
// keys are returned too; check Usable.
func (s *Store) APIKeyByDigest(d store.Digest) (*store.APIKey, error) {
	k := new(store.APIKey)
	err := s.db.View(func(tx *bolt.Tx) error {
		id := bucketKeysByDigest.of(tx).Get(d[:])
		if id == nil {
			return store.ErrNotFound
		}
		if err := getJSON(bucketKeys.of(tx), id, k); err != nil {
			return err
		}
		withLastUsed(tx, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// APIKeyByID returns the key with id, uncached: the caller's own copy.
func (s *Store) APIKeyByID(id string) (*store.APIKey, error) {
	k := new(store.APIKey)
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(bucketKeys.of(tx), []byte(id), k); err != nil {
			return err
		}
		withLastUsed(tx, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ListAPIKeys returns the keys of ownerID, or every key when ownerID is "",
// sorted by CreatedAt then ID.
func (s *Store) ListAPIKeys(ownerID string) ([]*store.APIKey, error) {
	var list []*store.APIKey
	err := s.db.View(func(tx *bolt.Tx) error {
		keys := bucketKeys.of(tx)
		if ownerID == "" {
			return keys.ForEach(func(_, v []byte) error {
				k := new(store.APIKey)
				if err := decode(v, k); err != nil {
					return err
				}
				withLastUsed(tx, k)
				list = append(list, k)
				return nil
			})
		}
		for _, id := range childIDs(bucketKeysByOwner.of(tx), ownerID) {
			k := new(store.APIKey)
			if err := getJSON(keys, []byte(id), k); err != nil {
				return err
			}
			withLastUsed(tx, k)
			list = append(list, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// RevokeAPIKey revokes the key at time at. Revoking a revoked key changes
// nothing (the first RevokedAt stays).
func (s *Store) RevokeAPIKey(id string, at time.Time) error {
	_, err := s.UpdateAPIKey(id, func(k *store.APIKey) error {
		if !k.Revoked {
			k.Revoked, k.RevokedAt = true, at.UTC()
		}
		return nil
	})
	return err
}

// UpdateAPIKey applies fn to a fresh copy of the key in one transaction and
// stores it; fn's error aborts. ID, Digest, OwnerID and CreatedAt cannot be
// changed. The returned value is the caller's own copy.
func (s *Store) UpdateAPIKey(id string, fn func(k *store.APIKey) error) (*store.APIKey, error) {
	var k *store.APIKey
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		keys := bucketKeys.of(tx)
		old := new(store.APIKey)
		if err := getJSON(keys, []byte(id), old); err != nil {
			return err
		}
		k = new(store.APIKey)
		if err := getJSON(keys, []byte(id), k); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		k.ID, k.Digest, k.OwnerID, k.CreatedAt = old.ID, old.Digest, old.OwnerID, old.CreatedAt
		k.V = store.RecordVersion
		if err := putJSON(keys, []byte(id), k); err != nil {
			return err
		}
		withLastUsed(tx, k)
		inv.key(k.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// TouchAPIKeys records when keys were last used, many in one transaction (a
// batching job calls it). LastUsed only moves forward; unknown IDs (keys
// deleted meanwhile) are skipped.
//
// The times go to a bucket of their own, 8 bytes a key, in key order, not
// into the keys' JSON records: a batch covers every key in use, and
// decoding and re-encoding each record made a batch of 20,000 keys take
// 313 ms instead of 45 (BenchmarkTouchAPIKeys20k), every 30 s, on the
// core that serves requests. Readers take the later of the two
// (withLastUsed), so a record's own LastUsed, from imports or an older
// build, still counts.
//
// Unlike every other write, it neither marks the keys changed nor moves
// Generation: the request path decides nothing by LastUsed. Marking them
// would have every key in use have its cached decision rebuilt after each
// batch, which at 100,000 keys cost more than the requests themselves.
func (s *Store) TouchAPIKeys(lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx, _ *invalidation) error {
		return touch(bucketKeys.of(tx), bucketKeysLastUsed.of(tx), lastUsed)
	})
}

// touch writes the times of records that exist in records to their bucket
// of times, forward only (TouchAPIKeys, TouchSessions). In ID order, bbolt
// finds each next record near the last one.
func touch(records, times *bolt.Bucket, at map[string]time.Time) error {
	for _, id := range slices.Sorted(maps.Keys(at)) {
		t := at[id]
		if records.Get([]byte(id)) == nil {
			continue
		}
		if old, ok := lastUsedAt(times, id); ok && !t.After(old) {
			continue
		}
		// bbolt keeps the slice until the commit: one per record.
		v := binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
		if err := times.Put([]byte(id), v); err != nil {
			return err
		}
	}
	return nil
}

// lastUsedAt reads a record's time from a bucket of times
// (keys_last_used, sessions_last_seen).
func lastUsedAt(used *bolt.Bucket, id string) (time.Time, bool) {
	v := used.Get([]byte(id))
	if len(v) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), true
}

// withLastUsed sets k.LastUsed to the keys_last_used bucket's time for it,
// if that is later than the record's own.
func withLastUsed(tx *bolt.Tx, k *store.APIKey) {
	if at, ok := lastUsedAt(bucketKeysLastUsed.of(tx), k.ID); ok && at.After(k.LastUsed) {
		k.LastUsed = at
	}
}

// deleteAPIKey removes a key and its index entries (DeleteUser).
func deleteAPIKey(tx *bolt.Tx, ownerID, keyID string, inv *invalidation) error {
	keys := bucketKeys.of(tx)
	k := new(store.APIKey)
	switch err := getJSON(keys, []byte(keyID), k); {
	case err == nil:
		if err := bucketKeysByDigest.of(tx).Delete(k.Digest[:]); err != nil {
			return err
		}
		if err := keys.Delete([]byte(keyID)); err != nil {
			return err
		}
		if err := bucketKeysLastUsed.of(tx).Delete([]byte(keyID)); err != nil {
			return err
		}
		inv.key(k.ID)
	case errors.Is(err, store.ErrNotFound): // a dangling index entry: just drop it
	default:
		return err
	}
	return bucketKeysByOwner.of(tx).Delete(pairKey(ownerID, keyID))
}
