package storetest

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// The lockout's counters (store.Attempts), through the interface only.
// Time is the now each call is given: a test clock that starts at the real
// time (a backend may keep counters under real expiries, leases for
// instance, which must then lie ahead) and moves only when a test moves
// it. Waits are compared to within a second, for a backend that keeps
// times coarser than Go does.

// testPolicy is the policy of these tests: the third failure within ten
// minutes locks for ten minutes.
var testPolicy = store.LockPolicy{Attempts: 3, Window: 10 * time.Minute}

// testClock is the start of a test's clock: the real time, whole seconds,
// UTC.
func testClock() time.Time { return time.Now().UTC().Truncate(time.Second) }

// NewAccount returns a fresh random account key.
func NewAccount(t testing.TB) store.AccountKey {
	t.Helper()
	var a store.AccountKey
	rand.Read(a[:])
	return a
}

// loginAttempt names a fresh login account.
func loginAttempt(t testing.TB, label string) store.Attempt {
	return store.Attempt{Account: NewAccount(t), Kind: store.KindLogin, Label: label}
}

// mustReserve reserves a check of a at now, which must be granted.
func mustReserve(t testing.TB, s store.Store, a store.Attempt, now time.Time) store.Reservation {
	t.Helper()
	r, wait, err := s.ReserveAttempt(a, now, testPolicy)
	if err != nil {
		t.Fatalf("ReserveAttempt(%s): %v", a.Label, err)
	}
	if wait != 0 {
		t.Fatalf("ReserveAttempt(%s) refused for %v, want granted", a.Label, wait)
	}
	return r
}

// mustSettle settles r with o at now and returns when the account is
// locked if this settle locked it.
func mustSettle(t testing.TB, s store.Store, r store.Reservation, o store.Outcome, now time.Time) time.Time {
	t.Helper()
	lockedUntil, err := s.SettleAttempt(r, o, now, testPolicy)
	if err != nil {
		t.Fatalf("SettleAttempt(%s, %d): %v", r.Label, o, err)
	}
	return lockedUntil
}

// mustCheck reserves a check of a at now and settles it with o.
func mustCheck(t testing.TB, s store.Store, a store.Attempt, o store.Outcome, now time.Time) time.Time {
	t.Helper()
	return mustSettle(t, s, mustReserve(t, s, a, now), o, now)
}

// mustFail is a failed check of a at now.
func mustFail(t testing.TB, s store.Store, a store.Attempt, now time.Time) time.Time {
	t.Helper()
	return mustCheck(t, s, a, store.Failed, now)
}

// refusedFor reserves a check of a at now, which must be refused, and
// returns the wait.
func refusedFor(t testing.TB, s store.Store, a store.Attempt, now time.Time) time.Duration {
	t.Helper()
	r, wait, err := s.ReserveAttempt(a, now, testPolicy)
	if err != nil {
		t.Fatalf("ReserveAttempt(%s): %v", a.Label, err)
	}
	if wait <= 0 {
		t.Fatalf("ReserveAttempt(%s) granted (%+v), want a refusal", a.Label, r)
	}
	return wait
}

// nearly reports whether got is want to within a second.
func nearly(got, want time.Duration) bool {
	d := got - want
	return -time.Second <= d && d <= time.Second
}

// testAttemptsLockAtThreshold: the threshold-th failure within the window
// locks the account for the window; while locked its checks are refused
// with the time left; other accounts are not; after the window it is
// checked again, from zero.
func testAttemptsLockAtThreshold(t *testing.T, s store.Store) {
	now := testClock()
	a, other := loginAttempt(t, "user:a"), loginAttempt(t, "user:other")
	at := now
	for i := range testPolicy.Attempts {
		at = now.Add(time.Duration(i) * time.Second)
		// Each reservation before the last failure is granted, and only
		// the last failure reports the lock it made.
		lockedUntil := mustFail(t, s, a, at)
		switch last := i == testPolicy.Attempts-1; {
		case last && !lockedUntil.Equal(at.Add(testPolicy.Window)):
			t.Errorf("the locking failure reported locked until %v, want %v", lockedUntil, at.Add(testPolicy.Window))
		case !last && !lockedUntil.IsZero():
			t.Errorf("failure %d of %d reported a lock until %v", i+1, testPolicy.Attempts, lockedUntil)
		}
	}
	if wait := refusedFor(t, s, a, at); !nearly(wait, testPolicy.Window) {
		t.Errorf("just locked: wait %v, want %v", wait, testPolicy.Window)
	}
	later := at.Add(4 * time.Minute)
	if wait := refusedFor(t, s, a, later); !nearly(wait, testPolicy.Window-4*time.Minute) {
		t.Errorf("locked 4 minutes ago: wait %v, want %v", wait, testPolicy.Window-4*time.Minute)
	}
	mustCheck(t, s, other, store.Abandoned, later)

	// The lock is over after the window, and counting starts again.
	end := at.Add(testPolicy.Window)
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, end)
	}
	mustCheck(t, s, a, store.Abandoned, end)
}

