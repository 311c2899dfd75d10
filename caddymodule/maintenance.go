package caddymodule

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Background upkeep of the store: API keys' lastUsed, written in batches
// rather than on every request, and the pruning of long-dead sessions
// (their spent refresh-token entries would otherwise pile up forever).

const (
	// lastUsedGranularity: a key's lastUsed is kept to within this much.
	lastUsedGranularity = time.Minute
	flushInterval       = 30 * time.Second
	pruneInterval       = time.Hour
)

// keyUsage collects the keys used since the last flush.
type keyUsage struct {
	mu      sync.Mutex
	pending map[string]time.Time // key ID → last use
}

// noteKeyUse records that p's key was used at now, at most once per
// lastUsedGranularity per cached principal. It reports whether it did: p's
// lastUse moved, and the caller puts p back in the cache so that the next
// requests know.
func (a *App) noteKeyUse(p *principal, now time.Time) bool {
	sec := now.Unix()
	if sec-p.lastUse < int64(lastUsedGranularity/time.Second) {
		return false
	}
	p.lastUse = sec
	a.usage.mu.Lock()
	if a.usage.pending == nil {
		a.usage.pending = make(map[string]time.Time)
	}
	a.usage.pending[p.keyID()] = now
	a.usage.mu.Unlock()
	return true
}

// flushKeyUsage writes the collected uses in one transaction.
func (a *App) flushKeyUsage() {
	a.usage.mu.Lock()
	batch := a.usage.pending
	a.usage.pending = nil
	a.usage.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := a.store.TouchAPIKeys(batch); err != nil {
		a.logger.Warn("recording API key use", zap.Int("keys", len(batch)), zap.Error(err))
	}
}

// pruneSessions deletes sessions whose refresh tokens expired longer ago
// than an access token lives: no token of theirs can verify any more.
func (a *App) pruneSessions() {
	cutoff := a.now().Add(-time.Duration(a.AccessTTL) - time.Minute)
	n, err := a.store.DeleteSessionsExpiredBefore(cutoff)
	switch {
	case err != nil:
		a.logger.Warn("pruning expired sessions", zap.Error(err))
	case n > 0:
		a.logger.Info("pruned expired sessions", zap.Int("sessions", n))
	}
}

// maintainer runs the upkeep loop between Start and Stop.
type maintainer struct {
	stop    chan struct{}
	done    chan struct{}
	running atomic.Bool
}

func (a *App) startMaintenance() {
	a.upkeep = &maintainer{stop: make(chan struct{}), done: make(chan struct{})}
	a.upkeep.running.Store(true)
	go func() {
		defer close(a.upkeep.done)
		flush := time.NewTicker(flushInterval)
		defer flush.Stop()
		prune := time.NewTicker(pruneInterval)
		defer prune.Stop()
		a.pruneSessions()
		for {
			select {
			case <-flush.C:
				a.flushKeyUsage()
			case <-prune.C:
				a.pruneSessions()
				a.pruneAndReload()
			case <-a.upkeep.stop:
				return
			}
		}
	}()
}

// stopMaintenance ends the loop and writes what is still pending.
func (a *App) stopMaintenance() {
	if a.upkeep != nil && a.upkeep.running.CompareAndSwap(true, false) {
		close(a.upkeep.stop)
		<-a.upkeep.done
	}
	a.flushKeyUsage()
}
