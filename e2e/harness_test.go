package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Secrets: every token, key and password the tests handle is registered, and
// scrub() masks them in anything printed. Caddy's own output is also checked
// for them (SECURITY.md: logs never contain a token, key or password).

var secrets struct {
	sync.Mutex
	list []string
}

// secret registers s and returns it unchanged.
func secret(s string) string {
	if len(s) < 8 {
		return s
	}
	secrets.Lock()
	defer secrets.Unlock()
	if !slices.Contains(secrets.list, s) {
		secrets.list = append(secrets.list, s)
	}
	return s
}

func allSecrets() []string {
	secrets.Lock()
	defer secrets.Unlock()
	return slices.Clone(secrets.list)
}

// redact shows the first 6 characters and the length of a secret.
func redact(s string) string {
	if len(s) <= 6 {
		return fmt.Sprintf("<%d chars>", len(s))
	}
	return fmt.Sprintf("%s…(%d chars)", s[:6], len(s))
}

// scrub masks every registered secret in s.
func scrub(s string) string {
	for _, sec := range allSecrets() {
		s = strings.ReplaceAll(s, sec, redact(sec))
	}
	return s
}

// ---------------------------------------------------------------------------
// The upstream: records everything it receives.

// Seen is one request the upstream received.
type Seen struct {
	Method string
	URI    string // the request-target as received
	Path   string
	Header http.Header
	Body   []byte // the first MiB
	Proto  string
}

// seenLog records the requests an upstream received; Mark and Since
// read it.
type seenLog struct {
	mu   sync.Mutex
	seen []Seen
}

func (l *seenLog) record(s Seen) {
	l.mu.Lock()
	l.seen = append(l.seen, s)
	l.mu.Unlock()
}

// Mark returns a position; Since(mark) returns what arrived after it.
func (l *seenLog) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

func (l *seenLog) Since(mark int) []Seen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen[mark:])
}

// Upstream is the legacy app behind the gateway.
type Upstream struct {
	srv  *httptest.Server
	Port int
	seenLog

	// Requests under /app/load/ (the reload test's load) are counted, not
	// recorded: loadHits counts them, loadBad counts those that did not
	// carry exactly carol's identity or that carried a credential header.
	loadHits, loadBad atomic.Int64
}

func newUpstream(t *testing.T) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/app/load/") {
			u.loadHits.Add(1)
			if r.Header.Get("X-Auth-User") != "carol" || r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
				u.loadBad.Add(1)
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		u.record(Seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Proto: r.Proto})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"upstream": true, "method": r.Method, "uri": r.RequestURI, "path": r.URL.Path, "headers": r.Header,
		})
	}))
	t.Cleanup(u.srv.Close)
	_, port, _ := net.SplitHostPort(u.srv.Listener.Addr().String())
	u.Port, _ = strconv.Atoi(port)
	if host := u.srv.Listener.Addr().(*net.TCPAddr).IP; !host.IsLoopback() {
		t.Fatalf("upstream listens on %v, want loopback", host)
	}
	return u
}

// ---------------------------------------------------------------------------
// The gateway: the built binary, run in its own temp dirs.

// Gateway is one Caddy instance with its Caddyfile, store and environment.
// It may be stopped and started again on the same store and ports.
type Gateway struct {
	t          *testing.T
	Dir        string
	DB         string
	ConfigPath string
	SitePort   int
	AdminPort  int
	Up         *Upstream
	// GlobalExtra and HandlerExtra are written into the global options
	// and the authgate directive by WriteConfig (set them, then call it).
	GlobalExtra, HandlerExtra string
	env                       []string
	client                    *http.Client
	out                       *lockedBuffer
	starts                    int

	proc    *exec.Cmd
	done    chan struct{}
	waitErr error
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort finds a free loopback port by listening on :0 and closing.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stablePort finds a free loopback port below the kernel's ephemeral range
// (from which outgoing connections take their local ports), or falls back
// to freePort if that range leaves no room.
func stablePort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const from = 10000
	if lo-from < 1000 {
		return freePort(t)
	}
	for range 100 {
		p := from + rand.IntN(lo-from)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	return freePort(t)
}

// newGateway prepares (but does not start) a gateway in front of up. Its
// ports are stable ones, so a test that stops and starts it again (a
// restart, a kill -9, a restore) binds them again without racing the
// outgoing connections of parallel tests for them.
func newGateway(t *testing.T, up *Upstream) *Gateway {
	t.Helper()
	dir := t.TempDir()
	g := &Gateway{
		t:         t,
		Dir:       dir,
		DB:        filepath.Join(dir, "authgate.db"),
		SitePort:  stablePort(t),
		AdminPort: stablePort(t),
		Up:        up,
		out:       &lockedBuffer{},
	}
	for g.AdminPort == g.SitePort {
		g.AdminPort = stablePort(t)
	}
	home, data, conf := filepath.Join(dir, "home"), filepath.Join(dir, "xdg-data"), filepath.Join(dir, "xdg-config")
	for _, d := range []string{home, data, conf} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "CADDY_ADMIN":
			continue
		}
		env = append(env, kv)
	}
	g.env = append(env, "HOME="+home, "XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+conf, "XDG_CACHE_HOME="+filepath.Join(dir, "xdg-cache"))
	g.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 5 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	g.ConfigPath = g.WriteConfig("Caddyfile", "")

	// Registered first, so it runs last: after the server has stopped.
	t.Cleanup(func() {
		out := g.out.String()
		for _, sec := range allSecrets() {
			if strings.Contains(out, sec) {
				t.Errorf("SECURITY: Caddy's output contains a secret (%s): logs must never carry tokens, keys or passwords", redact(sec))
			}
		}
		if t.Failed() {
			t.Logf("---- caddy output (%d starts, secrets masked) ----\n%s\n---- end of caddy output ----", g.starts, scrub(out))
		}
	})
	t.Cleanup(func() { g.Stop(t) })
	return g
}

