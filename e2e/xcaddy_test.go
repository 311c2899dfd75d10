package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// xcaddy builds Caddy from a generated main that imports the plugin by its
// module path alone (`xcaddy build --with github.com/authgate/authgate`),
// in a module of its own that replaces ours with this checkout. This test
// does the same: the module root must be a package that registers
// authgate's modules, or xcaddy fails with "module ... does not contain
// package".
func TestXcaddyStyleBuild(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// Our requirements (so nothing new is fetched), another module name,
	// and ours replaced by the checkout, as xcaddy writes it.
	mod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module xcaddycheck")
	// A released version, as xcaddy requires one: list-modules shows it.
	const version = "v0.17.0"
	mod += fmt.Sprintf("\nrequire github.com/authgate/authgate %s\n\nreplace github.com/authgate/authgate => %s\n", version, root)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	main := `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/authgate/authgate"
)

func main() { caddycmd.Main() }
`
	for name, content := range map[string]string{"go.mod": mod, "go.sum": string(sum), "main.go": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-o", "caddy", ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a main that imports only github.com/authgate/authgate: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "caddy"), "list-modules", "--versions").CombinedOutput()
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	for _, module := range []string{"authgate", "http.handlers.authgate", "admin.api.authgate"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(module) + ` ` + regexp.QuoteMeta(version) + `$`).MatchString(string(out)) {
			t.Errorf("list-modules --versions does not show %s %s:\n%s", module, version, strings.TrimSpace(string(out)))
		}
	}
	out, err = exec.CommandContext(ctx, filepath.Join(dir, "caddy"), "authgate", "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "authgate "+version {
		t.Errorf("caddy authgate version: %v %q, want %q", err, out, "authgate "+version)
	}
}
