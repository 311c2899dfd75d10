package admin

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store/bbolt"
)

// On a stopped server's file the rotation keeps the signer's algorithm;
// a store without a key has nothing to rotate.
func TestRotateSigningKeyInTheStore(t *testing.T) {
	st, err := bbolt.Open(filepath.Join(t.TempDir(), "authgate.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops := Ops{Store: st}
	if _, err := ops.RotateSigningKey(""); err == nil || statusOf(err) != 409 || !strings.Contains(err.Error(), "no signing key yet") {
		t.Fatalf("rotate on an empty store: %v", err)
	}
	first, err := auth.RotateSigningKey(st, "ES256", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(func() (Backend, error) { return Backend{Ops: ops}, nil })
	r := httptest.NewRequest("POST", "/authgate/signing-keys/rotate", nil)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"alg":"ES256"`) {
		t.Fatalf("rotate: %d %s", w.Code, w.Body)
	}
	keys, err := ops.ListSigningKeys("")
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	for _, k := range keys {
		if old := k.KID == first.KID; old == k.Signing || old == k.RetiredAt.IsZero() {
			t.Errorf("key %s: signing %v, retired %v", k.KID, k.Signing, k.RetiredAt)
		}
	}
	// The signer is the newest key of the configured algorithm.
	if keys, _ := ops.ListSigningKeys("EdDSA"); keys[0].Signing || keys[1].Signing {
		t.Errorf("a key of another algorithm is shown as the signer: %+v", keys)
	}
}
