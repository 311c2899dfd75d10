package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
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
	last *http.Request // the last request served, for its refusal's shape
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
	g.last = r
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

// The refusal shapes of the contract.
const (
	shapeOAuth    = "section 3 {error, error_description}"
	shapeLogin    = "plentymarkets login {error, error_description, message}"
	shapeErrorObj = "plentymarkets {error: {code, message, reason}}"
)

// shapeFor is the shape API.md gives a refusal of r on g, worked out from
// g's mounts (written from the contract, not from the handler's code):
// below a plentymarkets prefix, by whole segments both decoded and as
// sent, the login routes keep the OAuth shape plus message and everything
// else is the error object; elsewhere section 3's shape.
func (g *gateway) shapeFor(r *http.Request) string {
	decoded, sent := path.Clean(r.URL.Path), path.Clean(r.URL.EscapedPath())
	for _, m := range g.h.APIs {
		p := strings.TrimSuffix(m.Prefix, "/")
		in := func(s string) bool { return s == p || strings.HasPrefix(s, p+"/") }
		if m.Dialect != "plentymarkets" || !in(decoded) || !in(sent) {
			continue
		}
		switch strings.TrimPrefix(decoded, p) {
		case "/login", "/login/refresh", "/quick_login":
			return shapeLogin
		}
		return shapeErrorObj
	}
	return shapeOAuth
}

// refusalOf decodes a refusal body of the given shape, failing t on any
// other, and returns its code (the reason, in the error object).
func refusalOf(t testing.TB, w *httptest.ResponseRecorder, shape string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("error body is not a JSON object: %q", w.Body)
	}
	str := func(raw json.RawMessage) string {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("want %s, got %s", shape, w.Body)
		}
		return s
	}
	switch shape {
	case shapeErrorObj:
		var body struct {
			Error struct {
				Code    int
				Message string
				Reason  string
			}
		}
		if len(m) != 1 || json.Unmarshal(m["error"], &body.Error) != nil || body.Error.Code != w.Code || body.Error.Message == "" || body.Error.Reason == "" {
			t.Fatalf("want %s with code %d, got %s", shape, w.Code, w.Body)
		}
		return body.Error.Reason
	case shapeLogin:
		if len(m) != 3 || str(m["error_description"]) == "" || str(m["message"]) != str(m["error_description"]) {
			t.Fatalf("want %s with message = error_description, got %s", shape, w.Body)
		}
	default:
		if len(m) != 2 || str(m["error_description"]) == "" {
			t.Fatalf("want %s exactly, got %s", shape, w.Body)
		}
	}
	return str(m["error"])
}

// expectRefused asserts a refusal of the last request: status, code and
// the body shape the contract gives its path.
func expectRefused(t testing.TB, g *gateway, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d (%s)", w.Code, status, w.Body)
	}
	if got := refusalOf(t, w, g.shapeFor(g.last)); got != code {
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
