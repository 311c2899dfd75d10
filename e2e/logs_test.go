package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped Caddyfile.example keeps every secret a client sends out of
// Caddy's logs. Caddy logs a copy of each request's headers and its URI,
// taken before any handler runs, and redacts only Cookie, Authorization and
// Proxy-Authorization: an x-api-key would be written in clear, to the
// access log and to the error log whenever a request fails (here: the
// upstream is down), and so would a password that a real plentymarkets
// client puts in the query string. The example's filter snippet removes
// both. This test runs the example itself (only its addresses and store
// path are changed), so deleting a line of its filter fails it; the harness
// also fails it if any registered secret appears in Caddy's output.
func TestLogFilterKeepsKeysOutOfLogs(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "logs: a long enough password"
	const wrongPW = "logs: the wrong password typed"
	const pin = "48151623"
	secret(wrongPW)
	secret(pin)
	g.AddUser(t, "lou", pw, "dev", "lou@example.com")
	g.CLI(t, pin+"\n", "user", "set-pin", "lou", "--pin-stdin")
	key := g.CreateKey(t, "lou", "k", "read")
	leaked := g.CreateKey(t, "lou", "leaked", "read")
	quick := createClientKey(t, g, "lou", "read")
	garbage := secret("ag_thisIsNotAValidKeyButStillASecretOfTheClient00")
	dead := freePort(t) // nothing listens: every proxied request fails

	g.ConfigPath = exampleConfig(t, g, dead)
	g.Start(t)

	if r := g.Do(t, "GET", "/app/x", nil, apiKey(key.Key)); r.Status != 502 {
		t.Errorf("valid key, dead upstream: %s, want 502 (the error log path)", r)
	}
	if r := g.Do(t, "GET", "/app/x", nil, apiKey(garbage)); r.Status != 401 {
		t.Errorf("garbage key: %s, want 401", r)
	}

	// Credentials in the query string, as real clients send them.
	q := func(path string, kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return path + "?" + v.Encode()
	}
	if r := g.Do(t, "POST", q("/rest/login", "username", "lou", "password", wrongPW), nil, nil); r.Status != 401 {
		t.Errorf("query login, wrong password: %s", r)
	}
	r := g.Do(t, "POST", q("/rest/login", "username", "lou", "password", pw), nil, nil)
	tok := checkTokenBody(t, "query login", r)
	r = g.Do(t, "POST", q("/rest/login/refresh", "refresh_token", tok.Refresh), nil, nil)
	tok = checkTokenBody(t, "query refresh", r)
	r = g.Do(t, "POST", q("/rest/login/refresh", "refreshToken", tok.Refresh), nil, nil)
	tok = checkTokenBody(t, "query refresh (camelCase)", r)
	checkTokenBody(t, "query quick_login", g.Do(t, "POST", q("/rest/quick_login", "client_id", quick.ID, "client_secret", quick.ClientSecret), nil, nil))
	checkTokenBody(t, "query quick_login (camelCase)", g.Do(t, "POST", q("/rest/quick_login", "clientId", quick.ID, "clientSecret", quick.ClientSecret), nil, nil))
	if r := g.Do(t, "POST", q("/rest/check_pin", "pin", pin), nil, bearer(tok.Access)); r.Status != 200 {
		t.Errorf("query check_pin: %s", r)
	}
	if r := g.Do(t, "POST", q("/rest/check_password", "password", pw), nil, bearer(tok.Access)); r.Status != 200 {
		t.Errorf("query check_password: %s", r)
	}
	for _, name := range []string{"access_token", "accessToken", "token"} {
		if r := g.Do(t, "GET", q("/app/x", name, tok.Access), nil, nil); r.Status != 401 {
			t.Errorf("access token as ?%s: %s, want 401", name, r)
		}
	}
	for _, name := range []string{"api_key", "apiKey", "x-api-key"} {
		if r := g.Do(t, "GET", q("/app/x", name, key.Key), nil, nil); r.Status != 401 {
			t.Errorf("key as ?%s: %s, want 401", name, r)
		}
	}

	// The admin API logs each request's URI: an operator who pastes a
	// leaked key into `key revoke` must not log it there.
	if out := g.LiveCLI(t, "", "key", "revoke", leaked.Key); !strings.Contains(out, "revoked key "+leaked.ID) {
		t.Errorf("key revoke <key>: %q, want it to name %s", scrub(out), leaked.ID)
	}
	if r := g.Do(t, "GET", "/app/x", nil, apiKey(leaked.Key)); r.Status != 401 {
		t.Errorf("the key revoked by its own value still works: %s", r)
	}
	_, errOut, err := g.Run("", "authgate", "user", "show", key.Key, "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort))
	if err == nil || !strings.Contains(errOut, "refusing to send") {
		t.Errorf("user show <a key>: %v %q, want a refusal to put a secret in a URL", err, scrub(errOut))
	}

	// The requests were logged (so the filter, not silence, kept the
	// secrets out); the harness checks the secrets themselves at cleanup.
	out := g.Output()
	for _, want := range []string{"handled request", "User-Agent", "/rest/login?username=lou", "/rest/quick_login?client_id=" + quick.ID, "received request"} {
		if !strings.Contains(out, want) {
			t.Fatalf("Caddy's output has no %q: the example's logs did not record what this test checks\n%s", want, out)
		}
	}
	if strings.Contains(out, `"X-Api-Key"`) {
		t.Errorf("an X-Api-Key header field survived the filter")
	}
	for _, sec := range allSecrets() {
		if strings.Contains(g.out.String(), sec) {
			t.Errorf("SECURITY: a secret (%s) is in Caddy's logs", redact(sec))
		}
	}
}

// exampleConfig writes Caddyfile.example with its addresses and store path
// moved into the test's own (and the legacy app's address pointing at
// upstream): everything else, its log filter above all, as shipped.
func exampleConfig(t *testing.T, g *Gateway, upstream int) string {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(example)
	for _, sub := range [][2]string{
		{"admin localhost:2019", fmt.Sprintf("admin 127.0.0.1:%d", g.AdminPort)},
		{"db ./authgate-data/authgate.db", fmt.Sprintf("db %q", g.DB)},
		{"http://localhost:8080 {", fmt.Sprintf("http://127.0.0.1:%d {", g.SitePort)},
		{"reverse_proxy 127.0.0.1:8081", fmt.Sprintf("reverse_proxy 127.0.0.1:%d", upstream)},
		{"http://:8081 {", fmt.Sprintf("http://:%d {", freePort(t))},
	} {
		if !strings.Contains(cfg, sub[0]) {
			t.Fatalf("Caddyfile.example no longer has %q: update this test with it", sub[0])
		}
		cfg = strings.Replace(cfg, sub[0], sub[1], 1)
	}
	path := filepath.Join(g.Dir, "Caddyfile.example")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
