package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The request hygiene of every request: what the strip deletes and keeps,
// trailers, the canonical paths an allow list may pass, and the hop-by-hop
// tricks.

// X-Original-URL and X-Rewrite-URL go in every spelling; method overrides
// in every spelling but the canonical one, which the permission check reads.
func TestStripOverrides(t *testing.T) {
	h := NewHygiene("X-Auth-", "x-api-key")
	hdr := http.Header{
		"X-Original-Url":         {"/admin"},
		"X_original_url":         {"/admin"},
		"X-Rewrite-Url":          {"/admin"},
		"X_http_method_override": {"DELETE"},
		"X-Http-Method-Override": {"GET"},
		"X-Http-Method":          {"GET"},
		"X-Original-Host":        {"kept"},
	}
	h.Strip(hdr)
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

// Declared request trailers reach the upstream without identity names,
// overrides or credentials; others pass.
func TestTrailerFilter(t *testing.T) {
	h := NewHygiene("X-Auth-", "x-api-key")
	from := http.Header{"X-Auth-User": nil}
	r := httptest.NewRequest("POST", "/x", strings.NewReader("body"))
	r.Trailer = from
	h.FilterTrailers(r)
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
		if got := CanonicalPath(p); got != want {
			t.Errorf("CanonicalPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// A client cannot make a later hop drop the identity authgate sets, nor
// switch the connection to the upstream to a protocol that carries more
// requests past authgate.
func TestStripHopByHopTricks(t *testing.T) {
	h := NewHygiene("X-Auth-", "x-api-key")
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
		h.Strip(hdr)
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
