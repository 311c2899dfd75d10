package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

func testRotateRefresh(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ivy")
	sess, r0 := MustSession(t, s, u.ID)

	r1 := NewDigest(t)
	now := time.Now()
	exp := now.Add(2 * time.Hour)
	got, err := s.RotateRefresh(r0, r1, now, exp)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sess.ID || got.Generation != 1 || !got.RefreshedAt.Equal(now) || !got.ExpiresAt.Equal(exp) || got.Revoked {
		t.Errorf("rotated session: %+v", got)
	}
	if cached, _ := s.SessionByID(sess.ID); cached.Generation != 1 {
		t.Errorf("lookup shows generation %d", cached.Generation)
	}
	// The new token rotates on.
	r2 := NewDigest(t)
	if got, err := s.RotateRefresh(r1, r2, now, exp); err != nil || got.Generation != 2 {
		t.Fatalf("second rotation: %+v, %v", got, err)
	}
	if _, err := s.RotateRefresh(NewDigest(t), NewDigest(t), now, exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: err = %v, want ErrNotFound", err)
	}
}

func testRefreshReuseRevokesSession(t *testing.T, s store.Store) {
	u := MustUser(t, s, "jack")
	sess, r0 := MustSession(t, s, u.ID)
	r1 := NewDigest(t)
	now := time.Now()
	if _, err := s.RotateRefresh(r0, r1, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// r0 is spent: presenting it again is theft.
	reused, err := s.RotateRefresh(r0, NewDigest(t), now, now.Add(time.Hour))
	if !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse: err = %v, want ErrRefreshReused", err)
	}
	// The session comes back with the error: the audit trail names it.
	if reused == nil || reused.ID != sess.ID || reused.UserID != u.ID {
		t.Errorf("reuse returned session %+v, want %s of %s", reused, sess.ID, u.ID)
	}
	// Presented once more, still reuse, still the session.
	if again, err := s.RotateRefresh(r0, NewDigest(t), now, now.Add(time.Hour)); !errors.Is(err, store.ErrRefreshReused) || again == nil || again.ID != sess.ID {
		t.Errorf("second reuse: %+v, %v; want the session and ErrRefreshReused", again, err)
	}
	got, err := s.SessionByID(sess.ID)
	if err != nil || !got.Revoked || got.RevokeReason != "refresh token reused" {
		t.Fatalf("session after reuse: %+v, %v", got, err)
	}
	// The whole family is dead: the live token r1 no longer works.
	if _, err := s.RotateRefresh(r1, NewDigest(t), now, now.Add(time.Hour)); !errors.Is(err, store.ErrSessionRevoked) {
		t.Errorf("live token after reuse: err = %v, want ErrSessionRevoked", err)
	}
}

