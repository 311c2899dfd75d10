package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The hot path: a cached credential through the whole handler (strip,
// authenticate, authorize, inject, drop credentials) to a no-op next
// handler. Run: go test -run '^$' -bench Handler -benchmem ./caddymodule

func benchmarkHandler(b *testing.B, header string, value func(g *gateway) string) {
	g := newGateway(b, nil)
	g.addUser("bench", "pw-bench-123", "admin")
	cred := []string{value(g)}

	r := httptest.NewRequest("GET", "/app/orders?id=7", nil)
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "application/json")
	repl := caddy.NewReplacer()
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()

	// Warm the caches: the first request resolves and caches.
	r.Header[header] = cred
	if err := g.h.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
		b.Fatalf("warm-up: %v %d %s", err, w.Code, w.Body)
	}
	g.waitCache()

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// What Caddy does for every request: a fresh replacer (the handler
		// adds its placeholders to it), and the credential header, which
		// the handler dropped on the previous pass.
		*repl = *caddy.NewReplacer()
		r.Header[header] = cred
		if err := g.h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if r.Header.Get("X-Auth-User") != "bench" {
		b.Fatalf("identity not injected: %v", r.Header)
	}
}

// BenchmarkReplacer is the fresh replacer each BenchmarkHandler pass makes,
// alone: Caddy's cost, not authgate's, to subtract.
func BenchmarkReplacer(b *testing.B) {
	repl := caddy.NewReplacer()
	b.ReportAllocs()
	for b.Loop() {
		*repl = *caddy.NewReplacer()
	}
}

func BenchmarkHandlerAPIKeyCached(b *testing.B) {
	benchmarkHandler(b, "X-Api-Key", func(g *gateway) string { return g.addKey("bench", "read").Key })
}

func BenchmarkHandlerBearerCached(b *testing.B) {
	benchmarkHandler(b, "Authorization", func(g *gateway) string {
		return "Bearer " + g.login("bench", "pw-bench-123").AccessToken
	})
}
