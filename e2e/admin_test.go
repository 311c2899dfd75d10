package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
)

// Live administration (issue 4): every command works on the running server
// through its admin endpoint and takes effect on the very next request.
func TestLiveAdministration(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const (
		opsPW  = "ops: a long enough password"
		zoePW  = "zoe: another long password"
		zoePW2 = "zoe: the new password, rotated"
	)
	g.AddUser(t, "ops", opsPW, "admin", "ops@example.com")
	g.Start(t)

	// Users and keys created while the server runs work at once.
	secret(zoePW)
	out := g.LiveCLI(t, zoePW+"\n", "user", "add", "zoe", "--password-stdin", "--roles", "dev", "--email", "zoe@example.com")
	if !strings.Contains(out, "added user zoe") {
		t.Fatalf("live user add: %q", scrub(out))
	}
	zoe := g.Login(t, "zoe", zoePW)
	var key CreatedKey
	raw := g.LiveCLI(t, "", "key", "create", "--user", "zoe", "--name", "live", "--permissions", "read", "--json")
	if err := json.Unmarshal([]byte(raw), &key); err != nil || key.Key == "" {
		t.Fatalf("live key create --json: not JSON with a key (%d bytes): %v", len(raw), err)
	}
	secret(key.Key)
	if r := g.Do(t, "GET", "/app/x", nil, apiKey(key.Key)); r.Status != 200 {
		t.Fatalf("a key created on the running server: %s, want 200", r)
	}

	// Revoking through the CLI refuses the key on the very next request.
	g.LiveCLI(t, "", "key", "revoke", key.ID)
	mark := up.Mark()
	wantError(t, "revoked key, next request", g.Do(t, "GET", "/app/x", nil, apiKey(key.Key)), 401, "invalid_token", challengeInvalid)
	wantNothingUpstream(t, "revoked key", up, mark)
	if list := g.LiveCLI(t, "", "key", "list", "--user", "zoe"); !strings.Contains(list, "revoked") || strings.Contains(list, key.Key) {
		t.Errorf("key list after revoke: want it marked revoked and never the key itself:\n%s", scrub(list))
	}

	// Sessions: listed, and one revoked ends its token.
	var sessions []struct {
		ID, User string
		Revoked  bool
	}
	if err := json.Unmarshal([]byte(g.LiveCLI(t, "", "session", "list", "--user", "zoe", "--json")), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("session list --json: %v, %d sessions, want 1", err, len(sessions))
	}
	g.LiveCLI(t, "", "session", "revoke", sessions[0].ID)
	wantError(t, "revoked session's token", g.Do(t, "GET", "/app/x", nil, bearer(zoe.Access)), 401, "invalid_token", challengeInvalid)

	// Disabling a user refuses their live token on the next request;
	// enabling lets them back in.
	zoe = g.Login(t, "zoe", zoePW)
	g.LiveCLI(t, "", "user", "disable", "zoe")
	wantError(t, "disabled user's token", g.Do(t, "GET", "/app/x", nil, bearer(zoe.Access)), 401, "invalid_token", challengeInvalid)
	g.LiveCLI(t, "", "user", "enable", "zoe")
	if r := g.Do(t, "GET", "/app/x", nil, bearer(zoe.Access)); r.Status != 200 {
		t.Errorf("re-enabled user's token: %s, want 200", r)
	}

	// A password change ends the sessions of the old one.
	secret(zoePW2)
	g.LiveCLI(t, zoePW2+"\n", "user", "passwd", "zoe", "--password-stdin")
	wantError(t, "token from before the password change", g.Do(t, "GET", "/app/x", nil, bearer(zoe.Access)), 401, "invalid_token", challengeInvalid)
	zoe = g.Login(t, "zoe", zoePW2)

	// Rotation, found through --config as `caddy reload` finds the endpoint:
	// old tokens keep working, new ones carry the new kid, JWKS has both.
	oldKid := jwtHeader(t, zoe.Access)["kid"]
	out, errOut, err := g.Run("", "authgate", "signing-key", "rotate", "--json", "--config", g.ConfigPath)
	if err != nil {
		t.Fatalf("signing-key rotate --config: %v\n%s\n%s", err, out, errOut)
	}
	var rotated struct{ KID, Alg string }
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.KID == "" || rotated.KID == oldKid {
		t.Fatalf("rotate gave %q (%v); old kid %v", out, err, oldKid)
	}
	if r := g.Do(t, "GET", "/app/x", nil, bearer(zoe.Access)); r.Status != 200 {
		t.Errorf("token signed before the rotation: %s, want 200", r)
	}
	fresh := g.Login(t, "zoe", zoePW2)
	if kid := jwtHeader(t, fresh.Access)["kid"]; kid != rotated.KID {
		t.Errorf("token after rotation has kid %v, want %s", kid, rotated.KID)
	}
	jwks := g.Do(t, "GET", "/.well-known/jwks.json", nil, nil)
	for _, kid := range []string{rotated.KID, fmt.Sprint(oldKid)} {
		if !strings.Contains(string(jwks.Body), kid) {
			t.Errorf("JWKS lacks kid %s after rotation: %s", kid, jwks.Body)
		}
	}

	// Errors are clear and non-zero.
	if _, errOut, err := g.Run("", "authgate", "user", "show", "nobody", "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort)); err == nil || !strings.Contains(errOut, `no user "nobody"`) {
		t.Errorf("user show nobody: err %v, stderr %q", err, errOut)
	}
}

