// Package caddymodule plugs authgate into Caddy: the `authgate` app (global
// option) that owns the store and the token issuer, the
// `http.handlers.authgate` handler, the Caddyfile syntax and the
// `caddy authgate` commands.
package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/timed"
)

func init() {
	caddy.RegisterModule(App{})
}

// Defaults of the global option block (API.md section 2).
const (
	defaultIssuer       = "authgate"
	defaultAccessTTL    = 24 * time.Hour
	defaultRefreshTTL   = 30 * 24 * time.Hour
	defaultSigningAlg   = "EdDSA"
	defaultLockoutCount = 5
	defaultLockoutFor   = 5 * time.Minute
	defaultSessionLimit = 10
)

// App is the `authgate` Caddy app: one store and one token issuer per Caddy
// instance, shared by every authgate handler of the config.
type App struct {
	// DB is the bbolt file. Default: authgate/authgate.db in Caddy's data dir.
	DB string `json:"db,omitempty"`
	// Store chooses another backend: etcd, shared by several gateways.
	// Unset (or bbolt) is the file DB names.
	Store *StoreConfig `json:"store,omitempty"`
	// Issuer is the iss claim of every token. Default "authgate".
	Issuer string `json:"issuer,omitempty"`
	// Audience is the aud claim; checked on every token when set.
	Audience string `json:"audience,omitempty"`
	// AccessTTL is the access token lifetime. Default 24h.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`
	// RefreshTTL is how long a refresh token stays usable. Default 30 days.
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`
	// SigningAlg is EdDSA (default), ES256, RS256 or HS256.
	SigningAlg string `json:"signing_alg,omitempty"`
	// LockoutAttempts failures lock an account for LockoutDuration.
	LockoutAttempts int            `json:"lockout_attempts,omitempty"`
	LockoutDuration caddy.Duration `json:"lockout_duration,omitempty"`
	// SessionLimit is how many live sessions one user may have; a login
	// past it revokes the user's oldest session. A user's own
	// sessionLimit overrides it. Default 10.
	SessionLimit int `json:"session_limit,omitempty"`
	// CacheEntries bounds each in-memory cache: verified API keys,
	// verified tokens, users (and the lockout counters). Default 100000.
	CacheEntries int64 `json:"cache_entries,omitempty"`
	// PasswordMinLength is the fewest characters a password set through
	// the admin API may have. 0 is the default, 8
	// (admin.DefaultMinPasswordLength, per NIST SP 800-63B).
	PasswordMinLength int `json:"password_min_length,omitempty"`

	// store is the shared store, timed for the metrics; set by Start
	// (before ready closes).
	store     store.Store
	storePath string // the pool key, set once we hold a reference
	// svc is this config's authgate: the decision caches, the issuer, the
	// upkeep. Provision prepares it, Start gives it the store. A reload
	// builds a new one on the same store.
	svc     *auth.Service
	metrics *metrics
	logger  *zap.Logger
	audit   *zap.Logger      // authgate.audit
	now     func() time.Time // the clock; tests swap it
	started bool             // Start ran: servers may have used the caches
	// ready is closed once the store is open and the service has it;
	// isReady is its fast check for the request path.
	ready   chan struct{}
	isReady *atomic.Bool
	ctx     caddy.Context
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "authgate",
		New: func() caddy.Module { return new(App) },
	}
}

// stores holds the open stores, keyed by their backend's identity (a
// bbolt file's absolute path, an etcd cluster and prefix). A reload
// provisions the new config before it stops the old one, and bbolt locks
// its file exclusively: the new config must reuse the open store, not open
// it a second time (for etcd: not a second client and watch).
var stores = caddy.NewUsagePool()

// sharedStore is what the pool holds per backend: the open store (with
// its lockout counters), so that a reload keeps it.
type sharedStore struct {
	store.Store
}

func (s sharedStore) Destruct() error { return s.Close() }

// Provision checks the configuration and prepares the service: its
// caches, metrics and audit log. It does not touch the store: `caddy
// validate` provisions too, and must neither open a store a live server
// holds nor create one (Start opens it).
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.audit = ctx.Logger().Named("audit")
	a.ready, a.isReady = make(chan struct{}), new(atomic.Bool)
	if a.now == nil {
		a.now = time.Now
	}
	if a.DB != "" && a.Store != nil && a.Store.Backend == "etcd" {
		return errors.New("authgate: db and store etcd name two stores: keep one")
	}
	a.applyDefaults()
	if err := a.validate(); err != nil {
		return err
	}
	if _, _, err := a.storeBackend(); err != nil {
		return err
	}
	var err error
	if a.metrics, err = newMetrics(ctx.GetMetricsRegistry(), a.cacheStats); err != nil {
		return fmt.Errorf("authgate: metrics: %v", err)
	}
	a.svc, err = auth.Prepare(a.serviceConfig(), a.logger.Sugar())
	return err
}

// open opens (or shares) the store and gives it to the service, which
// makes sure a signing key exists and builds the token issuer; then the
// handlers may serve.
func (a *App) open() error {
	kind, identity, err := a.storeBackend()
	if err != nil {
		return err
	}
	val, _, err := stores.LoadOrNew(identity, func() (caddy.Destructor, error) {
		st, err := a.openStore(kind)
		if err != nil {
			return nil, err
		}
		return sharedStore{Store: st}, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("authgate: %w (another Caddy serves it: admin commands go through that server's admin endpoint, or need it stopped for --db)", err)
		}
		return fmt.Errorf("authgate: opening the %s store: %w", kind, err)
	}
	a.storePath = identity
	shared := val.(sharedStore).Store
	backend, location := shared.Backend()
	a.logger.Info("authgate store open", zap.String("backend", backend), zap.String("location", location), zap.String("version", Version()))
	a.store = timed.New(shared, a.metrics.storeOp)
	if err := a.svc.Open(a.store); err != nil {
		return err
	}
	a.isReady.Store(true)
	close(a.ready)
	return nil
}

