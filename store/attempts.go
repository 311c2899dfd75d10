package store

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// The lockout's counters (API.md section 6): how many recent checks of a
// secret failed at each account, which checks are in flight, and until
// when an account is locked. The service (internal/auth) decides what an
// account is and runs the checks; a backend keeps the counters, shared by
// every instance that shares the store.

// AccountKey names an account to the lockout: a fixed-size digest of what
// the account is (the service makes it), never what a client sent, so no
// counter grows with a client's input.
type AccountKey [16]byte

// AttemptKind separates counters that must not push each other out:
// password and PIN checks (each costs a hash) and client secrets (cheap,
// so a flood of them is cheap too).
type AttemptKind uint8

const (
	KindLogin  AttemptKind = iota // passwords and PINs, by account
	KindClient                    // client secrets, by API key id
)

// Attempt names one check to reserve: the account, its kind, and a label
// an operator can read ("user:<id>", "key:<id>", "unknown login"). A
// label never holds what a client typed.
type Attempt struct {
	Account AccountKey
	Kind    AttemptKind
	Label   string
}

// LockPolicy is the lockout's configuration: Attempts failures within
// Window lock the account for Window.
type LockPolicy struct {
	Attempts int
	Window   time.Duration
}

// Reservation is a reserved check, to be settled once.
type Reservation struct {
	Attempt
	// ID tells this reservation from the account's others (a backend's
	// handle; opaque to callers).
	ID string
}

// Outcome is how a reserved check ended.
type Outcome uint8

const (
	// Abandoned: neither passed nor failed (the store could not be read):
	// counts for nothing.
	Abandoned Outcome = iota
	// Succeeded: the secret was right; the account's failures are cleared.
	Succeeded
	// Failed: a wrong secret; the threshold-th in the window locks.
	Failed
)

// AttemptState is what the lockout knows of an account.
type AttemptState struct {
	Attempt
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
	// Expires is when nothing of this state matters any more: the later of
	// the lock's end and the last failure's window.
	Expires time.Time `json:"expires"`
}

// Locked reports whether the account is locked at now.
func (s *AttemptState) Locked(now time.Time) bool { return now.Before(s.LockedUntil) }

// AttemptTracker keeps attempt counters in memory, bounded in number; the
// in-memory and bbolt backends count with it (bbolt writes its changes
// through: see OnChange). Safe for concurrent use.
//
// The check is atomic: a reservation counts like a failure until it is
// settled, so however many checks run at once, at most the threshold's
// worth of them are ever checked per window.
type AttemptTracker struct {
	mu      sync.Mutex
	entries [2]map[AccountKey]*attemptEntry // by kind
	limit   int
	seq     uint64
	// OnChange, when set, is called (under the tracker's lock: it must not
	// block or call back) with an account's new state, or with deleted set
	// when the account has nothing left to count. In-flight checks are not
	// part of the state: they end with the process.
	OnChange func(s AttemptState, deleted bool)
}

type attemptEntry struct {
	AttemptState
	inflight   int
	lastActive time.Time // for eviction
}

// NewAttemptTracker bounds each kind's counters to limit accounts.
func NewAttemptTracker(limit int) *AttemptTracker {
	if limit < 1 {
		limit = 1
	}
	t := &AttemptTracker{limit: limit}
	for i := range t.entries {
		t.entries[i] = make(map[AccountKey]*attemptEntry)
	}
	return t
}

// Reserve reserves one check of a at now. It refuses (returning how long
// to wait) when the account is locked, or when its failures and the checks
// in flight reach the threshold: that check could be the one that locks.
func (t *AttemptTracker) Reserve(a Attempt, now time.Time, p LockPolicy) (Reservation, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.entries[a.Kind&1]
	e := m[a.Account]
	if e == nil {
		if !t.makeRoom(m, now) {
			return Reservation{}, p.Window // every slot busy: fail closed
		}
		e = &attemptEntry{AttemptState: AttemptState{Attempt: a}}
		m[a.Account] = e
	}
	if e.Locked(now) {
		return Reservation{}, e.LockedUntil.Sub(now)
	}
	if e.Failures > 0 && now.Sub(e.LastFailure) >= p.Window {
		e.Failures = 0
	}
	if e.Failures+e.inflight >= p.Attempts {
		return Reservation{}, p.Window
	}
	e.inflight++
	e.lastActive = now
	t.seq++
	return Reservation{Attempt: a, ID: strconv.FormatUint(t.seq, 10)}, 0
}

