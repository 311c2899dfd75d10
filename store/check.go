package store

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Counts is how many records of each kind a store holds.
type Counts struct {
	Users       int `json:"users"`
	APIKeys     int `json:"apiKeys"`
	Sessions    int `json:"sessions"`
	SigningKeys int `json:"signingKeys"`
}

// Check verifies, in one read transaction, that every record decodes and
// every index entry resolves to the record it names (a backup's or a
// crash's consistency), and counts the records. The first problem found is
// returned as an error wrapping ErrMalformed.
func (s *Store) Check() (Counts, error) {
	var c Counts
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if c, err = check(tx); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil
	})
	return c, err
}

func check(tx *bbolt.Tx) (Counts, error) {
	var c Counts
	users, keys, sessions := tx.Bucket(bucketUsers), tx.Bucket(bucketKeys), tx.Bucket(bucketSessions)

	// Each user's logins have an entry: their own, or, after a migration's
	// collision, another user's; and each entry names a user whose login
	// has that key (indexKey).
	byName, byEmail := tx.Bucket(bucketUsersByName), tx.Bucket(bucketUsersByEmail)
	err := users.ForEach(func(id, v []byte) error {
		var u User
		if err := decode(v, &u); err != nil || u.ID != string(id) {
			return fmt.Errorf("user %q does not decode to itself", id)
		}
		for _, login := range []string{u.Username, u.Email} {
			if key := []byte(indexKey(login)); len(key) > 0 && byName.Get(key) == nil && byEmail.Get(key) == nil {
				return fmt.Errorf("a login of user %q is missing from the login indexes", id)
			}
		}
		c.Users++
		return nil
	})
	if err != nil {
		return c, err
	}
	for _, index := range [][]byte{bucketUsersByName, bucketUsersByEmail} {
		err := tx.Bucket(index).ForEach(func(key, id []byte) error {
			var u User
			if decode(users.Get(id), &u) != nil {
				return fmt.Errorf("%s entry %q names missing user %q", index, key, id)
			}
			login := u.Username
			if bytes.Equal(index, bucketUsersByEmail) {
				login = u.Email
			}
			if indexKey(login) != string(key) {
				return fmt.Errorf("%s entry %q names user %q, whose login is not that", index, key, id)
			}
			return nil
		})
		if err != nil {
			return c, err
		}
	}

	err = keys.ForEach(func(id, v []byte) error {
		var k APIKey
		if err := decode(v, &k); err != nil || k.ID != string(id) {
			return fmt.Errorf("api key %q does not decode to itself", id)
		}
		if users.Get([]byte(k.OwnerID)) == nil {
			return fmt.Errorf("api key %q names missing owner %q", id, k.OwnerID)
		}
		if got := tx.Bucket(bucketKeysByDigest).Get(k.Digest[:]); !bytes.Equal(got, id) {
			return fmt.Errorf("api key %q is missing from the digest index", id)
		}
		c.APIKeys++
		return nil
	})
	if err != nil {
		return c, err
	}
	err = tx.Bucket(bucketKeysByDigest).ForEach(func(_, id []byte) error {
		if keys.Get(id) == nil {
			return fmt.Errorf("digest index names missing api key %q", id)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	err = tx.Bucket(bucketKeysLastUsed).ForEach(func(id, v []byte) error {
		if keys.Get(id) == nil {
			return fmt.Errorf("last-use times name missing api key %q", id)
		}
		if len(v) != 8 {
			return fmt.Errorf("last-use time of api key %q is %d bytes, want 8", id, len(v))
		}
		return nil
	})
	if err != nil {
		return c, err
	}

	err = sessions.ForEach(func(id, v []byte) error {
		var sess Session
		if err := decode(v, &sess); err != nil || sess.ID != string(id) {
			return fmt.Errorf("session %q does not decode to itself", id)
		}
		if users.Get([]byte(sess.UserID)) == nil {
			return fmt.Errorf("session %q names missing user %q", id, sess.UserID)
		}
		c.Sessions++
		return nil
	})
	if err != nil {
		return c, err
	}
	refresh := tx.Bucket(bucketRefresh)
	err = refresh.ForEach(func(d, v []byte) error {
		var e refreshEntry
		if err := decode(v, &e); err != nil {
			return fmt.Errorf("refresh entry does not decode: %v", err)
		}
		if sessions.Get([]byte(e.SID)) == nil {
			return fmt.Errorf("refresh entry names missing session %q", e.SID)
		}
		return nil
	})
	if err != nil {
		return c, err
	}

	// The listing indexes: "owner/child" keys whose child must exist.
	for _, pair := range []struct {
		index, records *bbolt.Bucket
		name           string
	}{
		{tx.Bucket(bucketKeysByOwner), keys, "keys_by_owner"},
		{tx.Bucket(bucketSessionsByUser), sessions, "sessions_by_user"},
		{tx.Bucket(bucketRefreshBySession), refresh, "refresh_by_session"},
	} {
		err := pair.index.ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, '/')
			if i < 0 {
				return fmt.Errorf("%s entry without '/'", pair.name)
			}
			if pair.records.Get(k[i+1:]) == nil {
				return fmt.Errorf("%s entry for %q names a missing record", pair.name, k[:i])
			}
			return nil
		})
		if err != nil {
			return c, err
		}
	}

	list, err := signingKeys(tx)
	c.SigningKeys = len(list)
	if err != nil {
		return c, errors.New("a signing key does not decode")
	}
	return c, nil
}
