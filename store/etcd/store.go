// Package etcd is authgate's cluster backend: the store.Store interface
// over an etcd v3 cluster, so that any number of gateways share one set of
// users, keys, sessions, signing keys and lockout counters (API.md
// section 8).
//
// Every record lives under one key prefix (layout.go). Every write is one
// optimistic transaction (txn.go) that etcd has committed on a quorum
// before the call returns; the lockout's counters sit on leases
// (attempts.go); a watch on the prefix feeds the change feed, with which
// each instance reuses its cached decisions until a record they rest on
// changes anywhere (feed.go). Backup, Export, Import and Check work at one
// revision (maintenance.go).
//
// Every call is bounded: Options.OpTimeout per operation (per round trip
// for the bulk ones: listings, batches, maintenance), so a lost cluster
// fails a request fast and never hangs it.
package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/authgate/authgate/store"
)

// Interface guards
var _ store.Store = (*Store)(nil)

// ErrClosed is what a closed Store returns.
var ErrClosed = errors.New("store: etcd store is closed")

// Logger receives the backend's warnings (a lost watch, a compaction). A
// *zap.SugaredLogger is one. Nothing it is given holds a secret.
type Logger interface {
	Warnw(msg string, keysAndValues ...any)
}

// TLS configures the connection to the cluster. With CertFile and KeyFile
// both set the client presents that certificate; with CAFile set the
// server's certificate is checked against it, else against the system's
// roots. Any file set (or an https:// endpoint) turns TLS on.
type TLS struct {
	CertFile, KeyFile, CAFile string
}

// Options configures Open. Endpoints is required.
type Options struct {
	// Endpoints are the cluster's client URLs ("http://10.0.0.1:2379",
	// "https://etcd.example:2379" or "host:port").
	Endpoints []string
	// Prefix is where every key lives. Default "/authgate/"; a missing
	// trailing '/' is added. Stores on different prefixes share nothing.
	Prefix string
	TLS    TLS
	// Username and Password authenticate to a cluster with auth enabled.
	Username, Password string
	// DialTimeout bounds Open's first contact. Default 5s.
	DialTimeout time.Duration
	// OpTimeout bounds each operation (each round trip of the bulk ones).
	// Default 2s.
	OpTimeout time.Duration
	// MaxStale is how long the change feed may go unconfirmed before every
	// cached decision stops counting (feed.go). Default 5s.
	MaxStale time.Duration
	// MaxTxnOps is the cluster's cap on operations per transaction
	// (etcd's --max-txn-ops). Default 128, etcd's default.
	MaxTxnOps int
	// Logger receives warnings; nil discards them.
	Logger Logger
}

// Store is an authgate store on an etcd cluster. It is safe for concurrent
// use. Close must be called once every other call has returned.
type Store struct {
	cli       *clientv3.Client
	prefix    string
	endpoints []string
	opTimeout time.Duration
	maxOps    int
	logger    Logger

	feed     *feed
	watching watchState
	leases   *leasePool
	// rewatch lets a test restart the watch from an older revision (one
	// compacted meanwhile); nothing sends on it otherwise.
	rewatch chan int64
	// restart asks the watch loop for a new watch (confirmLoop).
	restart chan struct{}
	// ready is closed once the first watch is established.
	ready     chan struct{}
	readyOnce sync.Once

	// legacyKeys is set once any imported legacy key was stored, by any
	// instance (the watch sees meta/legacy_keys).
	legacyKeys atomic.Bool
	// signingMu serialises this instance's EnsureSigningKey calls, so that
	// concurrent ones generate one key (other instances are held off by
	// the transaction).
	signingMu sync.Mutex

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open connects to the cluster, checks (or stamps) the layout version
// under the prefix, and starts the watch that feeds the change feed. It
// returns once the watch is established, or fails after DialTimeout.
func Open(opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, fmt.Errorf("store: etcd: %w: no endpoints", store.ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = "/authgate/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 2 * time.Second
	}
	if opts.MaxStale <= 0 {
		opts.MaxStale = 5 * time.Second
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = 128
	}
	tlsConfig, err := opts.TLS.config(opts.Endpoints)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		TLS:                  tlsConfig,
		Username:             opts.Username,
		Password:             opts.Password,
		Logger:               zap.NewNop(),
		// Reconnect quickly once a member is back: grpc's default backoff
		// grows to two minutes, the feed's staleness is seconds.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: opts.DialTimeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd: connecting to %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cli:       cli,
		prefix:    opts.Prefix,
		endpoints: opts.Endpoints,
		opTimeout: opts.OpTimeout,
		maxOps:    opts.MaxTxnOps,
		logger:    opts.Logger,
		ctx:       ctx,
		cancel:    cancel,
		rewatch:   make(chan int64),
		restart:   make(chan struct{}, 1),
		ready:     make(chan struct{}),
	}
	s.leases = &leasePool{s: s, byEnd: map[int64]clientv3.LeaseID{}}
	rev, err := s.prepare(opts.DialTimeout)
	if err != nil {
		cancel()
		cli.Close()
		return nil, err
	}
	s.feed = newFeed(opts.MaxStale, rev)
	every := min(time.Second, opts.MaxStale/4)
	s.wg.Add(2)
	go s.watch(rev)
	go s.confirmLoop(every)
	// The feed is live when Open returns: a write another instance makes
	// from now on is seen.
	select {
	case <-s.ready:
	case <-time.After(opts.DialTimeout):
		s.Close()
		return nil, fmt.Errorf("store: etcd: %s: the watch on %s was not established within %s", strings.Join(opts.Endpoints, ","), opts.Prefix, opts.DialTimeout)
	}
	return s, nil
}

