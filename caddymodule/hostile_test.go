package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// In-process regression tests for the defects e2e/attack_test.go found;
// the end-to-end proof is there.

// X-Original-URL and X-Rewrite-URL go in every spelling; method overrides
// in every spelling but the canonical one, which the permission check reads.
func TestStripOverrides(t *testing.T) {
	h := newIdentityHeaders("X-Auth-", "x-api-key")
	hdr := http.Header{
		"X-Original-Url":         {"/admin"},
		"X_original_url":         {"/admin"},
		"X-Rewrite-Url":          {"/admin"},
		"X_http_method_override": {"DELETE"},
		"X-Http-Method-Override": {"GET"},
		"X-Http-Method":          {"GET"},
		"X-Original-Host":        {"kept"},
	}
	h.strip(hdr)
	for _, gone := range []string{"X-Original-Url", "X_original_url", "X-Rewrite-Url", "X_http_method_override"} {
		if _, ok := hdr[gone]; ok {
			t.Errorf("%s survived strip", gone)
		}
	}
	for _, kept := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Original-Host"} {
		if _, ok := hdr[kept]; !ok {
			t.Errorf("%s was stripped", kept)
		}
	}
}

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

// Declared request trailers reach the upstream without identity names,
// overrides or credentials; others pass.
func TestTrailerFilter(t *testing.T) {
	h := newIdentityHeaders("X-Auth-", "x-api-key")
	from := http.Header{"X-Auth-User": nil}
	r := httptest.NewRequest("POST", "/x", strings.NewReader("body"))
	r.Trailer = from
	h.filterTrailers(r)
	// net/http fills the declared map when the body ends.
	from["X-Auth-User"] = []string{"mallory"}
	from["X_auth_roles"] = []string{"mallory"}
	from["Authorization"] = []string{"Bearer mallory"}
	from["X-Api-Key"] = []string{"mallory"}
	from["X-Original-Url"] = []string{"/admin"}
	from["X-Http-Method-Override"] = []string{"DELETE"}
	from["X-Checksum"] = []string{"abc"}
	if _, err := io.ReadAll(r.Body); err != nil {
		t.Fatal(err)
	}
	if len(r.Trailer) != 1 || r.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("trailers passed on: %v, want only X-Checksum", r.Trailer)
	}
}