// testAttemptsOldFailuresExpire: failures older than the window no longer
// count.
func testAttemptsOldFailuresExpire(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, now)
	}
	later := now.Add(testPolicy.Window + time.Second)
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, later)
	}
	mustCheck(t, s, a, store.Abandoned, later) // not locked: the first ones aged out
	mustFail(t, s, a, later)                   // the new ones count
	refusedFor(t, s, a, later)
}

// testAttemptsSuccessClears: a right secret clears the failures.
func testAttemptsSuccessClears(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, now)
	}
	mustCheck(t, s, a, store.Succeeded, now)
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, now.Add(time.Second))
	}
	mustCheck(t, s, a, store.Abandoned, now.Add(time.Second)) // not locked
}

// testAttemptsAbandonedCountsNothing: a check that neither passed nor
// failed neither counts as a failure nor clears the failures.
func testAttemptsAbandonedCountsNothing(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, now)
	}
	for range 2 * testPolicy.Attempts {
		mustCheck(t, s, a, store.Abandoned, now)
	}
	mustFail(t, s, a, now) // the failures were kept: this one locks
	refusedFor(t, s, a, now)
}

// testAttemptsInFlightCount: a reservation counts like a failure until it
// is settled: with the threshold's worth of checks in flight the next is
// refused, with failures fewer are let through, and settling one frees a
// slot.
func testAttemptsInFlightCount(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	var held []store.Reservation
	for range testPolicy.Attempts {
		held = append(held, mustReserve(t, s, a, now))
	}
	refusedFor(t, s, a, now)
	mustSettle(t, s, held[0], store.Abandoned, now)
	held[0] = mustReserve(t, s, a, now) // the freed slot
	refusedFor(t, s, a, now)
	for _, r := range held {
		mustSettle(t, s, r, store.Abandoned, now)
	}

	// A failure takes a slot for the window.
	mustFail(t, s, a, now)
	held = held[:0]
	for range testPolicy.Attempts - 1 {
		held = append(held, mustReserve(t, s, a, now))
	}
	refusedFor(t, s, a, now)
	for _, r := range held {
		mustSettle(t, s, r, store.Abandoned, now)
	}
	mustCheck(t, s, a, store.Abandoned, now)
}

// testAttemptsConcurrentReservations: of many checks reserved at once,
// exactly the threshold's worth are granted (the atomicity of the check:
// never more secrets checked per window than the threshold), and their
// failures lock.
func testAttemptsConcurrentReservations(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	const n = 20
	granted := make(chan store.Reservation, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r, wait, err := s.ReserveAttempt(a, now, testPolicy)
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				granted <- r
			}
		})
	}
	wg.Wait()
	close(granted)
	if len(granted) != testPolicy.Attempts {
		t.Errorf("%d of %d concurrent reservations granted, want %d", len(granted), n, testPolicy.Attempts)
	}
	for r := range granted {
		mustSettle(t, s, r, store.Failed, now)
	}
	refusedFor(t, s, a, now)
}

