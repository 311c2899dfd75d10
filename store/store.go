// Package store is authgate's data model: the records (models.go), what a
// login may be and the key it is compared under (logins.go), the sentinel
// errors (errors.go), the change log a backend feeds Generation and
// ChangedSince from (changes.go), and the Store interface every backend
// implements (this file).
//
// It holds no storage of its own: store/bbolt is the embedded default, and
// store/storetest is the conformance suite every backend must pass. The
// interface is operation-level, never a transaction handle: each backend
// keeps its own atomicity, and a write that returned is durable.
package store

import (
	"io"
	"time"
)

// Store is an open authgate database. It is safe for concurrent use.
// Close must be called once every other call has returned.
//
// Records returned by UserByID may be shared through a cache: never modify
// them. Every other lookup returns the caller's own copy. Errors wrap the
// sentinel errors of errors.go and never contain a secret.
type Store interface {
	Users
	APIKeys
	Sessions
	SigningKeys
	Attempts
	ChangeFeed

	// Check verifies that every record decodes and every index resolves,
	// and counts the records. A problem is an error wrapping ErrMalformed.
	Check() (Counts, error)
	// Backup writes a consistent copy of the whole database to w, in the
	// backend's own format, without blocking writers, and returns the bytes
	// written. The copy contains signing keys: keep it private.
	Backup(w io.Writer) (int64, error)
	// Export returns everything the store holds but the lockout's
	// counters, as of one moment: what `caddy authgate migrate` copies
	// into another backend.
	Export() (*Snapshot, error)
	// Import stores a snapshot in an empty store, records as they are (ids,
	// digests, hashes, timestamps), in one operation; a store that holds
	// any user already is ErrExists.
	Import(s *Snapshot) error
	// Backend names the backend ("bbolt", "etcd") and what it opened (a
	// file path, cluster endpoints): the identity a process shares one
	// open store by.
	Backend() (kind, location string)
	// Health reports cheaply whether the store answers now: nil, or why
	// not (closed; for a cluster, no word from it for longer than its
	// max_stale). A health check route calls it on every probe.
	Health() error
	// Close releases the store. It is safe to call more than once.
	Close() error
}

// Users are the accounts. A username or an email is a login (UserByLogin
// takes either): both share one namespace, compared as NormalizeLogin
// does.
type Users interface {
	// CreateUser stores a new user. It fills u.ID (when empty), u.V, and
	// u.CreatedAt/u.UpdatedAt (when zero). The username, and the email when
	// set, must not already name a user (ErrExists).
	CreateUser(u *User) error
	// CreateUsers stores new users as CreateUser does, all of them or, on
	// the first error, none.
	CreateUsers(us []*User) error
	// UserByID returns the user with id. The value may be shared with other
	// callers: never modify it (use UpdateUser).
	UserByID(id string) (*User, error)
	// UserByLogin returns the user whose username or email is login. A login
	// that cannot be normalised is ErrNotFound like any unknown login.
	UserByLogin(login string) (*User, error)
	// UpdateUser applies fn to a fresh copy of the user and stores the
	// result atomically; fn's error aborts. ID and CreatedAt cannot be
	// changed, UpdatedAt is set. A new login must not name another user
	// (ErrExists).
	UpdateUser(id string, fn func(u *User) error) (*User, error)
	// DeleteUser removes the user with their API keys and their sessions
	// with all refresh tokens, atomically.
	DeleteUser(id string) error
	// ListUsers returns every user sorted by username (case-insensitively),
	// then ID.
	ListUsers() ([]*User, error)
}

// APIKeys are the long-lived credentials. Only digests are stored, never
// keys or client secrets.
type APIKeys interface {
	// CreateAPIKey stores a new key for an existing owner (else
	// ErrNotFound). It fills k.ID (when empty), k.V and k.CreatedAt (when
	// zero). k.Digest must be set and not belong to another key (ErrExists).
	CreateAPIKey(k *APIKey) error
	// CreateAPIKeys stores new keys as CreateAPIKey does, all of them or, on
	// the first error, none.
	CreateAPIKeys(ks []*APIKey) error
	// APIKeyByDigest returns the key whose digest is d. Revoked and expired
	// keys are returned too; check Usable.
	APIKeyByDigest(d Digest) (*APIKey, error)
	// APIKeyByID returns the key with id.
	APIKeyByID(id string) (*APIKey, error)
	// ListAPIKeys returns the keys of ownerID, or every key when ownerID is
	// "", sorted by CreatedAt then ID.
	ListAPIKeys(ownerID string) ([]*APIKey, error)
	// UpdateAPIKey applies fn to a fresh copy of the key and stores it
	// atomically; fn's error aborts. ID, Digest, OwnerID and CreatedAt
	// cannot be changed.
	UpdateAPIKey(id string, fn func(k *APIKey) error) (*APIKey, error)
	// RevokeAPIKey revokes the key at time at. Revoking a revoked key
	// changes nothing (the first RevokedAt stays).
	RevokeAPIKey(id string, at time.Time) error
	// TouchAPIKeys records when keys were last used, many at once. LastUsed
	// only moves forward; unknown IDs are skipped. It neither moves
	// Generation nor marks the keys changed: nothing is decided by LastUsed.
	TouchAPIKeys(lastUsed map[string]time.Time) error
	// HasLegacyKeys reports whether any imported legacy key (no prefix, no
	// checksum) was ever stored: only then must a key failing the checksum
	// be looked up.
	HasLegacyKeys() bool
}

