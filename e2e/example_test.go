package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bundled Caddyfile.example must stay a working configuration: `caddy
// validate` adapts and provisions it without binding its fixed ports, and
// without creating its store (the store opens when the config starts).
func TestExampleCaddyfileValidates(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	example, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(g.Dir, "Caddyfile.example")
	if err := os.WriteFile(path, example, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := g.Run("", "validate", "--config", path)
	if err != nil || !strings.Contains(out+errOut, "Valid configuration") {
		t.Fatalf("caddy validate Caddyfile.example: %v\n%s\n%s", err, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(g.Dir, "authgate-data", "authgate.db")); !os.IsNotExist(err) {
		t.Errorf("validate created the example's store (stat: %v): it must leave stores alone", err)
	}
}
