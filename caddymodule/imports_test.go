package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/store"
)

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

func fixture(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// importDo posts body to an import route of the in-process admin API.
func importDo(t *testing.T, g *gateway, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", path, bytes.NewReader(raw))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	newAdminHandler(localBackend(g.app.store, time.Now)).ServeHTTP(w, r)
	return w
}

func decodeReport(t *testing.T, w *httptest.ResponseRecorder) importReport {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("import: %d %s", w.Code, w.Body)
	}
	var rep importReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// outcomes maps username (and key name, for keys) to result and reason.
func outcomes(rep importReport) map[string]importOutcome {
	m := map[string]importOutcome{}
	for _, o := range rep.Results {
		k := o.Username
		if o.KeyName != "" {
			k += "/" + o.KeyName
		}
		m[k] = o
	}
	return m
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

func TestImportParseHtpasswd(t *testing.T) {
	users, err := parseHtpasswd(fixture(t, "users.htpasswd"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line int
		name string
	}{{3, "alice"}, {5, "bob"}, {6, "dave"}}
	if len(users) != len(want) {
		t.Fatalf("got %d users, want %d", len(users), len(want))
	}
	for i, w := range want {
		if users[i].Line != w.line || users[i].Username != w.name || !strings.HasPrefix(users[i].Hash, "$2") {
			t.Errorf("user %d: line %d %q, want line %d %q", i, users[i].Line, users[i].Username, w.line, w.name)
		}
	}
	// CRLF line ends and a byte order mark are read alike.
	crlf := "\ufeff" + strings.ReplaceAll(fixture(t, "users.htpasswd"), "\n", "\r\n")
	if again, err := parseHtpasswd(crlf); err != nil || len(again) != 3 || again[0].Hash != users[0].Hash {
		t.Errorf("CRLF file: %d users, %v", len(again), err)
	}
}

func TestImportParseHtpasswdRefusals(t *testing.T) {
	cost16 := strings.Replace(aliceHash, "$10$", "$16$", 1)
	cases := []struct {
		name, line, want string
	}{
		{"apr1", "eve:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "Apache MD5 (apr1): only bcrypt"},
		{"sha1", "eve:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"},
		{"md5crypt", "eve:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "MD5-crypt"},
		{"sha512crypt", "eve:$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/", "SHA-crypt"},
		{"des", "eve:rOyRIoNuFnJAE", "DES crypt"},
		{"plain", "eve:correct horse battery staple", "plain-text password"},
		{"2x", "eve:" + strings.Replace(aliceHash, "$2y$", "$2x$", 1), "buggy bcrypt"},
		{"truncated", "eve:" + aliceHash[:50], "not a well-formed bcrypt hash"},
		{"bad alphabet", "eve:" + aliceHash[:59] + "!", "not a well-formed bcrypt hash"},
		{"cost 16", "eve:" + cost16, "cost 16 is above 15"},
		{"no colon", "eve " + aliceHash, "want user:hash"},
		{"empty user", ":" + aliceHash, "empty username"},
		{"space in user", "e ve:" + aliceHash, "whitespace"},
		{"duplicate", "Eve:" + aliceHash + "\neve:" + aliceHash, "already on line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			content := "# header\n" + c.line + "\n"
			users, err := parseHtpasswd(content)
			if err == nil {
				t.Fatalf("accepted (%d users)", len(users))
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "line ") {
				t.Errorf("error %q, want it to name the line and contain %q", msg, c.want)
			}
			// The part after "eve:" is the hash (or password): never echoed.
			_, secret, _ := strings.Cut(strings.Split(c.line, "\n")[0], ":")
			if len(secret) > 8 {
				noSecrets(t, "the error", msg, secret)
			}
		})
	}
	// Every bad line is listed.
	_, err := parseHtpasswd("a:" + aliceHash + "\nb:{SHA}x\nc:$apr1$x$y\n")
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a file with two bad lines: %v", err)
	}
	// A long list is cut short.
	_, err = parseHtpasswd(strings.Repeat("x:{SHA}x\n", maxProblems+5))
	if err == nil || !strings.Contains(err.Error(), "line 20:") || strings.Contains(err.Error(), "line 21:") || !strings.HasSuffix(err.Error(), "... and 5 more") {
		t.Errorf("25 bad lines: %v", err)
	}
	if _, err := parseHtpasswd("# nothing\n\n"); err == nil || !strings.Contains(err.Error(), "no user:hash lines") {
		t.Errorf("an empty file: %v", err)
	}
}

func TestImportParseCaddyfile(t *testing.T) {
	users, err := parseCaddyfileBasicAuth(fixture(t, "basic_auth.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range users {
		got[u.Username] = u.Hash
	}
	if len(users) != 2 || len(got) != 2 {
		t.Fatalf("got %v, want erin once and frank", got)
	}
	// erin's hash was written plain, frank's base64: both come out plain.
	for name, hash := range got {
		if !bcryptShape.MatchString(hash) {
			t.Errorf("%s: hash is not plain bcrypt", name)
		}
	}
}

func TestImportParseCaddyfileRefusals(t *testing.T) {
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
			users, err := parseCaddyfileBasicAuth(c.caddyfile)
			if err == nil {
				t.Fatalf("accepted (%d users)", len(users))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			noSecrets(t, "the error", err.Error(), c.secrets...)
		})
	}
}

func TestImportParseKeys(t *testing.T) {
	keys, err := parseLegacyKeys(fixture(t, "legacy.keys"))
	if err != nil {
		t.Fatal(err)
	}
	want := []importedKey{
		{Line: 2, Username: "alice", Key: aliceReadKey, Permissions: store.PermRead, Name: "reporting"},
		{Line: 3, Username: "bob", Key: bobKey, Permissions: store.PermAll, Name: "legacy-3"},
		{Line: 6, Username: "alice", Key: aliceCIKey, Permissions: store.PermAll, Name: "ci deploy key"},
	}
	if len(keys) != len(want) {
		t.Fatalf("got %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("key %d: got line %d %s %s %q, want line %d %s %s %q", i, keys[i].Line, keys[i].Username,
				keys[i].Permissions, keys[i].Name, want[i].Line, want[i].Username, want[i].Permissions, want[i].Name)
		}
	}

	long := strings.Repeat("k", maxLegacyKey+1)
	cases := []struct {
		name, line, want, secret string
	}{
		{"short", "alice abcdefghijklmno", "has 15 characters; want 16 to 512", "abcdefghijklmno"},
		{"long", "alice " + long, "has 513 characters", long},
		{"control", "alice abcdefgh\x01ijklmnopq", "control or non-ASCII character at position 9", "ijklmnopq"},
		{"non-ASCII", "alice abcdefghijklmnopä", "non-ASCII", "abcdefghijklmnop"},
		{"no key", "alice", "want <username> <key>", ""},
		{"bad permissions", "alice " + bobKey + " read,fly", "permissions: want", bobKey},
		{"key in the permissions column", "alice " + bobKey + " " + aliceCIKey, "permissions: want", aliceCIKey},
		{"duplicate", "alice " + bobKey + "\nbob " + bobKey, "the same key as on line 2", bobKey},
		{"bad user", "al\x7fice " + bobKey, "control characters", bobKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := parseLegacyKeys("# keys\n" + c.line + "\n")
			if err == nil {
				t.Fatalf("accepted (%d keys)", len(keys))
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q, want it to name the line and contain %q", err, c.want)
			}
			if c.secret != "" {
				noSecrets(t, "the error", err.Error(), c.secret)
			}
		})
	}
}

