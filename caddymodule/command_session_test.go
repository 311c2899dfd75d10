package caddymodule

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
)

// session list tells the kinds apart (a password login, a browser
// session, a quick_login) and shows when a session was last seen, in the
// table and in --json.
func TestSessionListKinds(t *testing.T) {
	db := newDB(t)
	mustCLI(t, db, "pw-max-12345\n", "user", "add", "max", "--password-stdin")
	seen := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	ids := map[string]string{}
	func() {
		st, err := bbolt.Open(db, bbolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.UserByLogin("max")
		if err != nil {
			t.Fatal(err)
		}
		base := time.Now().UTC()
		for i, c := range []struct {
			kind string
			sess store.Session
		}{
			{"login", store.Session{}},
			{"browser", store.Session{Browser: true}},
			{"quick_login", store.Session{KeyID: "key_x", Permissions: store.PermRead}},
		} {
			sess := c.sess
			sess.UserID, sess.CreatedAt, sess.ExpiresAt = u.ID, base.Add(time.Duration(i)*time.Second), base.Add(time.Hour)
			if _, err := st.CreateSession(&sess, store.DigestOf(c.kind), 0); err != nil {
				t.Fatal(err)
			}
			ids[c.kind] = sess.ID
		}
		if err := st.TouchSessions(map[string]time.Time{ids["browser"]: seen}); err != nil {
			t.Fatal(err)
		}
	}()

	out := mustCLI(t, db, "", "session", "list", "--user", "max")
	if !regexp.MustCompile(`(?m)^ID +USER +KIND +CREATED +EXPIRES +LAST SEEN +KEY +STATE$`).MatchString(out) {
		t.Errorf("session list header:\n%s", out)
	}
	for kind, id := range ids {
		last := "-"
		if kind == "browser" {
			last = regexp.QuoteMeta(seen.Format(time.RFC3339))
		}
		if !regexp.MustCompile(`(?m)^` + id + ` +max +` + kind + ` +\S+ +\S+ +` + last + ` `).MatchString(out) {
			t.Errorf("session list: no %s row for %s last seen %s:\n%s", kind, id, last, out)
		}
	}

	var list []admin.SessionView
	if err := json.Unmarshal([]byte(mustCLI(t, db, "", "session", "list", "--user", "max", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("session list --json: %+v", list)
	}
	for _, v := range list {
		browser := v.ID == ids["browser"]
		if v.Browser != browser || v.LastSeen.Equal(seen) != browser {
			t.Errorf("session list --json: %s browser %v last seen %v", v.ID, v.Browser, v.LastSeen)
		}
	}
}
