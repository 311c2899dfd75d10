package bbolt

import bolt "go.etcd.io/bbolt"

// bucket describes one bucket of the file: its name and what it maps to
// what. Every bucket is declared here and nowhere else; code reaches one
// only through its descriptor (of).
type bucket struct {
	name []byte
	// holds is the key → value layout, for readers of this file and of
	// Check's messages.
	holds string
}

// of returns the bucket in tx. Open creates every bucket of allBuckets
// before anything else runs, so it is never nil.
func (b bucket) of(tx *bolt.Tx) *bolt.Bucket { return tx.Bucket(b.name) }

// String is the bucket's name, as Check's messages name it.
func (b bucket) String() string { return string(b.name) }

// Index buckets map a lookup key to an ID (or hold "owner/ID" keys with
// empty values so a prefix scan lists the owner's records).
var (
	bucketMeta             = bucket{[]byte("meta"), "keySchemaVersion, keyHasLegacyKeys → their values"}
	bucketUsers            = bucket{[]byte("users"), "user ID → JSON store.User"}
	bucketUsersByName      = bucket{[]byte("users_by_name"), "store.LoginKey of the username → user ID"}
	bucketUsersByEmail     = bucket{[]byte("users_by_email"), "store.LoginKey of the email → user ID"}
	bucketKeys             = bucket{[]byte("keys"), "key ID → JSON store.APIKey"}
	bucketKeysByDigest     = bucket{[]byte("keys_by_digest"), "32-byte key digest → key ID"}
	bucketKeysByOwner      = bucket{[]byte("keys_by_owner"), `userID "/" keyID → empty`}
	bucketKeysLastUsed     = bucket{[]byte("keys_last_used"), "key ID → last use, 8-byte big-endian Unix nanoseconds"}
	bucketSessions         = bucket{[]byte("sessions"), "session ID → JSON store.Session"}
	bucketSessionsByUser   = bucket{[]byte("sessions_by_user"), `userID "/" sessionID → empty`}
	bucketSessionsLastSeen = bucket{[]byte("sessions_last_seen"), "session ID → last use, 8-byte big-endian Unix nanoseconds"}
	bucketRefresh          = bucket{[]byte("refresh"), "32-byte refresh digest → JSON refreshEntry"}
	bucketRefreshBySession = bucket{[]byte("refresh_by_session"), `sessionID "/" 32-byte digest → empty`}
	bucketSigningKeys      = bucket{[]byte("signing_keys"), "kid → JSON store.SigningKey"}
	bucketAttempts         = bucket{[]byte("attempts"), "16-byte store.AccountKey, 1-byte store.AttemptKind → JSON store.AttemptState"}

	allBuckets = []bucket{
		bucketMeta,
		bucketUsers, bucketUsersByName, bucketUsersByEmail,
		bucketKeys, bucketKeysByDigest, bucketKeysByOwner, bucketKeysLastUsed,
		bucketSessions, bucketSessionsByUser, bucketSessionsLastSeen, bucketRefresh, bucketRefreshBySession,
		bucketSigningKeys,
		bucketAttempts,
	}
)

// Keys of the meta bucket: the layout version as decimal, and a marker
// that legacy keys were imported.
var (
	keySchemaVersion = []byte("schema_version")
	keyHasLegacyKeys = []byte("has_legacy_keys")
)
