package storetest

// This file is Memory, an in-memory store.Store for fast unit tests of the
// service (internal/auth: a fake store and a fake clock, no files) and for
// tests of this suite itself. It is not a production backend: nothing is
// durable, everything is gone with the value.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/store"
)

// Interface guards
var _ store.Store = (*Memory)(nil)

// ErrMemoryClosed is what a Memory returns once it is closed.
var ErrMemoryClosed = errors.New("storetest: memory store is closed")

// memoryInstances numbers the Memory values of the process: each one's
// Backend location.
var memoryInstances atomic.Uint64

// Memory is an in-memory store.Store, for tests only (see the top of this
// file). The zero value is not ready: use NewMemory.
//
// It mirrors store/bbolt's observable behaviour: the same validation, ID
// generation, sentinel errors (bare where bbolt's are bare, wrapped with
// the same context where bbolt wraps them), the login namespace, session
// budgets, refresh rotation with reuse detection, sort orders, and the
// change-feed protocol of bbolt's cache.go: a write marks its records in a
// store.ChangeLog before it publishes the new Generation; inserts and
// TouchAPIKeys mark nothing, as in bbolt; a signing-key write marks the
// signing keys (SigningKeysChangedSince) and moves Generation. Its data is
// laid out as bbolt's buckets are, as maps, so each operation reads like
// its bbolt counterpart.
//
// The lockout's counters are a store.AttemptTracker of
// MemoryAttemptEntries accounts per kind, as bbolt counts them (without
// bbolt's persistence: they are gone with the value).
//
// Concurrency: one sync.RWMutex. Every write runs under the write lock as
// one transaction (memTx) that undoes its changes when it fails or panics,
// so every operation, batches included, is atomic. The callbacks of
// UpdateUser, UpdateAPIKey and EnsureSigningKey run under that lock: they
// must not call the store.
//
// Copies: records are copied in on every write and out on every read
// (UserByID too), so no caller ever shares a stored value. A copy is what
// bbolt's JSON round trip yields: slices copied (empty ones nil), times
// without their monotonic clock reading.
//
// Closing: after Close every operation returns ErrMemoryClosed, except
// Generation, ChangedSince, HasLegacyKeys and Backend, which still answer,
// and Close itself, which stays nil.
type Memory struct {
	// name is the Backend location: "instance-N", unique in the process
	// (one open store is shared by its (kind, location)).
	name string

	// changes and gen are the change feed, read without mu (cache.go's
	// protocol); they are written only under mu's write lock.
	changes *store.ChangeLog
	gen     atomic.Uint64
	// signingGen is the Generation of the last signing-key write, stored
	// before gen (the same order as the change log's marks).
	signingGen atomic.Uint64
	// legacyKeys is set once a key with Legacy is stored.
	legacyKeys atomic.Bool

	// attempts are the lockout's counters, under their own lock.
	attempts *store.AttemptTracker

	mu     sync.RWMutex
	closed bool

	// The buckets of store/bbolt/buckets.go, as maps. Values are never
	// modified in place: a write puts a new copy (memTx relies on it).
	users            map[string]*store.User               // user ID → record
	usersByName      map[string]string                    // store.LoginKey of the username → user ID
	usersByEmail     map[string]string                    // store.LoginKey of the email → user ID
	keys             map[string]*store.APIKey             // key ID → record
	keysByDigest     map[store.Digest]string              // key digest → key ID
	keysByOwner      map[string]map[string]struct{}       // user ID → key IDs
	keysLastUsed     map[string]time.Time                 // key ID → last use (TouchAPIKeys)
	sessions         map[string]*store.Session            // session ID → record
	sessionsLastSeen map[string]time.Time                 // session ID → last use (TouchSessions)
	sessionsByUser   map[string]map[string]struct{}       // user ID → session IDs
	refresh          map[store.Digest]*refreshEntry       // refresh digest → entry
	refreshBySession map[string]map[store.Digest]struct{} // session ID → refresh digests
	signingKeys      map[string]*store.SigningKey         // kid → key
}

// refreshEntry is one refresh token, stored under its digest. Spent
// entries are kept: presenting one again is how theft is detected.
type refreshEntry struct {
	SID   string    `json:"sid"`
	Spent bool      `json:"spent"`
	Exp   time.Time `json:"exp"`
}

// MemoryAttemptEntries is how many accounts of each kind a Memory's
// lockout counts (bbolt's default, Options.AttemptEntries).
const MemoryAttemptEntries = 100_000

// NewMemory returns a new, empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		name:             fmt.Sprintf("instance-%d", memoryInstances.Add(1)),
		changes:          store.NewChangeLog(),
		attempts:         store.NewAttemptTracker(MemoryAttemptEntries),
		users:            map[string]*store.User{},
		usersByName:      map[string]string{},
		usersByEmail:     map[string]string{},
		keys:             map[string]*store.APIKey{},
		keysByDigest:     map[store.Digest]string{},
		keysByOwner:      map[string]map[string]struct{}{},
		keysLastUsed:     map[string]time.Time{},
		sessions:         map[string]*store.Session{},
		sessionsLastSeen: map[string]time.Time{},
		sessionsByUser:   map[string]map[string]struct{}{},
		refresh:          map[store.Digest]*refreshEntry{},
		refreshBySession: map[string]map[store.Digest]struct{}{},
		signingKeys:      map[string]*store.SigningKey{},
	}
}

// ---- Transactions, change feed, lifecycle ----

// memTx is one write: its undo log and the IDs of the records it changed
// (bbolt's invalidation), and whether it wrote a signing key.
type memTx struct {
	undo                  []func()
	users, sessions, keys []string
	signingKeys           bool
}

func (tx *memTx) user(id string)    { tx.users = append(tx.users, id) }
func (tx *memTx) session(id string) { tx.sessions = append(tx.sessions, id) }
func (tx *memTx) key(id string)     { tx.keys = append(tx.keys, id) }

// put sets mp[k] = v, undoably.
func put[K comparable, V any](tx *memTx, mp map[K]V, k K, v V) {
	old, had := mp[k]
	mp[k] = v
	tx.undo = append(tx.undo, func() {
		if had {
			mp[k] = old
		} else {
			delete(mp, k)
		}
	})
}

// del deletes mp[k], undoably.
func del[K comparable, V any](tx *memTx, mp map[K]V, k K) {
	old, had := mp[k]
	if !had {
		return
	}
	delete(mp, k)
	tx.undo = append(tx.undo, func() { mp[k] = old })
}

// addChild adds child to owner's set in a listing index, undoably.
func addChild[C comparable](tx *memTx, index map[string]map[C]struct{}, owner string, child C) {
	set := index[owner]
	if set == nil {
		set = map[C]struct{}{}
		put(tx, index, owner, set)
	}
	put(tx, set, child, struct{}{})
}

