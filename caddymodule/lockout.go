package caddymodule

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Login protection (API.md section 6): after `lockout` failures against one
// account, the account is locked for the lockout duration, and every
// attempt while it is locked gets 429 with Retry-After, even with the right
// password.
//
// An account is counted by what it is, not by how it was named: a known
// user by their ID (so the username, the email and a password or PIN check
// on a live session all share one counter), an unknown login by its
// lowercased text (so unknown names lock exactly as known ones do and a 429
// tells nothing about whether a user exists), an API key's client secret by
// the key's ID.
//
// The counters live in memory beside the open store (they survive reloads,
// not restarts) and are bounded: see lockoutTracker.limit.

// lockoutTracker counts recent failures per account. Safe for concurrent use.
type lockoutTracker struct {
	mu      sync.Mutex
	entries map[string]*lockoutEntry
	// limit bounds entries. When it is reached, expired entries go first,
	// then those of unknown logins: a flood of made-up names can never push
	// out a real account's counter.
	limit int
}

type lockoutEntry struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
}

func newLockoutTracker(limit int) *lockoutTracker {
	if limit < 1 {
		limit = 1
	}
	return &lockoutTracker{entries: make(map[string]*lockoutEntry), limit: limit}
}

// Account keys of the tracker.
func userAccount(userID string) string { return "user:" + userID }
func loginAccount(login string) string { return "login:" + strings.ToLower(login) }
func keyAccount(keyID string) string   { return "key:" + keyID }

// lockedFor returns how long account stays locked at now; 0 if it is not.
func (t *lockoutTracker) lockedFor(account string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil || !now.Before(e.lockedUntil) {
		return 0
	}
	return e.lockedUntil.Sub(now)
}

// fail records a failure at now. Failures older than window no longer
// count; the attempts-th failure within it locks the account for window.
// It reports whether the account is now locked.
func (t *lockoutTracker) fail(account string, now time.Time, attempts int, window time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[account]
	if e == nil {
		t.makeRoom(now, window)
		e = &lockoutEntry{}
		t.entries[account] = e
	}
	if now.Sub(e.lastFailure) >= window {
		e.failures = 0
	}
	e.failures++
	e.lastFailure = now
	if e.failures >= attempts {
		e.lockedUntil = now.Add(window)
		e.failures = 0
		return true
	}
	return false
}

// succeed clears the account's failures after a successful check.
func (t *lockoutTracker) succeed(account string) {
	t.mu.Lock()
	delete(t.entries, account)
	t.mu.Unlock()
}

// makeRoom keeps the map under its limit; called with mu held.
func (t *lockoutTracker) makeRoom(now time.Time, window time.Duration) {
	if len(t.entries) < t.limit {
		return
	}
	for k, e := range t.entries {
		if !now.Before(e.lockedUntil) && now.Sub(e.lastFailure) >= window {
			delete(t.entries, k)
		}
	}
	for k := range t.entries {
		if len(t.entries) < t.limit {
			return
		}
		if strings.HasPrefix(k, "login:") {
			delete(t.entries, k)
		}
	}
}

// errLocked is the refusal of a locked account: 429 with Retry-After in
// whole seconds, rounded up.
func errLocked(remaining time.Duration) *authError {
	return &authError{
		status:      http.StatusTooManyRequests,
		code:        "locked",
		description: "too many failed attempts; the account is locked for now, try again later",
		retryAfter:  int(math.Ceil(remaining.Seconds())),
	}
}

// guard runs check for account unless the account is locked, and counts
// its outcome: a refusal with status 401 is a failure, success clears the
// account's failures. Every credential check of a login route goes through
// it.
func (a *App) guard(account string, check func() *authError) *authError {
	now := a.now()
	if d := a.lockout.lockedFor(account, now); d > 0 {
		return errLocked(d)
	}
	aerr := check()
	switch {
	case aerr == nil:
		a.lockout.succeed(account)
	case aerr.status == http.StatusUnauthorized:
		a.lockout.fail(account, a.now(), a.LockoutAttempts, time.Duration(a.LockoutDuration))
	}
	return aerr
}
