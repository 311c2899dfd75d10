package bbolt

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// Export returns every record but the lockout's counters, read in one
// transaction (one moment; writers are not blocked): users, keys and
// sessions in ID order, refresh tokens in digest order, signing keys by
// CreatedAt then KID. API keys carry the later of their record's LastUsed
// and the keys_last_used time, sessions the later of their LastSeen and
// the sessions_last_seen time. Every record is the caller's own copy.
func (s *Store) Export() (*store.Snapshot, error) {
	snap := &store.Snapshot{}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := bucketUsers.of(tx).ForEach(func(_, v []byte) error {
			u := new(store.User)
			snap.Users = append(snap.Users, u)
			return decode(v, u)
		})
		if err != nil {
			return err
		}
		err = bucketKeys.of(tx).ForEach(func(_, v []byte) error {
			k := new(store.APIKey)
			if err := decode(v, k); err != nil {
				return err
			}
			withLastUsed(tx, k)
			snap.APIKeys = append(snap.APIKeys, k)
			return nil
		})
		if err != nil {
			return err
		}
		err = bucketSessions.of(tx).ForEach(func(_, v []byte) error {
			sess := new(store.Session)
			if err := decode(v, sess); err != nil {
				return err
			}
			withLastSeen(tx, sess)
			snap.Sessions = append(snap.Sessions, sess)
			return nil
		})
		if err != nil {
			return err
		}
		err = bucketRefresh.of(tx).ForEach(func(d, v []byte) error {
			var e refreshEntry
			if err := decode(v, &e); err != nil {
				return err
			}
			r := store.RefreshToken{SessionID: e.SID, Spent: e.Spent, ExpiresAt: e.Exp}
			if len(d) != len(r.Digest) {
				return fmt.Errorf("%w: refresh entry under a %d-byte key", store.ErrMalformed, len(d))
			}
			copy(r.Digest[:], d)
			snap.Refresh = append(snap.Refresh, r)
			return nil
		})
		if err != nil {
			return err
		}
		if snap.SigningKeys, err = signingKeys(tx); err != nil {
			return err
		}
		snap.LegacyKeys = bucketMeta.of(tx).Get(keyHasLegacyKeys) != nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// Import stores snap's records as they are (ids, digests, hashes,
// timestamps, spent refresh tokens, LastUsed, the legacy flag) in one
// transaction, indexed by the same code as CreateUser, CreateAPIKey,
// CreateSession and AddSigningKey; only V is set to this build's
// RecordVersion (the layout it encodes). A file that holds any user is
// ErrExists; a record the backend's own writes would refuse (a bad id, a
// missing digest or expiry, a login, digest or kid taken twice, an owner
// or session missing) fails it whole. Every imported record is marked
// changed and Generation moves. snap is not modified.
func (s *Store) Import(snap *store.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("%w: no snapshot", store.ErrInvalid)
	}
	legacy := snap.LegacyKeys
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		users := bucketUsers.of(tx)
		if k, _ := users.Cursor().First(); k != nil {
			return fmt.Errorf("import into a store that holds users: %w", store.ErrExists)
		}
		for _, u := range snap.Users {
			if u == nil {
				return fmt.Errorf("%w: nil user in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("user id", u.ID); err != nil {
				return err
			}
			if u.Username == "" {
				return fmt.Errorf("%w: user %q without username", store.ErrInvalid, u.ID)
			}
			c := *u
			c.V = store.RecordVersion
			if err := insertUser(tx, &c); err != nil {
				return err
			}
			inv.user(c.ID)
		}
		for _, k := range snap.APIKeys {
			if k == nil {
				return fmt.Errorf("%w: nil api key in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("key id", k.ID); err != nil {
				return err
			}
			if k.Digest == (store.Digest{}) {
				return fmt.Errorf("%w: api key %q without digest", store.ErrInvalid, k.ID)
			}
			c := *k
			c.V = store.RecordVersion
			if err := insertAPIKey(tx, &c); err != nil {
				return err
			}
			legacy = legacy || c.Legacy
			inv.key(c.ID)
		}
		sessions := bucketSessions.of(tx)
		for _, sess := range snap.Sessions {
			if sess == nil {
				return fmt.Errorf("%w: nil session in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("session id", sess.ID); err != nil {
				return err
			}
			if sess.ExpiresAt.IsZero() {
				return fmt.Errorf("%w: session %q without expiry", store.ErrInvalid, sess.ID)
			}
			if users.Get([]byte(sess.UserID)) == nil {
				return fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
			}
			if sessions.Get([]byte(sess.ID)) != nil {
				return fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
			}
			c := *sess
			c.V = store.RecordVersion
			if err := bucketSessionsByUser.of(tx).Put(pairKey(c.UserID, c.ID), nil); err != nil {
				return err
			}
			if err := putJSON(sessions, []byte(c.ID), &c); err != nil {
				return err
			}
			inv.session(c.ID)
		}
		for _, r := range snap.Refresh {
			if r.Digest == (store.Digest{}) {
				return fmt.Errorf("%w: refresh token without digest", store.ErrInvalid)
			}
			if sessions.Get([]byte(r.SessionID)) == nil {
				return fmt.Errorf("session %q of a refresh token: %w", r.SessionID, store.ErrNotFound)
			}
			if err := putRefresh(tx, r.Digest, refreshEntry{SID: r.SessionID, Spent: r.Spent, Exp: r.ExpiresAt}); err != nil {
				return err
			}
		}
		for _, k := range snap.SigningKeys {
			if err := putSigningKey(tx, &k, utcNow()); err != nil {
				return err
			}
			inv.signingKeys = true
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
