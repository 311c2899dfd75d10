package store

import (
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"
	"time"
)

func account(s string) AccountKey {
	sum := sha256.Sum256([]byte(s))
	var k AccountKey
	copy(k[:], sum[:])
	return k
}

func attempt(s string) Attempt { return Attempt{Account: account(s), Label: s} }

func TestAttemptTracker(t *testing.T) {
	tr := NewAttemptTracker(10)
	now := time.Unix(1_000_000, 0)
	p := LockPolicy{Attempts: 3, Window: time.Minute}
	a := attempt("user:a")
	fail := func(at time.Time) {
		t.Helper()
		r, wait := tr.Reserve(a, at, p)
		if wait > 0 {
			t.Fatalf("refused a reservation (wait %s) before the account locked", wait)
		}
		tr.Settle(r, Failed, at, p)
	}
	fail(now)
	fail(now)
	if l := tr.List(now); len(l) != 1 || l[0].Failures != 2 || l[0].Locked(now) {
		t.Fatalf("after 2 failures: %+v", l)
	}
	fail(now)
	if _, wait := tr.Reserve(a, now.Add(10*time.Second), p); wait != 50*time.Second {
		t.Fatalf("locked for %s, want 50s", wait)
	}
	r, wait := tr.Reserve(a, now.Add(time.Minute), p)
	if wait != 0 {
		t.Fatalf("still locked after the window: %s", wait)
	}
	tr.Settle(r, Succeeded, now.Add(time.Minute), p)

	// Failures older than the window no longer count.
	b := attempt("user:b")
	p2 := LockPolicy{Attempts: 2, Window: time.Minute}
	r, _ = tr.Reserve(b, now, p2)
	tr.Settle(r, Failed, now, p2)
	r, _ = tr.Reserve(b, now.Add(time.Minute), p2)
	tr.Settle(r, Failed, now.Add(time.Minute), p2)
	if l := tr.List(now.Add(time.Minute)); len(l) != 1 || l[0].Locked(now.Add(time.Minute)) {
		t.Fatalf("a failure from a whole window ago still counted: %+v", l)
	}
	// Success clears; an abandoned check counts for nothing.
	r, _ = tr.Reserve(b, now.Add(time.Minute), p2)
	tr.Settle(r, Succeeded, now.Add(time.Minute), p2)
	r, _ = tr.Reserve(b, now.Add(time.Minute), p2)
	tr.Settle(r, Abandoned, now.Add(time.Minute), p2)
	if l := tr.List(now.Add(time.Minute)); len(l) != 0 {
		t.Fatalf("failures survived a success: %+v", l)
	}
	if n := tr.Len(); n != 0 {
		t.Errorf("%d entries left for accounts with nothing to count", n)
	}
}

// A reservation counts until it is settled: with the threshold's worth of
// checks in flight, the next attempt is refused without being checked.
func TestAttemptTrackerReservesBeforeChecking(t *testing.T) {
	tr := NewAttemptTracker(10)
	now := time.Unix(1_000_000, 0)
	p := LockPolicy{Attempts: 3, Window: time.Minute}
	a := attempt("login:victim")
	var held []Reservation
	for range 3 {
		r, wait := tr.Reserve(a, now, p)
		if wait > 0 {
			t.Fatalf("reservation %d refused", len(held)+1)
		}
		held = append(held, r)
	}
	if _, wait := tr.Reserve(a, now, p); wait != p.Window {
		t.Fatalf("a fourth concurrent check was let through (wait %s)", wait)
	}
	tr.Settle(held[0], Succeeded, now, p) // the right password among them clears the count
	if _, wait := tr.Reserve(a, now, p); wait != 0 {
		t.Fatalf("refused after a check settled: %s", wait)
	}
}

// Counters are keyed by a fixed-size digest, so a 60 KB identifier costs no
// more than a short one, and the tracker stays under its bound. Which
// entries survive a flood depends on when they were last active, never on
// whether the account exists: a real user's counter and an unknown
// login's fare the same.
func TestAttemptTrackerBound(t *testing.T) {
	p := LockPolicy{Attempts: 5, Window: time.Hour}
	for _, early := range []Attempt{attempt("user:usr_victim"), attempt("login:ghost-early")} {
		tr := NewAttemptTracker(40)
		now := time.Unix(1_000_000, 0)
		r, _ := tr.Reserve(early, now, p)
		tr.Settle(r, Failed, now, p)
		for i := range 100 {
			at := now.Add(time.Duration(i+1) * time.Second)
			r, wait := tr.Reserve(attempt(strings.Repeat("x", 60<<10)+strconv.Itoa(i)), at, p)
			if wait > 0 {
				t.Fatal("a new account was refused while idle entries could be evicted")
			}
			tr.Settle(r, Failed, at, p)
		}
		if n := tr.Len(); n > 40 {
			t.Fatalf("%d entries, bound is 40", n)
		}
		for _, s := range tr.List(now.Add(time.Hour / 2)) {
			if s.Account == early.Account {
				t.Errorf("the least recently active counter survived a flood: eviction must go by age alone")
			}
		}
	}
	// An entry with a check in flight is never evicted.
	tr := NewAttemptTracker(1)
	now := time.Unix(1_000_000, 0)
	busy, _ := tr.Reserve(attempt("user:busy"), now, p)
	if _, wait := tr.Reserve(attempt("user:other"), now, p); wait == 0 {
		t.Fatal("the tracker evicted an account with a check in flight")
	}
	tr.Settle(busy, Abandoned, now, p)
	// The two kinds are counted apart: a flood of client ids cannot evict a
	// password counter.
	tr = NewAttemptTracker(1)
	login := attempt("user:kept")
	r, _ := tr.Reserve(login, now, p)
	tr.Settle(r, Failed, now, p)
	for i := range 10 {
		c := attempt("key:" + strconv.Itoa(i))
		c.Kind = KindClient
		r, _ := tr.Reserve(c, now, p)
		tr.Settle(r, Failed, now, p)
	}
	found := false
	for _, s := range tr.List(now) {
		found = found || s.Account == login.Account
	}
	if !found {
		t.Error("client-id failures evicted a password counter")
	}
}
