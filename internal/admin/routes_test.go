package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAdminAPIStatuses(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		method, path, body string
		status             int
		errorHas           string
	}{
		{"POST", "/authgate/users", `{"username":"ann","password":"pw-ann-1234"}`, 201, ""},
		{"POST", "/authgate/users", `{"username":"ANN","password":"pw-ann-1234"}`, 409, `username "ANN" is already in use`},
		{"POST", "/authgate/users", `{"username":"bo"}`, 400, "password is required"},
		{"POST", "/authgate/users", `{"username":"bo","password":"x","admin":true}`, 400, "unknown field"},
		{"POST", "/authgate/users", `{"username":`, 400, "request body"},
		{"GET", "/authgate/users/nobody", "", 404, `no user "nobody"`},
		{"PATCH", "/authgate/users/ann", `{"birthDate":"yesterday"}`, 400, "birth date"},
		{"PATCH", "/authgate/users/ann", `{"city":"Bonn"}`, 200, ""},
		{"PATCH", "/authgate/users/ann", `{"city":"Bonn","shoeSize":44}`, 400, `request body: json: unknown field "shoeSize"`},
		{"PATCH", "/authgate/users/ann", `{"city":5}`, 400, "UserChanges.city of type string"},
		{"PATCH", "/authgate/users/ann", `{"rank":"high"}`, 400, "UserChanges.rank of type int"},
		{"PATCH", "/authgate/users/ann", `[]`, 400, "request body: json: cannot unmarshal array"},
		{"PATCH", "/authgate/users/ann", `{}`, 400, "nothing to change"},
		{"PATCH", "/authgate/users/ann", `null`, 400, "nothing to change"},
		{"PATCH", "/authgate/users/ann", `{"city":null}`, 400, "nothing to change"},
		{"PATCH", "/authgate/users/ann", `{"city":"a","city":"b"}`, 400, "same member twice"},
		{"POST", "/authgate/keys", `{"user":"ann","name":"k","permissions":"read,fly"}`, 400, "unknown permission"},
		{"POST", "/authgate/keys", `{"user":"ghost","name":"k"}`, 404, "no user"},
		{"POST", "/authgate/keys", `{"user":"ann","name":"k","expiresIn":"soon"}`, 400, `request body: time: invalid duration "soon"`},
		{"POST", "/authgate/keys/key_nope/revoke", "", 404, "no API key"},
		{"POST", "/authgate/sessions/ses_nope/revoke", "", 404, "no session"},
		{"DELETE", "/authgate/users/ann/settings/nope", "", 404, "no setting"},
		{"GET", "/authgate/nothing-here", "", 404, "no authgate admin route"},
		{"PUT", "/authgate/users", "", 404, "no authgate admin route PUT"},
		{"POST", "/authgate/keys/revoke", `{"key":"ag_not-a-key-we-know"}`, 404, "no API key matches"},
		{"POST", "/authgate/users", `{"username":"ann","username":"eve","password":"pw-eve-1234"}`, 400, "same member twice"},
		{"POST", "/authgate/signing-keys/rotate", "", 200, ""},
	}
	for _, c := range cases {
		w := e.do(c.method, c.path, c.body)
		if w.Code != c.status {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, w.Code, w.Body, c.status)
			continue
		}
		if c.errorHas != "" {
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, c.errorHas) {
				t.Errorf("%s %s %s: error %q, want it to contain %q", c.method, c.path, c.body, w.Body, c.errorHas)
			}
		}
	}
}

// Serve returns what ServeHTTP writes, unwritten, and writes the rest
// alike.
func TestServeReturnsFailures(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path, ct, body string
		status                 int
	}{
		{"GET", "/authgate/users/nobody", "", "", 404},
		{"POST", "/authgate/users", "text/plain", `{}`, 415},
		{"POST", "/authgate/users", "application/json", `{"username":"ann","password":"pw-ann-1234"}`, 201},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ct)
		w := httptest.NewRecorder()
		err := e.h.Serve(w, r)
		if c.status < 400 {
			if err != nil || w.Code != c.status {
				t.Errorf("%s %s: %d %v", c.method, c.path, w.Code, err)
			}
			continue
		}
		if err == nil || err.Status != c.status || w.Body.Len() != 0 || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s %s: Serve returned %v and wrote %q", c.method, c.path, err, w.Body)
		}
		w = httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		want, _ := json.Marshal(map[string]string{"error": err.Msg})
		if w.Code != c.status || w.Body.String() != string(want)+"\n" {
			t.Errorf("%s %s: ServeHTTP wrote %d %q, want %d %s", c.method, c.path, w.Code, w.Body, c.status, want)
		}
	}
}

// The user object is flat: the profile fields are members of it, under
// their names, left out when empty.
func TestUserJSON(t *testing.T) {
	e := newEnv(t)
	e.addUser("una", "pw-una-123")
	w := e.do("PATCH", "/authgate/users/una", `{"firstName":"Una","CITY":"Rome","notes":"a\nb","rank":2}`)
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := map[string]any{"username": "una", "email": "una@example.com", "firstName": "Una", "city": "Rome", "notes": "a\nb", "rank": 2.0, "sessionLimit": 0.0, "settings": 0.0, "hasPin": false, "disabled": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("member %s = %#v, want %#v", k, got[k], v)
		}
	}
	for _, absent := range []string{"lastName", "lastLogIn", "Profile", "profile", "CITY"} {
		if _, ok := got[absent]; ok {
			t.Errorf("member %s is present: %s", absent, w.Body)
		}
	}
	var v UserView
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Profile["firstName"] != "Una" || v.Profile["city"] != "Rome" || v.Profile["email"] != "una@example.com" || len(v.Profile) != 4 || v.Rank != 2 {
		t.Errorf("decoded: %+v", v)
	}
	again, _ := json.Marshal(v)
	if string(again)+"\n" != w.Body.String() {
		t.Errorf("a round trip changed the user:\n%s\n%s", again, w.Body)
	}

	// The changes a client sends are flat too, and read back the same.
	c := UserChanges{Profile: map[string]string{"lastName": "", "phoneNumber": "+39"}, SessionLimit: ptr(3)}
	raw, _ := json.Marshal(c)
	if string(raw) != `{"sessionLimit":3,"phoneNumber":"+39","lastName":""}` {
		t.Errorf("changes as JSON: %s", raw)
	}
	var back UserChanges
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Profile) != 2 || back.Profile["phoneNumber"] != "+39" || *back.SessionLimit != 3 {
		t.Errorf("changes read back: %+v %v", back, err)
	}
	if raw, _ := json.Marshal(UserChanges{}); string(raw) != "{}" {
		t.Errorf("no changes as JSON: %s", raw)
	}
}

