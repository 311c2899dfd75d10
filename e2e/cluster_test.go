package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/store/etcd/embedded"
)

// TestClusterOfThree runs three gateway binaries on one three-member etcd
// cluster on loopback (API.md section 8): what is done on one instance is
// honoured on the others within a second (revoke, logout, disable, rotate),
// guesses and refresh reuse count cluster-wide, one member down changes
// nothing, a lost quorum fails closed after max_stale and recovers by
// itself, and a gateway killed mid-write loses nothing it acknowledged.
func TestClusterOfThree(t *testing.T) {
	t.Parallel()
	cluster, err := embedded.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	up := newUpstream(t)
	var gws []*Gateway
	for i := range 3 {
		g := newGateway(t, up)
		g.ConfigPath = writeClusterConfig(t, g, cluster.Endpoints(), "/authgate-e2e/", fmt.Sprintf("gw%d", i))
		gws = append(gws, g)
	}
	for _, g := range gws {
		g.Start(t)
		waitAdminReady(t, g)
	}
	g0, g1, g2 := gws[0], gws[1], gws[2]
	const pw = "cluster: a long enough password"

	addUser := func(g *Gateway, name string) string {
		t.Helper()
		secret(pw)
		out := g.LiveCLI(t, pw+"\n", "user", "add", name, "--password-stdin", "--roles", "dev", "--email", name+"@example.com")
		m := addedUserRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("user add %s: %q", name, scrub(out))
		}
		return m[2]
	}
	createKey := func(g *Gateway, user string) CreatedKey {
		t.Helper()
		var k CreatedKey
		if err := json.Unmarshal([]byte(g.LiveCLI(t, "", "key", "create", "--user", user, "--name", "k", "--permissions", "read", "--json")), &k); err != nil {
			t.Fatalf("key create: %v", err)
		}
		secret(k.Key)
		return k
	}
	// refusedEverywhere polls the gateways until each refuses h (401), and
	// fails if one still accepts it a second after the change.
	refusedEverywhere := func(what string, h H, on ...*Gateway) {
		t.Helper()
		for _, g := range on {
			deadline := time.Now().Add(time.Second)
			for {
				r := g.Do(t, "GET", "/app/cluster", nil, h)
				if r.Status == http.StatusUnauthorized {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("SECURITY: %s: gateway on :%d still answers %d a second later", what, g.SitePort, r.Status)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	acceptedEverywhere := func(what string, h H) {
		t.Helper()
		for _, g := range gws {
			if r := g.Do(t, "GET", "/app/cluster", nil, h); r.Status != http.StatusOK {
				t.Fatalf("%s on :%d: %s, want 200", what, g.SitePort, r)
			}
		}
	}

	// One store: a user added on one instance logs in on another, and both
	// credentials work on every instance.
	annID := addUser(g0, "ann")
	key := createKey(g1, "ann")
	tok := g2.Login(t, "ann", pw)
	acceptedEverywhere("ann's token", bearer(tok.Access))
	acceptedEverywhere("ann's key", apiKey(key.Key))

	// Revoked on one, refused on the others: key, logout, disable.
	g0.LiveCLI(t, "", "key", "revoke", key.ID)
	refusedEverywhere("a key revoked on gw0", apiKey(key.Key), g1, g2, g0)
	if r := g1.Do(t, "POST", "/rest/logout", nil, bearer(tok.Access)); r.Status != http.StatusOK {
		t.Fatalf("logout on gw1: %s", r)
	}
	refusedEverywhere("a token logged out on gw1", bearer(tok.Access), g0, g2)
	addUser(g0, "bea")
	beaTok := g0.Login(t, "bea", pw)
	acceptedEverywhere("bea's token", bearer(beaTok.Access))
	g2.LiveCLI(t, "", "user", "disable", "bea")
	refusedEverywhere("a token of a user disabled on gw2", bearer(beaTok.Access), g0, g1)

	// A rotation on one instance: every instance verifies the new key's
	// tokens and still the old key's.
	before := g1.Login(t, "ann", pw)
	g0.LiveCLI(t, "", "signing-key", "rotate")
	after := g0.Login(t, "ann", pw)
	acceptedEverywhere("a token signed by the key gw0 has just made", bearer(after.Access))
	acceptedEverywhere("a token signed by the retired key", bearer(before.Access))

	// Refresh reuse counts across instances: spent on gw0, replayed on gw1,
	// the whole family ends on gw2 too.
	fam := g1.Login(t, "ann", pw)
	next := checkTokenBody(t, "refresh on gw0", g0.Refresh(t, fam.Refresh))
	if r := g1.Refresh(t, fam.Refresh); r.Status != http.StatusUnauthorized {
		t.Errorf("SECURITY: a spent refresh token replayed on another instance: %s", r)
	}
	refusedEverywhere("the successor of a replayed refresh token", bearer(next.Access), g2, g0)

	// Guesses count cluster-wide: one wrong password on each instance, with
	// `lockout 3`, locks the account everywhere, for the right password too.
	addUser(g0, "cal")
	for _, g := range gws {
		body, h := jsonBody(t, map[string]string{"username": "cal", "password": "wrong guess"})
		if r := g.Do(t, "POST", "/rest/login", body, h); r.Status != http.StatusUnauthorized {
			t.Fatalf("a wrong guess on :%d: %s", g.SitePort, r)
		}
	}
	for _, g := range gws {
		body, h := jsonBody(t, map[string]string{"username": "cal", "password": pw})
		if r := g.Do(t, "POST", "/rest/login", body, h); r.Status != http.StatusForbidden { // plentymarkets' lock (API.md section 4)
			t.Errorf("SECURITY: three guesses on three instances did not lock cal on :%d: %s", g.SitePort, r)
		}
	}

	// One member down: the cluster keeps its quorum and nothing changes.
	live := createKey(g0, "ann")
	acceptedEverywhere("a new key", apiKey(live.Key))
	if err := cluster.Stop(2); err != nil {
		t.Fatal(err)
	}
	g1.Login(t, "ann", pw)
	acceptedEverywhere("a key with one etcd member down", apiKey(live.Key))
	if r := g1.Do(t, "GET", "/authgate/health", nil, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"store":"etcd"`) {
		t.Errorf("health with one member down: %s, want 200 naming etcd", r)
	}

	// Quorum lost: logins fail with 503 at once, cached credentials are
	// served for at most max_stale (1s here), then refused with 503; never
	// a 200 for what cannot be checked. Then it recovers by itself.
	if err := cluster.Stop(1); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	body, h := jsonBody(t, map[string]string{"username": "ann", "password": pw})
	if r, err := g0.TryDo("POST", "/rest/login", body, h); err != nil || r.Status != http.StatusServiceUnavailable {
		t.Errorf("a login without quorum: %v %v, want 503", r, err)
	}
	for _, g := range gws {
		deadline := lost.Add(1*time.Second + 3*time.Second) // max_stale, and the time to notice
		for {
			r, err := g.TryDo("GET", "/app/cluster", nil, apiKey(live.Key))
			if err == nil && r.Status == http.StatusServiceUnavailable {
				break
			}
			if err == nil && r.Status == http.StatusOK && time.Since(lost) > 4*time.Second {
				t.Errorf("SECURITY: :%d still answers 200 %s after losing quorum (max_stale 1s)", g.SitePort, time.Since(lost).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Errorf(":%d did not fail closed without quorum: %v %v", g.SitePort, r, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The health check says so too, while decisions fail closed.
	if r, err := g0.TryDo("GET", "/authgate/health", nil, nil); err != nil || r.Status != http.StatusServiceUnavailable ||
		strings.TrimSpace(string(r.Body)) != `{"status":"unavailable","store":"etcd"}` {
		t.Errorf("health without quorum: %v %v, want 503 unavailable", r, err)
	}
	if err := cluster.Restart(1); err != nil {
		t.Fatalf("restarting member 1: %v", err)
	}
	if err := cluster.Restart(2); err != nil {
		t.Fatalf("restarting member 2: %v", err)
	}
	for _, g := range gws {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := g.TryDo("GET", "/app/cluster", nil, apiKey(live.Key))
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf(":%d did not recover within 20s of the quorum's return: %v %v", g.SitePort, r, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	g2.Login(t, "ann", pw)
	if r := g2.Do(t, "GET", "/authgate/health", nil, nil); r.Status != http.StatusOK {
		t.Errorf("health after the quorum's return: %s, want 200", r)
	}

	// kill -9 a gateway mid-write: every user it acknowledged is there,
	// seen through another instance.
	var acked []string
	var mu sync.Mutex
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		admin := fmt.Sprintf("http://127.0.0.1:%d", g1.AdminPort)
		for i := 0; !stop.Load() && i < 200; i++ {
			name := fmt.Sprintf("kill-%d", i)
			req, _ := http.NewRequest("POST", admin+"/authgate/users", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":"pw-%s-long-enough"}`, name, name)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", admin)
			res, err := client.Do(req)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				return
			}
			mu.Lock()
			acked = append(acked, name)
			mu.Unlock()
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 20 || time.Now().After(deadline) {
			break
		}
	}
	kill9(t, g1)
	stop.Store(true)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 5 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}
	for _, name := range acked {
		if r := adminGet(t, g0, "/authgate/users/"+name); r.Status != http.StatusOK {
			t.Errorf("user %s was acknowledged by the killed gateway but is not in the store: %s", name, r)
		}
	}
	t.Logf("%d writes acknowledged before kill -9, all there; ann is %s", len(acked), annID)
}

// writeClusterConfig is the harness's configuration on an etcd store.
func writeClusterConfig(t *testing.T, g *Gateway, endpoints []string, prefix, name string) string {
	t.Helper()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	authgate {
		store etcd {
			endpoints %s
			prefix %s
			max_stale 1s
		}
		lockout 3 5m
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	authgate {
		api plentymarkets /rest
		api babel /v1/auth
		allow /health
		health /authgate/health
	}
	reverse_proxy 127.0.0.1:%d
}
`, g.AdminPort, strings.Join(endpoints, " "), prefix, g.SitePort, g.Up.Port)
	p := filepath.Join(g.Dir, "Caddyfile."+name)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
