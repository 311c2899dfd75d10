package etcd

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
)

// The lockout's counters (store/attempts.go), shared by every instance:
// one key per account and kind, attempts/<hex account>/<kind>, holding the
// failures, the last failure, the lock, the label, and the checks in
// flight. Each write is a transaction on that key, so however many
// instances reserve checks of one account at once, at most the
// threshold's worth are in flight or failed per window: a check reserved
// on three instances counts three times.
//
// A reservation is a check in flight until it is settled; one whose
// instance died before settling it stops counting reservationTTL after it
// was made (by the caller's clock, as everything here is), so a crash
// cannot lock an account for good.
//
// Each key sits on a lease that ends after the last moment its state
// matters (the lock's end, the last failure's window, the last
// reservation's expiry), so an account nobody tries again leaves nothing
// behind. Leases are shared: a pool hands out one lease per ten seconds
// of expiry (leasePool), granted for a little longer than its slot, so a
// key never goes before it should and a flood of failures costs few
// grants.

// reservationTTL is how long an unsettled reservation counts.
const reservationTTL = 30 * time.Second

// attemptRecord is the value of an attempts/ key.
type attemptRecord struct {
	V           int        `json:"v"`
	Label       string     `json:"label,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	LastFailure time.Time  `json:"lastFailure,omitzero"`
	LockedUntil time.Time  `json:"lockedUntil,omitzero"`
	Expires     time.Time  `json:"expires,omitzero"`
	InFlight    []inFlight `json:"inFlight,omitempty"`
}

// inFlight is one reserved, unsettled check.
type inFlight struct {
	ID    string    `json:"id"`
	Until time.Time `json:"until"`
}

func (r *attemptRecord) locked(now time.Time) bool { return now.Before(r.LockedUntil) }

// prune drops reservations that stopped counting at now.
func (r *attemptRecord) prune(now time.Time) {
	r.InFlight = slices.DeleteFunc(r.InFlight, func(f inFlight) bool { return !now.Before(f.Until) })
}

// end is when nothing of the record matters any more.
func (r *attemptRecord) end() time.Time {
	end := r.Expires
	for _, f := range r.InFlight {
		if f.Until.After(end) {
			end = f.Until
		}
	}
	return end
}

func (s *Store) attemptKey(account store.AccountKey, kind store.AttemptKind) string {
	return s.key(kindAttempts, hex.EncodeToString(account[:])+"/"+strconv.Itoa(int(kind)))
}

// checkAttempt refuses what the lockout cannot count, as the other
// backends do.
func checkAttempt(a store.Attempt, p store.LockPolicy) error {
	if a.Kind > store.KindClient {
		return fmt.Errorf("%w: attempt kind %d", store.ErrInvalid, a.Kind)
	}
	if p.Attempts < 1 || p.Window <= 0 {
		return fmt.Errorf("%w: lock policy needs attempts >= 1 and a window > 0", store.ErrInvalid)
	}
	return nil
}

// ReserveAttempt reserves one check of a's account at now under p. It
// refuses (a wait > 0) when the account is locked, or when its failures
// and the checks in flight, on every instance, reach the threshold.
func (s *Store) ReserveAttempt(a store.Attempt, now time.Time, p store.LockPolicy) (store.Reservation, time.Duration, error) {
	if err := checkAttempt(a, p); err != nil {
		return store.Reservation{}, 0, err
	}
	id, err := reservationID()
	if err != nil {
		return store.Reservation{}, 0, err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	var wait time.Duration
	key := s.attemptKey(a.Account, a.Kind)
	_, err = s.update(ctx, func(tx *txn) error {
		wait = 0
		var rec attemptRecord
		if _, err := tx.getJSON(key, true, &rec); err != nil {
			return err
		}
		rec.prune(now)
		if rec.locked(now) {
			wait = rec.LockedUntil.Sub(now)
			return nil
		}
		if rec.Failures > 0 && now.Sub(rec.LastFailure) >= p.Window {
			rec.Failures = 0
		}
		if rec.Failures+len(rec.InFlight) >= p.Attempts {
			wait = p.Window
			return nil
		}
		if rec.Label == "" {
			rec.Label = a.Label
		}
		rec.InFlight = append(rec.InFlight, inFlight{ID: id, Until: now.Add(reservationTTL)})
		return s.putAttempt(ctx, tx, key, &rec, rec.end().Sub(now))
	})
	if err != nil {
		return store.Reservation{}, 0, err
	}
	if wait > 0 {
		return store.Reservation{}, wait, nil
	}
	return store.Reservation{Attempt: a, ID: id}, 0, nil
}

// SettleAttempt records how a reserved check ended: a failure counts (the
// threshold-th in the window locks the account for the window), a
// success clears the failures, an abandoned check counts for nothing. An
// unknown outcome settles it as Abandoned and is ErrInvalid.
func (s *Store) SettleAttempt(r store.Reservation, o store.Outcome, now time.Time, p store.LockPolicy) (time.Time, error) {
	if err := checkAttempt(r.Attempt, p); err != nil {
		return time.Time{}, err
	}
	var bad error
	if o > store.Failed {
		o, bad = store.Abandoned, fmt.Errorf("%w: attempt outcome %d", store.ErrInvalid, o)
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	key := s.attemptKey(r.Account, r.Kind)
	var lockedUntil time.Time
	_, err := s.update(ctx, func(tx *txn) error {
		lockedUntil = time.Time{} // the transaction may run again
		var rec attemptRecord
		found, err := tx.getJSON(key, true, &rec)
		if err != nil {
			return err
		}
		if !found && o != store.Failed {
			return nil // nothing counted it any more (expired, cleared)
		}
		rec.InFlight = slices.DeleteFunc(rec.InFlight, func(f inFlight) bool { return f.ID == r.ID })
		rec.prune(now)
		if rec.Label == "" {
			rec.Label = r.Label
		}
		switch o {
		case store.Failed:
			if now.Sub(rec.LastFailure) >= p.Window {
				rec.Failures = 0
			}
			rec.Failures++
			rec.LastFailure = now
			if rec.Failures >= p.Attempts {
				rec.LockedUntil = now.Add(p.Window)
				rec.Failures = 0
				lockedUntil = rec.LockedUntil
			}
			rec.Expires = later(rec.LockedUntil, rec.LastFailure.Add(p.Window))
		case store.Succeeded:
			rec.Failures = 0
		}
		if len(rec.InFlight) == 0 && rec.Failures == 0 && !rec.locked(now) {
			if found {
				tx.del(key)
			}
			return nil
		}
		return s.putAttempt(ctx, tx, key, &rec, rec.end().Sub(now))
	})
	if err != nil {
		return time.Time{}, err
	}
	return lockedUntil, bad
}

// ClearAttempts forgets an account's failures and lock, of either kind
// (an unlock). Checks in flight still count until settled.
func (s *Store) ClearAttempts(account store.AccountKey) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	keys := []string{s.attemptKey(account, store.KindLogin), s.attemptKey(account, store.KindClient)}
	_, err := s.update(ctx, func(tx *txn) error {
		if err := tx.fetch(true, keys...); err != nil {
			return err
		}
		for _, key := range keys {
			var rec attemptRecord
			if ok, err := tx.getJSON(key, true, &rec); err != nil {
				return err
			} else if !ok {
				continue
			}
			rec.Failures, rec.LastFailure, rec.LockedUntil, rec.Expires = 0, time.Time{}, time.Time{}, time.Time{}
			if len(rec.InFlight) == 0 {
				tx.del(key)
				continue
			}
			// The reservations are on the callers' clock, which this call
			// does not have: the record lives as long as a new one would.
			if err := s.putAttempt(ctx, tx, key, &rec, reservationTTL); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// ListAttempts returns the accounts with failures or a lock at now,
// locked first, then by most recent failure.
func (s *Store) ListAttempts(now time.Time) ([]store.AttemptState, error) {
	var out []store.AttemptState
	base := s.key(kindAttempts, "")
	err := s.view(s.ctx, func(tx *txn) error {
		out = nil
		return tx.scan(base, func(kv *mvccpb.KeyValue) error {
			var rec attemptRecord
			if err := decode(string(kv.Key), kv.Value, &rec); err != nil {
				return err
			}
			st, err := attemptState(string(kv.Key[len(base):]), &rec)
			if err != nil {
				return err
			}
			if (st.Failures > 0 || st.Locked(now)) && now.Before(st.Expires) {
				out = append(out, st)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.AttemptState) int {
		if la, lb := a.Locked(now), b.Locked(now); la != lb {
			if la {
				return -1
			}
			return 1
		}
		return cmp.Or(b.LastFailure.Compare(a.LastFailure), strings.Compare(a.Label, b.Label))
	})
	return out, nil
}

// attemptState makes the state of a record at "<hex account>/<kind>".
func attemptState(name string, rec *attemptRecord) (store.AttemptState, error) {
	acct, kind, ok := strings.Cut(name, "/")
	raw, err := hex.DecodeString(acct)
	k, kerr := strconv.Atoi(kind)
	if !ok || err != nil || len(raw) != len(store.AccountKey{}) || kerr != nil || k < 0 || k > int(store.KindClient) {
		return store.AttemptState{}, fmt.Errorf("%w: lockout key %q", store.ErrMalformed, name)
	}
	st := store.AttemptState{
		Attempt:     store.Attempt{Kind: store.AttemptKind(k), Label: rec.Label},
		Failures:    rec.Failures,
		LastFailure: rec.LastFailure,
		LockedUntil: rec.LockedUntil,
		Expires:     rec.Expires,
	}
	copy(st.Account[:], raw)
	return st, nil
}

// putAttempt stores a record on a lease that lasts at least ttl: until
// nothing it holds matters.
func (s *Store) putAttempt(ctx context.Context, tx *txn, key string, rec *attemptRecord, ttl time.Duration) error {
	rec.V = store.RecordVersion
	lease, err := s.leases.get(ctx, ttl)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tx.putLease(key, raw, lease)
	return nil
}

func reservationID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// leaseSlot is the granularity of the lease pool.
const leaseSlot = 10 * time.Second

// leasePool hands out leases by when they must end at the earliest,
// one per leaseSlot of real time, each granted to end a little after its
// slot. A lease that ran out meanwhile makes the transaction fail; then
// the pool is emptied and the transaction runs again (txn.go).
type leasePool struct {
	s     *Store
	mu    sync.Mutex
	byEnd map[int64]clientv3.LeaseID // slot end, Unix seconds → lease
}

// get returns a lease that lasts at least ttl from now.
func (p *leasePool) get(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	ttl = max(ttl, time.Second)
	now := time.Now()
	slot := int64(leaseSlot / time.Second)
	end := (now.Add(ttl).Unix()/slot + 1) * slot
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := range p.byEnd {
		if e <= now.Unix() {
			delete(p.byEnd, e)
		}
	}
	if id, ok := p.byEnd[end]; ok {
		return id, nil
	}
	resp, err := p.s.cli.Grant(ctx, end-now.Unix()+2)
	if err != nil {
		return 0, p.s.etcdErr(err)
	}
	p.byEnd[end] = resp.ID
	return resp.ID, nil
}

// forget empties the pool.
func (p *leasePool) forget() {
	p.mu.Lock()
	clear(p.byEnd)
	p.mu.Unlock()
}
