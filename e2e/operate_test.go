package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What an operator sees of a running gateway (API.md section 10): the
// metrics beside Caddy's own, the audit trail, the health check, and that
// `caddy validate` leaves a live server's store alone.

// TestValidateOnALiveServer: `caddy validate && caddy reload` is how a
// config change is rolled out. Validate neither creates a store (on a
// fresh machine, under sudo, it would leave a file the service cannot
// open) nor opens one a live server holds (bbolt's lock made it fail).
func TestValidateOnALiveServer(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)

	out, errOut, err := g.Run("", "validate", "--config", g.ConfigPath)
	if err != nil || !strings.Contains(out+errOut, "Valid configuration") {
		t.Fatalf("validate before any store exists: %v\n%s\n%s", err, out, errOut)
	}
	if _, err := os.Stat(g.DB); !os.IsNotExist(err) {
		t.Fatalf("validate made the store (stat: %v): it must not create one", err)
	}

	g.AddUser(t, "vera", "vera-pass-1234", "", "")
	g.Start(t)
	pair := g.Login(t, "vera", "vera-pass-1234")

	out, errOut, err = g.Run("", "validate", "--config", g.ConfigPath)
	if err != nil || !strings.Contains(out+errOut, "Valid configuration") {
		t.Fatalf("validate on a live server: %v\n%s\n%s", err, scrub(out), scrub(errOut))
	}
	if strings.Contains(out+errOut, "locked") {
		t.Errorf("validate on a live server mentions a lock:\n%s", scrub(out+errOut))
	}
	if _, errOut, err := g.Run("", "reload", "--config", g.ConfigPath, "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort), "--force"); err != nil {
		t.Fatalf("reload after validate: %v\n%s", err, scrub(errOut))
	}
	if r := g.Do(t, "GET", "/app", nil, bearer(pair.Access)); r.Status != http.StatusOK {
		t.Errorf("the token after validate and reload: %d %s", r.Status, r)
	}
}

