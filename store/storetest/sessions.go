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