func TestCanonicalPathRefusesDecodingTricks(t *testing.T) {
	for p, want := range map[string]bool{
		"/public/x":             true,
		"/public/x/":            true,
		"/public/\xc0\xae/x":    false, // overlong '.'
		"/public/\xe0\x80\xae":  false,
		"/public/%2e%2e/app":    false, // decoded from %252e%252e
		"/public/100%/x":        false,
		"/public/caf\u00e9/x":   true,
		"/public/..\\app":       false,
		"/public/../app":        false,
		"/public//x":            false,
		"/public/\u212a/kelvin": true,
		"/public/日本/x":          true,
		"/public/ü":             true,
		// ';' path parameters: Tomcat, Jetty and Spring drop them.
		"/public/..;/secret":             false,
		"/public/..;jsessionid=1/secret": false,
		"/public/x;/../../secret":        false,
		"/public;/x":                     false,
		"/public/x;":                     false,
		// Control characters.
		"/public/x\x00":   false,
		"/public/\x00/x":  false,
		"/public/x\x1f":   false,
		"/public/x\x7f":   false,
		"/public/x\t":     false,
		"/public/\u0085x": false, // C1 NEXT LINE
		// Non-ASCII that normalises to '.', '/', '\\' or worse.
		"/public/\uff0e\uff0e/secret": false, // fullwidth full stops
		"/public/\u2024\u2024/secret": false, // ONE DOT LEADER
		"/public/\u2025/secret":       false, // TWO DOT LEADER
		"/public/\ufe52\ufe52/secret": false, // SMALL FULL STOP
		"/public/..\uff0fsecret":      false, // FULLWIDTH SOLIDUS
		"/public/..\u2215secret":      false, // DIVISION SLASH (best fit)
		"/public/..\uff3csecret":      false, // FULLWIDTH REVERSE SOLIDUS
		"/public/x\uff1b/secret":      false, // FULLWIDTH SEMICOLON
		"/public/\u200bx":             false, // zero width space
		"/public/\u202ex":             false, // right-to-left override
		"/public/\u00a0x":             false, // no-break space
		"/public/\u2488x":             false, // DIGIT ONE FULL STOP: NFKC "1."
	} {
		if got := canonicalPath(p); got != want {
			t.Errorf("canonicalPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// A JSON body is read in full: padding past the cap is 413, anything but
// white space after the object is 400.
func TestReadJSONWholeBody(t *testing.T) {
	g := newGateway(t, nil)
	for body, want := range map[string]int{
		`{"username":"nobody","password":"x"}` + strings.Repeat(" ", maxAuthBody): 413,
		`{"username":"nobody","password":"x"}]`:                                   400,
		`{"username":"nobody","password":"x"}}`:                                   400,
		`{"username":"nobody","password":"x"} {}`:                                 400,
		`{"username":"nobody","password":"x"}` + " \n\t":                          401,
	} {
		w := g.do(jsonRequest("POST", "/rest/login", body))
		if w.Code != want {
			t.Errorf("body %.60q…: status %d, want %d", body, w.Code, want)
		}
	}
}

// A client cannot make a later hop drop the identity authgate sets, nor
// switch the connection to the upstream to a protocol that carries more
// requests past authgate.
func TestStripHopByHopTricks(t *testing.T) {
	h := newIdentityHeaders("X-Auth-", "x-api-key")
	for _, c := range []struct {
		name                  string
		conn, upgrade         []string
		wantConn, wantUpgr    string // "" = header absent
		wantHTTP2SettingsGone bool
	}{
		{"identity names", []string{"keep-alive, X-Auth-Method, x-auth-permissions", "X_Auth_Key_Id,Close"}, nil, "keep-alive, Close", "", true},
		{"credential names", []string{"Authorization, X-API-KEY, x-custom"}, nil, "x-custom", "", true},
		{"only identity names", []string{"X-Auth-User-Id"}, nil, "", "", true},
		{"h2c upgrade", []string{"Upgrade, HTTP2-Settings"}, []string{"h2c"}, "", "", true},
		{"h2c in caps with websocket", []string{"upgrade"}, []string{"H2C, websocket"}, "upgrade", "websocket", true},
		{"HTTP/2.0 and TLS", []string{"Upgrade"}, []string{"HTTP/2.0", "TLS/1.0"}, "", "", true},
		{"h2c draft", []string{"Upgrade"}, []string{"h2c-14"}, "", "", true},
		{"websocket passes", []string{"Upgrade"}, []string{"websocket"}, "Upgrade", "websocket", true},
		{"upgrade without Connection", nil, []string{"h2c"}, "", "", true},
		{"plain keep-alive untouched", []string{"keep-alive"}, nil, "keep-alive", "", true},
	} {
		hdr := http.Header{"Http2-Settings": {"AAMAAABkAAQAAP__"}}
		if c.conn != nil {
			hdr["Connection"] = c.conn
		}
		if c.upgrade != nil {
			hdr["Upgrade"] = c.upgrade
		}
		h.strip(hdr)
		if got := strings.Join(hdr["Connection"], "|"); got != c.wantConn {
			t.Errorf("%s: Connection %q, want %q", c.name, got, c.wantConn)
		}
		if got := strings.Join(hdr["Upgrade"], "|"); got != c.wantUpgr {
			t.Errorf("%s: Upgrade %q, want %q", c.name, got, c.wantUpgr)
		}
		if _, ok := hdr["Http2-Settings"]; ok {
			t.Errorf("%s: HTTP2-Settings survived", c.name)
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
