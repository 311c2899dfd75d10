package admin

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// The client speaks the routes' shapes, in-process as over HTTP.
func TestClientInProcess(t *testing.T) {
	e := newEnv(t)
	c := &Client{Do: InProcess(e.h), Where: "test"}
	v, err := c.AddUser(AddUserRequest{Username: "ida", Password: "pw-ida-123", Email: "ida@example.com"})
	if err != nil || v.Profile["email"] != "ida@example.com" {
		t.Fatalf("add: %+v %v", v, err)
	}
	v, err = c.SetProfile("ida", UserChanges{Profile: store.ProfileChanges{"city": "Kiel", "email": ""}, Rank: ptr(4)})
	if err != nil || v.Profile["city"] != "Kiel" || v.Rank != 4 {
		t.Fatalf("set: %+v %v", v, err)
	}
	if _, set := v.Profile["email"]; set {
		t.Errorf("the email was not removed: %+v", v)
	}
	if _, err := c.SetProfile("ida", UserChanges{Profile: store.ProfileChanges{"shoeSize": "44"}}); err == nil || !strings.Contains(err.Error(), `unknown field "shoeSize"`) {
		t.Errorf("an unknown profile field: %v", err)
	}
	if _, err := c.ShowUser("nobody"); err == nil || err.Error() != `no user "nobody"` {
		t.Errorf("the server's message: %v", err)
	}
	k, err := c.CreateKey(CreateKeyRequest{User: "ida", Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// A key is revoked by itself through the body, by id through the URL.
	if id, err := c.RevokeKey(k.Key); err != nil || id != k.ID {
		t.Errorf("revoke by the key: %q %v", id, err)
	}
	if id, err := c.RevokeKey(k.ID); err != nil || id != k.ID {
		t.Errorf("revoke by id: %q %v", id, err)
	}
	var backup bytes.Buffer
	if kind, err := c.Backup(&backup); err != nil || backup.Len() == 0 || kind != "bbolt" {
		t.Errorf("backup through the route: %d bytes of %q, %v", backup.Len(), kind, err)
	}
}

// No secret goes into a URL, which Caddy's admin endpoint logs.
func TestClientKeepsSecretsOutOfURLs(t *testing.T) {
	key, err := secret.NewSecret(secret.KeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	c := &Client{Do: func(*http.Request) (*http.Response, error) { sent++; return nil, errors.New("sent") }}
	for name, call := range map[string]func() error{
		"session":     func() error { return c.RevokeSession(key) },
		"user":        func() error { _, err := c.ShowUser(key); return err },
		"keys of":     func() error { _, err := c.ListKeys(key); return err },
		"a JWT":       func() error { _, err := c.ListSessions("eyJhbGciOi.eyJzdWIiOi.c2ln"); return err },
		"setting":     func() error { return c.DeleteSetting("ida", key) },
		"setting set": func() error { _, err := c.SetSetting("ida", SettingRequest{Name: key}); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "refusing to send") || strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if sent != 0 {
		t.Errorf("%d requests were sent", sent)
	}
	if !secretInURL("/authgate/keys/"+strings.Replace(key, "_", "%5F", 1)+"/revoke") || secretInURL("/authgate/users/alice?user=bob") {
		t.Error("secretInURL")
	}
}
