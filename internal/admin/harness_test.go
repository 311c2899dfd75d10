package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store/bbolt"
)

// env is the admin routes and operations on a fresh bbolt file, with the
// service (internal/auth) on the same store to log in with what they
// create.
type env struct {
	t   *testing.T
	st  *bbolt.Store
	ops Ops
	svc *auth.Service
	h   *Handler
	// caddyfile is the backend's Caddyfile adapter; nil refuses the format.
	caddyfile CaddyfileAdapter
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bbolt.Open(filepath.Join(t.TempDir(), "authgate.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := auth.New(st, auth.Config{
		Issuer: "authgate", AccessTTL: time.Hour, RefreshTTL: 24 * time.Hour, SigningAlg: "EdDSA",
		LockoutAttempts: 5, LockoutDuration: time.Minute, SessionLimit: 10, CacheEntries: 1000,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	e := &env{t: t, st: st, ops: Ops{Store: st, Now: time.Now}, svc: svc}
	e.h = NewHandler(func() (Backend, error) { return Backend{Ops: e.ops, Caddyfile: e.caddyfile}, nil })
	return e
}

// addUser adds a user with the email name@example.com.
func (e *env) addUser(name, password string, roles ...string) UserView {
	e.t.Helper()
	v, err := e.ops.AddUser(AddUserRequest{Username: name, Password: password, Email: name + "@example.com", Roles: roles})
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// do serves one request to the routes; a write is JSON.
func (e *env) do(method, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if method != "GET" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// post posts body, encoded as JSON, to a route.
func (e *env) post(path string, body any) *httptest.ResponseRecorder {
	e.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do("POST", path, string(raw))
}

// login logs in through the service and fails the test if it is refused.
func (e *env) login(user, password string) auth.TokenPair {
	e.t.Helper()
	tp, err := e.svc.Login(context.Background(), user, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", user, err)
	}
	return tp
}

// bearer is the principal of an access token.
func (e *env) bearer(token string) *auth.Principal {
	e.t.Helper()
	p, err := e.svc.AuthenticateBearer(token)
	if err != nil {
		e.t.Fatalf("the access token is refused: %v", err)
	}
	return &p
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// noSecrets fails if s contains any of secrets.
func noSecrets(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret (%.6s…)", what, sec)
		}
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// The passwords behind the bcrypt hashes of testdata/import (cost 10).
var importPasswords = map[string]string{
	"alice": "alice-htpasswd-Pw1",
	"bob":   "bob-htpasswd-Pw2",
	"dave":  "dave-htpasswd-Pw3",
}

// The keys of testdata/import/legacy.keys.
const (
	aliceReadKey = "LEGACY-9f3c2a7b41d84e0c9a1b5e6f"
	bobKey       = "4b9e1f2a7c3d5e6f8a9b0c1d2e3f4a5b"
	aliceCIKey   = "legacyapp.Zq8-Wd3_Kp7~Rt2xYv6N"
)

// Real bcrypt hashes (alice's, and another), for the refusal cases.
const (
	aliceHash = "$2y$10$FkyRbuulc7tL8.1O8uD8Be1z4YS32r9rn8AGP/DEwGlM6kBPqdEbK"
	otherHash = "$2a$10$jtZBa/s66MlfNsBHVCSyuetAonISuZ0RChzMM973Y/VBxBIsybcYi"
)

func decodeReport(t *testing.T, w *httptest.ResponseRecorder) ImportReport {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("import: %d %s", w.Code, w.Body)
	}
	var rep ImportReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// outcomes maps username (and key name, for keys) to result and reason.
func outcomes(rep ImportReport) map[string]ImportOutcome {
	m := map[string]ImportOutcome{}
	for _, o := range rep.Results {
		k := o.Username
		if o.KeyName != "" {
			k += "/" + o.KeyName
		}
		m[k] = o
	}
	return m
}

// fakeCaddyfile stands in for Caddy's adapter: Adapt answers json (or
// err) whatever the Caddyfile, Expand replaces the placeholders of env.
type fakeCaddyfile struct {
	json string
	err  error
	env  map[string]string
}

func (f fakeCaddyfile) Adapt([]byte) ([]byte, error) { return []byte(f.json), f.err }

func (f fakeCaddyfile) Expand(v string) string {
	for name, value := range f.env {
		v = strings.ReplaceAll(v, "{env."+name+"}", value)
	}
	return v
}

// account is one basic_auth account in adapted JSON.
type account struct{ Username, Password string }

// adapted is the JSON config Caddy's adapter makes of a site with one
// basic_auth block per element of blocks (of algorithm alg), each nested a
// level deeper in subroutes, as handle blocks nest them.
func adapted(t *testing.T, alg string, blocks ...[]account) string {
	t.Helper()
	var routes []any
	for i := len(blocks) - 1; i >= 0; i-- {
		var accounts []map[string]string
		for _, a := range blocks[i] {
			accounts = append(accounts, map[string]string{"username": a.Username, "password": a.Password})
		}
		handle := []any{map[string]any{
			"handler":   "authentication",
			"providers": map[string]any{"http_basic": map[string]any{"accounts": accounts, "hash": map[string]string{"algorithm": alg}}},
		}}
		if routes != nil {
			handle = append(handle, map[string]any{"handler": "subroute", "routes": routes})
		}
		routes = []any{map[string]any{"handle": handle}}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(map[string]any{"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"srv0": map[string]any{"routes": routes}}}}}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
