package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// `caddy validate` provisions every module and then cleans up; only a
// started config may touch the store. Provision must neither create a
// store (under sudo it would leave a root-owned file the service cannot
// open) nor open one (a live server holds bbolt's lock).
func TestProvisionLeavesTheStoreAlone(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	db := filepath.Join(t.TempDir(), "authgate.db")
	app := &App{DB: db}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("Provision made the store (stat: %v)", err)
	}
	if err := app.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("a validated config left a store behind (stat: %v)", err)
	}

	// Started, it opens (here: creates) the store.
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	app = &App{DB: db}
	if err := app.Provision(ctx2); err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("Start did not open the store: %v", err)
	}
	_ = app.Stop()
	_ = app.Cleanup()
}

// serve runs one request through h in a goroutine and returns its
// recorder once the handler has answered.
func serve(h *Handler, r *http.Request) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusOK)
			return nil
		}))
		done <- w
	}()
	return done
}

// Caddy starts its apps in no fixed order: the HTTP servers may take
// requests before the authgate app's Start has opened the store. Such a
// request waits for it; if the config is stopped first, it fails closed.
func TestRequestsBeforeStartWait(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	app := &App{DB: filepath.Join(t.TempDir(), "authgate.db")}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	h := &Handler{APIs: []APIMount{{Dialect: "plentymarkets", Prefix: "/rest"}}}
	if err := h.setup(ctx, app); err != nil {
		t.Fatal(err)
	}

	early := serve(h, httptest.NewRequest("GET", "/app", nil))
	select {
	case w := <-early:
		t.Fatalf("a request before Start was answered at once: %d %s", w.Code, w.Body)
	case <-time.After(100 * time.Millisecond):
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer app.Stop()
	select {
	case w := <-early:
		if w.Code != http.StatusUnauthorized {
			t.Errorf("the early request, once started: %d %s, want the 401 of a request without a credential", w.Code, w.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the early request was not answered after Start")
	}

	// A config stopped before it started: its waiting requests get 503.
	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	app2 := &App{DB: filepath.Join(t.TempDir(), "other.db")}
	if err := app2.Provision(ctx2); err != nil {
		t.Fatal(err)
	}
	h2 := &Handler{}
	if err := h2.setup(ctx2, app2); err != nil {
		t.Fatal(err)
	}
	stranded := serve(h2, httptest.NewRequest("GET", "/app", nil))
	cancel2()
	select {
	case w := <-stranded:
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "temporarily_unavailable") {
			t.Errorf("a request on a config stopped before Start: %d %s, want 503", w.Code, w.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request on a stopped config was never answered")
	}
}

// Settings that cannot work are refused when the config loads, in JSON
// configs too (the Caddyfile parser refuses them earlier).
func TestConfigRefusals(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	app := &App{DB: filepath.Join(t.TempDir(), "a.db"), AccessTTL: caddy.Duration(time.Hour), RefreshTTL: caddy.Duration(30 * time.Minute)}
	if err := app.Provision(ctx); err == nil || !strings.Contains(err.Error(), "refresh_ttl") {
		t.Errorf("refresh_ttl shorter than access_ttl: %v, want a refusal naming refresh_ttl", err)
	}

	ctx2, cancel2 := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel2()
	ok := &App{DB: filepath.Join(t.TempDir(), "b.db")}
	if err := ok.Provision(ctx2); err != nil {
		t.Fatal(err)
	}
	defer ok.Cleanup()
	for _, name := range []string{"Authorization", "authorization", "Proxy-Authorization", "Cookie", "x key", "x-key:"} {
		h := &Handler{APIKeyHeader: name}
		if err := h.setup(ctx2, ok); err == nil || !strings.Contains(err.Error(), "api_key_header") {
			t.Errorf("api_key_header %q: %v, want a refusal", name, err)
		}
	}
	if err := (&Handler{APIKeyHeader: "X-Legacy-Key"}).setup(ctx2, ok); err != nil {
		t.Errorf("api_key_header X-Legacy-Key: %v", err)
	}
}