// WriteConfig writes a Caddyfile named name in the gateway's dir; extraAllow
// is appended to the allow line. It returns the file's path.
func (g *Gateway) WriteConfig(name, extraAllow string) string {
	g.t.Helper()
	allow := "/health /public/*"
	if extraAllow != "" {
		allow += " " + extraAllow
	}
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	authgate {
		db %q
	}
%s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	authgate {
		api plentymarkets /rest
		api babel /v1/auth
		jwks /.well-known/jwks.json
		allow %s
%s
	}
	reverse_proxy 127.0.0.1:%d
}
`, g.AdminPort, g.DB, g.GlobalExtra, g.SitePort, allow, g.HandlerExtra, g.Up.Port)
	p := filepath.Join(g.Dir, name)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

func (g *Gateway) addr() string { return fmt.Sprintf("127.0.0.1:%d", g.SitePort) }

// Base is the site's URL.
func (g *Gateway) Base() string { return "http://" + g.addr() }

// Output is everything Caddy printed so far, secrets masked.
func (g *Gateway) Output() string { return scrub(g.out.String()) }

// Start runs `caddy run` and waits (at most 20s) until the site port answers.
func (g *Gateway) Start(t *testing.T) {
	t.Helper()
	if g.proc != nil {
		t.Fatal("harness: Start on a running gateway")
	}
	g.starts++
	fmt.Fprintf(g.out, "\n==== e2e: start #%d ====\n", g.starts)
	cmd := exec.Command(caddyBin, "run", "--config", g.ConfigPath, "--adapter", "caddyfile")
	cmd.Env = g.env
	cmd.Dir = g.Dir
	cmd.Stdout = g.out
	cmd.Stderr = g.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	done := make(chan struct{})
	g.proc, g.done = cmd, done
	go func() {
		g.waitErr = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			g.proc = nil
			t.Fatalf("caddy exited during startup (%v); output:\n%s", g.waitErr, g.Output())
		default:
		}
		conn, err := net.DialTimeout("tcp", g.addr(), 250*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy's site port %s did not answer within 20s: %v", g.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGINT, waits up to 10s, then SIGKILLs. It asserts a clean exit.
func (g *Gateway) Stop(t *testing.T) {
	t.Helper()
	if g.proc == nil {
		return
	}
	g.client.CloseIdleConnections()
	proc, done := g.proc, g.done
	g.proc = nil
	fmt.Fprintf(g.out, "\n==== e2e: stopping (SIGINT) ====\n")
	if err := proc.Process.Signal(os.Interrupt); err != nil {
		t.Errorf("SIGINT to caddy: %v", err)
	}
	select {
	case <-done:
		if g.waitErr != nil {
			t.Errorf("caddy exited with %v after SIGINT, want a clean exit (status 0)", g.waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("caddy did not exit within 10s of SIGINT; sending SIGKILL")
		_ = proc.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("caddy did not exit within 5s of SIGKILL")
		}
	}
}

// Restart stops and starts again on the same store and ports.
func (g *Gateway) Restart(t *testing.T) {
	t.Helper()
	g.Stop(t)
	g.Start(t)
}

// ---------------------------------------------------------------------------
// The CLI: `caddy authgate ...` and `caddy reload`.

// Run runs the binary with args (bounded to 30s) and returns its output.
func (g *Gateway) Run(stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, caddyBin, args...)
	cmd.Env = g.env
	cmd.Dir = g.Dir
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after 30s: %w", err)
	}
	return o.String(), e.String(), err
}

// CLI runs `caddy authgate <args> --db <db>` and fails t on error. The
// first command on a new gateway makes its store, as an operator's first
// `--db <path> --create` does.
func (g *Gateway) CLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	full := append([]string{"authgate"}, args...)
	full = append(full, "--db", g.DB)
	if _, err := os.Stat(g.DB); os.IsNotExist(err) {
		full = append(full, "--create")
	}
	out, errOut, err := g.Run(stdin, full...)
	if err != nil {
		t.Fatalf("caddy %s: %v\nstdout: %s\nstderr: %s", strings.Join(full[:3], " "), err, scrub(out), scrub(errOut))
	}
	return out
}

// LiveCLI runs `caddy authgate <args> --address <admin endpoint>` against
// the running server and fails t on error.
func (g *Gateway) LiveCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	full := append([]string{"authgate"}, args...)
	full = append(full, "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort))
	out, errOut, err := g.Run(stdin, full...)
	if err != nil {
		t.Fatalf("caddy %s (live): %v\nstdout: %s\nstderr: %s", strings.Join(full[:3], " "), err, scrub(out), scrub(errOut))
	}
	return out
}

var addedUserRE = regexp.MustCompile(`added user (\S+) \(([^)]+)\)`)

// AddUser creates a user with the CLI (password on stdin) and returns the
// user ID the CLI reported.
func (g *Gateway) AddUser(t *testing.T, name, password, roles, email string) string {
	t.Helper()
	secret(password)
	out := g.CLI(t, password+"\n", "user", "add", name, "--password-stdin", "--roles", roles, "--email", email)
	m := addedUserRE.FindStringSubmatch(out)
	if m == nil || m[1] != name {
		t.Fatalf("user add %s: output %q does not say `added user %s (<id>)`", name, scrub(out), name)
	}
	return m[2]
}

// CreatedKey is the --json output of `key create`.
type CreatedKey struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Owner       string `json:"owner"`
	Permissions string `json:"permissions"`
}

// CreateKey creates an API key with the CLI.
func (g *Gateway) CreateKey(t *testing.T, user, name, perms string) CreatedKey {
	t.Helper()
	out := g.CLI(t, "", "key", "create", "--user", user, "--name", name, "--permissions", perms, "--json")
	var k CreatedKey
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		// Do not print out: it holds the key.
		t.Fatalf("key create --json: output (%d bytes) is not JSON: %v", len(out), err)
	}
	secret(k.Key)
	if k.ID == "" || k.Key == "" {
		t.Fatalf("key create --json: want non-empty \"id\" and \"key\", got id %q, key %s", k.ID, redact(k.Key))
	}
	if k.Permissions != perms {
		t.Errorf("key create: permissions = %q, want %q", k.Permissions, perms)
	}
	return k
}

// ---------------------------------------------------------------------------
// HTTP.

// Resp is a response, read in full.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Resp) String() string {
	return fmt.Sprintf("%d %s", r.Status, scrub(string(r.Body)))
}

// Obj decodes a JSON object body.
func (r Resp) Obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil || m == nil {
		t.Fatalf("body is not a JSON object (%v): %q", err, scrub(string(r.Body)))
	}
	return m
}

// H is a header set written as given: keys keep their case (so
// non-canonical and `_` spellings reach the server), and a key may repeat.
type H [][2]string

// Do sends a request through the gateway.
func (g *Gateway) Do(t *testing.T, method, path string, body io.Reader, hdr H) Resp {
	t.Helper()
	req, err := http.NewRequest(method, g.Base()+path, body)
	if err != nil {
		t.Fatalf("building %s %s: %v", method, path, err)
	}
	for _, kv := range hdr {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	res, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, scrub(err.Error()))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return Resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// TryDo is Do for a request that may fail (a gateway being killed, a lost
// cluster): a transport error is returned, not fatal.
func (g *Gateway) TryDo(method, path string, body io.Reader, hdr H) (Resp, error) {
	req, err := http.NewRequest(method, g.Base()+path, body)
	if err != nil {
		return Resp{}, err
	}
	for _, kv := range hdr {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	res, err := g.client.Do(req)
	if err != nil {
		return Resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return Resp{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// Raw sends a GET with a request-target written byte for byte (no client
// cleaning of //, .. or %2f) over a fresh TCP connection.
func (g *Gateway) Raw(t *testing.T, target string, hdr H) Resp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", g.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, g.addr())
	for _, kv := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("raw write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw GET %s: reading response: %v", target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return Resp{Status: res.StatusCode, Header: res.Header, Body: body}
}

func bearer(tok string) H { return H{{"Authorization", "Bearer " + tok}} }
func apiKey(key string) H { return H{{"x-api-key", key}} }

// Pair is a token body of the plentymarkets dialect.
type Pair struct{ Access, Refresh string }

// checkTokenBody asserts the token body of API.md section 4 and returns the pair.
func checkTokenBody(t *testing.T, what string, r Resp) Pair {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200; body %s", what, r.Status, scrub(string(r.Body)))
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want no-store", what, cc)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	m := r.Obj(t)
	str := func(k string) string {
		s, ok := m[k].(string)
		if !ok {
			t.Errorf("%s: %q is %T (%v), want a string", what, k, m[k], scrub(fmt.Sprint(m[k])))
		}
		return s
	}
	num := func(k string) float64 {
		n, ok := m[k].(float64)
		if !ok {
			t.Errorf("%s: %q is %T, want a number", what, k, m[k])
		}
		return n
	}
	access, refresh := secret(str("access_token")), secret(str("refresh_token"))
	if tt := str("token_type"); tt != "Bearer" {
		t.Errorf("%s: token_type = %q, want Bearer", what, tt)
	}
	if tt := str("tokenType"); tt != "Bearer" {
		t.Errorf("%s: tokenType = %q, want Bearer", what, tt)
	}
	if access == "" || refresh == "" {
		t.Fatalf("%s: empty access_token (%d chars) or refresh_token (%d chars)", what, len(access), len(refresh))
	}
	if access == refresh {
		t.Errorf("%s: access_token equals refresh_token", what)
	}
	if c := str("accessToken"); c != access {
		t.Errorf("%s: accessToken (%s) != access_token (%s)", what, redact(c), redact(access))
	}
	if c := str("refreshToken"); c != refresh {
		t.Errorf("%s: refreshToken (%s) != refresh_token (%s)", what, redact(c), redact(refresh))
	}
	if e := num("expires_in"); e != 86400 {
		t.Errorf("%s: expires_in = %v, want 86400", what, e)
	}
	if e := num("expiresIn"); e != 86400 {
		t.Errorf("%s: expiresIn = %v, want 86400", what, e)
	}
	if n := strings.Count(access, "."); n != 2 {
		t.Errorf("%s: access_token has %d dots, want a JWS compact JWT (2)", what, n)
	}
	return Pair{Access: access, Refresh: refresh}
}

func jsonBody(t *testing.T, v any) (io.Reader, H) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b), H{{"Content-Type", "application/json"}}
}

// Login logs in with a JSON body and returns the pair.
func (g *Gateway) Login(t *testing.T, user, password string) Pair {
	t.Helper()
	body, h := jsonBody(t, map[string]string{"username": user, "password": password})
	return checkTokenBody(t, "login "+user, g.Do(t, "POST", "/rest/login", body, h))
}

// Refresh spends a refresh token.
func (g *Gateway) Refresh(t *testing.T, refresh string) Resp {
	t.Helper()
	body, h := jsonBody(t, map[string]string{"refresh_token": refresh})
	return g.Do(t, "POST", "/rest/login/refresh", body, h)
}

// ---------------------------------------------------------------------------
// Assertions.

const (
	challengeNoCred  = `Bearer realm="authgate"`
	challengeInvalid = `Bearer realm="authgate", error="invalid_token"`
)

// wantError asserts a refusal: status, error code and (if non-empty) the
// exact WWW-Authenticate challenge.
func wantError(t *testing.T, what string, r Resp, status int, code, challenge string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.Status, status, scrub(string(r.Body)))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Errorf("%s: body is not JSON (%v): %q", what, err, scrub(string(r.Body)))
		return
	}
	if m["error"] != code {
		t.Errorf("%s: error = %v, want %q; body %s", what, m["error"], code, scrub(string(r.Body)))
	}
	d, ok := m["error_description"].(string)
	if !ok || d == "" {
		t.Errorf("%s: error_description missing or empty; body %s", what, scrub(string(r.Body)))
	}
	// The plentymarkets login routes add message, the same text (API.md section 4).
	if msg, ok := m["message"]; ok && msg != d {
		t.Errorf("%s: message %v differs from error_description %q", what, msg, d)
	}
	wantChallenge(t, what, r, challenge)
}

// wantPlentyError asserts a refusal in the plentymarkets error-object shape
// (API.md section 4: proxied traffic below the prefix and the dialect's
// Bearer routes): {"error":{"code":<status>,"message":"...","reason":reason}},
// with section 3's status and (if non-empty) exact WWW-Authenticate.
func wantPlentyError(t *testing.T, what string, r Resp, status int, reason, challenge string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.Status, status, scrub(string(r.Body)))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	var body struct {
		Error *struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
			Reason  *string `json:"reason"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == nil || body.Error.Code == nil || body.Error.Message == nil || body.Error.Reason == nil {
		t.Errorf("%s: want {\"error\":{\"code\",\"message\",\"reason\"}} (%v); body %s", what, err, scrub(string(r.Body)))
		return
	}
	e := body.Error
	if *e.Code != status || *e.Message == "" || *e.Reason != reason {
		t.Errorf("%s: error code %d, reason %q, message %q; want code %d, reason %q and a message", what, *e.Code, *e.Reason, scrub(*e.Message), status, reason)
	}
	wantChallenge(t, what, r, challenge)
}

