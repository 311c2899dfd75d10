package caddymodule

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
)

// FuzzPlentymarketsLogin sends arbitrary bodies, content types and query
// strings to POST /rest/login through the real handler. The only account's
// password is random and in no seed, so every request carries garbage
// credentials: the answer is never a 5xx, never a 200, never the upstream.
func FuzzPlentymarketsLogin(f *testing.F) {
	g := newGateway(f, nil)
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	password := hex.EncodeToString(pw)
	g.addUser("alice", password, "admin")

	// The seeds (also checked in, in testdata/fuzz/FuzzPlentymarketsLogin).
	for _, s := range pmLoginSeeds {
		f.Add(s.ct, []byte(s.body), s.query)
	}

	f.Fuzz(func(t *testing.T, ct string, body []byte, query string) {
		g.t = t
		r := jsonRequest("POST", "/rest/login", string(body))
		r.Header.Del("Content-Type")
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		r.URL.RawQuery = query
		w := g.do(r)
		if w.Code >= 500 {
			t.Fatalf("status %d for a client's request: %s", w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			t.Fatalf("status 200 for garbage credentials: %s", w.Body)
		}
		if g.seen != nil {
			t.Fatalf("the upstream was reached from the login route")
		}
	})
}

// FuzzBabelUser posts arbitrary bodies to POST /v1/auth/user as a logged-in
// user. The answer is never a 5xx; the fields a client may never change
// (id, userName, roles, apiKeys, timestamps, the secrets, readOnly
// settings and every setting's identity) never change; and a refused
// request changes nothing at all.
func FuzzBabelUser(f *testing.F) {
	g := newGateway(f, &Handler{APIs: []APIMount{{Dialect: "babel", Prefix: "/v1/auth"}}})
	v := g.addUser("rita", "rita: babel password", "licensing", "support")
	g.addKey("rita", "read")
	g.addUser("sam", "sam: other password")
	for _, s := range []admin.SettingRequest{
		{Name: "theme", Value: "light"},
		{Name: "seats", Value: "5", ReadOnly: ptr(true)},
	} {
		if _, err := g.ops.SetSetting("rita", s); err != nil {
			f.Fatal(err)
		}
	}
	w := g.do(babelRequest("POST", "/login", `{"username":"rita","password":"rita: babel password"}`))
	var login struct{ Token string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &login) != nil || login.Token == "" {
		f.Fatalf("login: %d %s", w.Code, w.Body)
	}
	authz := "Bearer " + login.Token
	w = g.do(babelRequest("GET", "/user", "", "Authorization", authz))
	var current struct {
		User map[string]any `json:"user"`
	}
	if json.Unmarshal(w.Body.Bytes(), &current) != nil || current.User == nil {
		f.Fatalf("GET user: %d %s", w.Code, w.Body)
	}
	// Seeds: the client's round trip of what it read, and edits of it.
	roundTrip, _ := json.Marshal(map[string]any{"user": current.User})
	f.Add("application/json", roundTrip)
	for _, edit := range []func(u map[string]any){
		func(u map[string]any) { u["roles"] = []string{"admin"} },
		func(u map[string]any) { u["userName"] = "sam" },
		func(u map[string]any) { u["id"] = "usr_other" },
		func(u map[string]any) { u["createdAt"] = "2000-01-01T00:00:00Z" },
		func(u map[string]any) { u["apiKeys"] = []any{} },
		func(u map[string]any) { u["email"] = "sam@example.com" },
		func(u map[string]any) { u["settings"].([]any)[1].(map[string]any)["value"] = "500" },
		func(u map[string]any) { u["settings"].([]any)[1].(map[string]any)["readOnly"] = false },
		func(u map[string]any) { u["settings"].([]any)[0].(map[string]any)["id"] = 999 },
	} {
		var u map[string]any
		_ = json.Unmarshal(roundTrip, &struct{ User *map[string]any }{&u})
		edit(u)
		b, _ := json.Marshal(map[string]any{"user": u})
		f.Add("application/json", b)
	}
	// Seeds independent of this run's ids and times (also checked in, in
	// testdata/fuzz/FuzzBabelUser).
	for _, s := range babelUserSeeds {
		f.Add(s.ct, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		g.t = t
		before := snapshotUser(t, g, v.ID)
		r := babelRequest("POST", "/user", "", "Authorization", authz)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := g.do(r)
		after := snapshotUser(t, g, v.ID)
		if w.Code >= 500 {
			t.Fatalf("status %d for a client's request: %s", w.Code, w.Body)
		}
		if g.seen != nil {
			t.Fatalf("the upstream was reached from the user route")
		}
		if w.Code != http.StatusOK && !reflect.DeepEqual(before, after) {
			t.Fatalf("a refused request (%d %s) changed the user:\nbefore %+v\nafter  %+v", w.Code, w.Body, before.user, after.user)
		}
		if problem := immutableChanged(before, after); problem != "" {
			t.Fatalf("status %d changed %s: %s", w.Code, problem, w.Body)
		}
	})
}

// pmLoginSeeds are the checked-in seeds of FuzzPlentymarketsLogin:
// content type, body, query.
var pmLoginSeeds = []struct{ ct, body, query string }{
	{"application/json", `{"username":"alice","password":"wrong"}`, ""},
	{"application/json; charset=utf-8", `{"username":"alice@example.com","password":12345}`, ""},
	{"application/vnd.api+json", `{"username":"bob","password":"x","extra":[1,{"a":null}]}`, ""},
	{"application/json", `{"username":"alice","password":"x"}]`, ""},
	{"application/json", `{"username":"alice","username":"bob","password":"x"}`, ""},
	{"application/json", `[{"username":"alice"}]`, ""},
	{"application/json", `null`, "username=alice&password=x"},
	{"application/json", "", "username=alice&password=x"},
	{"application/x-www-form-urlencoded", "username=alice&password=x", ""},
	{"application/x-www-form-urlencoded", "username=alice&password=x", "username=bob"},
	{"application/x-www-form-urlencoded", "a=%zz&username=alice", ""},
	{"multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--xx\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--xx--\r\n", ""},
	{"multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nAAAA\r\n--xx--", ""},
	{"multipart/form-data", "--x\r\n\r\n", ""},
	{"text/plain", "username=alice&password=x", ""},
	{"", "", "username=alice&password=x"},
	{"", "x", ""},
	{"application/json; charset=\"", "{}", ""},
	{"application/json", `{"username":"\u0000","password":"\ud800"}`, ""},
	{"application/json", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), ""},
}

