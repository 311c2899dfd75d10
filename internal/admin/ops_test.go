package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store"
)

func TestAdminOpsSetPIN(t *testing.T) {
	e := newEnv(t)
	e.addUser("wes", "pw-wes-123")
	tok := e.login("wes", "pw-wes-123").Access

	if _, err := e.ops.SetPIN("wes", ""); err == nil {
		t.Error("an empty PIN was accepted")
	}
	if _, err := e.ops.SetPIN("nobody", "1234"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("unknown user: %v", err)
	}
	v, err := e.ops.SetPIN("wes", "1357")
	if err != nil {
		t.Fatal(err)
	}
	if !v.HasPIN {
		t.Error("the view says no PIN")
	}
	// The session goes on, and its token checks the new PIN.
	if err := e.svc.CheckSecret(context.Background(), e.bearer(tok), "1357", true); err != nil {
		t.Errorf("check_pin with the new PIN: %v", err)
	}
	if _, err := e.ops.SetPIN("wes", "2468"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CheckSecret(context.Background(), e.bearer(tok), "1357", true); !errors.Is(err, auth.ErrWrongPIN) {
		t.Errorf("check_pin with the old PIN: %v, want auth.ErrWrongPIN", err)
	}
	if err := e.svc.CheckSecret(context.Background(), e.bearer(tok), "2468", true); err != nil {
		t.Errorf("check_pin with the newest PIN: %v", err)
	}
	if err := e.svc.CheckSecret(context.Background(), e.bearer(tok), "pw-wes-123", false); err != nil {
		t.Errorf("check_password: %v", err)
	}
}

// A PIN change ends no session; a password change ends them all.
func TestAdminOpsSessionsAfterPINAndPassword(t *testing.T) {
	e := newEnv(t)
	e.addUser("vic", "pw-vic-123")
	tp := e.login("vic", "pw-vic-123")
	if _, err := e.ops.SetPIN("vic", "1357"); err != nil {
		t.Fatal(err)
	}
	e.bearer(tp.Access)
	if _, err := e.ops.SetPassword("vic", "pw-vic-456"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AuthenticateBearer(tp.Access); err == nil {
		t.Error("a token from before the password change still works")
	}
	if _, err := e.svc.Refresh(context.Background(), tp.Refresh); err == nil {
		t.Error("a refresh token from before the password change still works")
	}
}

func TestAdminOpsSetProfileChangesOnlyGivenFields(t *testing.T) {
	e := newEnv(t)
	e.addUser("xena", "pw-xena-123", "staff", "ops")

	v, err := e.ops.SetProfile("xena", UserChanges{Profile: store.ProfileChanges{"firstName": "Xena", "lastName": "Warrior", "lang": "de"}, Rank: ptr(3)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Profile["firstName"] != "Xena" || v.Profile["lastName"] != "Warrior" || v.Profile["lang"] != "de" || v.Rank != 3 {
		t.Errorf("after the first set: %+v", v)
	}
	v, err = e.ops.SetProfile("xena@example.com", UserChanges{Profile: store.ProfileChanges{"timezone": "Europe/Berlin"}, SessionLimit: ptr(2), Roles: ptr([]string{"admin, auditors", ""})})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.st.UserByID(v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.FirstName != "Xena" || u.LastName != "Warrior" || u.Lang != "de" || u.Rank != 3 || u.Email != "xena@example.com" ||
		u.Timezone != "Europe/Berlin" || u.SessionLimit != 2 || strings.Join(u.Roles, ",") != "admin,auditors" || u.PasswordHash == "" {
		t.Errorf("after the second set: %+v", u)
	}

	// Clearing is setting to "".
	if v, err = e.ops.SetProfile("xena", UserChanges{Profile: store.ProfileChanges{"lastName": ""}, Roles: ptr([]string{})}); err != nil {
		t.Fatal(err)
	}
	if _, set := v.Profile["lastName"]; set || v.Profile["firstName"] != "Xena" || len(v.Roles) != 0 {
		t.Errorf("after clearing: %+v", v)
	}
	if _, err := e.ops.SetProfile("xena", UserChanges{}); err == nil {
		t.Error("an empty change was accepted")
	}
	if _, err := e.ops.SetProfile("xena", UserChanges{Profile: store.ProfileChanges{}}); err == nil {
		t.Error("an empty profile change was accepted")
	}
}

// Every field of the table can be set and shows in the view, under its
// name.
func TestAdminOpsEveryProfileField(t *testing.T) {
	e := newEnv(t)
	e.addUser("quin", "pw-quin-123")
	c := UserChanges{Profile: store.ProfileChanges{}}
	for _, f := range store.ProfileFields {
		c.Profile[f.Name] = map[string]string{"email": "quin.new@example.com", "birthDate": "1990-04-01", "lang": "en-GB", "timezone": "Europe/Oslo"}[f.Name]
		if c.Profile[f.Name] == "" {
			c.Profile[f.Name] = "some " + f.Label
		}
	}
	v, err := e.ops.SetProfile("quin", c)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.st.UserByID(v.ID)
	for _, f := range store.ProfileFields {
		if v.Profile[f.Name] != c.Profile[f.Name] || *f.Of(u) != c.Profile[f.Name] {
			t.Errorf("%s: view %q, stored %q, want %q", f.Name, v.Profile[f.Name], *f.Of(u), c.Profile[f.Name])
		}
	}
}

func TestAdminOpsProfileRefusals(t *testing.T) {
	e := newEnv(t)
	e.addUser("yara", "pw-yara-123")
	e.addUser("zack", "pw-zack-123")

	_, err := e.ops.SetProfile("zack", UserChanges{Profile: store.ProfileChanges{"email": "YARA@example.com"}})
	if err == nil || !strings.Contains(err.Error(), `email "YARA@example.com" is already in use`) {
		t.Errorf("duplicate email: %v", err)
	}
	if _, err := e.ops.SetProfile("zack", UserChanges{Profile: store.ProfileChanges{"email": "yara"}}); err == nil {
		t.Error("an email equal to another user's username was accepted")
	}
	if _, err := e.ops.SetProfile("ghost", UserChanges{Profile: store.ProfileChanges{"city": "Oslo"}}); err == nil || !strings.Contains(err.Error(), `no user "ghost"`) {
		t.Errorf("unknown user: %v", err)
	}
	for name, c := range map[string]UserChanges{
		"email with space":  {Profile: store.ProfileChanges{"email": "z ack@example.com"}},
		"lang":              {Profile: store.ProfileChanges{"lang": "de DE"}},
		"timezone":          {Profile: store.ProfileChanges{"timezone": "../../etc/passwd"}},
		"birth date":        {Profile: store.ProfileChanges{"birthDate": "yesterday"}},
		"session limit":     {SessionLimit: ptr(-1)},
		"control character": {Profile: store.ProfileChanges{"firstName": "Za\x1b[31mck"}},
		"newline in role":   {Roles: ptr([]string{"ops\nadmin"})},
		"invalid UTF-8":     {Profile: store.ProfileChanges{"notes": "\xff"}},
		"no such field":     {Profile: store.ProfileChanges{"shoeSize": "44"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.ops.SetProfile("zack", c); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("got %v, want store.ErrInvalid", err)
			}
		})
	}
	for name, c := range map[string]UserChanges{
		"date":           {Profile: store.ProfileChanges{"birthDate": "1990-04-01"}},
		"RFC 3339":       {Profile: store.ProfileChanges{"birthDate": "1990-04-01T00:00:00Z"}},
		"region lang":    {Profile: store.ProfileChanges{"lang": "en-GB"}},
		"zone":           {Profile: store.ProfileChanges{"timezone": "America/Argentina/Buenos_Aires"}},
		"multiline note": {Profile: store.ProfileChanges{"notes": "line one\nline two\ttabbed"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.ops.SetProfile("zack", c); err != nil {
				t.Error(err)
			}
		})
	}
	u, _ := e.ops.ShowUser("zack")
	if u.Profile["email"] != "zack@example.com" {
		t.Errorf("a refused change changed the email to %q", u.Profile["email"])
	}
}

func TestAdminOpsSettings(t *testing.T) {
	e := newEnv(t)
	e.addUser("abe", "pw-abe-123")

	s, err := e.ops.SetSetting("abe", SettingRequest{Name: "theme", Value: "dark", Category: ptr("ui"), ReadOnly: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.ops.ShowUser("abe")
	if s.ID != 1 || s.Name != "theme" || s.Value != "dark" || s.Category != "ui" || !s.ReadOnly || s.UserID != u.ID {
		t.Errorf("created: %+v", s)
	}
	s2, err := e.ops.SetSetting("abe", SettingRequest{Name: "lang", Value: "de"})
	if err != nil || s2.ID != 2 {
		t.Fatalf("second setting: %+v %v", s2, err)
	}
	// An update changes the value and only the fields given.
	s, err = e.ops.SetSetting("abe", SettingRequest{Name: "theme", Value: "light", Group: ptr("look")})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != 1 || s.Value != "light" || s.Category != "ui" || s.Group != "look" || !s.ReadOnly {
		t.Errorf("updated: %+v", s)
	}
	if s, _ = e.ops.SetSetting("abe", SettingRequest{Name: "theme", Value: "light", ReadOnly: ptr(false)}); s.ReadOnly {
		t.Error("--read-only=false did not clear the flag")
	}

	list, err := e.ops.ListSettings("abe")
	if err != nil || len(list) != 2 || list[0].Name != "theme" || list[1].Name != "lang" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := e.ops.DeleteSetting("abe", "theme"); err != nil {
		t.Fatal(err)
	}
	if err := e.ops.DeleteSetting("abe", "theme"); err == nil {
		t.Error("deleting a missing setting succeeded")
	}
	// New ids follow the highest, even after deletes and imports.
	if _, err := e.st.UpdateUser(u.ID, func(u *store.User) error {
		u.Settings = append(u.Settings, store.Setting{ID: 41, Name: "imported"}, store.Setting{ID: 7, Name: "twice"}, store.Setting{ID: 8, Name: "twice"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.ops.SetSetting("abe", SettingRequest{Name: "new", Value: "x"}); s.ID != 42 {
		t.Errorf("next id %d, want 42", s.ID)
	}
	if _, err := e.ops.SetSetting("abe", SettingRequest{Name: "twice", Value: "x"}); err == nil || !strings.Contains(err.Error(), "several settings") {
		t.Errorf("ambiguous name: %v", err)
	}
	if err := e.ops.DeleteSetting("abe", "twice"); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.ops.ListSettings("abe"); len(list) != 3 {
		t.Errorf("after deleting both duplicates: %+v", list)
	}

	for name, req := range map[string]SettingRequest{
		"no name":         {Value: "x"},
		"control in name": {Name: "a\x00b", Value: "x"},
		"control in type": {Name: "ok", Value: "x", Type: ptr("\x07")},
	} {
		if _, err := e.ops.SetSetting("abe", req); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v, want store.ErrInvalid", name, err)
		}
	}
	if _, err := e.ops.SetSetting("ghost", SettingRequest{Name: "a", Value: "b"}); err == nil {
		t.Error("a setting for an unknown user was accepted")
	}
}

// An id-shaped name is only ever an id: no login may take another user's
// id, and findUser resolves the id to its own user.
func TestAdminOpsFindUserByIDNeverByLogin(t *testing.T) {
	e := newEnv(t)
	victim := &store.User{ID: "usr_00000000000000000001", Username: "victim"}
	if err := e.st.CreateUser(victim); err != nil {
		t.Fatal(err)
	}
	attacker := e.addUser("attacker", "pw-attacker-123")

	if _, err := e.ops.SetProfile("attacker", UserChanges{Profile: store.ProfileChanges{"email": victim.ID}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("email set to the victim's id: %v, want store.ErrInvalid", err)
	}
	if _, err := e.ops.AddUser(AddUserRequest{Username: "other", Password: "pw-other-123", Email: strings.ToUpper(victim.ID)}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("new user with the victim's id as email: %v, want store.ErrInvalid", err)
	}
	if _, err := e.ops.AddUser(AddUserRequest{Username: victim.ID, Password: "pw-other-123"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("new user with the victim's id as username: %v, want store.ErrInvalid", err)
	}
	for name, want := range map[string]string{victim.ID: victim.ID, "victim": victim.ID, attacker.ID: attacker.ID, "ATTACKER@example.com": attacker.ID} {
		if u, err := e.ops.findUser(name); err != nil || u.ID != want {
			t.Errorf("findUser(%q) = %+v, %v; want %s", name, u, err, want)
		}
	}
	if _, err := e.ops.findUser("usr_nobody"); err == nil || !strings.Contains(err.Error(), `no user "usr_nobody"`) {
		t.Errorf("unknown id: %v", err)
	}
}

// ListSessions shows a browser session as one, with when it was last
// seen; the JSON leaves both out for a session that has neither.
func TestAdminOpsListSessionsBrowser(t *testing.T) {
	e := newEnv(t)
	u := e.addUser("bo", "pw-bo-12345")
	e.login("bo", "pw-bo-12345")
	browser := &store.Session{UserID: u.ID, Browser: true, ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := e.st.CreateSession(browser, store.DigestOf("cookie"), 0); err != nil {
		t.Fatal(err)
	}
	seen := time.Now().UTC().Truncate(time.Minute)
	if err := e.st.TouchSessions(map[string]time.Time{browser.ID: seen}); err != nil {
		t.Fatal(err)
	}
	list, err := e.ops.ListSessions("bo")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListSessions = %+v, %v", list, err)
	}
	for _, v := range list {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		hasBrowser, hasSeen := strings.Contains(string(raw), `"browser":true`), strings.Contains(string(raw), `"lastSeen":`)
		if v.ID == browser.ID {
			if !v.Browser || !v.LastSeen.Equal(seen) || !hasBrowser || !hasSeen || v.Kind() != "browser" {
				t.Errorf("browser session view %s (kind %s)", raw, v.Kind())
			}
		} else if v.Browser || hasBrowser || hasSeen || v.Kind() != "login" {
			t.Errorf("password login view %s (kind %s)", raw, v.Kind())
		}
	}
	if k := (SessionView{KeyID: "key_x"}).Kind(); k != "quick_login" {
		t.Errorf("a session opened with a key is of kind %q, want quick_login", k)
	}
}
