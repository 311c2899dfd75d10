// Command cluster measures authgate on an etcd cluster (bench/cluster.sh
// runs it): a three-member etcd on loopback, in process, and three gateway
// binaries on it.
//
//   - Revocation propagation: a key is created on gateway 0 and used on
//     gateways 1 and 2 (so their decision caches hold it), then revoked
//     through gateway 0's admin API; from the moment that call returns, 1
//     and 2 are asked with the key until each answers 401. Over -revocations
//     rounds: p50, p90, p99, max.
//
//   - Logins and refreshes per second through gateway 0 on etcd, and through
//     a gateway on a bbolt file, the same binary and settings.
//
//   - The store's write latency, etcd against bbolt: -writes session
//     creations each, through the Go API, one at a time.
//
//     go run ./bench/cmd/cluster -caddy ./caddy
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/store/etcd"
	"github.com/authgate/authgate/store/etcd/embedded"
)

const password = "bench-cluster-password-1"

func main() {
	var (
		caddyBin    = flag.String("caddy", "./caddy", "the caddy binary with authgate")
		revocations = flag.Int("revocations", 200, "revocations to time")
		loginFor    = flag.Duration("login-duration", 5*time.Second, "length of each logins/refreshes phase")
		clients     = flag.Int("clients", 4, "concurrent clients of the logins and refreshes phases")
		writes      = flag.Int("writes", 300, "store writes to time per backend")
		keep        = flag.Bool("keep", false, "keep the scratch directory")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("cluster: ")
	bin, err := filepath.Abs(*caddyBin)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "authgate-cluster-bench-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}

	cluster, err := embedded.Start(filepath.Join(dir, "etcd"), 3)
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()
	eps := cluster.Endpoints()
	fmt.Printf("etcd: 3 members on %s\n", strings.Join(eps, " "))

	var gws []*gateway
	for i := range 3 {
		g, err := startGateway(bin, dir, fmt.Sprintf("etcd%d", i), fmt.Sprintf("store etcd {\n\t\t\tendpoints %s\n\t\t\tprefix /authgate-bench/\n\t\t}", strings.Join(eps, " ")))
		if err != nil {
			log.Fatal(err)
		}
		defer g.stop()
		gws = append(gws, g)
	}
	if err := gws[0].admin("POST", "/authgate/users", fmt.Sprintf(`{"username":"bench","password":%q}`, password), nil); err != nil {
		log.Fatal(err)
	}

	propagation(gws, *revocations)

	solo, err := startGateway(bin, dir, "bbolt", fmt.Sprintf("db %s", filepath.Join(dir, "solo.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer solo.stop()
	if err := solo.admin("POST", "/authgate/users", fmt.Sprintf(`{"username":"bench","password":%q}`, password), nil); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nlogins and refreshes, %d clients, %s each\n", *clients, *loginFor)
	fmt.Printf("%-8s %12s %14s\n", "store", "logins/s", "refreshes/s")
	for _, c := range []struct {
		name string
		g    *gateway
	}{{"etcd", gws[0]}, {"bbolt", solo}} {
		l := rate(c.g, *clients, *loginFor, login)
		r := rate(c.g, *clients, *loginFor, refresh)
		fmt.Printf("%-8s %12.1f %14.1f\n", c.name, l, r)
	}

	fmt.Printf("\nstore write latency, %d session creations one at a time (Go API)\n", *writes)
	fmt.Printf("%-8s %10s %10s %10s\n", "store", "p50", "p99", "max")
	est, err := etcd.Open(etcd.Options{Endpoints: eps, Prefix: "/authgate-writes/"})
	if err != nil {
		log.Fatal(err)
	}
	defer est.Close()
	bst, err := bbolt.Open(filepath.Join(dir, "writes.db"), bbolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer bst.Close()
	for _, c := range []struct {
		name string
		st   store.Store
	}{{"etcd", est}, {"bbolt", bst}} {
		lat := writeLatency(c.st, *writes)
		fmt.Printf("%-8s %10s %10s %10s\n", c.name, pct(lat, 50), pct(lat, 99), pct(lat, 100))
	}
}

// propagation times revocations made on gateway 0 until 1 and 2 refuse.
func propagation(gws []*gateway, n int) {
	var lat []time.Duration
	var worst time.Duration
	for i := range n {
		var k struct{ ID, Key string }
		if err := gws[0].admin("POST", "/authgate/keys", fmt.Sprintf(`{"user":"bench","name":"p%d","permissions":"read"}`, i), &k); err != nil {
			log.Fatal(err)
		}
		for _, g := range gws[1:] {
			if st := g.get(k.Key); st != http.StatusOK {
				log.Fatalf("a new key on :%d answers %d", g.site, st)
			}
		}
		if err := gws[0].admin("POST", "/authgate/keys/"+k.ID+"/revoke", "", nil); err != nil {
			log.Fatal(err)
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, g := range gws[1:] {
			wg.Go(func() {
				for {
					if st := g.get(k.Key); st == http.StatusUnauthorized {
						break
					}
					if time.Since(t0) > 5*time.Second {
						log.Fatalf("a revoked key still works on :%d after 5s", g.site)
					}
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				worst = max(worst, d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	fmt.Printf("\nrevocation propagation, %d revocations on gateway 0, first 401 on gateways 1 and 2 (%d samples)\n", n, len(lat))
	fmt.Printf("p50 %s  p90 %s  p99 %s  max %s\n", pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
}

func login(g *gateway, c *http.Client, _ *string) bool {
	res, err := c.Post(g.url("/rest/login"), "application/x-www-form-urlencoded", strings.NewReader("username=bench&password="+password))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// refresh spends the client's refresh token and keeps the next one.
func refresh(g *gateway, c *http.Client, tok *string) bool {
	if *tok == "" {
		res, err := c.Post(g.url("/rest/login"), "application/x-www-form-urlencoded", strings.NewReader("username=bench&password="+password))
		if err != nil {
			return false
		}
		*tok = refreshOf(res)
		return false
	}
	res, err := c.Post(g.url("/rest/login/refresh"), "application/x-www-form-urlencoded", strings.NewReader("refresh_token="+*tok))
	if err != nil {
		return false
	}
	*tok = refreshOf(res)
	return *tok != ""
}

func refreshOf(res *http.Response) string {
	defer res.Body.Close()
	var b struct {
		Refresh string `json:"refresh_token"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&b) != nil {
		return ""
	}
	return b.Refresh
}

// rate runs clients doing op against g for d and returns successes per second.
func rate(g *gateway, clients int, d time.Duration, op func(*gateway, *http.Client, *string) bool) float64 {
	var ok atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second}
			var tok string
			for time.Now().Before(stop) {
				if op(g, c, &tok) {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / d.Seconds()
}

// writeLatency times n session creations (a write with its session-limit
// check) one at a time.
func writeLatency(st store.Store, n int) []time.Duration {
	u := &store.User{Username: "writer" + store.NewID("")}
	if err := st.CreateUser(u); err != nil {
		log.Fatal(err)
	}
	var lat []time.Duration
	for range n {
		tok, _ := secret.NewSecret(secret.RefreshPrefix)
		s := &store.Session{UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}
		t0 := time.Now()
		if _, err := st.CreateSession(s, store.DigestOf(tok), 10); err != nil {
			log.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

func pct(lat []time.Duration, p int) string {
	if len(lat) == 0 {
		return "-"
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = max(1, min(i, len(s)))
	return s[i-1].Round(10 * time.Microsecond).String()
}

// gateway is one caddy process.
type gateway struct {
	cmd          *exec.Cmd
	site, admin_ int
	client       *http.Client
}

func (g *gateway) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", g.site, path) }

func (g *gateway) get(key string) int {
	req, _ := http.NewRequest("GET", g.url("/app/x"), nil)
	req.Header.Set("X-Api-Key", key)
	res, err := g.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func (g *gateway) admin(method, path, body string, out any) error {
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.admin_)
	req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", admin)
	res, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (g *gateway) stop() {
	if g.cmd.Process != nil {
		g.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			g.cmd.Process.Kill()
		}
	}
}

// startGateway runs caddy with an authgate whose store is storeLines, a
// site on a free port that proxies to a local respond, and waits for it.
func startGateway(bin, dir, name, storeLines string) (*gateway, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	g := &gateway{site: ports[0], admin_: ports[1], client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	authgate {
		%s
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	authgate {
		api plentymarkets /rest
	}
	reverse_proxy 127.0.0.1:%d
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	respond "ok" 200
}
`, g.admin_, storeLines, g.site, ports[2], ports[2])
	path := filepath.Join(dir, "Caddyfile."+name)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, name+"-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, name+"-config"))
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := g.admin("GET", "/authgate/signing-keys", "", nil); err == nil {
			return g, nil
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("gateway %s did not come up (see %s)", name, logf.Name())
		}
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