// An htpasswd user logs in with their old password; the bcrypt hash is
// then argon2id, and the password still works; a wrong one does not.
func TestImportUsersLoginUpgradesHash(t *testing.T) {
	g := newGateway(t, nil)
	content := fixture(t, "users.htpasswd")
	rep := decodeReport(t, importDo(t, g, "/authgate/import/users", importUsersRequest{Format: "htpasswd", Content: content, Roles: []string{"staff, ops"}}))
	if rep.Imported != 3 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	users, _ := parseHtpasswd(content)
	for _, u := range users {
		noSecrets(t, "the report", mustJSON(t, rep), u.Hash)
	}

	u, err := g.app.store.UserByLogin("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != users[0].Hash {
		t.Errorf("the imported hash was not stored as it was (no re-hashing at import)")
	}
	if strings.Join(u.Roles, ",") != "staff,ops" || outcomes(rep)["alice"].UserID != u.ID {
		t.Errorf("alice: roles %v, id %s; report %+v", u.Roles, u.ID, outcomes(rep)["alice"])
	}

	g.login("alice", importPasswords["alice"])
	u, _ = g.app.store.UserByLogin("alice")
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("after a login the hash is %.7s…, want argon2id", u.PasswordHash)
	}
	g.login("alice", importPasswords["alice"])
	w := g.do(jsonRequest("POST", "/rest/login", `{"username":"alice","password":"alice-htpasswd-Pw2"}`))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d, want 401", w.Code)
	}
	// A wrong password does not upgrade a bcrypt hash.
	if w := g.do(jsonRequest("POST", "/rest/login", `{"username":"bob","password":"nope-nope-nope"}`)); w.Code != http.StatusUnauthorized {
		t.Errorf("bob, wrong password: %d", w.Code)
	}
	if b, _ := g.app.store.UserByLogin("bob"); !strings.HasPrefix(b.PasswordHash, "$2b$") {
		t.Errorf("a failed login changed bob's hash")
	}
	g.login("dave", importPasswords["dave"])
}