// scrape reads the admin endpoint's /metrics into sample → value, where a
// sample is written as Prometheus prints it: name{label="value",...}.
func scrape(t *testing.T, g *Gateway) map[string]float64 {
	t.Helper()
	res, err := g.client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", g.AdminPort))
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: status %d", res.StatusCode)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

var labelRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// TestMetricsScrape drives each kind of request and login through a
// running gateway and reads every authgate series back from Caddy's
// /metrics, beside Caddy's own; no label holds a user, key or path.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	g.HandlerExtra = "\t\thealth /authgate/health"
	g.WriteConfig("Caddyfile", "")
	g.AddUser(t, "mira", "mira-pass-1234", "", "")
	g.AddUser(t, "lockme", "lockme-pass-1234", "", "")
	key := g.CreateKey(t, "mira", "metrics", "read")
	g.Start(t)

	// The health check, with no credential.
	r := g.Do(t, "GET", "/authgate/health", nil, nil)
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"status":"ok","store":"bbolt"}` {
		t.Errorf("health: %d %s", r.Status, r)
	}
	if r := g.Do(t, "POST", "/authgate/health", nil, nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST health: %d, want 405", r.Status)
	}

	pair := g.Login(t, "mira", "mira-pass-1234")
	if r := g.Refresh(t, pair.Refresh); r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r)
	}
	if r := g.Refresh(t, pair.Refresh); r.Status != http.StatusUnauthorized {
		t.Fatalf("replayed refresh: %d, want 401", r.Status)
	}
	for range 5 {
		body, h := jsonBody(t, map[string]string{"username": "lockme", "password": "not-the-password"})
		g.Do(t, "POST", "/rest/login", body, h)
	}
	body, h := jsonBody(t, map[string]string{"username": "nobody-here", "password": "whatever-1234"})
	if r := g.Do(t, "POST", "/v1/auth/login", body, h); r.Status != http.StatusUnauthorized {
		t.Errorf("babel login of an unknown user: %d", r.Status)
	}
	g.Do(t, "GET", "/app", nil, nil)
	g.Do(t, "GET", "/app", nil, bearer("eyJhbGciOiJFZERTQSJ9.e30.AAAA"))
	g.Do(t, "GET", "/health", nil, nil)

	// Key requests until the cache has served one: ristretto adds the
	// first decision asynchronously.
	var m map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := g.Do(t, "GET", "/app", nil, apiKey(key.Key)); r.Status != http.StatusOK {
			t.Fatalf("GET with the key: %d %s", r.Status, r)
		}
		m = scrape(t, g)
		if m[`authgate_decision_cache_total{result="hit"}`] >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	atLeast := map[string]float64{
		`authgate_requests_total{method="api_key",result="authenticated"}`:       2,
		`authgate_requests_total{method="none",result="unauthorized"}`:           1,
		`authgate_requests_total{method="bearer",result="invalid_token"}`:        1,
		`authgate_requests_total{method="none",result="allowed"}`:                1,
		`authgate_logins_total{dialect="plentymarkets",result="ok"}`:             1,
		`authgate_logins_total{dialect="plentymarkets",result="wrong_password"}`: 5,
		`authgate_logins_total{dialect="babel",result="unknown_user"}`:           1,
		`authgate_lockouts_total`:                          1,
		`authgate_refresh_reuse_total`:                     1,
		`authgate_decision_cache_total{result="hit"}`:      1,
		`authgate_decision_cache_total{result="miss"}`:     1,
		`authgate_store_seconds_count{op="UserByLogin"}`:   7,
		`authgate_store_seconds_count{op="RotateRefresh"}`: 2,
	}
	for sample, min := range atLeast {
		if got, ok := m[sample]; !ok || got < min {
			t.Errorf("%s = %v (present: %v), want at least %v", sample, got, ok, min)
		}
	}
	for _, sample := range []string{`authgate_hash_waiting`, `caddy_config_last_reload_successful`} {
		if _, ok := m[sample]; !ok {
			t.Errorf("%s is not served", sample)
		}
	}
	// Nothing a client chose or a credential names is a label value.
	forbidden := []string{"mira", "lockme", "nobody-here", key.ID, "/app", "/rest", "/health"}
	for sample := range m {
		if !strings.HasPrefix(sample, "authgate_") {
			continue
		}
		for _, lv := range labelRE.FindAllStringSubmatch(sample, -1) {
			for _, f := range forbidden {
				if strings.Contains(lv[2], f) {
					t.Errorf("SECURITY: metric label %s=%q holds %q", lv[1], lv[2], f)
				}
			}
		}
	}
}

// auditEntries reads the audit log's JSON lines.
func auditEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the audit log: %v", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, scrub(line))
		}
		entries = append(entries, e)
	}
	return entries
}

// find returns the entries whose fields have all the given values.
func find(entries []map[string]any, want map[string]string) []map[string]any {
	var out []map[string]any
next:
	for _, e := range entries {
		for k, v := range want {
			if s, _ := e[k].(string); s != v {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// TestAuditTrail routes authgate.audit to a file with Caddy's own `log`
// option and checks each kind of event by its content: who, which
// session or key, from where, which request; and that no secret the test
// used appears in it.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	auditPath := filepath.Join(g.Dir, "audit.log")
	g.GlobalExtra = fmt.Sprintf("\tlog audit {\n\t\toutput file %q\n\t\tformat json\n\t\tinclude authgate.audit\n\t}", auditPath)
	g.WriteConfig("Caddyfile", "")
	aliceID := g.AddUser(t, "alice", "alice-pass-1234", "", "")
	leeID := g.AddUser(t, "lee", "lee-pass-1234", "", "")
	g.Start(t)

	first := g.Login(t, "alice", "alice-pass-1234")
	wrong, h := jsonBody(t, map[string]string{"username": "alice", "password": secret("alice-wrong-9876")})
	g.Do(t, "POST", "/rest/login", wrong, h)
	nobody, h := jsonBody(t, map[string]string{"username": "ghost-login-4711", "password": secret("ghost-pass-4711")})
	g.Do(t, "POST", "/v1/auth/login", nobody, h)
	for range 5 {
		body, h := jsonBody(t, map[string]string{"username": "lee", "password": secret("lee-wrong-5555")})
		g.Do(t, "POST", "/rest/login", body, h)
	}
	if r := g.Refresh(t, first.Refresh); r.Status != http.StatusOK {
		t.Fatalf("refresh: %d", r.Status)
	}
	g.Refresh(t, first.Refresh) // replayed: revokes the session
	second := g.Login(t, "alice", "alice-pass-1234")
	if r := g.Do(t, "POST", "/rest/logout", nil, bearer(second.Access)); r.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", r.Status, r)
	}
	third := g.Login(t, "alice", "alice-pass-1234")

	// Administration through the admin endpoint.
	g.LiveCLI(t, "carl-pass-1234\n", "user", "add", "carl", "--password-stdin")
	secret("carl-pass-1234")
	var created CreatedKey
	if err := json.Unmarshal([]byte(g.LiveCLI(t, "", "key", "create", "--user", "carl", "--name", "k", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	secret(created.Key)
	g.LiveCLI(t, "", "key", "revoke", created.ID)
	sessions := g.LiveCLI(t, "", "session", "list", "--user", "alice")
	sid := regexp.MustCompile(`ses_\w+`).FindAllString(sessions, -1)
	if len(sid) == 0 {
		t.Fatalf("no session of alice listed:\n%s", sessions)
	}
	g.LiveCLI(t, "", "session", "revoke", sid[len(sid)-1])
	g.LiveCLI(t, "", "user", "unlock", "lee")
	g.LiveCLI(t, "carl-pass-5678\n", "user", "passwd", "carl", "--password-stdin")
	secret("carl-pass-5678")
	g.LiveCLI(t, "", "signing-key", "rotate")
	_ = third

	entries := auditEntries(t, auditPath)
	for _, e := range entries {
		if e["logger"] != "authgate.audit" {
			t.Errorf("an entry of logger %v in the audit log", e["logger"])
		}
	}
	// Each request-made event names the client and the request.
	one := func(what string, want map[string]string) map[string]any {
		t.Helper()
		got := find(entries, want)
		if len(got) == 0 {
			t.Errorf("no audit entry for %s (%v) among %d entries", what, want, len(entries))
			return map[string]any{}
		}
		return got[0]
	}
	fromClient := func(what string, e map[string]any) {
		t.Helper()
		if e["client_ip"] != "127.0.0.1" {
			t.Errorf("%s: client_ip = %v, want 127.0.0.1", what, e["client_ip"])
		}
		if id, _ := e["request_id"].(string); len(id) < 16 {
			t.Errorf("%s: request_id = %v, want Caddy's request uuid", what, e["request_id"])
		}
	}
	login := one("alice's login", map[string]string{"event": "login", "username": "alice", "user_id": aliceID, "dialect": "plentymarkets"})
	fromClient("login", login)
	if s, _ := login["session_id"].(string); !strings.HasPrefix(s, "ses_") {
		t.Errorf("login: session_id = %v", login["session_id"])
	}
	fromClient("wrong password", one("alice's wrong password", map[string]string{"event": "login_failed", "reason": "wrong_password", "username": "alice", "user_id": aliceID}))
	ghost := one("an unknown user", map[string]string{"event": "login_failed", "reason": "unknown_user", "dialect": "babel"})
	if _, named := ghost["username"]; named {
		t.Errorf("an unknown login's entry names a user: %v", ghost["username"])
	}
	locked := one("lee's lock", map[string]string{"event": "locked", "username": "lee", "user_id": leeID})
	if _, ok := locked["locked_until"].(string); !ok {
		t.Errorf("locked: locked_until = %v", locked["locked_until"])
	}
	fromClient("locked", locked)
	reuse := one("the replayed refresh token", map[string]string{"event": "refresh_reused", "user_id": aliceID, "username": "alice"})
	if reuse["session_id"] != login["session_id"] {
		t.Errorf("refresh_reused names session %v, want the first login's %v", reuse["session_id"], login["session_id"])
	}
	fromClient("refresh reuse", reuse)
	fromClient("logout", one("the logout", map[string]string{"event": "logout", "user_id": aliceID}))

	for _, action := range []string{
		"POST /authgate/users", "POST /authgate/keys", "POST /authgate/keys/{id}/revoke",
		"POST /authgate/sessions/{id}/revoke", "POST /authgate/users/{user}/unlock",
		"PUT /authgate/users/{user}/password", "POST /authgate/signing-keys/rotate",
	} {
		e := one(action, map[string]string{"event": "admin", "action": action})
		if addr, _ := e["admin_addr"].(string); !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s: admin_addr = %v, want the admin client's address", action, e["admin_addr"])
		}
	}
	one("the key revocation's target", map[string]string{"event": "admin", "action": "POST /authgate/keys/{id}/revoke", "target": created.ID})
	one("the unlock's user", map[string]string{"event": "admin", "action": "POST /authgate/users/{user}/unlock", "subject_id": leeID, "username": "lee"})

	// No secret, and no unknown login as typed.
	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(allSecrets(), first.Access, first.Refresh, second.Access, third.Access, "ghost-login-4711") {
		if strings.Contains(string(raw), s) {
			t.Errorf("SECURITY: the audit log contains a secret or a typed login (%s)", redact(s))
		}
	}
}