// The admin routes live only on the admin endpoint: through the site's
// listener /authgate/... is ordinary protected traffic.
func TestAdminRoutesNotOnSite(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	g.AddUser(t, "root", "root: a long enough password", "admin", "root@example.com")
	key := g.CreateKey(t, "root", "all", "read,write,delete,create")
	g.Start(t)

	for _, path := range []string{"/authgate/users", "/authgate/keys", "/authgate/backup", "/authgate/signing-keys"} {
		mark := up.Mark()
		wantError(t, "GET "+path+" without credential on the site", g.Do(t, "GET", path, nil, nil), 401, "unauthorized", challengeNoCred)
		wantNothingUpstream(t, path, up, mark)

		// With a valid credential it is proxied to the upstream, never
		// answered by the admin API.
		r := g.Do(t, "GET", path, nil, apiKey(key.Key))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"upstream":true`) || strings.Contains(string(r.Body), `"hasPin"`) {
			t.Errorf("GET %s with a key on the site: %s; want the upstream's answer, not the admin API's", path, r)
		}
	}
	r := g.Do(t, "POST", "/authgate/signing-keys/rotate", nil, apiKey(key.Key))
	if !strings.Contains(string(r.Body), `"upstream":true`) {
		t.Errorf("POST rotate on the site: %s; want the upstream's answer", r)
	}
}

// A backup taken while writes go on opens, passes the consistency check
// (every index entry resolves), and restores: a server started on it lets
// the users in it log in.
func TestHotBackupAndRestore(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "backup: a long enough password"
	g.AddUser(t, "first", pw, "dev", "first@example.com")
	g.Start(t)
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.AdminPort)

	// Writers: users and keys through the admin API, as fast as it takes
	// them, until the backups are done.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var written, usersCreated atomic.Int64 // user+key pairs done; users acknowledged
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; !stop.Load() && i < 400; i++ {
				name := fmt.Sprintf("w%d-u%d", w, i)
				body := fmt.Sprintf(`{"username":%q,"password":"pw-%s-long-enough"}`, name, name)
				req, _ := http.NewRequest("POST", admin+"/authgate/users", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Origin", admin)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("admin POST users: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("admin POST users %s: HTTP %d", name, resp.StatusCode)
					return
				}
				kreq, _ := http.NewRequest("POST", admin+"/authgate/keys", strings.NewReader(fmt.Sprintf(`{"user":%q,"name":"k"}`, name)))
				kreq.Header.Set("Content-Type", "application/json")
				kreq.Header.Set("Origin", admin)
				usersCreated.Add(1)
				kresp, err := client.Do(kreq)
				if err != nil {
					t.Errorf("admin POST keys: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, kresp.Body)
				kresp.Body.Close()
				if kresp.StatusCode != http.StatusCreated {
					t.Errorf("admin POST keys for %s: HTTP %d", name, kresp.StatusCode)
					return
				}
				written.Add(1)
			}
		}()
	}

	var backups []string
	overlapped := 0
	for i := range 3 {
		time.Sleep(150 * time.Millisecond)
		path := filepath.Join(g.Dir, fmt.Sprintf("backup-%d.db", i))
		before := usersCreated.Load()
		out := g.LiveCLI(t, "", "backup", path, "--json")
		after := usersCreated.Load()
		var counts store.Counts
		if err := json.Unmarshal([]byte(out), &counts); err != nil || counts.Users < 1 || counts.SigningKeys < 1 {
			t.Fatalf("backup %d: %q (%v)", i, out, err)
		}
		// A point in time between the two readings: every user acknowledged
		// before the backup began is in it; at most the two in flight
		// beyond those acknowledged by its end.
		if n := int64(counts.Users) - 1; n < before || n > after+2 {
			t.Errorf("backup %d holds %d written users, want between %d (acknowledged before it) and %d", i, n, before, after+2)
		}
		if after > before {
			overlapped++
		}
		t.Logf("backup %d: %d users, taken while %d more were written", i, counts.Users, after-before)
		info, err := os.Stat(path)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("backup file: %v, mode %v, want 0600", err, info.Mode().Perm())
		}
		backups = append(backups, path)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d users written while 3 backups were taken", written.Load())
	if overlapped < 2 {
		t.Errorf("only %d of 3 backups ran while writes were acknowledged: the test did not show hot backups", overlapped)
	}

	// Each copy checks out on its own (independently of the CLI's check).
	for _, path := range backups {
		st, err := bbolt.Open(path, bbolt.Options{})
		if err != nil {
			t.Fatalf("opening %s: %v", path, err)
		}
		counts, err := st.Check()
		st.Close()
		if err != nil {
			t.Fatalf("backup %s: %v", path, err)
		}
		t.Logf("%s: %+v", filepath.Base(path), counts)
	}
	if _, _, err := g.Run("", "authgate", "backup", backups[0], "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort)); err == nil {
		t.Error("backup over an existing file succeeded; it must never overwrite")
	}

	// Restore: a server on the copy lets "first" in.
	g.Stop(t)
	g.DB = backups[len(backups)-1]
	g.ConfigPath = g.WriteConfig("Caddyfile.restored", "")
	g.Start(t)
	g.Login(t, "first", pw)
}
