package caddymodule

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// On a reload Caddy runs the replaced config's Cleanup as soon as its HTTP
// servers have begun their graceful shutdown, not once they have drained:
// requests those servers had already read still run the old handler and
// still authenticate against the old app's credential caches. ristretto's
// Close is not safe against a concurrent Set (send on closed channel), so
// Cleanup of an app that served must leave its caches open for a while.
func TestCleanupLeavesCachesToDrainingRequests(t *testing.T) {
	for round := range 8 {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		app := &App{DB: filepath.Join(t.TempDir(), fmt.Sprintf("authgate-%d.db", round))}
		// Every call a minute later: each cached key use records its use
		// again, and so Sets the cache, as fast as it can.
		var minutes atomic.Int64
		start := time.Now()
		app.now = func() time.Time { return start.Add(time.Duration(minutes.Add(1)) * time.Minute) }
		if err := app.Provision(ctx); err != nil {
			cancel()
			t.Fatalf("provision: %v", err)
		}
		if err := app.Start(); err != nil {
			t.Fatalf("start: %v", err)
		}
		u := &store.User{Username: "drain"}
		if err := app.store.CreateUser(u); err != nil {
			t.Fatal(err)
		}
		key, _ := secret.NewSecret(secret.KeyPrefix)
		if err := app.store.CreateAPIKey(&store.APIKey{Name: "k", OwnerID: u.ID, Permissions: store.PermRead, Digest: store.DigestOf(key)}); err != nil {
			t.Fatal(err)
		}
		svc := app.svc
		var (
			stop   atomic.Bool
			panics atomic.Int64
			first  atomic.Value
			wg     sync.WaitGroup
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if r := recover(); r != nil {
						panics.Add(1)
						first.CompareAndSwap(nil, fmt.Sprint(r))
					}
				}()
				for !stop.Load() {
					_, _ = svc.AuthenticateKey(key)
				}
			}()
		}
		if err := app.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := app.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		stop.Store(true)
		wg.Wait()
		cancel()
		if n := panics.Load(); n > 0 {
			t.Fatalf("round %d: %d requests panicked using the caches while Cleanup ran (%v): a draining server's requests would be dropped", round, n, first.Load())
		}
	}
}