// testAttemptsKindsSeparate: a client account with the same key bytes as
// a login account is another account: neither's failures count for the
// other, and a lock of one leaves the other checked.
func testAttemptsKindsSeparate(t *testing.T, s store.Store) {
	now := testClock()
	key := NewAccount(t)
	login := store.Attempt{Account: key, Kind: store.KindLogin, Label: "user:x"}
	client := store.Attempt{Account: key, Kind: store.KindClient, Label: "key:x"}
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, login, now)
		mustFail(t, s, client, now)
	}
	mustCheck(t, s, login, store.Abandoned, now)
	mustCheck(t, s, client, store.Abandoned, now)
	mustFail(t, s, login, now)
	refusedFor(t, s, login, now)
	mustCheck(t, s, client, store.Abandoned, now) // still one failure short
	list, err := s.ListAttempts(now)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[store.AttemptKind]store.AttemptState{}
	for _, st := range list {
		if st.Account == key {
			kinds[st.Kind] = st
		}
	}
	l, c := kinds[store.KindLogin], kinds[store.KindClient]
	if len(list) != 2 || !l.Locked(now) || l.Label != "user:x" ||
		c.Locked(now) || c.Failures != testPolicy.Attempts-1 || c.Label != "key:x" {
		t.Errorf("ListAttempts = %+v: want the login account locked and the client account apart", list)
	}
}

// testClearAttemptsUnlocks: ClearAttempts ends a lock and forgets the
// failures, of every kind of the account.
func testClearAttemptsUnlocks(t *testing.T, s store.Store) {
	now := testClock()
	a := loginAttempt(t, "user:a")
	client := store.Attempt{Account: a.Account, Kind: store.KindClient, Label: "key:a"}
	for range testPolicy.Attempts {
		mustFail(t, s, a, now)
	}
	mustFail(t, s, client, now)
	refusedFor(t, s, a, now)
	if err := s.ClearAttempts(a.Account); err != nil {
		t.Fatal(err)
	}
	if list, err := s.ListAttempts(now); err != nil || len(list) != 0 {
		t.Errorf("ListAttempts after ClearAttempts = %+v, %v; want none", list, err)
	}
	for range testPolicy.Attempts - 1 {
		mustFail(t, s, a, now)
		mustFail(t, s, client, now)
	}
	mustCheck(t, s, a, store.Abandoned, now) // unlocked, and counting from zero
	mustCheck(t, s, client, store.Abandoned, now)
	if err := s.ClearAttempts(NewAccount(t)); err != nil {
		t.Errorf("ClearAttempts of an unknown account: %v", err)
	}
}

// testListAttempts: the list holds the locked and the failing accounts at
// now, with their labels, locked first; not those cleared, succeeded or
// only being checked, nor any once their window is over.
func testListAttempts(t *testing.T, s store.Store) {
	now := testClock()
	locked := loginAttempt(t, "user:locked")
	failing := store.Attempt{Account: NewAccount(t), Kind: store.KindClient, Label: "key:failing"}
	cleared, succeeded, checking := loginAttempt(t, "user:cleared"), loginAttempt(t, "user:ok"), loginAttempt(t, "user:checking")
	for range testPolicy.Attempts {
		mustFail(t, s, locked, now)
	}
	mustFail(t, s, failing, now.Add(time.Second))
	mustFail(t, s, cleared, now)
	mustFail(t, s, cleared, now)
	if err := s.ClearAttempts(cleared.Account); err != nil {
		t.Fatal(err)
	}
	mustFail(t, s, succeeded, now)
	mustCheck(t, s, succeeded, store.Succeeded, now)
	held := mustReserve(t, s, checking, now)
	defer mustSettle(t, s, held, store.Abandoned, now)

	at := now.Add(2 * time.Second)
	list, err := s.ListAttempts(at)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListAttempts = %+v; want the locked and the failing account", list)
	}
	l, f := list[0], list[1]
	if l.Account != locked.Account || l.Kind != store.KindLogin || l.Label != "user:locked" || !l.Locked(at) ||
		!nearly(l.LockedUntil.Sub(now), testPolicy.Window) {
		t.Errorf("first listed: %+v; want %q locked until %v", l, locked.Label, now.Add(testPolicy.Window))
	}
	if f.Account != failing.Account || f.Kind != store.KindClient || f.Label != "key:failing" || f.Locked(at) ||
		f.Failures != 1 || !f.LastFailure.Equal(now.Add(time.Second)) {
		t.Errorf("second listed: %+v; want %q with one failure at %v", f, failing.Label, now.Add(time.Second))
	}
	if list, err := s.ListAttempts(now.Add(2 * testPolicy.Window)); err != nil || len(list) != 0 {
		t.Errorf("ListAttempts after the window = %+v, %v; want none", list, err)
	}
}
