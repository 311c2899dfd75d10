package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

func testCreateAPIKey(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ann")
	k, key := MustKey(t, s, u.ID)
	if len(k.ID) != 24 || k.ID[:4] != "key_" || k.V != store.RecordVersion || k.CreatedAt.IsZero() {
		t.Errorf("filled fields: %+v", k)
	}
	got, err := s.APIKeyByDigest(store.DigestOf(key))
	if err != nil || got.ID != k.ID || got.Permissions != store.PermAll || got.Hint != secret.Mask(key) {
		t.Fatalf("APIKeyByDigest = %+v, %v", got, err)
	}
	if got, err := s.APIKeyByID(k.ID); err != nil || got.Digest != k.Digest {
		t.Fatalf("APIKeyByID = %+v, %v", got, err)
	}

	dup := &store.APIKey{OwnerID: u.ID, Digest: k.Digest}
	if err := s.CreateAPIKey(dup); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate digest: err = %v, want ErrExists", err)
	}
	if err := s.CreateAPIKey(&store.APIKey{OwnerID: "usr_nobody", Digest: NewDigest(t)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown owner: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateAPIKey(&store.APIKey{OwnerID: u.ID}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("zero digest: err = %v, want ErrInvalid", err)
	}
	if _, err := s.APIKeyByDigest(NewDigest(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown digest: err = %v, want ErrNotFound", err)
	}
	if _, err := s.APIKeyByID("key_nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
}

func testListAPIKeys(t *testing.T, s store.Store) {
	a, b := MustUser(t, s, "a"), MustUser(t, s, "b")
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	create := func(owner string, id string, at time.Time) {
		if err := s.CreateAPIKey(&store.APIKey{ID: id, OwnerID: owner, Digest: NewDigest(t), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	create(a.ID, "k3", base.Add(2*time.Hour))
	create(a.ID, "k2", base)
	create(a.ID, "k1", base)
	create(b.ID, "k0", base.Add(time.Hour))

	ids := func(list []*store.APIKey, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		var s string
		for _, k := range list {
			s += k.ID + " "
		}
		return s
	}
	if got := ids(s.ListAPIKeys(a.ID)); got != "k1 k2 k3 " {
		t.Errorf("keys of a: %s", got)
	}
	if got := ids(s.ListAPIKeys("")); got != "k1 k2 k0 k3 " {
		t.Errorf("all keys: %s", got)
	}
	if got := ids(s.ListAPIKeys("usr_nobody")); got != "" {
		t.Errorf("keys of nobody: %s", got)
	}
}

func testRevokeAndUpdateAPIKey(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ben")
	k, key := MustKey(t, s, u.ID)
	first := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := s.RevokeAPIKey(k.ID, first); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(k.ID, first.Add(time.Hour)); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	got, _ := s.APIKeyByID(k.ID)
	if !got.Revoked || !got.RevokedAt.Equal(first) {
		t.Errorf("after two revokes: %+v", got)
	}
	if err := s.RevokeAPIKey("key_nobody", first); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: err = %v, want ErrNotFound", err)
	}

	other := MustUser(t, s, "other")
	upd, err := s.UpdateAPIKey(k.ID, func(x *store.APIKey) error {
		x.Name = "renamed"
		x.ID, x.OwnerID, x.Digest, x.CreatedAt = "key_x", other.ID, store.Digest{1}, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "renamed" || upd.ID != k.ID || upd.OwnerID != u.ID || upd.Digest != k.Digest || !upd.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("UpdateAPIKey changed fixed fields: %+v", upd)
	}
	if got, err := s.APIKeyByDigest(store.DigestOf(key)); err != nil || got.Name != "renamed" {
		t.Errorf("by digest after update: %+v, %v", got, err)
	}
}

func testTouchAPIKeys(t *testing.T, s store.Store) {
	u := MustUser(t, s, "cid")
	k1, _ := MustKey(t, s, u.ID)
	k2, _ := MustKey(t, s, u.ID)
	gen := s.Generation()

	at := time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC)
	if err := s.TouchAPIKeys(map[string]time.Time{k1.ID: at, "key_gone": at}); err != nil {
		t.Fatal(err)
	}
	// The file has it; listings read the file.
	if got, _ := s.APIKeyByID(k1.ID); !got.LastUsed.Equal(at) {
		t.Errorf("LastUsed in the file = %v, want %v", got.LastUsed, at)
	}
	if list, _ := s.ListAPIKeys(u.ID); len(list) != 2 || !(list[0].LastUsed.Equal(at) || list[1].LastUsed.Equal(at)) {
		t.Errorf("ListAPIKeys does not show the new LastUsed")
	}
	// Every decision cached on the keys stays: the generation did not move
	// and neither key counts as changed.
	if s.Generation() != gen {
		t.Error("TouchAPIKeys moved the generation")
	}
	if s.ChangedSince(gen, "", "", k1.ID) || s.ChangedSince(gen, "", "", k2.ID) {
		t.Error("TouchAPIKeys marked a key changed")
	}
	// LastUsed never moves back.
	if err := s.TouchAPIKeys(map[string]time.Time{k1.ID: at.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.APIKeyByID(k1.ID); !got.LastUsed.Equal(at) {
		t.Errorf("LastUsed moved back to %v", got.LastUsed)
	}
	// A key record's own LastUsed (an import's, an older build's) counts
	// when it is later.
	later := at.Add(time.Hour)
	if got, err := s.UpdateAPIKey(k2.ID, func(k *store.APIKey) error { k.LastUsed = later; return nil }); err != nil || !got.LastUsed.Equal(later) {
		t.Fatalf("UpdateAPIKey: LastUsed %v, %v", got.LastUsed, err)
	}
	if err := s.TouchAPIKeys(map[string]time.Time{k2.ID: at}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.APIKeyByID(k2.ID); !got.LastUsed.Equal(later) {
		t.Errorf("an earlier touch hid the record's later LastUsed: %v", got.LastUsed)
	}
	if got, _ := s.APIKeyByDigest(k1.Digest); !got.LastUsed.Equal(at) {
		t.Errorf("APIKeyByDigest LastUsed = %v, want %v", got.LastUsed, at)
	}
	if _, err := s.Check(); err != nil {
		t.Errorf("Check after touches: %v", err)
	}
	// A real change still moves the generation and marks the key.
	if err := s.RevokeAPIKey(k1.ID, at); err != nil {
		t.Fatal(err)
	}
	if s.Generation() == gen {
		t.Error("revoking a key did not move the generation")
	}
	if !s.ChangedSince(gen, "", "", k1.ID) {
		t.Error("revoking a key did not mark it changed")
	}
}
