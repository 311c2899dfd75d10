package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

func TestNoCredential(t *testing.T) {
	g := newGateway(t, nil)
	w := g.do(httptest.NewRequest("GET", "/app", nil))
	expectRefused(t, g, w, 401, "unauthorized")
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
}

func TestBearerInjectsIdentityAndStripsSpoofs(t *testing.T) {
	g := newGateway(t, nil)
	alice := g.addUser("alice", "correct horse", "admin", "ops")
	tb := g.login("alice", "correct horse")
	if tb.AccessToken == "" || tb.AccessToken != tb.AccessCamel || tb.RefreshToken != tb.RefreshCamel || tb.ExpiresIn != 86400 || tb.TokenType != "Bearer" {
		t.Fatalf("token body: type %q, expires_in %d, access %d chars (camel equal: %v), refresh %d chars (camel equal: %v)",
			tb.TokenType, tb.ExpiresIn, len(tb.AccessToken), tb.AccessToken == tb.AccessCamel, len(tb.RefreshToken), tb.RefreshToken == tb.RefreshCamel)
	}

	for range 2 { // the second request takes the cached path
		r := bearer("GET", "/app/orders", tb.AccessToken)
		r.Header["X-Auth-User"] = []string{"mallory"}
		r.Header["X_auth_user"] = []string{"mallory"}
		r.Header["X-AUTH-ROLES"] = []string{"root"}
		r.Header["X-Auth-Key-Id"] = []string{"key_forged"}
		r.Header["X-Auth-Anything"] = []string{"forged"}
		w := g.do(r)
		if w.Code != 200 || g.seen == nil {
			t.Fatalf("status %d %s", w.Code, w.Body)
		}
		h := g.seen.Header
		want := map[string]string{
			"X-Auth-User-Id": alice.ID, "X-Auth-User": "alice", "X-Auth-Email": "alice@example.com",
			"X-Auth-Roles": "admin,ops", "X-Auth-Method": "bearer",
		}
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		for name, vals := range h {
			for _, v := range vals {
				if v == "mallory" || v == "root" || v == "forged" || v == "key_forged" {
					t.Errorf("spoofed header survived: %s: %s", name, v)
				}
			}
		}
		if h.Get("Authorization") != "" {
			t.Error("the Authorization header was forwarded")
		}
		g.waitCache()
	}
}

func TestAPIKeyPermissions(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("bob", "pw-bob-123")
	ro := g.addKey("bob", "read")

	w := g.do(withKey("GET", "/app", ro.Key))
	if w.Code != 200 {
		t.Fatalf("GET with read key: %d %s", w.Code, w.Body)
	}
	h := g.seen.Header
	if h.Get("X-Auth-Method") != "api_key" || h.Get("X-Auth-Key-Id") != ro.ID || h.Get("X-Auth-Permissions") != "read" || h.Get("X-Api-Key") != "" {
		t.Errorf("identity headers: %v", h)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "TRACE"} {
		w := g.do(withKey(m, "/app", ro.Key))
		expectRefused(t, g, w, 403, "insufficient_scope")
	}
	create := g.addKey("bob", "create")
	if w := g.do(withKey("POST", "/app", create.Key)); w.Code != 200 {
		t.Errorf("POST with create key: %d", w.Code)
	}
	if w := g.do(withKey("GET", "/app", create.Key)); w.Code != 403 {
		t.Errorf("GET with create-only key: %d", w.Code)
	}
}

