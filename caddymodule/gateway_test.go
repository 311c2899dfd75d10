package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/store/timed"
)

// gateway is a provisioned app and handler on a real bbolt file, served
// in-process with httptest (no network).
type gateway struct {
	t    testing.TB
	app  *App
	h    *Handler
	ops  admin.Ops
	seen *http.Request // what the last request passed on looked like
	repl *caddy.Replacer
	hits int // how many requests reached the upstream
	// next, if set, runs as the upstream after g.seen is recorded.
	next func(r *http.Request)
}

func newGateway(t testing.TB, h *Handler) *gateway {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	app := &App{DB: filepath.Join(t.TempDir(), "authgate.db")}
	if err := app.Provision(ctx); err != nil {
		t.Fatalf("provision app: %v", err)
	}
	t.Cleanup(func() { _ = app.Cleanup() })
	if err := app.open(); err != nil { // Start without the upkeep loop
		t.Fatalf("open the store: %v", err)
	}
	if h == nil {
		h = &Handler{
			APIs:  []APIMount{{Dialect: "plentymarkets", Prefix: "/rest"}},
			JWKS:  "/.well-known/jwks.json",
			Allow: []string{"/health", "/public/*"},
		}
	}
	if err := h.setup(ctx, app); err != nil {
		t.Fatalf("provision handler: %v", err)
	}
	return &gateway{t: t, app: app, h: h, ops: admin.Ops{Store: app.store, Now: time.Now}}
}

// reconfigure builds the app's service again from its configuration, on
// the same store and lockouts, and the handler on it: for tests that change
// the configuration (lockout, session_limit) after the gateway was made.
func (g *gateway) reconfigure() {
	g.t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	g.t.Cleanup(cancel)
	old := g.app.svc
	svc, err := auth.New(g.app.store, g.app.serviceConfig(), nil)
	if err != nil {
		g.t.Fatalf("reconfigure: %v", err)
	}
	g.app.svc = svc
	old.Close()
	if err := g.h.setup(ctx, g.app); err != nil {
		g.t.Fatalf("reconfigure handler: %v", err)
	}
}

// do serves r and returns the response; g.seen is what the upstream got.
func (g *gateway) do(r *http.Request) *httptest.ResponseRecorder {
	g.t.Helper()
	g.seen = nil
	repl := caddy.NewReplacer()
	g.repl = repl
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		g.hits++
		g.seen = r
		if g.next != nil {
			g.next(r)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err := g.h.ServeHTTP(w, r, next); err != nil {
		g.t.Fatalf("ServeHTTP returned %v", err)
	}
	return w
}

func (g *gateway) addUser(name, password string, roles ...string) admin.UserView {
	g.t.Helper()
	v, err := g.ops.AddUser(admin.AddUserRequest{Username: name, Password: password, Email: name + "@example.com", Roles: roles})
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

func (g *gateway) addKey(user, perms string) admin.CreatedKey {
	g.t.Helper()
	k, err := g.ops.CreateKey(admin.CreateKeyRequest{User: user, Name: "test", Permissions: perms, ClientSecret: true})
	if err != nil {
		g.t.Fatal(err)
	}
	return k
}

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	AccessCamel  string `json:"accessToken"`
	RefreshCamel string `json:"refreshToken"`
	TokenType    string `json:"token_type"`
}

func (g *gateway) login(user, password string) tokenBody {
	g.t.Helper()
	w := g.do(jsonRequest("POST", "/rest/login", `{"username":"`+user+`","password":"`+password+`"}`))
	if w.Code != http.StatusOK {
		g.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var tb tokenBody
	if err := json.Unmarshal(w.Body.Bytes(), &tb); err != nil {
		g.t.Fatal(err)
	}
	return tb
}

func (g *gateway) refresh(rt string) *httptest.ResponseRecorder {
	return g.do(jsonRequest("POST", "/rest/login/refresh", `{"refresh_token":"`+rt+`"}`))
}

func jsonRequest(method, target, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func bearer(method, target, token string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func withKey(method, target, key string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("X-Api-Key", key)
	return r
}

// waitCache lets ristretto's asynchronous Sets land, so a test exercises
// the cached path rather than a miss.
func (g *gateway) waitCache() {
	g.app.svc.WaitCaches()
	g.app.store.(*timed.Store).Store.(*bbolt.Store).WaitCache()
}

func errorCode(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %q", w.Body)
	}
	if body.Description == "" {
		t.Errorf("error %q has no description", body.Error)
	}
	return body.Error
}

func expectRefused(t testing.TB, g *gateway, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d (%s)", w.Code, status, w.Body)
	}
	if got := errorCode(t, w); got != code {
		t.Errorf("error %q, want %q", got, code)
	}
	if g.seen != nil {
		t.Errorf("the upstream was reached on a refused request")
	}
}

func formRequest(target string, v url.Values) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// pmUserBody is the plentymarkets user object as a client reads it.
type pmUserBody struct {
	ID       string   `json:"id"`
	User     string   `json:"user"`
	RealName string   `json:"realName"`
	Email    string   `json:"email"`
	Lang     string   `json:"lang"`
	Timezone string   `json:"timezone"`
	Roles    []string `json:"roles"`
}
