package etcd

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
)

// lastUsed is the value of keys_last_used/<key id> (and of
// sessions_last_seen/<session id>: sessions.go). The times are kept
// apart from the key records, as bbolt keeps them: a TouchAPIKeys batch
// covers every key in use and must neither rewrite their records nor
// count as a change (the watch ignores these keys). Readers take the
// later of the two.
type lastUsed struct {
	V  int       `json:"v"`
	At time.Time `json:"at"`
}

// CreateAPIKey stores a new key for an existing owner (else ErrNotFound).
// It fills k.ID (when empty), k.V and k.CreatedAt (when zero). k.Digest
// must be set and not belong to another key (ErrExists).
func (s *Store) CreateAPIKey(k *store.APIKey) error {
	return s.CreateAPIKeys([]*store.APIKey{k})
}

// CreateAPIKeys stores new keys as CreateAPIKey does: all of them or, on
// the first error, none (batch.go for large batches).
func (s *Store) CreateAPIKeys(ks []*store.APIKey) error {
	legacy := false
	for _, k := range ks {
		if err := store.PrepareAPIKey(k); err != nil {
			return err
		}
		legacy = legacy || k.Legacy
	}
	items := make([]batchItem, len(ks))
	for i, k := range ks {
		items[i] = batchItem{
			ops: 5, cmps: 4, // key, digest, owner list, legacy flag; owner, list
			write: func(tx *txn) error { return s.insertAPIKey(tx, k) },
			undo:  func() error { return s.undoAPIKey(k.OwnerID, k.ID) },
		}
	}
	err := s.inBatches(items)
	if err == nil && legacy {
		s.legacyKeys.Store(true)
	}
	return err
}

// insertAPIKey stores a prepared key with its index entries.
func (s *Store) insertAPIKey(tx *txn, k *store.APIKey) error {
	owner, key, digest, list := s.key(kindUsers, k.OwnerID), s.key(kindKeys, k.ID), s.key(kindKeysByDigest, k.Digest.String()), s.key(kindKeysByOwner, k.OwnerID)
	if err := tx.fetch(true, owner, key, digest, list); err != nil {
		return err
	}
	if _, ok, err := tx.get(owner, true); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("owner %q: %w", k.OwnerID, store.ErrNotFound)
	}
	if _, ok, err := tx.get(key, true); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("key id %q: %w", k.ID, store.ErrExists)
	}
	if _, ok, err := tx.get(digest, true); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("api key digest: %w", store.ErrExists)
	}
	keys, err := tx.list(list, true)
	if err != nil {
		return err
	}
	keys.add(k.ID)
	if err := tx.putList(list, keys); err != nil {
		return err
	}
	tx.put(digest, []byte(k.ID))
	if k.Legacy {
		tx.put(s.meta(keyMetaLegacyKeys), []byte("1"))
	}
	return tx.putJSON(key, k)
}

// undoAPIKey takes back a key a failed batch stored.
func (s *Store) undoAPIKey(ownerID, keyID string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.update(ctx, func(tx *txn) error {
		list := s.key(kindKeysByOwner, ownerID)
		keys, err := tx.list(list, true)
		if err != nil {
			return err
		}
		if _, _, err := s.dropKeys(tx, []string{keyID}, s.maxOps); err != nil {
			return err
		}
		keys.remove(keyID)
		return tx.putList(list, keys)
	})
	return err
}

// dropKeys deletes, in tx, as many of the keys ids as fit in budget
// operations, with their digest entries and last-use times, and returns
// the ids it deleted and the operations used. The caller has read the
// owner's key list (compared) and updates it. The key records are read
// uncompared: only their digest, which never changes, is used.
func (s *Store) dropKeys(tx *txn, ids []string, budget int) ([]string, int, error) {
	var keys []string
	for _, id := range ids[:min(len(ids), budget/3)] {
		keys = append(keys, s.key(kindKeys, id))
	}
	if err := tx.fetch(false, keys...); err != nil {
		return nil, 0, err
	}
	var dropped []string
	used := 0
	for _, id := range ids {
		if used+3 > budget {
			break
		}
		key := s.key(kindKeys, id)
		k := new(store.APIKey)
		ok, err := tx.getJSON(key, false, k)
		if err != nil {
			return nil, 0, err
		}
		if ok {
			digest := s.key(kindKeysByDigest, k.Digest.String())
			if owner, ok, err := tx.get(digest, false); err != nil {
				return nil, 0, err
			} else if ok && string(owner) == id {
				tx.del(digest)
			}
			tx.del(key)
			tx.del(s.key(kindKeysLastUsed, id))
			used += 3
		}
		dropped = append(dropped, id)
	}
	return dropped, used, nil
}

