package e2e

import (
	"net/http"
	"strings"
	"testing"
)

const challengeScope = `Bearer realm="authgate", error="insufficient_scope"`

// TestRequireWalk runs the built binary with API.md section 2's two rules
// and walks them with each kind of credential, method overrides and path
// tricks; then a configuration whose allow and require overlap must not
// load.
func TestRequireWalk(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	g.HandlerExtra = "\t\trequire /admin/* roles admin\n\t\trequire /reports/* roles admin auditor methods GET HEAD\n"
	g.ConfigPath = g.WriteConfig("Caddyfile.require", "")

	pw := map[string]string{}
	for _, u := range []struct{ name, roles string }{{"ada", "admin"}, {"aud", "auditor"}, {"dev", "dev"}} {
		pw[u.name] = secret(u.name + ": a long enough password")
		g.AddUser(t, u.name, pw[u.name], u.roles, u.name+"@example.com")
	}
	adaRead := g.CreateKey(t, "ada", "ada-read", "read")
	devAll := g.CreateKey(t, "dev", "dev-all", "read,write,delete,create")
	audAll := g.CreateKey(t, "aud", "aud-all", "read,write,delete,create")
	g.Start(t)
	ada := bearer(secret(g.Login(t, "ada", pw["ada"]).Access))
	aud := bearer(secret(g.Login(t, "aud", pw["aud"]).Access))
	dev := bearer(secret(g.Login(t, "dev", pw["dev"]).Access))

	send := func(method, path string, hdr H, body string) Resp {
		t.Helper()
		if body == "" {
			return g.Do(t, method, path, nil, hdr)
		}
		return g.Do(t, method, path, strings.NewReader(body), hdr)
	}
	pass := func(what, method, path string, hdr H, body string) {
		t.Helper()
		mark := up.Mark()
		if r := send(method, path, hdr, body); r.Status != http.StatusOK {
			t.Errorf("%s: %s %s: %s, want 200", what, method, path, r)
			return
		}
		if s := wantOneUpstream(t, what, up, mark); s.Method != method || string(s.Body) != body {
			t.Errorf("%s: upstream got %s with body %q", what, s.Method, s.Body)
		}
	}
	refuse := func(what, method, path string, hdr H, body string, status int, code string) {
		t.Helper()
		mark := up.Mark()
		challenge := challengeScope
		if status == http.StatusUnauthorized {
			challenge = challengeNoCred
		}
		wantError(t, what, send(method, path, hdr, body), status, code, challenge)
		wantNothingUpstream(t, what, up, mark)
	}
	with := func(h H, more ...[2]string) H { return append(append(H{}, h...), more...) }

	// No credential is still a 401 under a rule; allowed paths still pass.
	refuse("no credential", "GET", "/admin/x", nil, "", 401, "unauthorized")
	refuse("no credential, reports", "GET", "/reports/q1", nil, "", 401, "unauthorized")
	pass("allowed path", "GET", "/public/x", nil, "")

	// Roles.
	pass("admin", "GET", "/admin/x", ada, "")
	pass("admin POST", "POST", "/admin/x", ada, "a=1")
	refuse("auditor on admin", "GET", "/admin/x", aud, "", 403, "insufficient_scope")
	refuse("dev on admin", "GET", "/admin/x", dev, "", 403, "insufficient_scope")
	refuse("dev on reports", "GET", "/reports/q1", dev, "", 403, "insufficient_scope")
	pass("dev elsewhere", "DELETE", "/app/x", dev, "")

	// Methods, and the methods an override names.
	pass("auditor GET reports", "GET", "/reports/q1", aud, "")
	pass("admin HEAD reports", "HEAD", "/reports/q1", ada, "")
	refuse("admin POST reports", "POST", "/reports/q1", ada, "x", 403, "insufficient_scope")
	refuse("auditor DELETE reports", "DELETE", "/reports/q1", aud, "", 403, "insufficient_scope")
	refuse("override header", "GET", "/reports/q1", with(aud, [2]string{"X-HTTP-Method-Override", "DELETE"}), "", 403, "insufficient_scope")
	refuse("_method in the query", "GET", "/reports/q1?_method=DELETE", aud, "", 403, "insufficient_scope")
	refuse("_method in a form", "GET", "/reports/q1", with(aud, [2]string{"Content-Type", "application/x-www-form-urlencoded"}), "a=1&_method=PUT", 403, "insufficient_scope")
	refuse("_method in JSON", "GET", "/reports/q1", with(aud, [2]string{"Content-Type", "application/json"}), `{"_method":"PATCH"}`, 403, "insufficient_scope")
	pass("_method HEAD in JSON", "GET", "/reports/q1", with(aud, [2]string{"Content-Type", "application/json"}), `{"_method":"HEAD","q":1}`)

	// API keys: the owner's roles and the key's own permissions together.
	pass("admin's read key", "GET", "/admin/x", apiKey(adaRead.Key), "")
	refuse("admin's read key POST", "POST", "/admin/x", apiKey(adaRead.Key), "a=1", 403, "insufficient_scope")
	refuse("dev's all key on admin", "GET", "/admin/x", apiKey(devAll.Key), "", 403, "insufficient_scope")
	pass("auditor's all key on reports", "GET", "/reports/q1", apiKey(audAll.Key), "")
	refuse("auditor's all key DELETE reports", "DELETE", "/reports/q1", apiKey(audAll.Key), "", 403, "insufficient_scope")
	refuse("auditor's all key _method", "GET", "/reports/q1?_method=DELETE", apiKey(audAll.Key), "", 403, "insufficient_scope")

	// Path tricks, sent byte for byte: none escapes the admin rule, and
	// a path that is not canonical is judged by both rules.
	for _, target := range []string{
		"/admin%2F..", "/ADMIN/x", "/admin;x", "//admin/x", "/public/../admin/x", "/admin/./x", "/%61dmin/x",
		"/Admin/x", "/admin/%2e%2e/admin/x", "/admin%2fx",
	} {
		mark := up.Mark()
		r := g.Raw(t, target, dev)
		wantError(t, "dev GET "+target, r, 403, "insufficient_scope", challengeScope)
		wantNothingUpstream(t, "dev GET "+target, up, mark)
		if r := g.Raw(t, target, ada); r.Status != http.StatusOK {
			t.Errorf("admin GET %s: %s, want 200", target, r)
		}
	}
	// The auditor meets the admin rule on a path that is not canonical,
	// even below /reports.
	mark := up.Mark()
	wantError(t, "auditor /reports;x", g.Raw(t, "/reports/q1;x", aud), 403, "insufficient_scope", challengeScope)
	wantNothingUpstream(t, "auditor /reports;x", up, mark)

	// allow and require may not overlap: the configuration is refused.
	g.HandlerExtra = "\t\trequire /public/admin/* roles admin\n"
	bad := g.WriteConfig("Caddyfile.overlap", "")
	_, stderr, err := g.Run("", "validate", "--config", bad, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(stderr, "/public/admin/*") || !strings.Contains(stderr, "can match the same path") {
		t.Errorf("validate of an overlapping allow and require: err %v, stderr %s", err, scrub(stderr))
	}
	g.HandlerExtra = "\t\trequire /admin/*\n"
	bad = g.WriteConfig("Caddyfile.nocondition", "")
	if _, stderr, err := g.Run("", "validate", "--config", bad, "--adapter", "caddyfile"); err == nil || !strings.Contains(stderr, "give roles, methods or both") {
		t.Errorf("validate of a rule without a condition: err %v, stderr %s", err, scrub(stderr))
	}
}
