// Package timed wraps a store.Store so that every operation that reads or
// writes the backend reports how long it took (the authgate_store_seconds
// histogram). The change-feed calls of the request path (Generation,
// ChangedSince, SigningKeysChangedSince, HasLegacyKeys) pass through
// untimed: they are memory reads, made on every request, and must stay as
// cheap as they are; so do Health, Backend and Close.
package timed

import (
	"io"
	"time"

	"github.com/authgate/authgate/store"
)

// Observe receives one operation's name (the store method's, e.g.
// "UserByID") and how long it took, failed or not.
type Observe func(op string, d time.Duration)

// New wraps st.
func New(st store.Store, observe Observe) *Store {
	return &Store{Store: st, observe: observe}
}

// Store is a timed store. Methods it does not override are the embedded
// store's, untimed.
type Store struct {
	store.Store
	observe Observe
}

// since reports the time since start under op.
func (s *Store) since(op string, start time.Time) { s.observe(op, time.Since(start)) }

// ---- Users ----

func (s *Store) CreateUser(u *store.User) error {
	defer s.since("CreateUser", time.Now())
	return s.Store.CreateUser(u)
}

func (s *Store) CreateUsers(us []*store.User) error {
	defer s.since("CreateUsers", time.Now())
	return s.Store.CreateUsers(us)
}

func (s *Store) UserByID(id string) (*store.User, error) {
	defer s.since("UserByID", time.Now())
	return s.Store.UserByID(id)
}

func (s *Store) UserByLogin(login string) (*store.User, error) {
	defer s.since("UserByLogin", time.Now())
	return s.Store.UserByLogin(login)
}

func (s *Store) UpdateUser(id string, fn func(u *store.User) error) (*store.User, error) {
	defer s.since("UpdateUser", time.Now())
	return s.Store.UpdateUser(id, fn)
}

func (s *Store) DeleteUser(id string) error {
	defer s.since("DeleteUser", time.Now())
	return s.Store.DeleteUser(id)
}

func (s *Store) ListUsers() ([]*store.User, error) {
	defer s.since("ListUsers", time.Now())
	return s.Store.ListUsers()
}

// ---- API keys ----

func (s *Store) CreateAPIKey(k *store.APIKey) error {
	defer s.since("CreateAPIKey", time.Now())
	return s.Store.CreateAPIKey(k)
}

func (s *Store) CreateAPIKeys(ks []*store.APIKey) error {
	defer s.since("CreateAPIKeys", time.Now())
	return s.Store.CreateAPIKeys(ks)
}

func (s *Store) APIKeyByDigest(d store.Digest) (*store.APIKey, error) {
	defer s.since("APIKeyByDigest", time.Now())
	return s.Store.APIKeyByDigest(d)
}

func (s *Store) APIKeyByID(id string) (*store.APIKey, error) {
	defer s.since("APIKeyByID", time.Now())
	return s.Store.APIKeyByID(id)
}

func (s *Store) ListAPIKeys(ownerID string) ([]*store.APIKey, error) {
	defer s.since("ListAPIKeys", time.Now())
	return s.Store.ListAPIKeys(ownerID)
}

func (s *Store) UpdateAPIKey(id string, fn func(k *store.APIKey) error) (*store.APIKey, error) {
	defer s.since("UpdateAPIKey", time.Now())
	return s.Store.UpdateAPIKey(id, fn)
}

func (s *Store) RevokeAPIKey(id string, at time.Time) error {
	defer s.since("RevokeAPIKey", time.Now())
	return s.Store.RevokeAPIKey(id, at)
}

func (s *Store) TouchAPIKeys(lastUsed map[string]time.Time) error {
	defer s.since("TouchAPIKeys", time.Now())
	return s.Store.TouchAPIKeys(lastUsed)
}

// ---- Sessions ----

func (s *Store) CreateSession(sess *store.Session, refresh store.Digest, limit int) (int, error) {
	defer s.since("CreateSession", time.Now())
	return s.Store.CreateSession(sess, refresh, limit)
}

func (s *Store) CreateSessions(batch []store.NewSession) error {
	defer s.since("CreateSessions", time.Now())
	return s.Store.CreateSessions(batch)
}

func (s *Store) SessionByID(id string) (*store.Session, error) {
	defer s.since("SessionByID", time.Now())
	return s.Store.SessionByID(id)
}

