package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// What a build context (xcaddy.Dockerfile's `COPY . .`) and a commit must
// never hold: a store (signing keys, password hashes), a backup of one, a
// built binary, an env file with the etcd password, and for the context
// the repository itself.
var (
	secretPaths = []string{
		"authgate.db",
		"authgate-data/authgate.db",
		"caddymodule/stray.db",
		"authgate.db.bak",
		"authgate-2026-12-01.backup",
		"backups/authgate-2026-12-01.db",
		"backups/authgate-2026-12-01.json",
		"authgate.env",
		"caddy",
		"caddy.exe",
		"e2e/e2e.test",
		"seed",
		"etcdcluster",
		"cpu.prof",
	}
	contextOnlyPaths = []string{
		".git",
		".git/config",
		"deploy/client.key",
		"deploy/ca.pem",
	}
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDockerignoreKeepsSecretsOut reads .dockerignore as Docker does and
// checks that every store, backup and binary stays out of the build
// context, and every file `go build` of the module root needs stays in.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	root := moduleRoot(t)
	f, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := parseDockerignore(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range slices.Concat(secretPaths, contextOnlyPaths) {
		if !ignore.excludes(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}

	// Every file the xcaddy build compiles: the module's go.mod and go.sum,
	// and the sources of every package of this module the root imports
	// (xcaddy builds `--with github.com/authgate/authgate=/src`).
	list := exec.Command("go", "list", "-deps", "-f",
		`{{if and .Module (eq .Module.Path "github.com/authgate/authgate")}}{{.Dir}}`+
			`{{range .GoFiles}} {{.}}{{end}}{{range .CgoFiles}} {{.}}{{end}}`+
			`{{range .SFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`,
		".")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range fields[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(dir, name)))
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files the build needs; the query is broken:\n%s", len(needed), out)
	}
	for _, p := range needed {
		if ignore.excludes(p) {
			t.Errorf(".dockerignore keeps %s, which the build needs, out of the context", p)
		}
	}
}

// TestDockerignoreMatcher pins the matcher above to Docker's rules, so a
// pattern that works only in .gitignore (`*.db` for every directory)
// cannot pass for one that works in .dockerignore.
func TestDockerignoreMatcher(t *testing.T) {
	ig, err := parseDockerignore([]byte("# comment\n*.db\n**/*.bak\n.git\n/data\n!data/keep.db\nbin/**\n"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"a.db":          true,
		"sub/a.db":      false, // Docker: *.db is anchored at the root
		"a.bak":         true,
		"x/y/a.bak":     true,
		".git":          true,
		".git/HEAD":     true, // inside an excluded directory
		"x/.git":        false,
		"data/file":     true,
		"data/keep.db":  false, // the exception comes last
		"bin/caddy":     true,
		"bin":           false,
		"binary":        false,
		"main.go":       false,
		"store/main.go": false,
	} {
		if got := ig.excludes(p); got != want {
			t.Errorf("excludes(%q) = %v, want %v", p, got, want)
		}
	}
	if _, err := parseDockerignore([]byte("[ab].db\n")); err == nil {
		t.Error("a pattern the matcher does not model was accepted")
	}
}

// TestGitignoreKeepsSecretsOut asks git itself whether .gitignore keeps
// stores, backups and binaries out of commits, and checks that none is
// committed.
func TestGitignoreKeepsSecretsOut(t *testing.T) {
	root := moduleRoot(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	check := exec.Command("git", "-C", root, "check-ignore", "--no-index", "--stdin")
	check.Stdin = strings.NewReader(strings.Join(secretPaths, "\n") + "\n")
	out, err := check.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: none ignored
		t.Fatalf("git check-ignore: %v", err)
	}
	ignored := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		ignored[strings.TrimSpace(line)] = true
	}
	for _, p := range secretPaths {
		if !ignored[p] {
			t.Errorf(".gitignore does not ignore %s", p)
		}
	}
	// Nor does it hide what the build needs.
	for _, p := range []string{"go.mod", "go.sum", "authgate.go", "caddymodule/app.go", "bench/cmd/seed/main.go", "cmd/caddy/main.go"} {
		if ignored[p] {
			t.Errorf(".gitignore ignores %s", p)
		}
		if err := exec.Command("git", "-C", root, "check-ignore", "-q", "--no-index", p).Run(); err == nil {
			t.Errorf(".gitignore ignores %s", p)
		}
	}

	tracked, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bytes.Split(tracked, []byte{0}) {
		name := string(p)
		if strings.HasSuffix(name, ".db") || strings.HasSuffix(name, ".bak") || strings.HasSuffix(name, ".backup") ||
			name == "caddy" || strings.HasSuffix(name, ".test") {
			t.Errorf("%s is committed", name)
		}
	}
}

// dockerignore is a parsed .dockerignore: Docker's rules (the
// moby/patternmatcher the builders use) for the syntax the file uses.
// Paths are relative to the context root, cleaned, with `/`; a leading `/`
// of a pattern means nothing; `*` and `?` stay within one path element,
// `**` spans any number of them; a path is excluded if the last pattern
// that matches it, or one of its parent directories, is not a `!`
// exception.
type dockerignore []dockerPattern

type dockerPattern struct {
	re        *regexp.Regexp
	exception bool
}

func parseDockerignore(b []byte) (dockerignore, error) {
	var ig dockerignore
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var p dockerPattern
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			p.exception, line = true, strings.TrimSpace(rest)
		}
		if strings.ContainsAny(line, `[]\`) {
			return nil, errors.New("dockerignore: character classes and escapes are not modelled: " + line)
		}
		line = strings.TrimPrefix(path.Clean("/"+line), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		p.re = regexp.MustCompile(re.String())
		ig = append(ig, p)
	}
	return ig, sc.Err()
}

func (ig dockerignore) excludes(name string) bool {
	name = path.Clean(name)
	excluded := false
	for _, p := range ig {
		match := false
		// The path itself, then each parent directory.
		for q := name; q != "." && q != "/"; q = path.Dir(q) {
			if p.re.MatchString(q) {
				match = true
				break
			}
		}
		if match {
			excluded = !p.exception
		}
	}
	return excluded
}
