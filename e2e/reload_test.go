package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadKeepsServing reloads a serving gateway again and again under
// load: a reload provisions the new config before it stops the old one, so
// the store must be shared, not opened twice (bbolt's lock would refuse),
// and no request may fail meanwhile (SECURITY.md, Operations).
func TestReloadKeepsServing(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "carol: load and reload, again and again"
	g.AddUser(t, "carol", pw, "ops", "carol@example.com")
	key := g.CreateKey(t, "carol", "load", "read")
	cfgA := g.ConfigPath
	cfgB := g.WriteConfig("Caddyfile.b", "/other")
	g.Start(t)
	tok := g.Login(t, "carol", pw)

	// Under config A, /other needs a credential; under B it is allowed.
	var drops dropCounter
	wantOther := func(t *testing.T, cfg string) {
		t.Helper()
		want := 401
		if cfg == cfgB {
			want = 200
		}
		if err := waitStatus(g.client, &drops, g.Base()+"/other", want); err != nil {
			t.Errorf("GET /other without credential under %s: %v (did the reload take effect?)", cfgName(cfg), err)
		}
	}
	wantOther(t, cfgA)
	for _, h := range []H{bearer(tok.Access), apiKey(key.Key)} {
		if r := g.Do(t, "GET", "/app/load/warmup", nil, h); r.Status != 200 {
			t.Fatalf("before the load: GET /app/load/warmup: %s, want 200", r)
		}
	}

	const (
		workers  = 4
		reloads  = 6
		interval = 6 * time.Second / (reloads + 1)
	)
	var (
		okCount, failed atomic.Int64
		failMu          sync.Mutex
		failures        = map[string]int{}
		wg              sync.WaitGroup
	)
	// Read before the workers start: their first 200s must count.
	warm := up.loadHits.Load()
	// The load runs until the last reload is done and a moment more, so
	// every reload happens under it however long the reloads take.
	var stop atomic.Bool
	loadStart := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{
				Timeout:   5 * time.Second,
				Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2},
			}
			defer client.CloseIdleConnections()
			for i := 0; !stop.Load(); i++ {
				method, h := "bearer", bearer(tok.Access)
				if i%2 == 1 {
					method, h = "key", apiKey(key.Key)
				}
				// send resends, once, a request whose connection the
				// reload closed before the server read it (see send).
				_, err := send(client, &drops, "GET", g.Base()+fmt.Sprintf("/app/load/%d/%d", w, i), nil, h, 200)
				if err != nil {
					failed.Add(1)
					failMu.Lock()
					failures[fmt.Sprintf("%s: %v", method, err)]++
					failMu.Unlock()
					continue
				}
				okCount.Add(1)
			}
		}()
	}

	reloadStart := time.Now()
	done := 0
	for i := range reloads {
		time.Sleep(interval)
		cfg := cfgB
		if i%2 == 1 {
			cfg = cfgA
		}
		start := time.Now()
		stdout, stderr, err := g.Run("", "reload", "--config", cfg, "--adapter", "caddyfile",
			"--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort))
		took := time.Since(start)
		all := stdout + stderr
		if err != nil {
			t.Errorf("reload #%d to %s failed after %s: %v\n%s", i+1, cfgName(cfg), took, err, scrub(all))
			continue
		}
		if strings.Contains(strings.ToLower(all), "locked") {
			t.Errorf("reload #%d to %s: output mentions a lock (store opened twice?):\n%s", i+1, cfgName(cfg), scrub(all))
		}
		done++
		t.Logf("reload #%d to %s took %s", i+1, cfgName(cfg), took.Round(time.Millisecond))
		wantOther(t, cfg)
	}
	// Requests must still succeed after the last reload, under the load.
	afterLast := okCount.Load()
	time.Sleep(interval / 2)
	if okCount.Load() == afterLast {
		t.Errorf("no request succeeded after the last reload while the load still ran")
	}
	stop.Store(true)

	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(15 * time.Second):
		t.Fatalf("load workers did not finish within 15s of the last reload")
	}

	ok, bad := okCount.Load(), failed.Load()
	t.Logf("load: %d workers for %s with %d/%d reloads in %s: %d ok, %d failed; closed by a reload before the server read them, resent once: %s",
		workers, time.Since(loadStart).Round(time.Millisecond), done, reloads, time.Since(reloadStart).Round(time.Millisecond), ok, bad, drops.String())
	if hits := up.loadHits.Load() - warm; hits != ok {
		t.Errorf("the upstream received %d load requests, but %d got a 200: every 200 must come from the upstream, and no refused request may reach it", hits, ok)
	}
	if n := up.loadBad.Load(); n != 0 {
		t.Errorf("SECURITY: %d load requests reached the upstream without exactly carol's identity or with a credential header", n)
	}
	if done < 5 {
		t.Errorf("only %d reloads succeeded, want at least 5", done)
	}
	if ok == 0 {
		t.Errorf("no request succeeded during the load")
	}
	if bad != 0 {
		keys := make([]string, 0, len(failures))
		for k := range failures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Errorf("failed during reloads (%d×): %s", failures[k], k)
		}
		t.Errorf("%d requests failed during reloads (an unexpected status, or a transport error twice), want 0", bad)
	}
	if strings.Contains(strings.ToLower(g.out.String()), "locked") {
		t.Errorf("caddy's output mentions a lock during reloads (store opened twice?)")
	}

	// After all the reloads, both credentials still work, the store is still
	// held exactly by the server (CLI refused), and a stop exits cleanly.
	for _, h := range []H{bearer(tok.Access), apiKey(key.Key)} {
		if r := g.Do(t, "GET", "/app/after", nil, h); r.Status != 200 {
			t.Errorf("after the reloads: GET /app/after: %s, want 200", r)
		}
	}
	if _, _, err := g.Run("", "authgate", "user", "list", "--db", g.DB); err == nil {
		t.Errorf("after the reloads the CLI could open the store while the server runs (was it released by a reload?)")
	}
	g.Stop(t)
	out := g.CLI(t, "", "user", "list")
	if !strings.Contains(out, "carol") {
		t.Errorf("after stop, user list does not show carol: %q", out)
	}
}

func cfgName(path string) string {
	if strings.HasSuffix(path, ".b") {
		return "config B (allow /other)"
	}
	return "config A"
}
