package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/storetest"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

// env is a service on a fresh in-memory store with a fake clock.
type env struct {
	t     *testing.T
	svc   *Service
	st    store.Store
	clock *clock
}

// testConfig is the gateway's defaults, with a small lockout for speed.
func testConfig() Config {
	return Config{
		Issuer: "authgate", AccessTTL: 24 * time.Hour, RefreshTTL: 30 * 24 * time.Hour,
		SigningAlg: "EdDSA", LockoutAttempts: 5, LockoutDuration: 5 * time.Minute,
		SessionLimit: 10, CacheEntries: 1000,
	}
}

func newEnv(t *testing.T, edit ...func(c *Config)) *env {
	t.Helper()
	// In memory: fast, no files. The conformance suite holds it to what
	// the bbolt backend does.
	st := storetest.NewMemory()
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	cfg := testConfig()
	cfg.Now = c.now
	for _, e := range edit {
		e(&cfg)
	}
	svc, err := New(st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return &env{t: t, svc: svc, st: st, clock: c}
}

// addUser stores a user with a password (email name@example.com).
func (e *env) addUser(name, password string, roles ...string) *store.User {
	e.t.Helper()
	phc, err := secret.HashSecret(password)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &store.User{Username: name, Email: name + "@example.com", Roles: roles, PasswordHash: phc}
	if err := e.st.CreateUser(u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// addKey stores an API key for u with a client secret; it returns the key
// and the client secret.
func (e *env) addKey(u *store.User, perms store.Permission) (k *store.APIKey, key, clientSecret string) {
	e.t.Helper()
	key, err := secret.NewSecret(secret.KeyPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	clientSecret, err = secret.NewSecret(secret.ClientSecretPrefix)
	if err != nil {
		e.t.Fatal(err)
	}
	k = &store.APIKey{
		Name: "test", OwnerID: u.ID, Permissions: perms, Digest: store.DigestOf(key), Hint: secret.Mask(key),
		ClientSecretDigest: store.DigestOf(clientSecret), CreatedAt: e.clock.now(),
	}
	if err := e.st.CreateAPIKey(k); err != nil {
		e.t.Fatal(err)
	}
	return k, key, clientSecret
}

func (e *env) login(name, password string) TokenPair {
	e.t.Helper()
	pair, err := e.svc.Login(context.Background(), name, password)
	if err != nil {
		e.t.Fatalf("login %s: %v", name, err)
	}
	return pair
}

// wait lets the caches' asynchronous writes land.
func (e *env) wait() {
	e.svc.WaitCaches()
}
