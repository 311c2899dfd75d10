package e2e

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestGatewayWalk walks one gateway through the life of its users: refusals,
// logins, proxied requests with identity headers, API keys, allowed paths,
// refresh rotation and theft detection, logout, JWKS, restarts and
// administration of a stopped server.
func TestGatewayWalk(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)

	const (
		alicePW = "alice: correct horse battery staple"
		bobPW   = "bob: tr0ub4dor&3 but longer"
	)
	aliceID := g.AddUser(t, "alice", alicePW, "admin,ops", "alice@example.com")
	bobID := g.AddUser(t, "bob", bobPW, "dev", "bob@example.com")
	if aliceID == bobID {
		t.Fatalf("alice and bob got the same id %q", aliceID)
	}
	aliceRO := g.CreateKey(t, "alice", "ro", "read")
	bobKeep := g.CreateKey(t, "bob", "keep", "read")
	bobDoomed := g.CreateKey(t, "bob", "doomed", "read,create")
	g.Start(t)

	aliceIdentity := func(method string, extra map[string]string) map[string]string {
		m := map[string]string{
			"x-auth-user":    "alice",
			"x-auth-user-id": aliceID,
			"x-auth-email":   "alice@example.com",
			"x-auth-roles":   "admin,ops",
			"x-auth-method":  method,
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	// Values handed from step to step. A step that needs one an earlier
	// step failed to produce stops with a message naming that step.
	var (
		login     Pair // step 2
		family1   Pair // step 7: the first refresh token's successor (revoked by reuse)
		loggedOut Pair // step 8
	)
	need := func(t *testing.T, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Fatalf("prerequisite missing: %s", what)
		}
	}

	t.Run("00_cli_refuses_locked_store", func(t *testing.T) {
		start := time.Now()
		out, errOut, err := g.Run("", "authgate", "user", "list", "--db", g.DB)
		took := time.Since(start)
		if err == nil {
			t.Fatalf("`caddy authgate user list --db` succeeded while the server holds the store; stdout %q", scrub(out))
		}
		if !errorsIsExit(err) {
			t.Fatalf("`caddy authgate user list --db`: %v, want a non-zero exit", err)
		}
		if all := out + errOut; !strings.Contains(all, "locked by another process") {
			t.Errorf("CLI on a held store: output %q does not contain \"locked by another process\"", scrub(all))
		}
		if took > 10*time.Second {
			t.Errorf("CLI on a held store took %s, want about the 1s lock timeout", took)
		}
		t.Logf("CLI refused the held store after %s", took.Round(time.Millisecond))
	})

	t.Run("01_no_credential_is_401", func(t *testing.T) {
		mark := up.Mark()
		r := g.Do(t, "GET", "/app/x", nil, nil)
		wantError(t, "GET /app/x without credential", r, 401, "unauthorized", challengeNoCred)
		wantNothingUpstream(t, "GET /app/x without credential", up, mark)

		// Bad credentials: invalid_token.
		r = g.Do(t, "GET", "/app/x", nil, bearer("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."))
		wantError(t, "GET /app/x with an alg:none token", r, 401, "invalid_token", challengeInvalid)
		r = g.Do(t, "GET", "/app/x", nil, apiKey("not-a-real-key-0123456789"))
		wantError(t, "GET /app/x with a garbage API key", r, 401, "invalid_token", challengeInvalid)
		r = g.Do(t, "GET", "/app/x", nil, H{{"Authorization", "Basic YWxpY2U6eA=="}})
		if r.Status != 401 {
			t.Errorf("GET /app/x with Basic auth: status %d, want 401", r.Status)
		}
		wantNothingUpstream(t, "bad credentials", up, mark)
	})

	t.Run("02_login", func(t *testing.T) {
		login = g.Login(t, "alice", alicePW)
		t.Logf("JSON login: access %d chars, refresh %d chars", len(login.Access), len(login.Refresh))

		form, h := formBody(url.Values{"username": {"alice"}, "password": {alicePW}})
		p := checkTokenBody(t, "form login", g.Do(t, "POST", "/rest/login", form, h))
		if p.Access == login.Access || p.Refresh == login.Refresh {
			t.Errorf("form login returned the same tokens as the JSON login")
		}

		q := url.Values{"username": {"alice"}, "password": {alicePW}}.Encode()
		p = checkTokenBody(t, "query login", g.Do(t, "POST", "/rest/login?"+q, nil, nil))
		r := g.Do(t, "GET", "/rest/user", nil, bearer(p.Access))
		if r.Status != 200 || r.Obj(t)["user"] != "alice" {
			t.Errorf("token of the query login on /rest/user: %s, want 200 for alice", r)
		}

		mark := up.Mark()
		body, h := jsonBody(t, map[string]string{"username": "alice", "password": alicePW + "x"})
		wrong := g.Do(t, "POST", "/rest/login", body, h)
		body, h = jsonBody(t, map[string]string{"username": "nobody-at-all", "password": alicePW})
		unknown := g.Do(t, "POST", "/rest/login", body, h)
		if wrong.Status != 401 {
			t.Errorf("login with a wrong password: %s, want 401", wrong)
		}
		if unknown.Status != 401 {
			t.Errorf("login of an unknown user: %s, want 401", unknown)
		}
		if string(wrong.Body) != string(unknown.Body) {
			t.Errorf("wrong password and unknown user answer differently (user enumeration):\n wrong:   %q\n unknown: %q", wrong.Body, unknown.Body)
		}
		if a, b := wrong.Header.Values("WWW-Authenticate"), unknown.Header.Values("WWW-Authenticate"); !slices.Equal(a, b) {
			t.Errorf("WWW-Authenticate differs: wrong password %q, unknown user %q", a, b)
		}
		if m := wrong.Obj(t); m["access_token"] != nil || m["accessToken"] != nil {
			t.Errorf("a failed login carries a token field: %s", wrong)
		}
		wantNothingUpstream(t, "login", up, mark)
	})

	t.Run("03_bearer_injects_identity_and_strips_spoofs", func(t *testing.T) {
		need(t, login.Access != "", "access token from step 02")
		mark := up.Mark()
		h := append(bearer(login.Access),
			[2]string{"X-Auth-User", "mallory"},
			[2]string{"x_auth_user", "mallory"},
			[2]string{"X-AUTH-ROLES", "root"},
			[2]string{"x-auth-user-id", "mallory-id"},
			[2]string{"X_AUTH_EMAIL", "mallory@evil.example"},
			[2]string{"X-Auth-Key-Id", "mallory-key"},
			[2]string{"x-Auth_Permissions", "root,all"},
			[2]string{"X-Auth-Method", "mallory"},
		)
		r := g.Do(t, "GET", "/app/x?q=1", nil, h)
		if r.Status != 200 {
			t.Fatalf("GET /app/x with Bearer: %s, want 200", r)
		}
		if m := r.Obj(t); m["upstream"] != true || m["path"] != "/app/x" {
			t.Errorf("response is not the upstream's echo of /app/x: %s", r)
		}
		s := wantOneUpstream(t, "GET /app/x with Bearer", up, mark)
		if s.Method != "GET" || s.URI != "/app/x?q=1" {
			t.Errorf("upstream saw %s %s, want GET /app/x?q=1", s.Method, s.URI)
		}
		wantIdentity(t, "Bearer", s, aliceIdentity("bearer", nil))
		wantNoSpoof(t, "Bearer", s, "mallory", "root")
	})

	t.Run("04_api_key", func(t *testing.T) {
		mark := up.Mark()
		r := g.Do(t, "GET", "/app/x", nil, append(apiKey(aliceRO.Key), [2]string{"X-Auth-Roles", "root"}))
		if r.Status != 200 {
			t.Fatalf("GET /app/x with a read key: %s, want 200", r)
		}
		s := wantOneUpstream(t, "GET with key", up, mark)
		wantIdentity(t, "API key", s, aliceIdentity("api_key", map[string]string{
			"x-auth-key-id":      aliceRO.ID,
			"x-auth-permissions": "read",
		}))
		wantNoSpoof(t, "API key", s, "mallory", "root")

		for _, m := range []string{"HEAD", "OPTIONS"} {
			mark = up.Mark()
			if r := g.Do(t, m, "/app/x", nil, apiKey(aliceRO.Key)); r.Status != 200 {
				t.Errorf("%s /app/x with a read key: status %d, want 200", m, r.Status)
			}
			wantOneUpstream(t, m+" with read key", up, mark)
		}

		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			mark = up.Mark()
			r = g.Do(t, m, "/app/x", strings.NewReader(`{"a":1}`), append(apiKey(aliceRO.Key), [2]string{"Content-Type", "application/json"}))
			wantError(t, m+" /app/x with a read-only key", r, 403, "insufficient_scope", "")
			wantNothingUpstream(t, m+" with a read-only key", up, mark)
		}

		need(t, login.Access != "", "access token from step 02")
		mark = up.Mark()
		r = g.Do(t, "GET", "/app/x", nil, append(bearer(login.Access), [2]string{"x-api-key", aliceRO.Key}))
		wantError(t, "Bearer and key together", r, 400, "invalid_request", "")
		r = g.Do(t, "GET", "/app/x", nil, H{{"Authorization", "Bearer " + login.Access}, {"Authorization", "Bearer " + login.Access}})
		wantError(t, "two Authorization headers", r, 400, "invalid_request", "")
		r = g.Do(t, "GET", "/app/x", nil, H{{"x-api-key", aliceRO.Key}, {"X-Api-Key", aliceRO.Key}})
		wantError(t, "two x-api-key headers", r, 400, "invalid_request", "")
		wantNothingUpstream(t, "two credentials", up, mark)
	})

	t.Run("05_allowed_paths_and_traversal", func(t *testing.T) {
		spoofs := H{{"X-Auth-User", "mallory"}, {"x_auth_user", "mallory"}, {"X-AUTH-ROLES", "root"}, {"X-Auth-Method", "bearer"}}
		for _, p := range []string{"/health", "/public/doc.txt"} {
			mark := up.Mark()
			r := g.Do(t, "GET", p, nil, spoofs)
			if r.Status != 200 {
				t.Errorf("GET %s without credential: %s, want 200 from the upstream", p, r)
				continue
			}
			s := wantOneUpstream(t, "GET "+p, up, mark)
			if s.Path != p {
				t.Errorf("upstream saw path %q, want %q", s.Path, p)
			}
			wantIdentity(t, "allowed "+p, s, map[string]string{})
			wantNoSpoof(t, "allowed "+p, s, "mallory", "root")
		}

		// An allowed path with a credential: the credential is not forwarded.
		need(t, login.Access != "", "access token from step 02")
		mark := up.Mark()
		if r := g.Do(t, "GET", "/health", nil, bearer(login.Access)); r.Status != 200 {
			t.Errorf("GET /health with Bearer: %s, want 200", r)
		} else {
			wantNoSpoof(t, "/health with Bearer", wantOneUpstream(t, "/health with Bearer", up, mark))
		}

		for _, target := range []string{
			"/public/../app/x",
			"//public/x/../../app/x",
			"/public%2f..%2fapp/x",
			"/public/..%2fapp/x",
			"/public/%2e%2e/app/x",
			"/public/%2E%2E/%2E%2E/app/x",
			"/public/x/../../app/x",
			"/public\\..\\app/x",
			"/health/../app/x",
			"/health%2f..%2fapp/x",
		} {
			mark := up.Mark()
			r := g.Raw(t, target, nil)
			if r.Status != 401 {
				t.Errorf("raw GET %s without credential: status %d, want 401; body %s", target, r.Status, scrub(string(r.Body)))
			} else {
				wantError(t, "raw GET "+target, r, 401, "unauthorized", challengeNoCred)
			}
			wantNothingUpstream(t, "raw GET "+target, up, mark)
		}

		// Only a canonical path can be allowed (handler.go, allowed()):
		// paths that clean or decode INTO an allowed path still need a
		// credential, since the upstream may read them differently. Caddy's
		// own path matcher would allow these, so this is the check that
		// catches a regression in the handler's canonical-path rule.
		for _, target := range []string{
			"/app/../public/x",
			"//public/x",
			"/public//x",
			"/public%2fx",
			"/public/./x",
			"/public/%2e/x",
			"/health;/../app/x",
			"/health/",
			"/healthz",
			"/app/x?/health",
			"/app/x?next=/public/x",
		} {
			mark := up.Mark()
			r := g.Raw(t, target, nil)
			wantError(t, "raw GET "+target+" (not an allowed canonical path)", r, 401, "unauthorized", challengeNoCred)
			wantNothingUpstream(t, "raw GET "+target, up, mark)
		}

		// Canonical allowed paths pass, and the query string takes no part.
		for _, target := range []string{"/public/x/", "/health?next=/../app/x", "/public/x?a=%2f..%2fapp"} {
			mark := up.Mark()
			r := g.Raw(t, target, nil)
			if r.Status != 200 {
				t.Errorf("raw GET %s without credential: status %d, want 200 (allowed canonical path)", target, r.Status)
				continue
			}
			if s := wantOneUpstream(t, "raw GET "+target, up, mark); s.URI != target {
				t.Errorf("upstream saw %q, want %q unchanged", s.URI, target)
			}
		}
	})

	t.Run("06_rest_user", func(t *testing.T) {
		need(t, login.Access != "", "access token from step 02")
		mark := up.Mark()
		check := func(what string, r Resp) {
			t.Helper()
			if r.Status != 200 {
				t.Errorf("%s: %s, want 200", what, r)
				return
			}
			m := r.Obj(t)
			keys := []string{}
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := []string{"email", "id", "lang", "realName", "roles", "timezone", "user"}
			if !slices.Equal(keys, want) {
				t.Errorf("%s: fields %v, want %v", what, keys, want)
			}
			if m["id"] != aliceID || m["user"] != "alice" || m["email"] != "alice@example.com" {
				t.Errorf("%s: id/user/email = %v/%v/%v, want %s/alice/alice@example.com", what, m["id"], m["user"], m["email"], aliceID)
			}
			roles, _ := json.Marshal(m["roles"])
			if string(roles) != `["admin","ops"]` {
				t.Errorf("%s: roles = %s, want [\"admin\",\"ops\"]", what, roles)
			}
			for _, k := range []string{"realName", "lang", "timezone"} {
				if _, ok := m[k].(string); !ok {
					t.Errorf("%s: %s is %T, want a string", what, k, m[k])
				}
			}
		}
		check("GET /rest/user with Bearer", g.Do(t, "GET", "/rest/user", nil, bearer(login.Access)))
		check("GET /rest/user with key", g.Do(t, "GET", "/rest/user", nil, apiKey(aliceRO.Key)))
		r := g.Do(t, "GET", "/rest/user", nil, nil)
		wantPlentyError(t, "GET /rest/user without credential", r, 401, "unauthorized", challengeNoCred)
		wantNothingUpstream(t, "/rest/user (own route)", up, mark)
	})

	t.Run("07_refresh_rotation_and_reuse", func(t *testing.T) {
		first := g.Login(t, "alice", alicePW)
		r := g.Refresh(t, first.Refresh)
		second := checkTokenBody(t, "refresh #1", r)
		if second.Refresh == first.Refresh {
			t.Fatalf("refresh returned the same refresh token; it must rotate")
		}
		family1 = second
		mark := up.Mark()
		if r := g.Do(t, "GET", "/app/x", nil, bearer(second.Access)); r.Status != 200 {
			t.Errorf("new access token after refresh: %s, want 200", r)
		} else {
			wantIdentity(t, "refreshed token", wantOneUpstream(t, "refreshed token", up, mark), aliceIdentity("bearer", nil))
		}

		// A Bearer header may come along with a refresh; it plays no part.
		// (Not exercised on the family under test, to keep it intact.)

		// Reuse of the first (spent) refresh token: theft.
		r = g.Refresh(t, first.Refresh)
		if r.Status != 401 {
			t.Fatalf("reusing a spent refresh token: %s, want 401", r)
		}
		if m := r.Obj(t); m["access_token"] != nil {
			t.Errorf("reuse answered with a token: %s", r)
		}

		mark = up.Mark()
		r = g.Do(t, "GET", "/app/x", nil, bearer(second.Access))
		wantError(t, "access token of a family revoked by refresh reuse", r, 401, "invalid_token", challengeInvalid)
		r = g.Do(t, "GET", "/app/x", nil, bearer(first.Access))
		wantError(t, "first access token of a family revoked by refresh reuse", r, 401, "invalid_token", challengeInvalid)
		wantNothingUpstream(t, "revoked family", up, mark)

		r = g.Refresh(t, second.Refresh)
		if r.Status != 401 {
			t.Errorf("the family's live refresh token after reuse: %s, want 401", r)
		}

		// Other sessions are untouched.
		need(t, login.Access != "", "access token from step 02")
		if r := g.Do(t, "GET", "/rest/user", nil, bearer(login.Access)); r.Status != 200 {
			t.Errorf("another session's token after a reuse elsewhere: %s, want 200", r)
		}

		// refreshToken (camelCase) as a form works too, and rotates again.
		other := g.Login(t, "alice", alicePW)
		form, h := formBody(url.Values{"refreshToken": {other.Refresh}})
		next := checkTokenBody(t, "refresh with form refreshToken", g.Do(t, "POST", "/rest/login/refresh", form, h))
		if next.Refresh == other.Refresh {
			t.Errorf("form refresh did not rotate the refresh token")
		}
	})

	t.Run("08_logout", func(t *testing.T) {
		p := g.Login(t, "alice", alicePW)
		if r := g.Do(t, "GET", "/app/x", nil, bearer(p.Access)); r.Status != 200 {
			t.Fatalf("fresh token before logout: %s, want 200", r)
		}
		mark := up.Mark()
		r := g.Do(t, "POST", "/rest/logout", nil, bearer(p.Access))
		if r.Status != 200 {
			t.Fatalf("POST /rest/logout: %s, want 200", r)
		}
		if len(r.Body) != 0 {
			t.Errorf("POST /rest/logout: body %q, want empty", scrub(string(r.Body)))
		}
		loggedOut = p

		r = g.Do(t, "GET", "/app/x", nil, bearer(p.Access))
		wantError(t, "access token after logout", r, 401, "invalid_token", challengeInvalid)
		r = g.Do(t, "GET", "/rest/user", nil, bearer(p.Access))
		wantPlentyError(t, "/rest/user after logout", r, 401, "invalid_token", challengeInvalid)
		r = g.Refresh(t, p.Refresh)
		if r.Status != 401 {
			t.Errorf("refresh token after logout: %s, want 401", r)
		}
		r = g.Do(t, "POST", "/rest/logout", nil, bearer(p.Access))
		wantPlentyError(t, "second logout with the same token", r, 401, "invalid_token", challengeInvalid)
		r = g.Do(t, "POST", "/rest/logout", nil, nil)
		wantPlentyError(t, "logout without credential", r, 401, "unauthorized", challengeNoCred)
		wantNothingUpstream(t, "logout", up, mark)

		// Logout ended only that session.
		need(t, login.Access != "", "access token from step 02")
		if r := g.Do(t, "GET", "/rest/user", nil, bearer(login.Access)); r.Status != 200 {
			t.Errorf("another session's token after a logout: %s, want 200", r)
		}
	})

	t.Run("09_jwks", func(t *testing.T) {
		mark := up.Mark()
		r := g.Do(t, "GET", "/.well-known/jwks.json", nil, nil)
		if r.Status != 200 {
			t.Fatalf("GET /.well-known/jwks.json: %s, want 200", r)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("JWKS Content-Type = %q, want application/json", ct)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(r.Body, &set); err != nil {
			t.Fatalf("JWKS is not JSON: %v: %q", err, r.Body)
		}
		if len(set.Keys) == 0 {
			t.Fatalf("JWKS has no keys: %q", r.Body)
		}
		k0 := set.Keys[0]
		if kid, _ := k0["kid"].(string); kid == "" {
			t.Errorf("keys[0].kid missing: %v", k0)
		}
		if k0["kty"] != "OKP" || k0["crv"] != "Ed25519" {
			t.Errorf("keys[0] kty/crv = %v/%v, want OKP/Ed25519 (default EdDSA)", k0["kty"], k0["crv"])
		}
		if x, _ := k0["x"].(string); x == "" {
			t.Errorf("keys[0].x missing: %v", k0)
		}
		for i, k := range set.Keys {
			for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := k[priv]; ok {
					t.Errorf("SECURITY: keys[%d] publishes the private member %q", i, priv)
				}
			}
		}
		// The token header names a published kid.
		need(t, login.Access != "", "access token from step 02")
		hdr := jwtHeader(t, login.Access)
		found := false
		for _, k := range set.Keys {
			if k["kid"] == hdr["kid"] {
				found = true
			}
		}
		if !found || hdr["alg"] != "EdDSA" {
			t.Errorf("access token header alg=%v kid=%v: want EdDSA and a kid published in the JWKS", hdr["alg"], hdr["kid"])
		}
		wantNothingUpstream(t, "jwks (own route)", up, mark)
	})

	t.Run("10_restart_and_offline_admin", func(t *testing.T) {
		need(t, loggedOut.Access != "", "logged-out token from step 08")
		need(t, family1.Access != "", "revoked family from step 07")
		kept := g.Login(t, "alice", alicePW)
		if r := g.Do(t, "GET", "/app/x", nil, bearer(kept.Access)); r.Status != 200 {
			t.Fatalf("token before restart: %s, want 200", r)
		}

		g.Restart(t)
		mark := up.Mark()
		r := g.Do(t, "GET", "/app/x", nil, bearer(kept.Access))
		if r.Status != 200 {
			t.Errorf("unexpired token after restart: %s, want 200 (signing keys and sessions must persist)", r)
		} else {
			wantIdentity(t, "token after restart", wantOneUpstream(t, "token after restart", up, mark), aliceIdentity("bearer", nil))
		}
		mark = up.Mark()
		wantError(t, "logged-out token after restart", g.Do(t, "GET", "/app/x", nil, bearer(loggedOut.Access)), 401, "invalid_token", challengeInvalid)
		wantError(t, "reused family after restart", g.Do(t, "GET", "/app/x", nil, bearer(family1.Access)), 401, "invalid_token", challengeInvalid)
		if r := g.Refresh(t, loggedOut.Refresh); r.Status != 401 {
			t.Errorf("logged-out refresh token after restart: %s, want 401", r)
		}
		if r := g.Refresh(t, family1.Refresh); r.Status != 401 {
			t.Errorf("revoked family's refresh token after restart: %s, want 401", r)
		}
		wantNothingUpstream(t, "revoked tokens after restart", up, mark)
		if r := g.Do(t, "GET", "/app/x", nil, apiKey(aliceRO.Key)); r.Status != 200 {
			t.Errorf("alice's key after restart: %s, want 200", r)
		}
		bobTok := g.Login(t, "bob", bobPW)

		// Disable alice on the stopped server.
		g.Stop(t)
		out := g.CLI(t, "", "user", "disable", "alice")
		if !strings.Contains(out, "disabled") {
			t.Errorf("user disable: output %q, want it to say disabled", out)
		}
		g.Start(t)
		mark = up.Mark()
		wantError(t, "disabled alice's token", g.Do(t, "GET", "/app/x", nil, bearer(kept.Access)), 401, "invalid_token", challengeInvalid)
		wantPlentyError(t, "disabled alice's token on /rest/user", g.Do(t, "GET", "/rest/user", nil, bearer(kept.Access)), 401, "invalid_token", challengeInvalid)
		wantError(t, "disabled alice's key", g.Do(t, "GET", "/app/x", nil, apiKey(aliceRO.Key)), 401, "invalid_token", challengeInvalid)
		wantPlentyError(t, "disabled alice's key on /rest/user", g.Do(t, "GET", "/rest/user", nil, apiKey(aliceRO.Key)), 401, "invalid_token", challengeInvalid)
		body, h := jsonBody(t, map[string]string{"username": "alice", "password": alicePW})
		if r := g.Do(t, "POST", "/rest/login", body, h); r.Status != 401 {
			t.Errorf("disabled alice logging in with the right password: %s, want 401", r)
		}
		if r := g.Refresh(t, kept.Refresh); r.Status != 401 {
			t.Errorf("disabled alice's refresh token: %s, want 401", r)
		}
		wantNothingUpstream(t, "disabled user", up, mark)

		// Control: bob is untouched.
		mark = up.Mark()
		if r := g.Do(t, "GET", "/app/x", nil, bearer(bobTok.Access)); r.Status != 200 {
			t.Errorf("bob's token after alice was disabled: %s, want 200", r)
		} else {
			wantIdentity(t, "bob's token", wantOneUpstream(t, "bob's token", up, mark), map[string]string{
				"x-auth-user": "bob", "x-auth-user-id": bobID, "x-auth-email": "bob@example.com",
				"x-auth-roles": "dev", "x-auth-method": "bearer",
			})
		}
		mark = up.Mark()
		if r := g.Do(t, "POST", "/app/x", nil, apiKey(bobDoomed.Key)); r.Status != 200 {
			t.Errorf("bob's read,create key POST before revoke: %s, want 200", r)
		} else {
			wantIdentity(t, "bob's key", wantOneUpstream(t, "bob's key", up, mark), map[string]string{
				"x-auth-user": "bob", "x-auth-user-id": bobID, "x-auth-email": "bob@example.com",
				"x-auth-roles": "dev", "x-auth-method": "api_key",
				"x-auth-key-id": bobDoomed.ID, "x-auth-permissions": "read,create",
			})
		}

		// Revoke one of bob's keys on the stopped server.
		g.Stop(t)
		out = g.CLI(t, "", "key", "revoke", bobDoomed.ID)
		if !strings.Contains(out, "revoked") {
			t.Errorf("key revoke: output %q, want it to say revoked", out)
		}
		g.Start(t)
		mark = up.Mark()
		wantError(t, "revoked key GET", g.Do(t, "GET", "/app/x", nil, apiKey(bobDoomed.Key)), 401, "invalid_token", challengeInvalid)
		wantError(t, "revoked key POST", g.Do(t, "POST", "/app/x", nil, apiKey(bobDoomed.Key)), 401, "invalid_token", challengeInvalid)
		wantError(t, "disabled alice's key, second restart", g.Do(t, "GET", "/app/x", nil, apiKey(aliceRO.Key)), 401, "invalid_token", challengeInvalid)
		wantNothingUpstream(t, "revoked key", up, mark)
		mark = up.Mark()
		if r := g.Do(t, "GET", "/app/x", nil, apiKey(bobKeep.Key)); r.Status != 200 {
			t.Errorf("bob's other key after revoking one: %s, want 200", r)
		} else {
			wantOneUpstream(t, "bob's other key", up, mark)
		}
		if r := g.Do(t, "GET", "/app/x", nil, bearer(bobTok.Access)); r.Status != 200 {
			t.Errorf("bob's token after two restarts: %s, want 200", r)
		}
	})
}

// jwtHeader decodes a JWT's protected header.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64URL(h)
	if err != nil {
		t.Fatalf("token header is not base64url: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token header is not JSON: %v", err)
	}
	return m
}
