package auth

import (
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// A key's lastUsed is written in batches: a use is queued at most once per
// lastUsedGranularity, and the flush stores it.
func TestKeyLastUsedBatched(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("ivy", "pw-ivy-123")
	k, key, _ := e.addKey(u, store.PermRead)

	lastUsed := func() time.Time {
		t.Helper()
		stored, err := e.st.APIKeyByID(k.ID)
		if err != nil {
			t.Fatal(err)
		}
		return stored.LastUsed
	}
	use := func() {
		t.Helper()
		if _, err := e.svc.AuthenticateKey(key); err != nil {
			t.Fatalf("key use: %v", err)
		}
	}

	use()
	if !lastUsed().IsZero() {
		t.Fatal("lastUsed was written on the request path")
	}
	e.svc.FlushKeyUsage()
	if got := lastUsed(); !got.Equal(e.clock.now()) {
		t.Fatalf("lastUsed after flush = %v, want %v", got, e.clock.now())
	}

	// Within the granularity nothing more is queued.
	first := e.clock.now()
	e.clock.add(lastUsedGranularity / 2)
	use()
	e.wait()
	use()
	e.svc.FlushKeyUsage()
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("lastUsed = %v after a use within %s, want it unchanged (%v)", got, lastUsedGranularity, first)
	}

	e.clock.add(lastUsedGranularity)
	use()
	e.svc.FlushKeyUsage()
	if got := lastUsed(); !got.Equal(e.clock.now()) {
		t.Fatalf("lastUsed = %v after a later use, want %v", got, e.clock.now())
	}
}

// Sessions whose refresh tokens expired before any of their access tokens
// could still be valid are pruned; live ones stay.
func TestPruneSessions(t *testing.T) {
	e := newEnv(t)
	e.addUser("jay", "pw-jay-123")
	pair := e.login("jay", "pw-jay-123")
	e.svc.PruneSessions()
	if _, err := e.svc.AuthenticateBearer(pair.Access); err != nil {
		t.Fatalf("live session pruned: %v", err)
	}
	e.clock.add(e.svc.Config().RefreshTTL + e.svc.Config().AccessTTL + time.Hour)
	e.svc.PruneSessions()
	if n, err := e.st.ListSessions(""); err != nil || len(n) != 0 {
		t.Fatalf("sessions after pruning: %d (%v), want 0", len(n), err)
	}
}
