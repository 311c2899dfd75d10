// Package storetest is the conformance suite every store.Store backend
// must pass: the behaviour callers rely on, checked through the interface
// only (users and the login namespace, API keys, sessions and their
// refresh rotation, signing keys, the change feed, maintenance). A
// backend's own tests call Run with a function that opens a fresh, empty
// store; what only one backend can show (file modes, locking, migrations,
// cache races) stays with that backend's tests.
package storetest

import (
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Run runs every test of the suite as a subtest of t, each on its own
// store from open. open must return a fresh, empty store and close it when
// its test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// suite lists the tests, grouped by entity as the interface is.
var suite = []struct {
	name string
	run  func(t *testing.T, s store.Store)
}{
	// users.go
	{"UsernameUniqueIgnoringCase", testUsernameUniqueIgnoringCase},
	{"EmailIsALogin", testEmailIsALogin},
	{"CreateUserValidates", testCreateUserValidates},
	{"UpdateUser", testUpdateUser},
	{"DeleteUserRemovesCredentials", testDeleteUserRemovesCredentials},
	{"ListUsersSorted", testListUsersSorted},
	// logins.go
	{"ConfusableUsernamesRefused", testConfusableUsernamesRefused},
	{"ScriptsAllowedTogether", testScriptsAllowedTogether},
	{"EquivalentSpellingsCollide", testEquivalentSpellingsCollide},
	{"StoredFormIsCasePreservedNFC", testStoredFormIsCasePreservedNFC},
	{"UserByLoginEquivalentSpellings", testUserByLoginEquivalentSpellings},
	{"BadEmailsRefused", testBadEmailsRefused},
	{"IDShapedLoginsRefused", testIDShapedLoginsRefused},
	{"LoginByteCaps", testLoginByteCaps},
	// keys.go
	{"CreateAPIKey", testCreateAPIKey},
	{"ListAPIKeys", testListAPIKeys},
	{"RevokeAndUpdateAPIKey", testRevokeAndUpdateAPIKey},
	{"TouchAPIKeys", testTouchAPIKeys},
	// sessions.go
	{"RotateRefresh", testRotateRefresh},
	{"RefreshReuseRevokesSession", testRefreshReuseRevokesSession},
	{"RefreshExpiredOrRevoked", testRefreshExpiredOrRevoked},
	{"ConcurrentRotationsOneWins", testConcurrentRotationsOneWins},
	{"RevokeSessions", testRevokeSessions},
	{"CreateSessionChecks", testCreateSessionChecks},
	{"DeleteSessionsExpiredBefore", testDeleteSessionsExpiredBefore},
	{"CreateSessionLimit", testCreateSessionLimit},
	{"SessionLimitPerBudget", testSessionLimitPerBudget},
	// signingkeys.go
	{"EnsureSigningKeyOnce", testEnsureSigningKeyOnce},
	{"SigningKeyRotation", testSigningKeyRotation},
	// changes.go
	{"ChangedSinceMarksEveryWrite", testChangedSinceMarksEveryWrite},
	{"ChangedSinceLeavesOthers", testChangedSinceLeavesOthers},
	// batch.go
	{"CreateUsersBatch", testCreateUsersBatch},
	{"CreateAPIKeysBatch", testCreateAPIKeysBatch},
	{"CreateSessionsBatch", testCreateSessionsBatch},
	// maintenance.go
	{"CheckCounts", testCheckCounts},
	{"Backup", testBackup},
	{"CloseTwice", testCloseTwice},
}

// MustUser creates a user named name.
func MustUser(t testing.TB, s store.Store, name string) *store.User {
	t.Helper()
	u := &store.User{Username: name}
	if err := s.CreateUser(u); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// MustKey creates an API key for owner and returns it with its secret.
func MustKey(t testing.TB, s store.Store, ownerID string) (*store.APIKey, string) {
	t.Helper()
	key, err := secret.NewSecret(secret.KeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	k := &store.APIKey{Name: "test", OwnerID: ownerID, Permissions: store.PermAll, Digest: store.DigestOf(key), Hint: secret.Mask(key)}
	if err := s.CreateAPIKey(k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return k, key
}

// MustSession opens a session for userID and returns it with its refresh
// token's digest.
func MustSession(t testing.TB, s store.Store, userID string) (*store.Session, store.Digest) {
	t.Helper()
	sess := &store.Session{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	d := NewDigest(t)
	if _, err := s.CreateSession(sess, d, 0); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess, d
}

// NewDigest returns the digest of a fresh refresh token.
func NewDigest(t testing.TB) store.Digest {
	t.Helper()
	token, err := secret.NewSecret(secret.RefreshPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return store.DigestOf(token)
}
