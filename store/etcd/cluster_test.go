package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/etcd"
	"github.com/authgate/authgate/store/etcd/embedded"
	"github.com/authgate/authgate/store/storetest"
)

// Two Stores on one prefix are two instances: each sees the other's
// writes through its watch, within a second (the contract; on loopback
// it takes milliseconds).
func TestTwoInstancesSeeEachOther(t *testing.T) {
	prefix := fresh()
	a, b := open(t, etcd.Options{Prefix: prefix}), open(t, etcd.Options{Prefix: prefix})
	u := storetest.MustUser(t, a, "ann")
	k, _ := storetest.MustKey(t, a, u.ID)
	sess, _ := storetest.MustSession(t, a, u.ID)

	// b has applied a's writes (its Generation is a revision too), then
	// decides about the session: gen first, then the reads.
	eventually(t, time.Second, "b applies a's writes", func() bool { return b.Generation() >= a.Generation() })
	gen := b.Generation()
	if got, err := b.SessionByID(sess.ID); err != nil || got.Revoked {
		t.Fatalf("b reads the session: %+v, %v", got, err)
	}
	if b.ChangedSince(gen, u.ID, sess.ID, k.ID) {
		t.Fatal("nothing changed yet, but b says so")
	}
	if err := a.RevokeSession(sess.ID, "logout", time.Now()); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Second, "b sees the revocation", func() bool { return b.ChangedSince(gen, "", sess.ID, "") })
	t.Logf("the revocation reached the other instance in %s", took)
	if b.ChangedSince(gen, "", "", k.ID) && b.ChangedSince(gen, u.ID, "", "") {
		t.Error("a revocation of a session marked the key and the user too")
	}
	if got, _ := b.SessionByID(sess.ID); !got.Revoked {
		t.Error("b reads the session as live after the revocation")
	}

	// A disabled user, a revoked key: the same.
	gen = b.Generation()
	if _, err := a.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b sees the disabled user", func() bool { return b.ChangedSince(gen, u.ID, "", "") })
	gen = b.Generation()
	if err := a.RevokeAPIKey(k.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b sees the revoked key", func() bool { return b.ChangedSince(gen, "", "", k.ID) })

	// A rotation of the signing keys, and a legacy key.
	gen = b.Generation()
	if b.SigningKeysChangedSince(gen) {
		t.Fatal("signing keys changed before any was written")
	}
	if err := a.AddSigningKey(store.SigningKey{KID: "k1", Alg: "EdDSA", Private: []byte{1}}, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b sees the new signing key", func() bool { return b.SigningKeysChangedSince(gen) })
	if b.HasLegacyKeys() {
		t.Fatal("legacy keys before any")
	}
	if err := a.CreateAPIKey(&store.APIKey{OwnerID: u.ID, Digest: store.DigestOf("legacy-key"), Legacy: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "b learns of the legacy key", b.HasLegacyKeys)

	// Last use is no change, on either instance.
	gen, genA := b.Generation(), a.Generation()
	if err := a.TouchAPIKeys(map[string]time.Time{k.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	seen := time.Now().UTC()
	if err := a.TouchSessions(map[string]time.Time{sess.ID: seen}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if b.ChangedSince(gen, "", "", k.ID) || a.ChangedSince(genA, "", "", k.ID) {
		t.Error("TouchAPIKeys counted as a change of the key")
	}
	// sessions_last_seen/ is not sessions/ to the watch.
	if b.ChangedSince(gen, "", sess.ID, "") || a.ChangedSince(genA, "", sess.ID, "") {
		t.Error("TouchSessions counted as a change of the session")
	}
	if got, err := b.SessionByID(sess.ID); err != nil || !got.LastSeen.Equal(seen) {
		t.Errorf("b reads LastSeen %v (%v), want %v", got.LastSeen, err, seen)
	}
}

// Rotations of one refresh token on two instances at once: exactly one
// wins, the others are reuse, and the session ends up revoked.
func TestRotateRefreshAcrossInstances(t *testing.T) {
	prefix := fresh()
	stores := []*etcd.Store{open(t, etcd.Options{Prefix: prefix}), open(t, etcd.Options{Prefix: prefix})}
	u := storetest.MustUser(t, stores[0], "rot")
	sess, r0 := storetest.MustSession(t, stores[0], u.ID)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		next := storetest.NewDigest(t)
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%2].RotateRefresh(r0, next, time.Now(), time.Now().Add(time.Hour))
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
		t.Fatalf("%d rotations won, want exactly 1", wins)
	}
	for _, s := range stores {
		if got, err := s.SessionByID(sess.ID); err != nil || !got.Revoked || got.Generation != 1 {
			t.Errorf("session after the race: %+v, %v", got, err)
		}
	}
}

// Checks reserved on two instances at once never exceed the threshold:
// the reservations of both count.
func TestReserveAttemptAcrossInstances(t *testing.T) {
	prefix := fresh()
	stores := []*etcd.Store{open(t, etcd.Options{Prefix: prefix}), open(t, etcd.Options{Prefix: prefix})}
	p := store.LockPolicy{Attempts: 3, Window: time.Minute}
	a := store.Attempt{Account: store.AccountKey{1, 2, 3}, Kind: store.KindLogin, Label: "user:x"}
	now := time.Now().UTC()
	const n = 20
	var granted atomic.Int32
	res := make([]store.Reservation, n)
	ok := make([]bool, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r, wait, err := stores[i%2].ReserveAttempt(a, now, p)
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				granted.Add(1)
				res[i], ok[i] = r, true
			}
		})
	}
	close(start)
	wg.Wait()
	if g := granted.Load(); g != int32(p.Attempts) {
		t.Fatalf("%d checks reserved at once on two instances, want %d", g, p.Attempts)
	}
	// Every one fails: the account is locked on both.
	for i := range n {
		if ok[i] {
			if _, err := stores[(i+1)%2].SettleAttempt(res[i], store.Failed, now, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range stores {
		if _, wait, err := s.ReserveAttempt(a, now.Add(time.Second), p); err != nil || wait != p.Window-time.Second {
			t.Errorf("after %d failures: wait %s, %v; want locked for %s", p.Attempts, wait, err, p.Window-time.Second)
		}
	}
	if list, err := stores[1].ListAttempts(now); err != nil || len(list) != 1 || !list[0].Locked(now) || list[0].Label != "user:x" {
		t.Errorf("ListAttempts = %+v, %v", list, err)
	}
}

// A reservation its instance never settles (it crashed) stops counting
// after a while, and the lockout's key sits on a lease that ends after
// the state stops mattering.
func TestAttemptReservationExpires(t *testing.T) {
	s := open(t, etcd.Options{})
	p := store.LockPolicy{Attempts: 1, Window: time.Minute}
	a := store.Attempt{Account: store.AccountKey{9}, Kind: store.KindClient, Label: "key:k"}
	now := time.Now().UTC()
	if _, wait, err := s.ReserveAttempt(a, now, p); err != nil || wait != 0 {
		t.Fatalf("first reservation: wait %s, %v", wait, err)
	}
	if _, wait, _ := s.ReserveAttempt(a, now.Add(time.Second), p); wait == 0 {
		t.Fatal("a second check reserved while the first is in flight")
	}
	r, wait, err := s.ReserveAttempt(a, now.Add(31*time.Second), p)
	if err != nil || wait != 0 {
		t.Fatalf("the unsettled reservation still counts after 31s: wait %s, %v", wait, err)
	}
	if _, err := s.SettleAttempt(r, store.Failed, now.Add(31*time.Second), p); err != nil {
		t.Fatal(err)
	}

	cli := client(t, shared.Endpoints())
	ctx := context.Background()
	resp, err := cli.Get(ctx, s.Prefix()+"attempts/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lockout keys: %v, %v", resp, err)
	}
	if resp.Kvs[0].Lease == 0 {
		t.Fatal("the lockout key has no lease")
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	// Locked for the window from now+31s: the lease must outlast that.
	if got := time.Duration(ttl.TTL) * time.Second; got < p.Window || got > p.Window+30*time.Second {
		t.Errorf("lease TTL %s, want a little over the window %s", got, p.Window)
	}
	if bytes.Contains(resp.Kvs[0].Key, []byte("key:k")) {
		t.Error("the label is in the key")
	}
}

// Two instances starting at once create one signing key.
func TestEnsureSigningKeyAcrossInstances(t *testing.T) {
	prefix := fresh()
	var stores []*etcd.Store
	for range 4 {
		stores = append(stores, open(t, etcd.Options{Prefix: prefix}))
	}
	var made atomic.Int32
	kids := make([]string, len(stores)*3)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			k, err := stores[i%len(stores)].EnsureSigningKey("EdDSA", func() (store.SigningKey, error) {
				n := made.Add(1)
				return store.SigningKey{KID: fmt.Sprint("kid", n), Alg: "EdDSA", Private: []byte{byte(n)}}, nil
			})
			if err != nil {
				t.Error(err)
			}
			kids[i] = k.KID
		})
	}
	wg.Wait()
	keys, err := stores[0].SigningKeys()
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored signing keys: %+v, %v; want one", keys, err)
	}
	for _, kid := range kids {
		if kid != keys[0].KID {
			t.Errorf("an instance got %q, the store holds %q", kid, keys[0].KID)
		}
	}
	t.Logf("%d instances generated %d keys, one stored", len(stores), made.Load())
}

