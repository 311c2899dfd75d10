package auth

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLockoutTracker(t *testing.T) {
	tr := newLockoutTracker(10)
	now := time.Unix(1_000_000, 0)
	p := lockPolicy{attempts: 3, window: time.Minute}
	a := userAccount("a")
	fail := func(at time.Time) {
		t.Helper()
		att, wait := tr.reserve(a, at, p)
		if wait > 0 {
			t.Fatalf("refused a reservation (wait %s) before the account locked", wait)
		}
		att.failed(at)
	}
	fail(now)
	fail(now)
	if n, d := tr.state(a, now); n != 2 || d != 0 {
		t.Fatalf("after 2 failures: %d failures, locked %s", n, d)
	}
	fail(now)
	if _, wait := tr.reserve(a, now.Add(10*time.Second), p); wait != 50*time.Second {
		t.Fatalf("locked for %s, want 50s", wait)
	}
	att, wait := tr.reserve(a, now.Add(time.Minute), p)
	if wait != 0 {
		t.Fatalf("still locked after the window: %s", wait)
	}
	att.succeeded(now.Add(time.Minute))

	// Failures older than the window no longer count.
	b := userAccount("b")
	p2 := lockPolicy{attempts: 2, window: time.Minute}
	att, _ = tr.reserve(b, now, p2)
	att.failed(now)
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.failed(now.Add(time.Minute))
	if _, d := tr.state(b, now.Add(time.Minute)); d != 0 {
		t.Fatal("a failure from a whole window ago still counted")
	}
	// Success clears; an abandoned check counts for nothing.
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.succeeded(now.Add(time.Minute))
	att, _ = tr.reserve(b, now.Add(time.Minute), p2)
	att.abandoned(now.Add(time.Minute))
	if n, _ := tr.state(b, now.Add(time.Minute)); n != 0 {
		t.Fatalf("%d failures survived a success", n)
	}
	if len(tr.entries) != 0 {
		t.Errorf("%d entries left for accounts with nothing to count", len(tr.entries))
	}
}

// A reservation counts until it is settled: with the threshold's worth of
// checks in flight, the next attempt is refused without being checked.
func TestLockoutReservesBeforeChecking(t *testing.T) {
	tr := newLockoutTracker(10)
	now := time.Unix(1_000_000, 0)
	p := lockPolicy{attempts: 3, window: time.Minute}
	a := loginAccount("victim")
	var held []attempt
	for range 3 {
		att, wait := tr.reserve(a, now, p)
		if wait > 0 {
			t.Fatalf("reservation %d refused", len(held)+1)
		}
		held = append(held, att)
	}
	if _, wait := tr.reserve(a, now, p); wait != p.window {
		t.Fatalf("a fourth concurrent check was let through (wait %s)", wait)
	}
	held[0].succeeded(now) // the right password among them clears the count
	if _, wait := tr.reserve(a, now, p); wait != 0 {
		t.Fatalf("refused after a check settled: %s", wait)
	}
}

// Counters are keyed by a fixed-size digest, so a 60 KB identifier costs no
// more than a short one, and the tracker stays under its bound. Which
// entries survive a flood depends on when they were last active, never on
// whether the account exists: a real user's counter and an unknown
// login's fare the same.
func TestLockoutTrackerBound(t *testing.T) {
	p := lockPolicy{attempts: 5, window: time.Hour}
	for _, early := range []accountKey{userAccount("usr_victim"), loginAccount("ghost-early")} {
		tr := newLockoutTracker(40)
		now := time.Unix(1_000_000, 0)
		att, _ := tr.reserve(early, now, p)
		att.failed(now)
		for i := range 100 {
			at := now.Add(time.Duration(i+1) * time.Second)
			att, wait := tr.reserve(loginAccount(strings.Repeat("x", 60<<10)+strconv.Itoa(i)), at, p)
			if wait > 0 {
				t.Fatal("a new account was refused while idle entries could be evicted")
			}
			att.failed(at)
		}
		if len(tr.entries) > 40 {
			t.Fatalf("%d entries, bound is 40", len(tr.entries))
		}
		if n, _ := tr.state(early, now.Add(time.Hour/2)); n != 0 {
			t.Errorf("the least recently active counter survived a flood: eviction must go by age alone")
		}
	}
	// An entry with a check in flight is never evicted.
	tr := newLockoutTracker(1)
	now := time.Unix(1_000_000, 0)
	busy, _ := tr.reserve(userAccount("busy"), now, p)
	if _, wait := tr.reserve(userAccount("other"), now, p); wait == 0 {
		t.Fatal("the tracker evicted an account with a check in flight")
	}
	busy.abandoned(now)
}
