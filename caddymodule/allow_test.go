package caddymodule

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The pre-filter must never change a decision: for every pattern set and
// path, the filtered list answers exactly as Caddy's matcher alone does.
func TestAllowPrefilterAgreesWithMatcher(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	patternSets := [][]string{
		{"/health"},
		{"/health", "/public/*"},
		{"/Public/*", "/docs/*.html"},
		{"/a?c", "/x[yz]/*"},
		{"*.css"},                 // leading wildcard: no pre-filter
		{"/static/*", "*/robots"}, // one pattern without a prefix disables it
		{"/caf\u00e9/*"},          // non-ASCII pattern: no pre-filter
		{"/%40user/*"},            // escaped pattern: no pre-filter
		{"/health*"},
		{"/kelvin"}, // U+212A KELVIN SIGN lowercases to an ASCII k
	}
	paths := []string{
		"/", "/health", "/HEALTH", "/health/", "/healthz", "/health/x", "/public", "/public/",
		"/public/a", "/PUBLIC/A", "/publicx", "/docs/a.html", "/docs/a.htm", "/abc", "/aXc",
		"/xy/1", "/xz/1", "/xq/1", "/site.css", "/static/a", "/a/robots", "/caf\u00e9/x",
		"/CAF\u00c9/x", "/\u212aelvin", "/%40user/x", "/@user/x", "/app/orders", "/p\u212Fublic/a",
	}
	for _, patterns := range patternSets {
		filtered, err := newAllowList(ctx, append([]string(nil), patterns...))
		if err != nil {
			t.Fatal(err)
		}
		plain := filtered
		plain.filter = false
		for _, p := range paths {
			r := httptest.NewRequest("GET", "http://x"+escapePathForTest(p), nil)
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			if got, want := filtered.allows(r), plain.allows(r); got != want {
				t.Errorf("patterns %q, path %q: pre-filtered %v, matcher alone %v", patterns, p, got, want)
			}
		}
	}
}

// The pre-filter is in force for ordinary patterns (else it saves nothing).
func TestAllowPrefilterEnabled(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	a, err := newAllowList(ctx, []string{"/health", "/public/*"})
	if err != nil {
		t.Fatal(err)
	}
	if !a.filter || len(a.prefixes) != 2 || a.prefixes[1] != "/public/" {
		t.Fatalf("pre-filter not in force: %+v", a)
	}
}

func escapePathForTest(p string) string {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 0x80 {
			out = append(out, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		out = append(out, c)
	}
	return string(out)
}
