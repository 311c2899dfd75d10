package etcd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/etcd"
	"github.com/authgate/authgate/store/storetest"
)

// small opens a store whose transactions hold at most 16 operations, so
// that a few records take several.
func small(t *testing.T) *etcd.Store { return open(t, etcd.Options{MaxTxnOps: 16}) }

func mustCheck(t *testing.T, s store.Store, want store.Counts) {
	t.Helper()
	if c, err := s.Check(); err != nil || c != want {
		t.Fatalf("Check = %+v, %v; want %+v", c, err, want)
	}
}

// A user with more than one transaction holds is deleted whole: keys,
// sessions, and refresh families longer than a transaction.
func TestDeleteUserInChunks(t *testing.T) {
	s := small(t)
	u, other := storetest.MustUser(t, s, "big"), storetest.MustUser(t, s, "other")
	storetest.MustKey(t, s, other.ID)
	otherSess, _ := storetest.MustSession(t, s, other.ID)
	var keys []*store.APIKey
	for range 5 {
		k, _ := storetest.MustKey(t, s, u.ID)
		keys = append(keys, k)
	}
	var sessions []*store.Session
	var lastRefresh []store.Digest
	for range 4 {
		sess, r := storetest.MustSession(t, s, u.ID)
		for range 10 {
			next := storetest.NewDigest(t)
			if _, err := s.RotateRefresh(r, next, time.Now(), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			r = next
		}
		sessions, lastRefresh = append(sessions, sess), append(lastRefresh, r)
	}
	mustCheck(t, s, store.Counts{Users: 2, APIKeys: 6, Sessions: 5})
	gen := s.Generation()
	if err := s.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s, store.Counts{Users: 1, APIKeys: 1, Sessions: 1})
	for _, k := range keys {
		if _, err := s.APIKeyByDigest(k.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("key of the deleted user: %v", err)
		}
		if !s.ChangedSince(gen, "", "", k.ID) {
			t.Errorf("deleted key %s not marked", k.ID)
		}
	}
	for i, sess := range sessions {
		if _, err := s.RotateRefresh(lastRefresh[i], storetest.NewDigest(t), time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refresh token of the deleted user: %v", err)
		}
		if !s.ChangedSince(gen, "", sess.ID, "") {
			t.Errorf("deleted session %s not marked", sess.ID)
		}
	}
	if _, err := s.SessionByID(otherSess.ID); err != nil {
		t.Errorf("the other user's session: %v", err)
	}
	if _, err := s.UserByLogin("big"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("login of the deleted user: %v", err)
	}
}

// A batch larger than a transaction is all or nothing too: a bad record
// in a later part takes back the parts before it.
func TestBatchInChunksTakenBack(t *testing.T) {
	s := small(t)
	storetest.MustUser(t, s, "taken")
	var batch []*store.User
	for i := range 12 {
		batch = append(batch, &store.User{Username: fmt.Sprint("u", i), Email: fmt.Sprintf("u%d@example.com", i)})
	}
	batch = append(batch, &store.User{Username: "taken"})
	if err := s.CreateUsers(batch); !errors.Is(err, store.ErrExists) {
		t.Fatalf("batch with a taken name: %v, want ErrExists", err)
	}
	for _, u := range batch[:12] {
		if _, err := s.UserByLogin(u.Username); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of the failed batch: %v", u.Username, err)
		}
	}
	mustCheck(t, s, store.Counts{Users: 1})

	var good []*store.User
	for i := range 12 {
		good = append(good, &store.User{Username: fmt.Sprint("g", i)})
	}
	if err := s.CreateUsers(good); err != nil {
		t.Fatal(err)
	}
	var sessions []store.NewSession
	var keys []*store.APIKey
	for i, u := range good {
		sessions = append(sessions, store.NewSession{Session: &store.Session{UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}, Refresh: storetest.NewDigest(t)})
		keys = append(keys, &store.APIKey{OwnerID: u.ID, Digest: store.DigestOf(fmt.Sprint("key", i))})
	}
	if err := s.CreateSessions(sessions); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, &store.APIKey{OwnerID: "usr_nobody", Digest: store.DigestOf("orphan")})
	if err := s.CreateAPIKeys(keys); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("keys with an unknown owner: %v, want ErrNotFound", err)
	}
	mustCheck(t, s, store.Counts{Users: 13, Sessions: 12})
	if err := s.CreateAPIKeys(keys[:12]); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s, store.Counts{Users: 13, APIKeys: 12, Sessions: 12})
}

