package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/store/bbolt"
)

// importReport is the --json output of `caddy authgate import ...`.
type importReport struct {
	Imported, Skipped int
	Results           []struct {
		Line                                    int
		Username, UserID, KeyID, Result, Reason string
	}
}

func (r importReport) byUser(name string) (userID, keyID string) {
	for _, o := range r.Results {
		if o.Username == name {
			return o.UserID, o.KeyID
		}
	}
	return "", ""
}

// Migrating in (issue: imports): users from an htpasswd file and a
// Caddyfile's basic_auth, legacy API keys from a list, imported with the
// real binary on a stopped server and on a running one; the imported users
// log in and the legacy keys work, and nothing secret is stored or printed.
func TestImports(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	fixtures, err := filepath.Abs(filepath.Join("..", "caddymodule", "testdata", "import"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		alicePW  = "alice-htpasswd-Pw1"
		erinPW   = "erin-caddy-Pw4"
		readKey  = "LEGACY-9f3c2a7b41d84e0c9a1b5e6f" // alice's, read only
		bobKey   = "4b9e1f2a7c3d5e6f8a9b0c1d2e3f4a5b"
		aliceKey = "legacyapp.Zq8-Wd3_Kp7~Rt2xYv6N"
		// alice's bcrypt hash in users.htpasswd, after its cost.
		aliceHashTail = "FkyRbuulc7tL8.1O8uD8Be1z4YS32r9rn8AGP/DEwGlM6kBPqdEbK"
	)
	for _, s := range []string{alicePW, erinPW, readKey, bobKey, aliceKey, aliceHashTail} {
		secret(s)
	}
	noSecret := func(what, out string) {
		t.Helper()
		for _, s := range []string{alicePW, readKey, bobKey, aliceKey, aliceHashTail} {
			if strings.Contains(out, s) {
				t.Errorf("%s: SECURITY: the output contains a secret (%s)", what, redact(s))
			}
		}
	}

	// On the stopped server (--db).
	out := g.CLI(t, "", "import", "htpasswd", filepath.Join(fixtures, "users.htpasswd"), "--roles", "staff")
	if !strings.Contains(out, "imported 3, skipped 0") {
		t.Fatalf("import htpasswd: %q", scrub(out))
	}
	noSecret("import htpasswd", out)
	var keys importReport
	raw := g.CLI(t, "", "import", "keys", filepath.Join(fixtures, "legacy.keys"), "--json")
	noSecret("import keys --json", raw)
	if err := json.Unmarshal([]byte(raw), &keys); err != nil || keys.Imported != 3 {
		t.Fatalf("import keys --json: %v, %q", err, scrub(raw))
	}
	aliceID, readKeyID := keys.byUser("alice")

	// A file with a line in another scheme is refused whole, by line.
	bad := filepath.Join(g.Dir, "bad.htpasswd")
	if err := os.WriteFile(bad, []byte("zed:$2y$10$"+aliceHashTail+"\nyan:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := g.Run("", "authgate", "import", "htpasswd", bad, "--db", g.DB)
	if !errorsIsExit(err) || !strings.Contains(stderr, "line 2: user yan: Apache MD5 (apr1)") {
		t.Errorf("a bad htpasswd: %v, stderr %q", err, scrub(stderr))
	}
	noSecret("a refused import", stdout+stderr)

	g.Start(t)

	// alice logs in with her htpasswd password, and her token works.
	pair := g.Login(t, "alice", alicePW)
	if r := g.Do(t, "GET", "/app/token", nil, bearer(pair.Access)); r.Status != 200 {
		t.Errorf("alice's token: %s", r)
	}
	wantError(t, "alice, wrong password", g.Do(t, "POST", "/rest/login", strings.NewReader(`{"username":"alice","password":"alice-htpasswd-Pw2"}`), H{{"Content-Type", "application/json"}}),
		401, "invalid_credentials", "")

	// Her legacy key reaches the upstream as her, with its permissions.
	mark := up.Mark()
	if r := g.Do(t, "GET", "/app/legacy", nil, apiKey(readKey)); r.Status != 200 {
		t.Fatalf("alice's legacy key: %s", r)
	}
	wantIdentity(t, "legacy key", wantOneUpstream(t, "legacy key", up, mark), map[string]string{
		"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-roles": "staff",
		"x-auth-method": "api_key", "x-auth-key-id": readKeyID, "x-auth-permissions": "read",
	})
	mark = up.Mark()
	wantError(t, "read-only legacy key, POST", g.Do(t, "POST", "/app/legacy", nil, apiKey(readKey)), 403, "insufficient_scope", "")
	for what, near := range map[string]string{
		"one character changed": readKey[:10] + "X" + readKey[11:],
		"truncated":             readKey[:len(readKey)-1],
	} {
		wantError(t, "legacy key, "+what, g.Do(t, "GET", "/app/legacy", nil, apiKey(near)), 401, "invalid_token", challengeInvalid)
	}
	wantNothingUpstream(t, "refused legacy keys", up, mark)
	if r := g.Do(t, "DELETE", "/app/legacy", nil, apiKey(bobKey)); r.Status != 200 {
		t.Errorf("bob's legacy key (all permissions), DELETE: %s", r)
	}

	// On the running server, through its admin endpoint: erin, from a
	// Caddyfile's basic_auth, logs in at once; a second run skips everyone.
	out = g.LiveCLI(t, "", "import", "caddyfile", filepath.Join(fixtures, "basic_auth.Caddyfile"))
	if !strings.Contains(out, "imported 2, skipped 0") {
		t.Fatalf("live import caddyfile: %q", scrub(out))
	}
	g.Login(t, "erin", erinPW)
	out = g.LiveCLI(t, "", "import", "htpasswd", filepath.Join(fixtures, "users.htpasswd"))
	if !strings.Contains(out, "imported 0, skipped 3") {
		t.Errorf("second htpasswd import: %q", scrub(out))
	}

	// The login upgraded alice's hash; the store holds no legacy key.
	g.Stop(t)
	st, err := bbolt.Open(g.DB, bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByLogin("alice")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Errorf("alice's hash after her login: %v, argon2id %v", err, u != nil && strings.HasPrefix(u.PasswordHash, "$argon2id$"))
	}
	st.Close()
	file, err := os.ReadFile(g.DB)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{readKey, bobKey, aliceKey} {
		if strings.Contains(string(file), k) {
			t.Errorf("SECURITY: the store file holds a legacy key (%s)", redact(k))
		}
	}

	// And she still logs in with the same password after a restart.
	g.Start(t)
	g.Login(t, "alice", alicePW)
}