// Caddyfile users (plain and base64 hashes) log in too.
func TestImportUsersCaddyfileLogin(t *testing.T) {
	g := newGateway(t, nil)
	rep := decodeReport(t, importDo(t, g, "/authgate/import/users", importUsersRequest{Format: "caddyfile", Content: fixture(t, "basic_auth.Caddyfile")}))
	if rep.Imported != 2 {
		t.Fatalf("report: %+v", rep)
	}
	for _, name := range []string{"erin", "frank"} {
		g.login(name, importPasswords[name])
		if u, _ := g.app.store.UserByLogin(name); !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Errorf("%s: hash not upgraded", name)
		}
	}
}

// Existing users are skipped and reported, never overwritten; so is a
// second run of the same import.
func TestImportUsersSkipsExisting(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("alice", "alice-own-new-pw") // email alice@example.com
	content := fixture(t, "users.htpasswd") + "alice@example.com:" + aliceHash + "\n"
	rep := decodeReport(t, importDo(t, g, "/authgate/import/users", importUsersRequest{Format: "htpasswd", Content: content}))
	o := outcomes(rep)
	if rep.Imported != 2 || rep.Skipped != 2 || o["alice"].Result != "skipped" || o["alice@example.com"].Result != "skipped" || o["bob"].Result != "imported" {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(o["alice"].Reason, "exists") || o["alice"].Line != 3 || o["alice"].UserID == "" {
		t.Errorf("alice's outcome: %+v", o["alice"])
	}
	g.login("alice", "alice-own-new-pw")
	if w := g.do(jsonRequest("POST", "/rest/login", `{"username":"alice","password":"alice-htpasswd-Pw1"}`)); w.Code != http.StatusUnauthorized {
		t.Errorf("the imported password works for the existing alice: %d", w.Code)
	}

	again := decodeReport(t, importDo(t, g, "/authgate/import/users", importUsersRequest{Format: "htpasswd", Content: content}))
	if again.Imported != 0 || again.Skipped != 4 {
		t.Errorf("second run: %+v", again)
	}
}

// A legacy key authenticates with its permissions; near misses do not; the
// store never holds the key itself.
func TestImportKeysAuthenticate(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("alice", "alice-pw-123456")
	g.addUser("bob", "bob-pw-123456")
	if g.app.store.HasLegacyKeys() {
		t.Fatal("a new store says it has legacy keys")
	}
	rep := decodeReport(t, importDo(t, g, "/authgate/import/keys", importKeysRequest{Content: fixture(t, "legacy.keys")}))
	if rep.Imported != 3 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	noSecrets(t, "the report", mustJSON(t, rep), aliceReadKey, bobKey, aliceCIKey)
	o := outcomes(rep)["alice/reporting"]
	if o.KeyID == "" || o.Hint != store.Mask(aliceReadKey) || o.UserID == "" {
		t.Errorf("alice's read key: %+v", o)
	}

	for _, c := range []struct {
		key, user, perms string
	}{{aliceReadKey, "alice", "read"}, {bobKey, "bob", "read,write,delete,create"}, {aliceCIKey, "alice", "read,write,delete,create"}} {
		w := g.do(withKey("GET", "/app", c.key))
		if w.Code != http.StatusOK || g.seen == nil {
			t.Fatalf("%s's key: %d %s", c.user, w.Code, w.Body)
		}
		if m, u, p := g.seen.Header.Get("X-Auth-Method"), g.seen.Header.Get("X-Auth-User"), g.seen.Header.Get("X-Auth-Permissions"); m != "api_key" || u != c.user || p != c.perms {
			t.Errorf("%s's key: method %q user %q permissions %q", c.user, m, u, p)
		}
	}
	expectRefused(t, g, g.do(withKey("POST", "/app", aliceReadKey)), http.StatusForbidden, "insufficient_scope")

	flip := []byte(aliceReadKey)
	flip[10] ^= 1
	for name, near := range map[string]string{
		"one character changed": string(flip),
		"truncated":             aliceReadKey[:len(aliceReadKey)-1],
		"extended":              aliceReadKey + "0",
		"other case":            strings.ToLower(aliceReadKey),
	} {
		t.Run(name, func(t *testing.T) {
			expectRefused(t, g, g.do(withKey("GET", "/app", near)), http.StatusUnauthorized, "invalid_token")
		})
	}

	keys, err := g.app.store.ListAPIKeys("")
	if err != nil || len(keys) != 3 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if !k.Legacy || k.Digest == (store.Digest{}) {
			t.Errorf("key %s: legacy %v", k.ID, k.Legacy)
		}
		noSecrets(t, "a stored key record", mustJSON(t, k), aliceReadKey, bobKey, aliceCIKey)
	}
	raw, err := os.ReadFile(g.app.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	noSecrets(t, "the store file", string(raw), aliceReadKey, bobKey, aliceCIKey)
}

func TestImportKeysSkips(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("alice", "alice-pw-123456")
	// bob does not exist; alice's CI key is stored already.
	first := decodeReport(t, importDo(t, g, "/authgate/import/keys", importKeysRequest{Content: "alice " + aliceCIKey + "\n"}))
	rep := decodeReport(t, importDo(t, g, "/authgate/import/keys", importKeysRequest{Content: fixture(t, "legacy.keys")}))
	o := outcomes(rep)
	if rep.Imported != 1 || rep.Skipped != 2 || o["alice/reporting"].Result != "imported" {
		t.Fatalf("report: %+v", rep)
	}
	if b := o["bob/legacy-3"]; b.Result != "skipped" || b.Reason != "no such user" || b.Line != 3 {
		t.Errorf("bob's key: %+v", b)
	}
	ci := o["alice/ci deploy key"]
	if ci.Result != "skipped" || ci.KeyID != first.Results[0].KeyID || !strings.Contains(ci.Reason, "already stored as "+ci.KeyID) {
		t.Errorf("the stored key: %+v (first import: %+v)", ci, first.Results[0])
	}
	noSecrets(t, "the report", mustJSON(t, rep), aliceReadKey, bobKey, aliceCIKey)
}

func TestImportRouteRefusals(t *testing.T) {
	g := newGateway(t, nil)
	cases := []struct {
		path string
		body any
		want string
	}{
		{"/authgate/import/users", importUsersRequest{Format: "passwd", Content: "x:y"}, `format "passwd": want htpasswd or caddyfile`},
		{"/authgate/import/users", importUsersRequest{Format: "htpasswd", Content: "eve:" + aliceHash[:40]}, "line 1: user eve: not a well-formed bcrypt hash"},
		{"/authgate/import/users", importUsersRequest{Format: "htpasswd", Content: "eve:" + aliceHash, Roles: []string{"a\x01b"}}, "role must not contain control characters"},
		{"/authgate/import/users", map[string]string{"format": "htpasswd", "content": "x", "password": "y"}, "unknown field"},
		{"/authgate/import/keys", importKeysRequest{Content: "alice short"}, "line 1: the key has 5 characters"},
		{"/authgate/import/keys", importKeysRequest{}, "no key lines found"},
	}
	for _, c := range cases {
		w := importDo(t, g, c.path, c.body)
		var e struct{ Error string }
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %+v: %d %s, want 400 with %q", c.path, c.body, w.Code, w.Body, c.want)
		}
		noSecrets(t, "the error", w.Body.String(), aliceHash[7:40])
	}
	if users, _ := g.app.store.ListUsers(); len(users) != 0 {
		t.Errorf("a refused import created %d users", len(users))
	}
}