// A key and its client secret are returned once, at creation, and never by
// any other route; no route returns a password or PIN hash.
func TestAdminAPINeverReturnsSecrets(t *testing.T) {
	e := newEnv(t)
	if w := e.do("POST", "/authgate/users", `{"username":"cy","password":"pw-cy-123456"}`); w.Code != 201 {
		t.Fatal(w.Code, w.Body)
	}
	e.do("PUT", "/authgate/users/cy/pin", `{"pin":"4711"}`)
	w := e.do("POST", "/authgate/keys", `{"user":"cy","name":"k","clientSecret":true,"expiresIn":"720h"}`)
	var created CreatedKey
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || w.Code != 201 || created.Key == "" || created.ClientSecret == "" {
		t.Fatalf("create key: %d, key %v, secret %v", w.Code, created.Key != "", created.ClientSecret != "")
	}
	if created.ExpiresAt.Sub(time.Now()) < 719*time.Hour {
		t.Errorf("expiresIn \"720h\" gave expiry %v", created.ExpiresAt)
	}
	for body, want := range map[string]time.Duration{`"30d"`: 30 * 24 * time.Hour, `"1.5d"`: 36 * time.Hour, "3600000000000": time.Hour} {
		w := e.do("POST", "/authgate/keys", `{"user":"cy","name":"k","expiresIn":`+body+`}`)
		var k CreatedKey
		if err := json.Unmarshal(w.Body.Bytes(), &k); err != nil || w.Code != 201 || k.ExpiresAt.Sub(k.CreatedAt) != want {
			t.Errorf("expiresIn %s: %d, lifetime %v, want %v", body, w.Code, k.ExpiresAt.Sub(k.CreatedAt), want)
		}
	}
	u, _ := e.st.UserByLogin("cy")
	for _, path := range []string{"/authgate/users", "/authgate/users/cy", "/authgate/keys", "/authgate/keys?user=cy", "/authgate/sessions", "/authgate/signing-keys"} {
		body := e.do("GET", path, "").Body.String()
		for what, s := range map[string]string{"key": created.Key, "client secret": created.ClientSecret, "password hash": u.PasswordHash, "PIN hash": u.PINHash} {
			if strings.Contains(body, s) {
				t.Errorf("GET %s returns the %s", path, what)
			}
		}
		if strings.Contains(body, "argon2id") || strings.Contains(body, `"private"`) {
			t.Errorf("GET %s returns hash or key material", path)
		}
	}
	if got := e.do("GET", "/authgate/backup", ""); got.Code != http.StatusOK || got.Body.Len() == 0 || got.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("backup: %d, %d bytes, %q", got.Code, got.Body.Len(), got.Header().Get("Content-Type"))
	}
}

// Write routes take application/json only, body or not: a web page can
// send a cross-site form or text/plain POST without a preflight, never a
// JSON one (defence in depth behind Caddy's origin checks).
func TestAdminWritesNeedJSON(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, ct, body string }{
		{"POST", "/authgate/users", "", `{"username":"eve","password":"pw-eve-1234"}`},
		{"POST", "/authgate/users", "text/plain", `{"username":"eve","password":"pw-eve-1234"}`},
		{"POST", "/authgate/users", "application/x-www-form-urlencoded", "username=eve&password=pw-eve-1234"},
		{"POST", "/authgate/users", "multipart/form-data; boundary=x", "--x--"},
		{"POST", "/authgate/signing-keys/rotate", "text/plain", ""},
		{"POST", "/authgate/keys/key_x/revoke", "", ""},
		{"DELETE", "/authgate/users/eve", "text/plain", ""},
		{"PATCH", "/authgate/users/eve", "application/jsonx", `{"city":"x"}`},
		{"POST", "/authgate/import/users", "text/plain", `{"format":"htpasswd","content":"x"}`},
	} {
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s as %q: %d %s, want 415", c.method, c.path, c.ct, w.Code, w.Body)
		}
	}
	if users, _ := e.st.ListUsers(); len(users) != 0 {
		t.Errorf("a refused write created %d users", len(users))
	}
	// With the right type (and a charset) it works.
	r := httptest.NewRequest("POST", "/authgate/users", strings.NewReader(`{"username":"eve","password":"pw-eve-1234"}`))
	r.Header.Set("Content-Type", "Application/JSON; charset=utf-8")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		t.Errorf("JSON write: %d %s", w.Code, w.Body)
	}
}

// A backend that cannot be had fails every route, the backup too.
func TestBackendFailure(t *testing.T) {
	h := NewHandler(func() (Backend, error) { return Backend{}, &Error{http.StatusServiceUnavailable, "not running"} })
	for _, path := range []string{"/authgate/users", "/authgate/backup"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != 503 || w.Body.String() != `{"error":"not running"}`+"\n" {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
}
