package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
)

// Transactions. etcd has no interactive transaction, so a write here is
// optimistic, as concurrency.NewSTM's serializable isolation is: the
// function reads what it needs (all at the revision of its first read,
// through txn's cache, which also shows it its own pending writes),
// buffers its writes, and commits them in one etcd Txn whose compares
// require every key it read to still have the mod revision it read (0 for
// a key that was absent). If another writer got there first the Txn does
// not apply, and the function runs again on fresh reads. So each write is
// serializable with every other, across instances, and of concurrent
// writers of one record exactly one wins each round.
//
// Not NewSTM itself: its function runs on a goroutine of its own (a
// panic there cannot be recovered by the caller), errors of its reads
// are panics, it retries without bound, and it cannot read several keys
// in one round trip or tell which keys it wrote. This one reads in
// batches (one Txn of gets), compares only what needs comparing
// (layout.go: the touched keys), bounds itself by the call's context,
// and hands the committed revision and written keys to the change feed
// before the call returns.

// errRetry makes update run the function again: a read hit a revision
// compacted meanwhile.
var errRetry = errors.New("etcd: retry the transaction")

// kv is one key as a transaction read it.
type kv struct {
	val     []byte
	mod     int64 // its ModRevision; 0 when absent
	present bool
	cmp     bool // compared at commit
}

// write is one buffered write of a transaction.
type write struct {
	val    []byte
	del    bool
	prefix bool // del: the whole range under the key
	lease  clientv3.LeaseID
}

// txn is one attempt of an optimistic transaction (see above).
type txn struct {
	s      *Store
	ctx    context.Context
	rev    int64 // the revision every read is made at; 0 before the first
	reads  map[string]*kv
	writes map[string]*write
	order  []string // of writes, for a deterministic Txn
}

func (s *Store) newTxn(ctx context.Context) *txn {
	return &txn{s: s, ctx: ctx, reads: map[string]*kv{}, writes: map[string]*write{}}
}

// revOpts reads at the transaction's revision once it has one.
func (tx *txn) revOpts(opts ...clientv3.OpOption) []clientv3.OpOption {
	if tx.rev != 0 {
		opts = append(opts, clientv3.WithRev(tx.rev))
	}
	return opts
}

// fetch reads the keys it has not read yet, at the transaction's
// revision, as few round trips as the operation cap allows (one, mostly).
// With cmp the keys are compared at commit (also those read before).
func (tx *txn) fetch(cmp bool, keys ...string) error {
	var need []string
	for _, k := range keys {
		if r, ok := tx.reads[k]; ok {
			r.cmp = r.cmp || cmp
			continue
		}
		tx.reads[k] = &kv{cmp: cmp}
		need = append(need, k)
	}
	for len(need) > 0 {
		chunk := need[:min(len(need), tx.s.maxOps)]
		need = need[len(chunk):]
		if len(chunk) == 1 {
			resp, err := tx.s.cli.Get(tx.ctx, chunk[0], tx.revOpts()...)
			if err != nil {
				return tx.s.readErr(err)
			}
			if tx.rev == 0 {
				tx.rev = resp.Header.Revision
			}
			tx.fill(chunk[0], resp.Kvs)
			continue
		}
		ops := make([]clientv3.Op, len(chunk))
		for i, k := range chunk {
			ops[i] = clientv3.OpGet(k, tx.revOpts()...)
		}
		resp, err := tx.s.cli.Txn(tx.ctx).Then(ops...).Commit()
		if err != nil {
			return tx.s.readErr(err)
		}
		if tx.rev == 0 {
			tx.rev = resp.Header.Revision
		}
		for i, r := range resp.Responses {
			tx.fill(chunk[i], r.GetResponseRange().GetKvs())
		}
	}
	return nil
}

func (tx *txn) fill(key string, kvs []*mvccpb.KeyValue) {
	r := tx.reads[key]
	if len(kvs) > 0 {
		r.val, r.mod, r.present = kvs[0].Value, kvs[0].ModRevision, true
	}
}

// get returns the key as the transaction sees it: its own pending write,
// or what it read (reading it now if needed). With cmp the commit
// requires it unchanged.
func (tx *txn) get(key string, cmp bool) ([]byte, bool, error) {
	if w, ok := tx.writes[key]; ok {
		return w.val, !w.del, nil
	}
	if err := tx.fetch(cmp, key); err != nil {
		return nil, false, err
	}
	r := tx.reads[key]
	return r.val, r.present, nil
}

// getJSON decodes the key into v; false when it is absent.
func (tx *txn) getJSON(key string, cmp bool, v any) (bool, error) {
	raw, ok, err := tx.get(key, cmp)
	if err != nil || !ok {
		return false, err
	}
	return true, decode(key, raw, v)
}

// scan reads every key under prefix at the transaction's revision. It
// does not see the transaction's own writes, and the keys are not
// compared: a transaction that must see the range unchanged compares the
// range's touched key (layout.go).
func (tx *txn) scan(prefix string, fn func(kv *mvccpb.KeyValue) error) error {
	rev, err := tx.s.scanAt(tx.ctx, prefix, tx.rev, fn)
	if err != nil {
		return err
	}
	if tx.rev == 0 {
		tx.rev = rev
	}
	return nil
}