// Settle records how a reserved check ended. lockedUntil is set when this
// failure locked the account.
func (t *AttemptTracker) Settle(r Reservation, o Outcome, now time.Time, p LockPolicy) (lockedUntil time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.entries[r.Kind&1]
	e := m[r.Account]
	if e == nil {
		return time.Time{} // cannot happen: an entry with a check in flight is never evicted
	}
	if e.inflight > 0 { // a second settle must not free another's slot
		e.inflight--
	}
	e.lastActive = now
	changed := false
	switch o {
	case Failed:
		if now.Sub(e.LastFailure) >= p.Window {
			e.Failures = 0
		}
		e.Failures++
		e.LastFailure = now
		if e.Failures >= p.Attempts {
			e.LockedUntil = now.Add(p.Window)
			e.Failures = 0
			lockedUntil = e.LockedUntil
		}
		e.Expires = later(e.LockedUntil, e.LastFailure.Add(p.Window))
		changed = true
	case Succeeded:
		changed = e.Failures > 0
		e.Failures = 0
	}
	if e.inflight == 0 && e.Failures == 0 && !e.Locked(now) {
		delete(m, r.Account)
		// A state that was ever reported (Expires set) is reported gone,
		// even when this settle changed nothing: failures that aged out
		// of the window must not stay behind in a backend.
		if (changed || !e.Expires.IsZero()) && t.OnChange != nil {
			t.OnChange(e.AttemptState, true)
		}
		return lockedUntil
	}
	if changed && t.OnChange != nil {
		t.OnChange(e.AttemptState, false)
	}
	return lockedUntil
}

// Clear forgets an account's failures and lock, of either kind.
func (t *AttemptTracker) Clear(account AccountKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.entries {
		e := m[account]
		if e == nil {
			continue
		}
		e.Failures, e.LastFailure, e.LockedUntil = 0, time.Time{}, time.Time{}
		if e.inflight == 0 {
			delete(m, account)
		}
		if t.OnChange != nil {
			t.OnChange(e.AttemptState, true)
		}
	}
}

// List returns the accounts with failures or a lock at now, locked first,
// then by most recent failure.
func (t *AttemptTracker) List(now time.Time) []AttemptState {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []AttemptState
	for _, m := range t.entries {
		for _, e := range m {
			if (e.Failures > 0 || e.Locked(now)) && now.Before(e.Expires) {
				out = append(out, e.AttemptState)
			}
		}
	}
	slices.SortFunc(out, func(a, b AttemptState) int {
		if la, lb := a.Locked(now), b.Locked(now); la != lb {
			if la {
				return -1
			}
			return 1
		}
		return b.LastFailure.Compare(a.LastFailure)
	})
	return out
}

// Load puts back states a backend kept (bbolt, after a restart); expired
// ones are dropped.
func (t *AttemptTracker) Load(states []AttemptState, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range states {
		if !now.Before(s.Expires) {
			continue
		}
		m := t.entries[s.Kind&1]
		if len(m) >= t.limit {
			continue
		}
		m[s.Account] = &attemptEntry{AttemptState: s, lastActive: now}
	}
}

// Len is how many accounts the tracker counts.
func (t *AttemptTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries[0]) + len(t.entries[1])
}

// makeRoom keeps m under the limit; called with mu held. Expired entries go
// first, then the least recently active tenth of those with no check in
// flight (at least one): whether an account exists never decides, so a
// flood cannot tell real accounts from made-up ones by which counters
// survive it. It reports false only if every entry has a check in flight.
func (t *AttemptTracker) makeRoom(m map[AccountKey]*attemptEntry, now time.Time) bool {
	if len(m) < t.limit {
		return true
	}
	for k, e := range m {
		if e.inflight == 0 && !now.Before(e.Expires) {
			delete(m, k)
			if t.OnChange != nil {
				t.OnChange(e.AttemptState, true)
			}
		}
	}
	if len(m) < t.limit {
		return true
	}
	type candidate struct {
		key    AccountKey
		active time.Time
	}
	var idle []candidate
	for k, e := range m {
		if e.inflight == 0 {
			idle = append(idle, candidate{k, e.lastActive})
		}
	}
	if len(idle) == 0 {
		return false
	}
	slices.SortFunc(idle, func(a, b candidate) int { return a.active.Compare(b.active) })
	for _, c := range idle[:max(1, min(len(idle), t.limit/10))] {
		if t.OnChange != nil {
			t.OnChange(m[c.key].AttemptState, true)
		}
		delete(m, c.key)
	}
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