// A watch that fell behind a compaction cannot know what it missed: the
// store counts every decision made before as changed (and the signing
// keys as rotated), and watches on from the present.
func TestCompactionMakesItReread(t *testing.T) {
	prefix := fresh()
	s, other := open(t, etcd.Options{Prefix: prefix}), open(t, etcd.Options{Prefix: prefix})
	u := storetest.MustUser(t, s, "cora")
	sess, _ := storetest.MustSession(t, s, u.ID)
	cli := client(t, shared.Endpoints())
	ctx := context.Background()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	before := resp.Header.Revision
	gen := s.Generation()
	if s.ChangedSince(gen, u.ID, sess.ID, "") || s.SigningKeysChangedSince(gen) {
		t.Fatal("changed before anything happened")
	}
	// What the watch will miss: a write of another instance, then a
	// compaction past it.
	if err := other.RevokeSession(sess.ID, "elsewhere", time.Now()); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, prefix+"unrelated-to-the-test", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, prefix+"unrelated-to-the-test"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, put.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// The watch resumes from before the compaction, as one cut off for
	// a while does.
	etcd.Rewatch(s, before)
	eventually(t, 2*time.Second, "a decision from before the compaction counts as changed", func() bool {
		return s.ChangedSince(gen, u.ID, "", "") && s.SigningKeysChangedSince(gen)
	})
	// The feed goes on from the present.
	gen = s.Generation()
	if s.ChangedSince(gen, u.ID, "", "") {
		t.Fatal("a decision made after the re-read counts as changed")
	}
	if _, err := other.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the watch after the compaction sees a new write", func() bool { return s.ChangedSince(gen, u.ID, "", "") })
}

