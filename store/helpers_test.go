package store

import (
	"path/filepath"
	"testing"
	"time"
)

// openTest opens a fresh store in a temporary directory, closed at the end.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "authgate.db"), Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t testing.TB, s *Store, name string) *User {
	t.Helper()
	u := &User{Username: name}
	if err := s.CreateUser(u); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// mustKey creates an API key for owner and returns it with its secret.
func mustKey(t testing.TB, s *Store, ownerID string) (*APIKey, string) {
	t.Helper()
	secret, err := NewSecret(KeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	k := &APIKey{Name: "test", OwnerID: ownerID, Permissions: PermAll, Digest: DigestOf(secret), Hint: Mask(secret)}
	if err := s.CreateAPIKey(k); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	return k, secret
}

// mustSession opens a session for userID and returns it with its refresh
// token's digest.
func mustSession(t testing.TB, s *Store, userID string) (*Session, Digest) {
	t.Helper()
	secret, err := NewSecret(RefreshPrefix)
	if err != nil {
		t.Fatal(err)
	}
	sess := &Session{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	d := DigestOf(secret)
	if _, err := s.CreateSession(sess, d, 0); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess, d
}

func newDigest(t testing.TB) Digest {
	t.Helper()
	secret, err := NewSecret(RefreshPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return DigestOf(secret)
}