// Each permission bit, alone and combined, through the handler: a table
// written out by hand (API.md section 3), every method against every key.
func TestKeyPermissionMatrix(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("mia", "pw-mia-1234")
	keys := map[string]string{}
	for _, perms := range []string{"read", "write", "delete", "create", "read,write", "delete,create", "all"} {
		keys[perms] = g.addKey("mia", perms).Key
	}
	// The methods each key may use; every other one is a 403.
	allowed := map[string]string{
		"read":          "GET HEAD OPTIONS",
		"write":         "PUT PATCH",
		"delete":        "DELETE",
		"create":        "POST",
		"read,write":    "GET HEAD OPTIONS PUT PATCH",
		"delete,create": "DELETE POST",
		"all":           "GET HEAD OPTIONS PUT PATCH DELETE POST TRACE PROPFIND",
	}
	for perms, key := range keys {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "POST", "TRACE", "PROPFIND"} {
			want := 403
			if slices.Contains(strings.Fields(allowed[perms]), method) {
				want = 200
			}
			w := g.do(withKey(method, "/app/x", key))
			if w.Code != want {
				t.Errorf("%s key, %s: status %d, want %d", perms, method, w.Code, want)
				continue
			}
			if want == 200 && g.seen.Header.Get("X-Auth-Permissions") != perms && !(perms == "all" && g.seen.Header.Get("X-Auth-Permissions") == "read,write,delete,create") {
				t.Errorf("%s key, %s: X-Auth-Permissions %q", perms, method, g.seen.Header.Get("X-Auth-Permissions"))
			}
			if want == 403 {
				expectRefused(t, g, w, 403, "insufficient_scope")
			}
		}
	}
}

