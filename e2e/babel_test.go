package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// wantBabel asserts a Babel envelope (API.md section 5): status, JSON,
// no-store, success, code and a message, and no secret echoed. It returns
// the body.
func wantBabel(t *testing.T, what string, r Resp, status, code int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, scrub(string(r.Body)))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want no-store", what, cc)
	}
	m := r.Obj(t)
	if m["success"] != (code == 0) || m["code"] != float64(code) {
		t.Errorf("%s: success %v, code %v; want %v, %d; body %s", what, m["success"], m["code"], code == 0, code, scrub(string(r.Body)))
	}
	if msg, ok := m["message"].(string); !ok || msg == "" {
		t.Errorf("%s: message missing or empty; body %s", what, scrub(string(r.Body)))
	}
	if code != 0 {
		for _, sec := range allSecrets() {
			if strings.Contains(string(r.Body), sec) {
				t.Errorf("%s: SECURITY: the refusal echoes a secret (%s)", what, redact(sec))
			}
		}
	}
	return m
}

func babelJSON(t *testing.T, v any, extra ...[2]string) (*bytes.Reader, H) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b), append(H{{"Content-Type", "application/json"}}, extra...)
}

// TestBabelClient walks a Babel management client over real HTTP: log in,
// read the user, edit it by posting the whole object back, read it again,
// log out; with the refusals such a client meets on the way.
func TestBabelClient(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)

	const pw = "rita: babel licensing 4 ever"
	id := g.AddUser(t, "rita", pw, "licensing", "rita@example.com")
	g.CLI(t, "", "user", "setting", "set", "rita", "theme", "light", "--category", "ui")
	g.CLI(t, "", "user", "setting", "set", "rita", "seats", "5", "--read-only")
	readKey := g.CreateKey(t, "rita", "reader", "read")
	var full struct {
		Key          string `json:"key"`
		ClientSecret string `json:"clientSecret"`
	}
	out := g.CLI(t, "", "key", "create", "--user", "rita", "--name", "full", "--client-secret", "--json")
	if err := json.Unmarshal([]byte(out), &full); err != nil || full.ClientSecret == "" {
		t.Fatalf("key create --client-secret --json: output of %d bytes, %v", len(out), err)
	}
	secret(full.Key)
	secret(full.ClientSecret)
	g.Start(t)
	mark := up.Mark()

	// Log in, by email.
	body, h := babelJSON(t, map[string]string{"username": "rita@example.com", "password": pw})
	m := wantBabel(t, "login", g.Do(t, "POST", "/v1/auth/login", body, h), 200, 0)
	token, _ := m["token"].(string)
	secret(token)
	if strings.Count(token, ".") != 2 || m["expiresIn"] != float64(86400) {
		t.Fatalf("login: token %s, expiresIn %v", redact(token), m["expiresIn"])
	}
	auth := H{{"Authorization", "Bearer " + token}, {"Accept", "text/plain"}}

	// Read the user: JSON although the client asked for text.
	res := g.Do(t, "GET", "/v1/auth/user", nil, auth)
	u := wantBabel(t, "GET user", res, 200, 0)["user"].(map[string]any)
	if u["id"] != id || u["userName"] != "rita" || u["email"] != "rita@example.com" || u["lastLogIn"] == nil {
		t.Errorf("GET user: %s", scrub(string(res.Body)))
	}
	if keys, _ := u["apiKeys"].([]any); len(keys) != 2 {
		t.Errorf("apiKeys: %v", u["apiKeys"])
	}
	for _, sec := range []string{readKey.Key, full.Key, full.ClientSecret} {
		if strings.Contains(string(res.Body), sec) {
			t.Errorf("SECURITY: GET user shows a key or client secret in full (%s)", redact(sec))
		}
	}
	settings, _ := u["settings"].([]any)
	if len(settings) != 2 {
		t.Fatalf("settings: %v", u["settings"])
	}
	theme := settings[0].(map[string]any)
	if theme["name"] != "theme" || theme["value"] != "light" || theme["category"] != "ui" {
		t.Fatalf("settings[0]: %v", theme)
	}

	// Edit and post the whole object back.
	u["firstName"] = "Rita"
	theme["value"] = "dark"
	body, h = babelJSON(t, map[string]any{"user": u}, auth...)
	updated := wantBabel(t, "POST user", g.Do(t, "POST", "/v1/auth/user", body, h), 200, 0)["user"].(map[string]any)
	again := wantBabel(t, "GET after POST", g.Do(t, "GET", "/v1/auth/user", nil, auth), 200, 0)["user"].(map[string]any)
	for what, got := range map[string]map[string]any{"POST answer": updated, "GET": again} {
		s := got["settings"].([]any)
		if got["firstName"] != "Rita" || s[0].(map[string]any)["value"] != "dark" || s[1].(map[string]any)["value"] != "5" {
			t.Errorf("%s after the edit: firstName %v, settings %v", what, got["firstName"], s)
		}
	}

	// What an unchanged client must not do.
	again["settings"].([]any)[1].(map[string]any)["value"] = "500"
	body, h = babelJSON(t, map[string]any{"user": again}, auth...)
	wantBabel(t, "readOnly setting", g.Do(t, "POST", "/v1/auth/user", body, h), 403, 8)
	body, h = babelJSON(t, map[string]any{"user": map[string]any{"userName": "admin"}}, auth...)
	wantBabel(t, "rename", g.Do(t, "POST", "/v1/auth/user", body, h), 400, 1)
	body, h = babelJSON(t, map[string]any{"user": map[string]any{"notes": "x"}}, [2]string{"x-api-key", readKey.Key})
	wantBabel(t, "read key posts", g.Do(t, "POST", "/v1/auth/user", body, h), 403, 8)
	wantBabel(t, "text body", g.Do(t, "POST", "/v1/auth/user", strings.NewReader("notes=x"),
		H{{"Authorization", "Bearer " + token}, {"Content-Type", "text/plain"}}), 415, 2)
	body, h = babelJSON(t, map[string]string{"username": "rita", "password": "wrong"})
	wantBabel(t, "wrong password", g.Do(t, "POST", "/v1/auth/login", body, h), 401, 4)
	if got := wantBabel(t, "GET after refusals", g.Do(t, "GET", "/v1/auth/user", nil, auth), 200, 0)["user"]; babelDiffer(t, got, updated) {
		t.Errorf("refused requests changed the user")
	}
	wantNothingUpstream(t, "Babel routes", up, mark)

	// The Babel token is a gateway token: proxied traffic carries rita.
	mark = up.Mark()
	if r := g.Do(t, "GET", "/app/licenses", nil, auth); r.Status != 200 {
		t.Errorf("proxied GET: %s", r)
	}
	seen := wantOneUpstream(t, "proxied GET", up, mark)
	wantIdentity(t, "proxied GET", seen, map[string]string{
		"x-auth-user": "rita", "x-auth-user-id": id, "x-auth-email": "rita@example.com",
		"x-auth-roles": "licensing", "x-auth-method": "bearer",
	})

	// Log out: the same token is refused on the very next request.
	body, h = babelJSON(t, map[string]any{}, auth...)
	wantBabel(t, "logout", g.Do(t, "POST", "/v1/auth/logout", body, h), 200, 0)
	mark = up.Mark()
	r := g.Do(t, "GET", "/v1/auth/user", nil, auth)
	wantBabel(t, "GET after logout", r, 401, 7)
	if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != challengeInvalid {
		t.Errorf("GET after logout: WWW-Authenticate %q", got)
	}
	if r := g.Do(t, "GET", "/app/licenses", nil, auth); r.Status != 401 {
		t.Errorf("proxied GET after logout: %s", r)
	}
	wantNothingUpstream(t, "after logout", up, mark)
}

// babelDiffer reports whether a and b differ as JSON.
func babelDiffer(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	return !bytes.Equal(ja, jb)
}