// wantChallenge asserts the exact WWW-Authenticate challenge (if non-empty)
// and that the body echoes no secret.
func wantChallenge(t *testing.T, what string, r Resp, challenge string) {
	t.Helper()
	if challenge != "" {
		if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != challenge {
			t.Errorf("%s: WWW-Authenticate = %q, want exactly [%s]", what, got, challenge)
		}
	}
	for _, sec := range allSecrets() {
		if strings.Contains(string(r.Body), sec) {
			t.Errorf("%s: SECURITY: the error body echoes a secret (%s)", what, redact(sec))
		}
	}
}

// wantNothingUpstream asserts the upstream received nothing since mark.
func wantNothingUpstream(t *testing.T, what string, up *Upstream, mark int) {
	t.Helper()
	if got := up.Since(mark); len(got) != 0 {
		paths := []string{}
		for _, s := range got {
			paths = append(paths, s.Method+" "+s.URI)
		}
		t.Errorf("%s: SECURITY: the upstream was reached (%d requests: %v), want none for a refused request", what, len(got), paths)
	}
}

// wantOneUpstream asserts exactly one request reached the upstream since
// mark and returns it.
func wantOneUpstream(t *testing.T, what string, up *Upstream, mark int) Seen {
	t.Helper()
	got := up.Since(mark)
	if len(got) != 1 {
		t.Fatalf("%s: the upstream received %d requests, want exactly 1", what, len(got))
	}
	return got[0]
}

