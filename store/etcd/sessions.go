package etcd

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/authgate/authgate/store"
)

// refreshEntry is the value of refresh/<hex digest>: one refresh token.
// Spent entries are kept: presenting one again is how theft is detected.
type refreshEntry struct {
	V     int       `json:"v"`
	SID   string    `json:"sid"`
	Spent bool      `json:"spent"`
	Exp   time.Time `json:"exp"`
}

// Session budgets, as in bbolt: a session limit counts a user's sessions
// per budget, their logins sharing one ("" key ID) and the quick_login
// sessions of each API key having one of their own. allBudgets, never a
// key ID, selects every budget.
const allBudgets = "*"

// CreateSession stores a new session for an existing user (else
// ErrNotFound) with its first refresh token, given as its digest. With
// limit > 0 the oldest live sessions of the new session's budget are
// revoked to keep at most limit, in the same transaction, and their
// number returned.
func (s *Store) CreateSession(sess *store.Session, refresh store.Digest, limit int) (int, error) {
	if err := store.PrepareSession(sess, refresh); err != nil {
		return 0, err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	revoked := 0
	_, err := s.update(ctx, func(tx *txn) error {
		var err error
		revoked, err = s.insertSession(tx, sess, refresh, limit)
		return err
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// CreateSessions stores new sessions as CreateSession does without a
// limit: all of them or, on the first error, none (batch.go for large
// batches).
func (s *Store) CreateSessions(batch []store.NewSession) error {
	for _, n := range batch {
		if err := store.PrepareSession(n.Session, n.Refresh); err != nil {
			return err
		}
	}
	items := make([]batchItem, len(batch))
	for i, n := range batch {
		items[i] = batchItem{
			ops: 5, cmps: 4, // session, refresh, its list, the user's list and touched key; user, list
			write: func(tx *txn) error {
				_, err := s.insertSession(tx, n.Session, n.Refresh, 0)
				return err
			},
			undo: func() error { return s.undoSession(n.Session.UserID, n.Session.ID) },
		}
	}
	return s.inBatches(items)
}

// insertSession stores a prepared session with its refresh entry and
// list entries, after revoking what the limit asks for (see
// CreateSession). It returns how many it revoked.
func (s *Store) insertSession(tx *txn, sess *store.Session, refresh store.Digest, limit int) (int, error) {
	user, key, ref := s.key(kindUsers, sess.UserID), s.key(kindSessions, sess.ID), s.key(kindRefresh, refresh.String())
	list, touched := s.key(kindSessionsByUser, sess.UserID), s.key(kindSessionsTouched, sess.UserID)
	keys := []string{user, key, ref, list}
	if limit > 0 {
		keys = append(keys, touched) // the user's sessions are read: see layout.go
	}
	if err := tx.fetch(true, keys...); err != nil {
		return 0, err
	}
	if _, ok, err := tx.get(user, true); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
	}
	ids, err := tx.list(list, true)
	if err != nil {
		return 0, err
	}
	revoked := 0
	if limit > 0 {
		live, err := s.liveSessions(tx, ids.IDs, sess.KeyID, sess.CreatedAt)
		if err != nil {
			return 0, err
		}
		for len(live) >= limit { // oldest first
			if err := s.revokeIn(tx, live[0], store.ReasonSessionLimit, sess.CreatedAt); err != nil {
				return 0, err
			}
			live = live[1:]
			revoked++
		}
	}
	if _, ok, err := tx.get(key, true); err != nil {
		return 0, err
	} else if ok {
		return 0, fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
	}
	if _, ok, err := tx.get(ref, true); err != nil {
		return 0, err
	} else if ok {
		return 0, fmt.Errorf("refresh token digest: %w", store.ErrExists)
	}
	if err := tx.putJSON(ref, refreshEntry{V: store.RecordVersion, SID: sess.ID, Exp: sess.ExpiresAt}); err != nil {
		return 0, err
	}
	if err := tx.putList(s.key(kindRefreshBySession, sess.ID), &idList{IDs: []string{refresh.String()}}); err != nil {
		return 0, err
	}
	ids.add(sess.ID)
	if err := tx.putList(list, ids); err != nil {
		return 0, err
	}
	tx.touch(touched)
	return revoked, tx.putJSON(key, sess)
}

// undoSession takes back a session a failed batch stored.
func (s *Store) undoSession(userID, sid string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.update(ctx, func(tx *txn) error {
		list, touched := s.key(kindSessionsByUser, userID), s.key(kindSessionsTouched, userID)
		if err := tx.fetch(true, list, touched); err != nil {
			return err
		}
		ids, err := tx.list(list, true)
		if err != nil {
			return err
		}
		ended, _, _, err := s.dropSessions(tx, []string{sid}, s.maxOps-2)
		if err != nil {
			return err
		}
		ids.remove(ended...)
		tx.touch(touched)
		return tx.putList(list, ids)
	})
	return err
}

// liveSessions returns the sessions of ids that are live at now in
// budget (a key ID, "" for logins, or allBudgets), oldest first. They are
// read uncompared: the caller compares the user's touched key.
func (s *Store) liveSessions(tx *txn, ids []string, budget string, now time.Time) ([]*store.Session, error) {
	sessions, err := s.readSessions(tx, ids)
	if err != nil {
		return nil, err
	}
	var live []*store.Session
	for _, sess := range sessions {
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

// readSessions reads the sessions of ids, uncompared, skipping ids with
// no record (a dangling list entry: Check reports it).
func (s *Store) readSessions(tx *txn, ids []string) ([]*store.Session, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.key(kindSessions, id)
	}
	if err := tx.fetch(false, keys...); err != nil {
		return nil, err
	}
	var list []*store.Session
	for _, key := range keys {
		sess := new(store.Session)
		if ok, err := tx.getJSON(key, false, sess); err != nil {
			return nil, err
		} else if ok {
			list = append(list, sess)
		}
	}
	return list, nil
}

// revokeIn marks a session revoked in tx.
func (s *Store) revokeIn(tx *txn, sess *store.Session, reason string, at time.Time) error {
	sess.Revoked, sess.RevokedAt, sess.RevokeReason = true, at.UTC(), reason
	tx.touch(s.key(kindSessionsTouched, sess.UserID))
	return tx.putJSON(s.key(kindSessions, sess.ID), sess)
}

// dropSessions deletes, in tx, as many of the sessions sids as fit in
// budget operations, each with its refresh entries, list and last-seen
// time, and returns the ids it deleted, the operations used, and whether
// it deleted them all. A session whose refresh family alone does not fit
// loses its spent entries a transaction's worth at a time (its list kept
// in step), oldest first. The caller has compared the user's session list and touched key
// (which covers the refresh lists, read uncompared), updates the list and
// touches the key.
func (s *Store) dropSessions(tx *txn, sids []string, budget int) (ended []string, used int, whole bool, err error) {
	var lists []string
	for _, sid := range sids[:min(len(sids), max(1, budget/3))] {
		lists = append(lists, s.key(kindRefreshBySession, sid))
	}
	if err := tx.fetch(false, lists...); err != nil {
		return nil, 0, false, err
	}
	for _, sid := range sids {
		rlist := s.key(kindRefreshBySession, sid)
		family, err := tx.list(rlist, false)
		if err != nil {
			return nil, 0, false, err
		}
		if cost := 3 + len(family.IDs); used+cost <= budget {
			for _, d := range family.IDs {
				tx.del(s.key(kindRefresh, d))
			}
			tx.del(rlist)
			tx.del(s.key(kindSessions, sid))
			tx.del(s.key(kindSessionsLastSeen, sid))
			used += cost
			ended = append(ended, sid)
			continue
		}
		if len(ended) == 0 && budget-used > 2 {
			n := budget - used - 1 // the entries, and the list rewritten
			for _, d := range family.IDs[:n] {
				tx.del(s.key(kindRefresh, d))
			}
			family.IDs = family.IDs[n:]
			if err := tx.putList(rlist, family); err != nil {
				return nil, 0, false, err
			}
			used += n + 1
		}
		break
	}
	return ended, used, len(ended) == len(sids), nil
}

// SessionByID returns the session with id, with its last-seen time: one
// linearizable read of both keys.
func (s *Store) SessionByID(id string) (*store.Session, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	var sess *store.Session
	err := s.view(ctx, func(tx *txn) error {
		var err error
		sess, err = s.readSession(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// SessionBySecret returns the session whose live refresh token or browser
// cookie has digest d: the refresh entry, as RotateRefresh reads it, then
// the session with its last-seen time, at one revision. Unknown or spent
// is ErrNotFound; a revoked or expired session is returned as it is.
func (s *Store) SessionBySecret(d store.Digest) (*store.Session, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	var sess *store.Session
	err := s.view(ctx, func(tx *txn) error {
		var e refreshEntry
		if ok, err := tx.getJSON(s.key(kindRefresh, d.String()), false, &e); err != nil {
			return err
		} else if !ok || e.Spent {
			return store.ErrNotFound
		}
		var err error
		sess, err = s.readSession(tx, e.SID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// readSession reads a session with its last-seen time, uncompared;
// ErrNotFound when absent.
func (s *Store) readSession(tx *txn, id string) (*store.Session, error) {
	key := s.key(kindSessions, id)
	if err := tx.fetch(false, key, s.key(kindSessionsLastSeen, id)); err != nil {
		return nil, err
	}
	sess := new(store.Session)
	if ok, err := tx.getJSON(key, false, sess); err != nil {
		return nil, err
	} else if !ok {
		return nil, store.ErrNotFound
	}
	return sess, s.withLastSeen(tx, sess)
}

// withLastSeen sets sess.LastSeen to the touched time, if that is later
// than the record's own.
func (s *Store) withLastSeen(tx *txn, sess *store.Session) error {
	var ls lastUsed
	if ok, err := tx.getJSON(s.key(kindSessionsLastSeen, sess.ID), false, &ls); err != nil || !ok {
		return err
	}
	if ls.At.After(sess.LastSeen) {
		sess.LastSeen = ls.At
	}
	return nil
}

// TouchSessions records when sessions were last used, as TouchAPIKeys
// does for keys: in sessions_last_seen/<id>, apart from the records, so a
// batch neither rewrites them nor counts as a change (the watch ignores
// these keys, and sessions_touched is not rewritten: no transaction that
// reads a user's sessions decides by LastSeen). Forward only; unknown IDs
// are skipped.
func (s *Store) TouchSessions(times map[string]time.Time) error {
	return s.touchAll(kindSessions, kindSessionsLastSeen, times)
}

// ListSessions returns the sessions of userID, or all when userID is "",
// sorted by CreatedAt then ID, as of one revision.
func (s *Store) ListSessions(userID string) ([]*store.Session, error) {
	ctx, cancel := s.ctx, context.CancelFunc(func() {})
	if userID != "" {
		ctx, cancel = s.opCtx()
	}
	defer cancel()
	var list []*store.Session
	err := s.view(ctx, func(tx *txn) error {
		list = nil
		if userID == "" {
			seen, err := s.scanTimes(tx, kindSessionsLastSeen)
			if err != nil {
				return err
			}
			return tx.scan(s.key(kindSessions, ""), func(kv *mvccpb.KeyValue) error {
				sess := new(store.Session)
				list = append(list, sess)
				if err := decode(string(kv.Key), kv.Value, sess); err != nil {
					return err
				}
				if at, ok := seen[sess.ID]; ok && at.After(sess.LastSeen) {
					sess.LastSeen = at
				}
				return nil
			})
		}
		ids, err := tx.list(s.key(kindSessionsByUser, userID), false)
		if err != nil {
			return err
		}
		// The records and their times in one round trip.
		var keys []string
		for _, id := range ids.IDs {
			keys = append(keys, s.key(kindSessions, id), s.key(kindSessionsLastSeen, id))
		}
		if err := tx.fetch(false, keys...); err != nil {
			return err
		}
		if list, err = s.readSessions(tx, ids.IDs); err != nil {
			return err
		}
		for _, sess := range list {
			if err := s.withLastSeen(tx, sess); err != nil {
				return err
			}
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

// LiveSessions counts the user's sessions that are neither revoked nor
// past their refresh expiry at now, of every budget.
func (s *Store) LiveSessions(userID string, now time.Time) (int, error) {
	return s.countLive(userID, allBudgets, now)
}

// LiveSessionsLike counts the user's live sessions at now in the budget
// of sessions opened with keyID ("" for logins).
func (s *Store) LiveSessionsLike(userID, keyID string, now time.Time) (int, error) {
	return s.countLive(userID, keyID, now)
}

func (s *Store) countLive(userID, budget string, now time.Time) (int, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	n := 0
	err := s.view(ctx, func(tx *txn) error {
		ids, err := tx.list(s.key(kindSessionsByUser, userID), false)
		if err != nil {
			return err
		}
		live, err := s.liveSessions(tx, ids.IDs, budget, now)
		n = len(live)
		return err
	})
	return n, err
}

// RotateRefresh spends the refresh token old and makes next the session's
// live one, until expiresAt, in one transaction: of concurrent rotations
// of one token, on any instances, exactly one commits (the others find
// old changed, run again and find it spent).
//
//   - old unknown: ErrNotFound.
//   - old already spent: a stolen token is being replayed (RFC 9700
//     §4.14); the session is revoked, that is committed, and
//     ErrRefreshReused is returned.
//   - session revoked, or its refresh expiry reached: ErrSessionRevoked.
func (s *Store) RotateRefresh(old, next store.Digest, now, expiresAt time.Time) (*store.Session, error) {
	if old == (store.Digest{}) || next == (store.Digest{}) || old == next {
		return nil, fmt.Errorf("%w: refresh token digests", store.ErrInvalid)
	}
	now, expiresAt = now.UTC(), expiresAt.UTC()
	if !expiresAt.After(now) {
		return nil, fmt.Errorf("%w: new refresh expiry is not after now", store.ErrInvalid)
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	var sess *store.Session
	var result error // an outcome that still commits (reuse revokes)
	_, err := s.update(ctx, func(tx *txn) error {
		sess, result = nil, nil
		oldKey, nextKey := s.key(kindRefresh, old.String()), s.key(kindRefresh, next.String())
		if err := tx.fetch(true, oldKey, nextKey); err != nil {
			return err
		}
		var e refreshEntry
		if ok, err := tx.getJSON(oldKey, true, &e); err != nil {
			return err
		} else if !ok {
			return store.ErrNotFound
		}
		key, rlist, seen := s.key(kindSessions, e.SID), s.key(kindRefreshBySession, e.SID), s.key(kindSessionsLastSeen, e.SID)
		// The last-seen time in the same round trip, uncompared: a touch
		// meanwhile is no conflict. It goes only into the returned copy.
		if err := tx.fetch(false, key, rlist, seen); err != nil {
			return err
		}
		if err := tx.fetch(true, key, rlist); err != nil {
			return err
		}
		sess = new(store.Session)
		if ok, err := tx.getJSON(key, true, sess); err != nil {
			return err
		} else if !ok {
			return store.ErrNotFound
		}
		switch {
		case e.Spent:
			result = store.ErrRefreshReused
			if !sess.Revoked {
				if err := s.revokeIn(tx, sess, store.ReasonRefreshReused, now); err != nil {
					return err
				}
			}
			return s.withLastSeen(tx, sess)
		case sess.Revoked:
			return store.ErrSessionRevoked
		case !now.Before(sess.ExpiresAt):
			return store.ErrSessionRevoked
		}
		if _, ok, err := tx.get(nextKey, true); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("refresh token digest: %w", store.ErrExists)
		}
		e.V, e.Spent = store.RecordVersion, true
		if err := tx.putJSON(oldKey, e); err != nil {
			return err
		}
		if err := tx.putJSON(nextKey, refreshEntry{V: store.RecordVersion, SID: sess.ID, Exp: expiresAt}); err != nil {
			return err
		}
		family, err := tx.list(rlist, true)
		if err != nil {
			return err
		}
		family.IDs = append(family.IDs, next.String())
		if err := tx.putList(rlist, family); err != nil {
			return err
		}
		sess.Generation++
		sess.RefreshedAt, sess.ExpiresAt = now, expiresAt
		tx.touch(s.key(kindSessionsTouched, sess.UserID))
		if err := tx.putJSON(key, sess); err != nil {
			return err
		}
		return s.withLastSeen(tx, sess) // after the write: the record keeps its own
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
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err := s.update(ctx, func(tx *txn) error {
		sess := new(store.Session)
		if ok, err := tx.getJSON(s.key(kindSessions, id), true, sess); err != nil {
			return err
		} else if !ok {
			return store.ErrNotFound
		}
		if sess.Revoked {
			return nil
		}
		return s.revokeIn(tx, sess, reason, at)
	})
	return err
}

// RevokeUserSessions revokes every unrevoked session of the user ("log
// out everywhere") and returns how many. An unknown user is ErrNotFound.
// Up to about MaxTxnOps sessions are revoked in one transaction; more in
// several, each complete (a failure midway leaves the first ones revoked,
// which is where a retry would get anyway).
func (s *Store) RevokeUserSessions(userID, reason string, at time.Time) (int, error) {
	total := 0
	for {
		ctx, cancel := s.opCtx()
		n, more := 0, false
		_, err := s.update(ctx, func(tx *txn) error {
			n, more = 0, false
			user, list, touched := s.key(kindUsers, userID), s.key(kindSessionsByUser, userID), s.key(kindSessionsTouched, userID)
			if err := tx.fetch(true, user, list, touched); err != nil {
				return err
			}
			if _, ok, err := tx.get(user, true); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
			}
			ids, err := tx.list(list, true)
			if err != nil {
				return err
			}
			sessions, err := s.readSessions(tx, ids.IDs)
			if err != nil {
				return err
			}
			for _, sess := range sessions {
				if sess.Revoked {
					continue
				}
				if n == s.maxOps-2 {
					more = true
					break
				}
				if err := s.revokeIn(tx, sess, reason, at); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		cancel()
		if err != nil {
			return 0, err
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// DeleteSessionsExpiredBefore deletes the sessions (revoked or not) whose
// refresh expiry is before t, with their refresh entries, and returns how
// many. It finds them in one read of every session, then deletes them
// per user, as many at a time as a transaction holds, each checked again.
func (s *Store) DeleteSessionsExpiredBefore(t time.Time) (int, error) {
	byUser := map[string][]string{}
	err := s.view(s.ctx, func(tx *txn) error {
		clear(byUser)
		return tx.scan(s.key(kindSessions, ""), func(kv *mvccpb.KeyValue) error {
			var sess store.Session
			if err := decode(string(kv.Key), kv.Value, &sess); err != nil {
				return err
			}
			if sess.ExpiresAt.Before(t) {
				byUser[sess.UserID] = append(byUser[sess.UserID], sess.ID)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, userID := range slices.Sorted(maps.Keys(byUser)) {
		sids := byUser[userID]
		for len(sids) > 0 {
			ctx, cancel := s.opCtx()
			var ended, left []string
			_, err := s.update(ctx, func(tx *txn) error {
				ended, left = nil, nil
				user, list, touched := s.key(kindUsers, userID), s.key(kindSessionsByUser, userID), s.key(kindSessionsTouched, userID)
				if err := tx.fetch(true, list, touched); err != nil {
					return err
				}
				ids, err := tx.list(list, true)
				if err != nil {
					return err
				}
				sessions, err := s.readSessions(tx, sids)
				if err != nil {
					return err
				}
				var expired []string
				for _, sess := range sessions {
					if sess.ExpiresAt.Before(t) {
						expired = append(expired, sess.ID)
					}
				}
				ended, _, _, err = s.dropSessions(tx, expired, s.maxOps-4)
				if err != nil {
					return err
				}
				for _, sid := range expired {
					if !slices.Contains(ended, sid) {
						left = append(left, sid)
					}
				}
				ids.remove(ended...)
				if err := tx.putList(list, ids); err != nil {
					return err
				}
				if _, ok, err := tx.get(user, false); err != nil {
					return err
				} else if ok {
					tx.touch(touched)
				} else {
					tx.del(touched) // sessions of a user gone: nothing to touch
				}
				return nil
			})
			cancel()
			if err != nil {
				return n, err
			}
			n += len(ended)
			sids = left
		}
	}
	return n, nil
}
