// Package storetest is the conformance suite every store.Store backend
// must pass: the behaviour callers rely on, checked through the interface
// only (users and the login namespace, API keys, sessions and their
// refresh rotation, signing keys, the lockout's counters, the change
// feed, export and import, maintenance). A backend's own tests call Run
// with a function that opens a fresh, empty store; what only one backend
// can show (file modes, locking, migrations, cache races, counters kept
// across a restart) stays with that backend's tests.
//
// Time is what the tests pass in as now (a test clock starting at the
// real time); no test sleeps.
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
		t.Run(tc.name, func(t *testing.T) {
			if tc.withOpen != nil {
				tc.withOpen(t, open(t), open)
				return
			}
			tc.run(t, open(t))
		})
	}
}

// suite lists the tests, grouped by entity as the interface is. A test
// that needs a second store (withOpen) is given open too.
var suite = []struct {
	name     string
	run      func(t *testing.T, s store.Store)
	withOpen func(t *testing.T, s store.Store, open func(t *testing.T) store.Store)
}{
	// users.go
	{name: "UsernameUniqueIgnoringCase", run: testUsernameUniqueIgnoringCase},
	{name: "EmailIsALogin", run: testEmailIsALogin},
	{name: "CreateUserValidates", run: testCreateUserValidates},
	{name: "UpdateUser", run: testUpdateUser},
	{name: "DeleteUserRemovesCredentials", run: testDeleteUserRemovesCredentials},
	{name: "ListUsersSorted", run: testListUsersSorted},
	// logins.go
	{name: "ConfusableUsernamesRefused", run: testConfusableUsernamesRefused},
	{name: "ScriptsAllowedTogether", run: testScriptsAllowedTogether},
	{name: "EquivalentSpellingsCollide", run: testEquivalentSpellingsCollide},
	{name: "StoredFormIsCasePreservedNFC", run: testStoredFormIsCasePreservedNFC},
	{name: "UserByLoginEquivalentSpellings", run: testUserByLoginEquivalentSpellings},
	{name: "BadEmailsRefused", run: testBadEmailsRefused},
	{name: "IDShapedLoginsRefused", run: testIDShapedLoginsRefused},
	{name: "LoginByteCaps", run: testLoginByteCaps},
	// keys.go
	{name: "CreateAPIKey", run: testCreateAPIKey},
	{name: "ListAPIKeys", run: testListAPIKeys},
	{name: "RevokeAndUpdateAPIKey", run: testRevokeAndUpdateAPIKey},
	{name: "TouchAPIKeys", run: testTouchAPIKeys},
	// sessions.go
	{name: "RotateRefresh", run: testRotateRefresh},
	{name: "RefreshReuseRevokesSession", run: testRefreshReuseRevokesSession},
	{name: "RefreshExpiredOrRevoked", run: testRefreshExpiredOrRevoked},
	{name: "ConcurrentRotationsOneWins", run: testConcurrentRotationsOneWins},
	{name: "RevokeSessions", run: testRevokeSessions},
	{name: "CreateSessionChecks", run: testCreateSessionChecks},
	{name: "DeleteSessionsExpiredBefore", run: testDeleteSessionsExpiredBefore},
	{name: "CreateSessionLimit", run: testCreateSessionLimit},
	{name: "SessionLimitPerBudget", run: testSessionLimitPerBudget},
	{name: "SessionBySecret", run: testSessionBySecret},
	{name: "BrowserSession", run: testBrowserSession},
	{name: "TouchSessions", run: testTouchSessions},
	// signingkeys.go
	{name: "EnsureSigningKeyOnce", run: testEnsureSigningKeyOnce},
	{name: "SigningKeyRotation", run: testSigningKeyRotation},
	// attempts.go
	{name: "AttemptsLockAtThreshold", run: testAttemptsLockAtThreshold},
	{name: "AttemptsOldFailuresExpire", run: testAttemptsOldFailuresExpire},
	{name: "AttemptsSuccessClears", run: testAttemptsSuccessClears},
	{name: "AttemptsAbandonedCountsNothing", run: testAttemptsAbandonedCountsNothing},
	{name: "AttemptsInFlightCount", run: testAttemptsInFlightCount},
	{name: "AttemptsConcurrentReservations", run: testAttemptsConcurrentReservations},
	{name: "AttemptsKindsSeparate", run: testAttemptsKindsSeparate},
	{name: "ClearAttemptsUnlocks", run: testClearAttemptsUnlocks},
	{name: "ListAttempts", run: testListAttempts},
	// changes.go
	{name: "ChangedSinceMarksEveryWrite", run: testChangedSinceMarksEveryWrite},
	{name: "ChangedSinceLeavesOthers", run: testChangedSinceLeavesOthers},
	{name: "SigningKeysChangedSince", run: testSigningKeysChangedSince},
	// export.go
	{name: "ExportImportRoundTrip", withOpen: testExportImportRoundTrip},
	{name: "ImportIntoNonEmptyStore", withOpen: testImportIntoNonEmptyStore},
	// batch.go
	{name: "CreateUsersBatch", run: testCreateUsersBatch},
	{name: "CreateAPIKeysBatch", run: testCreateAPIKeysBatch},
	{name: "CreateSessionsBatch", run: testCreateSessionsBatch},
	// maintenance.go
	{name: "CheckCounts", run: testCheckCounts},
	{name: "Backup", run: testBackup},
	{name: "CloseTwice", run: testCloseTwice},
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