// A Store that loses its only member fails closed: after MaxStale no
// cached decision counts (Generation moves on every call, ChangedSince is
// true), reads and writes fail within OpTimeout; when the member is back
// (same data, same ports) it recovers by itself, having counted
// everything from before as changed once.
func TestLostMemberFailsClosedAndRecovers(t *testing.T) {
	c, err := embedded.Start(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	const maxStale, opTimeout = 300 * time.Millisecond, 500 * time.Millisecond
	opts := etcd.Options{Endpoints: c.Endpoints(), Prefix: fresh(), MaxStale: maxStale, OpTimeout: opTimeout}
	s, other := open(t, opts), open(t, opts)
	u := storetest.MustUser(t, s, "lost")
	sess, _ := storetest.MustSession(t, s, u.ID)
	// Fresh for longer than MaxStale: the progress notifications confirm it.
	time.Sleep(2 * maxStale)
	gen := s.Generation()
	if etcd.Stale(s) || s.Generation() != gen || s.ChangedSince(gen, u.ID, sess.ID, "") {
		t.Fatal("the feed is not fresh while the member is up")
	}

	start := time.Now()
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopping the member took %s", time.Since(start))
	took := eventually(t, 3*maxStale, "the feed goes stale", func() bool { return etcd.Stale(s) })
	t.Logf("stale %s after the member stopped (MaxStale %s)", took, maxStale)
	if g1, g2 := s.Generation(), s.Generation(); g1 == g2 || g1 == gen {
		t.Error("a stale feed's Generation does not move on every call")
	}
	if !s.ChangedSince(gen, u.ID, "", "") || !s.SigningKeysChangedSince(gen) {
		t.Error("a stale feed lets a cached decision stand")
	}
	staleGen := s.Generation()
	start = time.Now()
	_, err = s.SessionByID(sess.ID)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("read without the member: %v, want the store's error", err)
	}
	err = s.RevokeSession(sess.ID, "logout", time.Now())
	if elapsed := time.Since(start); err == nil || elapsed > 2*opTimeout+200*time.Millisecond {
		t.Errorf("read and write without the member: %v after %s, want errors within OpTimeout %s each", err, elapsed, opTimeout)
	}

	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 10*time.Second, "the feed recovers by itself", func() bool { return !etcd.Stale(s) })
	t.Logf("fresh again %s after the member was ready", took)
	// A decision made while stale counts as changed for good; one made
	// before counts as changed if anything was written since (nothing
	// was: the revocation failed), which the watch replays.
	if !s.ChangedSince(staleGen, u.ID, "", "") {
		t.Error("a decision made while stale counts after the recovery")
	}
	eventually(t, 5*time.Second, "writes work again", func() bool {
		return s.RevokeSession(sess.ID, "logout", time.Now()) == nil
	})
	gen = s.Generation()
	if s.Generation() != gen || s.ChangedSince(gen, u.ID, "", "") {
		t.Error("the recovered feed does not let a fresh decision stand")
	}
	if _, err := other.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the recovered watch sees another instance's write", func() bool { return s.ChangedSince(gen, u.ID, "", "") })
	// An idle cluster keeps the feed confirmed, also on a watch resumed
	// after the last revision it saw.
	time.Sleep(3 * maxStale)
	if etcd.Stale(s) || etcd.Stale(other) {
		t.Error("the feed of an idle cluster went stale")
	}
}

