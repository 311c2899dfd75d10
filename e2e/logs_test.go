package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Caddy logs a copy of each request's headers taken before any handler
// runs, and redacts only Cookie, Authorization and Proxy-Authorization: an
// x-api-key would be written in clear to the access log, and to the error
// log whenever a request fails (here: the upstream is down). The filter
// encoder of the README's "Logs" section removes it. The harness fails the
// test if any registered secret appears in Caddy's output.
func TestLogFilterKeepsKeysOutOfLogs(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "logs: a long enough password"
	g.AddUser(t, "lou", pw, "dev", "lou@example.com")
	key := g.CreateKey(t, "lou", "k", "read")
	garbage := secret("ag_thisIsNotAValidKeyButStillASecretOfTheClient00")
	dead := freePort(t) // nothing listens: every proxied request fails

	filter := `format filter {
			wrap json
			request>headers>X-Api-Key delete
		}`
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	log {
		%s
	}
	authgate {
		db %q
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	log {
		output stderr
		%s
	}
	authgate {
		api plentymarkets /rest
	}
	reverse_proxy 127.0.0.1:%d
}
`, g.AdminPort, filter, g.DB, g.SitePort, filter, dead)
	g.ConfigPath = filepath.Join(g.Dir, "Caddyfile.logs")
	if err := os.WriteFile(g.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.Start(t)

	if r := g.Do(t, "GET", "/app/x", nil, apiKey(key.Key)); r.Status != 502 {
		t.Errorf("valid key, dead upstream: %s, want 502 (the error log path)", r)
	}
	if r := g.Do(t, "GET", "/app/x", nil, apiKey(garbage)); r.Status != 401 {
		t.Errorf("garbage key: %s, want 401", r)
	}
	tok := g.Login(t, "lou", pw)
	g.Do(t, "GET", "/app/x", nil, bearer(tok.Access))

	// The requests were logged (so the filter, not silence, kept the keys
	// out); the harness checks the secrets themselves at cleanup.
	out := g.Output()
	if !strings.Contains(out, `"msg":"handled request"`) || !strings.Contains(out, `"User-Agent"`) {
		t.Fatalf("no access log lines with request headers in Caddy's output:\n%s", out)
	}
	if strings.Contains(out, `"X-Api-Key"`) {
		t.Errorf("an X-Api-Key header field survived the filter")
	}
}
