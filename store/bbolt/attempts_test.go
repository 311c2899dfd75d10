package bbolt

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

var attemptPolicy = store.LockPolicy{Attempts: 3, Window: time.Hour}

func newAttempt(kind store.AttemptKind, label string) store.Attempt {
	a := store.Attempt{Kind: kind, Label: label}
	rand.Read(a.Account[:])
	return a
}

// mustCheck reserves a check of a at now and settles it with o; the
// reservation must be granted.
func mustCheck(t *testing.T, s *Store, a store.Attempt, o store.Outcome, now time.Time) {
	t.Helper()
	r, wait, err := s.ReserveAttempt(a, now, attemptPolicy)
	if err != nil || wait != 0 {
		t.Fatalf("ReserveAttempt(%s) = %v, %v; want granted", a.Label, wait, err)
	}
	if _, err := s.SettleAttempt(r, o, now, attemptPolicy); err != nil {
		t.Fatal(err)
	}
}

// persistedAttempts counts the attempts bucket's entries.
func persistedAttempts(t *testing.T, db *bolt.DB) int {
	t.Helper()
	n := 0
	if err := db.View(func(tx *bolt.Tx) error {
		n = bucketAttempts.of(tx).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttemptsSurviveReopen: failures and locks are kept across a restart,
// of each kind apart; what was cleared, succeeded or has expired is not,
// nor are checks in flight.
func TestAttemptsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := utcNow()
	locked := newAttempt(store.KindLogin, "user:locked")
	twin := store.Attempt{Account: locked.Account, Kind: store.KindClient, Label: "key:twin"}
	failing := newAttempt(store.KindClient, "key:failing")
	succeeded, cleared := newAttempt(store.KindLogin, "user:ok"), newAttempt(store.KindLogin, "user:cleared")
	expired, inFlight := newAttempt(store.KindLogin, "user:expired"), newAttempt(store.KindLogin, "user:checking")
	for range attemptPolicy.Attempts {
		mustCheck(t, s, locked, store.Failed, now)
		mustCheck(t, s, cleared, store.Failed, now)
	}
	mustCheck(t, s, twin, store.Failed, now)
	mustCheck(t, s, failing, store.Failed, now)
	mustCheck(t, s, failing, store.Failed, now)
	mustCheck(t, s, succeeded, store.Failed, now)
	mustCheck(t, s, succeeded, store.Succeeded, now)
	mustCheck(t, s, expired, store.Failed, now.Add(-2*attemptPolicy.Window))
	if err := s.ClearAttempts(cleared.Account); err != nil {
		t.Fatal(err)
	}
	for range attemptPolicy.Attempts {
		if _, wait, err := s.ReserveAttempt(inFlight, now, attemptPolicy); err != nil || wait != 0 {
			t.Fatalf("reserving %s: %v, %v", inFlight.Label, wait, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReserveAttempt(locked, now, attemptPolicy); err == nil {
		t.Error("ReserveAttempt after Close succeeded")
	}

	s = openAt(t, path)
	// Open dropped the expired entry: locked, its twin, failing are left.
	if n := persistedAttempts(t, s.db); n != 3 {
		t.Errorf("%d persisted attempt entries after reopen, want 3", n)
	}
	later := now.Add(time.Minute)
	if _, wait, err := s.ReserveAttempt(locked, later, attemptPolicy); err != nil || wait != attemptPolicy.Window-time.Minute {
		t.Errorf("locked account after reopen: wait %v, %v; want %v", wait, err, attemptPolicy.Window-time.Minute)
	}
	mustCheck(t, s, failing, store.Failed, later) // its third failure: locks
	if _, wait, _ := s.ReserveAttempt(failing, later, attemptPolicy); wait == 0 {
		t.Error("failures were not kept across the reopen")
	}
	mustCheck(t, s, twin, store.Failed, later) // the twin's own count: two
	mustCheck(t, s, twin, store.Abandoned, later)
	for _, a := range []store.Attempt{cleared, succeeded, expired} {
		mustCheck(t, s, a, store.Failed, later)
		mustCheck(t, s, a, store.Failed, later)
		mustCheck(t, s, a, store.Abandoned, later) // two failures: nothing older came back
	}
	for range attemptPolicy.Attempts {
		mustCheck(t, s, inFlight, store.Abandoned, later) // no reservation outlived the process
	}
	list, err := s.ListAttempts(later)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for _, st := range list {
		labels[st.Label] = true
	}
	for _, want := range []string{"user:locked", "key:twin", "key:failing", "user:cleared", "user:ok", "user:expired"} {
		if !labels[want] {
			t.Errorf("ListAttempts after reopen lacks %s: %+v", want, list)
		}
	}
	if _, err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestAttemptWritesCoalesce: a flood of failures is written in a few
// transactions, not one each, and Close writes what is pending.
func TestAttemptWritesCoalesce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	now := utcNow()
	start := time.Now()
	for i := range n {
		mustCheck(t, s, newAttempt(store.AttemptKind(i%2), "user:flood"), store.Failed, now)
	}
	elapsed := time.Since(start)
	w := s.attemptWriter
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, most := w.writes.Load(), int64(2+elapsed/attemptFlushInterval); got > most {
		t.Errorf("%d failures in %v took %d transactions, want at most %d", n, elapsed, got, most)
	}
	s = openAt(t, path)
	if got := persistedAttempts(t, s.db); got != n {
		t.Errorf("%d entries persisted, want %d", got, n)
	}
	if list, _ := s.ListAttempts(now); len(list) != n {
		t.Errorf("%d accounts listed after reopen, want %d", len(list), n)
	}
}
