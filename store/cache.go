package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// caches holds the three read caches of the request path and the protocol
// that keeps them coherent with bbolt.
//
// The cache is never the truth. A lookup that misses reads bbolt and may fill
// the cache; every write path drops the entries it affected after its commit.
//
// The stale-fill race: a reader misses and reads the OLD value from bbolt; a
// writer commits the NEW value and drops the entry (nothing there yet); the
// reader then fills the cache with the OLD value, which would be served until
// evicted — a revoked key that keeps working. To prevent it:
//
//   - a reader loads gen BEFORE its bbolt read, and fills only if gen is
//     still the same, checked while holding mu's read lock;
//   - a writer, after its commit, holds mu's write lock while it deletes the
//     entries, waits until ristretto has applied its buffer, and only then
//     increments gen.
//
// So a fill either happens entirely before the writer's critical section (and
// the writer's Del, queued after the fill's Set in ristretto's ordered buffer,
// removes it) or sees the new gen and is skipped. A skipped fill only costs a
// later miss. gen is one counter for all caches: any write briefly stops
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
// Values in the caches are shared pointers handed to every caller: callers
// must never modify them. Write paths never touch cached values; they decode
// a fresh copy from bbolt inside their transaction.
type caches struct {
	users    *ristretto.Cache[string, *User]
	sessions *ristretto.Cache[string, *Session]
	// keys is keyed by the first 8 bytes of the digest (a string key would
	// allocate on every lookup); a hit counts only if the full Digest in the
	// value matches. Two digests sharing 8 bytes just evict each other.
	keys *ristretto.Cache[uint64, *APIKey]

	gen    atomic.Uint64
	mu     sync.RWMutex
	closed bool // under mu: no fill or delete after close
}

// invalidation lists the cache entries a write transaction affected.
type invalidation struct {
	users    []string
	sessions []string
	keys     []Digest
}

func (inv *invalidation) user(id string)    { inv.users = append(inv.users, id) }
func (inv *invalidation) session(id string) { inv.sessions = append(inv.sessions, id) }
func (inv *invalidation) key(d Digest)      { inv.keys = append(inv.keys, d) }

func (inv *invalidation) empty() bool {
	return len(inv.users) == 0 && len(inv.sessions) == 0 && len(inv.keys) == 0
}

func newCaches(entries int64) (*caches, error) {
	users, err := ristretto.NewCache(cacheConfig[string, *User](entries))
	if err != nil {
		return nil, fmt.Errorf("user cache: %w", err)
	}
	sessions, err := ristretto.NewCache(cacheConfig[string, *Session](entries))
	if err != nil {
		users.Close()
		return nil, fmt.Errorf("session cache: %w", err)
	}
	keys, err := ristretto.NewCache(cacheConfig[uint64, *APIKey](entries))
	if err != nil {
		users.Close()
		sessions.Close()
		return nil, fmt.Errorf("key cache: %w", err)
	}
	return &caches{users: users, sessions: sessions, keys: keys}, nil
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

// keySlot is the cache key of a digest: its first 8 bytes.
func keySlot(d *Digest) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// generation is loaded by a reader before its bbolt read; see caches.
func (c *caches) generation() uint64 { return c.gen.Load() }

func (c *caches) fillUser(gen uint64, u *User) {
	c.mu.RLock()
	if !c.closed && c.gen.Load() == gen {
		u.pack()
		c.users.Set(u.ID, u, 1)
	}
	c.mu.RUnlock()
}

func (c *caches) fillSession(gen uint64, sess *Session) {
	c.mu.RLock()
	if !c.closed && c.gen.Load() == gen {
		sess.pack()
		c.sessions.Set(sess.ID, sess, 1)
	}
	c.mu.RUnlock()
}

func (c *caches) fillKey(gen uint64, k *APIKey) {
	c.mu.RLock()
	if !c.closed && c.gen.Load() == gen {
		k.pack()
		c.keys.Set(keySlot(&k.Digest), k, 1)
	}
	c.mu.RUnlock()
}

// invalidate drops the entries of inv; called after the commit.
func (c *caches) invalidate(inv *invalidation) {
	if inv.empty() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.gen.Add(1) // last: see caches
	if c.closed {
		return
	}
	for _, id := range inv.users {
		c.users.Del(id)
	}
	for _, id := range inv.sessions {
		c.sessions.Del(id)
	}
	for i := range inv.keys {
		c.keys.Del(keySlot(&inv.keys[i]))
	}
	if len(inv.users) > 0 {
		c.users.Wait()
	}
	if len(inv.sessions) > 0 {
		c.sessions.Wait()
	}
	if len(inv.keys) > 0 {
		c.keys.Wait()
	}
}

// wait blocks until buffered Sets have landed (tests only: it makes a fill
// observable).
func (c *caches) wait() {
	c.users.Wait()
	c.sessions.Wait()
	c.keys.Wait()
}

func (c *caches) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.users.Close()
	c.sessions.Close()
	c.keys.Close()
}
