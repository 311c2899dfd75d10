package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/store/bbolt"
)

// TestReloadUnderMixedLoad reloads the config at least minReloads times,
// alternating two configs on the same store, while a few workers send a
// bounded mix of cached Bearer tokens, API keys, allowed paths and
// login → use → logout round trips (writes) on loopback. SECURITY.md,
// Operations: a reload never drops a request and never opens the database
// twice. Every request must get its expected status; the store must pass
// its consistency check once the server has stopped.
//
// What a reload can still do, below authgate (see send): close a
// connection before the server has read the request on it. Such a request
// never reached authgate; the client sends it once more on a new
// connection, it is counted apart ("resent"), and the test proves it had no
// effect the first time: every request the upstream saw got exactly one
// 200, and the store holds exactly one session per login that got a 200.
func TestReloadUnderMixedLoad(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const carolPW = "carol: mixed load under reloads"
	g.AddUser(t, "carol", carolPW, "ops", "carol@example.com")
	key := g.CreateKey(t, "carol", "load", "read")

	const workers = 4
	// One login user per worker: a user's session_limit (10) ends their
	// oldest session on the 11th login, so no worker may log in as
	// another's user while that one's token is in use.
	loginPW := func(w int) string { return fmt.Sprintf("login-%d: a password long enough", w) }
	for w := range workers {
		g.AddUser(t, fmt.Sprintf("login-%d", w), loginPW(w), "dev", fmt.Sprintf("login-%d@example.com", w))
	}

	cfgA := g.ConfigPath
	cfgB := g.WriteConfig("Caddyfile.b", "/other")
	// The JSON `caddy reload` would send for each config, adapted once.
	cfgJSON := map[string][]byte{}
	for _, cfg := range []string{cfgA, cfgB} {
		out, errOut, err := g.Run("", "adapt", "--config", cfg, "--adapter", "caddyfile")
		if err != nil {
			t.Fatalf("caddy adapt %s: %v\n%s", cfgName(cfg), err, errOut)
		}
		cfgJSON[cfg] = []byte(out)
	}
	g.Start(t)
	tok := g.Login(t, "carol", carolPW)
	for _, h := range []H{bearer(tok.Access), apiKey(key.Key)} {
		if r := g.Do(t, "GET", "/app/load/warmup", nil, h); r.Status != 200 {
			t.Fatalf("before the load: GET /app/load/warmup: %s, want 200", r)
		}
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.AdminPort)

	const (
		wantReloads = 24               // as many as fit in maxLoadTime, up to this
		minReloads  = 20               // fewer fail the test
		maxLoadTime = 18 * time.Second // hard bound of the whole load phase
		maxRequests = 60_000           // over all workers
		reloadPause = 100 * time.Millisecond
	)
	type kind int
	const (
		kBearer kind = iota
		kKey
		kAllowed
		kLogin
		kUse
		kLogout
		nKinds
	)
	kindName := [nKinds]string{"bearer", "api key", "allowed path", "login", "fresh token", "logout"}
	var (
		sent, okCount, failed atomic.Int64
		perKind               [nKinds]atomic.Int64
		drops                 dropCounter
		failMu                sync.Mutex
		failures              = map[string]int{}
		stop                  atomic.Bool
		wg                    sync.WaitGroup
	)
	fail := func(what string) {
		failed.Add(1)
		failMu.Lock()
		failures[what]++
		failMu.Unlock()
	}
	loadStart := time.Now()
	hardStop := loadStart.Add(maxLoadTime)

	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Keep-alive connections, as real clients hold them.
			client := &http.Client{
				Timeout:   10 * time.Second,
				Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2},
			}
			defer client.CloseIdleConnections()
			do := func(k kind, method, path string, body []byte, hdr H, want int) ([]byte, bool) {
				sent.Add(1)
				perKind[k].Add(1)
				b, err := send(client, &drops, method, g.Base()+path, body, hdr, want)
				if err != nil {
					fail(fmt.Sprintf("%s %s: %v", kindName[k], method, err))
					return nil, false
				}
				okCount.Add(1)
				return b, true
			}
			loginBody, _ := json.Marshal(map[string]string{"username": fmt.Sprintf("login-%d", w), "password": loginPW(w)})
			jsonH := H{{"Content-Type", "application/json"}}
			for i := 0; !stop.Load() && time.Now().Before(hardStop) && sent.Load() < maxRequests; i++ {
				switch {
				case i%40 == 39:
					// A login (a write, and an argon2id hash), the fresh
					// token used at once, then a logout (a write).
					b, ok := do(kLogin, "POST", "/rest/login", loginBody, jsonH, 200)
					if !ok {
						continue
					}
					var pair struct {
						Access string `json:"access_token"`
					}
					if err := json.Unmarshal(b, &pair); err != nil || pair.Access == "" {
						fail("login: 200 without an access_token")
						continue
					}
					secret(pair.Access)
					if _, ok := do(kUse, "GET", fmt.Sprintf("/app/fresh/%d/%d", w, i), nil, bearer(pair.Access), 200); !ok {
						continue
					}
					do(kLogout, "POST", "/rest/logout", nil, bearer(pair.Access), 200)
				case i%3 == 0:
					do(kBearer, "GET", fmt.Sprintf("/app/load/%d/%d", w, i), nil, bearer(tok.Access), 200)
				case i%3 == 1:
					do(kKey, "GET", fmt.Sprintf("/app/load/%d/%d", w, i), nil, apiKey(key.Key), 200)
				default:
					do(kAllowed, "GET", fmt.Sprintf("/public/load/%d/%d", w, i), nil, nil, 200)
				}
			}
		}()
	}

	// The reloads: POST /load on the admin endpoint with the adapted
	// config, as `caddy reload` does; a few through the CLI itself (a
	// process start each, slow on a busy machine).
	// A fresh connection per reload, as `caddy reload` makes: Caddy
	// restarts its admin endpoint after each load (the same close race).
	adminClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	checkClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer checkClient.CloseIdleConnections()
	reloads, reloadErrors := 0, 0
	var slowest time.Duration
	for i := 0; reloads < wantReloads && time.Now().Add(2*time.Second).Before(hardStop); i++ {
		time.Sleep(reloadPause)
		cfg := cfgB
		if i%2 == 1 {
			cfg = cfgA
		}
		start := time.Now()
		var err error
		if i%10 == 4 {
			var stdout, stderr string
			stdout, stderr, err = g.Run("", "reload", "--config", cfg, "--adapter", "caddyfile", "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort))
			if err != nil {
				err = fmt.Errorf("caddy reload: %v: %s", err, scrub(stdout+stderr))
			}
		} else {
			req, _ := http.NewRequest("POST", admin+"/load", bytes.NewReader(cfgJSON[cfg]))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", admin)
			var res *http.Response
			if res, err = adminClient.Do(req); err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					err = fmt.Errorf("POST /load: %d %s", res.StatusCode, scrub(string(b)))
				}
			}
		}
		took := time.Since(start)
		slowest = max(slowest, took)
		if took > time.Second {
			t.Logf("reload #%d to %s took %s (a busy machine?)", i+1, cfgName(cfg), took.Round(time.Millisecond))
		}
		if err != nil {
			reloadErrors++
			t.Errorf("reload #%d to %s failed after %s: %v", i+1, cfgName(cfg), took.Round(time.Millisecond), err)
			continue
		}
		reloads++
		// The reload took effect: /other is allowed under B only.
		want := 401
		if cfg == cfgB {
			want = 200
		}
		if err := waitStatus(checkClient, &drops, g.Base()+"/other", want); err != nil {
			t.Errorf("GET /other without credential after reload #%d to %s: %v (did the reload take effect?)", i+1, cfgName(cfg), err)
		}
	}
	reloadTime := time.Since(loadStart)
	// A short tail of load after the last reload, then stop.
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(time.Until(hardStop) + 15*time.Second):
		t.Fatalf("load workers did not finish within 15s of the load's bound")
	}
	loadTime := time.Since(loadStart)

	var mix []string
	for k := range nKinds {
		mix = append(mix, fmt.Sprintf("%s %d", kindName[k], perKind[k].Load()))
	}
	t.Logf("reloads %d (%d failed, slowest %s, in %s), requests %d (%s) by %d workers in %s, failed %d",
		reloads, reloadErrors, slowest.Round(time.Millisecond), reloadTime.Round(time.Millisecond),
		sent.Load(), strings.Join(mix, ", "), workers, loadTime.Round(time.Millisecond), failed.Load())
	t.Logf("closed by a reload before the server read them, resent once: %s", drops.String())
	// Each worker (and the /other check) has one request in flight, which
	// a reload can close under it once on a pooled connection (Go's client
	// resends) and once on a new one (send resends): more would be a
	// server closing connections for another reason.
	if n, most := drops.total(), int64(2*reloads*(workers+1)); n > most {
		t.Errorf("%d requests were resent after a closed connection, more than two per worker per reload (%d)", n, most)
	}

	if reloads < minReloads {
		t.Errorf("only %d reloads in %s, want at least %d", reloads, maxLoadTime, minReloads)
	}
	if n := failed.Load(); n != 0 {
		keys := make([]string, 0, len(failures))
		for k := range failures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Errorf("failed during reloads (%d×): %s", failures[k], k)
		}
		t.Errorf("%d of %d requests failed during %d reloads, want 0", n, sent.Load(), reloads)
	}
	if okCount.Load()+failed.Load() != sent.Load() {
		t.Errorf("accounting: %d ok + %d failed != %d sent", okCount.Load(), failed.Load(), sent.Load())
	}
	for _, k := range []kind{kBearer, kKey, kAllowed, kLogin, kLogout} {
		if perKind[k].Load() == 0 {
			t.Errorf("the load sent no %s request", kindName[k])
		}
	}
	// Every request that reached the upstream got exactly one 200 (the
	// warm-up's two included): none of the resent ones had reached it the
	// first time, and every 200 came from the upstream.
	if hits, want := up.loadHits.Load(), perKind[kBearer].Load()+perKind[kKey].Load()+2; failed.Load() == 0 && hits != want {
		t.Errorf("the upstream received %d bearer/key load requests, want %d (one per 200)", hits, want)
	}
	var allowedSeen, freshSeen int64
	for _, s := range up.Since(0) {
		switch {
		case strings.HasPrefix(s.Path, "/public/load/"):
			allowedSeen++
		case strings.HasPrefix(s.Path, "/app/fresh/"):
			freshSeen++
		}
	}
	if failed.Load() == 0 && (allowedSeen != perKind[kAllowed].Load() || freshSeen != perKind[kUse].Load()) {
		t.Errorf("the upstream saw %d allowed-path and %d fresh-token requests, want %d and %d (one per 200)",
			allowedSeen, freshSeen, perKind[kAllowed].Load(), perKind[kUse].Load())
	}
	if n := up.loadBad.Load(); n != 0 {
		t.Errorf("SECURITY: %d load requests reached the upstream without exactly carol's identity or with a credential header", n)
	}

	// Caddy's peak memory over the reloads, for the record (Linux only).
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.proc.Process.Pid)); err == nil {
		if m := regexp.MustCompile(`VmHWM:\s*(\d+ kB)`).FindSubmatch(b); m != nil {
			t.Logf("caddy's peak resident memory: %s", m[1])
		}
	}
	g.Stop(t)
	// No handler panicked and nothing else went wrong inside Caddy.
	for _, line := range strings.Split(g.Output(), "\n") {
		if strings.Contains(line, `"level":"error"`) {
			t.Errorf("caddy logged an error during the reloads: %s", line)
		}
	}
	if lockErr := regexp.MustCompile(`(?i)database[^\n]*locked|locked by another process`).FindString(g.out.String()); lockErr != "" {
		t.Errorf("caddy's output reports a lock error (store opened twice?): %q", lockErr)
	}
	st, err := bbolt.Open(g.DB, bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("opening the store after the server stopped: %v", err)
	}
	counts, err := st.Check()
	if cerr := st.Close(); cerr != nil {
		t.Errorf("closing the store: %v", cerr)
	}
	if err != nil {
		t.Fatalf("store check after %d reloads under load: %v", reloads, err)
	}
	t.Logf("store after the run: %+v", counts)
	if counts.Users != 1+workers || counts.APIKeys != 1 {
		t.Errorf("store holds %d users and %d keys, want %d and 1", counts.Users, counts.APIKeys, 1+workers)
	}
	// One session per login that answered 200 (and carol's): no login was
	// lost, and none resent had run the first time.
	if want := 1 + int(perKind[kLogin].Load()); failed.Load() == 0 && counts.Sessions != want {
		t.Errorf("store holds %d sessions, want %d (one per successful login)", counts.Sessions, want)
	}
}

