package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// The conformance suite, each test on a fresh Memory.
func TestMemoryConformance(t *testing.T) {
	Run(t, func(t *testing.T) store.Store {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// TestMemoryCopies: no caller shares a stored value, neither the one it
// passed in nor one it got back.
func TestMemoryCopies(t *testing.T) {
	m := NewMemory()
	u := &store.User{Username: "ann", Roles: []string{"admin"}, Settings: []store.Setting{{Name: "a", Value: "1"}}}
	if err := m.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	u.Roles[0], u.Settings[0].Value = "changed-in", "changed-in"
	got, _ := m.UserByID(u.ID)
	got.Roles[0], got.Settings[0].Value = "changed-out", "changed-out"
	list, _ := m.ListUsers()
	list[0].Roles[0] = "changed-list"
	updated, err := m.UpdateUser(u.ID, func(x *store.User) error { x.FirstName = "Ann"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	updated.Roles[0] = "changed-update"
	if again, _ := m.UserByLogin("ann"); again.Roles[0] != "admin" || again.Settings[0].Value != "1" || again.FirstName != "Ann" {
		t.Errorf("stored user changed through a caller's value: %+v", again)
	}

	private := []byte{1, 2, 3}
	if err := m.AddSigningKey(store.SigningKey{KID: "k", Alg: "EdDSA", Private: private}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	private[0] = 99
	if keys, _ := m.SigningKeys(); keys[0].Private[0] != 1 {
		t.Error("stored signing key shares the caller's key material")
	}
}

// TestMemoryCloneCoversReferences: the copies (cloneUser and the others)
// copy every field that refers to shared memory. A new slice, map or
// pointer field in a record fails here until its clone copies it.
func TestMemoryCloneCoversReferences(t *testing.T) {
	cloned := map[reflect.Type][]string{
		reflect.TypeFor[store.User]():       {"Roles", "Settings"},
		reflect.TypeFor[store.Setting]():    nil,
		reflect.TypeFor[store.APIKey]():     nil,
		reflect.TypeFor[store.Session]():    nil,
		reflect.TypeFor[store.SigningKey](): {"Private"},
	}
	for typ, want := range cloned {
		var refs []string
		for f := range typ.Fields() {
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
				refs = append(refs, f.Name)
			}
		}
		if !slices.Equal(refs, want) {
			t.Errorf("%s has reference fields %v; memory.go's clone copies %v", typ, refs, want)
		}
	}
}

// TestMemoryPanicRollsBack: a callback that panics leaves nothing of its
// write behind.
func TestMemoryPanicRollsBack(t *testing.T) {
	m := NewMemory()
	u := MustUser(t, m, "bo")
	gen := m.Generation()
	func() {
		defer func() { recover() }()
		m.UpdateUser(u.ID, func(x *store.User) error { x.Username = "renamed"; panic("boom") })
	}()
	if _, err := m.UserByLogin("bo"); err != nil {
		t.Errorf("old name after the panic: %v", err)
	}
	if _, err := m.UserByLogin("renamed"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("new name after the panic: %v, want ErrNotFound", err)
	}
	if m.Generation() != gen {
		t.Error("an aborted write moved the generation")
	}
	if _, err := m.Check(); err != nil {
		t.Error(err)
	}
}

// TestMemoryBackup: the snapshot is the documented JSON document.
func TestMemoryBackup(t *testing.T) {
	m := NewMemory()
	u := MustUser(t, m, "cy")
	k, _ := MustKey(t, m, u.ID)
	sess, _ := MustSession(t, m, u.ID)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := m.TouchAPIKeys(map[string]time.Time{k.ID: at}); err != nil {
		t.Fatal(err)
	}
	if err := m.TouchSessions(map[string]time.Time{sess.ID: at}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddSigningKey(store.SigningKey{KID: "k1", Alg: "EdDSA", Private: []byte{1}}, true, at); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	var b memoryBackup
	if err := json.Unmarshal(buf.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Format != MemoryBackupFormat || len(b.Users) != 1 || b.Users[0].ID != u.ID ||
		len(b.APIKeys) != 1 || b.APIKeys[0].Digest != k.Digest || !b.KeysLastUsed[k.ID].Equal(at) ||
		len(b.Sessions) != 1 || b.Sessions[0].ID != sess.ID || !b.SessionsSeen[sess.ID].Equal(at) ||
		len(b.RefreshTokens) != 1 || b.RefreshTokens[0].SID != sess.ID ||
		len(b.SigningKeys) != 1 || b.SigningKeys[0].KID != "k1" {
		t.Errorf("backup: %s", buf.Bytes())
	}
}

// TestMemoryClosed: after Close every operation fails with
// ErrMemoryClosed; Close stays nil.
func TestMemoryClosed(t *testing.T) {
	m := NewMemory()
	u := MustUser(t, m, "di")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, errByID := m.UserByID(u.ID)
	_, errList := m.ListSessions("")
	_, errCheck := m.Check()
	_, errBackup := m.Backup(new(bytes.Buffer))
	_, errAttempts := m.ListAttempts(time.Now())
	_, errExport := m.Export()
	_, errBySecret := m.SessionBySecret(store.Digest{1})
	for name, err := range map[string]error{
		"ListAttempts":    errAttempts,
		"ClearAttempts":   m.ClearAttempts(store.AccountKey{}),
		"Export":          errExport,
		"Import":          m.Import(&store.Snapshot{}),
		"UserByID":        errByID,
		"ListSessions":    errList,
		"Check":           errCheck,
		"Backup":          errBackup,
		"CreateUser":      m.CreateUser(&store.User{Username: "eve"}),
		"TouchAPIKeys":    m.TouchAPIKeys(nil),
		"TouchSessions":   m.TouchSessions(nil),
		"SessionBySecret": errBySecret,
	} {
		if !errors.Is(err, ErrMemoryClosed) {
			t.Errorf("%s after Close: %v, want ErrMemoryClosed", name, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if kind, loc := m.Backend(); kind != "memory" || loc == "" {
		t.Errorf("Backend() = %q, %q", kind, loc)
	}
}
