package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/httpx"
)

// In-process regression tests for the defects e2e/attack_test.go found;
// the end-to-end proof is there.

// A restricted principal must be allowed the method an override names.
func TestMethodOverrideNeedsPermission(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("ann", "ann: password one")
	create := g.addKey("ann", "create")
	for _, c := range []struct {
		method, header, value string
		want                  int
	}{
		{"POST", "X-Http-Method-Override", "DELETE", 403},
		{"POST", "X-Http-Method", " put ", 403},
		{"POST", "X-Method-Override", "POST", 200},
		{"POST", "X-Method-Override", "PROPFIND", 403},
		{"POST", "", "", 200},
	} {
		r := withKey(c.method, "/app/x", create.Key)
		if c.header != "" {
			r.Header.Set(c.header, c.value)
		}
		if w := g.do(r); w.Code != c.want {
			t.Errorf("%s with %s: %q: status %d, want %d", c.method, c.header, c.value, w.Code, c.want)
		}
	}
	// An unrestricted Bearer token may do anything, overridden or not.
	tok := g.login("ann", "ann: password one").AccessToken
	r := bearer("GET", "/app/x", tok)
	r.Header.Set("X-Http-Method-Override", "DELETE")
	if w := g.do(r); w.Code != 200 {
		t.Errorf("Bearer with an override: %d", w.Code)
	}
}

// A JSON body is read in full: padding past the cap is 413, anything but
// white space after the object is 400.
func TestReadJSONWholeBody(t *testing.T) {
	g := newGateway(t, nil)
	for body, want := range map[string]int{
		`{"username":"nobody","password":"x"}` + strings.Repeat(" ", httpx.MaxAuthBody): 413,
		`{"username":"nobody","password":"x"}]`:                                         400,
		`{"username":"nobody","password":"x"}}`:                                         400,
		`{"username":"nobody","password":"x"} {}`:                                       400,
		`{"username":"nobody","password":"x"}` + " \n\t":                                401,
	} {
		w := g.do(jsonRequest("POST", "/rest/login", body))
		if w.Code != want {
			t.Errorf("body %.60q…: status %d, want %d", body, w.Code, want)
		}
	}
}

// Through the handler: a read-only key naming its own identity headers in
// Connection still reaches the upstream with all of them, and Connection
// no longer names them.
func TestConnectionCannotDropIdentity(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("cid", "cid: password one")
	k := g.addKey("cid", "read")
	r := withKey("GET", "/app/x", k.Key)
	r.Header.Set("Connection", "X-Auth-Method, X-Auth-Permissions, X-Auth-Key-Id")
	r.Header.Set("Upgrade", "h2c")
	r.Header.Set("HTTP2-Settings", "AAMAAABkAAQAAP__")
	if w := g.do(r); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for _, name := range []string{"X-Auth-Method", "X-Auth-Permissions", "X-Auth-Key-Id"} {
		if len(g.seen.Header[name]) != 1 {
			t.Errorf("%s = %q, want one value", name, g.seen.Header[name])
		}
	}
	if v := g.seen.Header["Connection"]; len(v) != 0 {
		t.Errorf("Connection %q still names headers", v)
	}
	if v := g.seen.Header["Upgrade"]; len(v) != 0 {
		t.Errorf("Upgrade %q reached the upstream", v)
	}
}

// Through the handler: a restricted key's `_method` parameters are checked
// like the override headers, and the upstream still gets the body as sent.
func TestMethodParamsThroughHandler(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("max", "max: password one")
	create := g.addKey("max", "create")
	all := g.addKey("max", "all")
	form := func(key, target, body string) *http.Request {
		r := httptest.NewRequest("POST", target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("X-Api-Key", key)
		return r
	}
	expectRefused(t, g, g.do(form(create.Key, "/app/x?_method=DELETE", "")), 403, "insufficient_scope")
	expectRefused(t, g, g.do(form(create.Key, "/app/x", "a=1&_method=DELETE")), 403, "insufficient_scope")
	expectRefused(t, g, g.do(form(create.Key, "/app/x", "a=1&%5Fmethod=put")), 403, "insufficient_scope")

	var got []byte
	g.next = func(r *http.Request) { got, _ = io.ReadAll(r.Body) }
	if w := g.do(form(create.Key, "/app/x", "a=1&_method=POST&b=2")); w.Code != 200 || string(got) != "a=1&_method=POST&b=2" {
		t.Errorf("_method=POST with a create key: %d, upstream body %q", w.Code, got)
	}
	// A key with every permission is not restricted by methods at all.
	if w := g.do(form(all.Key, "/app/x", "_method=DELETE")); w.Code != 200 || string(got) != "_method=DELETE" {
		t.Errorf("_method=DELETE with an all-permissions key: %d, upstream body %q", w.Code, got)
	}
}

// Every plentymarkets route refuses a JSON member given twice: we would
// read the last, a proxy or WAF in front of us the first.
func TestPlentymarketsRefusesDuplicateMembers(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("dup", "pw-dup-1234")
	tok := g.login("dup", "pw-dup-1234").AccessToken
	for _, c := range []struct{ path, body string }{
		{"/rest/login", `{"username":"nobody","username":"dup","password":"pw-dup-1234"}`},
		{"/rest/login", `{"username":"dup","password":"x","password":"pw-dup-1234"}`},
		{"/rest/login/refresh", `{"refresh_token":"a","refresh_token":"b"}`},
		{"/rest/quick_login", `{"client_id":"a","client_id":"b","client_secret":"c"}`},
		{"/rest/check_password", `{"password":"x","password":"pw-dup-1234"}`},
		{"/rest/check_pin", `{"pin":"1","pin":"2"}`},
	} {
		r := jsonRequest("POST", c.path, c.body)
		r.Header.Set("Authorization", "Bearer "+tok)
		if c.path == "/rest/login" || c.path == "/rest/quick_login" || c.path == "/rest/login/refresh" {
			r.Header.Del("Authorization")
		}
		expectRefused(t, g, g.do(r), 400, "invalid_request")
	}
}
