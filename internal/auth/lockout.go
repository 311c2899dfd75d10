package auth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// Login protection (API.md section 6): after `lockout` failures against one
// account, the account is locked for the lockout duration, and every
// attempt while it is locked is refused (LockedError), even with the right
// password.
//
// The check is atomic: an attempt is reserved before its hash runs, and a
// reservation counts like a failure until it is settled. So however many
// guesses arrive at once, at most `lockout` of them are ever checked per
// window; the others are refused as if the account were locked, without a
// hash (caddy-security CVE-2024-21500 class).
//
// An account is counted by what it is, not by how it was named: a known
// user by their ID (so the username, the email and a password or PIN check
// on a live session all share one counter), an unknown login by its
// normalised text (so unknown names lock exactly as known ones do and a
// 429 tells nothing about whether a user exists), an API key's client
// secret by the key's ID, known or not.
//
// Counters are keyed by a fixed-size digest, never by what the client sent,
// and bounded in number: see lockoutTracker.limit. The counters live in
// memory beside the open store: they survive reloads, not restarts.

// accountKey names an account to a tracker: the first 16 bytes of the
// SHA-256 of its kind and identifier. Fixed size, so a tracker's memory is
// bounded by its entry count, whatever the identifiers' lengths.
type accountKey [16]byte

func accountOf(kind, id string) accountKey {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var k accountKey
	copy(k[:], h.Sum(nil))
	return k
}

// Account keys. login is the normalised login of an unknown account.
func userAccount(userID string) accountKey { return accountOf("user", userID) }
func loginAccount(login string) accountKey { return accountOf("login", login) }
func clientAccount(keyID string) accountKey {
	return accountOf("key", keyID)
}

// lockoutTracker counts recent failures and checks in flight per account.
// Safe for concurrent use.
type lockoutTracker struct {
	mu      sync.Mutex
	entries map[accountKey]*lockoutEntry
	// limit bounds entries. When it is reached, idle expired entries go
	// first, then the least recently active that have no check in flight:
	// whether the account exists never plays a part, so a flood cannot
	// tell real accounts from made-up ones by which counters survive it.
	limit int
}

type lockoutEntry struct {
	failures    int // within the window that ends at lastFailure + window
	inflight    int // reserved attempts not yet settled
	lastFailure time.Time
	lockedUntil time.Time
	lastActive  time.Time // last reservation or settlement, for eviction
}

func newLockoutTracker(limit int) *lockoutTracker {
	if limit < 1 {
		limit = 1
	}
	return &lockoutTracker{entries: make(map[accountKey]*lockoutEntry), limit: limit}
}

// Lockouts are the trackers of one store: password and PIN checks by
// account, and client secrets by key. Apart, so that a flood of cheap
// client-id failures (no hash to slow it) can never evict a password
// counter. They outlive a Service: a reload builds a new one on the same
// store and the same Lockouts.
type Lockouts struct {
	logins, clients *lockoutTracker
}

// NewLockouts makes the trackers, each bounded to limit accounts.
func NewLockouts(limit int) *Lockouts {
	return &Lockouts{logins: newLockoutTracker(limit), clients: newLockoutTracker(limit)}
}

// Len is how many accounts the trackers count now.
func (l *Lockouts) Len() int {
	n := 0
	for _, t := range []*lockoutTracker{l.logins, l.clients} {
		t.mu.Lock()
		n += len(t.entries)
		t.mu.Unlock()
	}
	return n
}

// lockPolicy is the configured threshold and lock duration.
type lockPolicy struct {
	attempts int
	window   time.Duration
}

// attempt is a reserved check. Exactly one of its settling methods must be
// called.
type attempt struct {
	t      *lockoutTracker
	key    accountKey
	policy lockPolicy
}

// reserve reserves one check of account at now. It refuses (returning how
// long to wait) when the account is locked, or when its failures and the
// checks already in flight reach the threshold: that check could be the
// one that locks, and no more guesses than the threshold may ever run.
func (t *lockoutTracker) reserve(account accountKey, now time.Time, p lockPolicy) (attempt, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil {
		if !t.makeRoom(now, p.window) {
			return attempt{}, p.window // every slot busy: fail closed
		}
		e = &lockoutEntry{}
		t.entries[account] = e
	}
	if now.Before(e.lockedUntil) {
		return attempt{}, e.lockedUntil.Sub(now)
	}
	if e.failures > 0 && now.Sub(e.lastFailure) >= p.window {
		e.failures = 0
	}
	if e.failures+e.inflight >= p.attempts {
		return attempt{}, p.window
	}
	e.inflight++
	e.lastActive = now
	return attempt{t: t, key: account, policy: p}, 0
}