func testRefreshExpiredOrRevoked(t *testing.T, s store.Store) {
	u := MustUser(t, s, "kate")
	sess, r0 := MustSession(t, s, u.ID)
	if _, err := s.RotateRefresh(r0, NewDigest(t), sess.ExpiresAt, sess.ExpiresAt.Add(time.Hour)); !errors.Is(err, store.ErrSessionRevoked) {
		t.Errorf("at expiry: err = %v, want ErrSessionRevoked", err)
	}
	if err := s.RevokeSession(sess.ID, "logout", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(r0, NewDigest(t), time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrSessionRevoked) {
		t.Errorf("after logout: err = %v, want ErrSessionRevoked", err)
	}
}

func testConcurrentRotationsOneWins(t *testing.T, s store.Store) {
	u := MustUser(t, s, "liam")
	sess, r0 := MustSession(t, s, u.ID)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		next := NewDigest(t)
		wg.Go(func() {
			<-start
			_, errs[i] = s.RotateRefresh(r0, next, time.Now(), time.Now().Add(time.Hour))
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrRefreshReused):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d rotations succeeded, want exactly 1", wins)
	}
	// The losers replayed a spent token: the session is revoked.
	if got, _ := s.SessionByID(sess.ID); got == nil || !got.Revoked || got.Generation != 1 {
		t.Errorf("session after the race: %+v", got)
	}
}

func testRevokeSessions(t *testing.T, s store.Store) {
	u, other := MustUser(t, s, "mia"), MustUser(t, s, "noah")
	a, _ := MustSession(t, s, u.ID)
	b, _ := MustSession(t, s, u.ID)
	c, _ := MustSession(t, s, other.ID)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	if err := s.RevokeSession(a.ID, "logout", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(a.ID, "again", at.Add(time.Hour)); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if got, _ := s.SessionByID(a.ID); got.RevokeReason != "logout" || !got.RevokedAt.Equal(at) {
		t.Errorf("second revoke changed the first: %+v", got)
	}
	if err := s.RevokeSession("ses_nobody", "x", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown session: err = %v, want ErrNotFound", err)
	}

	n, err := s.RevokeUserSessions(u.ID, "everywhere", at)
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 1 (a was already revoked)", n, err)
	}
	if got, _ := s.SessionByID(b.ID); !got.Revoked {
		t.Error("b still alive")
	}
	if got, _ := s.SessionByID(c.ID); got.Revoked {
		t.Error("another user's session was revoked")
	}
	if _, err := s.RevokeUserSessions("usr_nobody", "x", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}

	mine, _ := s.ListSessions(u.ID)
	all, _ := s.ListSessions("")
	if len(mine) != 2 || len(all) != 3 {
		t.Errorf("ListSessions: %d of mia, %d in all", len(mine), len(all))
	}
}

func testCreateSessionChecks(t *testing.T, s store.Store) {
	u := MustUser(t, s, "olga")
	exp := time.Now().Add(time.Hour)
	if _, err := s.CreateSession(&store.Session{UserID: "usr_nobody", ExpiresAt: exp}, NewDigest(t), 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateSession(&store.Session{UserID: u.ID}, NewDigest(t), 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no expiry: err = %v, want ErrInvalid", err)
	}
	if _, err := s.CreateSession(&store.Session{UserID: u.ID, ExpiresAt: exp}, store.Digest{}, 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no refresh digest: err = %v, want ErrInvalid", err)
	}
	_, d := MustSession(t, s, u.ID)
	if _, err := s.CreateSession(&store.Session{UserID: u.ID, ExpiresAt: exp}, d, 0); !errors.Is(err, store.ErrExists) {
		t.Errorf("reused refresh digest: err = %v, want ErrExists", err)
	}
}

func testDeleteSessionsExpiredBefore(t *testing.T, s store.Store) {
	u := MustUser(t, s, "pia")
	old := &store.Session{UserID: u.ID, ExpiresAt: time.Now().Add(-time.Hour)}
	r := NewDigest(t)
	if _, err := s.CreateSession(old, r, 0); err != nil {
		t.Fatal(err)
	}
	live, _ := MustSession(t, s, u.ID)

	n, err := s.DeleteSessionsExpiredBefore(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	if _, err := s.SessionByID(old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session: err = %v, want ErrNotFound", err)
	}
	if _, err := s.RotateRefresh(r, NewDigest(t), time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("its refresh token: err = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByID(live.ID); err != nil {
		t.Errorf("live session: %v", err)
	}
}

// A login past the limit revokes the user's oldest live sessions, in the
// same transaction; other users and already revoked sessions do not count.
func testCreateSessionLimit(t *testing.T, s store.Store) {
	u := MustUser(t, s, "lim")
	other := MustUser(t, s, "other")
	MustSession(t, s, other.ID)
	base := time.Now().UTC()
	var ids []string
	for i := range 4 {
		sess := &store.Session{UserID: u.ID, CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: base.Add(time.Hour)}
		revoked, err := s.CreateSession(sess, NewDigest(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(0, i-2); revoked != want {
			t.Errorf("login %d revoked %d sessions, want %d", i, revoked, want)
		}
		ids = append(ids, sess.ID)
	}
	if n, err := s.LiveSessions(u.ID, base.Add(5*time.Second)); err != nil || n != 3 {
		t.Fatalf("live sessions %d (%v), want 3", n, err)
	}
	first, err := s.SessionByID(ids[0])
	if err != nil || !first.Revoked || first.RevokeReason != store.ReasonSessionLimit {
		t.Fatalf("oldest session: %+v %v, want revoked by the limit", first, err)
	}
	for _, id := range ids[1:] {
		if sess, err := s.SessionByID(id); err != nil || sess.Revoked {
			t.Errorf("session %s: %+v %v, want live", id, sess, err)
		}
	}
	if n, err := s.LiveSessions(other.ID, base); err != nil || n != 1 {
		t.Errorf("the other user's sessions: %d (%v), want 1 untouched", n, err)
	}
	// Expired sessions are not live and make no room-taking revocation.
	if n, err := s.LiveSessions(u.ID, base.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("live after expiry: %d (%v), want 0", n, err)
	}
}

// The limit counts per budget: logins share one, each key's quick_login
// sessions have their own. So ten quick_logins with a read-only key end
// only that key's older sessions, never the owner's login nor another
// key's sessions.
func testSessionLimitPerBudget(t *testing.T, s store.Store) {
	u := MustUser(t, s, "budget")
	base := time.Now().UTC()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	open := func(i int, keyID string, perms store.Permission) *store.Session {
		t.Helper()
		sess := &store.Session{UserID: u.ID, CreatedAt: at(i), ExpiresAt: base.Add(time.Hour), KeyID: keyID, Permissions: perms}
		if _, err := s.CreateSession(sess, NewDigest(t), 2); err != nil {
			t.Fatal(err)
		}
		return sess
	}
	login := open(0, "", 0)
	other := open(1, "key_other", store.PermAll)
	var quick []*store.Session
	for i := range 10 {
		quick = append(quick, open(2+i, "key_read", store.PermRead))
	}
	for _, sess := range []*store.Session{login, other, quick[8], quick[9]} {
		if got, err := s.SessionByID(sess.ID); err != nil || got.Revoked {
			t.Errorf("session %s (key %q): %+v %v, want live", sess.ID, sess.KeyID, got, err)
		}
	}
	for _, sess := range quick[:8] {
		if got, _ := s.SessionByID(sess.ID); !got.Revoked {
			t.Errorf("quick session %s survived its own budget's limit", sess.ID)
		}
	}
	for _, c := range []struct {
		keyID string
		want  int
	}{{"", 1}, {"key_other", 1}, {"key_read", 2}} {
		if n, err := s.LiveSessionsLike(u.ID, c.keyID, at(20)); err != nil || n != c.want {
			t.Errorf("live sessions of budget %q: %d (%v), want %d", c.keyID, n, err, c.want)
		}
	}
	if n, _ := s.LiveSessions(u.ID, at(20)); n != 4 {
		t.Errorf("live sessions of every budget: %d, want 4", n)
	}
	// A new login makes room among logins only.
	open(30, "", 0)
	open(31, "", 0)
	if got, _ := s.SessionByID(login.ID); !got.Revoked {
		t.Error("the oldest login survived the login budget's limit")
	}
	if got, _ := s.SessionByID(other.ID); got.Revoked {
		t.Error("a login ended a key's session")
	}
}

// SessionBySecret finds a session by its live secret only: the first one
// (a login's refresh token, a browser cookie) or the newest rotated one;
// a spent one is ErrNotFound, not reuse (only RotateRefresh decides
// that). Revoked and expired sessions come back as they are.
func testSessionBySecret(t *testing.T, s store.Store) {
	u := MustUser(t, s, "sec")
	sess, r0 := MustSession(t, s, u.ID)
	if got, err := s.SessionBySecret(r0); err != nil || got.ID != sess.ID || got.UserID != u.ID || got.Generation != 0 {
		t.Fatalf("SessionBySecret(first secret) = %+v, %v; want %s", got, err, sess.ID)
	}
	now := time.Now()
	r1 := NewDigest(t)
	if _, err := s.RotateRefresh(r0, r1, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionBySecret(r1); err != nil || got.ID != sess.ID || got.Generation != 1 {
		t.Errorf("SessionBySecret(rotated token) = %+v, %v; want %s at generation 1", got, err, sess.ID)
	}
	if got, err := s.SessionBySecret(r0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionBySecret(spent token) = %+v, %v; want ErrNotFound", got, err)
	}
	if got, err := s.SessionBySecret(NewDigest(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SessionBySecret(unknown) = %+v, %v; want ErrNotFound", got, err)
	}
	// Looking up a spent digest is no reuse: the session stays live.
	if got, err := s.SessionByID(sess.ID); err != nil || got.Revoked {
		t.Errorf("session after looking up its spent token: %+v, %v; want live", got, err)
	}
	if err := s.RevokeSession(sess.ID, "logout", now); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionBySecret(r1); err != nil || got.ID != sess.ID || !got.Revoked || got.Alive() || got.RevokeReason != "logout" {
		t.Errorf("SessionBySecret(revoked session) = %+v, %v; want it, revoked", got, err)
	}
	past := time.Now().UTC().Add(-2 * time.Hour)
	old := &store.Session{UserID: u.ID, CreatedAt: past, ExpiresAt: past.Add(time.Hour)}
	cookie := NewDigest(t)
	if _, err := s.CreateSession(old, cookie, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionBySecret(cookie); err != nil || got.ID != old.ID || !got.ExpiresAt.Equal(old.ExpiresAt) {
		t.Errorf("SessionBySecret(expired session) = %+v, %v; want it as it is", got, err)
	}
}

// A browser session is an ordinary session with Browser set: the flag
// survives every read, its cookie finds it, and it spends the login
// budget (KeyID "") with password logins.
func testBrowserSession(t *testing.T, s store.Store) {
	u := MustUser(t, s, "web")
	base := time.Now().UTC()
	open := func(i int, browser bool) (*store.Session, store.Digest, int) {
		t.Helper()
		sess := &store.Session{UserID: u.ID, CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: base.Add(time.Hour), Browser: browser}
		d := NewDigest(t)
		revoked, err := s.CreateSession(sess, d, 2)
		if err != nil {
			t.Fatal(err)
		}
		return sess, d, revoked
	}
	login, _, _ := open(0, false)
	browser, cookie, _ := open(1, true)
	if got, err := s.SessionByID(browser.ID); err != nil || !got.Browser || got.KeyID != "" {
		t.Errorf("SessionByID(browser) = %+v, %v; want Browser", got, err)
	}
	if got, err := s.SessionBySecret(cookie); err != nil || got.ID != browser.ID || !got.Browser {
		t.Errorf("SessionBySecret(cookie) = %+v, %v; want the browser session", got, err)
	}
	if got, _ := s.SessionByID(login.ID); got.Browser {
		t.Error("a password login reads back as a browser session")
	}
	list, err := s.ListSessions(u.ID)
	if err != nil || len(list) != 2 || list[0].Browser || !list[1].Browser {
		t.Errorf("ListSessions = %+v, %v; want the login, then the browser session", list, err)
	}
	if n, err := s.LiveSessionsLike(u.ID, "", base); err != nil || n != 2 {
		t.Errorf("login budget counts %d (%v), want 2 (the browser session among them)", n, err)
	}
	// A third in the budget of two pushes out the oldest, whatever its kind.
	if _, _, revoked := open(2, true); revoked != 1 {
		t.Errorf("a browser login past the limit revoked %d, want 1", revoked)
	}
	if got, _ := s.SessionByID(login.ID); !got.Revoked || got.RevokeReason != store.ReasonSessionLimit {
		t.Errorf("the password login after a browser login past the limit: %+v", got)
	}
	if _, _, revoked := open(3, false); revoked != 1 {
		t.Errorf("a password login past the limit revoked %d, want 1", revoked)
	}
	if got, _ := s.SessionByID(browser.ID); !got.Revoked || !got.Browser {
		t.Errorf("the oldest browser session after a login past the limit: %+v", got)
	}
}

// TouchSessions records LastSeen, forward only, skipping unknown ids,
// without moving Generation or marking the sessions: every read shows it,
// and deleting a session takes its time along (Check finds none left
// over).
func testTouchSessions(t *testing.T, s store.Store) {
	u := MustUser(t, s, "seen")
	a, ra := MustSession(t, s, u.ID)
	b, _ := MustSession(t, s, u.ID)
	if got, _ := s.SessionByID(a.ID); !got.LastSeen.IsZero() {
		t.Errorf("LastSeen before any touch = %v, want zero", got.LastSeen)
	}
	at := time.Now().UTC().Truncate(time.Minute)
	gen := s.Generation()
	if err := s.TouchSessions(map[string]time.Time{a.ID: at, "ses_gone": at}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSessions(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SessionByID(a.ID); err != nil || !got.LastSeen.Equal(at) {
		t.Errorf("SessionByID LastSeen = %v (%v), want %v", got.LastSeen, err, at)
	}
	if got, _ := s.SessionByID(b.ID); !got.LastSeen.IsZero() {
		t.Errorf("an untouched session has LastSeen %v", got.LastSeen)
	}
	if got, err := s.SessionBySecret(ra); err != nil || !got.LastSeen.Equal(at) {
		t.Errorf("SessionBySecret LastSeen = %v (%v), want %v", got.LastSeen, err, at)
	}
	for _, owner := range []string{u.ID, ""} {
		list, err := s.ListSessions(owner)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListSessions(%q) = %d sessions, %v", owner, len(list), err)
		}
		for _, sess := range list {
			if want := sess.ID == a.ID; want != sess.LastSeen.Equal(at) {
				t.Errorf("ListSessions(%q): session %s LastSeen %v", owner, sess.ID, sess.LastSeen)
			}
		}
	}
	if s.Generation() != gen {
		t.Error("TouchSessions moved the generation")
	}
	if s.ChangedSince(gen, "", a.ID, "") || s.ChangedSince(gen, "", b.ID, "") {
		t.Error("TouchSessions marked a session changed")
	}
	// Never back; forward again.
	if err := s.TouchSessions(map[string]time.Time{a.ID: at.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SessionByID(a.ID); !got.LastSeen.Equal(at) {
		t.Errorf("LastSeen moved back to %v", got.LastSeen)
	}
	later := at.Add(time.Minute)
	if err := s.TouchSessions(map[string]time.Time{a.ID: later, b.ID: at}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SessionByID(a.ID); !got.LastSeen.Equal(later) {
		t.Errorf("LastSeen = %v after a later touch, want %v", got.LastSeen, later)
	}
	// An unknown id left nothing behind.
	if c, err := s.Check(); err != nil || c.Sessions != 2 {
		t.Errorf("Check after touches: %+v, %v", c, err)
	}
	// A rotation returns the session with it, and keeps it.
	now := time.Now()
	rotated, err := s.RotateRefresh(ra, NewDigest(t), now, now.Add(time.Hour))
	if err != nil || !rotated.LastSeen.Equal(later) {
		t.Errorf("RotateRefresh LastSeen = %v (%v), want %v", rotated.LastSeen, err, later)
	}
	if got, _ := s.SessionByID(a.ID); !got.LastSeen.Equal(later) {
		t.Errorf("LastSeen after a rotation = %v, want %v", got.LastSeen, later)
	}
	// Deleted with its session: nothing dangles, and a new touch skips it.
	if n, err := s.DeleteSessionsExpiredBefore(now.Add(2 * time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteSessionsExpiredBefore = %d, %v; want 2", n, err)
	}
	if err := s.TouchSessions(map[string]time.Time{a.ID: later.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Check(); err != nil || c.Sessions != 0 {
		t.Errorf("Check after deleting touched sessions: %+v, %v", c, err)
	}
	// So does DeleteUser.
	v := MustUser(t, s, "seen2")
	c, _ := MustSession(t, s, v.ID)
	if err := s.TouchSessions(map[string]time.Time{c.ID: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Errorf("Check after deleting a user with a touched session: %v", err)
	}
}
