package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// caddyBin is the binary TestMain builds: Caddy with authgate, exactly as
// users build it (API.md section 1).
var caddyBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: finding the module root: %v\n", err)
		return 1
	}
	binDir, err := os.MkdirTemp("", "authgate-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	caddyBin = filepath.Join(binDir, "caddy")

	// Bounded: a cold module and build cache may take a few minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", caddyBin, "./cmd/caddy")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n"+
			"##################################################################\n"+
			"e2e: FAILED to build the binary under test\n"+
			"     (go build -o <tmp>/caddy ./cmd/caddy in %s): %v\n"+
			"##################################################################\n%s\n",
			root, err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", caddyBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}
