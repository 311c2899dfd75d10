package store

import (
	"errors"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestCreateAPIKey(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "ann")
	k, secret := mustKey(t, s, u.ID)
	if len(k.ID) != 24 || k.ID[:4] != "key_" || k.V != recordVersion || k.CreatedAt.IsZero() {
		t.Errorf("filled fields: %+v", k)
	}
	got, err := s.APIKeyByDigest(DigestOf(secret))
	if err != nil || got.ID != k.ID || got.Permissions != PermAll || got.Hint != Mask(secret) {
		t.Fatalf("APIKeyByDigest = %+v, %v", got, err)
	}
	if got, err := s.APIKeyByID(k.ID); err != nil || got.Digest != k.Digest {
		t.Fatalf("APIKeyByID = %+v, %v", got, err)
	}

	dup := &APIKey{OwnerID: u.ID, Digest: k.Digest}
	if err := s.CreateAPIKey(dup); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate digest: err = %v, want ErrExists", err)
	}
	if err := s.CreateAPIKey(&APIKey{OwnerID: "usr_nobody", Digest: newDigest(t)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown owner: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateAPIKey(&APIKey{OwnerID: u.ID}); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero digest: err = %v, want ErrInvalid", err)
	}
	if _, err := s.APIKeyByDigest(newDigest(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown digest: err = %v, want ErrNotFound", err)
	}
	if _, err := s.APIKeyByID("key_nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
}

func TestListAPIKeys(t *testing.T) {
	s := openTest(t)
	a, b := mustUser(t, s, "a"), mustUser(t, s, "b")
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	create := func(owner string, id string, at time.Time) {
		if err := s.CreateAPIKey(&APIKey{ID: id, OwnerID: owner, Digest: newDigest(t), CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	create(a.ID, "k3", base.Add(2*time.Hour))
	create(a.ID, "k2", base)
	create(a.ID, "k1", base)
	create(b.ID, "k0", base.Add(time.Hour))

	ids := func(list []*APIKey, err error) string {
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

func TestRevokeAndUpdateAPIKey(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "ben")
	k, secret := mustKey(t, s, u.ID)
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
	if err := s.RevokeAPIKey("key_nobody", first); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: err = %v, want ErrNotFound", err)
	}

	other := mustUser(t, s, "other")
	upd, err := s.UpdateAPIKey(k.ID, func(x *APIKey) error {
		x.Name = "renamed"
		x.ID, x.OwnerID, x.Digest, x.CreatedAt = "key_x", other.ID, Digest{1}, time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "renamed" || upd.ID != k.ID || upd.OwnerID != u.ID || upd.Digest != k.Digest || !upd.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("UpdateAPIKey changed fixed fields: %+v", upd)
	}
	if got, err := s.APIKeyByDigest(DigestOf(secret)); err != nil || got.Name != "renamed" {
		t.Errorf("by digest after update: %+v, %v", got, err)
	}
}

func TestTouchAPIKeys(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "cid")
	k1, _ := mustKey(t, s, u.ID)
	k2, _ := mustKey(t, s, u.ID)
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
	if got, err := s.UpdateAPIKey(k2.ID, func(k *APIKey) error { k.LastUsed = later; return nil }); err != nil || !got.LastUsed.Equal(later) {
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

// Deleting a key's owner deletes its last-use time too; Check finds one
// that names no key.
func TestLastUsedGoesWithItsKey(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "dov")
	k, _ := mustKey(t, s, u.ID)
	if err := s.TouchAPIKeys(map[string]time.Time{k.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after deleting the owner: %v", err)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKeysLastUsed).Put([]byte("key_gone"), make([]byte, 8))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Check with a last-use time of no key: %v, want ErrMalformed", err)
	}
}
