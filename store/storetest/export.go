package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// Export and Import, between two stores of the backend under test (a
// migration between backends is a snapshot moved the same way).

// mustJSON encodes v: records compare by their encoding, which every
// backend's copies agree on (times as instants with their zone, empty
// slices as none).
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// exportSource fills s with one of everything a snapshot carries: users
// with every kind of field, a key with a touched LastUsed, a revoked
// legacy key with a client secret, a rotated session (a spent and a live
// refresh token), a revoked one, a browser session with a touched
// LastSeen, a retired and a live signing key.
type exportSource struct {
	u, v            *store.User
	key             string // the secret of k
	k, legacy       *store.APIKey
	used            time.Time
	sess            *store.Session
	spent, live     store.Digest
	revoked         *store.Session
	browser         *store.Session
	cookie          store.Digest
	seen            time.Time
	now             time.Time
	legacySecretKey string
}

func fillExportSource(t *testing.T, s store.Store) *exportSource {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	x := &exportSource{now: now, legacySecretKey: "legacyKey0123456789abcdef"}
	x.u = &store.User{
		Username: "Ivy", Email: "ivy@example.com", FirstName: "Ivy", LastName: "Ng", Lang: "de",
		Roles:        []string{"admin", "ops"},
		Settings:     []store.Setting{{ID: 7, Name: "theme", Value: "dark", UserID: "x"}},
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		PINHash:      "$argon2id$v=19$m=65536,t=3,p=4$cGlu$cGluaGFzaA",
		SessionLimit: 4, TokenEpoch: 3,
		LastLogIn: now.Add(-time.Hour), CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-24 * time.Hour),
	}
	if err := s.CreateUser(x.u); err != nil {
		t.Fatal(err)
	}
	x.v = MustUser(t, s, "jo")
	if _, err := s.UpdateUser(x.v.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	x.k, x.key = MustKey(t, s, x.u.ID)
	x.used = now.Add(-time.Minute)
	if err := s.TouchAPIKeys(map[string]time.Time{x.k.ID: x.used}); err != nil {
		t.Fatal(err)
	}
	x.legacy = &store.APIKey{
		Name: "imported", OwnerID: x.v.ID, Permissions: store.PermRead, Legacy: true,
		Digest: store.DigestOf(x.legacySecretKey), Hint: "lega…cdef",
		ClientSecretDigest: store.DigestOf("client-secret"), ClientSecretHint: "cli…ret",
		ExpiresAt: now.Add(24 * time.Hour),
	}
	if err := s.CreateAPIKey(x.legacy); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(x.legacy.ID, now); err != nil {
		t.Fatal(err)
	}
	x.sess, x.spent = MustSession(t, s, x.u.ID)
	x.live = NewDigest(t)
	if _, err := s.RotateRefresh(x.spent, x.live, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	x.revoked, _ = MustSession(t, s, x.v.ID)
	if err := s.RevokeSession(x.revoked.ID, "logout", now); err != nil {
		t.Fatal(err)
	}
	x.browser, x.cookie = &store.Session{UserID: x.u.ID, Browser: true, ExpiresAt: now.Add(time.Hour)}, NewDigest(t)
	if _, err := s.CreateSession(x.browser, x.cookie, 0); err != nil {
		t.Fatal(err)
	}
	x.seen = now.Add(-2 * time.Minute)
	if err := s.TouchSessions(map[string]time.Time{x.browser.ID: x.seen}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSigningKey(store.SigningKey{KID: "old", Alg: "EdDSA", Private: []byte{1, 2}, CreatedAt: now.Add(-48 * time.Hour)}, false, now); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSigningKey(store.SigningKey{KID: "new", Alg: "EdDSA", Private: []byte{3, 4}}, true, now); err != nil {
		t.Fatal(err)
	}
	return x
}

// testExportImportRoundTrip: a snapshot imported into a fresh store holds
// every record as it was, indexed: logins by any spelling, keys by digest
// (LastUsed kept), sessions by refresh token (the live one rotates, the
// spent one is reuse), signing keys; and the change feed moves.
func testExportImportRoundTrip(t *testing.T, src store.Store, open func(t *testing.T) store.Store) {
	x := fillExportSource(t, src)
	snap, err := src.Export()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 2 || len(snap.APIKeys) != 2 || len(snap.Sessions) != 3 || len(snap.Refresh) != 4 ||
		len(snap.SigningKeys) != 2 || !snap.LegacyKeys {
		t.Fatalf("Export: %d users, %d keys, %d sessions, %d refresh tokens, %d signing keys, legacy %v",
			len(snap.Users), len(snap.APIKeys), len(snap.Sessions), len(snap.Refresh), len(snap.SigningKeys), snap.LegacyKeys)
	}
	spent := 0
	for _, r := range snap.Refresh {
		if r.Spent {
			spent++
			if r.Digest != x.spent || r.SessionID != x.sess.ID {
				t.Errorf("spent refresh token: %+v", r)
			}
		}
	}
	if spent != 1 {
		t.Errorf("%d spent refresh tokens exported, want 1", spent)
	}
	for _, sess := range snap.Sessions {
		if (sess.ID == x.browser.ID) != (sess.Browser && sess.LastSeen.Equal(x.seen)) {
			t.Errorf("exported session %s: browser %v, last seen %v; want only %s a browser session seen at %v",
				sess.ID, sess.Browser, sess.LastSeen, x.browser.ID, x.seen)
		}
	}
	before := mustJSON(t, snap)

	dst := open(t)
	gen := dst.Generation()
	if err := dst.Import(snap); err != nil {
		t.Fatalf("Import: %v", err)
	}
	if mustJSON(t, snap) != before {
		t.Error("Import modified the snapshot")
	}
	if dst.Generation() == gen {
		t.Error("Import did not move the generation")
	}
	if !dst.ChangedSince(gen, x.u.ID, "", "") || !dst.ChangedSince(gen, "", x.sess.ID, "") || !dst.ChangedSince(gen, "", "", x.k.ID) {
		t.Error("Import did not mark its records changed")
	}
	if !dst.SigningKeysChangedSince(gen) {
		t.Error("Import did not mark the signing keys changed")
	}

	// Every record as it was.
	for _, c := range []struct {
		what string
		get  func(s store.Store) (any, error)
	}{
		{"users", func(s store.Store) (any, error) { return s.ListUsers() }},
		{"api keys", func(s store.Store) (any, error) { return s.ListAPIKeys("") }},
		{"sessions", func(s store.Store) (any, error) { return s.ListSessions("") }},
		{"signing keys", func(s store.Store) (any, error) { return s.SigningKeys() }},
		{"counts", func(s store.Store) (any, error) { return s.Check() }},
	} {
		want, err := c.get(src)
		if err != nil {
			t.Fatalf("%s of the source: %v", c.what, err)
		}
		got, err := c.get(dst)
		if err != nil {
			t.Fatalf("%s after Import: %v", c.what, err)
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Errorf("%s after Import:\n got %s\nwant %s", c.what, g, w)
		}
	}
	if !dst.HasLegacyKeys() {
		t.Error("HasLegacyKeys is false after importing a legacy key")
	}

	// Indexed as the store's own writes index them.
	for login, id := range map[string]string{"ivy": x.u.ID, "IVY": x.u.ID, "ｉｖｙ": x.u.ID, "Ivy@Example.COM": x.u.ID, "JO": x.v.ID} {
		if got, err := dst.UserByLogin(login); err != nil || got.ID != id {
			t.Errorf("UserByLogin(%q) after Import = %+v, %v; want %s", login, got, err, id)
		}
	}
	if got, err := dst.APIKeyByDigest(store.DigestOf(x.key)); err != nil || got.ID != x.k.ID || !got.LastUsed.Equal(x.used) {
		t.Errorf("APIKeyByDigest after Import = %+v, %v; want %s last used %v", got, err, x.k.ID, x.used)
	}
	if got, err := dst.APIKeyByDigest(store.DigestOf(x.legacySecretKey)); err != nil || got.ID != x.legacy.ID ||
		!got.Legacy || !got.Revoked || got.ClientSecretDigest != x.legacy.ClientSecretDigest {
		t.Errorf("legacy key after Import = %+v, %v", got, err)
	}
	if keys, err := dst.ListAPIKeys(x.u.ID); err != nil || len(keys) != 1 || keys[0].ID != x.k.ID {
		t.Errorf("ListAPIKeys(owner) after Import = %+v, %v", keys, err)
	}
	if n, err := dst.LiveSessions(x.u.ID, x.now); err != nil || n != 2 {
		t.Errorf("LiveSessions after Import = %d, %v; want 2", n, err)
	}
	if got, err := dst.SessionBySecret(x.cookie); err != nil || got.ID != x.browser.ID || !got.Browser || !got.LastSeen.Equal(x.seen) {
		t.Errorf("SessionBySecret(cookie) after Import = %+v, %v; want %s, a browser session seen at %v", got, err, x.browser.ID, x.seen)
	}
	// LastSeen still only moves forward after the import.
	if err := dst.TouchSessions(map[string]time.Time{x.browser.ID: x.seen.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.SessionByID(x.browser.ID); err != nil || !got.LastSeen.Equal(x.seen) {
		t.Errorf("an earlier touch after Import hid the imported LastSeen: %v, %v", got.LastSeen, err)
	}
	next := NewDigest(t)
	got, err := dst.RotateRefresh(x.live, next, x.now, x.now.Add(time.Hour))
	if err != nil || got.ID != x.sess.ID || got.Generation != 2 {
		t.Fatalf("rotating the live refresh token after Import = %+v, %v", got, err)
	}
	if _, err := dst.RotateRefresh(x.spent, NewDigest(t), x.now, x.now.Add(time.Hour)); !errors.Is(err, store.ErrRefreshReused) {
		t.Errorf("the spent refresh token after Import: err = %v, want ErrRefreshReused", err)
	}
	if _, err := dst.Check(); err != nil {
		t.Errorf("Check after Import: %v", err)
	}

	// The source is its own: the import's writes are not its.
	if sess, err := src.SessionByID(x.sess.ID); err != nil || sess.Revoked || sess.Generation != 1 {
		t.Errorf("source session after writes to the import: %+v, %v", sess, err)
	}
}

// testImportIntoNonEmptyStore: a store holding a user refuses a snapshot
// (ErrExists) and keeps nothing of it; an empty snapshot into an empty
// store is nothing to do.
func testImportIntoNonEmptyStore(t *testing.T, src store.Store, open func(t *testing.T) store.Store) {
	u := MustUser(t, src, "ann")
	MustSession(t, src, u.ID)
	if err := src.AddSigningKey(store.SigningKey{KID: "k", Alg: "EdDSA", Private: []byte{1}}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Export()
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Import(snap); !errors.Is(err, store.ErrExists) {
		t.Errorf("Import into its own source: err = %v, want ErrExists", err)
	}

	dst := open(t)
	MustUser(t, dst, "bea")
	if err := dst.Import(snap); !errors.Is(err, store.ErrExists) {
		t.Errorf("Import into a store with a user: err = %v, want ErrExists", err)
	}
	if _, err := dst.UserByID(u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused Import left its user: %v", err)
	}
	if keys, err := dst.SigningKeys(); err != nil || len(keys) != 0 {
		t.Errorf("a refused Import left signing keys: %+v, %v", keys, err)
	}
	if c, err := dst.Check(); err != nil || c != (store.Counts{Users: 1}) {
		t.Errorf("Check after a refused Import = %+v, %v", c, err)
	}

	empty := open(t)
	if err := empty.Import(&store.Snapshot{}); err != nil {
		t.Errorf("empty snapshot: %v", err)
	}
	if c, err := empty.Check(); err != nil || c != (store.Counts{}) {
		t.Errorf("Check after an empty Import = %+v, %v", c, err)
	}
}
