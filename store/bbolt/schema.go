package bbolt

import (
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/store"
)

// migrations[i] upgrades a file from schema version i to i+1; all pending
// ones run in the same transaction as the version stamp, so a crash leaves
// the file either fully old or fully new. The buckets of allBuckets are
// created before them on every open, so a migration only moves data.
// Append here, never reorder or remove.
var migrations = []func(tx *bolt.Tx) error{
	0: func(*bolt.Tx) error { return nil }, // 0 → 1: a new file, buckets only
	1: reindexLogins,                       // 1 → 2: login keys by PRECIS, not strings.ToLower (store.LoginKey)
	2: func(*bolt.Tx) error { return nil }, // 2 → 3: the attempts bucket (created with allBuckets), empty
}

// schemaVersion is the layout this build writes.
var schemaVersion = uint64(len(migrations))

// prepareSchema refuses a file written by a newer build, creates missing
// buckets, runs pending migrations and stamps the version, in one
// transaction.
func prepareSchema(tx *bolt.Tx) error {
	var have uint64
	if meta := bucketMeta.of(tx); meta != nil {
		if v := meta.Get(keySchemaVersion); v != nil {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return fmt.Errorf("schema_version %q: %w", v, store.ErrMalformed)
			}
			have = n
		}
	}
	if have > schemaVersion {
		return fmt.Errorf("%w: file has schema version %d, this build knows up to %d",
			store.ErrSchemaTooNew, have, schemaVersion)
	}
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b.name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", b, err)
		}
	}
	for v := have; v < schemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrating schema %d to %d: %w", v, v+1, err)
		}
	}
	if have == schemaVersion {
		return nil
	}
	return bucketMeta.of(tx).Put(keySchemaVersion, []byte(strconv.FormatUint(schemaVersion, 10)))
}

// reindexLogins rebuilds the login indexes under store.LoginKey from the
// users bucket (schema 1 → 2: keys were strings.ToLower before). It never
// fails on a user: one that does not decode is left to Check to report,
// and when two users now share a key the first by id keeps it and the
// other goes unindexed for that login (it is still found by id).
func reindexLogins(tx *bolt.Tx) error {
	for _, b := range []bucket{bucketUsersByName, bucketUsersByEmail} {
		if err := tx.DeleteBucket(b.name); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(b.name); err != nil {
			return err
		}
	}
	byName, byEmail := bucketUsersByName.of(tx), bucketUsersByEmail.of(tx)
	return bucketUsers.of(tx).ForEach(func(id, v []byte) error {
		var u store.User
		if decode(v, &u) != nil {
			return nil
		}
		for _, l := range []struct {
			index *bolt.Bucket
			login string
		}{{byName, u.Username}, {byEmail, u.Email}} {
			key := []byte(store.LoginKey(l.login))
			if len(key) == 0 || loginTaken(tx, key, string(id)) {
				continue
			}
			if err := l.index.Put(key, id); err != nil {
				return err
			}
		}
		return nil
	})
}
