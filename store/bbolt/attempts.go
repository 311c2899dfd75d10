package bbolt

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/authgate/authgate/store"
)

// The lockout's counters (store.Attempts). They are counted in memory by a
// store.AttemptTracker, which decides every reservation under its own lock
// (no transaction on the request path), and are written through to the
// attempts bucket so that a restart keeps failures and locks: Open loads
// the unexpired ones and deletes the rest.
//
// Writing through never blocks a check. The tracker's OnChange only
// queues an account's latest state in memory (attemptWriter); a goroutine
// writes what is queued in one transaction, then waits attemptFlushInterval
// before the next, so a flood of failures costs a few transactions a
// second, not one fsync each. Close writes what is still queued.
//
// The cost of that: a crash (kill -9, power loss) loses the counting of
// its last attemptFlushInterval or so: failures counted then are forgotten,
// a lock taken then is not kept. Nothing else is at stake: no credential,
// session or key is ever written this way, and every other write is
// fsynced before it returns. Checks in flight are never persisted: they end
// with the process. A failed write (a full disk) is queued again and
// retried after the interval; Close returns the error of its last try.
//
// The upkeep: an entry is deleted when the tracker drops the account
// (cleared, succeeded, its failures aged out, evicted), and Open deletes
// the persisted entries that expired while the store was closed.

// attemptFlushInterval is the least time between two writes of the queued
// counters.
const attemptFlushInterval = 200 * time.Millisecond

// attemptKey is an account's key in the attempts bucket: the account key
// and its kind, so a client account and a login account with the same
// bytes are counted apart across restarts too.
type attemptKey [len(store.AccountKey{}) + 1]byte

func attemptKeyOf(a store.Attempt) attemptKey {
	var k attemptKey
	copy(k[:], a.Account[:])
	k[len(k)-1] = byte(a.Kind)
	return k
}

// attemptWriter queues the tracker's changes and writes them to the
// attempts bucket from its own goroutine.
type attemptWriter struct {
	db *bolt.DB
	// maxPending caps the queue kept across failed writes.
	maxPending int

	mu      sync.Mutex
	pending map[attemptKey]*store.AttemptState // nil: delete the account
	closed  bool

	wake chan struct{} // capacity 1: "something is pending"
	stop chan struct{}
	done chan struct{}

	// writes counts the transactions written (tests).
	writes atomic.Int64
}