// runImportCLI runs `import ...` with --db, as `caddy authgate` would.
func runImportCLI(t *testing.T, db, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "authgate", SilenceErrors: true, SilenceUsage: true}
	addClientFlags(root)
	root.AddCommand(importCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(append([]string{"import"}, args...), "--db", db))
	err := root.Execute()
	return out.String(), err
}

func TestImportCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "authgate.db")
	dir := filepath.Join("testdata", "import")

	out, err := runImportCLI(t, db, "", "htpasswd", filepath.Join(dir, "users.htpasswd"), "--roles", "staff")
	if err != nil || !strings.Contains(out, "imported 3, skipped 0") || !strings.Contains(out, "alice") {
		t.Fatalf("import htpasswd: %v\n%s", err, out)
	}
	out, err = runImportCLI(t, db, "", "caddyfile", filepath.Join(dir, "basic_auth.Caddyfile"), "--json")
	var rep importReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Imported != 2 {
		t.Fatalf("import caddyfile --json: %v\n%s", err, out)
	}
	// From standard input.
	out, err = runImportCLI(t, db, fixture(t, "legacy.keys"), "keys", "-")
	if err != nil || !strings.Contains(out, "imported 3, skipped 0") || !strings.Contains(out, "reporting") {
		t.Fatalf("import keys: %v\n%s", err, out)
	}
	noSecrets(t, "the CLI's output", out, aliceReadKey, bobKey, aliceCIKey)

	// A refused file names the line, imports nothing and echoes no hash.
	bad := filepath.Join(t.TempDir(), "bad.htpasswd")
	if err := os.WriteFile(bad, []byte("zed:"+aliceHash+"\nyan:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runImportCLI(t, db, "", "htpasswd", bad)
	if err == nil || !strings.Contains(err.Error(), "line 2: user yan: Apache MD5 (apr1)") {
		t.Errorf("a bad file: %v\n%s", err, out)
	}
	noSecrets(t, "the error", err.Error()+out, "HqJZimcKQFAMYayBlzkrA")
	if _, err := runImportCLI(t, db, "", "htpasswd", filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was accepted")
	}

	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	users, _ := st.ListUsers()
	keys, _ := st.ListAPIKeys("")
	if len(users) != 5 || len(keys) != 3 || !st.HasLegacyKeys() {
		t.Errorf("store: %d users, %d keys, legacy %v", len(users), len(keys), st.HasLegacyKeys())
	}
	if _, err := st.UserByLogin("zed"); err == nil {
		t.Error("a refused file imported its good lines")
	}
}
