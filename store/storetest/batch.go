package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// The batch creations store everything in one transaction, or nothing: a
// bad record anywhere in the batch leaves the store as it was, and the
// store still passes Check.
func testCreateUsersBatch(t *testing.T, s store.Store) {
	MustUser(t, s, "taken")
	batch := func(names ...string) []*store.User {
		us := make([]*store.User, len(names))
		for i, n := range names {
			us[i] = &store.User{Username: n, Email: n + "@example.com"}
		}
		return us
	}
	if err := s.CreateUsers(batch("b1", "b2", "taken", "b3")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("batch with a taken username: %v, want ErrExists", err)
	}
	for _, n := range []string{"b1", "b2", "b3"} {
		if _, err := s.UserByLogin(n); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of the failed batch: %v, want ErrNotFound", n, err)
		}
	}
	if err := s.CreateUsers(batch("b1", "b2", "b1")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("batch naming one user twice: %v, want ErrExists", err)
	}
	good := batch("c1", "c2", "c3")
	if err := s.CreateUsers(good); err != nil {
		t.Fatal(err)
	}
	for _, u := range good {
		got, err := s.UserByLogin(u.Email)
		if err != nil || got.ID != u.ID || u.ID == "" {
			t.Errorf("%s: %v, %+v", u.Username, err, got)
		}
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after batches: %v", err)
	}
}

func testCreateAPIKeysBatch(t *testing.T, s store.Store) {
	u := MustUser(t, s, "owner")
	newKey := func(owner string, legacy bool) (*store.APIKey, string) {
		key, err := secret.NewSecret(secret.KeyPrefix)
		if err != nil {
			t.Fatal(err)
		}
		return &store.APIKey{Name: "k", OwnerID: owner, Permissions: store.PermRead, Digest: store.DigestOf(key), Legacy: legacy}, key
	}
	a, keyA := newKey(u.ID, false)
	orphan, _ := newKey("usr_nobody", false)
	if err := s.CreateAPIKeys([]*store.APIKey{a, orphan}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("batch with an unknown owner: %v, want ErrNotFound", err)
	}
	if _, err := s.APIKeyByDigest(store.DigestOf(keyA)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a key of the failed batch was stored: %v", err)
	}
	var keys []*store.APIKey
	var plainKeys []string
	for i := range 5 {
		k, key := newKey(u.ID, i == 3)
		keys, plainKeys = append(keys, k), append(plainKeys, key)
	}
	if s.HasLegacyKeys() {
		t.Fatal("legacy flag set before any legacy key")
	}
	if err := s.CreateAPIKeys(keys); err != nil {
		t.Fatal(err)
	}
	for i, key := range plainKeys {
		if k, err := s.APIKeyByDigest(store.DigestOf(key)); err != nil || k.ID != keys[i].ID {
			t.Errorf("key %d: %v", i, err)
		}
	}
	if list, _ := s.ListAPIKeys(u.ID); len(list) != 5 {
		t.Errorf("owner lists %d keys, want 5", len(list))
	}
	if !s.HasLegacyKeys() {
		t.Error("a batch with a legacy key did not set the legacy flag")
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after batches: %v", err)
	}
}

func testCreateSessionsBatch(t *testing.T, s store.Store) {
	u := MustUser(t, s, "sam")
	exp := time.Now().Add(time.Hour)
	var batch []store.NewSession
	for i := range 4 {
		batch = append(batch, store.NewSession{Session: &store.Session{UserID: u.ID, ExpiresAt: exp}, Refresh: store.DigestOf(fmt.Sprint("refresh-", i))})
	}
	bad := append(batch[:2:2], store.NewSession{Session: &store.Session{UserID: "usr_nobody", ExpiresAt: exp}, Refresh: store.DigestOf("r-x")})
	if err := s.CreateSessions(bad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("batch with an unknown user: %v, want ErrNotFound", err)
	}
	if live, _ := s.LiveSessions(u.ID, time.Now()); live != 0 {
		t.Fatalf("the failed batch left %d sessions", live)
	}
	for i := range batch { // the failed batch filled in IDs; start afresh
		batch[i].Session.ID = ""
	}
	if err := s.CreateSessions(batch); err != nil {
		t.Fatal(err)
	}
	if live, _ := s.LiveSessions(u.ID, time.Now()); live != 4 {
		t.Fatalf("%d live sessions, want 4", live)
	}
	// Each refresh token works once, as for CreateSession.
	next, err := s.RotateRefresh(store.DigestOf("refresh-2"), store.DigestOf("refresh-2b"), time.Now(), exp)
	if err != nil || next.ID != batch[2].Session.ID {
		t.Fatalf("RotateRefresh of a batch session: %v", err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after batches: %v", err)
	}
}
