// Package bbolt is authgate's embedded store: the store.Store interface
// over one bbolt file, the default backend. Users are read through a
// ristretto cache (cache.go); the buckets and what they hold are declared
// once (buckets.go), with the migrations between layouts (schema.go).
//
// bbolt is the truth: every write is one transaction that is fsynced before
// the call returns, and the cache is only ever dropped after a commit, never
// written by a write path. The one exception is the lockout's counters
// (attempts.go): counted in memory and written through in batches, so a
// crash can lose the last moments of counting, never a credential change.
package bbolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/authgate/authgate/store"
)

// Interface guards
var _ store.Store = (*Store)(nil)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for the file lock another process
	// holds. Default 1s; bbolt's "wait forever" is never used.
	Timeout time.Duration
	// CacheEntries is the maximum number of users cached. Default 100_000.
	CacheEntries int64
	// AttemptEntries is the maximum number of accounts of each kind the
	// lockout counts (store.AttemptTracker). Default 100_000.
	AttemptEntries int
}

// Store is an open authgate database file. It is safe for concurrent use.
// Close must be called once every other call has returned.
type Store struct {
	db    *bolt.DB
	path  string
	cache *caches

	// legacyKeys is set once any imported key without our checksum is
	// stored: only then must a key failing the checksum be looked up.
	legacyKeys atomic.Bool

	// attempts are the lockout's counters, written through to the
	// attempts bucket by attemptWriter (attempts.go).
	attempts      *store.AttemptTracker
	attemptWriter *attemptWriter

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error

	// testHookAfterMissRead, when set by a test, runs between the bbolt read
	// of a cache miss and the cache fill, to stage the stale-fill race.
	testHookAfterMissRead func()
}

// Open opens (creating if needed) the database at path. The parent directory
// is created 0700 and the file 0600: it holds signing key material.
// If another process holds the file, Open gives up after opts.Timeout with an
// error wrapping store.ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("store: %w: empty database path", store.ErrInvalid)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = 100_000
	}
	if opts.AttemptEntries <= 0 {
		opts.AttemptEntries = 100_000
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: creating directory for %s: %w", path, err)
	}
	// NoSync stays false: a write that returned has been fsynced.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("database %s is %w", path, store.ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	if err := db.Update(prepareSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	c, err := newCaches(opts.CacheEntries)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	st := &Store{db: db, path: path, cache: c, attempts: store.NewAttemptTracker(opts.AttemptEntries)}
	if err := db.View(func(tx *bolt.Tx) error {
		st.legacyKeys.Store(bucketMeta.of(tx).Get(keyHasLegacyKeys) != nil)
		return nil
	}); err != nil {
		st.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	now := utcNow()
	states, err := loadAttempts(db, now)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("store: %s: loading the lockout's counters: %w", path, err)
	}
	st.attempts.Load(states, now)
	// The queue may hold every counted account of both kinds.
	st.attemptWriter = newAttemptWriter(db, 2*opts.AttemptEntries)
	st.attempts.OnChange = st.attemptWriter.record
	return st, nil
}

// HasLegacyKeys reports whether any imported legacy key (no prefix, no
// checksum) was ever stored.
func (s *Store) HasLegacyKeys() bool { return s.legacyKeys.Load() }

// Close writes the lockout's pending counters, then closes the file and
// the caches. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		// The counters while the file is open; then bbolt: Close waits
		// for running transactions, so no write can commit after the
		// caches are gone.
		werr := s.closeAttempts()
		s.closeErr = errors.Join(werr, s.db.Close())
		s.cache.close()
	})
	return s.closeErr
}

// Health is nil while the file is open: bbolt answers from it.
func (s *Store) Health() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// Generation is a counter that moves after every write that changed a user,
// session, API key or signing key record (except TouchAPIKeys: see there;
// the lockout's counters never move it). A decision
// made from records read after loading Generation is still right as long as
// Generation has not moved since, or ChangedSince says its records were
// not written since: the request path uses it to reuse its cached decision
// about a credential without re-reading the records.
func (s *Store) Generation() uint64 { return s.cache.generation() }

// ChangedSince reports whether the user, session or API key with these IDs
// may have been written after Generation gen ("" names none). False means
// they certainly were not: a decision made from them at gen still holds.
// True may also mean that another record sharing a slot was written.
func (s *Store) ChangedSince(gen uint64, userID, sessionID, keyID string) bool {
	l := s.cache.changes
	return l.ChangedSince(gen, userID) || l.ChangedSince(gen, sessionID) || l.ChangedSince(gen, keyID)
}

// SigningKeysChangedSince reports whether a signing key was added, retired
// or deleted after Generation gen (another caller rotated: the issuer must
// be rebuilt).
func (s *Store) SigningKeysChangedSince(gen uint64) bool {
	return s.cache.signingGen.Load() > gen
}

// WaitCache blocks until the cache's buffered fills have landed. Only
// tests and benchmarks need it: it makes a cache hit deterministic.
func (s *Store) WaitCache() { s.cache.wait() }

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Backend names this backend and the file it opened.
func (s *Store) Backend() (kind, location string) { return "bbolt", s.path }

// update runs fn in one write transaction, committed and fsynced when fn
// returns nil, and then drops every cache entry fn recorded in inv.
// Invalidation also runs when the commit failed: dropping an entry is never
// wrong, only a miss.
func (s *Store) update(fn func(tx *bolt.Tx, inv *invalidation) error) error {
	var inv invalidation
	err := s.db.Update(func(tx *bolt.Tx) error { return fn(tx, &inv) })
	s.cache.invalidate(&inv)
	return err
}

// getJSON decodes the value at key into v, or returns store.ErrNotFound.
func getJSON(b *bolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return store.ErrNotFound
	}
	return decode(raw, v)
}

// decode unmarshals a stored value. Decoding copies: nothing of bbolt's
// memory map, valid only inside the transaction, is kept.
func decode(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding stored record: %w", err)
	}
	return nil
}

// putJSON encodes v and stores it at key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// utcNow is the store's clock: UTC, without a monotonic reading, so values
// compare equal after a JSON round trip.
func utcNow() time.Time { return time.Now().UTC() }

// pairKey builds the "owner/child" keys of the listing indexes.
func pairKey(owner, child string) []byte {
	k := make([]byte, 0, len(owner)+1+len(child))
	k = append(k, owner...)
	k = append(k, '/')
	return append(k, child...)
}
