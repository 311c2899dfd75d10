package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

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

	long := strings.Repeat("k", auth.MaxLegacyKey+1)
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
	e := newEnv(t)
	content := fixture(t, "users.htpasswd")
	rep := decodeReport(t, e.post("/authgate/import/users", ImportUsersRequest{Format: "htpasswd", Content: content, Roles: []string{"staff, ops"}}))
	if rep.Imported != 3 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	users, _ := parseHtpasswd(content)
	for _, u := range users {
		noSecrets(t, "the report", mustJSON(t, rep), u.Hash)
	}

	u, err := e.st.UserByLogin("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != users[0].Hash {
		t.Errorf("the imported hash was not stored as it was (no re-hashing at import)")
	}
	if strings.Join(u.Roles, ",") != "staff,ops" || outcomes(rep)["alice"].UserID != u.ID {
		t.Errorf("alice: roles %v, id %s; report %+v", u.Roles, u.ID, outcomes(rep)["alice"])
	}

	e.login("alice", importPasswords["alice"])
	u, _ = e.st.UserByLogin("alice")
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("after a login the hash is %.7s…, want argon2id", u.PasswordHash)
	}
	e.login("alice", importPasswords["alice"])
	if _, err := e.svc.Login(context.Background(), "alice", "alice-htpasswd-Pw2"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("a wrong password: %v", err)
	}
	// A wrong password does not upgrade a bcrypt hash.
	if _, err := e.svc.Login(context.Background(), "bob", "nope-nope-nope"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("bob, wrong password: %v", err)
	}
	if b, _ := e.st.UserByLogin("bob"); !strings.HasPrefix(b.PasswordHash, "$2b$") {
		t.Errorf("a failed login changed bob's hash")
	}
	e.login("dave", importPasswords["dave"])
}

// Existing users are skipped and reported, never overwritten; so is a
// second run of the same import.
func TestImportUsersSkipsExisting(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "alice-own-new-pw") // email alice@example.com
	content := fixture(t, "users.htpasswd") + "alice@example.com:" + aliceHash + "\n"
	rep := decodeReport(t, e.post("/authgate/import/users", ImportUsersRequest{Format: "htpasswd", Content: content}))
	o := outcomes(rep)
	if rep.Imported != 2 || rep.Skipped != 2 || o["alice"].Result != "skipped" || o["alice@example.com"].Result != "skipped" || o["bob"].Result != "imported" {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(o["alice"].Reason, "exists") || o["alice"].Line != 3 || o["alice"].UserID == "" {
		t.Errorf("alice's outcome: %+v", o["alice"])
	}
	e.login("alice", "alice-own-new-pw")
	if _, err := e.svc.Login(context.Background(), "alice", "alice-htpasswd-Pw1"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("the imported password works for the existing alice: %v", err)
	}

	again := decodeReport(t, e.post("/authgate/import/users", ImportUsersRequest{Format: "htpasswd", Content: content}))
	if again.Imported != 0 || again.Skipped != 4 {
		t.Errorf("second run: %+v", again)
	}
}

