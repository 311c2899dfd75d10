package caddymodule

import (
	"net/http"
	"testing"
)

// The {http.auth.user.*} placeholders carry the identity headers' values,
// on the request that resolved the credential and on cached ones; the ones
// without a value are known and empty.
func TestPlaceholders(t *testing.T) {
	g := newGateway(t, nil)
	alice := g.addUser("alice", "correct horse", "admin", "ops")
	key := g.addKey("alice", "read,write")
	token := g.login("alice", "correct horse").AccessToken

	cases := []struct {
		name string
		r    func() *http.Request
		want map[string]string
	}{
		{"api key", func() *http.Request { return withKey("GET", "/app", key.Key) }, map[string]string{
			"id": alice.ID, "name": "alice", "email": "alice@example.com", "roles": "admin,ops",
			"method": "api_key", "key_id": key.ID, "permissions": "read,write",
		}},
		{"bearer", func() *http.Request { return bearer("GET", "/app", token) }, map[string]string{
			"id": alice.ID, "name": "alice", "email": "alice@example.com", "roles": "admin,ops",
			"method": "bearer", "key_id": "", "permissions": "",
		}},
	}
	for _, c := range cases {
		for pass := range 3 { // resolved, then cached
			if w := g.do(c.r()); w.Code != http.StatusOK {
				t.Fatalf("%s pass %d: %d %s", c.name, pass, w.Code, w.Body)
			}
			for name, want := range c.want {
				got, ok := g.repl.GetString("http.auth.user." + name)
				if got != want || !ok {
					t.Errorf("%s pass %d: {http.auth.user.%s} = %q (set %v), want %q", c.name, pass, name, got, ok, want)
				}
			}
			if _, ok := g.repl.Get("http.auth.user.nonesuch"); ok {
				t.Errorf("%s: an unknown http.auth.user placeholder is set", c.name)
			}
			g.waitCache()
		}
	}
}

// A handler after authgate may edit header values in place (Caddy's
// request_header replace does). The values a request carries are its own:
// an edit never reaches the cached decision, so the next request with the
// same credential gets the original identity, and concurrent requests do
// not share (and race on) one slice.
func TestIdentityHeadersAreEachRequestsOwn(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("alice", "correct horse", "admin")
	key := g.addKey("alice", "read")
	token := g.login("alice", "correct horse").AccessToken
	g.next = func(r *http.Request) {
		for name, vals := range r.Header {
			for i := range vals {
				r.Header[name][i] += "-edited"
			}
		}
	}
	for _, r := range []func() *http.Request{
		func() *http.Request { return withKey("GET", "/app", key.Key) },
		func() *http.Request { return bearer("GET", "/app", token) },
	} {
		for pass := range 3 {
			if w := g.do(r()); w.Code != http.StatusOK {
				t.Fatalf("pass %d: %d %s", pass, w.Code, w.Body)
			}
			if got := g.seen.Header.Get("X-Auth-User"); got != "alice-edited" {
				t.Fatalf("pass %d: X-Auth-User after one edit = %q, want alice-edited: an earlier request's edit leaked into this one", pass, got)
			}
			if got, _ := g.repl.GetString("http.auth.user.name"); got != "alice" {
				t.Fatalf("pass %d: {http.auth.user.name} = %q, want alice", pass, got)
			}
			g.waitCache()
		}
	}
}
