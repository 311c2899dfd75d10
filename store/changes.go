package store

import (
	"hash/maphash"
	"sync/atomic"
)

// changeSlots is the size of the change log: 512 KiB of counters. Two
// records sharing a slot only make a decision about one of them be
// rebuilt when the other changes.
const changeSlots = 1 << 16

// changeLog remembers, for each slot, the Generation at which a record
// hashing to it was last written. It lets the request path keep a cached
// decision across writes that do not touch its records, without holding
// on to (or reading) the records themselves: a decision made at
// Generation g is still right if none of its records' slots moved past g.
//
// Writes mark their records' slots before moving the Generation (see
// caches.invalidate). A reader that sees the new Generation therefore
// sees the marks too.
//
// It is one flat array of counters: no pointers for the garbage collector
// to follow, whatever the number of records.
type changeLog struct {
	seed  maphash.Seed
	slots [changeSlots]atomic.Uint64
}

func newChangeLog() *changeLog { return &changeLog{seed: maphash.MakeSeed()} }

// slot hashes a record's ID. The seed is random per process, so no one
// can pick IDs that collide on purpose (a collision, also between records
// of different kinds, would only cost rebuilds anyway).
func (l *changeLog) slot(id string) *atomic.Uint64 {
	return &l.slots[maphash.String(l.seed, id)%changeSlots]
}

// mark records that the records of inv were written at generation gen.
// Slots only move forward: writers are serialised by caches.mu.
func (l *changeLog) mark(inv *invalidation, gen uint64) {
	for _, ids := range [][]string{inv.users, inv.sessions, inv.keys} {
		for _, id := range ids {
			l.slot(id).Store(gen)
		}
	}
}

// changedSince reports whether the record with this ID may have been
// written after generation gen. An empty ID names no record.
func (l *changeLog) changedSince(gen uint64, id string) bool {
	return id != "" && l.slot(id).Load() > gen
}

// ChangedSince reports whether the user, session or API key with these IDs
// may have been written after Generation gen ("" names none). False means
// they certainly were not: a decision made from them at gen still holds.
// True may also mean that another record sharing a slot was written.
func (s *Store) ChangedSince(gen uint64, userID, sessionID, keyID string) bool {
	l := s.cache.changes
	return l.changedSince(gen, userID) || l.changedSince(gen, sessionID) || l.changedSince(gen, keyID)
}
