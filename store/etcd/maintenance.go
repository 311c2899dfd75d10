package etcd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authgate/authgate/store"
)

// BackupFormat names the JSON document Backup writes.
const BackupFormat = "authgate-etcd-backup/1"

// backupDoc is what Backup writes, and `caddy authgate backup` for an etcd
// store: one JSON object, the Export of one revision with the prefix and
// revision it was read at,
//
//	{"format": "authgate-etcd-backup/1", "prefix": "/authgate/", "revision": 1234,
//	 "users": [store.User...], "apiKeys": [store.APIKey...],
//	 "sessions": [store.Session...],
//	 "refresh": [{"digest": "<hex>", "sessionId": "...", "spent": true, "expiresAt": "..."}...],
//	 "signingKeys": [store.SigningKey...], "legacyKeys": true}
//
// that is a store.Snapshot with three more members: ReadBackup reads it
// back, and Import (of this or any backend) restores it. Users, keys and
// sessions are sorted by ID, refresh tokens by digest, signing keys by
// CreatedAt then KID; API keys carry the later of their record's LastUsed
// and TouchAPIKeys's, sessions the later of their LastSeen and
// TouchSessions's. The lockout's counters are not in it. It holds
// signing keys: keep it private.
type backupDoc struct {
	Format   string `json:"format"`
	Prefix   string `json:"prefix"`
	Revision int64  `json:"revision"`
	*store.Snapshot
}

// Backup writes the Export of one revision as JSON (backupDoc) to w and
// returns the bytes written. Reading at one revision blocks no writer.
func (s *Store) Backup(w io.Writer) (int64, error) {
	snap, rev, err := s.export()
	if err != nil {
		return 0, err
	}
	raw, err := json.Marshal(backupDoc{Format: BackupFormat, Prefix: s.prefix, Revision: rev, Snapshot: snap})
	if err != nil {
		return 0, err
	}
	n, err := w.Write(raw)
	return int64(n), err
}

// ReadBackup reads what Backup wrote, for Import.
func ReadBackup(r io.Reader) (*store.Snapshot, error) {
	var doc backupDoc
	doc.Snapshot = new(store.Snapshot)
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: etcd backup: %v", store.ErrMalformed, err)
	}
	if doc.Format != BackupFormat {
		return nil, fmt.Errorf("%w: not an etcd backup (format %q, want %q)", store.ErrMalformed, doc.Format, BackupFormat)
	}
	return doc.Snapshot, nil
}

// Export returns everything the store holds but the lockout's counters,
// read at one revision (one consistent read of the prefix, in pages).
func (s *Store) Export() (*store.Snapshot, error) {
	snap, _, err := s.export()
	return snap, err
}