// waitStatus GETs url until it answers want, for at most 5s. A reload
// returns once the old server's shutdown has been started, not finished: a
// request sent at once may still be served by the old config.
func waitStatus(client *http.Client, drops *dropCounter, url string, want int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := send(client, drops, "GET", url, nil, nil, want)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dropCounter counts requests a reload closed the connection under before
// the server had read them, by how the connection was obtained.
type dropCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

func (d *dropCounter) add(what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int64{}
	}
	d.n[what]++
}

func (d *dropCounter) total() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var t int64
	for _, n := range d.n {
		t += n
	}
	return t
}

func (d *dropCounter) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := make([]string, 0, len(d.n))
	var t int64
	for k, n := range d.n {
		keys = append(keys, fmt.Sprintf("%s %d", k, n))
		t += n
	}
	if t == 0 {
		return "0"
	}
	sort.Strings(keys)
	return fmt.Sprintf("%d (%s)", t, strings.Join(keys, ", "))
}

// send sends one request and returns its body if the status is want.
//
// A reload ends the old config's HTTP server with Go's Server.Shutdown,
// which closes idle keep-alive connections and drops, without an answer,
// a request it reads after the shutdown began, on a connection it had
// already accepted (net/http checks shuttingDown() after reading each
// request). On Linux the old and new servers listen on the same port with
// SO_REUSEPORT until the old one closes its socket, so even a new
// connection can land on the old server. A request written onto such a
// connection fails with EOF or a reset before any response byte, and it
// never reached a handler: HTTP/1.1 lets a client send it again (RFC 9112,
// section 9.3.1). Go's client does so by
// itself for a GET on a reused connection (counted as "by Go's client"); any
// other such failure send resends once, itself, on a new connection. What
// that proves is checked by the caller: nothing resent had an effect the
// first time. A second failure, or any unexpected status, is an error.
func send(client *http.Client, drops *dropCounter, method, url string, body []byte, hdr H, want int) ([]byte, error) {
	var firstErr error
	for attempt := range 2 {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, url, rd)
		if err != nil {
			return nil, err
		}
		for _, kv := range hdr {
			req.Header.Set(kv[0], kv[1])
		}
		var conns []string
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				conns = append(conns, map[bool]string{true: "reused", false: "new"}[ci.Reused])
			},
		}))
		res, err := client.Do(req)
		if len(conns) > 1 {
			drops.add(fmt.Sprintf("%s on a %s connection, resent by Go's client", method, conns[0]))
		}
		if err != nil {
			what := fmt.Sprintf("transport error (connections %v): %s", conns, scrub(err.Error()))
			if attempt == 0 {
				firstErr = errors.New(what)
				if len(conns) > 0 {
					drops.add(fmt.Sprintf("%s on a %s connection", method, conns[len(conns)-1]))
				} else {
					drops.add(method + " before a connection")
				}
				// The next attempt must not take another pooled
				// connection of the server that is shutting down.
				client.CloseIdleConnections()
				continue
			}
			return nil, fmt.Errorf("%s, and resent: %s", firstErr, what)
		}
		b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the body of %d: %s", res.StatusCode, scrub(err.Error()))
		}
		if res.StatusCode != want {
			if firstErr != nil {
				return nil, fmt.Errorf("%d, want %d, resent after %v: %s", res.StatusCode, want, firstErr, strings.TrimSpace(scrub(string(b))))
			}
			return nil, fmt.Errorf("%d, want %d: %s", res.StatusCode, want, strings.TrimSpace(scrub(string(b))))
		}
		return b, nil
	}
	panic("unreachable")
}
