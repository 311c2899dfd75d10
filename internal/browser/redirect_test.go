package browser

import "testing"

// Open redirects after login (caddy-security CVE-2024-21497): anything
// but a relative path on this site lands on "/".
func TestSafeRedirect(t *testing.T) {
	kept := []string{"/", "/orders", "/orders?page=2&sort=desc", "/a/b/c.html#top", "/%7Euser/", "/search?q=%2F%2Fevil", "/docs/my%20file.pdf", "/a%5Cb"}
	for _, rd := range kept {
		if got := SafeRedirect(rd); got != rd {
			t.Errorf("SafeRedirect(%q) = %q, want it kept", rd, got)
		}
	}
	refused := []string{
		"", "orders", "//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example",
		"https:evil.example", "http:/evil.example", "javascript:alert(1)", "data:text/html,x",
		"/%2F/evil.example", "/%2f%2fevil.example", "/%5Cevil.example", "/%5cevil.example",
		"/\t/evil.example", "/\n/evil.example", "/\r//evil.example", "/x\\y", "%2F%2Fevil.example",
		"/%252F%252Fevil.example/", "//", "///evil.example", "/ //evil.example", "/%09/evil.example", "/%0a/evil.example", "/\u2028/evil", "/%00", "/%zz",
		"/" + string(make([]byte, maxRedirect)),
	}
	for _, rd := range refused {
		if got := SafeRedirect(rd); got != "/" {
			t.Errorf("SafeRedirect(%q) = %q, want /", rd, got)
		}
	}
}
