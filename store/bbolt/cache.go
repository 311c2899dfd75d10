package bbolt

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/authgate/authgate/store"
)

// caches holds the user cache, the change log, and the protocol that keeps
// both coherent with bbolt.
//
// Only users are cached here: the request path caches its decisions about
// credentials itself (caddymodule), each resting on a user that many
// credentials share, and on a session or key of its own. Caching sessions
// and keys as well would keep a second copy of every credential's records
// in memory for the garbage collector to walk, only to speed up the rare
// decision that must be rebuilt.
//
// The cache is never the truth. A lookup that misses reads bbolt and may fill
// the cache; every write path drops the entries it affected after its commit.
//
// The stale-fill race: a reader misses and reads the OLD value from bbolt; a
// writer commits the NEW value and drops the entry (nothing there yet); the
// reader then fills the cache with the OLD value, which would be served until
// evicted — a disabled user who keeps working. To prevent it:
//
//   - a reader loads gen BEFORE its bbolt read, and fills only if gen is
//     still the same, checked while holding mu's read lock;
//   - a writer, after its commit, holds mu's write lock while it deletes the
//     entries, waits until ristretto has applied its buffer, marks the
//     records in the change log, and only then increments gen.
//
// So a fill either happens entirely before the writer's critical section (and
// the writer's Del, queued after the fill's Set in ristretto's ordered buffer,
// removes it) or sees the new gen and is skipped. A skipped fill only costs a
// later miss. gen is one counter for all records: any write briefly stops
// fills, which is cheap because writes are rare next to reads.
//
// Why wait before incrementing: ristretto applies a new key's Set later, from
// its buffer, while Del removes at once and again from the buffer. An old
// fill's Set can thus land after the writer's immediate Del and live until
// the buffered Del: a moment in which a reader could be handed the old
// record. Once gen has moved, no such moment is left, so anything decided
// from records read after loading the new gen is current (Store.Generation).
//
// Ristretto's Set is asynchronous and may be dropped; that is fine, the next
// lookup misses and reads bbolt.
//
// Values in the cache are shared pointers handed to every caller: callers
// must never modify them. Write paths never touch cached values; they decode
// a fresh copy from bbolt inside their transaction.
type caches struct {
	users   *ristretto.Cache[string, *store.User]
	changes *store.ChangeLog

	gen atomic.Uint64
	// signingGen is the generation of the last signing-key write
	// (Store.SigningKeysChangedSince), stored before gen moves to it.
	signingGen atomic.Uint64
	mu         sync.RWMutex
	closed     bool // under mu: no fill or delete after close

	// testHookBeforeGenMove, when set by a test, runs in invalidate between
	// marking the change log and moving gen.
	testHookBeforeGenMove func()
}

// invalidation lists the IDs of the records a write transaction changed,
// and whether it added, retired or deleted a signing key.
type invalidation struct {
	users       []string
	sessions    []string
	keys        []string
	signingKeys bool
}

func (inv *invalidation) user(id string)    { inv.users = append(inv.users, id) }
func (inv *invalidation) session(id string) { inv.sessions = append(inv.sessions, id) }
func (inv *invalidation) key(id string)     { inv.keys = append(inv.keys, id) }

func (inv *invalidation) empty() bool {
	return len(inv.users) == 0 && len(inv.sessions) == 0 && len(inv.keys) == 0 && !inv.signingKeys
}

func newCaches(entries int64) (*caches, error) {
	users, err := ristretto.NewCache(cacheConfig[string, *store.User](entries))
	if err != nil {
		return nil, fmt.Errorf("user cache: %w", err)
	}
	return &caches{users: users, changes: store.NewChangeLog()}, nil
}

// cacheConfig counts entries, not bytes: every Set costs 1 and ristretto's
// own per-item overhead is not added, so MaxCost is the entry limit.
func cacheConfig[K ristretto.Key, V any](entries int64) *ristretto.Config[K, V] {
	return &ristretto.Config[K, V]{
		NumCounters:        10 * entries, // ristretto's advice: 10× the items
		MaxCost:            entries,
		BufferItems:        64,
		IgnoreInternalCost: true,
	}
}

// generation is loaded by a reader before its bbolt read; see caches.
func (c *caches) generation() uint64 { return c.gen.Load() }

func (c *caches) fillUser(gen uint64, u *store.User) {
	c.mu.RLock()
	if !c.closed && c.gen.Load() == gen {
		packUser(u)
		c.users.Set(u.ID, u, 1)
	}
	c.mu.RUnlock()
}

// invalidate drops the cached users of inv and marks all its records in
// the change log; called after the commit.
func (c *caches) invalidate(inv *invalidation) {
	if inv.empty() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && len(inv.users) > 0 {
		for _, id := range inv.users {
			c.users.Del(id)
		}
		c.users.Wait()
	}
	// Last, in this order: see caches and store.ChangeLog. Slots only move
	// forward: writers are serialised by mu.
	next := c.gen.Load() + 1
	c.changes.Mark(next, inv.users...)
	c.changes.Mark(next, inv.sessions...)
	c.changes.Mark(next, inv.keys...)
	if inv.signingKeys {
		c.signingGen.Store(next)
	}
	if c.testHookBeforeGenMove != nil {
		c.testHookBeforeGenMove()
	}
	c.gen.Store(next)
}

// wait blocks until buffered Sets have landed (tests only: it makes a fill
// observable).
func (c *caches) wait() { c.users.Wait() }

func (c *caches) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.users.Close()
}
