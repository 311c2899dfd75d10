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
