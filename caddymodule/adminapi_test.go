package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// adminDo serves one admin request in-process on g's store.
func adminDo(g *gateway, method, path, body string) *httptest.ResponseRecorder {
	h := newAdminHandler(localBackend(g.app.store, time.Now))
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if method != "GET" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAdminAPIStatuses(t *testing.T) {
	g := newGateway(t, nil)
	cases := []struct {
		method, path, body string
		status             int
		errorHas           string
	}{
		{"POST", "/authgate/users", `{"username":"ann","password":"pw-ann-1234"}`, 201, ""},
		{"POST", "/authgate/users", `{"username":"ANN","password":"pw-ann-1234"}`, 409, "already exists"},
		{"POST", "/authgate/users", `{"username":"bo"}`, 400, "password is required"},
		{"POST", "/authgate/users", `{"username":"bo","password":"x","admin":true}`, 400, "unknown field"},
		{"POST", "/authgate/users", `{"username":`, 400, "request body"},
		{"GET", "/authgate/users/nobody", "", 404, `no user "nobody"`},
		{"PATCH", "/authgate/users/ann", `{"birthDate":"yesterday"}`, 400, "birth date"},
		{"PATCH", "/authgate/users/ann", `{"city":"Bonn"}`, 200, ""},
		{"POST", "/authgate/keys", `{"user":"ann","name":"k","permissions":"read,fly"}`, 400, "unknown permission"},
		{"POST", "/authgate/keys", `{"user":"ghost","name":"k"}`, 404, "no user"},
		{"POST", "/authgate/keys/key_nope/revoke", "", 404, "no API key"},
		{"POST", "/authgate/sessions/ses_nope/revoke", "", 404, "no session"},
		{"DELETE", "/authgate/users/ann/settings/nope", "", 404, "no setting"},
		{"GET", "/authgate/nothing-here", "", 404, "no authgate admin route"},
		{"PUT", "/authgate/users", "", 404, "no authgate admin route PUT"},
		{"POST", "/authgate/keys/revoke", `{"key":"ag_not-a-key-we-know"}`, 404, "no API key matches"},
		{"POST", "/authgate/users", `{"username":"ann","username":"eve","password":"pw-eve-1234"}`, 400, "same member twice"},
	}
	for _, c := range cases {
		w := adminDo(g, c.method, c.path, c.body)
		if w.Code != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, w.Code, w.Body, c.status)
			continue
		}
		if c.errorHas != "" {
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, c.errorHas) {
				t.Errorf("%s %s: error %q, want it to contain %q", c.method, c.path, w.Body, c.errorHas)
			}
		}
	}
}

// A key and its client secret are returned once, at creation, and never by
// any other route; no route returns a password or PIN hash.
func TestAdminAPINeverReturnsSecrets(t *testing.T) {
	g := newGateway(t, nil)
	if w := adminDo(g, "POST", "/authgate/users", `{"username":"cy","password":"pw-cy-123456"}`); w.Code != 201 {
		t.Fatal(w.Code, w.Body)
	}
	adminDo(g, "PUT", "/authgate/users/cy/pin", `{"pin":"4711"}`)
	w := adminDo(g, "POST", "/authgate/keys", `{"user":"cy","name":"k","clientSecret":true,"expiresIn":"720h"}`)
	var created createdKey
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || w.Code != 201 || created.Key == "" || created.ClientSecret == "" {
		t.Fatalf("create key: %d, key %v, secret %v", w.Code, created.Key != "", created.ClientSecret != "")
	}
	if created.ExpiresAt.Sub(time.Now()) < 719*time.Hour {
		t.Errorf("expiresIn \"720h\" gave expiry %v", created.ExpiresAt)
	}
	u, _ := g.app.store.UserByLogin("cy")
	for _, path := range []string{"/authgate/users", "/authgate/users/cy", "/authgate/keys", "/authgate/keys?user=cy", "/authgate/sessions", "/authgate/signing-keys"} {
		body := adminDo(g, "GET", path, "").Body.String()
		for what, s := range map[string]string{"key": created.Key, "client secret": created.ClientSecret, "password hash": u.PasswordHash, "PIN hash": u.PINHash} {
			if strings.Contains(body, s) {
				t.Errorf("GET %s returns the %s", path, what)
			}
		}
		if strings.Contains(body, "argon2id") || strings.Contains(body, `"private"`) {
			t.Errorf("GET %s returns hash or key material", path)
		}
	}
	if got := adminDo(g, "GET", "/authgate/backup", ""); got.Code != http.StatusOK || got.Body.Len() == 0 || got.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("backup: %d, %d bytes, %q", got.Code, got.Body.Len(), got.Header().Get("Content-Type"))
	}
}

// Write routes take application/json only, body or not: a web page can
// send a cross-site form or text/plain POST without a preflight, never a
// JSON one (defence in depth behind Caddy's origin checks).
func TestAdminWritesNeedJSON(t *testing.T) {
	g := newGateway(t, nil)
	h := newAdminHandler(localBackend(g.app.store, time.Now))
	for _, c := range []struct{ method, path, ct, body string }{
		{"POST", "/authgate/users", "", `{"username":"eve","password":"pw-eve-1234"}`},
		{"POST", "/authgate/users", "text/plain", `{"username":"eve","password":"pw-eve-1234"}`},
		{"POST", "/authgate/users", "application/x-www-form-urlencoded", "username=eve&password=pw-eve-1234"},
		{"POST", "/authgate/users", "multipart/form-data; boundary=x", "--x--"},
		{"POST", "/authgate/signing-keys/rotate", "text/plain", ""},
		{"POST", "/authgate/keys/key_x/revoke", "", ""},
		{"DELETE", "/authgate/users/eve", "text/plain", ""},
		{"PATCH", "/authgate/users/eve", "application/jsonx", `{"city":"x"}`},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s as %q: %d %s, want 415", c.method, c.path, c.ct, w.Code, w.Body)
		}
	}
	if users, _ := g.app.store.ListUsers(); len(users) != 0 {
		t.Errorf("a refused write created %d users", len(users))
	}
	// With the right type (and a charset) it works.
	r := httptest.NewRequest("POST", "/authgate/users", strings.NewReader(`{"username":"eve","password":"pw-eve-1234"}`))
	r.Header.Set("Content-Type", "Application/JSON; charset=utf-8")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		t.Errorf("JSON write: %d %s", w.Code, w.Body)
	}
}
