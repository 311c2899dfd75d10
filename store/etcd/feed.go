package etcd

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/authgate/authgate/store"
)

// The change feed: Generation, ChangedSince and SigningKeysChangedSince,
// fed by a watch on the prefix. They are answered from memory only: a
// cached decision is reused without a read of etcd.
//
// Generations are etcd revisions. Generation is the revision of the
// latest change the feed has applied (a write of a users/, sessions/,
// keys/ or signing_keys/ key: not keys_last_used, indexes, lists or the
// lockout, so a TouchAPIKeys batch moves nothing). Each change marks its
// record's id in a store.ChangeLog with its revision, before Generation
// moves past it; marks only move forward (mark). A decision made from
// records read, linearizably, after loading Generation g saw every write
// up to g; a later write of its records has a revision above g and marks
// them so, once the watch delivers it (within ~a round trip), or at once
// when it was made through this Store: a write marks what it wrote with
// its transaction's revision before it returns (txn.go), so a revocation
// on this instance is honoured on its very next request.
//
// Freshness. The feed is current as of time T when a linearizable read
// made at T (a quorum's answer, so neither a partitioned nor a stopping
// member can give it) returned a revision R and the watch has applied
// every event up to R: every write made before T is marked. Every ~second
// (at most MaxStale/4) the store makes that read (a count of one key) and
// asks the watch for a progress notification (RequestProgress on the
// watch's own stream, with WithProgressNotify), which moves the watch's
// applied revision up to the present even when nothing under the prefix
// changed; when the watch reaches R, the feed counts as confirmed at T.
// A progress notification alone confirms nothing: a member that is
// shutting down still sends them, from a revision that no longer moves.
//
// If nothing confirmed the feed for longer than MaxStale (a lost member,
// a partition, a stuck stream) it is stale: Generation returns a new
// value on every call (from a range no revision reaches, staleGen and
// up) and ChangedSince and SigningKeysChangedSince say true, for any
// generation, so no cached decision is reused and every request reads
// etcd, which fails with the store's error while etcd is unreachable (the
// service answers 503) and succeeds as soon as it is back. A decision
// made at a stale generation counts as changed for good. When the feed is
// confirmed again, everything decided before the confirming read counts
// as changed once (floor: a generation below it is always changed), and
// the feed goes on. A watch that has confirmed nothing for half of
// MaxStale is replaced by a new one (a stream that died unnoticed, or
// one resumed on a member that is going away, does not recover by
// itself).
//
// Compaction. A watch that fell behind a compaction cannot be resumed:
// the events it missed are gone. The feed then reads the current revision
// C, sets the floor to C (every decision made before counts as changed,
// and the signing keys as rotated), and watches again from C. A watch
// cut off otherwise (no leader, a closed stream) resumes from the last
// revision it had applied, losing nothing.

// staleGen is where the generations of a stale feed start: above every
// revision etcd will ever reach, so they never equal a real one.
const staleGen = uint64(1) << 63

// feed is the change feed's state. Its counters are read without locks;
// mu serialises their writers (local commits and the watch).
type feed struct {
	changes *store.ChangeLog
	mu      sync.Mutex
	gen     atomic.Uint64 // revision of the latest change applied
	floor   atomic.Uint64 // a generation below it counts as changed
	signing atomic.Uint64 // revision of the latest signing-key change
	stales  atomic.Uint64 // counter of stale generations
	applied atomic.Int64  // revision up to which the watch has applied every event

	base      time.Time     // the monotonic clock's origin
	confirmed atomic.Int64  // when the feed was last known current, ns since base
	maxStale  time.Duration //
	wasStale  bool          // under mu: the feed went stale since the last confirmation
	pending   *expectation  // under mu: the oldest read the watch has not reached yet
}

// expectation is a linearizable read's revision, and when it was made.
type expectation struct {
	rev int64
	at  int64
}

func newFeed(maxStale time.Duration, rev int64) *feed {
	f := &feed{changes: store.NewChangeLog(), base: time.Now(), maxStale: maxStale}
	f.gen.Store(uint64(rev))
	f.applied.Store(rev)
	f.confirmed.Store(0)
	return f
}

func (f *feed) since() int64 { return int64(time.Since(f.base)) }

// stale reports whether nothing confirmed the feed for longer than
// MaxStale.
func (f *feed) stale() bool {
	return f.since()-f.confirmed.Load() > int64(f.maxStale)
}

func (f *feed) generation() uint64 {
	if f.stale() {
		return staleGen + f.stales.Add(1)
	}
	return f.gen.Load()
}

// outdated reports whether every decision made at gen counts as changed.
func (f *feed) outdated(gen uint64) bool {
	return gen >= staleGen || gen < f.floor.Load() || f.stale()
}

func (f *feed) changedSince(gen uint64, userID, sessionID, keyID string) bool {
	if userID == "" && sessionID == "" && keyID == "" {
		return false
	}
	if f.outdated(gen) {
		return true
	}
	l := f.changes
	return l.ChangedSince(gen, userID) || l.ChangedSince(gen, sessionID) || l.ChangedSince(gen, keyID)
}