func TestBadKeysRefused(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("carol", "pw-carol-123")
	k := g.addKey("carol", "all")
	flipped := []byte(k.Key)
	flipped[10] ^= 1
	for name, key := range map[string]string{
		"bad checksum": string(flipped),
		"truncated":    k.Key[:len(k.Key)-1],
		"padded":       k.Key + "A",
		"upper-cased":  strings.ToUpper(k.Key),
		"empty":        "",
		"garbage":      "hello",
		"oversized":    k.Key + strings.Repeat("A", auth.MaxLegacyKey),
	} {
		t.Run(name, func(t *testing.T) {
			w := g.do(withKey("GET", "/app", key))
			expectRefused(t, g, w, 401, "invalid_token")
			if !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestOneCredentialPerRequest(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("dave", "pw-dave-123")
	k := g.addKey("dave", "all")
	tb := g.login("dave", "pw-dave-123")

	both := bearer("GET", "/app", tb.AccessToken)
	both.Header.Set("X-Api-Key", k.Key)
	expectRefused(t, g, g.do(both), 400, "invalid_request")

	twoAuth := bearer("GET", "/app", tb.AccessToken)
	twoAuth.Header.Add("Authorization", "Bearer "+tb.AccessToken)
	expectRefused(t, g, g.do(twoAuth), 400, "invalid_request")

	twoKeys := withKey("GET", "/app", k.Key)
	twoKeys.Header.Add("X-Api-Key", k.Key)
	expectRefused(t, g, g.do(twoKeys), 400, "invalid_request")

	basic := httptest.NewRequest("GET", "/app", nil)
	basic.SetBasicAuth("dave", "pw-dave-123")
	expectRefused(t, g, g.do(basic), 401, "invalid_token")
}

func TestAllowedPathsAndTricks(t *testing.T) {
	g := newGateway(t, nil)
	r := httptest.NewRequest("GET", "/health?x=1", nil)
	r.Header["X-Auth-User"] = []string{"mallory"}
	r.Header["X_Auth_User_Id"] = []string{"1"}
	if w := g.do(r); w.Code != 200 || g.seen == nil {
		t.Fatalf("/health: %d", w.Code)
	}
	// Look in the map itself (Header.Values would canonicalise
	// "X_Auth_User_Id" to "X_auth_user_id" and never find the spoof), and
	// fold names here, not with the code under test.
	for name := range g.seen.Header {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(name), "_", "-"), "x-auth-") {
			t.Errorf("spoofed identity header %s reached the upstream on an allowed path", name)
		}
	}
	if w := g.do(httptest.NewRequest("GET", "/public/logo.png", nil)); w.Code != 200 {
		t.Errorf("/public/logo.png: %d", w.Code)
	}

	for _, target := range []string{
		"/public/../admin",
		"/public/..%2fadmin",
		"/public%2f..%2fadmin",
		"//public/../admin",
		"/public//../admin",
		"/public/%2e%2e/admin",
		"/admin%2f..%2fpublic/x",
		"/admin/..%2fpublic/x",
		"/public\\..\\admin",
		"/admin?/public/x",
		"/admin#/public/x",
		"/healthz",
		"/health/../admin",
	} {
		t.Run(target, func(t *testing.T) {
			u, err := url.Parse(target)
			if err != nil {
				t.Skip("unparseable target")
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.URL = u
			r.RequestURI = target
			w := g.do(r)
			expectRefused(t, g, w, 401, "unauthorized")
		})
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("erin", "pw-erin-123")
	first := g.login("erin", "pw-erin-123")

	w := g.refresh(first.RefreshToken)
	if w.Code != 200 {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	var second tokenBody
	_ = json.Unmarshal(w.Body.Bytes(), &second)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == "" {
		t.Fatal("refresh did not rotate")
	}
	if w := g.do(bearer("GET", "/app", second.AccessToken)); w.Code != 200 {
		t.Fatalf("new access token: %d", w.Code)
	}
	g.waitCache()

	// Replay of the spent token: refused, and the whole family is revoked.
	expectRefused(t, g, g.refresh(first.RefreshToken), 401, "invalid_grant")
	expectRefused(t, g, g.do(bearer("GET", "/app", second.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.do(bearer("GET", "/app", first.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.refresh(second.RefreshToken), 401, "invalid_grant")

	// Form and camelCase spellings work too.
	third := g.login("erin", "pw-erin-123")
	if w := g.do(formRequest("/rest/login/refresh", url.Values{"refreshToken": {third.RefreshToken}})); w.Code != 200 {
		t.Errorf("form refresh with refreshToken: %d %s", w.Code, w.Body)
	}
	expectRefused(t, g, g.refresh("agr_garbage"), 401, "invalid_grant")
}

func TestLogoutRevokesOnNextRequest(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("frank", "pw-frank-123")
	tb := g.login("frank", "pw-frank-123")
	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Fatal(w.Code)
	}
	g.waitCache() // the token is now served from the cache

	w := g.do(bearer("POST", "/rest/logout", tb.AccessToken))
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("logout: %d %q", w.Code, w.Body)
	}
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.refresh(tb.RefreshToken), 401, "invalid_grant")
}

func TestDisableAndRevokeTakeEffectAtOnce(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("gina", "pw-gina-123")
	k := g.addKey("gina", "all")
	k2 := g.addKey("gina", "all")
	tb := g.login("gina", "pw-gina-123")
	for _, r := range []*http.Request{bearer("GET", "/app", tb.AccessToken), withKey("GET", "/app", k.Key), withKey("GET", "/app", k2.Key)} {
		if w := g.do(r); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	g.waitCache()

	if err := g.ops.RevokeKey(k2.ID); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(withKey("GET", "/app", k2.Key)), 401, "invalid_token")
	if w := g.do(withKey("GET", "/app", k.Key)); w.Code != 200 {
		t.Fatalf("unrevoked key: %d", w.Code)
	}
	g.waitCache()

	if _, err := g.ops.SetDisabled("gina", true); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")
	expectRefused(t, g, g.do(withKey("GET", "/app", k.Key)), 401, "invalid_token")
	w := g.do(jsonRequest("POST", "/rest/login", `{"username":"gina","password":"pw-gina-123"}`))
	expectRefused(t, g, w, 401, "invalid_credentials")

	if _, err := g.ops.SetDisabled("gina", false); err != nil {
		t.Fatal(err)
	}
	if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
		t.Errorf("re-enabled user's token: %d", w.Code)
	}
	if _, err := g.ops.SetPassword("gina", "new-pw-456"); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")

	if err := g.ops.DeleteUser("gina"); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(withKey("GET", "/app", k.Key)), 401, "invalid_token")
}

func TestLoginInputsAndFailures(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("hank", "pw-hank-123")

	if w := g.do(formRequest("/rest/login", url.Values{"username": {"hank"}, "password": {"pw-hank-123"}})); w.Code != 200 {
		t.Errorf("form login: %d %s", w.Code, w.Body)
	}
	if w := g.do(httptest.NewRequest("POST", "/rest/login?username=hank&password=pw-hank-123", nil)); w.Code != 200 {
		t.Errorf("query login: %d %s", w.Code, w.Body)
	}
	if w := g.do(jsonRequest("POST", "/rest/login", `{"username":"HANK@example.com","password":"pw-hank-123"}`)); w.Code != 200 {
		t.Errorf("login by email, other case: %d %s", w.Code, w.Body)
	}

	wrong := g.do(jsonRequest("POST", "/rest/login", `{"username":"hank","password":"nope"}`))
	unknown := g.do(jsonRequest("POST", "/rest/login", `{"username":"nobody","password":"nope"}`))
	if wrong.Code != 401 || unknown.Code != 401 || wrong.Body.String() != unknown.Body.String() {
		t.Errorf("wrong password and unknown user differ: %d %q / %d %q", wrong.Code, wrong.Body, unknown.Code, unknown.Body)
	}

	cases := map[string]struct {
		r      *http.Request
		status int
	}{
		"malformed json": {jsonRequest("POST", "/rest/login", `{"username":`), 400},
		"two objects":    {jsonRequest("POST", "/rest/login", `{"username":"a"}{"password":"b"}`), 400},
		"missing fields": {jsonRequest("POST", "/rest/login", `{}`), 400},
		"huge body":      {jsonRequest("POST", "/rest/login", `{"username":"`+strings.Repeat("a", 70<<10)+`"}`), 413},
		"text body": {func() *http.Request {
			r := httptest.NewRequest("POST", "/rest/login", strings.NewReader("x"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}(), 415},
		"ambiguous": {jsonRequest("POST", "/rest/login?username=other", `{"username":"hank","password":"pw-hank-123"}`), 400},
		"GET login": {httptest.NewRequest("GET", "/rest/login", nil), 405},
		"bad media type": {func() *http.Request {
			r := jsonRequest("POST", "/rest/login", `{}`)
			r.Header.Set("Content-Type", "application/json; ;")
			return r
		}(), 415},
		"array body":      {jsonRequest("POST", "/rest/login", `[1,2]`), 400},
		"no body no type": {httptest.NewRequest("POST", "/rest/login", nil), 400},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w := g.do(c.r)
			expectRefused(t, g, w, c.status, "invalid_request")
			if w.Code >= 500 {
				t.Errorf("5xx for client input")
			}
		})
	}
}

func TestUserRouteAndJWKS(t *testing.T) {
	g := newGateway(t, nil)
	v := g.addUser("ivy", "pw-ivy-123", "staff")
	if _, err := g.app.store.UpdateUser(v.ID, func(u *store.User) error {
		u.FirstName, u.LastName, u.Lang, u.Timezone = "Ivy", "Smith", "de", "Europe/Berlin"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tb := g.login("ivy", "pw-ivy-123")
	k := g.addKey("ivy", "read")
	for _, r := range []*http.Request{bearer("GET", "/rest/user", tb.AccessToken), withKey("GET", "/rest/user", k.Key)} {
		w := g.do(r)
		if w.Code != 200 {
			t.Fatalf("/rest/user: %d %s", w.Code, w.Body)
		}
		var u pmUserBody
		_ = json.Unmarshal(w.Body.Bytes(), &u)
		want := pmUserBody{ID: v.ID, User: "ivy", RealName: "Ivy Smith", Email: "ivy@example.com", Lang: "de", Timezone: "Europe/Berlin", Roles: []string{"staff"}}
		if u.ID != want.ID || u.User != want.User || u.RealName != want.RealName || u.Lang != want.Lang || u.Timezone != want.Timezone || len(u.Roles) != 1 {
			t.Errorf("user body %+v, want %+v", u, want)
		}
	}
	expectRefused(t, g, g.do(httptest.NewRequest("GET", "/rest/user", nil)), 401, "unauthorized")

	w := g.do(httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &jwks); err != nil || len(jwks.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, w.Body)
	}
	if _, private := jwks.Keys[0]["d"]; private || jwks.Keys[0]["kid"] == "" {
		t.Errorf("jwks key: %v", jwks.Keys[0])
	}
}

// A key that expires while its principal is cached stops working at its
// expiry: the cached decision is re-checked against the clock.
func TestCachedKeyExpires(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("hal", "pw-hal-123")
	k, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "hal", Name: "short", ExpiresIn: admin.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if w := g.do(withKey("GET", "/app", k.Key)); w.Code != 200 {
		t.Fatalf("fresh key: %d", w.Code)
	}
	g.waitCache()
	if w := g.do(withKey("GET", "/app", k.Key)); w.Code != 200 {
		t.Fatalf("cached key: %d", w.Code)
	}
	later := time.Now().Add(time.Hour + time.Second)
	g.app.now = func() time.Time { return later }
	expectRefused(t, g, g.do(withKey("GET", "/app", k.Key)), 401, "invalid_token")
}

// A quick_login token rests on its key: when the key expires while the
// token's decision is cached (nothing written to the store since), the
// token stops working at the key's expiry, not at its own.
func TestCachedQuickLoginTokenEndsWithItsKey(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("ida", "pw-ida-123")
	k, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "ida", Name: "short", Permissions: "read", ClientSecret: true, ExpiresIn: admin.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	tb := decodeTokens(t, quickLogin(g, k.ID, k.ClientSecret))
	for pass := range 2 { // resolved, then cached
		if w := g.do(bearer("GET", "/app", tb.AccessToken)); w.Code != 200 {
			t.Fatalf("pass %d: %d %s", pass, w.Code, w.Body)
		}
		g.waitCache()
	}
	later := time.Now().Add(time.Hour + time.Second) // the token lives 24 h
	g.app.now = func() time.Time { return later }
	expectRefused(t, g, g.do(bearer("GET", "/app", tb.AccessToken)), 401, "invalid_token")
}

// Changing what a key may do reaches its cached decision on the next
// request, as revoking it does.
func TestKeyPermissionChangeTakesEffectAtOnce(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("bea", "pw-bea-123")
	key := g.addKey("bea", "read,create")
	for pass := range 2 { // resolved, then cached
		if w := g.do(withKey("POST", "/app", key.Key)); w.Code != http.StatusOK {
			t.Fatalf("pass %d: %d %s", pass, w.Code, w.Body)
		}
		g.waitCache()
	}
	if _, err := g.app.store.UpdateAPIKey(key.ID, func(k *store.APIKey) error { k.Permissions = store.PermRead; return nil }); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, g.do(withKey("POST", "/app", key.Key)), 403, "insufficient_scope")
	if w := g.do(withKey("GET", "/app", key.Key)); w.Code != http.StatusOK {
		t.Fatalf("GET after narrowing to read: %d %s", w.Code, w.Body)
	}
}

// A token longer than any we issue is refused (authenticateBearer does so
// before hashing it: a megabyte header must not cost a megabyte of SHA-256).
func TestOversizedTokenRefused(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("dora", "pw-dora-123")
	token := g.login("dora", "pw-dora-123").AccessToken
	huge := token + "." + strings.Repeat("A", tokens.MaxTokenSize)
	expectRefused(t, g, g.do(bearer("GET", "/app", huge)), 401, "invalid_token")
}