// startWait bounds how long a request that arrives before Start (Caddy
// starts its apps in no fixed order) waits for the store to open.
const startWait = 15 * time.Second

// errNotStarted is what such a request gets if the store does not open.
var errNotStarted = &auth.UnavailableError{Cause: errors.New("authgate has not started: its store is not open yet")}

// awaitStart waits until the store is open, the request gives up, or the
// config is stopped.
func (a *App) awaitStart(ctx context.Context) error {
	if a.isReady.Load() {
		return nil
	}
	timer := time.NewTimer(startWait)
	defer timer.Stop()
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
	case <-a.ctx.Done():
	case <-timer.C:
	}
	return errNotStarted
}

// serviceConfig is the service's share of the configuration.
func (a *App) serviceConfig() auth.Config {
	return auth.Config{
		Issuer: a.Issuer, Audience: a.Audience,
		AccessTTL: time.Duration(a.AccessTTL), RefreshTTL: time.Duration(a.RefreshTTL),
		SigningAlg:      a.SigningAlg,
		LockoutAttempts: a.LockoutAttempts, LockoutDuration: time.Duration(a.LockoutDuration),
		SessionLimit: a.SessionLimit, CacheEntries: a.CacheEntries,
		// Read a.now on every call: tests swap the clock of a running app.
		Now:      func() time.Time { return a.now() },
		Observer: &observer{metrics: a.metrics, audit: a.audit},
	}
}

func (a *App) applyDefaults() {
	if a.DB == "" {
		a.DB = filepath.Join(caddy.AppDataDir(), "authgate", "authgate.db")
	}
	if a.Issuer == "" {
		a.Issuer = defaultIssuer
	}
	if a.AccessTTL == 0 {
		a.AccessTTL = caddy.Duration(defaultAccessTTL)
	}
	if a.RefreshTTL == 0 {
		a.RefreshTTL = caddy.Duration(defaultRefreshTTL)
	}
	if a.SigningAlg == "" {
		a.SigningAlg = defaultSigningAlg
	}
	if a.LockoutAttempts == 0 {
		a.LockoutAttempts = defaultLockoutCount
	}
	if a.LockoutDuration == 0 {
		a.LockoutDuration = caddy.Duration(defaultLockoutFor)
	}
	if a.SessionLimit == 0 {
		a.SessionLimit = defaultSessionLimit
	}
	if a.CacheEntries == 0 {
		a.CacheEntries = 100_000
	}
}

func (a *App) validate() error {
	if !validAlg(a.SigningAlg) {
		return fmt.Errorf("authgate: signing_alg %q: want EdDSA, ES256, RS256 or HS256", a.SigningAlg)
	}
	if a.AccessTTL < 0 || a.RefreshTTL < 0 || a.LockoutDuration < 0 {
		return errors.New("authgate: durations must be positive")
	}
	if a.RefreshTTL < a.AccessTTL {
		// A session would end before its first access token: the refresh
		// token is dead by the time a client needs it.
		return fmt.Errorf("authgate: refresh_ttl (%v) is shorter than access_ttl (%v): a session would end before its first access token expires",
			time.Duration(a.RefreshTTL), time.Duration(a.AccessTTL))
	}
	if a.LockoutAttempts < 0 || a.CacheEntries < 0 || a.SessionLimit < 0 || a.PasswordMinLength < 0 {
		return errors.New("authgate: lockout attempts, session_limit, cache_entries and password_min_length must be positive")
	}
	return nil
}

// Start opens the store and begins the background upkeep (key lastUsed
// batches, pruning of dead sessions and signing keys).
func (a *App) Start() error {
	if err := a.open(); err != nil {
		return err
	}
	a.started = true
	a.svc.Start()
	return nil
}

// Stop ends the upkeep and writes the pending key uses; Cleanup releases
// the store once no config uses it.
func (a *App) Stop() error {
	if a.started {
		a.svc.Stop()
	}
	return nil
}

// retiredCacheLinger is how long the credential caches of a config replaced
// by a reload stay open after its Cleanup (see there). Each config's pair
// holds about 9 MB at the default cache_entries until then.
const retiredCacheLinger = 5 * time.Second

// Cleanup releases this config's reference to the store and closes the
// service's caches. Safe after a failed Provision.
func (a *App) Cleanup() error {
	if svc := a.svc; svc != nil {
		if a.started && !caddy.Exiting() {
			// A reload cleans the old config up as soon as its servers have
			// begun their graceful shutdown, not once they have drained:
			// requests they had already read still authenticate against
			// these caches, and ristretto's Close races with a concurrent
			// Set (a "send on closed channel" panic drops the request). Such
			// a request authenticates within moments of the shutdown, so
			// close them once it surely has. (On exit Caddy waits for its
			// servers to drain before Cleanup: closing at once is safe.)
			time.AfterFunc(retiredCacheLinger, svc.Close)
		} else {
			svc.Close()
		}
	}
	if a.storePath != "" {
		_, err := stores.Delete(a.storePath)
		a.storePath = ""
		return err
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// cacheStats is the decision cache's counts, for the metrics.
func (a *App) cacheStats() (hits, misses uint64) {
	if a.svc == nil {
		return 0, 0
	}
	return a.svc.CacheStats()
}
