package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/store/etcd/embedded"
)

// TestMigrateIntoEtcd moves a single gateway onto etcd and back out of a
// backup (API.md section 8): `caddy authgate migrate --from-db` copies a
// stopped gateway's bbolt file into an empty etcd prefix, and a gateway on
// that prefix takes the same password, key and token; `caddy authgate
// backup` on it writes a snapshot of the prefix, which migrate restores
// into another prefix, where they work again.
func TestMigrateIntoEtcd(t *testing.T) {
	t.Parallel()
	cluster, err := embedded.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	up := newUpstream(t)

	// A single gateway on bbolt, with a user, a key and a live session.
	solo := newGateway(t, up)
	const pw = "migrate: a long enough password"
	solo.AddUser(t, "mia", pw, "dev", "mia@example.com")
	key := solo.CreateKey(t, "mia", "k", "read")
	solo.Start(t)
	tok := solo.Login(t, "mia", pw)
	solo.Stop(t)

	works := func(g *Gateway, what string) {
		t.Helper()
		for name, h := range map[string]H{"the key": apiKey(key.Key), "the token": bearer(tok.Access)} {
			if r := g.Do(t, "GET", "/app/migrated", nil, h); r.Status != http.StatusOK {
				t.Errorf("%s: %s answers %s, want 200", what, name, r)
			}
		}
		g.Login(t, "mia", pw)
	}

	// Into etcd.
	first := newGateway(t, up)
	first.ConfigPath = writeClusterConfig(t, first, cluster.Endpoints(), "/authgate-migrated/", "first")
	out, errOut, err := first.Run("", "authgate", "migrate", "--from-db", solo.DB, "--config", first.ConfigPath, "--adapter", "caddyfile")
	if err != nil || !strings.Contains(out, "users") {
		t.Fatalf("migrate --from-db: %v\n%s\n%s", err, scrub(out), scrub(errOut))
	}
	first.Start(t)
	works(first, "after migrate into etcd")
	if _, _, err := first.Run("", "authgate", "migrate", "--from-db", solo.DB, "--config", first.ConfigPath, "--adapter", "caddyfile"); err == nil {
		t.Error("migrate into a prefix that holds a store succeeded; it must refuse")
	}

	// A backup of the prefix, and its restore into another.
	backup := filepath.Join(first.Dir, "backup.json")
	if out := first.LiveCLI(t, "", "backup", backup); !strings.Contains(out, "users\t1") && !strings.Contains(out, "users") {
		t.Fatalf("backup: %q", scrub(out))
	}
	second := newGateway(t, up)
	second.ConfigPath = writeClusterConfig(t, second, cluster.Endpoints(), "/authgate-restored/", "second")
	if out, errOut, err := second.Run("", "authgate", "migrate", "--from-db", backup, "--config", second.ConfigPath, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("migrate --from-db <etcd backup>: %v\n%s\n%s", err, scrub(out), scrub(errOut))
	}
	second.Start(t)
	works(second, fmt.Sprintf("after restoring %s into another prefix", filepath.Base(backup)))
}
