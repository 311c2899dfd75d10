package e2e

import (
	"strings"
	"testing"
)

// TestAttackIdentityConfusion tries to make a second account that looks
// like, or is reached as, an existing one, through the CLI of the built
// binary: logins are one namespace compared after PRECIS, look-alikes are
// refused, an email is one address, and an id-shaped name only ever means
// an id.
func TestAttackIdentityConfusion(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "confusion: a long password"
	aliceID := g.AddUser(t, "alice", pw, "admin", "alice@example.com")
	g.AddUser(t, "josé", pw, "dev", "jose@example.com")
	add := func(name, email string) error {
		args := []string{"authgate", "user", "add", name, "--password-stdin", "--db", g.DB}
		if email != "" {
			args = append(args, "--email", email)
		}
		_, _, err := g.Run(pw+"\n", args...)
		return err
	}
	refused := 0
	for _, name := range []string{
		"ａｌｉｃｅ",       // fullwidth: the same login
		"ALICE",       // case: the same login
		"jose\u0301",  // NFD josé: the same login
		"ſam",         // long s
		"alice\u200b", // zero-width space
		"al\u00adice", // soft hyphen
		"\u202ealice", // right-to-left override
		"аlice",       // Cyrillic а
		"alic\u0435",  // Cyrillic е
		"Ωmega",       // Greek beside Latin
		"alice\u2060", // word joiner
		"a\u200dlice", // zero-width joiner
		"usr_" + strings.Repeat("a", 20),
		"KEY_x",
		"ses_x",
		aliceID,
		strings.Repeat("n", 65),
	} {
		if err := add(name, ""); err == nil {
			t.Errorf("SECURITY: user add %q was accepted beside existing accounts", name)
			continue
		}
		refused++
	}
	for _, email := range []string{"a@x,b@y", "root", "Bob <bob@example.com>", `"a b"@example.com`, "ａｌｉｃｅ@example.com", "ALICE@EXAMPLE.COM", "alice", aliceID, "b@x，c@y"} {
		if err := add("newcomer", email); err == nil {
			t.Errorf("SECURITY: user add with email %q was accepted", email)
			g.CLI(t, "", "user", "delete", "newcomer", "--yes")
			continue
		}
		refused++
	}
	t.Logf("%d confusable logins and emails refused", refused)

	// Every spelling of alice's login reaches alice, and upstreams see her
	// stored username.
	g.Start(t)
	for _, login := range []string{"ALICE", "ａｌｉｃｅ", "Alice@Example.COM"} {
		tok := g.Login(t, login, pw)
		mark := up.Mark()
		if r := g.Do(t, "GET", "/app/x", nil, bearer(tok.Access)); r.Status != 200 {
			t.Fatalf("as %q: %s", login, r)
		}
		wantIdentity(t, "login as "+login, wantOneUpstream(t, login, up, mark), map[string]string{
			"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com", "x-auth-roles": "admin", "x-auth-method": "bearer",
		})
	}
	// An admin command naming alice's id acts on alice, never on a login.
	out := g.LiveCLI(t, "", "user", "show", aliceID)
	if !strings.Contains(out, "alice") {
		t.Errorf("user show <alice's id>: %q", out)
	}
}
