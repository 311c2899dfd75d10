package caddymodule

import (
	"net/url"
	"path"
	"strings"
)

// prefixes are mount prefixes (without a trailing slash), matched on whole
// path segments.
type prefixes []string

// cover reports whether u's path is one of the prefixes or below it. The
// path is read both as the route table reads it (decoded, cleaned) and as
// the upstream will (escaped), and both must agree: /rest%2Fitems is one
// segment to the upstream and /restx another name, so neither is below
// /rest; nor is /rest/../app.
func (ps prefixes) cover(u *url.URL) bool {
	if len(ps) == 0 {
		return false
	}
	decoded, escaped := path.Clean(u.Path), path.Clean(u.EscapedPath())
	for _, p := range ps {
		if below(decoded, p) && below(escaped, p) {
			return true
		}
	}
	return false
}

// below reports whether p is prefix itself or starts with prefix + "/".
func below(p, prefix string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}
