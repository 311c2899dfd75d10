package store

import (
	"fmt"
	"testing"
	"time"
)

// TestChangedSinceMarksEveryWrite: each write that can change a decision
// about a credential marks the records it wrote, and moves the generation.
func TestChangedSinceMarksEveryWrite(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "ivy")
	k, _ := mustKey(t, s, u.ID)
	sess, refresh := mustSession(t, s, u.ID)
	now := time.Now()

	type ids struct{ user, session, key string }
	for _, c := range []struct {
		name  string
		write func() error
		want  ids
	}{
		{"update user", func() error {
			_, err := s.UpdateUser(u.ID, func(u *User) error { u.TokenEpoch++; return nil })
			return err
		}, ids{user: u.ID}},
		{"update key", func() error {
			_, err := s.UpdateAPIKey(k.ID, func(k *APIKey) error { k.Permissions = PermRead; return nil })
			return err
		}, ids{key: k.ID}},
		{"rotate refresh", func() error {
			next, _ := NewSecret(RefreshPrefix)
			_, err := s.RotateRefresh(refresh, DigestOf(next), now, now.Add(time.Hour))
			return err
		}, ids{session: sess.ID}},
		{"revoke session", func() error { return s.RevokeSession(sess.ID, "logout", now) }, ids{session: sess.ID}},
		{"revoke key", func() error { return s.RevokeAPIKey(k.ID, now) }, ids{key: k.ID}},
	} {
		gen := s.Generation()
		if err := c.write(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Generation() == gen {
			t.Errorf("%s: the generation did not move", c.name)
		}
		if !s.ChangedSince(gen, c.want.user, c.want.session, c.want.key) {
			t.Errorf("%s: not marked changed", c.name)
		}
	}

	// Deleting a user marks the user and everything deleted with it.
	v := mustUser(t, s, "jo")
	vk, _ := mustKey(t, s, v.ID)
	vs, _ := mustSession(t, s, v.ID)
	gen := s.Generation()
	if err := s.DeleteUser(v.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []ids{{user: v.ID}, {key: vk.ID}, {session: vs.ID}} {
		if !s.ChangedSince(gen, c.user, c.session, c.key) {
			t.Errorf("delete user: %+v not marked changed", c)
		}
	}
	// Ending the oldest session past the limit marks it.
	w := mustUser(t, s, "kai")
	ws, _ := mustSession(t, s, w.ID)
	gen = s.Generation()
	next, _ := NewSecret(RefreshPrefix)
	if n, err := s.CreateSession(&Session{UserID: w.ID, ExpiresAt: now.Add(time.Hour)}, DigestOf(next), 1); err != nil || n != 1 {
		t.Fatalf("CreateSession past the limit: ended %d, %v", n, err)
	}
	if !s.ChangedSince(gen, "", ws.ID, "") {
		t.Error("the session ended by the limit is not marked changed")
	}
}

// TestChangedSinceLeavesOthers: a write marks only its own records (and
// whatever shares their slot, which the test steps around), and no ID at
// all is never changed.
func TestChangedSinceLeavesOthers(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "lea")
	var other *User
	for i := 0; other == nil; i++ {
		o := mustUser(t, s, fmt.Sprintf("other%d", i))
		if s.cache.changes.slot(o.ID) != s.cache.changes.slot(u.ID) {
			other = o
		}
	}
	gen := s.Generation()
	if _, err := s.UpdateUser(u.ID, func(u *User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if s.ChangedSince(gen, other.ID, "", "") {
		t.Error("a write to one user marked another")
	}
	if s.ChangedSince(gen, "", "", "") {
		t.Error("no records at all counted as changed")
	}
	if s.ChangedSince(s.Generation(), u.ID, "", "") {
		t.Error("a record counts as changed after the generation of its write")
	}
}

// TestChangeMarksPrecedeGeneration: a reader that sees the new generation
// must see the marks too, so a write marks its records before it moves
// the generation.
func TestChangeMarksPrecedeGeneration(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "max")
	sess, _ := mustSession(t, s, u.ID)
	gen := s.Generation()
	ran := false
	s.cache.testHookBeforeGenMove = func() {
		ran = true
		if s.Generation() != gen {
			t.Error("the generation moved before the change log was marked")
		}
		if !s.ChangedSince(gen, "", sess.ID, "") {
			t.Error("the session is not marked changed before the generation moves")
		}
	}
	defer func() { s.cache.testHookBeforeGenMove = nil }()
	if err := s.RevokeSession(sess.ID, "logout", time.Now()); err != nil {
		t.Fatal(err)
	}
	if !ran || s.Generation() == gen {
		t.Fatal("the revoke did not go through invalidate")
	}
}
