package caddymodule

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The command tree refuses what it does not know, and guards what cannot
// be undone.

// runTree runs `caddy authgate <args>` as given (no --db added) and returns
// the output and the error, which Caddy turns into exit status 1.
func runTree(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "authgate", SilenceErrors: true, SilenceUsage: true}
	authgateCommand(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// An unknown subcommand or flag is an error at every level, with a
// suggestion where cobra has one; a group run bare prints its help.
// Before, `key lst` printed the help of key and exited 0.
func TestCommandTreeRefusesUnknown(t *testing.T) {
	db := newDB(t)
	for args, want := range map[string]string{
		"key lst":                 `unknown command "lst" for "authgate key"; did you mean list?`,
		"bogus":                   `unknown command "bogus" for "authgate"`,
		"user frobnicate":         `unknown command "frobnicate" for "authgate user"`,
		"user setting nope":       `unknown command "nope" for "authgate user setting"`,
		"lockout lst":             `did you mean list?`,
		"import htpaswd x":        `did you mean htpasswd?`,
		"signing-key list extra":  `unknown command "extra" for "authgate signing-key list"`,
		"key list --bogus":        "unknown flag: --bogus",
		"user --bogus":            "unknown flag: --bogus",
		"user show":               "accepts 1 arg(s), received 0",
		"lockout list --json yes": `unknown command "yes"`,
	} {
		out, err := runTree(t, "", append(strings.Fields(args), "--db", db)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (output %q), want an error with %q", args, err, out, want)
		}
	}
	for _, args := range []string{"key", "user setting", "lockout"} {
		out, err := runTree(t, "", strings.Fields(args)...)
		if err != nil || !strings.Contains(out, "Available Commands:") {
			t.Errorf("%s alone: %v, output %q; want its help", args, err, out)
		}
	}
}

// Every command that runs takes a fixed number of arguments: cobra lets a
// command without Args take any (and ignore them).
func TestCommandTreeLeavesCountArgs(t *testing.T) {
	root := &cobra.Command{Use: "authgate"}
	authgateCommand(root)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Args == nil {
			t.Errorf("%s runs but sets no Args", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// --db on a path that names no file fails and makes none, unless --create.
func TestDBMustExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "authgat.db")
	_, err := runTree(t, "", "user", "list", "--db", missing)
	if err == nil || !strings.Contains(err.Error(), "no store file there") || !strings.Contains(err.Error(), "--create") {
		t.Errorf("--db on a missing file: %v, want a refusal naming --create", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the refused --db made a file: %v", err)
	}
	if _, err := runTree(t, "", "user", "list", "--db", dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("--db on a directory: %v", err)
	}
	if _, err := runTree(t, "pw-new-12345\n", "user", "add", "new", "--password-stdin", "--db", missing, "--create"); err != nil {
		t.Fatalf("--create: %v", err)
	}
	if out, err := runTree(t, "", "user", "list", "--db", missing); err != nil || !strings.Contains(out, "new") {
		t.Errorf("the created store: %v %q", err, out)
	}
	if _, err := runTree(t, "", "user", "list", "--create", "--address", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--create goes with --db") {
		t.Errorf("--create without --db: %v", err)
	}
}

// user delete asks on a terminal and refuses without one, unless --yes.
func TestUserDeleteConfirms(t *testing.T) {
	db := newDB(t)
	for _, name := range []string{"ann", "bob", "cat"} {
		mustCLI(t, db, "pw-"+name+"-12345\n", "user", "add", name, "--password-stdin")
	}
	exists := func(name string) bool {
		_, err := runCLI(t, db, "", "user", "show", name)
		return err == nil
	}
	terminal := false
	defer func(orig func() bool) { stdinIsTerminal = orig }(stdinIsTerminal)
	stdinIsTerminal = func() bool { return terminal }

	if _, err := runCLI(t, db, "yes\n", "user", "delete", "ann"); err == nil || !strings.Contains(err.Error(), "pass --yes") || !exists("ann") {
		t.Errorf("delete without a terminal or --yes: %v; want a refusal naming --yes and ann kept", err)
	}
	terminal = true
	for _, answer := range []string{"\n", "n\n", "yess\n", ""} {
		out, err := runCLI(t, db, answer, "user", "delete", "ann")
		if err == nil || !strings.Contains(err.Error(), "not confirmed") || !exists("ann") {
			t.Errorf("delete answered %q: %v; want it refused and ann kept", answer, err)
		}
		if !strings.Contains(out, "Delete user ann (usr_") {
			t.Errorf("the question does not name the user: %q", out)
		}
	}
	if _, err := runCLI(t, db, " Yes \n", "user", "delete", "ann"); err != nil || exists("ann") {
		t.Errorf("delete answered yes: %v, ann exists %v", err, exists("ann"))
	}
	if _, err := runCLI(t, db, "y\n", "user", "delete", "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("delete of an unknown user: %v", err)
	}
	terminal = false
	if _, err := runCLI(t, db, "", "user", "delete", "bob", "--yes"); err != nil || exists("bob") {
		t.Errorf("delete --yes without a terminal: %v", err)
	}
}
