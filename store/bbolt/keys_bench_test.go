package bbolt

import (
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// BenchmarkTouchAPIKeys20k is one lastUsed batch of a busy gateway: 20,000
// of a store's 100,000 keys used in the last 30 s.
func BenchmarkTouchAPIKeys20k(b *testing.B) {
	s := openTest(b)
	u := mustUser(b, s, "owner")
	const n = 100_000
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 10_000 {
		var ks []*store.APIKey
		for i := start; i < start+10_000; i++ {
			key, _ := secret.NewSecret(secret.KeyPrefix)
			ks = append(ks, &store.APIKey{Name: fmt.Sprint("k", i), OwnerID: u.ID, Permissions: store.PermAll, Digest: store.DigestOf(key), Hint: secret.Mask(key)})
		}
		if err := s.CreateAPIKeys(ks); err != nil {
			b.Fatal(err)
		}
		for _, k := range ks {
			ids = append(ids, k.ID)
		}
	}
	at := time.Now()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		batch := make(map[string]time.Time, 20_000)
		for j := 0; j < 20_000; j++ {
			batch[ids[(i*20_000+j*5)%n]] = at.Add(time.Duration(i+1) * time.Minute)
		}
		if err := s.TouchAPIKeys(batch); err != nil {
			b.Fatal(err)
		}
	}
}
