package store

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// A username or an email is a login identifier (UserByLogin takes either),
// so both share one namespace: no login may name two users, whichever index
// it sits in. What a login may be, and the key it is compared under, is in
// logins.go.

const maxIDLen = 128 // bytes

// CreateUser stores a new user. It fills u.ID (when empty), u.V, and
// u.CreatedAt/u.UpdatedAt (when zero). The username, and the email when set,
// must not already name a user (ErrExists).
func (s *Store) CreateUser(u *User) error {
	if err := prepareUser(u); err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx, _ *invalidation) error { return insertUser(tx, u) })
}

// CreateUsers stores new users as CreateUser does, all in one transaction:
// all of them or, on the first error, none. For bulk loads, where one
// fsynced transaction per user would be the bottleneck.
func (s *Store) CreateUsers(us []*User) error {
	for _, u := range us {
		if err := prepareUser(u); err != nil {
			return err
		}
	}
	return s.update(func(tx *bbolt.Tx, _ *invalidation) error {
		for _, u := range us {
			if err := insertUser(tx, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// prepareUser fills and validates a new user before its transaction.
func prepareUser(u *User) error {
	if u.ID == "" {
		u.ID = NewID("usr_")
	}
	if err := validateID("user id", u.ID); err != nil {
		return err
	}
	if err := validateUser(u, nil); err != nil {
		return err
	}
	u.V = recordVersion
	t := utcNow()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = t
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = t
	}
	return nil
}

// insertUser stores a prepared user and claims its logins.
func insertUser(tx *bbolt.Tx, u *User) error {
	users := tx.Bucket(bucketUsers)
	if users.Get([]byte(u.ID)) != nil {
		return fmt.Errorf("user id %q: %w", u.ID, ErrExists)
	}
	if err := claimLogins(tx, u, nil); err != nil {
		return err
	}
	return putJSON(users, []byte(u.ID), u)
}

// UserByID returns the user with id. The value may be shared with other
// callers through the cache: never modify it (use UpdateUser).
func (s *Store) UserByID(id string) (*User, error) {
	if u, ok := s.cache.users.Get(id); ok {
		return u, nil
	}
	gen := s.cache.generation()
	u := new(User)
	err := s.db.View(func(tx *bbolt.Tx) error {
		return getJSON(tx.Bucket(bucketUsers), []byte(id), u)
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
func (s *Store) UserByLogin(login string) (*User, error) {
	key, err := NormalizeLogin(login)
	if err != nil {
		return nil, ErrNotFound
	}
	u := new(User)
	err = s.db.View(func(tx *bbolt.Tx) error {
		id := loginOwner(tx, []byte(key))
		if id == nil {
			return ErrNotFound
		}
		return getJSON(tx.Bucket(bucketUsers), id, u)
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
func (s *Store) UpdateUser(id string, fn func(u *User) error) (*User, error) {
	var u *User
	err := s.update(func(tx *bbolt.Tx, inv *invalidation) error {
		users := tx.Bucket(bucketUsers)
		old := new(User)
		if err := getJSON(users, []byte(id), old); err != nil {
			return err
		}
		u = new(User)
		if err := getJSON(users, []byte(id), u); err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
		u.ID, u.CreatedAt = old.ID, old.CreatedAt
		u.V = recordVersion
		u.UpdatedAt = utcNow()
		if err := validateUser(u, old); err != nil {
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
	return s.update(func(tx *bbolt.Tx, inv *invalidation) error {
		users := tx.Bucket(bucketUsers)
		u := new(User)
		if err := getJSON(users, []byte(id), u); err != nil {
			return err
		}
		if err := claimLogins(tx, nil, u); err != nil {
			return err
		}
		for _, keyID := range childIDs(tx.Bucket(bucketKeysByOwner), id) {
			if err := deleteAPIKey(tx, id, keyID, inv); err != nil {
				return err
			}
		}
		for _, sid := range childIDs(tx.Bucket(bucketSessionsByUser), id) {
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
func (s *Store) ListUsers() ([]*User, error) {
	var list []*User
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			u := new(User)
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
	slices.SortFunc(list, func(a, b *User) int {
		return cmp.Or(
			strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)),
			strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// loginOwner returns the ID of the user a login key names, as a username
// first, then as an email; nil if none.
func loginOwner(tx *bbolt.Tx, key []byte) []byte {
	if len(key) == 0 {
		return nil
	}
	if id := tx.Bucket(bucketUsersByName).Get(key); id != nil {
		return id
	}
	return tx.Bucket(bucketUsersByEmail).Get(key)
}

// loginTaken reports whether a login key names a user other than id, in
// either index: one namespace.
func loginTaken(tx *bbolt.Tx, key []byte, id string) bool {
	for _, index := range [][]byte{bucketUsersByName, bucketUsersByEmail} {
		if owner := tx.Bucket(index).Get(key); owner != nil && string(owner) != id {
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
func claimLogins(tx *bbolt.Tx, u, old *User) error {
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
	indexes := [2]*bbolt.Bucket{tx.Bucket(bucketUsersByName), tx.Bucket(bucketUsersByEmail)}
	for i := range newLogins {
		if newLogins[i] == oldLogins[i] || newLogins[i] == "" {
			continue
		}
		if key := indexKey(newLogins[i]); loginTaken(tx, []byte(key), id) {
			return fmt.Errorf("login %q: %w", newLogins[i], ErrExists)
		}
	}
	for i, index := range indexes {
		if newLogins[i] == oldLogins[i] {
			continue
		}
		// Only our own entry goes: after a migration's collision the key
		// may be another user's.
		if oldKey := []byte(indexKey(oldLogins[i])); len(oldKey) > 0 && string(index.Get(oldKey)) == id {
			if err := index.Delete(oldKey); err != nil {
				return err
			}
		}
		if newKey := []byte(indexKey(newLogins[i])); len(newKey) > 0 {
			if err := index.Put(newKey, []byte(id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateUser checks the logins of u and replaces them by their stored
// forms (validateUsername, validateEmail). On an update (old not nil) a
// login left unchanged is not checked again: a record stored under older
// rules can still be edited (disabled, given roles) before it is renamed.
func validateUser(u, old *User) error {
	if old == nil || u.Username != old.Username {
		name, err := validateUsername(u.Username)
		if err != nil {
			return err
		}
		u.Username = name
	}
	if u.Email != "" && (old == nil || u.Email != old.Email) {
		email, err := validateEmail(u.Email)
		if err != nil {
			return err
		}
		u.Email = email
	}
	return nil
}

// validateID keeps caller-supplied IDs (imports) safe as index keys: the
// "owner/child" listing keys need IDs without '/'.
func validateID(what, id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalid, what, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: %s may only contain letters, digits, '_', '-' and '.'", ErrInvalid, what)
		}
	}
	return nil
}

// childIDs lists the children of owner in an "owner/child" index. It
// collects first: deleting while a bbolt cursor walks skips entries.
func childIDs(index *bbolt.Bucket, owner string) []string {
	prefix := pairKey(owner, "")
	var ids []string
	c := index.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	return ids
}