func (s *Store) export() (*store.Snapshot, int64, error) {
	var snap *store.Snapshot
	var rev int64
	var used, seen map[string]time.Time
	err := s.view(s.ctx, func(tx *txn) error {
		snap = &store.Snapshot{}
		used, seen = map[string]time.Time{}, map[string]time.Time{}
		err := tx.scan(s.prefix, func(kv *mvccpb.KeyValue) error {
			key := string(kv.Key)
			kind, id := s.split(key)
			switch kind {
			case kindUsers:
				u := new(store.User)
				snap.Users = append(snap.Users, u)
				return decode(key, kv.Value, u)
			case kindKeys:
				k := new(store.APIKey)
				snap.APIKeys = append(snap.APIKeys, k)
				return decode(key, kv.Value, k)
			case kindKeysLastUsed:
				var lu lastUsed
				if err := decode(key, kv.Value, &lu); err != nil {
					return err
				}
				used[id] = lu.At
			case kindSessionsLastSeen:
				var ls lastUsed
				if err := decode(key, kv.Value, &ls); err != nil {
					return err
				}
				seen[id] = ls.At
			case kindSessions:
				sess := new(store.Session)
				snap.Sessions = append(snap.Sessions, sess)
				return decode(key, kv.Value, sess)
			case kindRefresh:
				var e refreshEntry
				if err := decode(key, kv.Value, &e); err != nil {
					return err
				}
				r := store.RefreshToken{SessionID: e.SID, Spent: e.Spent, ExpiresAt: e.Exp}
				if err := r.Digest.UnmarshalText([]byte(id)); err != nil {
					return fmt.Errorf("%w: %s: %v", store.ErrMalformed, key, err)
				}
				snap.Refresh = append(snap.Refresh, r)
			case kindSigningKeys:
				var k store.SigningKey
				if err := decode(key, kv.Value, &k); err != nil {
					return err
				}
				snap.SigningKeys = append(snap.SigningKeys, k)
			case keyMetaLegacyKeys:
				snap.LegacyKeys = true
			}
			return nil
		})
		rev = tx.rev
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	for _, k := range snap.APIKeys {
		if at, ok := used[k.ID]; ok && at.After(k.LastUsed) {
			k.LastUsed = at
		}
	}
	for _, sess := range snap.Sessions {
		if at, ok := seen[sess.ID]; ok && at.After(sess.LastSeen) {
			sess.LastSeen = at
		}
	}
	// Keys come in byte order: users, keys and sessions by ID, refresh
	// tokens by digest (hex keeps the order of the bytes).
	slices.SortFunc(snap.SigningKeys, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return snap, rev, nil
}

// split returns a key's kind (layout.go, with its '/') and the rest, or
// the whole name for a meta key.
func (s *Store) split(key string) (kind, id string) {
	name := strings.TrimPrefix(key, s.prefix)
	if strings.HasPrefix(name, "meta/") {
		return name, ""
	}
	i := strings.IndexByte(name, '/')
	if i < 0 {
		return name, ""
	}
	return name[:i+1], name[i+1:]
}

// Import stores a snapshot in an empty store (no user, key, session or
// refresh token under the prefix: else ErrExists), records as they are
// (ids, digests, hashes, timestamps, spent refresh tokens, LastUsed, the
// legacy flag), indexed as the creations index them; only V is set to this
// build's RecordVersion. A record the backend's own writes would refuse (a
// bad id, a missing digest or expiry, a login, digest or kid taken twice,
// an owner or session missing) fails it whole, before anything is written.
// snap is not modified.
//
// etcd caps a transaction's operations, so the records are written in
// transactions of at most MaxTxnOps, the first of which checks again that
// the prefix is empty. A failure midway (etcd lost) leaves a partial
// import, which a second Import refuses (ErrExists): delete the prefix
// (etcdctl del --prefix <prefix>) and import again.
func (s *Store) Import(snap *store.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("%w: no snapshot", store.ErrInvalid)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	puts, kids, err := s.importPlan(snap)
	if err != nil {
		return err
	}
	empty := []string{kindUsers, kindKeys, kindSessions, kindRefresh}
	// Checked first for a clear error; the first transaction checks again.
	ctx, cancel := s.opCtx()
	defer cancel()
	var ops []clientv3.Op
	for _, kind := range empty {
		ops = append(ops, clientv3.OpGet(s.key(kind, ""), clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	for _, kid := range kids {
		ops = append(ops, clientv3.OpGet(s.key(kindSigningKeys, kid), clientv3.WithCountOnly()))
	}
	for lo := 0; lo < len(ops); lo += s.maxOps {
		resp, err := s.cli.Txn(ctx).Then(ops[lo:min(len(ops), lo+s.maxOps)]...).Commit()
		if err != nil {
			return s.etcdErr(err)
		}
		for i, r := range resp.Responses {
			if r.GetResponseRange().GetCount() == 0 {
				continue
			}
			if lo+i < len(empty) {
				return fmt.Errorf("import into a store that holds records: %w", store.ErrExists)
			}
			return fmt.Errorf("signing key %q: %w", kids[lo+i-len(empty)], store.ErrExists)
		}
	}
	budget := s.maxOps - len(empty)
	for lo, first := 0, true; lo < len(puts); lo, first = lo+budget, false {
		part := puts[lo:min(len(puts), lo+budget)]
		var cmps []clientv3.Cmp
		if first {
			for _, kind := range empty {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.key(kind, "")), "=", 0).WithPrefix())
			}
		}
		ops := make([]clientv3.Op, len(part))
		keys := make([]string, len(part))
		for i, p := range part {
			ops[i], keys[i] = clientv3.OpPut(p.key, string(p.val)), p.key
			if strings.HasPrefix(p.key, s.key(kindSigningKeys, "")) {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(p.key), "=", 0))
			}
		}
		pctx, pcancel := context.WithTimeout(s.ctx, s.opTimeout)
		resp, err := s.cli.Txn(pctx).If(cmps...).Then(ops...).Commit()
		pcancel()
		if err != nil {
			return s.etcdErr(err)
		}
		if !resp.Succeeded {
			if first {
				return fmt.Errorf("import into a store that holds records: %w", store.ErrExists)
			}
			return fmt.Errorf("import: a signing key was stored meanwhile (partial import: delete the prefix and import again): %w", store.ErrExists)
		}
		s.feed.committed(s, resp.Header.Revision, keys)
	}
	if snap.LegacyKeys || slices.ContainsFunc(snap.APIKeys, func(k *store.APIKey) bool { return k != nil && k.Legacy }) {
		s.legacyKeys.Store(true)
	}
	return nil
}

// put is one write of an import.
type put struct {
	key string
	val []byte
}

// importPlan checks a snapshot as the creations would, and returns the
// writes that store it and the kids of its signing keys.
func (s *Store) importPlan(snap *store.Snapshot) ([]put, []string, error) {
	var puts []put
	add := func(key string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		puts = append(puts, put{key, raw})
		return nil
	}
	users := map[string]bool{}
	logins := map[string]string{}
	for _, u := range snap.Users {
		if u == nil {
			return nil, nil, fmt.Errorf("%w: nil user in snapshot", store.ErrInvalid)
		}
		if err := store.ValidateID("user id", u.ID); err != nil {
			return nil, nil, err
		}
		if u.Username == "" {
			return nil, nil, fmt.Errorf("%w: user %q without username", store.ErrInvalid, u.ID)
		}
		if users[u.ID] {
			return nil, nil, fmt.Errorf("user id %q: %w", u.ID, store.ErrExists)
		}
		users[u.ID] = true
		for _, l := range []string{u.Username, u.Email} {
			key := store.LoginKey(l)
			if key == "" {
				continue
			}
			if owner, ok := logins[key]; ok && owner != u.ID {
				return nil, nil, fmt.Errorf("login %q: %w", l, store.ErrExists)
			}
			logins[key] = u.ID
		}
		c := *u
		c.V = store.RecordVersion
		if err := add(s.key(kindUsers, c.ID), &c); err != nil {
			return nil, nil, err
		}
	}
	for _, key := range slices.Sorted(maps.Keys(logins)) {
		puts = append(puts, put{s.key(kindLogins, key), []byte(logins[key])})
	}

	keys := map[string]bool{}
	digests := map[store.Digest]bool{}
	byOwner := map[string]*idList{}
	legacy := snap.LegacyKeys
	for _, k := range snap.APIKeys {
		if k == nil {
			return nil, nil, fmt.Errorf("%w: nil api key in snapshot", store.ErrInvalid)
		}
		if err := store.ValidateID("key id", k.ID); err != nil {
			return nil, nil, err
		}
		if k.Digest == (store.Digest{}) {
			return nil, nil, fmt.Errorf("%w: api key %q without digest", store.ErrInvalid, k.ID)
		}
		if !users[k.OwnerID] {
			return nil, nil, fmt.Errorf("owner %q: %w", k.OwnerID, store.ErrNotFound)
		}
		if keys[k.ID] {
			return nil, nil, fmt.Errorf("key id %q: %w", k.ID, store.ErrExists)
		}
		if digests[k.Digest] {
			return nil, nil, fmt.Errorf("api key digest: %w", store.ErrExists)
		}
		keys[k.ID], digests[k.Digest] = true, true
		legacy = legacy || k.Legacy
		c := *k
		c.V = store.RecordVersion
		if err := add(s.key(kindKeys, c.ID), &c); err != nil {
			return nil, nil, err
		}
		puts = append(puts, put{s.key(kindKeysByDigest, c.Digest.String()), []byte(c.ID)})
		listOf(byOwner, c.OwnerID).add(c.ID)
	}
	if err := addLists(s, &puts, kindKeysByOwner, byOwner); err != nil {
		return nil, nil, err
	}
	if legacy {
		puts = append(puts, put{s.meta(keyMetaLegacyKeys), []byte("1")})
	}

	sessions := map[string]bool{}
	byUser := map[string]*idList{}
	for _, sess := range snap.Sessions {
		if sess == nil {
			return nil, nil, fmt.Errorf("%w: nil session in snapshot", store.ErrInvalid)
		}
		if err := store.ValidateID("session id", sess.ID); err != nil {
			return nil, nil, err
		}
		if sess.ExpiresAt.IsZero() {
			return nil, nil, fmt.Errorf("%w: session %q without expiry", store.ErrInvalid, sess.ID)
		}
		if !users[sess.UserID] {
			return nil, nil, fmt.Errorf("user %q: %w", sess.UserID, store.ErrNotFound)
		}
		if sessions[sess.ID] {
			return nil, nil, fmt.Errorf("session id %q: %w", sess.ID, store.ErrExists)
		}
		sessions[sess.ID] = true
		c := *sess
		c.V = store.RecordVersion
		if err := add(s.key(kindSessions, c.ID), &c); err != nil {
			return nil, nil, err
		}
		listOf(byUser, c.UserID).add(c.ID)
	}
	if err := addLists(s, &puts, kindSessionsByUser, byUser); err != nil {
		return nil, nil, err
	}

	refresh := map[store.Digest]bool{}
	families := map[string]*idList{}
	live := map[string][]string{} // unspent digests go last in a family
	for _, r := range snap.Refresh {
		if r.Digest == (store.Digest{}) {
			return nil, nil, fmt.Errorf("%w: refresh token without digest", store.ErrInvalid)
		}
		if !sessions[r.SessionID] {
			return nil, nil, fmt.Errorf("session %q of a refresh token: %w", r.SessionID, store.ErrNotFound)
		}
		if refresh[r.Digest] {
			return nil, nil, fmt.Errorf("refresh token digest: %w", store.ErrExists)
		}
		refresh[r.Digest] = true
		if err := add(s.key(kindRefresh, r.Digest.String()), refreshEntry{V: store.RecordVersion, SID: r.SessionID, Spent: r.Spent, Exp: r.ExpiresAt}); err != nil {
			return nil, nil, err
		}
		if r.Spent {
			l := listOf(families, r.SessionID)
			l.IDs = append(l.IDs, r.Digest.String())
		} else {
			live[r.SessionID] = append(live[r.SessionID], r.Digest.String())
		}
	}
	for sid, ds := range live {
		l := listOf(families, sid)
		l.IDs = append(l.IDs, ds...)
	}
	if err := addLists(s, &puts, kindRefreshBySession, families); err != nil {
		return nil, nil, err
	}

	var kids []string
	now := utcNow()
	for _, k := range snap.SigningKeys {
		c := k
		c.Private = slices.Clone(k.Private)
		if err := checkSigningKey(&c); err != nil {
			return nil, nil, err
		}
		if slices.Contains(kids, c.KID) {
			return nil, nil, fmt.Errorf("signing key %q: %w", c.KID, store.ErrExists)
		}
		kids = append(kids, c.KID)
		c.V = store.RecordVersion
		if c.CreatedAt.IsZero() {
			c.CreatedAt = now
		}
		if err := add(s.key(kindSigningKeys, c.KID), &c); err != nil {
			return nil, nil, err
		}
	}
	if len(kids) > 0 {
		puts = append(puts, put{s.meta(keyMetaSigningKeys), nil})
	}
	return puts, kids, nil
}

func listOf(m map[string]*idList, owner string) *idList {
	l := m[owner]
	if l == nil {
		l = &idList{V: store.RecordVersion}
		m[owner] = l
	}
	return l
}

func addLists(s *Store, puts *[]put, kind string, lists map[string]*idList) error {
	for _, owner := range slices.Sorted(maps.Keys(lists)) {
		raw, err := json.Marshal(lists[owner])
		if err != nil {
			return err
		}
		*puts = append(*puts, put{s.key(kind, owner), raw})
	}
	return nil
}

// Check verifies, at one revision, that every record decodes and every
// index and list entry resolves to the record it names (and every record
// has its entries), and counts the records. The first problem found is an
// error wrapping ErrMalformed.
func (s *Store) Check() (store.Counts, error) {
	var c store.Counts
	err := s.view(s.ctx, func(tx *txn) error {
		d := newDump()
		if err := tx.scan(s.prefix, func(kv *mvccpb.KeyValue) error { return d.add(s, kv) }); err != nil {
			if errors.Is(err, store.ErrMalformed) {
				return err
			}
			var m malformed
			if errors.As(err, &m) {
				return fmt.Errorf("%w: %v", store.ErrMalformed, err)
			}
			return err
		}
		var err error
		if c, err = d.check(); err != nil {
			return fmt.Errorf("%w: %v", store.ErrMalformed, err)
		}
		return nil
	})
	return c, err
}

// malformed is a problem of the data found while reading it.
type malformed string

func (m malformed) Error() string { return string(m) }

// dump is the whole prefix, decoded, for Check.
type dump struct {
	users      map[string]*store.User
	logins     map[string]string
	keys       map[string]*store.APIKey
	byDigest   map[string]string
	byOwner    map[string][]string
	lastUsed   map[string]bool
	lastSeen   map[string]bool
	sessions   map[string]*store.Session
	byUser     map[string][]string
	refresh    map[string]refreshEntry
	bySession  map[string][]string
	signing    int
	haveSchema bool
}

func newDump() *dump {
	return &dump{
		users: map[string]*store.User{}, logins: map[string]string{},
		keys: map[string]*store.APIKey{}, byDigest: map[string]string{}, byOwner: map[string][]string{}, lastUsed: map[string]bool{},
		sessions: map[string]*store.Session{}, byUser: map[string][]string{}, lastSeen: map[string]bool{},
		refresh: map[string]refreshEntry{}, bySession: map[string][]string{},
	}
}

func (d *dump) add(s *Store, kv *mvccpb.KeyValue) error {
	key := string(kv.Key)
	kind, id := s.split(key)
	dec := func(v any) error {
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return malformed(fmt.Sprintf("%s does not decode: %v", key, err))
		}
		return nil
	}
	var list idList
	switch kind {
	case kindUsers:
		u := new(store.User)
		if err := dec(u); err != nil {
			return err
		}
		if u.ID != id {
			return malformed(fmt.Sprintf("user %q does not decode to itself", id))
		}
		d.users[id] = u
	case kindLogins:
		d.logins[id] = string(kv.Value)
	case kindKeys:
		k := new(store.APIKey)
		if err := dec(k); err != nil {
			return err
		}
		if k.ID != id {
			return malformed(fmt.Sprintf("api key %q does not decode to itself", id))
		}
		d.keys[id] = k
	case kindKeysByDigest:
		d.byDigest[id] = string(kv.Value)
	case kindKeysByOwner, kindSessionsByUser, kindRefreshBySession:
		if err := dec(&list); err != nil {
			return err
		}
		switch kind {
		case kindKeysByOwner:
			d.byOwner[id] = list.IDs
		case kindSessionsByUser:
			d.byUser[id] = list.IDs
		default:
			d.bySession[id] = list.IDs
		}
	case kindKeysLastUsed:
		var lu lastUsed
		if err := dec(&lu); err != nil {
			return err
		}
		d.lastUsed[id] = true
	case kindSessionsLastSeen:
		var ls lastUsed
		if err := dec(&ls); err != nil {
			return err
		}
		d.lastSeen[id] = true
	case kindSessions:
		sess := new(store.Session)
		if err := dec(sess); err != nil {
			return err
		}
		if sess.ID != id {
			return malformed(fmt.Sprintf("session %q does not decode to itself", id))
		}
		d.sessions[id] = sess
	case kindSessionsTouched:
	case kindRefresh:
		var e refreshEntry
		if err := dec(&e); err != nil {
			return err
		}
		d.refresh[id] = e
	case kindSigningKeys:
		var k store.SigningKey
		if err := dec(&k); err != nil {
			return malformed("a signing key does not decode")
		}
		d.signing++
	case kindAttempts:
		var rec attemptRecord
		if err := dec(&rec); err != nil {
			return err
		}
		if _, err := attemptState(id, &rec); err != nil {
			return malformed(err.Error())
		}
	case keyMetaSchema:
		d.haveSchema = true
	case keyMetaLegacyKeys, keyMetaSigningKeys:
	default:
		return malformed(fmt.Sprintf("unknown key %q", key))
	}
	return nil
}