func (s *Store) ListSessions(userID string) ([]*store.Session, error) {
	defer s.since("ListSessions", time.Now())
	return s.Store.ListSessions(userID)
}

func (s *Store) LiveSessions(userID string, now time.Time) (int, error) {
	defer s.since("LiveSessions", time.Now())
	return s.Store.LiveSessions(userID, now)
}

func (s *Store) LiveSessionsLike(userID, keyID string, now time.Time) (int, error) {
	defer s.since("LiveSessionsLike", time.Now())
	return s.Store.LiveSessionsLike(userID, keyID, now)
}

func (s *Store) RotateRefresh(old, next store.Digest, now, expiresAt time.Time) (*store.Session, error) {
	defer s.since("RotateRefresh", time.Now())
	return s.Store.RotateRefresh(old, next, now, expiresAt)
}

func (s *Store) SessionBySecret(d store.Digest) (*store.Session, error) {
	defer s.since("SessionBySecret", time.Now())
	return s.Store.SessionBySecret(d)
}

func (s *Store) TouchSessions(lastSeen map[string]time.Time) error {
	defer s.since("TouchSessions", time.Now())
	return s.Store.TouchSessions(lastSeen)
}

func (s *Store) RevokeSession(id, reason string, at time.Time) error {
	defer s.since("RevokeSession", time.Now())
	return s.Store.RevokeSession(id, reason, at)
}

func (s *Store) RevokeUserSessions(userID, reason string, at time.Time) (int, error) {
	defer s.since("RevokeUserSessions", time.Now())
	return s.Store.RevokeUserSessions(userID, reason, at)
}

func (s *Store) DeleteSessionsExpiredBefore(t time.Time) (int, error) {
	defer s.since("DeleteSessionsExpiredBefore", time.Now())
	return s.Store.DeleteSessionsExpiredBefore(t)
}

// ---- Signing keys ----

func (s *Store) SigningKeys() ([]store.SigningKey, error) {
	defer s.since("SigningKeys", time.Now())
	return s.Store.SigningKeys()
}

func (s *Store) EnsureSigningKey(alg string, generate func() (store.SigningKey, error)) (store.SigningKey, error) {
	defer s.since("EnsureSigningKey", time.Now())
	return s.Store.EnsureSigningKey(alg, generate)
}

func (s *Store) AddSigningKey(k store.SigningKey, retireOthers bool, at time.Time) error {
	defer s.since("AddSigningKey", time.Now())
	return s.Store.AddSigningKey(k, retireOthers, at)
}

func (s *Store) DeleteSigningKey(kid string) error {
	defer s.since("DeleteSigningKey", time.Now())
	return s.Store.DeleteSigningKey(kid)
}

// ---- The lockout's counters ----

func (s *Store) ReserveAttempt(a store.Attempt, now time.Time, p store.LockPolicy) (store.Reservation, time.Duration, error) {
	defer s.since("ReserveAttempt", time.Now())
	return s.Store.ReserveAttempt(a, now, p)
}

func (s *Store) SettleAttempt(r store.Reservation, o store.Outcome, now time.Time, p store.LockPolicy) (time.Time, error) {
	defer s.since("SettleAttempt", time.Now())
	return s.Store.SettleAttempt(r, o, now, p)
}

func (s *Store) ClearAttempts(account store.AccountKey) error {
	defer s.since("ClearAttempts", time.Now())
	return s.Store.ClearAttempts(account)
}

func (s *Store) ListAttempts(now time.Time) ([]store.AttemptState, error) {
	defer s.since("ListAttempts", time.Now())
	return s.Store.ListAttempts(now)
}

// ---- Maintenance ----

func (s *Store) Check() (store.Counts, error) {
	defer s.since("Check", time.Now())
	return s.Store.Check()
}

func (s *Store) Backup(w io.Writer) (int64, error) {
	defer s.since("Backup", time.Now())
	return s.Store.Backup(w)
}

func (s *Store) Export() (*store.Snapshot, error) {
	defer s.since("Export", time.Now())
	return s.Store.Export()
}

func (s *Store) Import(snap *store.Snapshot) error {
	defer s.since("Import", time.Now())
	return s.Store.Import(snap)
}

var _ store.Store = (*Store)(nil)
