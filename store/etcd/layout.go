package etcd

// The key layout. Every key lives under Options.Prefix (default
// "/authgate/"); this file declares them all, as store/bbolt/buckets.go
// declares its buckets. Values are versioned JSON (store.RecordVersion in
// their "v" member) unless noted; keys that stand for a secret hold its
// SHA-256 digest in hex, never the secret.
//
//	users/<user id>                 JSON store.User
//	logins/<store.LoginKey>         user id (plain): one namespace for usernames and emails
//	keys/<key id>                   JSON store.APIKey
//	keys_by_digest/<hex digest>     key id (plain)
//	keys_by_owner/<user id>         JSON idList: the owner's key ids
//	keys_last_used/<key id>         JSON lastUsed (TouchAPIKeys; not a change: see feed.go)
//	sessions/<session id>           JSON store.Session
//	sessions_by_user/<user id>      JSON idList: the user's session ids
//	sessions_last_seen/<session id> JSON lastUsed (TouchSessions; not a change, as keys_last_used)
//	sessions_touched/<user id>      empty; rewritten by every write of one of the user's
//	                                sessions or refresh tokens (see below)
//	refresh/<hex digest>            JSON refreshEntry (session id, spent, expiry)
//	refresh_by_session/<session id> JSON idList: the session's refresh digests, oldest first
//	signing_keys/<kid>              JSON store.SigningKey
//	meta/schema                     layout version, decimal (plain)
//	meta/legacy_keys                "1" (plain) once a legacy key was stored
//	meta/signing_keys               empty; rewritten by every signing-key write
//	attempts/<hex account>/<kind>   JSON attemptRecord, on a lease that ends after it matters
//
// Transactions (txn.go) are optimistic: they read at one revision and
// commit only if every key they read still has the mod revision it had.
// etcd's transactions cannot compare a whole range, and they are capped
// in operations (--max-txn-ops, 128 by default), so what a transaction
// must see whole is kept in single keys it can read and compare: the id
// lists, and two "touched" keys. A transaction that reads all of a
// user's sessions (the session limit, RevokeUserSessions, DeleteUser)
// compares sessions_touched/<user id> instead of every session record
// and refresh list: every write of one of them rewrites that key, so
// none can change unseen. EnsureSigningKey and a rotation read every
// signing key and compare meta/signing_keys the same way.

// schemaVersion is the layout this build writes (meta/schema).
const schemaVersion = 1

// The key kinds, each the first path segment under the prefix.
const (
	kindUsers            = "users/"
	kindLogins           = "logins/"
	kindKeys             = "keys/"
	kindKeysByDigest     = "keys_by_digest/"
	kindKeysByOwner      = "keys_by_owner/"
	kindKeysLastUsed     = "keys_last_used/"
	kindSessions         = "sessions/"
	kindSessionsByUser   = "sessions_by_user/"
	kindSessionsLastSeen = "sessions_last_seen/"
	kindSessionsTouched  = "sessions_touched/"
	kindRefresh          = "refresh/"
	kindRefreshBySession = "refresh_by_session/"
	kindSigningKeys      = "signing_keys/"
	kindAttempts         = "attempts/"

	keyMetaSchema      = "meta/schema"
	keyMetaLegacyKeys  = "meta/legacy_keys"
	keyMetaSigningKeys = "meta/signing_keys"
)

// key returns the full key of a record: the prefix, its kind and its id.
func (s *Store) key(kind, id string) string { return s.prefix + kind + id }

// meta returns the full key of one of the meta keys.
func (s *Store) meta(name string) string { return s.prefix + name }

// change is what a written key means to the change feed.
type change uint8

const (
	changeNone    change = iota
	changeUser           // users/<id>
	changeSession        // sessions/<id>
	changeKey            // keys/<id>
	changeSigning        // signing_keys/<kid>, meta/signing_keys
	changeLegacy         // meta/legacy_keys
)

// classify tells what a key (with the prefix) means to the change feed,
// and the record id when it names one. keys_last_used,
// sessions_last_seen, the indexes, the lists and the lockout are no
// change: nothing is decided by them ("sessions_last_seen/" is not
// "sessions/": its keys fall through to changeNone).
func (s *Store) classify(key string) (change, string) {
	if len(key) < len(s.prefix) || key[:len(s.prefix)] != s.prefix {
		return changeNone, ""
	}
	rest := key[len(s.prefix):]
	for _, k := range [...]struct {
		kind string
		c    change
	}{{kindUsers, changeUser}, {kindSessions, changeSession}, {kindKeys, changeKey}, {kindSigningKeys, changeSigning}} {
		if len(rest) > len(k.kind) && rest[:len(k.kind)] == k.kind {
			return k.c, rest[len(k.kind):]
		}
	}
	switch rest {
	case keyMetaSigningKeys:
		return changeSigning, ""
	case keyMetaLegacyKeys:
		return changeLegacy, ""
	}
	return changeNone, ""
}
