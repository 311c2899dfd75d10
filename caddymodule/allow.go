package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/internal/httpx"
)

// allowList decides which paths pass without a credential: the `allow`
// patterns, matched by Caddy's own path matcher.
//
// Every protected request is checked against it before authentication, so
// it has a cheap pre-filter: for a canonical ASCII path, a pattern can only
// match if the path starts with the pattern's literal prefix (the part
// before its first glob character). Patterns the pre-filter cannot reason
// about (placeholders, escapes, non-ASCII, a leading wildcard) disable it,
// and every request the pre-filter lets through is still decided by Caddy's
// matcher, so the pre-filter can only ever refuse what Caddy would refuse.
type allowList struct {
	matcher  caddyhttp.MatchPath
	prefixes []string // lowercased literal prefixes, one per pattern
	filter   bool     // prefixes are usable
}

func newAllowList(ctx caddy.Context, patterns []string) (allowList, error) {
	a := allowList{matcher: caddyhttp.MatchPath(patterns)}
	if err := a.matcher.Provision(ctx); err != nil {
		return a, err
	}
	a.filter = len(patterns) > 0
	for _, p := range a.matcher {
		prefix, ok := literalPrefix(p)
		if !ok {
			a.filter = false
			break
		}
		a.prefixes = append(a.prefixes, prefix)
	}
	return a, nil
}

// literalPrefix returns the lowercased part of pattern before its first
// glob character; ok is false when pattern has none to offer.
func literalPrefix(pattern string) (string, bool) {
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c == '{' || c == '%' || c >= 0x80 {
			return "", false
		}
	}
	end := strings.IndexAny(pattern, "*?[\\")
	if end == -1 {
		end = len(pattern)
	}
	if end == 0 {
		return "", false
	}
	return strings.ToLower(pattern[:end]), true
}

// allows reports whether r may pass without a credential. Only a canonical
// path can be allowed: if cleaning or decoding changes it (//, dot
// segments, %2f, backslashes), the upstream might read it differently than
// we do, so it must carry a credential like any other request.
func (a *allowList) allows(r *http.Request) bool {
	if len(a.matcher) == 0 {
		return false
	}
	p := r.URL.Path
	if a.filter && isASCII(p) && !a.anyPrefix(p) {
		return false
	}
	return canonicalRequest(r) && a.matcher.Match(r)
}

// canonicalRequest reports whether r's path reads the same to every
// upstream as to Caddy's path matcher: httpx.CanonicalPath of the decoded
// path, and no encoded '/', '\' or '.' in the path as sent. Allowed paths
// and require rules (require.go) both rest on it.
func canonicalRequest(r *http.Request) bool {
	if !httpx.CanonicalPath(r.URL.Path) {
		return false
	}
	if raw := r.URL.RawPath; raw != "" && containsFold(raw, "%2f", "%5c", "%2e") {
		return false
	}
	return true
}

// anyPrefix compares ASCII case-insensitively, as the matcher's ToLower
// does for ASCII, without allocating.
func (a *allowList) anyPrefix(p string) bool {
	for _, prefix := range a.prefixes {
		if len(p) >= len(prefix) && strings.EqualFold(p[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func containsFold(s string, subs ...string) bool {
	ls := strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(ls, sub) {
			return true
		}
	}
	return false
}
