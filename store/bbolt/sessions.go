package bbolt

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// refreshEntry is the value of one refresh token, stored under its digest.
// Spent entries are kept: presenting one again is how theft is detected.
type refreshEntry struct {
	V     int       `json:"v"`
	SID   string    `json:"sid"`
	Spent bool      `json:"spent"`
	Exp   time.Time `json:"exp"`
}

// CreateSession stores a new session for an existing user (else ErrNotFound)
// with its first refresh token, given as its digest. It fills sess.ID (when
// empty), sess.V and sess.CreatedAt (when zero); sess.ExpiresAt, when the
// refresh token stops working, is required.
//
// With limit > 0 the user keeps at most limit live sessions in the new
// session's budget (see "Session budgets"): in the same transaction, the oldest
// live sessions of that budget are revoked to make room. It returns how
// many were revoked.
func (s *Store) CreateSession(sess *store.Session, refresh store.Digest, limit int) (revoked int, err error) {
	if err := store.PrepareSession(sess, refresh); err != nil {
		return 0, err
	}
	err = s.update(func(tx *bolt.Tx, inv *invalidation) error {
		revoked = 0
		if bucketUsers.of(tx).Get([]byte(sess.UserID)) == nil {
			return fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if limit > 0 {
			live, err := liveSessions(tx, sess.UserID, sess.KeyID, sess.CreatedAt)
			if err != nil {
				return err
			}
			for len(live) >= limit { // oldest first
				if _, err := revokeSession(tx, live[0].ID, store.ReasonSessionLimit, sess.CreatedAt, inv); err != nil {
					return err
				}
				live = live[1:]
				revoked++
			}
		}
		return insertSession(tx, sess, refresh)
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// CreateSessions stores new sessions as CreateSession does without a
// session limit, all in one transaction: all of them or, on the first
// error, none. For bulk loads (the benchmark's seeding).
func (s *Store) CreateSessions(batch []store.NewSession) error {
	for _, n := range batch {
		if err := store.PrepareSession(n.Session, n.Refresh); err != nil {
			return err
		}
	}
	return s.update(func(tx *bolt.Tx, _ *invalidation) error {
		users := bucketUsers.of(tx)
		for _, n := range batch {
			if users.Get([]byte(n.Session.UserID)) == nil {
				return fmt.Errorf("user %q: %w", n.Session.UserID, store.ErrNotFound)
			}
			if err := insertSession(tx, n.Session, n.Refresh); err != nil {
				return err
			}
		}
		return nil
	})
}

// insertSession stores a prepared session, its refresh entry and its index
// entry.
func insertSession(tx *bolt.Tx, sess *store.Session, refresh store.Digest) error {
	sessions := bucketSessions.of(tx)
	if sessions.Get([]byte(sess.ID)) != nil {
		return fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
	}
	if err := putRefresh(tx, refresh, refreshEntry{SID: sess.ID, Exp: sess.ExpiresAt}); err != nil {
		return err
	}
	if err := bucketSessionsByUser.of(tx).Put(pairKey(sess.UserID, sess.ID), nil); err != nil {
		return err
	}
	return putJSON(sessions, []byte(sess.ID), sess)
}

// LiveSessions counts the user's sessions that are neither revoked nor past
// their refresh expiry at now, of every budget.
func (s *Store) LiveSessions(userID string, now time.Time) (int, error) {
	return s.countLive(userID, allBudgets, now)
}

// LiveSessionsLike counts the user's live sessions at now in the budget of
// sessions opened with keyID ("" for logins): what the session limit
// counts against a new one.
func (s *Store) LiveSessionsLike(userID, keyID string, now time.Time) (int, error) {
	return s.countLive(userID, keyID, now)
}

func (s *Store) countLive(userID, budget string, now time.Time) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		live, err := liveSessions(tx, userID, budget, now)
		n = len(live)
		return err
	})
	return n, err
}

// Session budgets. A session limit counts a user's sessions per budget:
// their logins (interactive sessions, browser ones included) share one, and
// the quick_login sessions of each API key have one of their own. So a
// restricted credential (a read-only key's quick_login) can never end a
// less restricted session of its owner, nor another key's.
//
// allBudgets, never a key ID (ids have no '*'), selects every budget.
const allBudgets = "*"

// liveSessions lists the user's live sessions at now in budget (the key
// ID sessions were opened with, "" for logins, or allBudgets), oldest
// first.
func liveSessions(tx *bolt.Tx, userID, budget string, now time.Time) ([]*store.Session, error) {
	sessions := bucketSessions.of(tx)
	var live []*store.Session
	for _, sid := range childIDs(bucketSessionsByUser.of(tx), userID) {
		sess := new(store.Session)
		err := getJSON(sessions, []byte(sid), sess)
		if errors.Is(err, store.ErrNotFound) {
			continue // dangling index entry
		}
		if err != nil {
			return nil, err
		}
		if budget != allBudgets && sess.KeyID != budget {
			continue
		}
		if !sess.Revoked && now.Before(sess.ExpiresAt) {
			live = append(live, sess)
		}
	}
	slices.SortFunc(live, func(a, b *store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return live, nil
}

// SessionByID returns the session with id, read from bbolt (sessions are
// not cached: see caches): the caller's own copy.
func (s *Store) SessionByID(id string) (*store.Session, error) {
	sess := new(store.Session)
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(bucketSessions.of(tx), []byte(id), sess); err != nil {
			return err
		}
		withLastSeen(tx, sess)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// SessionBySecret returns the session whose live refresh token or browser
// cookie has digest d: the refresh entry, as RotateRefresh reads it, then
// the session. Unknown or spent is ErrNotFound; a revoked or expired
// session is returned as it is.
func (s *Store) SessionBySecret(d store.Digest) (*store.Session, error) {
	sess := new(store.Session)
	err := s.db.View(func(tx *bolt.Tx) error {
		var e refreshEntry
		if err := getJSON(bucketRefresh.of(tx), d[:], &e); err != nil {
			return err
		}
		if e.Spent {
			return store.ErrNotFound
		}
		if err := getJSON(bucketSessions.of(tx), []byte(e.SID), sess); err != nil {
			return err
		}
		withLastSeen(tx, sess)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// TouchSessions records when sessions were last used, many in one
// transaction, as TouchAPIKeys does for keys and for the same reasons: the
// times go to a bucket of their own (sessions_last_seen, 8 bytes a
// session, in ID order), not into the JSON records, so a batch re-encodes
// nothing; LastSeen only moves forward; unknown IDs are skipped; and it
// neither marks the sessions changed nor moves Generation (no cached
// decision depends on LastSeen). Readers take the later of the bucket's
// time and the record's own (withLastSeen).
func (s *Store) TouchSessions(lastSeen map[string]time.Time) error {
	if len(lastSeen) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx, _ *invalidation) error {
		return touch(bucketSessions.of(tx), bucketSessionsLastSeen.of(tx), lastSeen)
	})
}

// withLastSeen sets sess.LastSeen to the sessions_last_seen time for it,
// if that is later than the record's own.
func withLastSeen(tx *bolt.Tx, sess *store.Session) {
	if at, ok := lastUsedAt(bucketSessionsLastSeen.of(tx), sess.ID); ok && at.After(sess.LastSeen) {
		sess.LastSeen = at
	}
}

// RotateRefresh spends the refresh token old and makes next the session's
// live one, until expiresAt, in one transaction. bbolt runs one writer at a
// time, so of concurrent rotations of one token exactly one succeeds.
//
//   - old unknown: ErrNotFound.
//   - old already spent: a stolen token is being replayed (RFC 9700 §4.14);
//     the session is revoked, that is committed, and ErrRefreshReused is
//     returned.
//   - session revoked, or its refresh expiry reached: ErrSessionRevoked.
//
// On success the returned session is the caller's own copy.
func (s *Store) RotateRefresh(old, next store.Digest, now, expiresAt time.Time) (*store.Session, error) {
	if old == (store.Digest{}) || next == (store.Digest{}) || old == next {
		return nil, fmt.Errorf("%w: refresh token digests", store.ErrInvalid)
	}
	now, expiresAt = now.UTC(), expiresAt.UTC()
	if !expiresAt.After(now) {
		return nil, fmt.Errorf("%w: new refresh expiry is not after now", store.ErrInvalid)
	}
	var sess *store.Session
	var result error // an outcome that still commits (reuse revokes)
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		var e refreshEntry
		if err := getJSON(bucketRefresh.of(tx), old[:], &e); err != nil {
			return err
		}
		sessions := bucketSessions.of(tx)
		sess = new(store.Session)
		if err := getJSON(sessions, []byte(e.SID), sess); err != nil {
			return err
		}
		switch {
		case e.Spent:
			result = store.ErrRefreshReused
			if sess.Revoked {
				withLastSeen(tx, sess)
				return nil
			}
			sess.Revoked, sess.RevokedAt, sess.RevokeReason = true, now, store.ReasonRefreshReused
			inv.session(sess.ID)
			if err := putJSON(sessions, []byte(sess.ID), sess); err != nil {
				return err
			}
			withLastSeen(tx, sess)
			return nil
		case sess.Revoked:
			return store.ErrSessionRevoked
		case !now.Before(sess.ExpiresAt):
			return store.ErrSessionRevoked
		}
		e.Spent = true
		if err := putJSON(bucketRefresh.of(tx), old[:], e); err != nil {
			return err
		}
		if err := putRefresh(tx, next, refreshEntry{SID: sess.ID, Exp: expiresAt}); err != nil {
			return err
		}
		sess.Generation++
		sess.RefreshedAt, sess.ExpiresAt = now, expiresAt
		inv.session(sess.ID)
		if err := putJSON(sessions, []byte(sess.ID), sess); err != nil {
			return err
		}
		withLastSeen(tx, sess) // for the caller only: the record keeps its own
		return nil
	})
	if err == nil && result != nil {
		return sess, result // reuse: the session it revoked, for the audit trail
	}
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// RevokeSession revokes the session (logout). Revoking a revoked session
// changes nothing; an unknown one is ErrNotFound.
func (s *Store) RevokeSession(id, reason string, at time.Time) error {
	return s.update(func(tx *bolt.Tx, inv *invalidation) error {
		_, err := revokeSession(tx, id, reason, at, inv)
		return err
	})
}

// RevokeUserSessions revokes every live session of the user ("log out
// everywhere") and returns how many it revoked. An unknown user is
// ErrNotFound.
func (s *Store) RevokeUserSessions(userID, reason string, at time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		n = 0
		if bucketUsers.of(tx).Get([]byte(userID)) == nil {
			return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
		}
		for _, sid := range childIDs(bucketSessionsByUser.of(tx), userID) {
			revoked, err := revokeSession(tx, sid, reason, at, inv)
			if errors.Is(err, store.ErrNotFound) {
				continue // dangling index entry
			}
			if err != nil {
				return err
			}
			if revoked {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ListSessions returns the sessions of userID, or all when userID is "",
// sorted by CreatedAt then ID.
func (s *Store) ListSessions(userID string) ([]*store.Session, error) {
	var list []*store.Session
	err := s.db.View(func(tx *bolt.Tx) error {
		sessions := bucketSessions.of(tx)
		if userID == "" {
			return sessions.ForEach(func(_, v []byte) error {
				sess := new(store.Session)
				list = append(list, sess)
				if err := decode(v, sess); err != nil {
					return err
				}
				withLastSeen(tx, sess)
				return nil
			})
		}
		for _, sid := range childIDs(bucketSessionsByUser.of(tx), userID) {
			sess := new(store.Session)
			if err := getJSON(sessions, []byte(sid), sess); err != nil {
				return err
			}
			withLastSeen(tx, sess)
			list = append(list, sess)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// DeleteSessionsExpiredBefore deletes the sessions (revoked or not) whose
// refresh expiry is before t, with their refresh entries, and returns how
// many. Without it spent refresh entries pile up forever. Pass a t some
// access-token lifetime in the past if access tokens can outlive refresh.
func (s *Store) DeleteSessionsExpiredBefore(t time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx, inv *invalidation) error {
		n = 0
		type owned struct{ user, id string }
		var expired []owned
		err := bucketSessions.of(tx).ForEach(func(_, v []byte) error {
			var sess store.Session
			if err := decode(v, &sess); err != nil {
				return err
			}
			if sess.ExpiresAt.Before(t) {
				expired = append(expired, owned{sess.UserID, sess.ID})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range expired {
			if err := deleteSession(tx, o.user, o.id, inv); err != nil {
				return err
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}

// revokeSession marks one session revoked; false if it already was.
func revokeSession(tx *bolt.Tx, id, reason string, at time.Time, inv *invalidation) (bool, error) {
	sessions := bucketSessions.of(tx)
	sess := new(store.Session)
	if err := getJSON(sessions, []byte(id), sess); err != nil {
		return false, err
	}
	if sess.Revoked {
		return false, nil
	}
	sess.Revoked, sess.RevokedAt, sess.RevokeReason = true, at.UTC(), reason
	inv.session(id)
	return true, putJSON(sessions, []byte(id), sess)
}

// putRefresh stores a refresh entry and its per-session index entry.
func putRefresh(tx *bolt.Tx, d store.Digest, e refreshEntry) error {
	if bucketRefresh.of(tx).Get(d[:]) != nil {
		return fmt.Errorf("refresh token digest: %w", store.ErrExists)
	}
	e.V = store.RecordVersion
	if err := putJSON(bucketRefresh.of(tx), d[:], e); err != nil {
		return err
	}
	return bucketRefreshBySession.of(tx).Put(pairKey(e.SID, string(d[:])), nil)
}

// deleteSession removes a session, its index entry and every refresh entry
// of its family (DeleteUser, expiry cleanup).
func deleteSession(tx *bolt.Tx, userID, sid string, inv *invalidation) error {
	refresh, bySession := bucketRefresh.of(tx), bucketRefreshBySession.of(tx)
	for _, d := range childIDs(bySession, sid) {
		if err := refresh.Delete([]byte(d)); err != nil {
			return err
		}
		if err := bySession.Delete(pairKey(sid, d)); err != nil {
			return err
		}
	}
	if err := bucketSessions.of(tx).Delete([]byte(sid)); err != nil {
		return err
	}
	if err := bucketSessionsLastSeen.of(tx).Delete([]byte(sid)); err != nil {
		return err
	}
	inv.session(sid)
	return bucketSessionsByUser.of(tx).Delete(pairKey(userID, sid))
}
