package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/authgate/authgate/store"
)

func TestAdminOpsSetPIN(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("wes", "pw-wes-123")
	tok := g.login("wes", "pw-wes-123").AccessToken

	if _, err := g.ops.setPIN("wes", ""); err == nil {
		t.Error("an empty PIN was accepted")
	}
	if _, err := g.ops.setPIN("nobody", "1234"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("unknown user: %v", err)
	}
	v, err := g.ops.setPIN("wes", "1357")
	if err != nil {
		t.Fatal(err)
	}
	if !v.HasPIN {
		t.Error("the view says no PIN")
	}
	// The session goes on, and its token checks the new PIN.
	expectValid(t, checkSecret(g, "check_pin", tok, `{"pin":"1357"}`))
	if _, err := g.ops.setPIN("wes", "2468"); err != nil {
		t.Fatal(err)
	}
	expectRefused(t, g, checkSecret(g, "check_pin", tok, `{"pin":"1357"}`), 401, "invalid_credentials")
	expectValid(t, checkSecret(g, "check_pin", tok, `{"pin":"2468"}`))
	expectValid(t, checkSecret(g, "check_password", tok, `{"password":"pw-wes-123"}`))
}

func ptr[T any](v T) *T { return &v }

func TestAdminOpsSetProfileChangesOnlyGivenFields(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("xena", "pw-xena-123", "staff", "ops")

	v, err := g.ops.setProfile("xena", userChanges{FirstName: ptr("Xena"), LastName: ptr("Warrior"), Lang: ptr("de"), Rank: ptr(3)})
	if err != nil {
		t.Fatal(err)
	}
	if v.FirstName != "Xena" || v.LastName != "Warrior" || v.Lang != "de" || v.Rank != 3 {
		t.Errorf("after the first set: %+v", v)
	}
	v, err = g.ops.setProfile("xena@example.com", userChanges{Timezone: ptr("Europe/Berlin"), SessionLimit: ptr(2), Roles: ptr([]string{"admin, auditors", ""})})
	if err != nil {
		t.Fatal(err)
	}
	u, err := g.app.store.UserByID(v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.FirstName != "Xena" || u.LastName != "Warrior" || u.Lang != "de" || u.Rank != 3 || u.Email != "xena@example.com" ||
		u.Timezone != "Europe/Berlin" || u.SessionLimit != 2 || strings.Join(u.Roles, ",") != "admin,auditors" || u.PasswordHash == "" {
		t.Errorf("after the second set: %+v", u)
	}
	// The plentymarkets profile shows it.
	w := g.do(bearer("GET", "/rest/user", g.login("xena", "pw-xena-123").AccessToken))
	var body pmUserBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.RealName != "Xena Warrior" || body.Lang != "de" || body.Timezone != "Europe/Berlin" {
		t.Errorf("GET /rest/user: %d %s", w.Code, w.Body)
	}

	// Clearing is setting to "".
	if v, err = g.ops.setProfile("xena", userChanges{LastName: ptr(""), Roles: ptr([]string{})}); err != nil {
		t.Fatal(err)
	}
	if v.LastName != "" || v.FirstName != "Xena" || len(v.Roles) != 0 {
		t.Errorf("after clearing: %+v", v)
	}
	if _, err := g.ops.setProfile("xena", userChanges{}); err == nil {
		t.Error("an empty change was accepted")
	}
}

func TestAdminOpsProfileRefusals(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("yara", "pw-yara-123")
	g.addUser("zack", "pw-zack-123")

	_, err := g.ops.setProfile("zack", userChanges{Email: ptr("YARA@example.com")})
	if err == nil || !strings.Contains(err.Error(), "already names another user") {
		t.Errorf("duplicate email: %v", err)
	}
	if _, err := g.ops.setProfile("zack", userChanges{Email: ptr("yara")}); err == nil {
		t.Error("an email equal to another user's username was accepted")
	}
	if _, err := g.ops.setProfile("ghost", userChanges{City: ptr("Oslo")}); err == nil || !strings.Contains(err.Error(), `no user "ghost"`) {
		t.Errorf("unknown user: %v", err)
	}
	for name, c := range map[string]userChanges{
		"email with space":  {Email: ptr("z ack@example.com")},
		"lang":              {Lang: ptr("de DE")},
		"timezone":          {Timezone: ptr("../../etc/passwd")},
		"birth date":        {BirthDate: ptr("yesterday")},
		"session limit":     {SessionLimit: ptr(-1)},
		"control character": {FirstName: ptr("Za\x1b[31mck")},
		"newline in role":   {Roles: ptr([]string{"ops\nadmin"})},
		"invalid UTF-8":     {Notes: ptr("\xff")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := g.ops.setProfile("zack", c); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("got %v, want store.ErrInvalid", err)
			}
		})
	}
	for name, c := range map[string]userChanges{
		"date":           {BirthDate: ptr("1990-04-01")},
		"RFC 3339":       {BirthDate: ptr("1990-04-01T00:00:00Z")},
		"region lang":    {Lang: ptr("en-GB")},
		"zone":           {Timezone: ptr("America/Argentina/Buenos_Aires")},
		"multiline note": {Notes: ptr("line one\nline two\ttabbed")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := g.ops.setProfile("zack", c); err != nil {
				t.Error(err)
			}
		})
	}
	u, _ := g.ops.showUser("zack")
	if u.Email != "zack@example.com" {
		t.Errorf("a refused change changed the email to %q", u.Email)
	}
}

