package bbolt

import (
	"testing"
	"time"
)

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
