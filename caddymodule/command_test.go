package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store/bbolt"
)

// The commands, run in-process with --db, as `caddy authgate` runs them.

// newDB makes an empty store file, as `--db <path> --create` would, for
// the commands to open.
func newDB(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "authgate.db")
	st, err := bbolt.Open(db, bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

// runCLI runs `caddy authgate <args> --db db` in-process.
func runCLI(t *testing.T, db, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "authgate", SilenceErrors: true, SilenceUsage: true}
	authgateCommand(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--db", db))
	err := root.Execute()
	return out.String(), err
}

func mustCLI(t *testing.T, db, stdin string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, db, stdin, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestAdminOpsCommands(t *testing.T) {
	db := newDB(t)
	mustCLI(t, db, "pw-bea-123\n", "user", "add", "bea", "--password-stdin", "--email", "bea@example.com", "--roles", "a,b")
	mustCLI(t, db, "9876\n", "user", "set-pin", "bea", "--pin-stdin")
	if _, err := runCLI(t, db, "\n", "user", "set-pin", "bea", "--pin-stdin"); err == nil {
		t.Error("an empty PIN on stdin was accepted")
	}

	out := mustCLI(t, db, "", "user", "set", "bea", "--first-name", "Bea", "--last-name", "Tris", "--rank", "5", "--roles", "", "--json")
	var v admin.UserView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("user set --json: %v\n%s", err, out)
	}
	if v.Profile["firstName"] != "Bea" || v.Profile["lastName"] != "Tris" || v.Rank != 5 || len(v.Roles) != 0 || v.Profile["email"] != "bea@example.com" || !v.HasPIN {
		t.Errorf("user set: %+v", v)
	}
	// Flags not given stay; a table shows the profile; no hash anywhere.
	out = mustCLI(t, db, "", "user", "set", "bea", "--city", "Graz")
	for _, want := range []string{`first name +Bea`, `last name +Tris`, `city +Graz`, `pin +set`, `rank +5`} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("user set output lacks a line %q:\n%s", want, out)
		}
	}
	show := mustCLI(t, db, "", "user", "show", "bea", "--json")
	list := mustCLI(t, db, "", "user", "list", "--json")
	for _, o := range []string{out, show, list} {
		if strings.Contains(o, "argon2") || strings.Contains(strings.ToLower(o), "hash") {
			t.Errorf("a view shows a hash:\n%s", o)
		}
	}

	for args, want := range map[string]string{
		"user set bea":                               "nothing to change",
		"user set bea --rank x":                      "invalid argument",
		"user set bea --lang d.e":                    "lang",
		"user set ghost --city x":                    `no user "ghost"`,
		"user setting set bea":                       "accepts 3 arg(s)",
		"user setting delete bea nosuch":             `no setting "nosuch"`,
		"user set bea --session-limit -2":            "session limit",
		"user set bea --birth-date 1.2.90":           "birth date",
		"user setting set bea  x --type t":           "setting name",
		"user setting set bea a b --bogus":           "unknown flag",
		"user setting set bea a b --read-only=maybe": "invalid argument",
	} {
		_, err := runCLI(t, db, "", strings.Split(args, " ")...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}

	mustCLI(t, db, "", "user", "setting", "set", "bea", "theme", "dark", "--category", "ui", "--read-only")
	mustCLI(t, db, "", "user", "setting", "set", "bea", "volume", "11", "--type", "int")
	mustCLI(t, db, "", "user", "setting", "set", "bea", "theme", "light", "--read-only=false")
	var settings []admin.SettingView
	if err := json.Unmarshal([]byte(mustCLI(t, db, "", "user", "setting", "list", "bea", "--json")), &settings); err != nil {
		t.Fatal(err)
	}
	if len(settings) != 2 || settings[0] != (admin.SettingView{ID: 1, Category: "ui", Name: "theme", Value: "light", UserID: v.ID}) ||
		settings[1] != (admin.SettingView{ID: 2, Name: "volume", Value: "11", Type: "int", UserID: v.ID}) {
		t.Errorf("settings: %+v", settings)
	}
	mustCLI(t, db, "", "user", "setting", "delete", "bea", "volume")
	if out := mustCLI(t, db, "", "user", "setting", "list", "bea"); strings.Contains(out, "volume") || !strings.Contains(out, "theme") {
		t.Errorf("after delete:\n%s", out)
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
	db := newDB(t)
	dir := filepath.Join("testdata", "import")

	out, err := runImportCLI(t, db, "", "htpasswd", filepath.Join(dir, "users.htpasswd"), "--roles", "staff")
	if err != nil || !strings.Contains(out, "imported 3, skipped 0") || !strings.Contains(out, "alice") {
		t.Fatalf("import htpasswd: %v\n%s", err, out)
	}
	out, err = runImportCLI(t, db, "", "caddyfile", filepath.Join(dir, "basic_auth.Caddyfile"), "--json")
	var rep admin.ImportReport
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

	st, err := bbolt.Open(db, bbolt.Options{})
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
