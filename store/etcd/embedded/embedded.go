// Package embedded runs etcd members in process, on loopback, for tests,
// end-to-end runs, benchmarks and demos of the etcd store: Start a
// cluster, hand its Endpoints to etcd.Open, Stop and Restart members to
// see the store lose and regain them, Close at the end.
//
// It is not for production: the members listen on 127.0.0.1 without TLS
// or auth, and their clocks are tuned for a quick election on one host.
package embedded

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartTimeout bounds how long Start and Restart wait for members to be
// ready.
var StartTimeout = 30 * time.Second

// Cluster is a running set of in-process etcd members. Its methods are
// safe for concurrent use.
type Cluster struct {
	mu      sync.Mutex
	members []*member
	closed  bool
}

type member struct {
	name         string
	dir          string
	client, peer url.URL
	initial      string // the initial cluster, for the first start
	etcd         *embed.Etcd
	down         bool
	stopped      chan struct{} // closed once a stopped member is closed
}

// Start starts a cluster of members (1 or more) under dir, each member's
// data in dir/<name>, each on free loopback ports, and waits until every
// member is ready.
func Start(dir string, members int) (*Cluster, error) {
	if members < 1 {
		return nil, errors.New("embedded: a cluster needs at least one member")
	}
	c := &Cluster{}
	var initial []string
	for i := range members {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		m := &member{
			name:   fmt.Sprintf("m%d", i),
			client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])},
			peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])},
		}
		m.dir = filepath.Join(dir, m.name)
		initial = append(initial, m.name+"="+m.peer.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return nil, err
		}
	}
	// Every member starts before any can be ready: a member waits for a
	// quorum of its peers.
	for _, m := range c.members {
		if err := m.start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, m := range c.members {
		if err := m.wait(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// config is a member's configuration: its ports, its data, quiet logs,
// and a heartbeat and election suited to one host.
func (m *member) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "authgate-embedded"
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	return cfg
}

func (m *member) start() error {
	e, err := embed.StartEtcd(m.config())
	if err != nil {
		return fmt.Errorf("embedded: starting %s: %w", m.name, err)
	}
	m.etcd, m.down = e, false
	return nil
}

func (m *member) wait() error {
	select {
	case <-m.etcd.Server.ReadyNotify():
		return nil
	case err := <-m.etcd.Err():
		return fmt.Errorf("embedded: %s: %w", m.name, err)
	case <-time.After(StartTimeout):
		return fmt.Errorf("embedded: %s not ready after %s", m.name, StartTimeout)
	}
}

// stop stops the member: at once its server, which from then on answers
// nothing (as a crashed member would), then, in the background, its
// listeners and connections. etcd waits for open streams (watches) to
// end before it closes them, up to its request timeout (6s here):
// waitStopped waits for that, and Restart and Close do.
func (m *member) stop() {
	if m.etcd != nil && !m.down {
		m.down = true
		m.etcd.Server.HardStop()
		e, done := m.etcd, make(chan struct{})
		m.stopped = done
		go func() {
			e.Close()
			close(done)
		}()
	}
}

// waitStopped waits until a stopped member has released its ports.
func (m *member) waitStopped() {
	if m.stopped != nil {
		<-m.stopped
	}
}

// Endpoints returns the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.client.String()
	}
	return eps
}

// Stop stops member i (0-based) at once: from its return on the member
// answers nothing. Its data stays for Restart.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.member(i)
	if err != nil {
		return err
	}
	m.stop()
	return nil
}

// Restart starts member i again, on the same data and ports, and waits
// until it is ready (with more than one member: until it has a quorum).
// Restarting a running member stops it first.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	m, err := c.member(i)
	if err == nil {
		m.stop()
		m.waitStopped()
		err = m.start()
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return m.wait()
}

func (c *Cluster) member(i int) (*member, error) {
	if c.closed {
		return nil, errors.New("embedded: cluster closed")
	}
	if i < 0 || i >= len(c.members) {
		return nil, fmt.Errorf("embedded: no member %d of %d", i, len(c.members))
	}
	return c.members[i], nil
}

// Close stops every member. The data directories are left to the caller
// (a test's TempDir removes itself). It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, m := range c.members {
		m.stop()
	}
	for _, m := range c.members {
		m.waitStopped()
	}
	return nil
}

// freePorts finds n free loopback ports. They are free when found; a
// process could take one before the member listens, which on a test host
// does not happen in practice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("embedded: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
