package browser

import (
	"net/url"
	"strings"
)

// maxRedirect bounds the rd parameter: a path and query of a legacy app.
const maxRedirect = 2048

// SafeRedirect returns rd if it is a relative path on this site, else "/".
// Only "/path?query" passes: no scheme, no host, no "//" or "/\" at the
// start (browsers read both as another host), no backslash, space or
// control character anywhere (browsers turn "\" into "/" and drop tabs and
// newlines, which could make a "//"). Each percent-decoding of it must
// still start as a path on this site and hold no control character, so
// that an app that decodes rd again cannot be led off the site either
// (caddy-security CVE-2024-21497 was an open redirect after login).
func SafeRedirect(rd string) string {
	if len(rd) > maxRedirect || !onSite(rd) || strings.ContainsFunc(rd, func(r rune) bool { return r == '\\' || r == ' ' }) {
		return "/"
	}
	for decoded := rd; strings.Contains(decoded, "%"); {
		next, err := url.PathUnescape(decoded)
		if err != nil || !onSite(next) {
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

// onSite reports whether s starts with one "/" (not "//", not "/\") and
// holds no control character.
func onSite(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
	})
}
