package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// Background upkeep of the store: API keys' lastUsed, written in batches
// rather than on every request, the pruning of long-dead sessions (their
// spent refresh-token entries would otherwise pile up forever), and of
// signing keys no token can need any more.

const (
	// lastUsedGranularity: a key's lastUsed is kept to within this much.
	lastUsedGranularity = time.Minute
	flushInterval       = 30 * time.Second
	pruneInterval       = time.Hour
	// signingKeysInterval is how soon a rotation on another instance is
	// picked up without a token asking for it.
	signingKeysInterval = time.Second
)

// keyUsage collects the keys and browser sessions used since the last
// flush.
type keyUsage struct {
	mu       sync.Mutex
	pending  map[string]time.Time // key ID → last use
	sessions map[string]time.Time // browser session ID → last use
}

// noteKeyUse records that p's key was used at now (see noteUse).
func (s *Service) noteKeyUse(p *Principal, now time.Time) bool {
	return s.noteUse(p, &s.usage.pending, p.KeyID(), now)
}

// noteUse records a use of id at now in *pending, at most once per
// lastUsedGranularity per cached principal. It reports whether it did: p's
// lastUse moved, and the caller puts p back in the cache so that the next
// requests know.
func (s *Service) noteUse(p *Principal, pending *map[string]time.Time, id string, now time.Time) bool {
	sec := now.Unix()
	if sec-p.lastUse < int64(lastUsedGranularity/time.Second) {
		return false
	}
	p.lastUse = sec
	s.usage.mu.Lock()
	if *pending == nil {
		*pending = make(map[string]time.Time)
	}
	(*pending)[id] = now
	s.usage.mu.Unlock()
	return true
}

// FlushKeyUsage writes the collected uses of keys and browser sessions,
// a batch of each. A batch that fails is kept for the next flush.
func (s *Service) FlushKeyUsage() {
	s.usage.mu.Lock()
	keys, sessions := s.usage.pending, s.usage.sessions
	s.usage.pending, s.usage.sessions = nil, nil
	s.usage.mu.Unlock()
	if len(keys) > 0 {
		if err := s.st.TouchAPIKeys(keys); err != nil {
			s.logger.Warnw("recording API key use", "keys", len(keys), "error", err)
		}
	}
	if len(sessions) > 0 {
		if err := s.st.TouchSessions(sessions); err != nil {
			s.logger.Warnw("recording browser session use", "sessions", len(sessions), "error", err)
			s.usage.mu.Lock()
			// Keep them: an idle timeout must not end a session that was
			// used, because its use could not be written.
			for id, t := range sessions {
				if s.usage.sessions == nil {
					s.usage.sessions = make(map[string]time.Time)
				}
				if t.After(s.usage.sessions[id]) {
					s.usage.sessions[id] = t
				}
			}
			s.usage.mu.Unlock()
		}
	}
}

// PruneSessions deletes sessions whose refresh tokens expired longer ago
// than an access token lives: no token of theirs can verify any more.
func (s *Service) PruneSessions() {
	cutoff := s.now().Add(-s.cfg.AccessTTL - time.Minute)
	n, err := s.st.DeleteSessionsExpiredBefore(cutoff)
	switch {
	case err != nil:
		s.logger.Warnw("pruning expired sessions", "error", err)
	case n > 0:
		s.logger.Infow("pruned expired sessions", "sessions", n)
	}
}

// maintainer runs the upkeep loop between Start and Stop.
type maintainer struct {
	stop    chan struct{}
	done    chan struct{}
	running atomic.Bool
}

// Start begins the upkeep loop.
func (s *Service) Start() {
	m := &maintainer{stop: make(chan struct{}), done: make(chan struct{})}
	m.running.Store(true)
	s.upkeep = m
	go func() {
		defer close(m.done)
		flush := time.NewTicker(flushInterval)
		defer flush.Stop()
		prune := time.NewTicker(pruneInterval)
		defer prune.Stop()
		keys := time.NewTicker(signingKeysInterval)
		defer keys.Stop()
		s.PruneSessions()
		for {
			select {
			case <-keys.C:
				s.reloadIfRotated()
			case <-flush.C:
				s.FlushKeyUsage()
			case <-prune.C:
				s.PruneSessions()
				s.pruneAndReload()
			case <-m.stop:
				return
			}
		}
	}()
}

// Stop ends the loop and writes what is still pending.
func (s *Service) Stop() {
	if m := s.upkeep; m != nil && m.running.CompareAndSwap(true, false) {
		close(m.stop)
		<-m.done
	}
	s.FlushKeyUsage()
}
