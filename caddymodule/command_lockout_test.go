package caddymodule

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store/bbolt"
)

// lockUser fails n logins of login on the store file db (closed after),
// through the service as the gateway would; 5 failures lock.
func lockUser(t *testing.T, db, login string, n int) {
	t.Helper()
	st, err := bbolt.Open(db, bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := auth.New(st, auth.Config{
		Issuer: "authgate", AccessTTL: time.Hour, RefreshTTL: time.Hour, SigningAlg: "EdDSA",
		LockoutAttempts: 5, LockoutDuration: 5 * time.Minute, SessionLimit: 10, CacheEntries: 100,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for range n {
		if _, err := svc.Login(context.Background(), login, "a wrong password"); err == nil {
			t.Fatal("a wrong password logged in")
		}
	}
}

// With --db: user show and lockout list show a lock the store kept, and
// user unlock clears it.
func TestLockoutCLI(t *testing.T) {
	db := newDB(t)
	mustCLI(t, db, "pw-kim-12345\n", "user", "add", "kim", "--password-stdin")
	mustCLI(t, db, "pw-lou-12345\n", "user", "add", "lou", "--password-stdin")
	lockUser(t, db, "kim", 5)
	lockUser(t, db, "lou", 2)

	if out := mustCLI(t, db, "", "user", "show", "kim"); !regexp.MustCompile(`(?m)^lock +locked until 20\d\d-`).MatchString(out) {
		t.Errorf("user show of a locked user:\n%s", out)
	}
	if out := mustCLI(t, db, "", "user", "show", "lou"); !regexp.MustCompile(`(?m)^lock +2 recent failures, not locked$`).MatchString(out) {
		t.Errorf("user show of a user with failures:\n%s", out)
	}
	var list []admin.LockoutView
	if err := json.Unmarshal([]byte(mustCLI(t, db, "", "lockout", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Username != "kim" || list[0].LockedUntil.IsZero() || list[1].Username != "lou" || list[1].Failures != 2 {
		t.Errorf("lockout list --json: %+v", list)
	}
	table := mustCLI(t, db, "", "lockout", "list")
	if !regexp.MustCompile(`(?m)^user:usr_\S+ +usr_\S+ +kim +0 +20\S+ +20\S+$`).MatchString(table) {
		t.Errorf("lockout list:\n%s", table)
	}

	if out := mustCLI(t, db, "", "user", "unlock", "kim"); !strings.Contains(out, "user kim unlocked") {
		t.Errorf("user unlock: %q", out)
	}
	if out := mustCLI(t, db, "", "user", "show", "kim"); !regexp.MustCompile(`(?m)^lock +-$`).MatchString(out) {
		t.Errorf("user show after unlock:\n%s", out)
	}
	if out := mustCLI(t, db, "", "lockout", "list"); strings.Contains(out, "kim") || !strings.Contains(out, "lou") {
		t.Errorf("lockout list after unlock:\n%s", out)
	}
	if _, err := runCLI(t, db, "", "user", "unlock", "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("unlock of an unknown user: %v", err)
	}
}