// failed settles a check that failed at now: the threshold-th failure in
// the window locks the account for the window.
func (a attempt) failed(now time.Time) {
	a.t.settle(a.key, now, func(e *lockoutEntry) {
		if now.Sub(e.lastFailure) >= a.policy.window {
			e.failures = 0
		}
		e.failures++
		e.lastFailure = now
		if e.failures >= a.policy.attempts {
			e.lockedUntil = now.Add(a.policy.window)
			e.failures = 0
		}
	})
}

// succeeded settles a check that passed: the account's failures are cleared.
func (a attempt) succeeded(now time.Time) {
	a.t.settle(a.key, now, func(e *lockoutEntry) { e.failures = 0 })
}

// abandoned settles a check that neither passed nor failed (the store could
// not be read, say): it counts for nothing.
func (a attempt) abandoned(now time.Time) {
	a.t.settle(a.key, now, func(*lockoutEntry) {})
}

func (t *lockoutTracker) settle(account accountKey, now time.Time, fn func(e *lockoutEntry)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil {
		return // cannot happen: an entry with a check in flight is never evicted
	}
	e.inflight--
	e.lastActive = now
	fn(e)
	if e.inflight == 0 && e.failures == 0 && !now.Before(e.lockedUntil) {
		delete(t.entries, account)
	}
}

// makeRoom keeps the map under its limit; called with mu held. It reports
// false only if every entry has a check in flight.
func (t *lockoutTracker) makeRoom(now time.Time, window time.Duration) bool {
	if len(t.entries) < t.limit {
		return true
	}
	for k, e := range t.entries {
		if e.inflight == 0 && !now.Before(e.lockedUntil) && now.Sub(e.lastFailure) >= window {
			delete(t.entries, k)
		}
	}
	if len(t.entries) < t.limit {
		return true
	}
	// Still full of live counters: drop the least recently active tenth
	// (at least one), so this scan runs once per many new accounts.
	type candidate struct {
		key    accountKey
		active time.Time
	}
	var idle []candidate
	for k, e := range t.entries {
		if e.inflight == 0 {
			idle = append(idle, candidate{k, e.lastActive})
		}
	}
	if len(idle) == 0 {
		return false
	}
	slices.SortFunc(idle, func(a, b candidate) int { return a.active.Compare(b.active) })
	for _, c := range idle[:max(1, min(len(idle), t.limit/10))] {
		delete(t.entries, c.key)
	}
	return true
}

// state reports an account's failures and lock at now, for tests and
// administration.
func (t *lockoutTracker) state(account accountKey, now time.Time) (failures int, lockedFor time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil {
		return 0, 0
	}
	if now.Before(e.lockedUntil) {
		lockedFor = e.lockedUntil.Sub(now)
	}
	return e.failures, lockedFor
}

// guard runs check for account under t's lockout: it reserves the attempt
// first (refusing a locked or busy account without running check), then
// counts the outcome: a wrong secret (isFailedCheck) is a failure, success
// clears the account's failures, anything else counts for nothing. Every
// credential check of a login goes through it.
func (s *Service) guard(t *lockoutTracker, account accountKey, check func() error) (err error) {
	at, wait := t.reserve(account, s.now(), s.lockPolicy())
	if wait > 0 {
		return &LockedError{RetryAfter: wait}
	}
	settled := false
	defer func() {
		if !settled { // check panicked: free the reservation
			at.abandoned(s.now())
		}
	}()
	err = check()
	settled = true
	switch {
	case err == nil:
		at.succeeded(s.now())
	case isFailedCheck(err):
		at.failed(s.now())
	default:
		at.abandoned(s.now())
	}
	return err
}

func (s *Service) lockPolicy() lockPolicy {
	return lockPolicy{attempts: s.cfg.LockoutAttempts, window: s.cfg.LockoutDuration}
}
