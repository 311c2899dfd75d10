package admin

import (
	"encoding/json"
	"strings"
	"testing"
)

// Passwords shorter than the minimum are refused with a 400 that states
// the minimum and never the password, on add and on passwd; the minimum
// counts characters, not bytes.
func TestAdminPasswordPolicy(t *testing.T) {
	e := newEnv(t)
	const short = "seven77"
	for _, c := range []struct {
		method, path, body string
	}{
		{"POST", "/authgate/users", mustJSON(t, AddUserRequest{Username: "fay", Password: short})},
		{"POST", "/authgate/users", mustJSON(t, AddUserRequest{Username: "fay", Password: "äöüß"})}, // 8 bytes, 4 characters
		{"PUT", "/authgate/users/gus/password", mustJSON(t, map[string]string{"password": short})},
	} {
		if c.method == "PUT" {
			e.addUser("gus", "pw-gus-1234")
		}
		w := e.do(c.method, c.path, c.body)
		if w.Code != 400 || !strings.Contains(w.Body.String(), "at least 8 characters") {
			t.Errorf("%s %s with a short password: %d %s, want 400 stating the minimum", c.method, c.path, w.Code, w.Body)
		}
		noSecrets(t, "the refusal", w.Body.String(), short, "äöüß")
	}
	e.login("gus", "pw-gus-1234") // the refused passwd changed nothing

	// At the minimum it passes, in characters: 8 of them in 16 bytes.
	if _, err := e.ops.AddUser(AddUserRequest{Username: "hal", Password: "ääääääää"}); err != nil {
		t.Errorf("an 8-character password: %v", err)
	}

	// A configured minimum applies to both.
	e.ops.MinPasswordLength = 12
	w := e.do("POST", "/authgate/users", mustJSON(t, AddUserRequest{Username: "ivy", Password: "pw-ivy-123"}))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "at least 12 characters") {
		t.Errorf("add under a 12-character minimum: %d %s", w.Code, w.Body)
	}
	if _, err := e.ops.SetPassword("gus", "eleven-char"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("passwd under a 12-character minimum: %v", err)
	}
	if _, err := e.ops.SetPassword("gus", "twelve-chars"); err != nil {
		t.Errorf("a 12-character password: %v", err)
	}
}

// A duplicate login names what is taken: the username, or the email.
func TestAdminDuplicateLogins(t *testing.T) {
	e := newEnv(t)
	e.addUser("jo", "pw-jo-12345")
	for _, c := range []struct {
		req  AddUserRequest
		want string
	}{
		{AddUserRequest{Username: "JO", Password: "pw-jo-12345"}, `username "JO" is already in use`},
		{AddUserRequest{Username: "jo2", Password: "pw-jo-12345", Email: "Jo@Example.com"}, `email "Jo@Example.com" is already in use`},
		{AddUserRequest{Username: "jo@example.com", Password: "pw-jo-12345"}, `username "jo@example.com" is already in use`},
	} {
		w := e.do("POST", "/authgate/users", mustJSON(t, c.req))
		var body struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != 409 || err != nil || !strings.Contains(body.Error, c.want) {
			t.Errorf("add %+v: %d %s, want 409 with %q", c.req.Username, w.Code, w.Body, c.want)
		}
	}
}