// Revoking, expiring and touching more than a transaction holds.
func TestBulkSessionOpsInChunks(t *testing.T) {
	s := small(t)
	u := storetest.MustUser(t, s, "many")
	var batch []store.NewSession
	for i := range 30 {
		exp := time.Now().Add(time.Hour)
		if i%2 == 0 {
			exp = time.Now().Add(-time.Hour)
		}
		batch = append(batch, store.NewSession{Session: &store.Session{UserID: u.ID, ExpiresAt: exp}, Refresh: storetest.NewDigest(t)})
	}
	if err := s.CreateSessions(batch); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeUserSessions(u.ID, "everywhere", time.Now()); err != nil || n != 30 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 30", n, err)
	}
	if n, err := s.LiveSessions(u.ID, time.Now()); err != nil || n != 0 {
		t.Fatalf("live after revoking all: %d, %v", n, err)
	}
	if n, err := s.DeleteSessionsExpiredBefore(time.Now()); err != nil || n != 15 {
		t.Fatalf("DeleteSessionsExpiredBefore = %d, %v; want 15", n, err)
	}
	mustCheck(t, s, store.Counts{Users: 1, Sessions: 15})

	touched := map[string]time.Time{}
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for range 20 {
		k, _ := storetest.MustKey(t, s, u.ID)
		touched[k.ID] = at
	}
	touched["key_gone"] = at
	gen := s.Generation()
	if err := s.TouchAPIKeys(touched); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAPIKeys(u.ID)
	if err != nil || len(list) != 20 {
		t.Fatalf("ListAPIKeys: %d, %v", len(list), err)
	}
	for _, k := range list {
		if !k.LastUsed.Equal(at) {
			t.Errorf("key %s LastUsed %v, want %v", k.ID, k.LastUsed, at)
		}
	}
	if s.Generation() != gen {
		t.Error("TouchAPIKeys moved the generation")
	}
	mustCheck(t, s, store.Counts{Users: 1, APIKeys: 20, Sessions: 15})
}

// A backup is the documented document, ReadBackup reads it back, and it
// imports (in many transactions) into an empty store that then holds the
// same records.
func TestBackupRestore(t *testing.T) {
	src := open(t, etcd.Options{})
	u := &store.User{Username: "ann", Email: "ann@example.com", Roles: []string{"admin"}}
	if err := src.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		storetest.MustKey(t, src, u.ID)
		sess, r := storetest.MustSession(t, src, u.ID)
		if _, err := src.RotateRefresh(r, storetest.NewDigest(t), time.Now(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		_ = sess
	}
	if err := src.AddSigningKey(store.SigningKey{KID: "k1", Alg: "EdDSA", Private: []byte{1}}, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := src.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{"format", "prefix", "revision", "users", "apiKeys", "sessions", "refresh", "signingKeys"} {
		if _, ok := doc[member]; !ok {
			t.Errorf("backup has no %q", member)
		}
	}
	if strings.Contains(buf.String(), "passwordHash\":\"\"") {
		t.Error("empty members are written")
	}
	snap, err := etcd.ReadBackup(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dst := small(t)
	if err := dst.Import(snap); err != nil {
		t.Fatal(err)
	}
	want, _ := src.Export()
	got, err := dst.Export()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, want), mustJSON(t, got); a != b {
		t.Errorf("restored store differs:\n%s\n%s", a, b)
	}
	mustCheck(t, dst, store.Counts{Users: 1, APIKeys: 6, Sessions: 6, SigningKeys: 1})
	if err := dst.Import(snap); !errors.Is(err, store.ErrExists) {
		t.Errorf("a second import: %v, want ErrExists", err)
	}
	if _, err := etcd.ReadBackup(strings.NewReader(`{"format":"something else"}`)); !errors.Is(err, store.ErrMalformed) {
		t.Errorf("ReadBackup of another format: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Check finds an index entry without its record, and a record that does
// not decode.
func TestCheckFindsDamage(t *testing.T) {
	s := open(t, etcd.Options{})
	u := storetest.MustUser(t, s, "dot")
	storetest.MustKey(t, s, u.ID)
	cli := client(t, shared.Endpoints())
	ctx := context.Background()
	for _, damage := range []struct{ key, value string }{
		{"keys_by_digest/" + store.DigestOf("x").String(), "key_missing"},
		{"users/" + u.ID, "{not json"},
		{"refresh/" + store.DigestOf("y").String(), `{"v":1,"sid":"ses_missing"}`},
		{"something/else", "x"},
	} {
		key := s.Prefix() + damage.key
		old, err := cli.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, key, damage.value); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(); !errors.Is(err, store.ErrMalformed) {
			t.Errorf("Check with %s damaged: %v, want ErrMalformed", damage.key, err)
		}
		if len(old.Kvs) == 1 {
			_, err = cli.Put(ctx, key, string(old.Kvs[0].Value))
		} else {
			_, err = cli.Delete(ctx, key)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, s, store.Counts{Users: 1, APIKeys: 1})
}

// A prefix written by a newer build is refused; the backend names what it
// opened.
func TestOpenChecks(t *testing.T) {
	prefix := fresh()
	cli := client(t, shared.Endpoints())
	if _, err := cli.Put(context.Background(), prefix+"meta/schema", "99"); err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.Open(etcd.Options{Endpoints: shared.Endpoints(), Prefix: prefix}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Open of a newer layout: %v, want ErrSchemaTooNew", err)
	}
	if _, err := etcd.Open(etcd.Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open without endpoints: %v, want ErrInvalid", err)
	}
	s := open(t, etcd.Options{Prefix: "/no-slash"})
	kind, location := s.Backend()
	if kind != "etcd" || location != strings.Join(shared.Endpoints(), ",")+"/no-slash/" {
		t.Errorf("Backend() = %q, %q", kind, location)
	}
	// Nothing listens here: Open gives up after DialTimeout.
	start := time.Now()
	_, err := etcd.Open(etcd.Options{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 300 * time.Millisecond})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Open without a cluster: %v after %s", err, time.Since(start))
	}
}
