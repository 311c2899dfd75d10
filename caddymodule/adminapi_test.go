package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/internal/admin"
)

// The admin routes as the plugin mounts them; the Caddyfile import with
// Caddy's own adapter. The routes themselves are tested in internal/admin.

func ptr[T any](v T) *T { return &v }

// The passwords behind the bcrypt hashes of testdata/import (cost 10).
var importPasswords = map[string]string{
	"alice": "alice-htpasswd-Pw1",
	"bob":   "bob-htpasswd-Pw2",
	"dave":  "dave-htpasswd-Pw3",
	"erin":  "erin-caddy-Pw4",
	"frank": "frank-caddy-Pw5",
}

// The keys of testdata/import/legacy.keys.
const (
	aliceReadKey = "LEGACY-9f3c2a7b41d84e0c9a1b5e6f"
	bobKey       = "4b9e1f2a7c3d5e6f8a9b0c1d2e3f4a5b"
	aliceCIKey   = "legacyapp.Zq8-Wd3_Kp7~Rt2xYv6N"
)

// A real bcrypt hash (alice's), for the refusal cases.
const aliceHash = "$2y$10$FkyRbuulc7tL8.1O8uD8Be1z4YS32r9rn8AGP/DEwGlM6kBPqdEbK"

// The mount hands failures to Caddy's admin endpoint as an APIError with
// the status and the message, and writes nothing itself.
func TestAdminAPIMount(t *testing.T) {
	routes := adminAPI{}.Routes()
	if len(routes) != 1 || routes[0].Pattern != "/authgate/" {
		t.Fatalf("routes: %+v", routes)
	}
	for _, c := range []struct {
		method, path, ct string
		status           int
		msg              string
	}{
		// No config runs in this test binary.
		{"GET", "/authgate/users", "", 503, "authgate is not running in this server's configuration"},
		{"POST", "/authgate/users", "text/plain", 415, "admin write routes accept Content-Type: application/json only"},
		{"GET", "/authgate/nothing", "", 404, "no authgate admin route GET /authgate/nothing"},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader("{}"))
		r.Header.Set("Content-Type", c.ct)
		w := httptest.NewRecorder()
		err := routes[0].Handler.ServeHTTP(w, r)
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatus != c.status || apiErr.Err == nil || apiErr.Err.Error() != c.msg || apiErr.Message != "" {
			t.Errorf("%s %s: %#v, want an APIError %d %q", c.method, c.path, err, c.status, c.msg)
		}
		if w.Body.Len() != 0 || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: the mount wrote %q, headers %v", c.method, c.path, w.Body, w.Header())
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

// importDo posts body to an import route, in-process on g's store, as
// `caddy authgate import --db` serves it.
func importDo(t *testing.T, g *gateway, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", path, bytes.NewReader(raw))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	localHandler(g.app.store).ServeHTTP(w, r)
	return w
}

func decodeReport(t *testing.T, w *httptest.ResponseRecorder) admin.ImportReport {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("import: %d %s", w.Code, w.Body)
	}
	var rep admin.ImportReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
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

// bcryptShape is a plain bcrypt hash.
var bcryptShape = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// Caddyfile users (plain and base64 hashes) log in too.
func TestImportUsersCaddyfileLogin(t *testing.T) {
	g := newGateway(t, nil)
	rep := decodeReport(t, importDo(t, g, "/authgate/import/users", admin.ImportUsersRequest{Format: "caddyfile", Content: fixture(t, "basic_auth.Caddyfile")}))
	if rep.Imported != 2 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, name := range []string{"erin", "frank"} {
		// erin's hash was written plain, frank's base64: both are stored
		// plain, and upgraded at the first login.
		if u, err := g.app.store.UserByLogin(name); err != nil || !bcryptShape.MatchString(u.PasswordHash) {
			t.Fatalf("%s: %v; the hash is not plain bcrypt", name, err)
		}
		g.login(name, importPasswords[name])
		if u, _ := g.app.store.UserByLogin(name); !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Errorf("%s: hash not upgraded", name)
		}
	}
}

func TestImportCaddyfileRefusals(t *testing.T) {
	g := newGateway(t, nil)
	other := "$2a$10$jtZBa/s66MlfNsBHVCSyuetAonISuZ0RChzMM973Y/VBxBIsybcYi"
	site := func(body string) string { return "example.com {\n" + body + "\n}\n" }
	cases := []struct {
		name, caddyfile, want string
		secrets               []string
	}{
		{"argon2id", site("basic_auth argon2id {\n\tgus $argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\n}"),
			"uses argon2id: only bcrypt", []string{"c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}},
		{"conflict", site("basic_auth /a/* {\n\tgus " + aliceHash + "\n}\nbasic_auth /b/* {\n\tgus " + other + "\n}"),
			"user gus: appears more than once with different hashes", []string{aliceHash, other}},
		{"case conflict", site("basic_auth /a/* {\n\tGus " + aliceHash + "\n}\nbasic_auth /b/* {\n\tgus " + aliceHash + "\n}"),
			"user gus: appears more than once", []string{aliceHash}},
		{"not bcrypt", site("basic_auth {\n\tgus {SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n}"),
			"user gus: the hash is neither in crypt form nor base64", nil},
		{"base64 of apr1", site("basic_auth {\n\tgus " + base64.StdEncoding.EncodeToString([]byte("$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/")) + "\n}"),
			"user gus: Apache MD5 (apr1)", nil},
		{"none", site("reverse_proxy 127.0.0.1:8080"), "no basic_auth accounts found", nil},
		// The adapter quotes the token it stopped at: a hash is masked.
		{"adapter error", site(aliceHash + " foo"), "Caddyfile:2", []string{aliceHash}},
		{"adapter error base64", site(base64.StdEncoding.EncodeToString([]byte(aliceHash)) + " foo"), "Caddyfile:2",
			[]string{base64.StdEncoding.EncodeToString([]byte(aliceHash))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := importDo(t, g, "/authgate/import/users", admin.ImportUsersRequest{Format: "caddyfile", Content: c.caddyfile})
			var e struct{ Error string }
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, c.want) {
				t.Errorf("%d %s, want 400 with %q", w.Code, w.Body, c.want)
			}
			noSecrets(t, "the error", w.Body.String(), c.secrets...)
		})
	}
	if users, _ := g.app.store.ListUsers(); len(users) != 0 {
		t.Errorf("a refused import created %d users", len(users))
	}
}