// delChild removes child from owner's set in a listing index, undoably.
func delChild[C comparable](tx *memTx, index map[string]map[C]struct{}, owner string, child C) {
	set := index[owner]
	if set == nil {
		return
	}
	del(tx, set, child)
	if len(set) == 0 {
		del(tx, index, owner)
	}
}

// children lists owner's set in a listing index, sorted: collected first,
// so the caller may delete while it walks them.
func children[C cmp.Ordered](index map[string]map[C]struct{}, owner string) []C {
	return slices.Sorted(maps.Keys(index[owner]))
}

// update runs fn as one write under the write lock. When fn fails (or
// panics) its changes are undone; when it succeeds its records are marked
// in the change log and then Generation moves (cache.go's order).
func (m *Memory) update(fn func(tx *memTx) error) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrMemoryClosed
	}
	tx := &memTx{}
	committed := false
	defer func() {
		if !committed {
			for _, undo := range slices.Backward(tx.undo) {
				undo()
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	if len(tx.users)+len(tx.sessions)+len(tx.keys) > 0 || tx.signingKeys {
		next := m.gen.Load() + 1
		m.changes.Mark(next, tx.users...)
		m.changes.Mark(next, tx.sessions...)
		m.changes.Mark(next, tx.keys...)
		if tx.signingKeys {
			m.signingGen.Store(next)
		}
		m.gen.Store(next)
	}
	return nil
}

// view runs fn under the read lock.
func (m *Memory) view(fn func() error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrMemoryClosed
	}
	return fn()
}

// Health is nil until Close.
func (m *Memory) Health() error { return m.view(func() error { return nil }) }

// Generation is a counter that moves after every write that changed a
// user, session, API key or signing key record (not TouchAPIKeys).
func (m *Memory) Generation() uint64 { return m.gen.Load() }

// SigningKeysChangedSince reports whether a signing key was added, retired
// or deleted after Generation gen.
func (m *Memory) SigningKeysChangedSince(gen uint64) bool { return m.signingGen.Load() > gen }

// ChangedSince reports whether the user, session or API key with these IDs
// may have been written after Generation gen ("" names none).
func (m *Memory) ChangedSince(gen uint64, userID, sessionID, keyID string) bool {
	l := m.changes
	return l.ChangedSince(gen, userID) || l.ChangedSince(gen, sessionID) || l.ChangedSince(gen, keyID)
}

// HasLegacyKeys reports whether any key with Legacy set was ever stored.
func (m *Memory) HasLegacyKeys() bool { return m.legacyKeys.Load() }

// Backend is ("memory", "instance-N"): a memory store opens nothing, so
// its location is its own number in the process, which no other open
// store shares.
func (m *Memory) Backend() (kind, location string) { return "memory", m.name }

// Close drops every record; every later operation is ErrMemoryClosed. It is
// safe to call more than once and always returns nil. The lockout's
// counters are kept (they are unreachable once closed).
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		m.users, m.usersByName, m.usersByEmail = nil, nil, nil
		m.keys, m.keysByDigest, m.keysByOwner, m.keysLastUsed = nil, nil, nil, nil
		m.sessions, m.sessionsByUser, m.refresh, m.refreshBySession = nil, nil, nil, nil
		m.sessionsLastSeen = nil
		m.signingKeys = nil
	}
	return nil
}

// ---- Copies ----

// utcNow is the store's clock, as bbolt's: UTC, no monotonic reading.
func utcNow() time.Time { return time.Now().UTC() }

// wall drops t's monotonic clock reading, as bbolt's JSON round trip does.
func wall(t time.Time) time.Time { return t.Round(0) }

// cloneSlice copies s; an empty slice is nil, as JSON's omitempty makes it.
func cloneSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func cloneUser(u *store.User) *store.User {
	c := *u
	c.Roles = cloneSlice(u.Roles)
	c.Settings = cloneSlice(u.Settings)
	c.LastDismissMessages, c.LastLogIn = wall(u.LastDismissMessages), wall(u.LastLogIn)
	c.CreatedAt, c.UpdatedAt = wall(u.CreatedAt), wall(u.UpdatedAt)
	return &c
}

func cloneAPIKey(k *store.APIKey) *store.APIKey {
	c := *k
	c.CreatedAt, c.ExpiresAt = wall(k.CreatedAt), wall(k.ExpiresAt)
	c.RevokedAt, c.LastUsed = wall(k.RevokedAt), wall(k.LastUsed)
	return &c
}

func cloneSession(s *store.Session) *store.Session {
	c := *s
	c.CreatedAt, c.RefreshedAt = wall(s.CreatedAt), wall(s.RefreshedAt)
	c.ExpiresAt, c.RevokedAt = wall(s.ExpiresAt), wall(s.RevokedAt)
	c.LastSeen = wall(s.LastSeen)
	return &c
}

func cloneSigningKey(k *store.SigningKey) *store.SigningKey {
	c := *k
	c.Private = slices.Clone(k.Private)
	c.CreatedAt, c.RetiredAt = wall(k.CreatedAt), wall(k.RetiredAt)
	return &c
}

// ---- Users ----

// CreateUser stores a new user, as bbolt does.
func (m *Memory) CreateUser(u *store.User) error {
	return m.CreateUsers([]*store.User{u})
}

// CreateUsers stores new users, all of them or, on the first error, none.
func (m *Memory) CreateUsers(us []*store.User) error {
	for _, u := range us {
		if err := store.PrepareUser(u); err != nil {
			return err
		}
	}
	return m.update(func(tx *memTx) error {
		for _, u := range us {
			if err := m.insertUser(tx, u); err != nil {
				return err
			}
		}
		return nil
	})
}

func (m *Memory) insertUser(tx *memTx, u *store.User) error {
	if _, ok := m.users[u.ID]; ok {
		return fmt.Errorf("user id %q: %w", u.ID, store.ErrExists)
	}
	if err := m.claimLogins(tx, u, nil); err != nil {
		return err
	}
	put(tx, m.users, u.ID, cloneUser(u))
	return nil
}

// UserByID returns the user with id: the caller's own copy.
func (m *Memory) UserByID(id string) (*store.User, error) {
	var u *store.User
	err := m.view(func() error {
		stored, ok := m.users[id]
		if !ok {
			return store.ErrNotFound
		}
		u = cloneUser(stored)
		return nil
	})
	return u, err
}

// UserByLogin returns the user whose username or email is login; a login
// that cannot be normalised is ErrNotFound.
func (m *Memory) UserByLogin(login string) (*store.User, error) {
	key, err := store.NormalizeLogin(login)
	if err != nil {
		return nil, store.ErrNotFound
	}
	var u *store.User
	err = m.view(func() error {
		id, ok := m.loginOwner(key)
		if !ok {
			return store.ErrNotFound
		}
		stored, ok := m.users[id]
		if !ok {
			return store.ErrNotFound
		}
		u = cloneUser(stored)
		return nil
	})
	return u, err
}

