package etcd

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/authgate/authgate/store"
)

// A username or an email is a login identifier (UserByLogin takes either):
// both share one namespace, logins/<store.LoginKey>, so no login may name
// two users. What a login may be is in store/logins.go.

// CreateUser stores a new user. It fills u.ID (when empty), u.V, and
// u.CreatedAt/u.UpdatedAt (when zero). The username, and the email when
// set, must not already name a user (ErrExists).
func (s *Store) CreateUser(u *store.User) error {
	return s.CreateUsers([]*store.User{u})
}

// CreateUsers stores new users as CreateUser does: all of them or, on the
// first error, none. A batch that fits in one etcd transaction is one;
// a larger one is committed in several (batch.go).
func (s *Store) CreateUsers(us []*store.User) error {
	for _, u := range us {
		if err := store.PrepareUser(u); err != nil {
			return err
		}
	}
	items := make([]batchItem, len(us))
	for i, u := range us {
		n := 1 + len(loginKeys(u))
		items[i] = batchItem{
			ops: n, cmps: n,
			write: func(tx *txn) error { return s.insertUser(tx, u) },
			undo:  func() error { return s.undoUser(u.ID) },
		}
	}
	return s.inBatches(items)
}

// insertUser stores a prepared user and claims its logins.
func (s *Store) insertUser(tx *txn, u *store.User) error {
	key := s.key(kindUsers, u.ID)
	if err := tx.fetch(true, append([]string{key}, s.loginKeysOf(u)...)...); err != nil {
		return err
	}
	if _, ok, err := tx.get(key, true); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("user id %q: %w", u.ID, store.ErrExists)
	}
	if err := s.claimLogins(tx, u, nil); err != nil {
		return err
	}
	return tx.putJSON(key, u)
}

