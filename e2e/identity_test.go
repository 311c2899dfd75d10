package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestIdentityValuesThroughCaddy runs the built binary with a handler after
// authgate that edits identity values in place (request_header's replace),
// and a header_up that reads the {http.auth.user.*} placeholders. Every
// request must carry one edit, never the edits of the requests before it
// (the decision behind the headers is cached and shared), and the
// placeholders must hold the unedited values.
func TestIdentityValuesThroughCaddy(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	authgate {
		db %q
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	route {
		authgate {
			api plentymarkets /rest
		}
		request_header X-Auth-User dora dora-edited
		reverse_proxy 127.0.0.1:%d {
			header_up X-Seen-Name {http.auth.user.name}
			header_up X-Seen-Method {http.auth.user.method}
			header_up X-Seen-Key {http.auth.user.key_id}
			header_up X-Seen-Permissions {http.auth.user.permissions}
		}
	}
}
`, g.AdminPort, g.DB, g.SitePort, up.Port)
	g.ConfigPath = filepath.Join(g.Dir, "Caddyfile.identity")
	if err := os.WriteFile(g.ConfigPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const pw = "dora: a long enough password"
	secret(pw)
	g.AddUser(t, "dora", pw, "ops", "dora@example.com")
	key := g.CreateKey(t, "dora", "k", "read")
	g.Start(t)
	login := g.Login(t, "dora", pw)

	for _, c := range []struct {
		name string
		hdr  H
		want map[string]string
	}{
		{"api key", apiKey(key.Key), map[string]string{
			"X-Seen-Method": "api_key", "X-Seen-Key": key.ID, "X-Seen-Permissions": "read",
		}},
		{"bearer", bearer(login.Access), map[string]string{
			"X-Seen-Method": "bearer", "X-Seen-Key": "", "X-Seen-Permissions": "",
		}},
	} {
		for pass := range 4 {
			mark := up.Mark()
			if r := g.Do(t, "GET", "/app/identity", nil, c.hdr); r.Status != 200 {
				t.Fatalf("%s pass %d: %s", c.name, pass, r)
			}
			s := wantOneUpstream(t, c.name, up, mark)
			if got := s.Header.Values("X-Auth-User"); len(got) != 1 || got[0] != "dora-edited" {
				t.Fatalf("%s pass %d: X-Auth-User = %q, want one edit (dora-edited)", c.name, pass, got)
			}
			if got := s.Header.Get("X-Seen-Name"); got != "dora" {
				t.Errorf("%s pass %d: {http.auth.user.name} = %q, want dora", c.name, pass, got)
			}
			for h, want := range c.want {
				if got := s.Header.Get(h); got != want {
					t.Errorf("%s pass %d: %s = %q, want %q", c.name, pass, h, got, want)
				}
			}
		}
	}
}
