package browser

import (
	"net/url"
	"strings"
)

// maxRedirect bounds the rd parameter: a path and query of a legacy app.
const maxRedirect = 2048

// SafeRedirect returns rd if it is a relative path on this site, else "/".
// Only "/path?query" passes: no scheme, no host, no "//" or "/\" at the
// start (browsers read both as another host), no backslash or control
// character anywhere (browsers turn "\" into "/" and drop tabs and
// newlines), and the same after each percent-decoding, so that an app
// that decodes rd again cannot be led off the site either (caddy-security
// CVE-2024-21497 was an open redirect after login).
func SafeRedirect(rd string) string {
	if !relativePath(rd) || len(rd) > maxRedirect {
		return "/"
	}
	// Decoded until it no longer changes, for apps that decode it again.
	for decoded := rd; strings.Contains(decoded, "%"); {
		next, err := url.PathUnescape(decoded)
		if err != nil || !relativePath(next) {
			return "/"
		}
		if next == decoded {
			break
		}
		decoded = next
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return rd
}

// relativePath reports whether s is "/" followed by no second "/" or
// "\", and holds no backslash or control character.
func relativePath(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r == '\\' || r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
	})
}
