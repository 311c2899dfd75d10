package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The hot path: a cached credential through the whole handler (strip,
// authenticate, authorize, inject, drop credentials) to a no-op next
// handler. Run: go test -run '^$' -bench Handler -benchmem ./caddymodule
//
// The *AfterWrite variants first change another user, as any login or
// refresh on a live gateway changes something: the store's Generation has
// then moved past the cached decision's, and every hit also asks the
// store's change log whether its own records were written.

func benchmarkHandler(b *testing.B, afterWrite bool, header string, value func(g *gateway) string) {
	benchmarkHandlerOf(b, nil, afterWrite, header, value)
}

func benchmarkHandlerOf(b *testing.B, h *Handler, afterWrite bool, header string, value func(g *gateway) string) {
	g := newGateway(b, h)
	g.addUser("bench", "pw-bench-123", "admin")
	g.addUser("other", "pw-other-123")
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
	if afterWrite {
		before := g.app.store.Generation()
		if _, err := g.ops.SetDisabled("other", true); err != nil {
			b.Fatal(err)
		}
		if g.app.store.Generation() == before {
			b.Fatal("the write did not move the generation")
		}
	}

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
		b.Fatalf("identity not injected: %v (last answer %d %s)", r.Header, w.Code, w.Body)
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

func apiKeyOfBench(g *gateway) string { return g.addKey("bench", "read").Key }

func bearerOfBench(g *gateway) string {
	return "Bearer " + g.login("bench", "pw-bench-123").AccessToken
}

func BenchmarkHandlerAPIKeyCached(b *testing.B) {
	benchmarkHandler(b, false, "X-Api-Key", apiKeyOfBench)
}

func BenchmarkHandlerBearerCached(b *testing.B) {
	benchmarkHandler(b, false, "Authorization", bearerOfBench)
}

func BenchmarkHandlerAPIKeyCachedAfterWrite(b *testing.B) {
	benchmarkHandler(b, true, "X-Api-Key", apiKeyOfBench)
}

func BenchmarkHandlerBearerCachedAfterWrite(b *testing.B) {
	benchmarkHandler(b, true, "Authorization", bearerOfBench)
}

// A browser session's cookie, with the app's own cookie beside it (the
// handler strips authgate's from the Cookie header on every pass).
func BenchmarkHandlerSessionCached(b *testing.B) {
	h := &Handler{Browser: &BrowserConfig{Prefix: "/auth"}}
	benchmarkHandlerOf(b, h, false, "Cookie", func(g *gateway) string {
		cookie, err := g.app.svc.BrowserLogin(context.Background(), "bench", "pw-bench-123", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return "app_sid=7; authgate=" + cookie
	})
}