// Sessions are logins, each with its refresh-token family.
type Sessions interface {
	// CreateSession stores a new session for an existing user (else
	// ErrNotFound) with its first refresh token, given as its digest. It
	// fills sess.ID (when empty), sess.V and sess.CreatedAt (when zero);
	// sess.ExpiresAt is required. With limit > 0 the user keeps at most
	// limit live sessions in the new session's budget (sessions opened with
	// the same KeyID, "" for logins): the oldest are revoked, atomically
	// with the insert, and their number returned.
	CreateSession(sess *Session, refresh Digest, limit int) (revoked int, err error)
	// CreateSessions stores new sessions as CreateSession does without a
	// limit, all of them or, on the first error, none.
	CreateSessions(batch []NewSession) error
	// SessionByID returns the session with id.
	SessionByID(id string) (*Session, error)
	// ListSessions returns the sessions of userID, or all when userID is
	// "", sorted by CreatedAt then ID.
	ListSessions(userID string) ([]*Session, error)
	// LiveSessions counts the user's sessions that are neither revoked nor
	// past their refresh expiry at now, of every budget.
	LiveSessions(userID string, now time.Time) (int, error)
	// LiveSessionsLike counts the user's live sessions at now in the budget
	// of sessions opened with keyID ("" for logins).
	LiveSessionsLike(userID, keyID string, now time.Time) (int, error)
	// RotateRefresh spends the refresh token old and makes next the
	// session's live one, until expiresAt, atomically: of concurrent
	// rotations of one token exactly one succeeds. old unknown is
	// ErrNotFound; old already spent revokes the session, commits that,
	// and is ErrRefreshReused, returned with the session (for the audit
	// trail); a revoked or expired session is ErrSessionRevoked.
	RotateRefresh(old, next Digest, now, expiresAt time.Time) (*Session, error)
	// SessionBySecret returns the session whose live (unspent) refresh
	// token or browser cookie has digest d. An unknown or spent digest is
	// ErrNotFound. A revoked or expired session is returned as it is:
	// check Alive and ExpiresAt.
	SessionBySecret(d Digest) (*Session, error)
	// TouchSessions records when sessions were last used, many at once.
	// LastSeen only moves forward; unknown IDs are skipped. It neither
	// moves Generation nor marks the sessions changed (nothing cached is
	// decided by it; the browser code keeps the recent uses in memory).
	TouchSessions(lastSeen map[string]time.Time) error
	// RevokeSession revokes the session. Revoking a revoked session changes
	// nothing; an unknown one is ErrNotFound.
	RevokeSession(id, reason string, at time.Time) error
	// RevokeUserSessions revokes every live session of the user and returns
	// how many. An unknown user is ErrNotFound.
	RevokeUserSessions(userID, reason string, at time.Time) (int, error)
	// DeleteSessionsExpiredBefore deletes the sessions (revoked or not)
	// whose refresh expiry is before t, with their refresh tokens, and
	// returns how many.
	DeleteSessionsExpiredBefore(t time.Time) (int, error)
}

// SigningKeys are the token signing keys. They hold private key material.
type SigningKeys interface {
	// SigningKeys returns every signing key, retired ones included, sorted
	// by CreatedAt then KID; copies the caller owns.
	SigningKeys() ([]SigningKey, error)
	// EnsureSigningKey returns the newest unretired key for alg or, when
	// there is none, stores the key generate returns; atomically, so two
	// instances provisioning at once never create two keys.
	EnsureSigningKey(alg string, generate func() (SigningKey, error)) (SigningKey, error)
	// AddSigningKey stores a new key (rotation); with retireOthers every
	// other unretired key gets RetiredAt = at.
	AddSigningKey(k SigningKey, retireOthers bool, at time.Time) error
	// DeleteSigningKey removes a key for good: tokens it signed stop
	// verifying.
	DeleteSigningKey(kid string) error
}

// Attempts are the lockout's counters (attempts.go), shared by every
// instance on the store.
type Attempts interface {
	// ReserveAttempt reserves one check of a's account at now under p. A
	// refusal is a wait > 0: the account is locked (for that long), or its
	// failures and the checks in flight reach the threshold.
	ReserveAttempt(a Attempt, now time.Time, p LockPolicy) (r Reservation, wait time.Duration, err error)
	// SettleAttempt records how a reserved check ended. Every reservation
	// is settled once; one its instance never settles (a crash) stops
	// counting after a while. lockedUntil is set when this failure locked
	// the account (for the audit trail).
	SettleAttempt(r Reservation, o Outcome, now time.Time, p LockPolicy) (lockedUntil time.Time, err error)
	// ClearAttempts forgets an account's failures and lock (an unlock).
	ClearAttempts(account AccountKey) error
	// ListAttempts returns the accounts with failures or a lock at now.
	ListAttempts(now time.Time) ([]AttemptState, error)
}

// ChangeFeed is the request path's invalidation seam: bbolt feeds it from
// its own commits, a cluster backend from its watch.
type ChangeFeed interface {
	// Generation is a counter that moves after every write that changed a
	// user, session or API key record (except TouchAPIKeys and
	// TouchSessions). A decision
	// made from records read after loading Generation still holds as long
	// as Generation has not moved, or ChangedSince says its records were not
	// written since.
	Generation() uint64
	// ChangedSince reports whether the user, session or API key with these
	// IDs may have been written after Generation gen ("" names none). False
	// means they certainly were not; true may also mean another record was.
	ChangedSince(gen uint64, userID, sessionID, keyID string) bool
	// SigningKeysChangedSince reports whether a signing key was added,
	// retired or deleted after generation gen: another instance rotated,
	// and the issuer must be rebuilt.
	SigningKeysChangedSince(gen uint64) bool
}