// undoUser takes back a user a failed batch stored: gone with whatever
// was added to it meanwhile.
func (s *Store) undoUser(id string) error {
	if err := s.DeleteUser(id); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// UserByID returns the user with id: one linearizable read. The value is
// the caller's own.
func (s *Store) UserByID(id string) (*store.User, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	key := s.key(kindUsers, id)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, s.etcdErr(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, store.ErrNotFound
	}
	u := new(store.User)
	if err := decode(key, resp.Kvs[0].Value, u); err != nil {
		return nil, err
	}
	return u, nil
}

// UserByLogin returns the user whose username or email is login, compared
// as NormalizeLogin does. A login that cannot be normalised names no one:
// ErrNotFound like any unknown login.
func (s *Store) UserByLogin(login string) (*store.User, error) {
	key, err := store.NormalizeLogin(login)
	if err != nil {
		return nil, store.ErrNotFound
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	u := new(store.User)
	err = s.view(ctx, func(tx *txn) error {
		id, ok, err := tx.get(s.key(kindLogins, key), false)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		if ok, err := tx.getJSON(s.key(kindUsers, string(id)), false, u); err != nil {
			return err
		} else if !ok {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies fn to a fresh copy of the user and stores the result
// atomically; fn's error aborts. fn may run more than once (when another
// writer got there first); it must not call the store. ID and CreatedAt
// cannot be changed, UpdatedAt is set. A new login must not name another
// user (ErrExists).
func (s *Store) UpdateUser(id string, fn func(u *store.User) error) (*store.User, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var u *store.User
	_, err := s.update(ctx, func(tx *txn) error {
		key := s.key(kindUsers, id)
		raw, ok, err := tx.get(key, true)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		old, fresh := new(store.User), new(store.User)
		if err := decode(key, raw, old); err != nil {
			return err
		}
		if err := decode(key, raw, fresh); err != nil {
			return err
		}
		if err := fn(fresh); err != nil {
			return err
		}
		fresh.ID, fresh.CreatedAt = old.ID, old.CreatedAt
		fresh.V = store.RecordVersion
		fresh.UpdatedAt = utcNow()
		if err := store.PrepareLogins(fresh, old); err != nil {
			return err
		}
		if err := s.claimLogins(tx, fresh, old); err != nil {
			return err
		}
		u = fresh
		return tx.putJSON(key, fresh)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes the user with their API keys and their sessions with
// all refresh tokens, in one transaction. A user with more than fits in
// one (etcd caps its operations) is taken apart in several: keys and
// sessions first, each transaction complete in itself (every index and
// list stays consistent: a key or session is gone whole or not at all),
// the user and their logins in the last, which also takes whatever was
// added meanwhile. Until that last one commits the user exists with part
// of their credentials gone; a failure leaves it so, and DeleteUser again
// finishes it.
func (s *Store) DeleteUser(id string) error {
	for {
		ctx, cancel := s.opCtx()
		done := false
		_, err := s.update(ctx, func(tx *txn) error {
			done = false
			userKey := s.key(kindUsers, id)
			keyList, sessList, touched := s.key(kindKeysByOwner, id), s.key(kindSessionsByUser, id), s.key(kindSessionsTouched, id)
			if err := tx.fetch(true, userKey, keyList, sessList, touched); err != nil {
				return err
			}
			u := new(store.User)
			if ok, err := tx.getJSON(userKey, true, u); err != nil {
				return err
			} else if !ok {
				return store.ErrNotFound
			}
			keys, err := tx.list(keyList, true)
			if err != nil {
				return err
			}
			sessions, err := tx.list(sessList, true)
			if err != nil {
				return err
			}
			budget := s.maxOps - 8 // the user, two logins, the lists, a margin
			dropped, used, err := s.dropKeys(tx, keys.IDs, budget)
			if err != nil {
				return err
			}
			keys.remove(dropped...)
			ended, _, whole, err := s.dropSessions(tx, sessions.IDs, budget-used)
			if err != nil {
				return err
			}
			sessions.remove(ended...)
			if whole && len(keys.IDs) == 0 && len(sessions.IDs) == 0 {
				if err := s.claimLogins(tx, nil, u); err != nil {
					return err
				}
				tx.del(userKey)
				tx.del(keyList)
				tx.del(sessList)
				tx.del(touched)
				done = true
				return nil
			}
			if err := tx.putList(keyList, keys); err != nil {
				return err
			}
			if err := tx.putList(sessList, sessions); err != nil {
				return err
			}
			tx.touch(touched)
			return nil
		})
		cancel()
		if err != nil || done {
			return err
		}
	}
}

// ListUsers returns every user sorted by username (case-insensitively),
// then ID, as of one revision.
func (s *Store) ListUsers() ([]*store.User, error) {
	var list []*store.User
	err := s.view(s.ctx, func(tx *txn) error {
		list = nil
		return tx.scan(s.key(kindUsers, ""), func(kv *mvccpb.KeyValue) error {
			u := new(store.User)
			if err := decode(string(kv.Key), kv.Value, u); err != nil {
				return err
			}
			list = append(list, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.User) int {
		return cmp.Or(
			strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)),
			strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// loginKeys returns the keys of u's logins (username, email), without
// duplicates; none for nil.
func loginKeys(u *store.User) []string {
	if u == nil {
		return nil
	}
	var keys []string
	for _, l := range []string{u.Username, u.Email} {
		if k := store.LoginKey(l); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// loginKeysOf returns the etcd keys of u's logins.
func (s *Store) loginKeysOf(u *store.User) []string {
	keys := loginKeys(u)
	for i, k := range keys {
		keys[i] = s.key(kindLogins, k)
	}
	return keys
}

// claimLogins moves the login entries from old's username/email to u's.
// Either may be nil: create (old nil) or delete (u nil). A login already
// naming another user is ErrExists. A login left as it was keeps its
// entry as it is; only our own entries are removed.
func (s *Store) claimLogins(tx *txn, u, old *store.User) error {
	var id string
	var newLogins, oldLogins [2]string // username, email
	if u != nil {
		id = u.ID
		newLogins = [2]string{u.Username, u.Email}
	}
	if old != nil {
		id = old.ID
		oldLogins = [2]string{old.Username, old.Email}
	}
	var keys []string
	for i := range newLogins {
		if newLogins[i] != oldLogins[i] {
			for _, l := range []string{newLogins[i], oldLogins[i]} {
				if k := store.LoginKey(l); k != "" {
					keys = append(keys, s.key(kindLogins, k))
				}
			}
		}
	}
	if err := tx.fetch(true, keys...); err != nil {
		return err
	}
	kept := map[string]bool{} // every key u keeps or takes
	for i := range newLogins {
		if newLogins[i] == "" {
			continue
		}
		key := store.LoginKey(newLogins[i])
		kept[key] = true
		if newLogins[i] == oldLogins[i] {
			continue
		}
		owner, ok, err := tx.get(s.key(kindLogins, key), true)
		if err != nil {
			return err
		}
		if ok && string(owner) != id {
			return fmt.Errorf("login %q: %w", newLogins[i], store.ErrExists)
		}
	}
	for i := range oldLogins {
		key := store.LoginKey(oldLogins[i])
		if key == "" || newLogins[i] == oldLogins[i] || kept[key] {
			continue
		}
		if owner, ok, err := tx.get(s.key(kindLogins, key), true); err != nil {
			return err
		} else if ok && string(owner) == id {
			tx.del(s.key(kindLogins, key))
		}
	}
	for i := range newLogins {
		if newLogins[i] != "" && newLogins[i] != oldLogins[i] {
			tx.put(s.key(kindLogins, store.LoginKey(newLogins[i])), []byte(id))
		}
	}
	return nil
}