func (d *dump) check() (store.Counts, error) {
	var c store.Counts
	if !d.haveSchema {
		return c, errors.New("the schema version is missing")
	}
	for _, id := range slices.Sorted(maps.Keys(d.users)) {
		u := d.users[id]
		for _, key := range loginKeys(u) {
			if _, ok := d.logins[key]; !ok {
				return c, fmt.Errorf("a login of user %q is missing from the login index", id)
			}
		}
		c.Users++
	}
	for key, id := range d.logins {
		u, ok := d.users[id]
		if !ok {
			return c, fmt.Errorf("login entry names missing user %q", id)
		}
		if !slices.Contains(loginKeys(u), key) {
			return c, fmt.Errorf("a login entry names user %q, whose logins are not that", id)
		}
	}
	for id, k := range d.keys {
		if _, ok := d.users[k.OwnerID]; !ok {
			return c, fmt.Errorf("api key %q names missing owner %q", id, k.OwnerID)
		}
		if d.byDigest[k.Digest.String()] != id {
			return c, fmt.Errorf("api key %q is missing from the digest index", id)
		}
		if !slices.Contains(d.byOwner[k.OwnerID], id) {
			return c, fmt.Errorf("api key %q is missing from keys_by_owner", id)
		}
		c.APIKeys++
	}
	for _, id := range d.byDigest {
		if _, ok := d.keys[id]; !ok {
			return c, fmt.Errorf("digest index names missing api key %q", id)
		}
	}
	for id := range d.lastUsed {
		if _, ok := d.keys[id]; !ok {
			return c, fmt.Errorf("last-use times name missing api key %q", id)
		}
	}
	for id, sess := range d.sessions {
		if _, ok := d.users[sess.UserID]; !ok {
			return c, fmt.Errorf("session %q names missing user %q", id, sess.UserID)
		}
		if !slices.Contains(d.byUser[sess.UserID], id) {
			return c, fmt.Errorf("session %q is missing from sessions_by_user", id)
		}
		c.Sessions++
	}
	for id := range d.lastSeen {
		if _, ok := d.sessions[id]; !ok {
			return c, fmt.Errorf("last-seen times name missing session %q", id)
		}
	}
	for digest, e := range d.refresh {
		if _, ok := d.sessions[e.SID]; !ok {
			return c, fmt.Errorf("refresh entry names missing session %q", e.SID)
		}
		if !slices.Contains(d.bySession[e.SID], digest) {
			return c, fmt.Errorf("a refresh entry of session %q is missing from refresh_by_session", e.SID)
		}
	}
	for _, l := range []struct {
		name    string
		lists   map[string][]string
		present func(id string) bool
	}{
		{"keys_by_owner", d.byOwner, func(id string) bool { _, ok := d.keys[id]; return ok }},
		{"sessions_by_user", d.byUser, func(id string) bool { _, ok := d.sessions[id]; return ok }},
		{"refresh_by_session", d.bySession, func(id string) bool { _, ok := d.refresh[id]; return ok }},
	} {
		for owner, ids := range l.lists {
			for _, id := range ids {
				if !l.present(id) {
					return c, fmt.Errorf("%s entry for %q names a missing record", l.name, owner)
				}
			}
		}
	}
	c.SigningKeys = d.signing
	return c, nil
}