// prepare refuses a prefix written by a newer build, stamps the layout
// version on a new one, and reads the legacy-key flag. It returns the
// revision the watch starts after.
func (s *Store) prepare(timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	schema, legacy := s.meta(keyMetaSchema), s.meta(keyMetaLegacyKeys)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(schema), "=", 0)).
		Then(clientv3.OpPut(schema, strconv.Itoa(schemaVersion)), clientv3.OpGet(legacy)).
		Else(clientv3.OpGet(schema), clientv3.OpGet(legacy)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("store: etcd: %s: %w", strings.Join(s.endpoints, ","), err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 1 {
			v, err := strconv.Atoi(string(kvs[0].Value))
			if err != nil {
				return 0, fmt.Errorf("store: etcd: %s%s %q: %w", s.prefix, keyMetaSchema, kvs[0].Value, store.ErrMalformed)
			}
			if v > schemaVersion {
				return 0, fmt.Errorf("%w: %s has schema version %d, this build knows up to %d", store.ErrSchemaTooNew, s.prefix, v, schemaVersion)
			}
		}
	}
	s.legacyKeys.Store(len(resp.Responses[1].GetResponseRange().GetKvs()) > 0)
	return resp.Header.Revision, nil
}

// config builds the client's TLS configuration; nil for plain text.
func (t TLS) config(endpoints []string) (*tls.Config, error) {
	on := t.CertFile != "" || t.KeyFile != "" || t.CAFile != ""
	for _, ep := range endpoints {
		on = on || strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unixs://")
	}
	if !on {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store: etcd: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store: etcd: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store: etcd: %w: CA file %s holds no PEM certificate", store.ErrInvalid, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// opCtx bounds one operation.
func (s *Store) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opTimeout)
}

// warn logs through Options.Logger, if any.
func (s *Store) warn(msg string, kv ...any) {
	if s.logger != nil {
		s.logger.Warnw(msg, kv...)
	}
}

// Close stops the watch and closes the connection. Leases are left to
// run out: the lockout's counters outlive the instance. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.cli.Close()
		if errors.Is(s.closeErr, context.Canceled) {
			s.closeErr = nil
		}
	})
	return s.closeErr
}

// Health is nil while the watch has been confirmed within MaxStale: the
// cluster answered lately, and decisions made from the caches are fresh.
func (s *Store) Health() error {
	switch {
	case s.closed.Load():
		return errors.New("store/etcd: closed")
	case s.feed.stale():
		return fmt.Errorf("store/etcd: no word from the cluster for longer than max_stale (%v)", s.feed.maxStale)
	}
	return nil
}

// Backend names this backend and what it opened: the endpoints, comma
// separated, followed by the prefix.
func (s *Store) Backend() (kind, location string) {
	return "etcd", strings.Join(s.endpoints, ",") + s.prefix
}

// Prefix returns the key prefix the store lives under.
func (s *Store) Prefix() string { return s.prefix }

// HasLegacyKeys reports whether any imported legacy key (no prefix, no
// checksum) was ever stored, by any instance.
func (s *Store) HasLegacyKeys() bool { return s.legacyKeys.Load() }

// Generation is the etcd revision of the latest change to a user, session,
// API key or signing key the change feed has applied, or, while the feed
// is stale, a new value on every call (feed.go). Memory only.
func (s *Store) Generation() uint64 { return s.feed.generation() }

// ChangedSince reports whether the user, session or API key with these
// IDs may have been written after generation gen ("" names none): always
// while the feed is stale, and for generations from before a compaction
// or a stale spell. Memory only.
func (s *Store) ChangedSince(gen uint64, userID, sessionID, keyID string) bool {
	return s.feed.changedSince(gen, userID, sessionID, keyID)
}

// SigningKeysChangedSince reports whether a signing key was added,
// retired or deleted, by any instance, after generation gen (always while
// the feed is stale). Memory only.
func (s *Store) SigningKeysChangedSince(gen uint64) bool { return s.feed.signingChangedSince(gen) }

// utcNow is the store's clock: UTC, without a monotonic reading, so values
// compare equal after a JSON round trip.
func utcNow() time.Time { return time.Now().UTC() }
