package caddymodule

import (
	"testing"
	"time"
)

// A key's lastUsed is written in batches: a use is queued at most once per
// lastUsedGranularity, and the flush stores it.
func TestKeyLastUsedBatched(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("ivy", "pw-ivy-123")
	k := g.addKey("ivy", "read")
	clock := time.Now().UTC().Truncate(time.Second)
	g.app.now = func() time.Time { return clock }

	lastUsed := func() time.Time {
		t.Helper()
		stored, err := g.app.store.APIKeyByID(k.ID)
		if err != nil {
			t.Fatal(err)
		}
		return stored.LastUsed
	}
	use := func() {
		t.Helper()
		if w := g.do(withKey("GET", "/app", k.Key)); w.Code != 200 {
			t.Fatalf("key use: %d", w.Code)
		}
	}

	use()
	if !lastUsed().IsZero() {
		t.Fatal("lastUsed was written on the request path")
	}
	g.app.flushKeyUsage()
	if got := lastUsed(); !got.Equal(clock) {
		t.Fatalf("lastUsed after flush = %v, want %v", got, clock)
	}

	// Within the granularity nothing more is queued.
	first := clock
	clock = clock.Add(lastUsedGranularity / 2)
	use()
	g.waitCache()
	use()
	g.app.flushKeyUsage()
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("lastUsed = %v after a use within %s, want it unchanged (%v)", got, lastUsedGranularity, first)
	}

	clock = clock.Add(lastUsedGranularity)
	use()
	g.app.flushKeyUsage()
	if got := lastUsed(); !got.Equal(clock) {
		t.Fatalf("lastUsed = %v after a later use, want %v", got, clock)
	}
}

// Sessions whose refresh tokens expired before any of their access tokens
// could still be valid are pruned; live ones stay.
func TestPruneSessions(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("jay", "pw-jay-123")
	tb := g.login("jay", "pw-jay-123")
	g.app.pruneSessions()
	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Fatalf("live session pruned: %d", w.Code)
	}
	later := time.Now().Add(time.Duration(g.app.RefreshTTL) + time.Duration(g.app.AccessTTL) + time.Hour)
	g.app.now = func() time.Time { return later }
	g.app.pruneSessions()
	if n, err := g.app.store.ListSessions(""); err != nil || len(n) != 0 {
		t.Fatalf("sessions after pruning: %d (%v), want 0", len(n), err)
	}
}
