package bbolt

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// A username or an email is a login identifier (UserByLogin takes either),
// so both share one namespace: no login may name two users, whichever index
// it sits in. What a login may be, and the key it is compared under, is in
// store/logins.go; claiming one is claimLogins.

// CreateUser stores a new user. It fills u.ID (when empty), u.V, and
// u.CreatedAt/u.UpdatedAt (when zero). The username, and the email when set,
// must not already name a user (ErrExists).
func (s *Store) CreateUser(u *store.User) error {
	if err := store.PrepareUser(u); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx, _ *invalidation) error { return insertUser(tx, u) })
}

// CreateUsers stores new users as CreateUser does, all in one transaction:
// all of them or, on the first error, none. For bulk loads, where one
// fsynced transaction per user would be the bottleneck.
func (s *Store) CreateUsers(us []*store.User) error {
	for _, u := range us {
		if err := store.PrepareUser(u); err != nil {
			return err
		}
	}
	return s.update(func(tx *bolt.Tx, _ *invalidation) error {
		for _, u := range us {
			if err := insertUser(tx, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertUser stores a prepared user and claims its logins.
func insertUser(tx *bolt.Tx, u *store.User) error {
	users := bucketUsers.of(tx)
	if users.Get([]byte(u.ID)) != nil {
		return fmt.Errorf("user id %q: %w", u.ID, store.ErrExists)
	}
	if err := claimLogins(tx, u, nil); err != nil {
		return err
	}
	return putJSON(users, []byte(u.ID), u)
}

// UserByID returns the user with id. The value may be shared with other
// callers through the cache: never modify it (use UpdateUser).
func (s *Store) UserByID(id string) (*store.User, error) {
	if u, ok := s.cache.users.Get(id); ok {
		return u, nil
	}
	gen := s.cache.generation()
	u := new(store.User)
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucketUsers.of(tx), []byte(id), u)
	})
	if err != nil {
		return nil, err
	}
	if s.testHookAfterMissRead != nil {
		s.testHookAfterMissRead()
	}
	s.cache.fillUser(gen, u)
	return u, nil
}

// UserByLogin returns the user whose username or email is login, compared
// as NormalizeLogin does (case, width and normalisation ignored). A login
// that cannot be normalised names no one: ErrNotFound like any unknown
// login, so a caller learns nothing more. It is not cached: the value is
// the caller's own copy.
func (s *Store) UserByLogin(login string) (*store.User, error) {
	key, err := store.NormalizeLogin(login)
	if err != nil {
		return nil, store.ErrNotFound
	}
	u := new(store.User)
	err = s.db.View(func(tx *bolt.Tx) error {
		id := loginOwner(tx, []byte(key))
		if id == nil {
			return store.ErrNotFound
		}
		return getJSON(bucketUsers.of(tx), id, u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies fn to a fresh copy of the user in one transaction and
// stores the result; fn's error aborts the update. ID and CreatedAt cannot be
// changed, UpdatedAt is set. A new username or email must not name another
// user (ErrExists). The returned value is the caller's own copy.
func (s *Store) UpdateUser(id string, fn func(u *store.User) error) (*store.User, error) {
	var u *store.User
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		users := bucketUsers.of(tx)
		old := new(store.User)
		if err := getJSON(users, []byte(id), old); err != nil {
			return err
		}
		u = new(store.User)
		if err := getJSON(users, []byte(id), u); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
		u.ID, u.CreatedAt = old.ID, old.CreatedAt
		u.V = store.RecordVersion
		u.UpdatedAt = utcNow()
		if err := store.PrepareLogins(u, old); err != nil {
			return err
		}
		if err := claimLogins(tx, u, old); err != nil {
			return err
		}
		if err := putJSON(users, []byte(id), u); err != nil {
			return err
		}
		inv.user(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes the user with everything that authenticates as them:
// their API keys and their sessions with all refresh tokens, in one
// transaction.
func (s *Store) DeleteUser(id string) error {
	return s.update(func(tx *bolt.Tx, inv *invalidation) error {
		users := bucketUsers.of(tx)
		u := new(store.User)
		if err := getJSON(users, []byte(id), u); err != nil {
			return err
		}
		if err := claimLogins(tx, nil, u); err != nil {
			return err
		}
		for _, keyID := range childIDs(bucketKeysByOwner.of(tx), id) {
			if err := deleteAPIKey(tx, id, keyID, inv); err != nil {
				return err
			}
		}
		for _, sid := range childIDs(bucketSessionsByUser.of(tx), id) {
			if err := deleteSession(tx, id, sid, inv); err != nil {
				return err
			}
		}
		if err := users.Delete([]byte(id)); err != nil {
			return err
		}
		inv.user(id)
		return nil
	})
}

// ListUsers returns every user sorted by username (case-insensitively).
func (s *Store) ListUsers() ([]*store.User, error) {
	var list []*store.User
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucketUsers.of(tx).ForEach(func(_, v []byte) error {
			u := new(store.User)
			if err := decode(v, u); err != nil {
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

// loginOwner returns the ID of the user a login key names, as a username
// first, then as an email; nil if none.
func loginOwner(tx *bolt.Tx, key []byte) []byte {
	if len(key) == 0 {
		return nil
	}
	if id := bucketUsersByName.of(tx).Get(key); id != nil {
		return id
	}
	return bucketUsersByEmail.of(tx).Get(key)
}

// loginTaken reports whether a login key names a user other than id, in
// either index: one namespace.
func loginTaken(tx *bolt.Tx, key []byte, id string) bool {
	for _, index := range []bucket{bucketUsersByName, bucketUsersByEmail} {
		if owner := index.of(tx).Get(key); owner != nil && string(owner) != id {
			return true
		}
	}
	return false
}

// claimLogins moves the login indexes from old's username/email to u's.
// Either may be nil: create (old nil) or delete (u nil). A login already
// naming another user is ErrExists. A login left as it was keeps its entry
// as it is: an old record's login indexed under a legacy key, or left
// unindexed by a migration's collision, is not re-claimed.
func claimLogins(tx *bolt.Tx, u, old *store.User) error {
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
	indexes := [2]*bolt.Bucket{bucketUsersByName.of(tx), bucketUsersByEmail.of(tx)}
	for i := range newLogins {
		if newLogins[i] == oldLogins[i] || newLogins[i] == "" {
			continue
		}
		if key := store.LoginKey(newLogins[i]); loginTaken(tx, []byte(key), id) {
			return fmt.Errorf("login %q: %w", newLogins[i], store.ErrExists)
		}
	}
	for i, index := range indexes {
		if newLogins[i] == oldLogins[i] {
			continue
		}
		// Only our own entry goes: after a migration's collision the key
		// may be another user's.
		if oldKey := []byte(store.LoginKey(oldLogins[i])); len(oldKey) > 0 && string(index.Get(oldKey)) == id {
			if err := index.Delete(oldKey); err != nil {
				return err
			}
		}
		if newKey := []byte(store.LoginKey(newLogins[i])); len(newKey) > 0 {
			if err := index.Put(newKey, []byte(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// childIDs lists the children of owner in an "owner/child" index. It
// collects first: deleting while a bbolt cursor walks skips entries.
func childIDs(index *bolt.Bucket, owner string) []string {
	prefix := pairKey(owner, "")
	var ids []string
	c := index.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}