func newAttemptWriter(db *bolt.DB, maxPending int) *attemptWriter {
	w := &attemptWriter{
		db:         db,
		maxPending: maxPending,
		pending:    make(map[attemptKey]*store.AttemptState),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	go w.run()
	return w
}

// record is the tracker's OnChange: called under the tracker's lock, it
// only queues the state (replacing an older one of the account) and
// signals the writer.
func (w *attemptWriter) record(s store.AttemptState, deleted bool) {
	var v *store.AttemptState
	if !deleted {
		v = &s
	}
	w.mu.Lock()
	w.pending[attemptKeyOf(s.Attempt)] = v
	w.mu.Unlock()
	w.signal()
}

func (w *attemptWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes what is pending whenever something is, at most once per
// attemptFlushInterval, until stop.
func (w *attemptWriter) run() {
	defer close(w.done)
	pause := time.NewTimer(0)
	<-pause.C
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		w.flush() // a failed write is queued again, and retried
		pause.Reset(attemptFlushInterval)
		select {
		case <-pause.C:
		case <-w.stop:
			pause.Stop()
			return
		}
	}
}

// flush writes every pending state in one transaction. On failure the
// states no newer change replaced are queued again (up to maxPending) for
// the next flush.
func (w *attemptWriter) flush() error {
	w.mu.Lock()
	batch := w.pending
	if len(batch) == 0 {
		w.mu.Unlock()
		return nil
	}
	w.pending = make(map[attemptKey]*store.AttemptState)
	w.mu.Unlock()

	w.writes.Add(1)
	err := w.db.Update(func(tx *bolt.Tx) error {
		b := bucketAttempts.of(tx)
		// In key order, bbolt finds each next key near the last one.
		for _, k := range slices.SortedFunc(maps.Keys(batch), func(x, y attemptKey) int { return bytes.Compare(x[:], y[:]) }) {
			if st := batch[k]; st == nil {
				if err := b.Delete(k[:]); err != nil {
					return err
				}
			} else if err := putJSON(b, k[:], st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		w.mu.Lock()
		for k, st := range batch {
			if _, newer := w.pending[k]; !newer && len(w.pending) < w.maxPending {
				w.pending[k] = st
			}
		}
		w.mu.Unlock()
		w.signal()
	}
	return err
}

// close stops the writer and writes what is still pending. It is called
// once, before the file closes.
func (w *attemptWriter) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	if err := w.flush(); err != nil {
		return fmt.Errorf("store: writing the lockout's counters: %w", err)
	}
	return nil
}

// loadAttempts reads the persisted counters at now and deletes the
// expired ones (and any that do not decode to their key), in a write
// transaction only when there are some.
func loadAttempts(db *bolt.DB, now time.Time) ([]store.AttemptState, error) {
	var live []store.AttemptState
	var stale [][]byte
	err := db.View(func(tx *bolt.Tx) error {
		return bucketAttempts.of(tx).ForEach(func(k, v []byte) error {
			var st store.AttemptState
			ok := len(k) == len(attemptKey{}) && decode(v, &st) == nil && st.Kind <= store.KindClient
			if want := attemptKeyOf(st.Attempt); !ok || !bytes.Equal(k, want[:]) || !now.Before(st.Expires) {
				stale = append(stale, bytes.Clone(k))
				return nil
			}
			live = append(live, st)
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return live, err
	}
	// Open runs alone: no write can have come between the two.
	err = db.Update(func(tx *bolt.Tx) error {
		b := bucketAttempts.of(tx)
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return live, err
}

// checkAttempt refuses what the lockout cannot count: a kind it does not
// know, and a policy that would refuse every check (or none) without a
// wait.
func checkAttempt(a store.Attempt, p store.LockPolicy) error {
	if a.Kind > store.KindClient {
		return fmt.Errorf("%w: attempt kind %d", store.ErrInvalid, a.Kind)
	}
	if p.Attempts < 1 || p.Window <= 0 {
		return fmt.Errorf("%w: lock policy needs attempts >= 1 and a window > 0", store.ErrInvalid)
	}
	return nil
}

// errClosed is what the lockout's calls return after Close, as bbolt's
// own calls do.
var errClosed = fmt.Errorf("store: %w", berrors.ErrDatabaseNotOpen)

// ReserveAttempt reserves one check of a's account at now under p. A
// refusal is a wait > 0: the account is locked (for that long), or its
// failures and the checks in flight reach the threshold. It touches no
// file: the counters are in memory, written through later.
func (s *Store) ReserveAttempt(a store.Attempt, now time.Time, p store.LockPolicy) (store.Reservation, time.Duration, error) {
	if err := checkAttempt(a, p); err != nil {
		return store.Reservation{}, 0, err
	}
	if s.closed.Load() {
		return store.Reservation{}, 0, errClosed
	}
	r, wait := s.attempts.Reserve(a, now, p)
	return r, wait, nil
}

// SettleAttempt records how a reserved check ended. An unknown outcome
// settles it as Abandoned (its slot is freed) and is ErrInvalid.
func (s *Store) SettleAttempt(r store.Reservation, o store.Outcome, now time.Time, p store.LockPolicy) (time.Time, error) {
	if err := checkAttempt(r.Attempt, p); err != nil {
		return time.Time{}, err
	}
	if s.closed.Load() {
		return time.Time{}, errClosed
	}
	var bad error
	if o > store.Failed {
		o, bad = store.Abandoned, fmt.Errorf("%w: attempt outcome %d", store.ErrInvalid, o)
	}
	return s.attempts.Settle(r, o, now, p), bad
}

// ClearAttempts forgets an account's failures and lock, of either kind.
func (s *Store) ClearAttempts(account store.AccountKey) error {
	if s.closed.Load() {
		return errClosed
	}
	s.attempts.Clear(account)
	return nil
}

// ListAttempts returns the accounts with failures or a lock at now, locked
// first, then by most recent failure.
func (s *Store) ListAttempts(now time.Time) ([]store.AttemptState, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	return s.attempts.List(now), nil
}

// closeAttempts stops the writer, writing what is pending; Close calls it
// before the file closes.
func (s *Store) closeAttempts() error {
	if s.attemptWriter == nil {
		return nil
	}
	return s.attemptWriter.close()
}