// foldName lowers a header name and reads '_' as '-'.
func foldName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// identityOf returns the upstream request's headers in the identity
// namespace (x-auth-*, any case, '_' variants), by folded name.
func identityOf(s Seen) map[string][]string {
	out := map[string][]string{}
	for name, vals := range s.Header {
		if f := foldName(name); strings.HasPrefix(f, "x-auth-") {
			out[f] = append(out[f], vals...)
		}
	}
	return out
}

// wantIdentity asserts the identity headers the upstream saw are exactly want.
func wantIdentity(t *testing.T, what string, s Seen, want map[string]string) {
	t.Helper()
	got := identityOf(s)
	var problems []string
	for k, v := range want {
		if gv, ok := got[k]; !ok {
			problems = append(problems, fmt.Sprintf("missing %s (want %q)", k, v))
		} else if len(gv) != 1 || gv[0] != v {
			problems = append(problems, fmt.Sprintf("%s = %q, want [%q]", k, gv, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected %s = %q", k, v))
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("%s: upstream identity header: %s", what, p)
	}
}

// wantNoSpoof asserts no header the upstream saw carries a spoofed value,
// and that no credential header was forwarded.
func wantNoSpoof(t *testing.T, what string, s Seen, spoofed ...string) {
	t.Helper()
	for name, vals := range s.Header {
		for _, v := range vals {
			for _, sp := range spoofed {
				if strings.Contains(strings.ToLower(v), strings.ToLower(sp)) {
					t.Errorf("%s: SECURITY: upstream header %s: %q carries the spoofed value %q", what, name, v, sp)
				}
			}
		}
		switch foldName(name) {
		case "authorization", "x-api-key":
			t.Errorf("%s: SECURITY: the credential header %s was forwarded upstream (%s)", what, name, scrub(strings.Join(vals, ",")))
		}
	}
}

func errorsIsExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

func formBody(v url.Values) (io.Reader, H) {
	return strings.NewReader(v.Encode()), H{{"Content-Type", "application/x-www-form-urlencoded"}}
}

func base64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
