package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// testChangedSinceMarksEveryWrite: each write that can change a decision
// about a credential marks the records it wrote, and moves the generation.
func testChangedSinceMarksEveryWrite(t *testing.T, s store.Store) {
	u := MustUser(t, s, "ivy")
	k, _ := MustKey(t, s, u.ID)
	sess, refresh := MustSession(t, s, u.ID)
	now := time.Now()

	type ids struct{ user, session, key string }
	for _, c := range []struct {
		name  string
		write func() error
		want  ids
	}{
		{"update user", func() error {
			_, err := s.UpdateUser(u.ID, func(u *store.User) error { u.TokenEpoch++; return nil })
			return err
		}, ids{user: u.ID}},
		{"update key", func() error {
			_, err := s.UpdateAPIKey(k.ID, func(k *store.APIKey) error { k.Permissions = store.PermRead; return nil })
			return err
		}, ids{key: k.ID}},
		{"rotate refresh", func() error {
			next, _ := secret.NewSecret(secret.RefreshPrefix)
			_, err := s.RotateRefresh(refresh, store.DigestOf(next), now, now.Add(time.Hour))
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
	v := MustUser(t, s, "jo")
	vk, _ := MustKey(t, s, v.ID)
	vs, _ := MustSession(t, s, v.ID)
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
	w := MustUser(t, s, "kai")
	ws, _ := MustSession(t, s, w.ID)
	gen = s.Generation()
	next, _ := secret.NewSecret(secret.RefreshPrefix)
	if n, err := s.CreateSession(&store.Session{UserID: w.ID, ExpiresAt: now.Add(time.Hour)}, store.DigestOf(next), 1); err != nil || n != 1 {
		t.Fatalf("CreateSession past the limit: ended %d, %v", n, err)
	}
	if !s.ChangedSince(gen, "", ws.ID, "") {
		t.Error("the session ended by the limit is not marked changed")
	}
}

// testChangedSinceLeavesOthers: a write marks only its own records, and no
// ID at all is never changed. A backend may answer true for a record that
// shares a slot with a written one (store.ChangeLog), so of several other
// users at most one may count as changed: one would be a collision (about
// 1 in 8,000 with the change log), all of them a write that marks too much.
func testChangedSinceLeavesOthers(t *testing.T, s store.Store) {
	u := MustUser(t, s, "lea")
	var others []*store.User
	for i := range 8 {
		others = append(others, MustUser(t, s, fmt.Sprintf("other%d", i)))
	}
	gen := s.Generation()
	if _, err := s.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, o := range others {
		if s.ChangedSince(gen, o.ID, "", "") {
			marked++
		}
	}
	if marked > 1 {
		t.Errorf("a write to one user marked %d of %d others", marked, len(others))
	}
	if s.ChangedSince(gen, "", "", "") {
		t.Error("no records at all counted as changed")
	}
	if s.ChangedSince(s.Generation(), u.ID, "", "") {
		t.Error("a record counts as changed after the generation of its write")
	}
}

// testSigningKeysChangedSince: adding, retiring (by a rotation) and
// deleting a signing key, and EnsureSigningKey when it creates one, move
// the generation and mark the signing keys changed; EnsureSigningKey that
// finds its key and the other records' writes do not mark them.
func testSigningKeysChangedSince(t *testing.T, s store.Store) {
	u := MustUser(t, s, "sig")
	if s.SigningKeysChangedSince(s.Generation()) {
		t.Error("signing keys changed in a store that never held one")
	}
	generated := 0
	generate := func() (store.SigningKey, error) {
		generated++
		return store.SigningKey{KID: fmt.Sprintf("gen%d", generated), Alg: "EdDSA", Private: []byte{byte(generated)}}, nil
	}
	now := time.Now()
	for _, c := range []struct {
		name    string
		write   func() error
		changed bool
	}{
		{"EnsureSigningKey that creates", func() error { _, err := s.EnsureSigningKey("EdDSA", generate); return err }, true},
		{"EnsureSigningKey that finds", func() error { _, err := s.EnsureSigningKey("EdDSA", generate); return err }, false},
		{"AddSigningKey", func() error {
			return s.AddSigningKey(store.SigningKey{KID: "added", Alg: "ES256", Private: []byte{9}}, false, now)
		}, true},
		{"AddSigningKey retiring the others", func() error {
			return s.AddSigningKey(store.SigningKey{KID: "rotated", Alg: "EdDSA", Private: []byte{10}}, true, now)
		}, true},
		{"DeleteSigningKey", func() error { return s.DeleteSigningKey("gen1") }, true},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(u.ID, func(u *store.User) error { u.TokenEpoch++; return nil })
			return err
		}, false},
		{"RevokeSession", func() error {
			sess, _ := MustSession(t, s, u.ID)
			return s.RevokeSession(sess.ID, "logout", now)
		}, false},
	} {
		gen := s.Generation()
		if err := c.write(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := s.SigningKeysChangedSince(gen); got != c.changed {
			t.Errorf("%s: SigningKeysChangedSince = %v, want %v", c.name, got, c.changed)
		}
		if c.changed && s.Generation() == gen {
			t.Errorf("%s: the generation did not move", c.name)
		}
	}
	if generated != 1 {
		t.Errorf("generate ran %d times, want 1", generated)
	}
	if s.SigningKeysChangedSince(s.Generation()) {
		t.Error("signing keys count as changed after the generation of their write")
	}
}
