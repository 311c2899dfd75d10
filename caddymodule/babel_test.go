package caddymodule

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/internal/dialect/babel"
	"github.com/authgate/authgate/store"
)

// newBabelGateway mounts both dialects, as a real config would.
func newBabelGateway(t *testing.T) *gateway {
	t.Helper()
	return newGateway(t, &Handler{APIs: []APIMount{
		{Dialect: "babel", Prefix: "/v1/auth"},
		{Dialect: "plentymarkets", Prefix: "/rest"},
	}})
}

// babelRequest builds a request with a JSON body (none when body is "")
// and headers given as name, value pairs.
func babelRequest(method, route, body string, hdr ...string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, "/v1/auth"+route, nil)
	} else {
		r = httptest.NewRequest(method, "/v1/auth"+route, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func bearerHdr(token string) []string { return []string{"Authorization", "Bearer " + token} }
func key(k string) []string           { return []string{"X-Api-Key", k} }

// expectEnvelope asserts a Babel response: status, JSON and no-store
// headers, and an envelope with success, code and a message. It returns the
// whole body as a map.
func expectEnvelope(t *testing.T, g *gateway, w *httptest.ResponseRecorder, status, code int) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d (%s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", w.Body)
	}
	if m["success"] != (code == 0) {
		t.Errorf("success = %v, want %v (%s)", m["success"], code == 0, w.Body)
	}
	if m["code"] != float64(code) {
		t.Errorf("code = %v, want %d (%s)", m["code"], code, w.Body)
	}
	if msg, ok := m["message"].(string); !ok || msg == "" {
		t.Errorf("message missing or empty: %s", w.Body)
	}
	if code != 0 && g.seen != nil {
		t.Errorf("the upstream was reached on a refused request")
	}
	return m
}

func (g *gateway) babelLogin(t *testing.T, user, password string) string {
	t.Helper()
	w := g.do(babelRequest("POST", "/login", `{"username":"`+user+`","password":"`+password+`"}`))
	m := expectEnvelope(t, g, w, 200, 0)
	token, _ := m["token"].(string)
	if strings.Count(token, ".") != 2 || m["expiresIn"] != float64(86400) {
		t.Fatalf("login: token of %d chars, expiresIn %v", len(token), m["expiresIn"])
	}
	return token
}

// babelUser GETs the caller's user object.
func (g *gateway) babelUser(t *testing.T, cred []string) map[string]any {
	t.Helper()
	m := expectEnvelope(t, g, g.do(babelRequest("GET", "/user", "", cred...)), 200, 0)
	u, ok := m["user"].(map[string]any)
	if !ok {
		t.Fatalf("user is %T, want an object", m["user"])
	}
	return u
}

// postUser POSTs {"user": u}.
func postUser(u any, cred []string) *http.Request {
	b, err := json.Marshal(map[string]any{"user": u})
	if err != nil {
		panic(err)
	}
	return babelRequest("POST", "/user", string(b), cred...)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// addSettings gives the user a writable and a readOnly setting.
func (g *gateway) addSettings(t *testing.T, userID string) {
	t.Helper()
	_, err := g.app.store.UpdateUser(userID, func(u *store.User) error {
		u.Settings = []store.Setting{
			{ID: 1, Category: "ui", Group: "display", Name: "theme", Value: "light", Type: "string", Description: "colour scheme", UserID: userID},
			{ID: 2, Category: "licensing", Group: "limits", Name: "seats", Value: "5", Type: "int", Description: "licensed seats", ReadOnly: true},
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBabelClientWalk is what a Babel management client does: log in, read
// the user, edit a field and post the whole object back, read it again,
// log out.
func TestBabelClientWalk(t *testing.T) {
	g := newBabelGateway(t)
	v := g.addUser("alice", "pw-alice-123", "admin", "ops")
	g.addSettings(t, v.ID)

	token := g.babelLogin(t, "alice", "pw-alice-123")
	u := g.babelUser(t, bearerHdr(token))
	if u["id"] != v.ID || u["userName"] != "alice" || u["email"] != "alice@example.com" {
		t.Fatalf("user: %v", u)
	}

	u["firstName"] = "Alice"
	u["settings"].([]any)[0].(map[string]any)["value"] = "dark"
	// Timestamps are shown to the millisecond: let one pass, or the update
	// could carry the same updatedAt as the read.
	time.Sleep(2 * time.Millisecond)
	m := expectEnvelope(t, g, g.do(postUser(u, bearerHdr(token))), 200, 0)
	updated := m["user"].(map[string]any)
	if updated["firstName"] != "Alice" || updated["settings"].([]any)[0].(map[string]any)["value"] != "dark" {
		t.Errorf("POST user answered %v", updated)
	}
	if updated["updatedAt"] == u["updatedAt"] {
		t.Errorf("updatedAt did not move")
	}

	again := g.babelUser(t, bearerHdr(token))
	if again["firstName"] != "Alice" || again["settings"].([]any)[0].(map[string]any)["value"] != "dark" {
		t.Errorf("GET after POST: %v", again)
	}
	if mustJSON(t, again) != mustJSON(t, updated) {
		t.Errorf("GET differs from the POST answer:\n%v\n%v", again, updated)
	}

	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", `{}`, bearerHdr(token)...)), 200, 0)
	w := g.do(babelRequest("GET", "/user", "", bearerHdr(token)...))
	expectEnvelope(t, g, w, 401, babel.CodeInvalidToken)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate", error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
}

// TestBabelUserObject checks every member of the user object and its items.
func TestBabelUserObject(t *testing.T) {
	g := newBabelGateway(t)
	v := g.addUser("bea", "pw-bea-1234", "staff")
	g.addSettings(t, v.ID)
	created, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "bea", Name: "ci", Permissions: "read,create", ClientSecret: true, Description: "build server"})
	if err != nil {
		t.Fatal(err)
	}
	dismissed := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if _, err := g.app.store.UpdateUser(v.ID, func(u *store.User) error {
		u.PhoneNumber, u.Title, u.FirstName, u.LastName = "+49 1", "Dr.", "Bea", "Berg"
		u.Department, u.BirthDate, u.Rank, u.Image = "R&D", "1980-01-02", 3, "https://img/b.png"
		u.Address, u.PostalCode, u.Region, u.City = "Hauptstr. 1", "10115", "BE", "Berlin"
		u.Country, u.CountryCode, u.Mobile, u.Notes, u.CustomerID = "Germany", "DE", "+49 2", "vip", "C-42"
		u.LastDismissMessages = dismissed
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	u := g.babelUser(t, key(created.Key))
	want := map[string]any{
		"id": v.ID, "userName": "bea", "email": "bea@example.com", "phoneNumber": "+49 1",
		"title": "Dr.", "firstName": "Bea", "lastName": "Berg", "department": "R&D",
		"birthDate": "1980-01-02", "rank": float64(3), "image": "https://img/b.png",
		"address": "Hauptstr. 1", "postalCode": "10115", "region": "BE", "city": "Berlin",
		"country": "Germany", "countryCode": "DE", "mobile": "+49 2", "notes": "vip",
		"customerId": "C-42", "roles": []any{"staff"},
		"lastDismissMessages": "2024-05-06T07:08:09.123Z",
		"lastLogIn":           nil, // never logged in: the key did not
	}
	for k, wv := range want {
		if mustJSON(t, u[k]) != mustJSON(t, wv) {
			t.Errorf("%s = %v, want %v", k, u[k], wv)
		}
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		s, _ := u[k].(string)
		if _, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") {
			t.Errorf("%s = %v, want an RFC 3339 UTC timestamp", k, u[k])
		}
	}
	members := []string{"id", "userName", "email", "phoneNumber", "title", "firstName", "lastName",
		"department", "birthDate", "createdAt", "updatedAt", "lastDismissMessages", "lastLogIn",
		"rank", "image", "address", "postalCode", "region", "city", "country", "countryCode",
		"mobile", "notes", "customerId", "roles", "apiKeys", "settings"}
	if got := slices.Sorted(maps.Keys(u)); !slices.Equal(got, slices.Sorted(slices.Values(members))) {
		t.Errorf("user members %v, want %v", got, members)
	}

	stored, err := g.app.store.APIKeyByID(created.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := u["apiKeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("apiKeys: %v", keys)
	}
	wantKey := map[string]any{
		"id": created.ID, "name": "ci", "key": stored.Hint, "clientSecret": stored.ClientSecretHint,
		"createdDate": stored.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "expireDate": nil,
		"ownerId": v.ID, "revoked": false, "permissions": float64(store.PermRead | store.PermCreate),
		"description": "build server",
	}
	if got := keys[0].(map[string]any); mustJSON(t, got) != mustJSON(t, wantKey) {
		t.Errorf("apiKeys[0] = %v\n want %v", got, wantKey)
	}
	if stored.ClientSecretHint == "" || stored.Hint == "" {
		t.Fatalf("the key has no hints to show")
	}

	wantSettings := []any{
		map[string]any{"id": 1, "category": "ui", "group": "display", "name": "theme", "value": "light",
			"type": "string", "description": "colour scheme", "readOnly": false, "userId": v.ID},
		map[string]any{"id": 2, "category": "licensing", "group": "limits", "name": "seats", "value": "5",
			"type": "int", "description": "licensed seats", "readOnly": true, "userId": v.ID},
	}
	if mustJSON(t, u["settings"]) != mustJSON(t, wantSettings) {
		t.Errorf("settings = %v\n want %v", u["settings"], wantSettings)
	}
}

// TestBabelEmptyUser: every member is present even when empty, and the
// arrays are [] rather than null.
func TestBabelEmptyUser(t *testing.T) {
	g := newBabelGateway(t)
	if _, err := g.ops.AddUser(admin.AddUserRequest{Username: "bare", Password: "pw-bare-123"}); err != nil {
		t.Fatal(err)
	}
	w := g.do(babelRequest("GET", "/user", "", bearerHdr(g.babelLogin(t, "bare", "pw-bare-123"))...))
	expectEnvelope(t, g, w, 200, 0)
	for _, frag := range []string{`"email":""`, `"roles":[]`, `"apiKeys":[]`, `"settings":[]`, `"lastDismissMessages":null`, `"rank":0`, `"notes":""`} {
		if !strings.Contains(w.Body.String(), frag) {
			t.Errorf("body lacks %s: %s", frag, w.Body)
		}
	}
}

// TestBabelSecretsNeverShown: the key and client secret appear nowhere in
// the profile, only their masked hints.
func TestBabelSecretsNeverShown(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("cid", "pw-cid-1234")
	k, err := g.ops.CreateKey(admin.CreateKeyRequest{User: "cid", Name: "full", ClientSecret: true})
	if err != nil || k.ClientSecret == "" {
		t.Fatalf("createKey: %v (client secret of %d chars)", err, len(k.ClientSecret))
	}
	token := g.babelLogin(t, "cid", "pw-cid-1234")
	for _, cred := range [][]string{bearerHdr(token), key(k.Key)} {
		for _, method := range []string{"GET", "POST"} {
			body := ""
			if method == "POST" {
				body = `{"user":{"notes":"x"}}`
			}
			w := g.do(babelRequest(method, "/user", body, cred...))
			expectEnvelope(t, g, w, 200, 0)
			for _, secret := range []string{k.Key, k.ClientSecret, store.DigestOf(k.Key).String(), store.DigestOf(k.ClientSecret).String()} {
				if strings.Contains(w.Body.String(), secret) {
					t.Errorf("SECURITY: %s user shows a secret or its digest", method)
				}
			}
		}
	}
}

// TestBabelEditEveryField: each editable member is written and read back.
func TestBabelEditEveryField(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("dan", "pw-dan-1234")
	token := g.babelLogin(t, "dan", "pw-dan-1234")
	edit := map[string]any{
		"email": "DAN@Example.com", "phoneNumber": "1", "title": "2", "firstName": "3",
		"lastName": "4", "department": "5", "birthDate": "1990-03-04", "rank": 7, "image": "8",
		"address": "9", "postalCode": "10", "region": "11", "city": "12", "country": "13",
		"countryCode": "14", "mobile": "15", "notes": "16", "customerId": "17",
	}
	expectEnvelope(t, g, g.do(postUser(edit, bearerHdr(token))), 200, 0)
	u := g.babelUser(t, bearerHdr(token))
	for k, v := range edit {
		if mustJSON(t, u[k]) != mustJSON(t, v) {
			t.Errorf("%s = %v, want %v", k, u[k], v)
		}
	}
	// Absent members stay; the email, respelled, is still the login.
	expectEnvelope(t, g, g.do(postUser(map[string]any{"notes": "only"}, bearerHdr(token))), 200, 0)
	if u := g.babelUser(t, bearerHdr(token)); u["firstName"] != "3" || u["notes"] != "only" {
		t.Errorf("absent member changed: %v", u)
	}
	g.babelLogin(t, "dan@example.com", "pw-dan-1234")
}

// TestBabelUnchangedPostKeepsUpdatedAt: posting back what was read writes
// nothing, so the same copy may be posted again.
func TestBabelUnchangedPostKeepsUpdatedAt(t *testing.T) {
	g := newBabelGateway(t)
	v := g.addUser("eve", "pw-eve-1234", "a")
	g.addSettings(t, v.ID)
	g.addKey("eve", "read")
	token := g.babelLogin(t, "eve", "pw-eve-1234")
	u := g.babelUser(t, bearerHdr(token))
	for range 2 {
		m := expectEnvelope(t, g, g.do(postUser(u, bearerHdr(token))), 200, 0)
		if got := m["user"].(map[string]any); mustJSON(t, got) != mustJSON(t, u) {
			t.Errorf("unchanged POST changed the user:\n%v\n%v", got, u)
		}
	}
}

// TestBabelImmutableFields: changing an immutable member is 400 and changes
// nothing; echoing it, in another timestamp form, is fine.
func TestBabelImmutableFields(t *testing.T) {
	g := newBabelGateway(t)
	v := g.addUser("fay", "pw-fay-1234", "staff")
	g.addKey("fay", "read")
	token := g.babelLogin(t, "fay", "pw-fay-1234")
	orig := g.babelUser(t, bearerHdr(token))

	changes := map[string]any{
		"id":                  "usr_other",
		"userName":            "fay2",
		"roles":               []string{"staff", "admin"},
		"apiKeys":             []any{},
		"createdAt":           "2001-01-01T00:00:00Z",
		"lastDismissMessages": "2001-01-01T00:00:00Z",
	}
	keyRenamed := slices.Clone(orig["apiKeys"].([]any))
	k := maps.Clone(keyRenamed[0].(map[string]any))
	k["name"], keyRenamed[0] = "renamed", k
	for name, value := range changes {
		t.Run(name, func(t *testing.T) {
			u := maps.Clone(orig)
			u[name] = value
			u["firstName"] = "changed along"
			w := g.do(postUser(u, bearerHdr(token)))
			m := expectEnvelope(t, g, w, 400, babel.CodeBadRequest)
			if !strings.Contains(m["message"].(string), name) {
				t.Errorf("message %q does not name %s", m["message"], name)
			}
			if now := g.babelUser(t, bearerHdr(token)); mustJSON(t, now) != mustJSON(t, orig) {
				t.Errorf("the user changed:\n%v\n%v", now, orig)
			}
		})
	}
	// updatedAt and lastLogIn move on their own: a stale copy of them is
	// ignored, not refused, and never written.
	t.Run("stale server-managed timestamps", func(t *testing.T) {
		u := maps.Clone(orig)
		u["updatedAt"], u["lastLogIn"] = "2001-01-01T00:00:00Z", "2001-01-01T00:00:00Z"
		expectEnvelope(t, g, g.do(postUser(u, bearerHdr(token))), 200, 0)
		now := g.babelUser(t, bearerHdr(token))
		if now["lastLogIn"] != orig["lastLogIn"] || now["updatedAt"] == "2001-01-01T00:00:00.000Z" {
			t.Errorf("posted timestamps were written: lastLogIn %v (was %v), updatedAt %v", now["lastLogIn"], orig["lastLogIn"], now["updatedAt"])
		}
	})
	t.Run("apiKeys item renamed", func(t *testing.T) {
		u := maps.Clone(orig)
		u["apiKeys"] = keyRenamed
		expectEnvelope(t, g, g.do(postUser(u, bearerHdr(token))), 400, babel.CodeBadRequest)
	})

	t.Run("echoed in other forms", func(t *testing.T) {
		u := maps.Clone(orig)
		created, _ := time.Parse(time.RFC3339, orig["createdAt"].(string))
		u["createdAt"] = created.In(time.FixedZone("", 2*3600)).Format(time.RFC3339) // other zone, seconds
		u["updatedAt"] = strings.TrimSuffix(orig["updatedAt"].(string), "Z")         // .NET zoneless
		u["lastDismissMessages"] = "0001-01-01T00:00:00"                             // .NET DateTime.MinValue
		u["roles"] = []string{"staff"}                                               // same set
		u["id"], u["userName"], u["apiKeys"] = v.ID, "fay", orig["apiKeys"]          // same values
		delete(u, "lastLogIn")                                                       // absent
		expectEnvelope(t, g, g.do(postUser(u, bearerHdr(token))), 200, 0)
	})
}

// TestBabelSettings: values of existing writable settings change; readOnly
// ones, unknown ones and their other members do not.
func TestBabelSettings(t *testing.T) {
	g := newBabelGateway(t)
	v := g.addUser("gil", "pw-gil-1234")
	g.addSettings(t, v.ID)
	token := g.babelLogin(t, "gil", "pw-gil-1234")
	orig := g.babelUser(t, bearerHdr(token))

	refused := map[string]struct {
		settings string
		status   int
		code     int
	}{
		"readOnly value":         {`[{"id":2,"value":"500"}]`, 403, babel.CodeForbidden},
		"readOnly by name":       {`[{"name":"seats","value":"500"}]`, 403, babel.CodeForbidden},
		"readOnly with writable": {`[{"id":1,"value":"dark"},{"id":2,"value":"500"}]`, 403, babel.CodeForbidden},
		"unknown id":             {`[{"id":99,"value":"x"}]`, 400, babel.CodeBadRequest},
		"unknown name":           {`[{"name":"nope","value":"x"}]`, 400, babel.CodeBadRequest},
		"neither id nor name":    {`[{"value":"x"}]`, 400, babel.CodeBadRequest},
		"rename":                 {`[{"id":1,"name":"scheme"}]`, 400, babel.CodeBadRequest},
		"make writable":          {`[{"id":2,"readOnly":false,"value":"500"}]`, 400, babel.CodeBadRequest},
		"other owner":            {`[{"id":1,"userId":"usr_x"}]`, 400, babel.CodeBadRequest},
		"named twice":            {`[{"id":1,"value":"a"},{"name":"theme","value":"b"}]`, 400, babel.CodeBadRequest},
		"value not a string":     {`[{"id":1,"value":5}]`, 400, babel.CodeBadRequest},
		"control char value":     {`[{"id":1,"value":"a\u0000"}]`, 400, babel.CodeBadRequest},
		"not an array":           {`{"id":1}`, 400, babel.CodeBadRequest},
		"null item":              {`[null]`, 400, babel.CodeBadRequest},
	}
	for name, c := range refused {
		t.Run(name, func(t *testing.T) {
			w := g.do(babelRequest("POST", "/user", `{"user":{"settings":`+c.settings+`}}`, bearerHdr(token)...))
			expectEnvelope(t, g, w, c.status, c.code)
			if w.Header().Get("WWW-Authenticate") != "" && c.status == 403 {
				t.Errorf("a readOnly setting is not an authentication problem: WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if now := g.babelUser(t, bearerHdr(token)); mustJSON(t, now) != mustJSON(t, orig) {
				t.Errorf("the user changed:\n%v\n%v", now, orig)
			}
		})
	}

	// The readOnly setting echoed unchanged is fine; the writable one changes,
	// by id or by name.
	w := g.do(babelRequest("POST", "/user", `{"user":{"settings":[{"id":2,"value":"5","readOnly":true},{"name":"theme","value":"dark"}]}}`, bearerHdr(token)...))
	m := expectEnvelope(t, g, w, 200, 0)
	if s := m["user"].(map[string]any)["settings"].([]any); s[0].(map[string]any)["value"] != "dark" || s[1].(map[string]any)["value"] != "5" {
		t.Errorf("settings after POST: %v", s)
	}
}

func TestBabelKeyPermissions(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("hal", "pw-hal-1234")
	ro := g.addKey("hal", "read")
	rc := g.addKey("hal", "read,create")

	g.babelUser(t, key(ro.Key))
	w := g.do(babelRequest("POST", "/user", `{"user":{"notes":"x"}}`, key(ro.Key)...))
	expectEnvelope(t, g, w, 403, babel.CodeForbidden)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate", error="insufficient_scope"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	if u := g.babelUser(t, key(ro.Key)); u["notes"] != "" {
		t.Errorf("a read-only key changed notes: %v", u["notes"])
	}
	expectEnvelope(t, g, g.do(babelRequest("POST", "/user", `{"user":{"notes":"x"}}`, key(rc.Key)...)), 200, 0)

	// Logout is for Bearer sessions; keys are revoked by administration.
	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", `{}`, key(rc.Key)...)), 400, babel.CodeBadRequest)
	g.babelUser(t, key(rc.Key))
}

func TestBabelAuthFailures(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("ida", "pw-ida-1234")
	token := g.babelLogin(t, "ida", "pw-ida-1234")
	k := g.addKey("ida", "read")

	w := g.do(babelRequest("GET", "/user", ""))
	expectEnvelope(t, g, w, 401, babel.CodeMissingCredential)
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate"` {
		t.Errorf("no credential: WWW-Authenticate %q", got)
	}
	for name, cred := range map[string][]string{
		"bad token": bearerHdr("not.a.token"),
		"bad key":   key("ag_nonsense"),
		"scheme":    {"Authorization", "Basic aWRhOnB3"},
	} {
		w := g.do(babelRequest("GET", "/user", "", cred...))
		expectEnvelope(t, g, w, 401, babel.CodeInvalidToken)
		if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="authgate", error="invalid_token"` {
			t.Errorf("%s: WWW-Authenticate %q", name, got)
		}
	}
	r := babelRequest("GET", "/user", "", bearerHdr(token)...)
	r.Header.Set("X-Api-Key", k.Key)
	expectEnvelope(t, g, g.do(r), 400, babel.CodeBadRequest)

	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", `{}`)), 401, babel.CodeMissingCredential)

	// A plentymarkets token is a token of this gateway: it works here too.
	g.babelUser(t, bearerHdr(g.login("ida", "pw-ida-1234").AccessToken))
}

func TestBabelLoginFailures(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("jo", "pw-jo-12345")

	g.babelLogin(t, "JO@example.com", "pw-jo-12345")

	wrong := g.do(babelRequest("POST", "/login", `{"username":"jo","password":"nope"}`))
	expectEnvelope(t, g, wrong, 401, babel.CodeBadCredentials)
	unknown := g.do(babelRequest("POST", "/login", `{"username":"nobody","password":"nope"}`))
	expectEnvelope(t, g, unknown, 401, babel.CodeBadCredentials)
	if wrong.Body.String() != unknown.Body.String() {
		t.Errorf("wrong password and unknown user differ: %q / %q", wrong.Body, unknown.Body)
	}

	for name, body := range map[string]string{
		"missing password": `{"username":"jo"}`,
		"empty":            `{}`,
		"null fields":      `{"username":null,"password":null}`,
		"number":           `{"username":5,"password":"x"}`,
		"array":            `{"username":["jo"],"password":"x"}`,
		"duplicate key":    `{"username":"nobody","username":"jo","password":"pw-jo-12345"}`,
	} {
		t.Run(name, func(t *testing.T) {
			expectEnvelope(t, g, g.do(babelRequest("POST", "/login", body)), 400, babel.CodeBadRequest)
		})
	}

	w := g.do(babelRequest("GET", "/login", ""))
	expectEnvelope(t, g, w, 405, babel.CodeMethodNotAllowed)
	if w.Header().Get("Allow") != "POST" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}
	w = g.do(babelRequest("PUT", "/user", `{}`))
	expectEnvelope(t, g, w, 405, babel.CodeMethodNotAllowed)
	if w.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}

	// The wrong password above was the first failure; four more lock.
	for range 4 {
		g.do(babelRequest("POST", "/login", `{"username":"jo","password":"nope"}`))
	}
	w = g.do(babelRequest("POST", "/login", `{"username":"jo","password":"pw-jo-12345"}`))
	expectEnvelope(t, g, w, 429, babel.CodeLocked)
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
}

// TestBabelRequestBodies: JSON media types are accepted whatever the
// client accepts back; anything odd is a 4xx envelope, never a 5xx.
func TestBabelRequestBodies(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("kim", "pw-kim-1234")
	token := g.babelLogin(t, "kim", "pw-kim-1234")
	orig := g.babelUser(t, bearerHdr(token))

	for _, ct := range []string{"application/json; charset=utf-8", "application/json-patch+json", "application/vnd.foo+json"} {
		r := babelRequest("POST", "/user", `{"user":{"city":"Bonn"}}`, bearerHdr(token)...)
		r.Header.Set("Content-Type", ct)
		r.Header.Set("Accept", "text/plain")
		expectEnvelope(t, g, g.do(r), 200, 0)
	}
	r := babelRequest("GET", "/user", "", bearerHdr(token)...)
	r.Header.Set("Accept", "text/plain")
	expectEnvelope(t, g, g.do(r), 200, 0)
	orig["city"] = "Bonn"
	orig["updatedAt"] = g.babelUser(t, bearerHdr(token))["updatedAt"]

	withType := func(ct, body string) *http.Request {
		r := babelRequest("POST", "/user", body, bearerHdr(token)...)
		r.Header.Del("Content-Type")
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		return r
	}
	cases := map[string]struct {
		r      *http.Request
		status int
		code   int
	}{
		"text/plain":       {withType("text/plain", `{"user":{"city":"x"}}`), 415, babel.CodeUnsupportedType},
		"no content type":  {withType("", `{"user":{"city":"x"}}`), 415, babel.CodeUnsupportedType},
		"form":             {withType("application/x-www-form-urlencoded", `city=x`), 415, babel.CodeUnsupportedType},
		"bad media type":   {withType("application/json; ;", `{}`), 415, babel.CodeUnsupportedType},
		"65 KiB":           {babelRequest("POST", "/user", `{"user":{"notes":"`+strings.Repeat("a", 65<<10)+`"}}`, bearerHdr(token)...), 413, babel.CodeBodyTooLarge},
		"malformed":        {babelRequest("POST", "/user", `{"user":`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"two objects":      {babelRequest("POST", "/user", `{"user":{}}{"user":{}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"array body":       {babelRequest("POST", "/user", `[{"user":{}}]`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"string body":      {babelRequest("POST", "/user", `"user"`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"null body":        {babelRequest("POST", "/user", `null`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"empty body":       {babelRequest("POST", "/user", "", bearerHdr(token)...), 400, babel.CodeBadRequest},
		"user null":        {babelRequest("POST", "/user", `{"user":null}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"user array":       {babelRequest("POST", "/user", `{"user":[]}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"user string":      {babelRequest("POST", "/user", `{"user":"kim"}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"wrong type":       {babelRequest("POST", "/user", `{"user":{"city":7}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"object for str":   {babelRequest("POST", "/user", `{"user":{"city":{"a":1}}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"huge rank":        {babelRequest("POST", "/user", `{"user":{"rank":1e400}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"long rank":        {babelRequest("POST", "/user", `{"user":{"rank":123456789012345678901234567890}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"float rank":       {babelRequest("POST", "/user", `{"user":{"rank":1.5}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"huge setting id":  {babelRequest("POST", "/user", `{"user":{"settings":[{"id":1e30}]}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"duplicate member": {babelRequest("POST", "/user", `{"user":{"city":"a","city":"b"}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"duplicate user":   {babelRequest("POST", "/user", `{"user":{},"user":{"city":"b"}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"bad timestamp":    {babelRequest("POST", "/user", `{"user":{"createdAt":"yesterday"}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"number timestamp": {babelRequest("POST", "/user", `{"user":{"createdAt":12}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"roles object":     {babelRequest("POST", "/user", `{"user":{"roles":{"a":1}}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"keys of numbers":  {babelRequest("POST", "/user", `{"user":{"apiKeys":[1,2]}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"deep nesting":     {babelRequest("POST", "/user", `{"user":{"x":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`}}`, bearerHdr(token)...), 200, 0},
		"invalid email":    {babelRequest("POST", "/user", `{"user":{"email":"a b@example.com"}}`, bearerHdr(token)...), 403, babel.CodeForbidden},
		"control char":     {babelRequest("POST", "/user", `{"user":{"city":"Bonn\u001b[2J"}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"bad birth date":   {babelRequest("POST", "/user", `{"user":{"birthDate":"yesterday"}}`, bearerHdr(token)...), 400, babel.CodeBadRequest},
		"invalid utf-8":    {babelRequest("POST", "/user", "{\"user\":{\"city\":\"\xff\"}}", bearerHdr(token)...), 200, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			expectEnvelope(t, g, g.do(c.r), c.status, c.code)
		})
	}
	// "invalid utf-8" was stored as the replacement character, as
	// encoding/json reads it; put the city back before comparing.
	expectEnvelope(t, g, g.do(postUser(map[string]any{"city": "Bonn"}, bearerHdr(token))), 200, 0)
	now := g.babelUser(t, bearerHdr(token))
	now["updatedAt"] = orig["updatedAt"]
	if mustJSON(t, now) != mustJSON(t, orig) {
		t.Errorf("refused requests changed the user:\n%v\n%v", now, orig)
	}
}

// A user cannot move their email to another address through POST user,
// and every such attempt gets the same answer, whether the address is
// another account's login, free, or not an address at all: a signed-in
// user learns nothing about which logins exist. Another spelling of their
// own email (case, width) and removing it are fine.
func TestBabelEmailChangesAreUniform(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("lea", "pw-lea-1234")
	g.addUser("max", "pw-max-1234")
	token := g.babelLogin(t, "lea", "pw-lea-1234")
	var first string
	for _, email := range []string{"max@example.com", "MAX@example.com", "max", "free-address@example.com", "nobody-has-this@example.org", "a@x,b@y"} {
		w := g.do(postUser(map[string]any{"email": email, "firstName": "x"}, bearerHdr(token)))
		expectEnvelope(t, g, w, 403, babel.CodeForbidden)
		if first == "" {
			first = w.Body.String()
		} else if w.Body.String() != first {
			t.Errorf("email %q: answer %s differs from %s", email, w.Body, first)
		}
	}
	if u := g.babelUser(t, bearerHdr(token)); u["email"] != "lea@example.com" || u["firstName"] != "" {
		t.Errorf("a refused update changed the user: %v", u)
	}
	expectEnvelope(t, g, g.do(postUser(map[string]any{"email": "Lea@EXAMPLE.com"}, bearerHdr(token))), 200, 0)
	if u := g.babelUser(t, bearerHdr(token)); u["email"] != "Lea@EXAMPLE.com" {
		t.Errorf("a change of case was not applied: %v", u["email"])
	}
	expectEnvelope(t, g, g.do(postUser(map[string]any{"email": ""}, bearerHdr(token))), 200, 0)
	if u := g.babelUser(t, bearerHdr(token)); u["email"] != "" {
		t.Errorf("removing the email was not applied: %v", u["email"])
	}
}

func TestBabelLogout(t *testing.T) {
	g := newBabelGateway(t)
	g.addUser("ned", "pw-ned-1234")
	token := g.babelLogin(t, "ned", "pw-ned-1234")
	other := g.babelLogin(t, "ned", "pw-ned-1234")

	// A refused body closes nothing.
	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", "{", bearerHdr(token)...)), 400, babel.CodeBadRequest)
	r := babelRequest("POST", "/logout", "bye", bearerHdr(token)...)
	r.Header.Set("Content-Type", "text/plain")
	expectEnvelope(t, g, g.do(r), 415, babel.CodeUnsupportedType)
	g.babelUser(t, bearerHdr(token))

	// An empty body is fine too: {} is what clients send, nothing is needed.
	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", "", bearerHdr(token)...)), 200, 0)
	expectEnvelope(t, g, g.do(babelRequest("GET", "/user", "", bearerHdr(token)...)), 401, babel.CodeInvalidToken)
	expectEnvelope(t, g, g.do(babelRequest("POST", "/logout", `{}`, bearerHdr(token)...)), 401, babel.CodeInvalidToken)
	g.babelUser(t, bearerHdr(other)) // another session of the same user lives on
}

func TestBabelStoreUnavailable(t *testing.T) {
	g := newBabelGateway(t)
	g.h.logger = zap.NewNop()
	g.addUser("ola", "pw-ola-1234")
	if err := g.app.store.Close(); err != nil {
		t.Fatal(err)
	}
	w := g.do(babelRequest("POST", "/login", `{"username":"ola","password":"pw-ola-1234"}`))
	expectEnvelope(t, g, w, 503, babel.CodeUnavailable)
	if w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("WWW-Authenticate on a 503: %q", w.Header().Get("WWW-Authenticate"))
	}
}
