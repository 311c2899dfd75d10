// Package store keeps authgate's users, API keys, sessions and signing keys
// in one bbolt file; users are read through a ristretto cache (cache.go).
//
// bbolt is the truth: every write is one transaction that is fsynced before
// the call returns, and the cache is only ever dropped after a commit, never
// written by a write path.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors. Callers test them with errors.Is; the returned errors
// wrap them with context (never a secret).
var (
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrInvalid        = errors.New("invalid")
	ErrLocked         = errors.New("locked by another process")
	ErrSchemaTooNew   = errors.New("database schema is newer than this build understands")
	ErrRefreshReused  = errors.New("refresh token reused")
	ErrSessionRevoked = errors.New("session revoked or expired")
	ErrMalformed      = errors.New("malformed")
)

// Every bucket of the file, declared here and nowhere else. Index buckets map
// a lookup key to an ID (or hold "owner/ID" keys with empty values so a
// prefix scan lists the owner's records).
var (
	bucketMeta             = []byte("meta")
	bucketUsers            = []byte("users")              // user ID → JSON User
	bucketUsersByName      = []byte("users_by_name")      // login key of the username (logins.go) → user ID
	bucketUsersByEmail     = []byte("users_by_email")     // login key of the email → user ID
	bucketKeys             = []byte("keys")               // key ID → JSON APIKey
	bucketKeysByDigest     = []byte("keys_by_digest")     // 32-byte key digest → key ID
	bucketKeysByOwner      = []byte("keys_by_owner")      // userID "/" keyID → empty
	bucketKeysLastUsed     = []byte("keys_last_used")     // key ID → last use, 8-byte big-endian Unix nanoseconds
	bucketSessions         = []byte("sessions")           // session ID → JSON Session
	bucketSessionsByUser   = []byte("sessions_by_user")   // userID "/" sessionID → empty
	bucketRefresh          = []byte("refresh")            // 32-byte refresh digest → JSON refreshEntry
	bucketRefreshBySession = []byte("refresh_by_session") // sessionID "/" 32-byte digest → empty
	bucketSigningKeys      = []byte("signing_keys")       // kid → JSON SigningKey

	allBuckets = [][]byte{
		bucketMeta,
		bucketUsers, bucketUsersByName, bucketUsersByEmail,
		bucketKeys, bucketKeysByDigest, bucketKeysByOwner, bucketKeysLastUsed,
		bucketSessions, bucketSessionsByUser, bucketRefresh, bucketRefreshBySession,
		bucketSigningKeys,
	}
)

// Keys of the meta bucket: the layout version as decimal, and a marker
// that legacy keys were imported.
var (
	keySchemaVersion = []byte("schema_version")
	keyHasLegacyKeys = []byte("has_legacy_keys")
)

// migrations[i] upgrades a file from schema version i to i+1; all pending
// ones run in the same transaction as the version stamp, so a crash leaves
// the file either fully old or fully new. The buckets of allBuckets are
// created before them on every open, so a migration only moves data.
// Append here, never reorder or remove.
var migrations = []func(tx *bbolt.Tx) error{
	0: func(*bbolt.Tx) error { return nil }, // 0 → 1: a new file, buckets only
	1: reindexLogins,                        // 1 → 2: login keys by PRECIS, not strings.ToLower (logins.go)
}

// schemaVersion is the layout this build writes.
var schemaVersion = uint64(len(migrations))

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for the file lock another process
	// holds. Default 1s; bbolt's "wait forever" is never used.
	Timeout time.Duration
	// CacheEntries is the maximum number of users cached. Default 100_000.
	CacheEntries int64
}

// Store is an open authgate database. It is safe for concurrent use.
// Close must be called once every other call has returned.
type Store struct {
	db    *bbolt.DB
	path  string
	cache *caches

	// legacyKeys is set once any imported key without our checksum is
	// stored: only then must a key failing the checksum be looked up.
	legacyKeys atomic.Bool

	closeOnce sync.Once
	closeErr  error

	// testHookAfterMissRead, when set by a test, runs between the bbolt read
	// of a cache miss and the cache fill, to stage the stale-fill race.
	testHookAfterMissRead func()
}

// Open opens (creating if needed) the database at path. The parent directory
// is created 0700 and the file 0600: it holds signing key material.
// If another process holds the file, Open gives up after opts.Timeout with an
// error wrapping ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("store: %w: empty database path", ErrInvalid)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = 100_000
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: creating directory for %s: %w", path, err)
	}
	// NoSync stays false: a write that returned has been fsynced.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("database %s is %w", path, ErrLocked)
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
	st := &Store{db: db, path: path, cache: c}
	if err := db.View(func(tx *bbolt.Tx) error {
		st.legacyKeys.Store(tx.Bucket(bucketMeta).Get(keyHasLegacyKeys) != nil)
		return nil
	}); err != nil {
		st.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return st, nil
}

// HasLegacyKeys reports whether any imported legacy key (no prefix, no
// checksum) was ever stored.
func (s *Store) HasLegacyKeys() bool { return s.legacyKeys.Load() }

// prepareSchema refuses a file written by a newer build, creates missing
// buckets, runs pending migrations and stamps the version, in one
// transaction.
func prepareSchema(tx *bbolt.Tx) error {
	var have uint64
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchemaVersion); v != nil {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("schema_version %q: %w", v, ErrMalformed)
			}
			have = n
		}
	}
	if have > schemaVersion {
		return fmt.Errorf("%w: file has schema version %d, this build knows up to %d",
			ErrSchemaTooNew, have, schemaVersion)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	for v := have; v < schemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
		}
	}
	if have == schemaVersion {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.FormatUint(schemaVersion, 10)))
}

// Close closes the file and the caches. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// bbolt first: Close waits for running transactions, so no write
		// can commit after the caches are gone.
		s.closeErr = s.db.Close()
		s.cache.close()
	})
	return s.closeErr
}

// Generation is a counter that moves after every write that changed a user,
// session or API key record (except TouchAPIKeys: see there). A decision
// made from records read after loading Generation is still right as long as
// Generation has not moved since, or ChangedSince says its records were
// not written since: the request path uses it to reuse its cached decision
// about a credential without re-reading the records.
func (s *Store) Generation() uint64 { return s.cache.generation() }

// WaitCache blocks until the cache's buffered fills have landed. Only
// tests and benchmarks need it: it makes a cache hit deterministic.
func (s *Store) WaitCache() { s.cache.wait() }

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// WriteBackup writes a consistent copy of the whole database to w (a read
// transaction: writers are not blocked) and returns the bytes written.
// The copy contains signing keys: create its file 0600.
func (s *Store) WriteBackup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// update runs fn in one write transaction, committed and fsynced when fn
// returns nil, and then drops every cache entry fn recorded in inv.
// Invalidation also runs when the commit failed: dropping an entry is never
// wrong, only a miss.
func (s *Store) update(fn func(tx *bbolt.Tx, inv *invalidation) error) error {
	var inv invalidation
	err := s.db.Update(func(tx *bbolt.Tx) error { return fn(tx, &inv) })
	s.cache.invalidate(&inv)
	return err
}

// getJSON decodes the value at key into v, or returns ErrNotFound.
func getJSON(b *bbolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return ErrNotFound
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
func putJSON(b *bbolt.Bucket, key []byte, v any) error {
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
