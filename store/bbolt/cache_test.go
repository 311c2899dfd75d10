package bbolt

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/authgate/authgate/store"
)

// warm looks a record up twice with a cache.wait() between, and fails unless
// the second lookup was a cache hit (the same pointer). Tests that follow
// then prove a write drops the entry.
func warm[T any](t *testing.T, s *Store, lookup func() (*T, error)) {
	t.Helper()
	a, err := lookup()
	if err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	b, err := lookup()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("second lookup was not served from the cache")
	}
}

func TestCacheDropsUpdatedUser(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "carol")
	warm(t, s, func() (*store.User, error) { return s.UserByID(u.ID) })

	if _, err := s.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByID(u.ID)
	if err != nil || !got.Disabled {
		t.Fatalf("after disable: %+v, %v", got, err)
	}
}

func TestCacheDropsDeletedUser(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "dave")
	warm(t, s, func() (*store.User, error) { return s.UserByID(u.ID) })
	if err := s.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted user: err = %v, want ErrNotFound", err)
	}
}

// TestStaleFillRace stages the race the generation counter prevents: a
// reader misses and reads the old value, a writer commits and invalidates,
// then the reader would fill the cache with the old value.
func TestStaleFillRace(t *testing.T) {
	s := openTest(t)
	u := mustUser(t, s, "hank")

	var write func()
	s.testHookAfterMissRead = func() {
		if write != nil {
			w := write
			write = nil // only once: the check below reads again
			w()
		}
	}
	defer func() { s.testHookAfterMissRead = nil }()

	write = func() {
		if _, err := s.UpdateUser(u.ID, func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
			t.Error(err)
		}
	}
	if _, err := s.UserByID(u.ID); err != nil {
		t.Fatal(err)
	}
	s.cache.wait()
	if got, _ := s.UserByID(u.ID); got == nil || !got.Disabled {
		t.Fatal("stale user filled into the cache after a concurrent update")
	}
}

// TestCacheCoherentUnderConcurrency hammers the three request-path lookups
// while writers change the records; once the writers are done, every
// lookup must show the last write. Run with -race.
func TestCacheCoherentUnderConcurrency(t *testing.T) {
	s := openTest(t)
	const nRecords, nReaders, nWrites = 4, 8, 30
	var users []*store.User
	var keys []*store.APIKey
	var digests []store.Digest
	var sessions []*store.Session
	for i := range nRecords {
		u := mustUser(t, s, fmt.Sprintf("user%d", i))
		k, key := mustKey(t, s, u.ID)
		sess, _ := mustSession(t, s, u.ID)
		users, keys, digests, sessions = append(users, u), append(keys, k), append(digests, store.DigestOf(key)), append(sessions, sess)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range nReaders {
		readers.Go(func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := i % nRecords
				if _, err := s.UserByID(users[j].ID); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.APIKeyByDigest(digests[j]); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.SessionByID(sessions[j].ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}

	var writers sync.WaitGroup
	for j := range nRecords {
		writers.Go(func() {
			for n := 1; n <= nWrites; n++ {
				name := fmt.Sprint(n)
				if _, err := s.UpdateUser(users[j].ID, func(u *store.User) error { u.FirstName = name; return nil }); err != nil {
					t.Error(err)
				}
				if _, err := s.UpdateAPIKey(keys[j].ID, func(k *store.APIKey) error { k.Name = name; return nil }); err != nil {
					t.Error(err)
				}
				if n == nWrites {
					if err := s.RevokeSession(sessions[j].ID, "done", time.Now()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	writers.Wait()
	// Let the readers run on after the last write: a stale fill would land now.
	time.Sleep(20 * time.Millisecond)
	close(stop)
	readers.Wait()
	s.cache.wait()

	want := fmt.Sprint(nWrites)
	for j := range nRecords {
		if u, err := s.UserByID(users[j].ID); err != nil || u.FirstName != want {
			t.Errorf("user %d: FirstName %q, %v; want %q", j, u.FirstName, err, want)
		}
		if k, err := s.APIKeyByDigest(digests[j]); err != nil || k.Name != want {
			t.Errorf("key %d: Name %q, %v; want %q", j, k.Name, err, want)
		}
		if sess, err := s.SessionByID(sessions[j].ID); err != nil || !sess.Revoked {
			t.Errorf("session %d: not revoked (%v)", j, err)
		}
	}
}

func BenchmarkUserByIDCached(b *testing.B) {
	s := openTest(b)
	u := mustUser(b, s, "bench")
	s.UserByID(u.ID)
	s.cache.wait()
	id := u.ID
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UserByID(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAPIKeyByDigest reads bbolt: keys are not cached.
func BenchmarkAPIKeyByDigest(b *testing.B) {
	s := openTest(b)
	u := mustUser(b, s, "bench")
	_, key := mustKey(b, s, u.ID)
	d := store.DigestOf(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.APIKeyByDigest(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionByID reads bbolt: sessions are not cached.
func BenchmarkSessionByID(b *testing.B) {
	s := openTest(b)
	u := mustUser(b, s, "bench")
	sess, _ := mustSession(b, s, u.ID)
	id := sess.ID
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SessionByID(id); err != nil {
			b.Fatal(err)
		}
	}
}

// Users that enter the cache have their text in one allocation, and
// packing changes no value.
func TestCachedUsersArePacked(t *testing.T) {
	for _, c := range []struct {
		name   string
		before store.User
	}{
		{"all fields", store.User{ID: "usr_1", Username: "ada", Email: "ada@example.com", PasswordHash: "$argon2id$x", PINHash: "$argon2id$y", Roles: []string{"admin", "ops"}}},
		{"some empty", store.User{ID: "usr_2", Username: "bo", Roles: []string{"", "dev"}}},
		{"none", store.User{}},
	} {
		u := c.before
		u.Roles = slices.Clone(c.before.Roles)
		packUser(&u)
		if !reflect.DeepEqual(u, c.before) {
			t.Errorf("%s: packing changed the record: %+v, want %+v", c.name, u, c.before)
		}
		fields := append([]string{u.ID, u.Username, u.Email, u.PasswordHash, u.PINHash}, u.Roles...)
		var first *byte
		off := 0
		for _, f := range fields {
			if f == "" {
				continue
			}
			if first == nil {
				first = unsafe.StringData(f)
			} else if unsafe.StringData(f) != (*byte)(unsafe.Add(unsafe.Pointer(first), off)) {
				t.Errorf("%s: field %q is not in the shared allocation", c.name, f)
			}
			off += len(f)
		}
	}
}