// APIKeyByDigest returns the key whose digest is d: the digest entry,
// then the record with its last-use time (two reads, at one revision).
// Revoked and expired keys are returned too; check Usable.
func (s *Store) APIKeyByDigest(d store.Digest) (*store.APIKey, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var k *store.APIKey
	err := s.view(ctx, func(tx *txn) error {
		id, ok, err := tx.get(s.key(kindKeysByDigest, d.String()), false)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		k, err = s.readAPIKey(tx, string(id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// APIKeyByID returns the key with id (one read of the record and its
// last-use time).
func (s *Store) APIKeyByID(id string) (*store.APIKey, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var k *store.APIKey
	err := s.view(ctx, func(tx *txn) error {
		var err error
		k, err = s.readAPIKey(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// readAPIKey reads a key with its last-use time; ErrNotFound when absent.
func (s *Store) readAPIKey(tx *txn, id string) (*store.APIKey, error) {
	key, used := s.key(kindKeys, id), s.key(kindKeysLastUsed, id)
	if err := tx.fetch(false, key, used); err != nil {
		return nil, err
	}
	k := new(store.APIKey)
	if ok, err := tx.getJSON(key, false, k); err != nil {
		return nil, err
	} else if !ok {
		return nil, store.ErrNotFound
	}
	return k, s.withLastUsed(tx, k)
}

// withLastUsed sets k.LastUsed to the touched time, if that is later than
// the record's own.
func (s *Store) withLastUsed(tx *txn, k *store.APIKey) error {
	var lu lastUsed
	if ok, err := tx.getJSON(s.key(kindKeysLastUsed, k.ID), false, &lu); err != nil || !ok {
		return err
	}
	if lu.At.After(k.LastUsed) {
		k.LastUsed = lu.At
	}
	return nil
}

// ListAPIKeys returns the keys of ownerID, or every key when ownerID is
// "", sorted by CreatedAt then ID, as of one revision.
func (s *Store) ListAPIKeys(ownerID string) ([]*store.APIKey, error) {
	ctx, cancel := s.ctx, context.CancelFunc(func() {})
	if ownerID != "" {
		ctx, cancel = s.opCtx()
	}
	defer cancel()
	var list []*store.APIKey
	err := s.view(ctx, func(tx *txn) error {
		list = nil
		if ownerID == "" {
			return s.scanAPIKeys(tx, func(k *store.APIKey) { list = append(list, k) })
		}
		ids, err := tx.list(s.key(kindKeysByOwner, ownerID), false)
		if err != nil {
			return err
		}
		var keys []string
		for _, id := range ids.IDs {
			keys = append(keys, s.key(kindKeys, id), s.key(kindKeysLastUsed, id))
		}
		if err := tx.fetch(false, keys...); err != nil {
			return err
		}
		for _, id := range ids.IDs {
			k, err := s.readAPIKey(tx, id)
			if isNotFound(err) {
				continue // a dangling list entry: Check reports it
			}
			if err != nil {
				return err
			}
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

// scanAPIKeys calls fn with every key, with its last-use time, at tx's
// revision.
func (s *Store) scanAPIKeys(tx *txn, fn func(k *store.APIKey)) error {
	used, err := s.scanTimes(tx, kindKeysLastUsed)
	if err != nil {
		return err
	}
	return tx.scan(s.key(kindKeys, ""), func(kv *mvccpb.KeyValue) error {
		k := new(store.APIKey)
		if err := decode(string(kv.Key), kv.Value, k); err != nil {
			return err
		}
		if at, ok := used[k.ID]; ok && at.After(k.LastUsed) {
			k.LastUsed = at
		}
		fn(k)
		return nil
	})
}

// scanTimes reads every time of timeKind (keys_last_used,
// sessions_last_seen) at tx's revision, by record id.
func (s *Store) scanTimes(tx *txn, timeKind string) (map[string]time.Time, error) {
	times := map[string]time.Time{}
	prefix := s.key(timeKind, "")
	err := tx.scan(prefix, func(kv *mvccpb.KeyValue) error {
		var lu lastUsed
		if err := decode(string(kv.Key), kv.Value, &lu); err != nil {
			return err
		}
		times[string(kv.Key[len(prefix):])] = lu.At
		return nil
	})
	return times, err
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

// UpdateAPIKey applies fn to a fresh copy of the key and stores it
// atomically; fn's error aborts, and fn may run more than once (it must
// not call the store). ID, Digest, OwnerID and CreatedAt cannot be
// changed.
func (s *Store) UpdateAPIKey(id string, fn func(k *store.APIKey) error) (*store.APIKey, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var k *store.APIKey
	_, err := s.update(ctx, func(tx *txn) error {
		key := s.key(kindKeys, id)
		if err := tx.fetch(false, s.key(kindKeysLastUsed, id)); err != nil {
			return err
		}
		raw, ok, err := tx.get(key, true)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		old, fresh := new(store.APIKey), new(store.APIKey)
		if err := decode(key, raw, old); err != nil {
			return err
		}
		if err := decode(key, raw, fresh); err != nil {
			return err
		}
		if err := fn(fresh); err != nil {
			return err
		}
		fresh.ID, fresh.Digest, fresh.OwnerID, fresh.CreatedAt = old.ID, old.Digest, old.OwnerID, old.CreatedAt
		fresh.V = store.RecordVersion
		if err := tx.putJSON(key, fresh); err != nil {
			return err
		}
		// The record's own LastUsed is stored; the caller sees the later.
		k = fresh
		return s.withLastUsed(tx, k)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// touchChunk is how many keys one TouchAPIKeys transaction covers: two
// reads and up to two compares each.
func (s *Store) touchChunk() int { return max(1, (s.maxOps-2)/2) }

// TouchAPIKeys records when keys were last used, many at once, in
// transactions of touchChunk keys. LastUsed only moves forward; unknown
// IDs are skipped. It neither moves Generation nor marks the keys changed:
// nothing is decided by LastUsed (feed.go ignores keys_last_used).
func (s *Store) TouchAPIKeys(times map[string]time.Time) error {
	return s.touchAll(kindKeys, kindKeysLastUsed, times)
}

// touchAll writes times of records of kind to their own keys of
// timeKind (keys_last_used, sessions_last_seen: TouchAPIKeys,
// TouchSessions), in transactions of touchChunk records, in ID order.
func (s *Store) touchAll(kind, timeKind string, times map[string]time.Time) error {
	if s.closed.Load() {
		return ErrClosed
	}
	ids := slices.Sorted(maps.Keys(times))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), s.touchChunk())]
		ids = ids[len(chunk):]
		if err := s.touch(kind, timeKind, chunk, times); err != nil {
			return err
		}
	}
	return nil
}

// touch is one transaction of touchAll: it reads whether each record
// exists (without its value) and its stored time, and writes the later
// times, if the records and times are still as read.
func (s *Store) touch(kind, timeKind string, ids []string, times map[string]time.Time) error {
	for attempt := 0; ; attempt++ {
		ctx, cancel := s.opCtx()
		ops := make([]clientv3.Op, 0, 2*len(ids))
		for _, id := range ids {
			ops = append(ops, clientv3.OpGet(s.key(kind, id), clientv3.WithKeysOnly()), clientv3.OpGet(s.key(timeKind, id)))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			cancel()
			return s.etcdErr(err)
		}
		var cmps []clientv3.Cmp
		var puts []clientv3.Op
		for i, id := range ids {
			keyKvs := resp.Responses[2*i].GetResponseRange().GetKvs()
			usedKvs := resp.Responses[2*i+1].GetResponseRange().GetKvs()
			if len(keyKvs) == 0 {
				continue // unknown or deleted meanwhile
			}
			at := time.Unix(0, times[id].UnixNano()).UTC()
			usedKey := s.key(timeKind, id)
			var mod int64
			if len(usedKvs) > 0 {
				var old lastUsed
				if err := decode(usedKey, usedKvs[0].Value, &old); err != nil {
					cancel()
					return err
				}
				if !at.After(old.At) {
					continue
				}
				mod = usedKvs[0].ModRevision
			}
			raw, err := json.Marshal(lastUsed{V: store.RecordVersion, At: at})
			if err != nil {
				cancel()
				return err
			}
			cmps = append(cmps,
				clientv3.Compare(clientv3.CreateRevision(s.key(kind, id)), "=", keyKvs[0].CreateRevision),
				clientv3.Compare(clientv3.ModRevision(usedKey), "=", mod))
			puts = append(puts, clientv3.OpPut(usedKey, string(raw)))
		}
		if len(puts) == 0 {
			cancel()
			return nil
		}
		cresp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			cancel()
			return s.etcdErr(err)
		}
		if cresp.Succeeded {
			cancel()
			return nil
		}
		err = pause(ctx, attempt)
		cancel()
		if err != nil {
			return s.etcdErr(err)
		}
	}
}
