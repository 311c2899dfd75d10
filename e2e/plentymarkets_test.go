package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// clientKey is the --json output of `key create --client-secret`.
type clientKey struct {
	ID           string `json:"id"`
	Key          string `json:"key"`
	ClientSecret string `json:"clientSecret"`
}

func createClientKey(t *testing.T, g *Gateway, user, perms string) clientKey {
	t.Helper()
	out := g.CLI(t, "", "key", "create", "--user", user, "--name", "quick", "--permissions", perms, "--client-secret", "--json")
	var k clientKey
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("key create --client-secret --json: output (%d bytes) is not JSON: %v", len(out), err)
	}
	secret(k.Key)
	secret(k.ClientSecret)
	if k.ID == "" || !strings.HasPrefix(k.ClientSecret, "agcs_") {
		t.Fatalf("key create --client-secret: id %q, client secret %s", k.ID, redact(k.ClientSecret))
	}
	return k
}

// TestPlentymarketsQuickLoginAndSecrets: quick_login and its token's limits,
// check_password and check_pin, and profile, PIN and settings set with the
// CLI on a stopped server, seen by clients after the start.
func TestPlentymarketsQuickLoginAndSecrets(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)

	const (
		doraPW  = "dora: the map is in the backpack"
		doraPIN = "20481024"
	)
	doraID := g.AddUser(t, "dora", doraPW, "explorer", "dora@example.com")
	ro := createClientKey(t, g, "dora", "read")
	other := createClientKey(t, g, "dora", "read") // its secret is well-formed but not ro's
	secret(doraPIN)
	g.CLI(t, doraPIN+"\n", "user", "set-pin", "dora", "--pin-stdin")
	g.CLI(t, "", "user", "set", "dora", "--first-name", "Dora", "--last-name", "Márquez", "--lang", "es", "--timezone", "America/Lima", "--city", "Lima")
	g.CLI(t, "", "user", "setting", "set", "dora", "theme", "jungle", "--category", "ui", "--read-only")
	var settings []map[string]any
	if err := json.Unmarshal([]byte(g.CLI(t, "", "user", "setting", "list", "dora", "--json")), &settings); err != nil {
		t.Fatal(err)
	}
	if len(settings) != 1 || settings[0]["name"] != "theme" || settings[0]["value"] != "jungle" || settings[0]["readOnly"] != true || settings[0]["userId"] != doraID {
		t.Errorf("user setting list --json: %v", settings)
	}
	g.Start(t)

	quick := func(id, sec string) Resp {
		body, h := formBody(url.Values{"client_id": {id}, "client_secret": {sec}})
		return g.Do(t, "POST", "/rest/quick_login", body, h)
	}

	t.Run("profile_from_the_cli", func(t *testing.T) {
		r := g.Do(t, "GET", "/rest/user", nil, apiKey(ro.Key))
		if r.Status != 200 {
			t.Fatalf("GET /rest/user: %s", r)
		}
		m := r.Obj(t)
		if m["realName"] != "Dora Márquez" || m["lang"] != "es" || m["timezone"] != "America/Lima" || m["email"] != "dora@example.com" {
			t.Errorf("GET /rest/user: %s", r)
		}
	})

	t.Run("quick_login_token_is_limited_to_the_key", func(t *testing.T) {
		pair := checkTokenBody(t, "quick_login", quick(ro.ID, ro.ClientSecret))
		mark := up.Mark()
		if r := g.Do(t, "GET", "/app/q", nil, bearer(pair.Access)); r.Status != 200 {
			t.Fatalf("GET with the quick_login token: %s", r)
		}
		wantIdentity(t, "quick_login token", wantOneUpstream(t, "quick_login token", up, mark), map[string]string{
			"x-auth-user": "dora", "x-auth-user-id": doraID, "x-auth-email": "dora@example.com",
			"x-auth-roles": "explorer", "x-auth-method": "bearer", "x-auth-permissions": "read",
		})
		mark = up.Mark()
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			wantError(t, m+" with a read-only quick_login token", g.Do(t, m, "/app/q", nil, bearer(pair.Access)), 403, "insufficient_scope", "")
		}
		wantNothingUpstream(t, "writes with a read-only quick_login token", up, mark)
	})

	t.Run("quick_login_refusals_look_alike", func(t *testing.T) {
		mark := up.Mark()
		wrong := quick(ro.ID, other.ClientSecret)
		unknown := quick("key_aaaaaaaaaaaaaaaaaaaa", ro.ClientSecret)
		wantError(t, "wrong client secret", wrong, 401, "invalid_client", "")
		wantError(t, "unknown client id", unknown, 401, "invalid_client", "")
		if string(wrong.Body) != string(unknown.Body) {
			t.Errorf("wrong secret and unknown id differ: %s / %s", wrong, unknown)
		}
		wantError(t, "API key as the secret", quick(ro.ID, ro.Key), 401, "invalid_client", "")
		wantNothingUpstream(t, "quick_login refusals", up, mark)
	})

	t.Run("check_password_and_pin", func(t *testing.T) {
		pair := g.Login(t, "dora", doraPW)
		check := func(route string, body map[string]string, hdr H) Resp {
			b, h := jsonBody(t, body)
			return g.Do(t, "POST", "/rest/"+route, b, append(h, hdr...))
		}
		mark := up.Mark()
		for _, c := range []struct {
			route, param, right string
		}{{"check_password", "password", doraPW}, {"check_pin", "pin", doraPIN}} {
			r := check(c.route, map[string]string{c.param: c.right}, bearer(pair.Access))
			if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"valid":true}` {
				t.Errorf("%s, right: %s, want 200 {\"valid\":true}", c.route, r)
			}
			// The Bearer routes answer the plentymarkets error object (API.md section 4).
			wantPlentyError(t, c.route+", wrong", check(c.route, map[string]string{c.param: "not it at all"}, bearer(pair.Access)), 401, "invalid_credentials", "")
			wantPlentyError(t, c.route+", missing", check(c.route, map[string]string{}, bearer(pair.Access)), 400, "invalid_request", "")
			wantPlentyError(t, c.route+", API key", check(c.route, map[string]string{c.param: c.right}, apiKey(ro.Key)), 400, "invalid_request", "")
			wantPlentyError(t, c.route+", no credential", check(c.route, map[string]string{c.param: c.right}, nil), 401, "unauthorized", challengeNoCred)
		}
		wantNothingUpstream(t, "check routes (own routes)", up, mark)
	})

	t.Run("cli_changes_on_the_stopped_server", func(t *testing.T) {
		pair := g.Login(t, "dora", doraPW)
		g.Stop(t)
		const newPIN = "31415926"
		secret(newPIN)
		g.CLI(t, newPIN+"\n", "user", "set-pin", "dora", "--pin-stdin")
		g.CLI(t, "", "user", "set", "dora", "--lang", "pt-BR", "--last-name", "Souza")
		g.Start(t)

		// A new PIN ends no session: the token from before checks it.
		check := func(pin string) Resp {
			b, h := jsonBody(t, map[string]string{"pin": pin})
			return g.Do(t, "POST", "/rest/check_pin", b, append(h, bearer(pair.Access)...))
		}
		if r := check(newPIN); r.Status != 200 {
			t.Errorf("check_pin with the new PIN after restart: %s, want 200", r)
		}
		wantPlentyError(t, "check_pin with the old PIN", check(doraPIN), 401, "invalid_credentials", "")
		r := g.Do(t, "GET", "/rest/user", nil, bearer(pair.Access))
		if m := r.Obj(t); m["realName"] != "Dora Souza" || m["lang"] != "pt-BR" || m["timezone"] != "America/Lima" {
			t.Errorf("GET /rest/user after user set: %s", r)
		}
	})
}
