package bbolt

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// Check verifies, in one read transaction, that every record decodes and
// every index entry resolves to the record it names (a backup's or a
// crash's consistency), and counts the records. The first problem found is
// returned as an error wrapping ErrMalformed.
func (s *Store) Check() (store.Counts, error) {
	var c store.Counts
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if c, err = check(tx); err != nil {
			return fmt.Errorf("%w: %v", store.ErrMalformed, err)
		}
		return nil
	})
	return c, err
}

func check(tx *bolt.Tx) (store.Counts, error) {
	var c store.Counts
	users, keys, sessions := bucketUsers.of(tx), bucketKeys.of(tx), bucketSessions.of(tx)

	// Each user's logins have an entry: their own, or, after a migration's
	// collision, another user's; and each entry names a user whose login
	// has that key (store.LoginKey).
	byName, byEmail := bucketUsersByName.of(tx), bucketUsersByEmail.of(tx)
	err := users.ForEach(func(id, v []byte) error {
		var u store.User
		if err := decode(v, &u); err != nil || u.ID != string(id) {
			return fmt.Errorf("user %q does not decode to itself", id)
		}
		for _, login := range []string{u.Username, u.Email} {
			if key := []byte(store.LoginKey(login)); len(key) > 0 && byName.Get(key) == nil && byEmail.Get(key) == nil {
				return fmt.Errorf("a login of user %q is missing from the login indexes", id)
			}
		}
		c.Users++
		return nil
	})
	if err != nil {
		return c, err
	}
	for _, index := range []bucket{bucketUsersByName, bucketUsersByEmail} {
		err := index.of(tx).ForEach(func(key, id []byte) error {
			var u store.User
			if decode(users.Get(id), &u) != nil {
				return fmt.Errorf("%s entry %q names missing user %q", index, key, id)
			}
			login := u.Username
			if bytes.Equal(index.name, bucketUsersByEmail.name) {
				login = u.Email
			}
			if store.LoginKey(login) != string(key) {
				return fmt.Errorf("%s entry %q names user %q, whose login is not that", index, key, id)
			}
			return nil
		})
		if err != nil {
			return c, err
		}
	}

	err = keys.ForEach(func(id, v []byte) error {
		var k store.APIKey
		if err := decode(v, &k); err != nil || k.ID != string(id) {
			return fmt.Errorf("api key %q does not decode to itself", id)
		}
		if users.Get([]byte(k.OwnerID)) == nil {
			return fmt.Errorf("api key %q names missing owner %q", id, k.OwnerID)
		}
		if got := bucketKeysByDigest.of(tx).Get(k.Digest[:]); !bytes.Equal(got, id) {
			return fmt.Errorf("api key %q is missing from the digest index", id)
		}
		c.APIKeys++
		return nil
	})
	if err != nil {
		return c, err
	}
	err = bucketKeysByDigest.of(tx).ForEach(func(_, id []byte) error {
		if keys.Get(id) == nil {
			return fmt.Errorf("digest index names missing api key %q", id)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	err = bucketKeysLastUsed.of(tx).ForEach(func(id, v []byte) error {
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
		var sess store.Session
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
	err = bucketSessionsLastSeen.of(tx).ForEach(func(id, v []byte) error {
		if sessions.Get(id) == nil {
			return fmt.Errorf("last-seen times name missing session %q", id)
		}
		if len(v) != 8 {
			return fmt.Errorf("last-seen time of session %q is %d bytes, want 8", id, len(v))
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	refresh := bucketRefresh.of(tx)
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
		index, records *bolt.Bucket
		name           string
	}{
		{bucketKeysByOwner.of(tx), keys, "keys_by_owner"},
		{bucketSessionsByUser.of(tx), sessions, "sessions_by_user"},
		{bucketRefreshBySession.of(tx), refresh, "refresh_by_session"},
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

	// The lockout's counters: each decodes to the account and kind of its
	// key (Open drops one that does not; they are not counted).
	err = bucketAttempts.of(tx).ForEach(func(k, v []byte) error {
		var st store.AttemptState
		if len(k) != len(attemptKey{}) || decode(v, &st) != nil {
			return fmt.Errorf("an attempts entry does not decode")
		}
		if want := attemptKeyOf(st.Attempt); !bytes.Equal(k, want[:]) {
			return fmt.Errorf("an attempts entry is stored under another account's key")
		}
		return nil
	})
	if err != nil {
		return c, err
	}

	list, err := signingKeys(tx)
	c.SigningKeys = len(list)
	if err != nil {
		return c, errors.New("a signing key does not decode")
	}
	return c, nil
}
