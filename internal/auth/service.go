// Package auth is authgate's service: it authenticates credentials (with
// the decision caches that keep a cached credential off the store), logs
// users in, refreshes and ends sessions, checks client secrets, passwords
// and PINs under the lockout, applies a user's own profile changes, keeps
// the signing keys, and runs the upkeep. It speaks neither HTTP nor Caddy:
// the plugin and the dialects translate requests to calls and its domain
// errors (errors.go) to their wire.
package auth

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// Config is what the operator sets (API.md section 2), defaults applied.
type Config struct {
	Issuer, Audience string
	AccessTTL        time.Duration
	RefreshTTL       time.Duration
	SigningAlg       string
	// LockoutAttempts failures within LockoutDuration lock an account for
	// LockoutDuration.
	LockoutAttempts int
	LockoutDuration time.Duration
	// SessionLimit is how many live sessions of one budget a user may have
	// (a user's own limit overrides it).
	SessionLimit int
	// CacheEntries bounds each decision cache.
	CacheEntries int64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Observer hears decisions and events (metrics, the audit trail);
	// nil hears nothing.
	Observer Observer
}

// Service is one configuration's authgate. A reload builds a new one on
// the same store; the old one is closed once Caddy has stopped sending it
// requests.
type Service struct {
	st       store.Store
	cfg      Config
	logger   Logger
	now      func() time.Time
	observer Observer

	// issuer signs and verifies access tokens; swapped whole when the
	// signing keys change (rotation, pruning).
	issuer atomic.Pointer[tokens.Issuer]
	// issuerGen is the store generation the issuer's keys were read at;
	// reloading and lastReload pace reloads (reloadIfRotated).
	issuerGen  atomic.Uint64
	reloading  sync.Mutex
	lastReload atomic.Int64
	// Verified credentials, by their digest's Slot. A cache per kind so that no
	// string of one kind can ever find a principal of the other. Only
	// credentials that verified are ever added. Principals are held by
	// value: see Principal.
	bearers *ristretto.Cache[uint64, Principal]
	keys    *ristretto.Cache[uint64, Principal]
	// sessions holds browser session cookies' decisions. It is made by
	// EnableBrowserSessions, only for configs with a browser login: a
	// cache is megabytes the garbage collector would otherwise carry for
	// nothing (the handler benchmark measured 5% for an unused one).
	sessions     *ristretto.Cache[uint64, Principal]
	sessionsOnce sync.Once
	sessionsErr  error

	// cacheHits and cacheMisses count the decisions taken from the
	// caches and those made from the store (the metrics read them).
	cacheHits, cacheMisses atomic.Uint64

	usage  keyUsage
	upkeep *maintainer
}

// New builds the service on st: Prepare, then Open.
func New(st store.Store, cfg Config, logger Logger) (*Service, error) {
	s, err := Prepare(cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := s.Open(st); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Prepare builds the service without its store: the configuration and
// the decision caches. Nothing but Open and Close may be called until Open
// returned; the plugin prepares at provisioning, which `caddy validate`
// runs too, and opens the store only when the config starts.
func Prepare(cfg Config, logger Logger) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = nopLogger{}
	}
	observer := cfg.Observer
	if observer == nil {
		observer = nopObserver{}
	}
	s := &Service{cfg: cfg, logger: logger, now: cfg.Now, observer: observer}
	var err error
	if s.bearers, err = newPrincipalCache(cfg.CacheEntries); err != nil {
		return nil, err
	}
	if s.keys, err = newPrincipalCache(cfg.CacheEntries); err != nil {
		s.bearers.Close()
		return nil, err
	}
	return s, nil
}

// Open gives the service its store: it makes sure a signing key of the
// configured algorithm signs (generated on first start), prunes keys that
// can no longer verify anything, and builds the issuer.
func (s *Service) Open(st store.Store) error {
	s.st = st
	return s.loadIssuer()
}

func newPrincipalCache(entries int64) (*ristretto.Cache[uint64, Principal], error) {
	if entries < 1 {
		entries = 1
	}
	c, err := ristretto.NewCache(&ristretto.Config[uint64, Principal]{
		NumCounters:        10 * entries,
		MaxCost:            entries,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: credential cache: %v", err)
	}
	return c, nil
}

// Logger is what the service logs to: key-value pairs after the message,
// as *zap.SugaredLogger takes them (the service does not import zap, which
// would bring net/http with it). It never logs a secret.
type Logger interface {
	Infow(msg string, keysAndValues ...any)
	Warnw(msg string, keysAndValues ...any)
	Errorw(msg string, keysAndValues ...any)
}

type nopLogger struct{}

func (nopLogger) Infow(string, ...any)  {}
func (nopLogger) Warnw(string, ...any)  {}
func (nopLogger) Errorw(string, ...any) {}

// CacheStats reports how many credential decisions came from the caches
// (hits) and how many were made from the store (misses) so far.
func (s *Service) CacheStats() (hits, misses uint64) {
	return s.cacheHits.Load(), s.cacheMisses.Load()
}

// Store is the store the service works on.
func (s *Service) Store() store.Store { return s.st }

// Config is the service's configuration, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// JWKS is the JSON Web Key Set of the public signing keys.
func (s *Service) JWKS() []byte { return s.issuer.Load().JWKS() }

// WaitCaches lets the caches' asynchronous writes land, so that a test or
// a benchmark exercises the cached path rather than a miss.
func (s *Service) WaitCaches() {
	s.bearers.Wait()
	s.keys.Wait()
	if s.sessions != nil {
		s.sessions.Wait()
	}
}

// Close closes the decision caches. It must come after the last request
// that could use them: ristretto's Close races a concurrent Set.
func (s *Service) Close() { s.closeCaches() }

func (s *Service) closeCaches() {
	if s.bearers != nil {
		s.bearers.Close()
	}
	if s.keys != nil {
		s.keys.Close()
	}
	if s.sessions != nil {
		s.sessions.Close()
	}
}
