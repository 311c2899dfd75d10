package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/auth"
)

// failLogins sends n wrong passwords for login through the service.
func (e *env) failLogins(login string, n int) {
	e.t.Helper()
	for range n {
		if _, err := e.svc.Login(context.Background(), login, "a wrong password"); err == nil {
			e.t.Fatalf("login %s with a wrong password succeeded", login)
		}
	}
}

// A locked user shows their lock in `user show` and `lockout list`; a
// password change and an enable leave it; unlock clears it, and the right
// password works again. The env locks after 5 failures.
func TestAdminLockShownAndUnlocked(t *testing.T) {
	e := newEnv(t)
	bea := e.addUser("bea", "pw-bea-1234")
	e.addUser("cy", "pw-cy-12345")
	e.failLogins("bea@example.com", 5) // by the email: the same account
	e.failLogins("cy", 2)
	var locked *auth.LockedError
	if _, err := e.svc.Login(context.Background(), "bea", "pw-bea-1234"); !errors.As(err, &locked) {
		t.Fatalf("the right password after 5 failures: %v, want a lock", err)
	}

	w := e.do("GET", "/authgate/users/bea", "")
	var v UserView
	if err := json.Unmarshal(w.Body.Bytes(), &v); w.Code != 200 || err != nil {
		t.Fatalf("show: %d %s", w.Code, w.Body)
	}
	if v.Lock == nil || v.Lock.LockedUntil.IsZero() || !v.Lock.LockedUntil.After(e.ops.now()) {
		t.Errorf("show of a locked user: lock %+v, want lockedUntil in the future", v.Lock)
	}
	if !strings.Contains(w.Body.String(), `"lock":{"failures":0,"lastFailure":`) {
		t.Errorf("show's JSON lacks the lock member: %s", w.Body)
	}
	cy, err := e.ops.ShowUser("cy")
	if err != nil || cy.Lock == nil || cy.Lock.Failures != 2 || !cy.Lock.LockedUntil.IsZero() {
		t.Errorf("show of a user with 2 failures: %+v %v", cy.Lock, err)
	}

	// A user with no failures has no lock member at all.
	e.addUser("dee", "pw-dee-1234")
	if w := e.do("GET", "/authgate/users/dee", ""); strings.Contains(w.Body.String(), `"lock"`) {
		t.Errorf("show of a clean user has a lock: %s", w.Body)
	}

	// An unknown login is listed by its label only, never by what was typed.
	e.failLogins("typed-secret-name", 1)
	w = e.do("GET", "/authgate/lockouts", "")
	var list []LockoutView
	if err := json.Unmarshal(w.Body.Bytes(), &list); w.Code != 200 || err != nil {
		t.Fatalf("lockouts: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "typed-secret-name") || strings.Contains(w.Body.String(), "wrong password") {
		t.Errorf("the lockout list shows what a client typed: %s", w.Body)
	}
	byLabel := map[string]LockoutView{}
	for _, l := range list {
		byLabel[l.Label] = l
	}
	if l := byLabel["user:"+bea.ID]; l.UserID != bea.ID || l.Username != "bea" || l.LockedUntil.IsZero() || list[0].Label != l.Label {
		t.Errorf("bea in the list: %+v, want first, locked, named (list %+v)", l, list)
	}
	if l := byLabel["unknown login"]; l.Failures != 1 || l.UserID != "" || l.Username != "" {
		t.Errorf("the unknown login in the list: %+v", l)
	}
	if len(list) != 3 {
		t.Errorf("lockouts: %d entries, want bea, cy and the unknown login: %+v", len(list), list)
	}

	// Neither a new password nor an enable unlocks (documented): unlock does.
	if _, err := e.ops.SetPassword("bea", "pw-bea-5678"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ops.SetDisabled("bea", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(context.Background(), "bea", "pw-bea-5678"); !errors.As(err, &locked) {
		t.Errorf("after passwd and enable: %v, want still locked", err)
	}
	w = e.do("POST", "/authgate/users/bea/unlock", "")
	var unlocked UserView
	if err := json.Unmarshal(w.Body.Bytes(), &unlocked); w.Code != 200 || err != nil || unlocked.Lock != nil || unlocked.Username != "bea" {
		t.Fatalf("unlock: %d %s", w.Code, w.Body)
	}
	e.login("bea", "pw-bea-5678")
	if list, err := e.ops.ListLockouts(); err != nil || len(list) != 2 {
		t.Errorf("after the unlock: %+v %v, want cy and the unknown login only", list, err)
	}
	// Unlocking a user who is not locked is no error; an unknown one is.
	if w := e.do("POST", "/authgate/users/dee/unlock", ""); w.Code != 200 {
		t.Errorf("unlock of a clean user: %d %s", w.Code, w.Body)
	}
	if w := e.do("POST", "/authgate/users/nobody/unlock", ""); w.Code != 404 || !strings.Contains(w.Body.String(), `no user \"nobody\"`) {
		t.Errorf("unlock of an unknown user: %d %s", w.Code, w.Body)
	}
}

// The client speaks the routes: an unlock through it clears the lock and
// the list comes back typed.
func TestAdminClientLockouts(t *testing.T) {
	e := newEnv(t)
	e.addUser("eli", "pw-eli-1234")
	e.failLogins("eli", 5)
	c := &Client{Do: InProcess(e.h), Where: "test"}
	list, err := c.ListLockouts()
	if err != nil || len(list) != 1 || list[0].Username != "eli" || list[0].LockedUntil.IsZero() {
		t.Fatalf("ListLockouts: %+v %v", list, err)
	}
	if v, err := c.ShowUser("eli"); err != nil || v.Lock == nil {
		t.Fatalf("ShowUser: %+v %v", v, err)
	}
	if v, err := c.UnlockUser("eli"); err != nil || v.Lock != nil {
		t.Fatalf("UnlockUser: %+v %v", v, err)
	}
	e.login("eli", "pw-eli-1234")
}