// Three members: an instance cut off with its member misses writes and a
// compaction made through the others; when its member is back it catches
// up by itself and counts everything from before as changed. An instance
// that knows every member keeps going when one stops.
func TestThreeMembers(t *testing.T) {
	c, err := embedded.Start(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	eps := c.Endpoints()
	const maxStale = time.Second
	prefix := fresh()
	cut := open(t, etcd.Options{Endpoints: eps[2:], Prefix: prefix, MaxStale: maxStale, OpTimeout: 500 * time.Millisecond})
	writer := open(t, etcd.Options{Endpoints: eps[:1], Prefix: prefix, MaxStale: maxStale})
	all := open(t, etcd.Options{Endpoints: eps, Prefix: prefix, MaxStale: maxStale})
	u := storetest.MustUser(t, writer, "tri")
	eventually(t, time.Second, "cut applies the write", func() bool { return cut.Generation() >= writer.Generation() })
	gen := cut.Generation()

	if err := c.Stop(2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*maxStale, "the cut-off instance goes stale", func() bool { return etcd.Stale(cut) })
	if _, err := writer.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	cli := client(t, eps[:1])
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(context.Background(), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the cut-off instance recovers", func() bool { return !etcd.Stale(cut) })
	if !cut.ChangedSince(gen, u.ID, "", "") {
		t.Error("a decision from before the cut counts after it")
	}
	if got, err := cut.UserByID(u.ID); err != nil || !got.Disabled {
		t.Errorf("the cut-off instance reads %+v, %v", got, err)
	}

	// Stopping one member of three: the instance that knows them all
	// goes on.
	gen = all.Generation()
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "writes through the other members", func() bool {
		_, err := all.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = false; return nil })
		return err == nil
	})
	eventually(t, 3*maxStale, "the instance on every member sees it", func() bool {
		return !etcd.Stale(all) && all.ChangedSince(gen, u.ID, "", "")
	})
}
