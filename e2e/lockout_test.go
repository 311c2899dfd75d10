package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Locks an operator can see and clear (issue 17): wrong passwords lock an
// account; `user show` and `lockout list` show it, on the running server
// and with --db; it survives a restart; `user unlock` clears it and the
// right password works again.
func TestLockoutAdministration(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "nell: the right password"
	nellID := g.AddUser(t, "nell", pw, "dev", "nell@example.com")
	g.AddUser(t, "otto", "otto: never locked", "dev", "otto@example.com")
	g.Start(t)

	login := func(user, password string) Resp {
		body, h := jsonBody(t, map[string]string{"username": user, "password": password})
		return g.Do(t, "POST", "/rest/login", body, h)
	}
	for i := range 5 { // the default lockout: 5 failures, 5 minutes
		if r := login("nell", fmt.Sprintf("wrong guess %d", i)); r.Status != 401 {
			t.Fatalf("wrong password %d: %s, want 401", i+1, r)
		}
	}
	const typed = "typed-by-mistake-secret"
	secret(typed)
	if r := login(typed, "anything at all"); r.Status != 401 {
		t.Fatalf("unknown login: %s", r)
	}
	wantLocked := func(when string) {
		t.Helper()
		r := login("nell", pw)
		if r.Status != 403 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: the right password: %s (Retry-After %q), want 403 (plentymarkets: a lock is 403) with Retry-After", when, r, r.Header.Get("Retry-After"))
		}
	}
	wantLocked("after 5 failures")

	// user show, table and JSON.
	if out := g.LiveCLI(t, "", "user", "show", "nell"); !strings.Contains(out, "locked until 20") {
		t.Errorf("user show of a locked user lacks the lock:\n%s", out)
	}
	var shown struct {
		Lock *struct {
			Failures    int
			LockedUntil time.Time
		}
	}
	if err := json.Unmarshal([]byte(g.LiveCLI(t, "", "user", "show", "nell", "--json")), &shown); err != nil || shown.Lock == nil ||
		!shown.Lock.LockedUntil.After(time.Now().Add(4*time.Minute)) {
		t.Errorf("user show --json: lock %+v (%v), want lockedUntil about 5 minutes ahead", shown.Lock, err)
	}
	if out := g.LiveCLI(t, "", "user", "show", "otto", "--json"); strings.Contains(out, `"lock"`) {
		t.Errorf("user show --json of a clean user has a lock: %s", out)
	}

	// lockout list: nell by id and name, the unknown login by label only.
	checkList := func(where, out string) {
		t.Helper()
		var list []struct {
			Label, UserID, Username string
			Failures                int
			LockedUntil             time.Time
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%s: lockout list --json: %v\n%s", where, err, scrub(out))
		}
		if strings.Contains(out, typed) {
			t.Errorf("%s: SECURITY: lockout list shows what was typed as a login", where)
		}
		var nell, unknown bool
		for _, l := range list {
			switch {
			case l.Label == "user:"+nellID:
				nell = l.UserID == nellID && l.Username == "nell" && !l.LockedUntil.IsZero()
			case l.Label == "unknown login":
				unknown = l.Failures == 1 && l.UserID == "" && l.Username == ""
			}
		}
		if !nell || !unknown || len(list) != 2 {
			t.Errorf("%s: lockout list: %+v; want nell locked and one unknown login", where, list)
		}
	}
	checkList("live", g.LiveCLI(t, "", "lockout", "list", "--json"))

	// The lock is in the store: with --db on the stopped server, and after
	// a restart.
	g.Stop(t)
	if out := g.CLI(t, "", "user", "show", "nell"); !strings.Contains(out, "locked until 20") {
		t.Errorf("user show --db of a locked user lacks the lock:\n%s", out)
	}
	checkList("--db", g.CLI(t, "", "lockout", "list", "--json"))
	g.Start(t)
	wantLocked("after a restart")

	// A password change does not unlock (documented); unlock does.
	const pw2 = "nell: a new password after the lock"
	secret(pw2)
	g.LiveCLI(t, pw2+"\n", "user", "passwd", "nell", "--password-stdin")
	if r := login("nell", pw2); r.Status != 403 {
		t.Errorf("the new password on a locked account: %s, want 403 (passwd leaves the lock)", r)
	}
	if out := g.LiveCLI(t, "", "user", "unlock", "nell"); !strings.Contains(out, "user nell unlocked") {
		t.Errorf("user unlock: %q", out)
	}
	g.Login(t, "nell", pw2)
	if out := g.LiveCLI(t, "", "lockout", "list"); strings.Contains(out, "nell") {
		t.Errorf("lockout list after the unlock still has nell:\n%s", scrub(out))
	}
}