func (tx *txn) record(key string, w *write) {
	if _, ok := tx.writes[key]; !ok {
		tx.order = append(tx.order, key)
	}
	tx.writes[key] = w
}

func (tx *txn) put(key string, val []byte) { tx.record(key, &write{val: val}) }

func (tx *txn) putLease(key string, val []byte, lease clientv3.LeaseID) {
	tx.record(key, &write{val: val, lease: lease})
}

func (tx *txn) putJSON(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tx.put(key, raw)
	return nil
}

func (tx *txn) del(key string) { tx.record(key, &write{del: true}) }

// touch rewrites a key whose mod revision others compare (layout.go).
func (tx *txn) touch(key string) { tx.put(key, nil) }

// commit applies the writes if every compared read is unchanged.
func (tx *txn) commit() (*clientv3.TxnResponse, error) {
	var cmps []clientv3.Cmp
	for k, r := range tx.reads {
		if r.cmp {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", r.mod))
		}
	}
	ops := make([]clientv3.Op, 0, len(tx.order))
	for _, k := range tx.order {
		w := tx.writes[k]
		switch {
		case w.del && w.prefix:
			ops = append(ops, clientv3.OpDelete(k, clientv3.WithPrefix()))
		case w.del:
			ops = append(ops, clientv3.OpDelete(k))
		case w.lease != 0:
			ops = append(ops, clientv3.OpPut(k, string(w.val), clientv3.WithLease(w.lease)))
		default:
			ops = append(ops, clientv3.OpPut(k, string(w.val)))
		}
	}
	if n := max(len(cmps), len(ops)); n > tx.s.maxOps {
		return nil, fmt.Errorf("store: etcd: %w: the operation needs %d operations in one transaction, more than the cluster's %d (max-txn-ops)", store.ErrInvalid, n, tx.s.maxOps)
	}
	return tx.s.cli.Txn(tx.ctx).If(cmps...).Then(ops...).Commit()
}

// update runs fn as one transaction until it commits or fails, and marks
// what it wrote in the change feed before it returns (read-your-writes).
// fn may run more than once; its error is returned as it is. A function
// that writes nothing commits nothing. It returns the revision of the
// commit (or of the reads).
func (s *Store) update(ctx context.Context, fn func(tx *txn) error) (int64, error) {
	for attempt := 0; ; attempt++ {
		if s.closed.Load() {
			return 0, ErrClosed
		}
		tx := s.newTxn(ctx)
		err := fn(tx)
		if errors.Is(err, errRetry) {
			if err := pause(ctx, attempt); err != nil {
				return 0, s.etcdErr(err)
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if len(tx.writes) == 0 {
			return tx.rev, nil
		}
		resp, err := tx.commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt < 3 {
			s.leases.forget() // a lease of the pool ran out: take a new one
			continue
		}
		if err != nil {
			return 0, s.etcdErr(err)
		}
		if !resp.Succeeded {
			if err := pause(ctx, attempt); err != nil {
				return 0, s.etcdErr(err)
			}
			continue
		}
		s.feed.committed(s, resp.Header.Revision, tx.order)
		return resp.Header.Revision, nil
	}
}

// view runs fn as a read-only transaction: every read at one revision.
func (s *Store) view(ctx context.Context, fn func(tx *txn) error) error {
	for attempt := 0; ; attempt++ {
		if s.closed.Load() {
			return ErrClosed
		}
		err := fn(s.newTxn(ctx))
		if !errors.Is(err, errRetry) {
			return err
		}
		if err := pause(ctx, attempt); err != nil {
			return s.etcdErr(err)
		}
	}
}

// pause waits a little, more after each failed round, before a
// transaction runs again, so that contending writers spread out.
func pause(ctx context.Context, attempt int) error {
	d := 100*time.Microsecond + time.Duration(rand.Int64N(int64(time.Millisecond<<min(attempt, 6))))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scanPage is how many keys one round trip of a scan reads.
const scanPage = 500

// scanAt reads every key under prefix at revision rev (0: the current
// one), in pages, each bounded by OpTimeout, and returns the revision it
// read at.
func (s *Store) scanAt(ctx context.Context, prefix string, rev int64, fn func(kv *mvccpb.KeyValue) error) (int64, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	from := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.cli.Get(pctx, from, opts...)
		cancel()
		if err != nil {
			return 0, s.readErr(err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(kv); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// readErr wraps a read's error; a read at a revision compacted meanwhile
// is retried.
func (s *Store) readErr(err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return errRetry
	}
	return s.etcdErr(err)
}

// etcdErr wraps an error of the cluster. Its text is etcd's or the
// context's: keys and values (digests, ids, never secrets) are not in it.
func (s *Store) etcdErr(err error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("store: etcd: %w", err)
}

// decode unmarshals a stored value; one that does not decode is
// ErrMalformed, naming the key (ids and digests only).
func decode(key string, raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s does not decode: %v", store.ErrMalformed, key, err)
	}
	return nil
}
