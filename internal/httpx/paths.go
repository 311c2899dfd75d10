package httpx

import (
	"path"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// CanonicalPath reports whether p is already clean (a trailing slash
// allowed) and every upstream reads it the same way we do:
//   - no backslash, and no '%' once decoded (%252e is a dot to an upstream
//     that decodes twice);
//   - valid UTF-8 (an overlong form such as %c0%ae is a dot to some decoders);
//   - no ';' (Tomcat, Jetty and Spring strip "path parameters", so
//     /public/..;/secret is /secret to them: Shiro CVE-2020-1957);
//   - no control character (NUL ends the path for C-based servers);
//   - no non-ASCII rune but letters, digits and marks whose compatibility
//     form holds no ASCII punctuation: fullwidth dots and slashes, U+2024
//     ONE DOT LEADER and the like normalise to '.' or '/' in upstreams that
//     apply NFKC or Windows "best fit" mappings.
func CanonicalPath(p string) bool {
	if p == "" || !utf8.ValidString(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c == '%' || c == ';' {
			return false
		}
		if c >= 0x80 {
			if !plainNonASCII(p[i:]) {
				return false
			}
			break // plainNonASCII checked the rest
		}
	}
	clean := path.Clean(p)
	return p == clean || p == clean+"/"
}

// plainNonASCII reports whether every non-ASCII rune of s is a letter,
// digit or mark that no normalisation turns into ASCII punctuation. The
// ASCII bytes of s were or will be checked by CanonicalPath.
func plainNonASCII(s string) bool {
	for _, r := range s {
		if r < utf8.RuneSelf {
			if r < 0x20 || r == 0x7f || r == '\\' || r == '%' || r == ';' {
				return false
			}
			continue
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			return false
		}
		for _, n := range norm.NFKC.String(string(r)) {
			if n < utf8.RuneSelf && !('a' <= n && n <= 'z' || 'A' <= n && n <= 'Z' || '0' <= n && n <= '9') {
				return false
			}
		}
	}
	return true
}