func (f *feed) signingChangedSince(gen uint64) bool {
	return f.outdated(gen) || f.signing.Load() > gen
}

// mark records that id was written at rev; under mu. A slot never moves
// back (store.ChangeLog.Mark stores what it is given): the watch may
// deliver an older revision after a local commit marked a newer one.
func (f *feed) mark(rev uint64, id string) {
	if id != "" && !f.changes.ChangedSince(rev, id) {
		f.changes.Mark(rev, id)
	}
}

// advance moves Generation to rev if that is later; under mu, after the
// marks.
func (f *feed) advance(rev uint64) {
	if rev > f.gen.Load() {
		f.gen.Store(rev)
	}
}

// apply marks what one key's write at rev means; under mu. It reports
// whether it was a change (Generation must move).
func (f *feed) apply(s *Store, rev uint64, key string) bool {
	c, id := s.classify(key)
	switch c {
	case changeUser, changeSession, changeKey:
		f.mark(rev, id)
		return true
	case changeSigning:
		if rev > f.signing.Load() {
			f.signing.Store(rev)
		}
		return true
	case changeLegacy:
		s.legacyKeys.Store(true)
	}
	return false
}

// committed marks the keys a transaction of this Store wrote at rev,
// before the write returns.
func (f *feed) committed(s *Store, rev int64, keys []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := false
	for _, k := range keys {
		changed = f.apply(s, uint64(rev), k) || changed
	}
	if changed {
		f.advance(uint64(rev))
	}
}

// events applies one watch response's events.
func (f *feed) events(s *Store, evs []*clientv3.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var top uint64
	for _, ev := range evs {
		rev := uint64(ev.Kv.ModRevision)
		if f.apply(s, rev, string(ev.Kv.Key)) {
			top = max(top, rev)
		}
	}
	f.advance(top)
}

// expect records a linearizable read made at time at that returned rev:
// the feed is current as of at once the watch has applied rev (reached).
// An older expectation not reached yet is kept, unless it is too old to
// be worth confirming (half of MaxStale): under a steady stream of writes
// a newer one would always be a little ahead of the watch.
func (f *feed) expect(rev, at int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil || at-f.pending.at > int64(f.maxStale/2) {
		f.pending = &expectation{rev, at}
	}
	return f.check()
}

// reached records that the watch has applied every event up to rev, and
// reports whether that confirmed the feed after a stale spell.
func (f *feed) reached(rev int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev > f.applied.Load() {
		f.applied.Store(rev)
	}
	return f.check()
}

// check confirms the feed if the watch reached the pending expectation;
// under mu. After a stale spell everything decided before the confirming
// read counts as changed once. It reports such a recovery.
func (f *feed) check() bool {
	e := f.pending
	if e == nil || f.applied.Load() < e.rev {
		return false
	}
	f.pending = nil
	recovered := f.stale() || f.wasStale
	if recovered {
		f.reset(e.rev)
		f.wasStale = false
	}
	if e.at > f.confirmed.Load() {
		f.confirmed.Store(e.at)
	}
	return recovered
}

// reset makes every generation below rev count as changed (signing keys
// too) and moves Generation to rev; under mu. rev is a revision read
// after everything the feed has marked.
func (f *feed) reset(rev int64) {
	r := uint64(rev)
	if r > f.floor.Load() {
		f.floor.Store(r)
	}
	if r > f.signing.Load() {
		f.signing.Store(r)
	}
	f.advance(r)
}

// compacted handles a compaction the watch fell behind (see above): rev
// is the current revision, read after it.
func (f *feed) compacted(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset(rev)
	if rev > f.applied.Load() {
		f.applied.Store(rev)
	}
	f.check()
}

// noteStale remembers that the feed went stale, so that the next
// confirmation resets it even if it comes quickly.
func (f *feed) noteStale() {
	f.mu.Lock()
	f.wasStale = true
	f.mu.Unlock()
}

// ---- The watch ----

// watchState is what the progress requester needs of the running watch.
type watchState struct {
	mu      sync.Mutex
	ctx     context.Context // the live watch's context (its stream), nil until it is created
	started int64           // when the current watch was asked for, feed time
}

// begin records that a new watch was asked for at now.
func (w *watchState) begin(now int64) {
	w.mu.Lock()
	w.ctx, w.started = nil, now
	w.mu.Unlock()
}

// created records that the watch is established on ctx's stream.
func (w *watchState) created(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
}

func (w *watchState) get() (context.Context, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx, w.started
}

// Why a watch ended.
const (
	watchEnded     = iota // closed or cancelled: watch again from where it was
	watchCompacted        // it fell behind a compaction
	watchRestart          // confirmLoop (or a test) asked for a new one
)