func TestAdminOpsSettings(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("abe", "pw-abe-123")

	s, err := g.ops.setSetting("abe", settingRequest{Name: "theme", Value: "dark", Category: ptr("ui"), ReadOnly: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := g.ops.showUser("abe")
	if s.ID != 1 || s.Name != "theme" || s.Value != "dark" || s.Category != "ui" || !s.ReadOnly || s.UserID != u.ID {
		t.Errorf("created: %+v", s)
	}
	s2, err := g.ops.setSetting("abe", settingRequest{Name: "lang", Value: "de"})
	if err != nil || s2.ID != 2 {
		t.Fatalf("second setting: %+v %v", s2, err)
	}
	// An update changes the value and only the fields given.
	s, err = g.ops.setSetting("abe", settingRequest{Name: "theme", Value: "light", Group: ptr("look")})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != 1 || s.Value != "light" || s.Category != "ui" || s.Group != "look" || !s.ReadOnly {
		t.Errorf("updated: %+v", s)
	}
	if s, _ = g.ops.setSetting("abe", settingRequest{Name: "theme", Value: "light", ReadOnly: ptr(false)}); s.ReadOnly {
		t.Error("--read-only=false did not clear the flag")
	}

	list, err := g.ops.listSettings("abe")
	if err != nil || len(list) != 2 || list[0].Name != "theme" || list[1].Name != "lang" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := g.ops.deleteSetting("abe", "theme"); err != nil {
		t.Fatal(err)
	}
	if err := g.ops.deleteSetting("abe", "theme"); err == nil {
		t.Error("deleting a missing setting succeeded")
	}
	// New ids follow the highest, even after deletes and imports.
	if _, err := g.app.store.UpdateUser(u.ID, func(u *store.User) error {
		u.Settings = append(u.Settings, store.Setting{ID: 41, Name: "imported"}, store.Setting{ID: 7, Name: "twice"}, store.Setting{ID: 8, Name: "twice"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s, _ := g.ops.setSetting("abe", settingRequest{Name: "new", Value: "x"}); s.ID != 42 {
		t.Errorf("next id %d, want 42", s.ID)
	}
	if _, err := g.ops.setSetting("abe", settingRequest{Name: "twice", Value: "x"}); err == nil || !strings.Contains(err.Error(), "several settings") {
		t.Errorf("ambiguous name: %v", err)
	}
	if err := g.ops.deleteSetting("abe", "twice"); err != nil {
		t.Fatal(err)
	}
	if list, _ := g.ops.listSettings("abe"); len(list) != 3 {
		t.Errorf("after deleting both duplicates: %+v", list)
	}

	for name, req := range map[string]settingRequest{
		"no name":         {Value: "x"},
		"control in name": {Name: "a\x00b", Value: "x"},
		"control in type": {Name: "ok", Value: "x", Type: ptr("\x07")},
	} {
		if _, err := g.ops.setSetting("abe", req); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want store.ErrInvalid", name, err)
		}
	}
	if _, err := g.ops.setSetting("ghost", settingRequest{Name: "a", Value: "b"}); err == nil {
		t.Error("a setting for an unknown user was accepted")
	}
}

// runCLI runs `caddy authgate <args> --db db` in-process.
func runCLI(t *testing.T, db, stdin string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "authgate", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().String("db", "", "")
	root.AddCommand(userCommand(), keyCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--db", db))
	err := root.Execute()
	return out.String(), err
}

func mustCLI(t *testing.T, db, stdin string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, db, stdin, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestAdminOpsCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "authgate.db")
	mustCLI(t, db, "pw-bea-123\n", "user", "add", "bea", "--password-stdin", "--email", "bea@example.com", "--roles", "a,b")
	mustCLI(t, db, "9876\n", "user", "set-pin", "bea", "--pin-stdin")
	if _, err := runCLI(t, db, "\n", "user", "set-pin", "bea", "--pin-stdin"); err == nil {
		t.Error("an empty PIN on stdin was accepted")
	}

	out := mustCLI(t, db, "", "user", "set", "bea", "--first-name", "Bea", "--last-name", "Tris", "--rank", "5", "--roles", "", "--json")
	var v userView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("user set --json: %v\n%s", err, out)
	}
	if v.FirstName != "Bea" || v.LastName != "Tris" || v.Rank != 5 || len(v.Roles) != 0 || v.Email != "bea@example.com" || !v.HasPIN {
		t.Errorf("user set: %+v", v)
	}
	// Flags not given stay; a table shows the profile; no hash anywhere.
	out = mustCLI(t, db, "", "user", "set", "bea", "--city", "Graz")
	for _, want := range []string{`first name +Bea`, `last name +Tris`, `city +Graz`, `pin +set`, `rank +5`} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("user set output lacks a line %q:\n%s", want, out)
		}
	}
	show := mustCLI(t, db, "", "user", "show", "bea", "--json")
	list := mustCLI(t, db, "", "user", "list", "--json")
	for _, o := range []string{out, show, list} {
		if strings.Contains(o, "argon2") || strings.Contains(strings.ToLower(o), "hash") {
			t.Errorf("a view shows a hash:\n%s", o)
		}
	}

	for args, want := range map[string]string{
		"user set bea":                               "nothing to change",
		"user set bea --rank x":                      "invalid argument",
		"user set bea --lang d.e":                    "lang",
		"user set ghost --city x":                    `no user "ghost"`,
		"user setting set bea":                       "accepts 3 arg(s)",
		"user setting delete bea nosuch":             `no setting "nosuch"`,
		"user set bea --session-limit -2":            "session limit",
		"user set bea --birth-date 1.2.90":           "birth date",
		"user setting set bea  x --type t":           "setting name",
		"user setting set bea a b --bogus":           "unknown flag",
		"user setting set bea a b --read-only=maybe": "invalid argument",
	} {
		_, err := runCLI(t, db, "", strings.Split(args, " ")...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}

	mustCLI(t, db, "", "user", "setting", "set", "bea", "theme", "dark", "--category", "ui", "--read-only")
	mustCLI(t, db, "", "user", "setting", "set", "bea", "volume", "11", "--type", "int")
	mustCLI(t, db, "", "user", "setting", "set", "bea", "theme", "light", "--read-only=false")
	var settings []settingView
	if err := json.Unmarshal([]byte(mustCLI(t, db, "", "user", "setting", "list", "bea", "--json")), &settings); err != nil {
		t.Fatal(err)
	}
	if len(settings) != 2 || settings[0] != (settingView{ID: 1, Category: "ui", Name: "theme", Value: "light", UserID: v.ID}) ||
		settings[1] != (settingView{ID: 2, Name: "volume", Value: "11", Type: "int", UserID: v.ID}) {
		t.Errorf("settings: %+v", settings)
	}
	mustCLI(t, db, "", "user", "setting", "delete", "bea", "volume")
	if out := mustCLI(t, db, "", "user", "setting", "list", "bea"); strings.Contains(out, "volume") || !strings.Contains(out, "theme") {
		t.Errorf("after delete:\n%s", out)
	}
}

// An id-shaped name is only ever an id: no login may take another user's
// id, and findUser resolves the id to its own user.
func TestAdminOpsFindUserByIDNeverByLogin(t *testing.T) {
	g := newGateway(t, nil)
	victim := &store.User{ID: "usr_00000000000000000001", Username: "victim"}
	if err := g.app.store.CreateUser(victim); err != nil {
		t.Fatal(err)
	}
	attacker := g.addUser("attacker", "pw-attacker-123")

	if _, err := g.ops.setProfile("attacker", userChanges{Email: ptr(victim.ID)}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("email set to the victim's id: %v, want store.ErrInvalid", err)
	}
	if _, err := g.ops.addUser(addUserRequest{Username: "other", Password: "pw-other-123", Email: strings.ToUpper(victim.ID)}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("new user with the victim's id as email: %v, want store.ErrInvalid", err)
	}
	if _, err := g.ops.addUser(addUserRequest{Username: victim.ID, Password: "pw-other-123"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("new user with the victim's id as username: %v, want store.ErrInvalid", err)
	}
	for name, want := range map[string]string{victim.ID: victim.ID, "victim": victim.ID, attacker.ID: attacker.ID, "ATTACKER@example.com": attacker.ID} {
		if u, err := g.ops.findUser(name); err != nil || u.ID != want {
			t.Errorf("findUser(%q) = %+v, %v; want %s", name, u, err, want)
		}
	}
	if _, err := g.ops.findUser("usr_nobody"); err == nil || !strings.Contains(err.Error(), `no user "usr_nobody"`) {
		t.Errorf("unknown id: %v", err)
	}
}