// babelUserSeeds are the checked-in seeds of FuzzBabelUser: content type,
// body.
var babelUserSeeds = []struct{ ct, body string }{
	{"application/json", `{"user":{"city":"Bonn","notes":"line one\nline two"}}`},
	{"application/json", `{"user":{"roles":null,"apiKeys":null,"id":null}}`},
	{"application/json", `{"user":{"roles":["admin"]}}`},
	{"application/json", `{"user":{"userName":"sam"}}`},
	{"application/json", `{"user":{"settings":[{"name":"theme","value":"dark"}]}}`},
	{"application/json", `{"user":{"settings":[{"name":"seats","value":"6"}]}}`},
	{"application/json", `{"user":{"settings":[{"name":"seats","readOnly":false}]}}`},
	{"application/json", `{"user":{"settings":[{"id":1,"value":"x"},{"id":1,"value":"y"}]}}`},
	{"application/json", `{"user":{"rank":1e400,"birthDate":"2024-02-30"}}`},
	{"application/json", `{"user":{"email":"RITA@example.com"}}`},
	{"application/json", `{"user":{"email":"sam@example.com"}}`},
	{"application/json", `{"user":{"email":""}}`},
	{"application/json", `{"user":{"email":"a b"}}`},
	{"application/json", `{"user":{"city":"a","city":"b"}}`},
	{"application/json", `{"user":[]}`},
	{"application/json", `{"user":"x"}`},
	{"application/json", `{}`},
	{"application/json", `null`},
	{"application/json-patch+json", `[{"op":"replace","path":"/roles","value":["admin"]}]`},
	{"text/plain", `{"user":{"city":"x"}}`},
	{"", `{"user":{"city":"x"}}`},
	{"application/json", `{"user":{"createdAt":"2000-01-01T00:00:00","lastDismissMessages":""}}`},
}

// userSnapshot is a copy of a user record and their keys.
type userSnapshot struct {
	user store.User
	keys []store.APIKey
}

func snapshotUser(t *testing.T, g *gateway, id string) userSnapshot {
	t.Helper()
	u, err := g.app.store.UserByID(id)
	if err != nil {
		t.Fatal(err)
	}
	s := userSnapshot{user: *u}
	s.user.Roles = slices.Clone(u.Roles)
	s.user.Settings = slices.Clone(u.Settings)
	keys, err := g.app.store.ListAPIKeys(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		s.keys = append(s.keys, *k)
	}
	return s
}

// immutableChanged names what a client changed that it never may.
func immutableChanged(before, after userSnapshot) string {
	a, b := before.user, after.user
	switch {
	case a.ID != b.ID:
		return "id"
	case a.Username != b.Username:
		return "userName"
	case !slices.Equal(a.Roles, b.Roles):
		return "roles"
	case !a.CreatedAt.Equal(b.CreatedAt):
		return "createdAt"
	case !a.LastDismissMessages.Equal(b.LastDismissMessages), !a.LastLogIn.Equal(b.LastLogIn):
		return "a server-kept timestamp"
	case a.Disabled != b.Disabled, a.PasswordHash != b.PasswordHash, a.PINHash != b.PINHash,
		a.TokenEpoch != b.TokenEpoch, a.SessionLimit != b.SessionLimit:
		return "an account field"
	case a.Lang != b.Lang, a.Timezone != b.Timezone:
		return "lang or timezone"
	case len(a.Settings) != len(b.Settings):
		return "the number of settings"
	case !reflect.DeepEqual(before.keys, after.keys):
		return "apiKeys"
	}
	for i := range a.Settings {
		sa, sb := a.Settings[i], b.Settings[i]
		if sa.ReadOnly && sa.Value != sb.Value {
			return "a readOnly setting's value"
		}
		sa.Value, sb.Value = "", ""
		if sa != sb {
			return "a setting other than its value"
		}
	}
	return ""
}