// A legacy key authenticates with its permissions; near misses do not; the
// store never holds the key itself.
func TestImportKeysAuthenticate(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "alice-pw-123456")
	e.addUser("bob", "bob-pw-123456")
	if e.st.HasLegacyKeys() {
		t.Fatal("a new store says it has legacy keys")
	}
	rep := decodeReport(t, e.post("/authgate/import/keys", ImportKeysRequest{Content: fixture(t, "legacy.keys")}))
	if rep.Imported != 3 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	noSecrets(t, "the report", mustJSON(t, rep), aliceReadKey, bobKey, aliceCIKey)
	o := outcomes(rep)["alice/reporting"]
	if o.KeyID == "" || o.Hint != secret.Mask(aliceReadKey) || o.UserID == "" {
		t.Errorf("alice's read key: %+v", o)
	}

	for _, c := range []struct {
		key, user, perms string
	}{{aliceReadKey, "alice", "read"}, {bobKey, "bob", "read,write,delete,create"}, {aliceCIKey, "alice", "read,write,delete,create"}} {
		p, err := e.svc.AuthenticateKey(c.key)
		if err != nil {
			t.Fatalf("%s's key: %v", c.user, err)
		}
		if m, u, perms := p.Method(), p.Username(), p.Permissions().String(); m != auth.MethodAPIKey || u != c.user || perms != c.perms {
			t.Errorf("%s's key: method %q user %q permissions %q", c.user, m, u, perms)
		}
	}
	if p, _ := e.svc.AuthenticateKey(aliceReadKey); p.Allows("POST") {
		t.Error("a read key may POST")
	}

	flip := []byte(aliceReadKey)
	flip[10] ^= 1
	for name, near := range map[string]string{
		"one character changed": string(flip),
		"truncated":             aliceReadKey[:len(aliceReadKey)-1],
		"extended":              aliceReadKey + "0",
		"other case":            strings.ToLower(aliceReadKey),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.svc.AuthenticateKey(near); !errors.Is(err, auth.ErrInvalidKey) {
				t.Errorf("got %v, want auth.ErrInvalidKey", err)
			}
		})
	}

	keys, err := e.st.ListAPIKeys("")
	if err != nil || len(keys) != 3 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if !k.Legacy || k.Digest == (store.Digest{}) {
			t.Errorf("key %s: legacy %v", k.ID, k.Legacy)
		}
		noSecrets(t, "a stored key record", mustJSON(t, k), aliceReadKey, bobKey, aliceCIKey)
	}
	raw, err := os.ReadFile(e.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	noSecrets(t, "the store file", string(raw), aliceReadKey, bobKey, aliceCIKey)
}

func TestImportKeysSkips(t *testing.T) {
	e := newEnv(t)
	e.addUser("alice", "alice-pw-123456")
	// bob does not exist; alice's CI key is stored already.
	first := decodeReport(t, e.post("/authgate/import/keys", ImportKeysRequest{Content: "alice " + aliceCIKey + "\n"}))
	rep := decodeReport(t, e.post("/authgate/import/keys", ImportKeysRequest{Content: fixture(t, "legacy.keys")}))
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
	e := newEnv(t)
	cases := []struct {
		path string
		body any
		want string
	}{
		{"/authgate/import/users", ImportUsersRequest{Format: "passwd", Content: "x:y"}, `format "passwd": want htpasswd or caddyfile`},
		{"/authgate/import/users", ImportUsersRequest{Format: "htpasswd", Content: "eve:" + aliceHash[:40]}, "line 1: user eve: not a well-formed bcrypt hash"},
		{"/authgate/import/users", ImportUsersRequest{Format: "htpasswd", Content: "eve:" + aliceHash, Roles: []string{"a\x01b"}}, "role must not contain control characters"},
		{"/authgate/import/users", map[string]string{"format": "htpasswd", "content": "x", "password": "y"}, "unknown field"},
		{"/authgate/import/keys", ImportKeysRequest{Content: "alice short"}, "line 1: the key has 5 characters"},
		{"/authgate/import/keys", ImportKeysRequest{}, "no key lines found"},
	}
	for _, c := range cases {
		w := e.post(c.path, c.body)
		var e struct{ Error string }
		if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %+v: %d %s, want 400 with %q", c.path, c.body, w.Code, w.Body, c.want)
		}
		noSecrets(t, "the error", w.Body.String(), aliceHash[7:40])
	}
	if users, _ := e.st.ListUsers(); len(users) != 0 {
		t.Errorf("a refused import created %d users", len(users))
	}
}