// UpdateUser applies fn to a fresh copy of the user and stores the result
// atomically. fn runs under the write lock: it must not call the store.
func (m *Memory) UpdateUser(id string, fn func(u *store.User) error) (*store.User, error) {
	var u *store.User
	err := m.update(func(tx *memTx) error {
		old, ok := m.users[id]
		if !ok {
			return store.ErrNotFound
		}
		u = cloneUser(old)
		if err := fn(u); err != nil {
			return err
		}
		u.ID, u.CreatedAt = old.ID, old.CreatedAt
		u.V = store.RecordVersion
		u.UpdatedAt = utcNow()
		if err := store.PrepareLogins(u, old); err != nil {
			return err
		}
		if err := m.claimLogins(tx, u, old); err != nil {
			return err
		}
		put(tx, m.users, id, cloneUser(u))
		tx.user(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// DeleteUser removes the user with their API keys and their sessions with
// all refresh tokens, atomically.
func (m *Memory) DeleteUser(id string) error {
	return m.update(func(tx *memTx) error {
		u, ok := m.users[id]
		if !ok {
			return store.ErrNotFound
		}
		if err := m.claimLogins(tx, nil, u); err != nil {
			return err
		}
		for _, keyID := range children(m.keysByOwner, id) {
			m.deleteAPIKey(tx, id, keyID)
		}
		for _, sid := range children(m.sessionsByUser, id) {
			m.deleteSession(tx, id, sid)
		}
		del(tx, m.users, id)
		tx.user(id)
		return nil
	})
}

// ListUsers returns every user sorted by username (case-insensitively),
// then ID.
func (m *Memory) ListUsers() ([]*store.User, error) {
	var list []*store.User
	err := m.view(func() error {
		for _, u := range m.users {
			list = append(list, cloneUser(u))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.User) int {
		return cmp.Or(
			strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username)),
			strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// loginOwner returns the user a login key names, as a username first, then
// as an email.
func (m *Memory) loginOwner(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	if id, ok := m.usersByName[key]; ok {
		return id, true
	}
	id, ok := m.usersByEmail[key]
	return id, ok
}

// loginTaken reports whether a login key names a user other than id, in
// either index: one namespace.
func (m *Memory) loginTaken(key, id string) bool {
	for _, index := range []map[string]string{m.usersByName, m.usersByEmail} {
		if owner, ok := index[key]; ok && owner != id {
			return true
		}
	}
	return false
}

// claimLogins moves the login indexes from old's username/email to u's,
// as bbolt's claimLogins: either may be nil (create, delete); a login
// naming another user is ErrExists; a login left as it was is not
// re-claimed.
func (m *Memory) claimLogins(tx *memTx, u, old *store.User) error {
	var id string
	var newLogins, oldLogins [2]string // username, email
	if u != nil {
		id = u.ID
		newLogins = [2]string{u.Username, u.Email}
	}
	if old != nil {
		id = old.ID
		oldLogins = [2]string{old.Username, old.Email}
	}
	for i := range newLogins {
		if newLogins[i] == oldLogins[i] || newLogins[i] == "" {
			continue
		}
		if m.loginTaken(store.LoginKey(newLogins[i]), id) {
			return fmt.Errorf("login %q: %w", newLogins[i], store.ErrExists)
		}
	}
	for i, index := range [2]map[string]string{m.usersByName, m.usersByEmail} {
		if newLogins[i] == oldLogins[i] {
			continue
		}
		// Only our own entry goes.
		if oldKey := store.LoginKey(oldLogins[i]); oldKey != "" && index[oldKey] == id {
			del(tx, index, oldKey)
		}
		if newKey := store.LoginKey(newLogins[i]); newKey != "" {
			put(tx, index, newKey, id)
		}
	}
	return nil
}

// ---- API keys ----

// CreateAPIKey stores a new key for an existing owner, as bbolt does.
func (m *Memory) CreateAPIKey(k *store.APIKey) error {
	return m.CreateAPIKeys([]*store.APIKey{k})
}

// CreateAPIKeys stores new keys, all of them or, on the first error, none.
func (m *Memory) CreateAPIKeys(ks []*store.APIKey) error {
	legacy := false
	for _, k := range ks {
		if err := store.PrepareAPIKey(k); err != nil {
			return err
		}
		legacy = legacy || k.Legacy
	}
	err := m.update(func(tx *memTx) error {
		for _, k := range ks {
			if err := m.insertAPIKey(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && legacy {
		m.legacyKeys.Store(true)
	}
	return err
}

func (m *Memory) insertAPIKey(tx *memTx, k *store.APIKey) error {
	if _, ok := m.users[k.OwnerID]; !ok {
		return fmt.Errorf("owner %q: %w", k.OwnerID, store.ErrNotFound)
	}
	if _, ok := m.keys[k.ID]; ok {
		return fmt.Errorf("key id %q: %w", k.ID, store.ErrExists)
	}
	if _, ok := m.keysByDigest[k.Digest]; ok {
		return fmt.Errorf("api key digest: %w", store.ErrExists)
	}
	put(tx, m.keysByDigest, k.Digest, k.ID)
	addChild(tx, m.keysByOwner, k.OwnerID, k.ID)
	put(tx, m.keys, k.ID, cloneAPIKey(k))
	return nil
}

// APIKeyByDigest returns the key whose digest is d, revoked and expired
// ones too.
func (m *Memory) APIKeyByDigest(d store.Digest) (*store.APIKey, error) {
	var k *store.APIKey
	err := m.view(func() error {
		id, ok := m.keysByDigest[d]
		if !ok {
			return store.ErrNotFound
		}
		stored, ok := m.keys[id]
		if !ok {
			return store.ErrNotFound
		}
		k = m.withLastUsed(cloneAPIKey(stored))
		return nil
	})
	return k, err
}

// APIKeyByID returns the key with id.
func (m *Memory) APIKeyByID(id string) (*store.APIKey, error) {
	var k *store.APIKey
	err := m.view(func() error {
		stored, ok := m.keys[id]
		if !ok {
			return store.ErrNotFound
		}
		k = m.withLastUsed(cloneAPIKey(stored))
		return nil
	})
	return k, err
}

// ListAPIKeys returns the keys of ownerID, or every key when ownerID is
// "", sorted by CreatedAt then ID.
func (m *Memory) ListAPIKeys(ownerID string) ([]*store.APIKey, error) {
	var list []*store.APIKey
	err := m.view(func() error {
		if ownerID == "" {
			for _, k := range m.keys {
				list = append(list, m.withLastUsed(cloneAPIKey(k)))
			}
			return nil
		}
		for id := range m.keysByOwner[ownerID] {
			k, ok := m.keys[id]
			if !ok {
				return store.ErrNotFound
			}
			list = append(list, m.withLastUsed(cloneAPIKey(k)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// RevokeAPIKey revokes the key at time at; the first RevokedAt stays.
func (m *Memory) RevokeAPIKey(id string, at time.Time) error {
	_, err := m.UpdateAPIKey(id, func(k *store.APIKey) error {
		if !k.Revoked {
			k.Revoked, k.RevokedAt = true, at.UTC()
		}
		return nil
	})
	return err
}

// UpdateAPIKey applies fn to a fresh copy of the key and stores it
// atomically; ID, Digest, OwnerID and CreatedAt cannot be changed. fn runs
// under the write lock: it must not call the store.
func (m *Memory) UpdateAPIKey(id string, fn func(k *store.APIKey) error) (*store.APIKey, error) {
	var k *store.APIKey
	err := m.update(func(tx *memTx) error {
		old, ok := m.keys[id]
		if !ok {
			return store.ErrNotFound
		}
		k = cloneAPIKey(old) // the record's own LastUsed, as bbolt's fn sees
		if err := fn(k); err != nil {
			return err
		}
		k.ID, k.Digest, k.OwnerID, k.CreatedAt = old.ID, old.Digest, old.OwnerID, old.CreatedAt
		k.V = store.RecordVersion
		put(tx, m.keys, id, cloneAPIKey(k))
		m.withLastUsed(k)
		tx.key(k.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// TouchAPIKeys records when keys were last used. LastUsed only moves
// forward; unknown IDs are skipped. As in bbolt the times are kept apart
// from the records (keysLastUsed, readers take the later one), and nothing
// is marked changed nor does Generation move.
func (m *Memory) TouchAPIKeys(lastUsed map[string]time.Time) error {
	return m.update(func(tx *memTx) error {
		touch(tx, m.keys, m.keysLastUsed, lastUsed)
		return nil
	})
}

// touch records the times of records that exist, forward only
// (TouchAPIKeys, TouchSessions).
func touch[V any](tx *memTx, records map[string]V, times, at map[string]time.Time) {
	for id, t := range at {
		if _, ok := records[id]; !ok {
			continue
		}
		if old, ok := times[id]; ok && !t.After(old) {
			continue
		}
		// bbolt stores Unix nanoseconds: the same precision and zone.
		put(tx, times, id, time.Unix(0, t.UnixNano()).UTC())
	}
}

// withLastUsed sets k.LastUsed to the touched time, if later; under mu.
func (m *Memory) withLastUsed(k *store.APIKey) *store.APIKey {
	if at, ok := m.keysLastUsed[k.ID]; ok && at.After(k.LastUsed) {
		k.LastUsed = at
	}
	return k
}

// deleteAPIKey removes a key and its index entries (DeleteUser).
func (m *Memory) deleteAPIKey(tx *memTx, ownerID, keyID string) {
	if k, ok := m.keys[keyID]; ok {
		del(tx, m.keysByDigest, k.Digest)
		del(tx, m.keys, keyID)
		del(tx, m.keysLastUsed, keyID)
		tx.key(keyID)
	}
	delChild(tx, m.keysByOwner, ownerID, keyID)
}

// ---- Sessions ----

// allBudgets, never a key ID (ids have no '*'), selects every session
// budget (see bbolt's "Session budgets").
const allBudgets = "*"

// CreateSession stores a new session for an existing user with its first
// refresh token; with limit > 0 the oldest live sessions of the new one's
// budget are revoked to keep at most limit, atomically with the insert.
func (m *Memory) CreateSession(sess *store.Session, refresh store.Digest, limit int) (revoked int, err error) {
	if err := store.PrepareSession(sess, refresh); err != nil {
		return 0, err
	}
	err = m.update(func(tx *memTx) error {
		revoked = 0
		if _, ok := m.users[sess.UserID]; !ok {
			return fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if limit > 0 {
			live := m.liveSessions(sess.UserID, sess.KeyID, sess.CreatedAt)
			for len(live) >= limit { // oldest first
				if _, err := m.revokeSession(tx, live[0].ID, store.ReasonSessionLimit, sess.CreatedAt); err != nil {
					return err
				}
				live = live[1:]
				revoked++
			}
		}
		return m.insertSession(tx, sess, refresh)
	})
	if err != nil {
		return 0, err
	}
	return revoked, nil
}

// CreateSessions stores new sessions as CreateSession does without a
// limit, all of them or, on the first error, none.
func (m *Memory) CreateSessions(batch []store.NewSession) error {
	for _, n := range batch {
		if err := store.PrepareSession(n.Session, n.Refresh); err != nil {
			return err
		}
	}
	return m.update(func(tx *memTx) error {
		for _, n := range batch {
			if _, ok := m.users[n.Session.UserID]; !ok {
				return fmt.Errorf("user %q: %w", n.Session.UserID, store.ErrNotFound)
			}
			if err := m.insertSession(tx, n.Session, n.Refresh); err != nil {
				return err
			}
		}
		return nil
	})
}

func (m *Memory) insertSession(tx *memTx, sess *store.Session, refresh store.Digest) error {
	if _, ok := m.sessions[sess.ID]; ok {
		return fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
	}
	if err := m.putRefresh(tx, refresh, &refreshEntry{SID: sess.ID, Exp: sess.ExpiresAt}); err != nil {
		return err
	}
	addChild(tx, m.sessionsByUser, sess.UserID, sess.ID)
	put(tx, m.sessions, sess.ID, cloneSession(sess))
	return nil
}

// SessionByID returns the session with id.
func (m *Memory) SessionByID(id string) (*store.Session, error) {
	var sess *store.Session
	err := m.view(func() error {
		stored, ok := m.sessions[id]
		if !ok {
			return store.ErrNotFound
		}
		sess = m.withLastSeen(cloneSession(stored))
		return nil
	})
	return sess, err
}

// SessionBySecret returns the session whose live refresh token (or
// browser cookie) has digest d; unknown or spent is ErrNotFound.
func (m *Memory) SessionBySecret(d store.Digest) (*store.Session, error) {
	var sess *store.Session
	err := m.view(func() error {
		e, ok := m.refresh[d]
		if !ok || e.Spent {
			return store.ErrNotFound
		}
		stored, ok := m.sessions[e.SID]
		if !ok {
			return store.ErrNotFound
		}
		sess = m.withLastSeen(cloneSession(stored))
		return nil
	})
	return sess, err
}

// TouchSessions records when sessions were last used, as TouchAPIKeys
// does for keys: apart from the records (sessionsLastSeen, readers take
// the later one), forward only, and marking nothing changed.
func (m *Memory) TouchSessions(lastSeen map[string]time.Time) error {
	return m.update(func(tx *memTx) error {
		touch(tx, m.sessions, m.sessionsLastSeen, lastSeen)
		return nil
	})
}

// withLastSeen sets sess.LastSeen to the touched time, if later; under mu.
func (m *Memory) withLastSeen(sess *store.Session) *store.Session {
	if at, ok := m.sessionsLastSeen[sess.ID]; ok && at.After(sess.LastSeen) {
		sess.LastSeen = at
	}
	return sess
}

// ListSessions returns the sessions of userID, or all when userID is "",
// sorted by CreatedAt then ID.
func (m *Memory) ListSessions(userID string) ([]*store.Session, error) {
	var list []*store.Session
	err := m.view(func() error {
		if userID == "" {
			for _, sess := range m.sessions {
				list = append(list, m.withLastSeen(cloneSession(sess)))
			}
			return nil
		}
		for sid := range m.sessionsByUser[userID] {
			sess, ok := m.sessions[sid]
			if !ok {
				return store.ErrNotFound
			}
			list = append(list, m.withLastSeen(cloneSession(sess)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, func(a, b *store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// LiveSessions counts the user's sessions neither revoked nor past their
// refresh expiry at now, of every budget.
func (m *Memory) LiveSessions(userID string, now time.Time) (int, error) {
	return m.countLive(userID, allBudgets, now)
}

// LiveSessionsLike counts the user's live sessions at now in the budget of
// sessions opened with keyID ("" for logins).
func (m *Memory) LiveSessionsLike(userID, keyID string, now time.Time) (int, error) {
	return m.countLive(userID, keyID, now)
}

func (m *Memory) countLive(userID, budget string, now time.Time) (int, error) {
	n := 0
	err := m.view(func() error {
		n = len(m.liveSessions(userID, budget, now))
		return nil
	})
	return n, err
}

// liveSessions lists the user's live sessions at now in budget (a key ID,
// "" for logins, or allBudgets), oldest first; under mu. The values are
// the stored ones: read them only.
func (m *Memory) liveSessions(userID, budget string, now time.Time) []*store.Session {
	var live []*store.Session
	for sid := range m.sessionsByUser[userID] {
		sess, ok := m.sessions[sid]
		if !ok || budget != allBudgets && sess.KeyID != budget {
			continue
		}
		if !sess.Revoked && now.Before(sess.ExpiresAt) {
			live = append(live, sess)
		}
	}
	slices.SortFunc(live, func(a, b *store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return live
}

// RotateRefresh spends the refresh token old and makes next the session's
// live one, until expiresAt, atomically. old unknown is ErrNotFound; old
// already spent revokes the session, keeps that, and is ErrRefreshReused;
// a revoked or expired session is ErrSessionRevoked.
func (m *Memory) RotateRefresh(old, next store.Digest, now, expiresAt time.Time) (*store.Session, error) {
	if old == (store.Digest{}) || next == (store.Digest{}) || old == next {
		return nil, fmt.Errorf("%w: refresh token digests", store.ErrInvalid)
	}
	now, expiresAt = now.UTC(), expiresAt.UTC()
	if !expiresAt.After(now) {
		return nil, fmt.Errorf("%w: new refresh expiry is not after now", store.ErrInvalid)
	}
	var sess *store.Session
	var result error // an outcome that still commits (reuse revokes)
	err := m.update(func(tx *memTx) error {
		e, ok := m.refresh[old]
		if !ok {
			return store.ErrNotFound
		}
		stored, ok := m.sessions[e.SID]
		if !ok {
			return store.ErrNotFound
		}
		sess = cloneSession(stored)
		switch {
		case e.Spent:
			result = store.ErrRefreshReused
			if sess.Revoked {
				return nil
			}
			sess.Revoked, sess.RevokedAt, sess.RevokeReason = true, now, store.ReasonRefreshReused
			put(tx, m.sessions, sess.ID, cloneSession(sess))
			tx.session(sess.ID)
			return nil
		case sess.Revoked:
			return store.ErrSessionRevoked
		case !now.Before(sess.ExpiresAt):
			return store.ErrSessionRevoked
		}
		spent := *e
		spent.Spent = true
		put(tx, m.refresh, old, &spent)
		if err := m.putRefresh(tx, next, &refreshEntry{SID: sess.ID, Exp: expiresAt}); err != nil {
			return err
		}
		sess.Generation++
		sess.RefreshedAt, sess.ExpiresAt = now, expiresAt
		put(tx, m.sessions, sess.ID, cloneSession(sess))
		tx.session(sess.ID)
		return nil
	})
	if err == nil && result != nil {
		return m.lastSeenOf(sess), result // reuse: the session it revoked, for the audit trail
	}
	if err != nil {
		return nil, err
	}
	return m.lastSeenOf(sess), nil
}

// lastSeenOf is withLastSeen under the read lock, for a session a write
// returns (its stored record keeps its own LastSeen).
func (m *Memory) lastSeenOf(sess *store.Session) *store.Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.withLastSeen(sess)
}

// RevokeSession revokes the session; a revoked one stays as it is, an
// unknown one is ErrNotFound.
func (m *Memory) RevokeSession(id, reason string, at time.Time) error {
	return m.update(func(tx *memTx) error {
		_, err := m.revokeSession(tx, id, reason, at)
		return err
	})
}

// RevokeUserSessions revokes every unrevoked session of the user and
// returns how many. An unknown user is ErrNotFound.
func (m *Memory) RevokeUserSessions(userID, reason string, at time.Time) (int, error) {
	n := 0
	err := m.update(func(tx *memTx) error {
		n = 0
		if _, ok := m.users[userID]; !ok {
			return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
		}
		for _, sid := range children(m.sessionsByUser, userID) {
			revoked, err := m.revokeSession(tx, sid, reason, at)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if revoked {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// DeleteSessionsExpiredBefore deletes the sessions (revoked or not) whose
// refresh expiry is before t, with their refresh tokens, and returns how
// many.
func (m *Memory) DeleteSessionsExpiredBefore(t time.Time) (int, error) {
	n := 0
	err := m.update(func(tx *memTx) error {
		n = 0
		for _, sid := range slices.Sorted(maps.Keys(m.sessions)) {
			if sess := m.sessions[sid]; sess.ExpiresAt.Before(t) {
				m.deleteSession(tx, sess.UserID, sid)
				n++
			}
		}
		return nil
	})
	return n, err
}

// revokeSession marks one session revoked; false if it already was.
func (m *Memory) revokeSession(tx *memTx, id, reason string, at time.Time) (bool, error) {
	stored, ok := m.sessions[id]
	if !ok {
		return false, store.ErrNotFound
	}
	if stored.Revoked {
		return false, nil
	}
	sess := cloneSession(stored)
	sess.Revoked, sess.RevokedAt, sess.RevokeReason = true, at.UTC(), reason
	put(tx, m.sessions, id, sess)
	tx.session(id)
	return true, nil
}

// putRefresh stores a new refresh entry and its per-session index entry.
func (m *Memory) putRefresh(tx *memTx, d store.Digest, e *refreshEntry) error {
	if _, ok := m.refresh[d]; ok {
		return fmt.Errorf("refresh token digest: %w", store.ErrExists)
	}
	e.Exp = wall(e.Exp)
	put(tx, m.refresh, d, e)
	addChild(tx, m.refreshBySession, e.SID, d)
	return nil
}

// deleteSession removes a session, its index entry and every refresh
// entry of its family.
func (m *Memory) deleteSession(tx *memTx, userID, sid string) {
	for d := range m.refreshBySession[sid] {
		del(tx, m.refresh, d)
	}
	del(tx, m.refreshBySession, sid)
	del(tx, m.sessions, sid)
	del(tx, m.sessionsLastSeen, sid)
	tx.session(sid)
	delChild(tx, m.sessionsByUser, userID, sid)
}

// ---- Signing keys ----

// SigningKeys returns every signing key, retired ones included, sorted by
// CreatedAt then KID; copies the caller owns.
func (m *Memory) SigningKeys() ([]store.SigningKey, error) {
	var list []store.SigningKey
	err := m.view(func() error {
		list = m.sortedSigningKeys()
		return nil
	})
	return list, err
}

// sortedSigningKeys copies every key, oldest first; under mu.
func (m *Memory) sortedSigningKeys() []store.SigningKey {
	var list []store.SigningKey
	for _, k := range m.signingKeys {
		list = append(list, *cloneSigningKey(k))
	}
	slices.SortFunc(list, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return list
}

// EnsureSigningKey returns the newest unretired key for alg or, when there
// is none, stores the key generate returns, atomically. generate runs
// under the write lock: it must not call the store.
func (m *Memory) EnsureSigningKey(alg string, generate func() (store.SigningKey, error)) (store.SigningKey, error) {
	var out store.SigningKey
	err := m.update(func(tx *memTx) error {
		for _, k := range slices.Backward(m.sortedSigningKeys()) {
			if k.Alg == alg && k.RetiredAt.IsZero() {
				out = k
				return nil
			}
		}
		k, err := generate()
		if err != nil {
			return err
		}
		if k.Alg != alg {
			return fmt.Errorf("%w: generated a %s key, want %s", store.ErrInvalid, k.Alg, alg)
		}
		if err := m.putSigningKey(tx, &k, utcNow()); err != nil {
			return err
		}
		out = k
		tx.signingKeys = true
		return nil
	})
	if err != nil {
		return store.SigningKey{}, err
	}
	return out, nil
}

// AddSigningKey stores a new key; with retireOthers every other unretired
// key gets RetiredAt = at.
func (m *Memory) AddSigningKey(k store.SigningKey, retireOthers bool, at time.Time) error {
	at = at.UTC()
	return m.update(func(tx *memTx) error {
		if err := m.putSigningKey(tx, &k, at); err != nil {
			return err
		}
		tx.signingKeys = true
		if !retireOthers {
			return nil
		}
		for kid, other := range m.signingKeys {
			if kid == k.KID || !other.RetiredAt.IsZero() {
				continue
			}
			retired := cloneSigningKey(other)
			retired.RetiredAt = at
			put(tx, m.signingKeys, kid, retired)
		}
		return nil
	})
}

// DeleteSigningKey removes a key for good.
func (m *Memory) DeleteSigningKey(kid string) error {
	return m.update(func(tx *memTx) error {
		if _, ok := m.signingKeys[kid]; !ok {
			return fmt.Errorf("signing key %q: %w", kid, store.ErrNotFound)
		}
		del(tx, m.signingKeys, kid)
		tx.signingKeys = true
		return nil
	})
}

// putSigningKey stores a new key; its KID must be unused (ErrExists).
// CreatedAt defaults to created.
func (m *Memory) putSigningKey(tx *memTx, k *store.SigningKey, created time.Time) error {
	if k.KID == "" || len(k.KID) > store.MaxIDLen {
		return fmt.Errorf("%w: signing key id must be 1 to %d bytes", store.ErrInvalid, store.MaxIDLen)
	}
	if k.Alg == "" || len(k.Private) == 0 {
		return fmt.Errorf("%w: signing key %q without algorithm or key material", store.ErrInvalid, k.KID)
	}
	if _, ok := m.signingKeys[k.KID]; ok {
		return fmt.Errorf("signing key %q: %w", k.KID, store.ErrExists)
	}
	k.V = store.RecordVersion
	if k.CreatedAt.IsZero() {
		k.CreatedAt = created
	}
	put(tx, m.signingKeys, k.KID, cloneSigningKey(k))
	return nil
}

// ---- Maintenance ----

// Check verifies that every index entry resolves to the record it names
// and every record has its index entries, as bbolt's Check does, and
// counts the records. A problem is an error wrapping ErrMalformed.
func (m *Memory) Check() (store.Counts, error) {
	var c store.Counts
	err := m.view(func() error {
		var err error
		if c, err = m.check(); err != nil {
			return fmt.Errorf("%w: %v", store.ErrMalformed, err)
		}
		return nil
	})
	return c, err
}

func (m *Memory) check() (store.Counts, error) {
	var c store.Counts
	for id, u := range m.users {
		if u.ID != id {
			return c, fmt.Errorf("user %q is stored as %q", u.ID, id)
		}
		for _, login := range []string{u.Username, u.Email} {
			if key := store.LoginKey(login); key != "" {
				if _, ok := m.loginOwner(key); !ok {
					return c, fmt.Errorf("a login of user %q is missing from the login indexes", id)
				}
			}
		}
		c.Users++
	}
	for _, index := range []struct {
		name    string
		entries map[string]string
		login   func(u *store.User) string
	}{
		{"users_by_name", m.usersByName, func(u *store.User) string { return u.Username }},
		{"users_by_email", m.usersByEmail, func(u *store.User) string { return u.Email }},
	} {
		for key, id := range index.entries {
			u, ok := m.users[id]
			if !ok {
				return c, fmt.Errorf("%s entry %q names missing user %q", index.name, key, id)
			}
			if store.LoginKey(index.login(u)) != key {
				return c, fmt.Errorf("%s entry %q names user %q, whose login is not that", index.name, key, id)
			}
		}
	}

	for id, k := range m.keys {
		if k.ID != id {
			return c, fmt.Errorf("api key %q is stored as %q", k.ID, id)
		}
		if _, ok := m.users[k.OwnerID]; !ok {
			return c, fmt.Errorf("api key %q names missing owner %q", id, k.OwnerID)
		}
		if m.keysByDigest[k.Digest] != id {
			return c, fmt.Errorf("api key %q is missing from the digest index", id)
		}
		if _, ok := m.keysByOwner[k.OwnerID][id]; !ok {
			return c, fmt.Errorf("api key %q is missing from keys_by_owner", id)
		}
		c.APIKeys++
	}
	for _, id := range m.keysByDigest {
		if _, ok := m.keys[id]; !ok {
			return c, fmt.Errorf("digest index names missing api key %q", id)
		}
	}
	for id := range m.keysLastUsed {
		if _, ok := m.keys[id]; !ok {
			return c, fmt.Errorf("last-use times name missing api key %q", id)
		}
	}

	for id, sess := range m.sessions {
		if sess.ID != id {
			return c, fmt.Errorf("session %q is stored as %q", sess.ID, id)
		}
		if _, ok := m.users[sess.UserID]; !ok {
			return c, fmt.Errorf("session %q names missing user %q", id, sess.UserID)
		}
		if _, ok := m.sessionsByUser[sess.UserID][id]; !ok {
			return c, fmt.Errorf("session %q is missing from sessions_by_user", id)
		}
		c.Sessions++
	}
	for id := range m.sessionsLastSeen {
		if _, ok := m.sessions[id]; !ok {
			return c, fmt.Errorf("last-seen times name missing session %q", id)
		}
	}
	for d, e := range m.refresh {
		if _, ok := m.sessions[e.SID]; !ok {
			return c, fmt.Errorf("refresh entry names missing session %q", e.SID)
		}
		if _, ok := m.refreshBySession[e.SID][d]; !ok {
			return c, fmt.Errorf("a refresh entry of session %q is missing from refresh_by_session", e.SID)
		}
	}

	// The listing indexes: each child must exist.
	for owner, set := range m.keysByOwner {
		for id := range set {
			if _, ok := m.keys[id]; !ok {
				return c, fmt.Errorf("keys_by_owner entry for %q names a missing record", owner)
			}
		}
	}
	for owner, set := range m.sessionsByUser {
		for id := range set {
			if _, ok := m.sessions[id]; !ok {
				return c, fmt.Errorf("sessions_by_user entry for %q names a missing record", owner)
			}
		}
	}
	for owner, set := range m.refreshBySession {
		for d := range set {
			if _, ok := m.refresh[d]; !ok {
				return c, fmt.Errorf("refresh_by_session entry for %q names a missing record", owner)
			}
		}
	}

	for kid, k := range m.signingKeys {
		if k.KID != kid {
			return c, fmt.Errorf("signing key %q is stored as %q", k.KID, kid)
		}
		c.SigningKeys++
	}
	return c, nil
}

// MemoryBackupFormat names the JSON document Backup writes.
const MemoryBackupFormat = "authgate-memory-backup/1"

// memoryBackup is what Backup writes: one JSON object holding every record
// (the indexes are derived, so they are left out), each list sorted by ID
// (refresh tokens by digest, signing keys by kid):
//
//	{"format": "authgate-memory-backup/1",
//	 "users": [store.User...], "apiKeys": [store.APIKey...],
//	 "keysLastUsed": {"<key ID>": "<RFC 3339 time>"},
//	 "sessions": [store.Session...],
//	 "sessionsLastSeen": {"<session ID>": "<RFC 3339 time>"},
//	 "refreshTokens": [{"digest": "<hex>", "sid": "...", "spent": false, "exp": "..."}...],
//	 "signingKeys": [store.SigningKey...], "hasLegacyKeys": false}
//
// API keys carry their record's own LastUsed; keysLastUsed holds the
// later times TouchAPIKeys recorded, as bbolt keeps them apart; sessions
// and sessionsLastSeen (TouchSessions) likewise.
type memoryBackup struct {
	Format        string               `json:"format"`
	Users         []*store.User        `json:"users"`
	APIKeys       []*store.APIKey      `json:"apiKeys"`
	KeysLastUsed  map[string]time.Time `json:"keysLastUsed"`
	Sessions      []*store.Session     `json:"sessions"`
	SessionsSeen  map[string]time.Time `json:"sessionsLastSeen"`
	RefreshTokens []backupRefresh      `json:"refreshTokens"`
	SigningKeys   []*store.SigningKey  `json:"signingKeys"`
	HasLegacyKeys bool                 `json:"hasLegacyKeys"`
}

type backupRefresh struct {
	Digest store.Digest `json:"digest"`
	refreshEntry
}

// Backup writes a JSON snapshot of every record (memoryBackup) to w and
// returns the bytes written. The snapshot is encoded under the read lock
// and written after it is released, so a slow w holds up no writer. It
// contains signing keys: keep it private.
func (m *Memory) Backup(w io.Writer) (int64, error) {
	var raw []byte
	err := m.view(func() error {
		b := memoryBackup{
			Format:        MemoryBackupFormat,
			KeysLastUsed:  maps.Clone(m.keysLastUsed),
			SessionsSeen:  maps.Clone(m.sessionsLastSeen),
			HasLegacyKeys: m.legacyKeys.Load(),
		}
		for _, id := range slices.Sorted(maps.Keys(m.users)) {
			b.Users = append(b.Users, m.users[id])
		}
		for _, id := range slices.Sorted(maps.Keys(m.keys)) {
			b.APIKeys = append(b.APIKeys, m.keys[id])
		}
		for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
			b.Sessions = append(b.Sessions, m.sessions[id])
		}
		for d, e := range m.refresh {
			b.RefreshTokens = append(b.RefreshTokens, backupRefresh{d, *e})
		}
		slices.SortFunc(b.RefreshTokens, func(x, y backupRefresh) int {
			return strings.Compare(string(x.Digest[:]), string(y.Digest[:]))
		})
		for _, kid := range slices.Sorted(maps.Keys(m.signingKeys)) {
			b.SigningKeys = append(b.SigningKeys, m.signingKeys[kid])
		}
		var err error
		raw, err = json.Marshal(b)
		return err
	})
	if err != nil {
		return 0, err
	}
	n, err := w.Write(raw)
	return int64(n), err
}

// ---- Attempts ----

// checkAttempt refuses what the lockout cannot count, as bbolt does: a
// kind it does not know, and a policy that would refuse every check (or
// none) without a wait.
func checkAttempt(a store.Attempt, p store.LockPolicy) error {
	if a.Kind > store.KindClient {
		return fmt.Errorf("%w: attempt kind %d", store.ErrInvalid, a.Kind)
	}
	if p.Attempts < 1 || p.Window <= 0 {
		return fmt.Errorf("%w: lock policy needs attempts >= 1 and a window > 0", store.ErrInvalid)
	}
	return nil
}

// ReserveAttempt reserves one check of a's account at now under p (the
// tracker's Reserve); a refusal is a wait > 0.
func (m *Memory) ReserveAttempt(a store.Attempt, now time.Time, p store.LockPolicy) (store.Reservation, time.Duration, error) {
	if err := checkAttempt(a, p); err != nil {
		return store.Reservation{}, 0, err
	}
	var r store.Reservation
	var wait time.Duration
	err := m.view(func() error {
		r, wait = m.attempts.Reserve(a, now, p)
		return nil
	})
	return r, wait, err
}

// SettleAttempt records how a reserved check ended. An unknown outcome
// settles it as Abandoned (the slot is freed) and is ErrInvalid.
func (m *Memory) SettleAttempt(r store.Reservation, o store.Outcome, now time.Time, p store.LockPolicy) (time.Time, error) {
	if err := checkAttempt(r.Attempt, p); err != nil {
		return time.Time{}, err
	}
	var bad error
	if o > store.Failed {
		o, bad = store.Abandoned, fmt.Errorf("%w: attempt outcome %d", store.ErrInvalid, o)
	}
	var lockedUntil time.Time
	err := m.view(func() error {
		lockedUntil = m.attempts.Settle(r, o, now, p)
		return nil
	})
	return lockedUntil, cmp.Or(err, bad)
}

// ClearAttempts forgets an account's failures and lock, of either kind.
func (m *Memory) ClearAttempts(account store.AccountKey) error {
	return m.view(func() error {
		m.attempts.Clear(account)
		return nil
	})
}

// ListAttempts returns the accounts with failures or a lock at now, locked
// first, then by most recent failure.
func (m *Memory) ListAttempts(now time.Time) ([]store.AttemptState, error) {
	var list []store.AttemptState
	err := m.view(func() error {
		list = m.attempts.List(now)
		return nil
	})
	return list, err
}

// ---- Export and import ----

// Export returns every record but the lockout's counters, under one read
// lock: users, keys and sessions sorted by ID, refresh tokens by digest,
// signing keys by CreatedAt then KID. API keys carry the later of their
// record's LastUsed and TouchAPIKeys's time. The records are the caller's
// own copies.
func (m *Memory) Export() (*store.Snapshot, error) {
	snap := &store.Snapshot{}
	err := m.view(func() error {
		for _, id := range slices.Sorted(maps.Keys(m.users)) {
			snap.Users = append(snap.Users, cloneUser(m.users[id]))
		}
		for _, id := range slices.Sorted(maps.Keys(m.keys)) {
			snap.APIKeys = append(snap.APIKeys, m.withLastUsed(cloneAPIKey(m.keys[id])))
		}
		for _, id := range slices.Sorted(maps.Keys(m.sessions)) {
			snap.Sessions = append(snap.Sessions, m.withLastSeen(cloneSession(m.sessions[id])))
		}
		for d, e := range m.refresh {
			snap.Refresh = append(snap.Refresh, store.RefreshToken{Digest: d, SessionID: e.SID, Spent: e.Spent, ExpiresAt: e.Exp})
		}
		slices.SortFunc(snap.Refresh, func(x, y store.RefreshToken) int {
			return strings.Compare(string(x.Digest[:]), string(y.Digest[:]))
		})
		snap.SigningKeys = m.sortedSigningKeys()
		snap.LegacyKeys = m.legacyKeys.Load()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// Import stores snap's records as they are (ids, digests, hashes,
// timestamps, spent refresh tokens, LastUsed, the legacy flag) in one
// write, indexed as CreateUser, CreateAPIKey, CreateSession and
// AddSigningKey index them; only V is set to this build's RecordVersion.
// A store that holds any user is ErrExists; a record the backend's own
// writes would refuse (a bad id, a missing digest or expiry, a login,
// digest or kid taken twice, an owner or session missing) fails it whole.
// Every imported record is marked changed and Generation moves. snap is
// not modified.
func (m *Memory) Import(snap *store.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("%w: no snapshot", store.ErrInvalid)
	}
	legacy := snap.LegacyKeys
	err := m.update(func(tx *memTx) error {
		if len(m.users) > 0 {
			return fmt.Errorf("import into a store that holds users: %w", store.ErrExists)
		}
		for _, u := range snap.Users {
			if u == nil {
				return fmt.Errorf("%w: nil user in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("user id", u.ID); err != nil {
				return err
			}
			if u.Username == "" {
				return fmt.Errorf("%w: user %q without username", store.ErrInvalid, u.ID)
			}
			c := cloneUser(u)
			c.V = store.RecordVersion
			if err := m.insertUser(tx, c); err != nil {
				return err
			}
			tx.user(c.ID)
		}
		for _, k := range snap.APIKeys {
			if k == nil {
				return fmt.Errorf("%w: nil api key in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("key id", k.ID); err != nil {
				return err
			}
			if k.Digest == (store.Digest{}) {
				return fmt.Errorf("%w: api key %q without digest", store.ErrInvalid, k.ID)
			}
			c := cloneAPIKey(k)
			c.V = store.RecordVersion
			if err := m.insertAPIKey(tx, c); err != nil {
				return err
			}
			legacy = legacy || c.Legacy
			tx.key(c.ID)
		}
		for _, sess := range snap.Sessions {
			if sess == nil {
				return fmt.Errorf("%w: nil session in snapshot", store.ErrInvalid)
			}
			if err := store.ValidateID("session id", sess.ID); err != nil {
				return err
			}
			if sess.ExpiresAt.IsZero() {
				return fmt.Errorf("%w: session %q without expiry", store.ErrInvalid, sess.ID)
			}
			if _, ok := m.users[sess.UserID]; !ok {
				return fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
			}
			if _, ok := m.sessions[sess.ID]; ok {
				return fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
			}
			c := cloneSession(sess)
			c.V = store.RecordVersion
			addChild(tx, m.sessionsByUser, c.UserID, c.ID)
			put(tx, m.sessions, c.ID, c)
			tx.session(c.ID)
		}
		for _, r := range snap.Refresh {
			if r.Digest == (store.Digest{}) {
				return fmt.Errorf("%w: refresh token without digest", store.ErrInvalid)
			}
			if _, ok := m.sessions[r.SessionID]; !ok {
				return fmt.Errorf("session %q of a refresh token: %w", r.SessionID, store.ErrNotFound)
			}
			if err := m.putRefresh(tx, r.Digest, &refreshEntry{SID: r.SessionID, Spent: r.Spent, Exp: r.ExpiresAt}); err != nil {
				return err
			}
		}
		for _, k := range snap.SigningKeys {
			c := cloneSigningKey(&k)
			if err := m.putSigningKey(tx, c, utcNow()); err != nil {
				return err
			}
			tx.signingKeys = true
		}
		return nil
	})
	if err == nil && legacy {
		m.legacyKeys.Store(true)
	}
	return err
}