// exitCode is the exit status of a finished command: 0 when err is nil,
// -1 when it did not run to an exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// The CLI's paper cuts, run as the binary: an unknown subcommand or flag,
// a --db that names no file, a delete nobody confirmed and a short
// password all exit non-zero with a message; a configured
// password_min_length holds on the running server.
func TestCLIRefusals(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	g.AddUser(t, "pia", "pia: long enough indeed", "dev", "pia@example.com")
	missing := filepath.Join(g.Dir, "no-such.db")
	const short = "seven77"

	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"key", "lst", "--db", g.DB}, `unknown command "lst" for "caddy authgate key"`},
		{"", []string{"usr", "list", "--db", g.DB}, `unknown command "usr" for "caddy authgate"`},
		{"", []string{"key", "list", "--bogus", "--db", g.DB}, "unknown flag: --bogus"},
		{"", []string{"user", "list", "--db", missing}, "add --create to make a new store"},
		{"", []string{"user", "delete", "pia", "--db", g.DB}, "pass --yes"},
		{short + "\n", []string{"user", "add", "quin", "--password-stdin", "--db", g.DB}, "at least 8 characters"},
		{short + "\n", []string{"user", "passwd", "pia", "--password-stdin", "--db", g.DB}, "at least 8 characters"},
	} {
		stdout, stderr, err := g.Run(c.stdin, append([]string{"authgate"}, c.args...)...)
		if code := exitCode(err); code < 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("caddy authgate %s: exit %d (%v), stderr %q; want a non-zero exit and %q", strings.Join(c.args, " "), code, err, scrub(stderr), c.want)
		}
		if strings.Contains(stdout+stderr, short) {
			t.Errorf("caddy authgate %s: the output repeats the password", strings.Join(c.args, " "))
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused --db made the file: %v", err)
	}
	if out := g.CLI(t, "", "user", "show", "pia"); !strings.Contains(out, "pia") {
		t.Errorf("pia after the refused delete:\n%s", out)
	}
	g.CLI(t, "", "user", "delete", "pia", "--yes")

	// password_min_length 12 on the running server.
	raw, err := os.ReadFile(g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "\tauthgate {\n\t\tdb ", "\tauthgate {\n\t\tpassword_min_length 12\n\t\tdb ", 1)
	if cfg == string(raw) {
		t.Fatal("harness: no authgate global block to add password_min_length to")
	}
	if err := os.WriteFile(g.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Start(t)
	address := fmt.Sprintf("127.0.0.1:%d", g.AdminPort)
	const eleven = "eleven char"
	secret(eleven)
	_, stderr, err := g.Run(eleven+"\n", "authgate", "user", "add", "rue", "--password-stdin", "--address", address)
	if exitCode(err) < 1 || !strings.Contains(stderr, "at least 12 characters") || strings.Contains(stderr, eleven) {
		t.Errorf("live user add with 11 characters under password_min_length 12: %v, stderr %q", err, scrub(stderr))
	}
	g.LiveCLI(t, "rue: twelve+ characters\n", "user", "add", "rue", "--password-stdin")
}