// The accounts of every basic_auth block, however deeply nested, as Caddy
// provisions them: placeholders expanded, base64 hashes decoded, an
// account in several blocks with one hash imported once.
func TestImportCaddyfileAccounts(t *testing.T) {
	e := newEnv(t)
	e.caddyfile = fakeCaddyfile{
		json: adapted(t, "bcrypt",
			[]account{{"erin", otherHash}},
			[]account{{"erin", otherHash}, {"{env.FRANK}", base64.StdEncoding.EncodeToString([]byte(aliceHash))}}),
		env: map[string]string{"FRANK": "frank"},
	}
	rep := decodeReport(t, e.post("/authgate/import/users", ImportUsersRequest{Format: "caddyfile", Content: "(ignored)"}))
	if rep.Imported != 2 || rep.Skipped != 0 {
		t.Fatalf("report: %+v", rep)
	}
	for name, hash := range map[string]string{"erin": otherHash, "frank": aliceHash} {
		u, err := e.st.UserByLogin(name)
		if err != nil || u.PasswordHash != hash {
			t.Errorf("%s: %v; the hash is not stored plain", name, err)
		}
	}
	e.login("frank", importPasswords["alice"]) // frank has alice's hash
}

func TestImportCaddyfileRefusals(t *testing.T) {
	site := func(accounts ...account) string { return adapted(t, "bcrypt", accounts) }
	cases := []struct {
		name    string
		adapter fakeCaddyfile
		want    string
		secrets []string
	}{
		{"argon2id", fakeCaddyfile{json: adapted(t, "argon2id", []account{{"gus", "JGFyZ29uMmlk"}})}, "uses argon2id: only bcrypt", nil},
		{"conflict", fakeCaddyfile{json: adapted(t, "bcrypt", []account{{"gus", aliceHash}}, []account{{"gus", otherHash}})},
			"user gus: appears more than once with different hashes", []string{aliceHash, otherHash}},
		{"case conflict", fakeCaddyfile{json: adapted(t, "bcrypt", []account{{"Gus", aliceHash}}, []account{{"gus", aliceHash}})},
			"user gus: appears more than once", []string{aliceHash}},
		{"not bcrypt", fakeCaddyfile{json: site(account{"gus", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="})}, "user gus: the hash is neither in crypt form nor base64", nil},
		{"base64 of apr1", fakeCaddyfile{json: site(account{"gus", base64.StdEncoding.EncodeToString([]byte("$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"))})},
			"user gus: Apache MD5 (apr1)", nil},
		{"bad username", fakeCaddyfile{json: site(account{"g us", aliceHash})}, "whitespace", []string{aliceHash}},
		{"none", fakeCaddyfile{json: `{"apps":{}}`}, "no basic_auth accounts found", nil},
		{"not JSON", fakeCaddyfile{json: `{`}, "reading the adapted config", nil},
		// The adapter quotes the token it stopped at: a hash is masked.
		{"adapter error", fakeCaddyfile{err: errors.New("Caddyfile:2 - Error during parsing: unrecognized directive: " + aliceHash)}, "Caddyfile:2", []string{aliceHash}},
		{"adapter error base64", fakeCaddyfile{err: errors.New("Caddyfile:2: unknown token " + base64.StdEncoding.EncodeToString([]byte(aliceHash)))}, "Caddyfile:2",
			[]string{base64.StdEncoding.EncodeToString([]byte(aliceHash))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.caddyfile = c.adapter
			w := e.post("/authgate/import/users", ImportUsersRequest{Format: "caddyfile", Content: "x"})
			var body struct{ Error string }
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &body) != nil || !strings.Contains(body.Error, c.want) {
				t.Errorf("%d %s, want 400 with %q", w.Code, w.Body, c.want)
			}
			noSecrets(t, "the error", w.Body.String(), c.secrets...)
			if users, _ := e.st.ListUsers(); len(users) != 0 {
				t.Errorf("a refused import created %d users", len(users))
			}
		})
	}
	// A backend without an adapter cannot read Caddyfiles.
	w := newEnv(t).post("/authgate/import/users", ImportUsersRequest{Format: "caddyfile", Content: "x"})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "cannot read Caddyfiles") {
		t.Errorf("no adapter: %d %s", w.Code, w.Body)
	}
}