// watch follows the prefix from revision rev on until the Store closes
// (see the top of this file).
//
// Each watch starts at the revision up to which everything has been
// applied, not the one after: etcd sends progress notifications only to
// watchers whose start revision it has reached, and on an idle cluster
// the one after would be reached only by the next write. (The client
// resumes a watch cut off by a reconnection after the last revision it
// saw; then the revision of the confirming read is reached already.) The
// events of rev come again; marking them twice changes nothing.
func (s *Store) watch(rev int64) {
	defer s.wg.Done()
	retry := 0
	for seq := 0; s.ctx.Err() == nil; seq++ {
		// Each watch gets a stream of its own (the client shares streams
		// by the context's metadata), so a stream that is going away is
		// never reused and RequestProgress reaches this watch's stream.
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		ctx = metadata.AppendToOutgoingContext(ctx, "authgate-watch", strconv.Itoa(seq))
		select {
		case <-s.restart: // meant for the watch that ended
		default:
		}
		s.watching.begin(s.feed.since())
		wch := s.cli.Watch(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev),
			clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
		next, why, compactedTo := s.follow(ctx, wch, rev)
		cancel()
		if next > rev {
			retry = 0
		}
		rev = next
		switch why {
		case watchCompacted:
			if compactedTo <= rev {
				// Compacted up to a revision the feed had already applied:
				// nothing was missed. Watch on from the next one.
				rev++
				continue
			}
			// What the watch missed is gone: count everything as changed
			// and start over from the present.
			cur, err := s.currentRevision()
			if err != nil {
				return // closed
			}
			s.feed.compacted(cur)
			s.warn("etcd watch fell behind a compaction: every cached decision counts as changed", "compactedTo", compactedTo, "revision", cur)
			rev = cur
			continue
		case watchRestart:
			continue
		}
		if s.ctx.Err() != nil {
			return
		}
		retry++
		if !s.sleep(min(time.Duration(retry)*100*time.Millisecond, time.Second)) {
			return
		}
	}
}

// follow applies a watch's responses until it ends. It returns the
// revision up to which every event has been applied, why it ended, and
// for a compaction the revision compacted to.
func (s *Store) follow(ctx context.Context, wch clientv3.WatchChan, rev int64) (int64, int, int64) {
	for {
		var resp clientv3.WatchResponse
		select {
		case r, ok := <-wch:
			if !ok {
				return rev, watchEnded, 0
			}
			resp = r
		case <-s.restart:
			return rev, watchRestart, 0
		case r := <-s.rewatch:
			return r, watchRestart, 0 // a test's: watch again from r
		}
		switch {
		case resp.CompactRevision != 0:
			return rev, watchCompacted, resp.CompactRevision
		case resp.Canceled:
			s.warn("etcd watch cancelled; watching again", "reason", resp.CancelReason, "error", resp.Err())
			return rev, watchEnded, 0
		case resp.Created:
			s.watching.created(ctx)
			s.readyOnce.Do(func() { close(s.ready) })
		case resp.IsProgressNotify():
			rev = max(rev, resp.Header.Revision)
			s.reached(rev)
		default:
			s.feed.events(s, resp.Events)
			for _, ev := range resp.Events {
				rev = max(rev, ev.Kv.ModRevision)
			}
			s.reached(rev)
		}
	}
}

// confirmLoop confirms the feed every interval until the Store closes
// (see the top of this file): a linearizable read, and a progress request
// to the watch. It has a watch that confirmed nothing for half of
// MaxStale (at least two intervals), and is older than that, replaced.
func (s *Store) confirmLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	restartAfter := int64(max(s.feed.maxStale/2, 2*every))
	wasStale := false
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if stale := s.feed.stale(); stale != wasStale {
			wasStale = stale
			if stale {
				s.feed.noteStale()
				s.warn("etcd change feed is stale: no cached decision is reused until it is confirmed again", "maxStale", s.feed.maxStale)
			}
		}
		wctx, started := s.watching.get()
		now := s.feed.since()
		if now-s.feed.confirmed.Load() > restartAfter && now-started > restartAfter {
			select {
			case s.restart <- struct{}{}:
			default:
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, every)
		resp, err := s.cli.Get(ctx, s.meta(keyMetaSchema), clientv3.WithCountOnly())
		cancel()
		if err == nil && s.feed.expect(resp.Header.Revision, now) {
			s.warn("etcd change feed confirmed again: it is current", "revision", resp.Header.Revision)
		}
		if wctx != nil {
			// The context keeps the watch's metadata (its stream); the
			// timeout keeps a dead stream from blocking the ticker.
			rctx, cancel := context.WithTimeout(wctx, every)
			_ = s.cli.RequestProgress(rctx)
			cancel()
		}
	}
}

// reached records the watch's progress (see feed.reached).
func (s *Store) reached(rev int64) {
	if s.feed.reached(rev) {
		s.warn("etcd change feed confirmed again: it is current", "revision", rev)
	}
}

// currentRevision reads the cluster's revision, retrying until it can or
// the Store closes.
func (s *Store) currentRevision() (int64, error) {
	for retry := 1; ; retry++ {
		ctx, cancel := s.opCtx()
		resp, err := s.cli.Get(ctx, s.meta(keyMetaSchema), clientv3.WithCountOnly())
		cancel()
		if err == nil {
			return resp.Header.Revision, nil
		}
		if !s.sleep(min(time.Duration(retry)*100*time.Millisecond, time.Second)) {
			return 0, ErrClosed
		}
	}
}

// sleep waits d, or less if the Store closes (false).
func (s *Store) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}
