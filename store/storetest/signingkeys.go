package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

func testEnsureSigningKeyOnce(t *testing.T, s store.Store) {
	var generated atomic.Int32
	gen := func() (store.SigningKey, error) {
		n := generated.Add(1)
		return store.SigningKey{KID: fmt.Sprintf("kid%d", n), Alg: "EdDSA", Private: []byte{byte(n)}}, nil
	}
	var wg sync.WaitGroup
	kids := make([]string, 10)
	for i := range kids {
		wg.Go(func() {
			k, err := s.EnsureSigningKey("EdDSA", gen)
			if err != nil {
				t.Error(err)
			}
			kids[i] = k.KID
		})
	}
	wg.Wait()
	if generated.Load() != 1 {
		t.Fatalf("generate ran %d times, want 1", generated.Load())
	}
	for _, kid := range kids {
		if kid != "kid1" {
			t.Fatalf("EnsureSigningKey returned %q, want kid1", kid)
		}
	}
	// Another algorithm gets its own key; a lying generator is refused.
	if _, err := s.EnsureSigningKey("ES256", gen); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("generator returned wrong alg: err = %v, want ErrInvalid", err)
	}
	boom := errors.New("boom")
	if _, err := s.EnsureSigningKey("RS256", func() (store.SigningKey, error) { return store.SigningKey{}, boom }); err != boom {
		t.Errorf("generator error: %v", err)
	}
}

func testSigningKeyRotation(t *testing.T, s store.Store) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.AddSigningKey(store.SigningKey{KID: "a", Alg: "EdDSA", Private: []byte{1}, CreatedAt: t0}, false, t0); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(24 * time.Hour)
	if err := s.AddSigningKey(store.SigningKey{KID: "b", Alg: "EdDSA", Private: []byte{2}}, true, t1); err != nil {
		t.Fatal(err)
	}
	keys, err := s.SigningKeys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("SigningKeys = %+v, %v", keys, err)
	}
	if keys[0].KID != "a" || !keys[0].RetiredAt.Equal(t1) || keys[1].KID != "b" || !keys[1].RetiredAt.IsZero() || !keys[1].CreatedAt.Equal(t1) {
		t.Errorf("after rotation: %+v", keys)
	}
	k, err := s.EnsureSigningKey("EdDSA", func() (store.SigningKey, error) {
		t.Fatal("generated despite a live key")
		return store.SigningKey{}, nil
	})
	if err != nil || k.KID != "b" {
		t.Errorf("EnsureSigningKey = %q, %v; want b", k.KID, err)
	}
	// Copies: changing one does not change the store.
	keys[1].Private[0] = 99
	again, _ := s.SigningKeys()
	if again[1].Private[0] != 2 {
		t.Error("SigningKeys returned shared key material")
	}
	if err := s.AddSigningKey(store.SigningKey{KID: "b", Alg: "EdDSA", Private: []byte{3}}, true, t1); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate kid: err = %v, want ErrExists", err)
	}
	if err := s.DeleteSigningKey("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSigningKey("a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: err = %v, want ErrNotFound", err)
	}
	if keys, _ := s.SigningKeys(); len(keys) != 1 {
		t.Errorf("after delete: %+v", keys)
	}
}
