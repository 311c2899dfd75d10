package etcd_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/etcd"
	"github.com/authgate/authgate/store/etcd/embedded"
	"github.com/authgate/authgate/store/storetest"
)

// shared is the one member most tests share, each on a prefix of its
// own (fresh): starting a member costs an election.
var shared *embedded.Cluster

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authgate-etcd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = embedded.Start(dir, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	shared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

var prefixes atomic.Int64

// fresh returns a prefix no other test uses.
func fresh() string { return fmt.Sprintf("/authgate-test/%d/", prefixes.Add(1)) }

// open opens a store on the shared member, closed when the test ends.
func open(t testing.TB, opts etcd.Options) *etcd.Store {
	t.Helper()
	if opts.Endpoints == nil {
		opts.Endpoints = shared.Endpoints()
	}
	if opts.Prefix == "" {
		opts.Prefix = fresh()
	}
	opts.Logger = testLogger{t}
	s, err := etcd.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a plain etcd client on the shared member.
func client(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

type testLogger struct{ t testing.TB }

func (l testLogger) Warnw(msg string, kv ...any) { l.t.Logf("warn: %s %v", msg, kv) }

// The conformance suite, each test on a fresh prefix of the shared member.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, etcd.Options{}) })
}

// The suite again with transactions capped at 16 operations: every
// operation that splits its work (batches, cascades, listings) splits it
// here, on the suite's small data.
func TestConformanceSmallTransactions(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, etcd.Options{MaxTxnOps: 16}) })
}

// eventually polls cond every 10ms for up to d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
