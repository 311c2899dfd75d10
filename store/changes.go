package store

import (
	"hash/maphash"
	"sync/atomic"
)

// changeSlots is the size of the change log: 512 KiB of counters. Two
// records sharing a slot only make a decision about one of them be
// rebuilt when the other changes.
const changeSlots = 1 << 16

// ChangeLog remembers, for each slot, the Generation at which a record
// hashing to it was last written. It lets the request path keep a cached
// decision across writes that do not touch its records, without holding
// on to (or reading) the records themselves: a decision made at
// Generation g is still right if none of its records' slots moved past g.
// A backend feeds it (from its commits, or from a watch) and answers
// Store.ChangedSince from it.
//
// A backend marks a write's records before it moves its Generation: a
// reader that sees the new Generation therefore sees the marks too.
//
// It is one flat array of counters: no pointers for the garbage collector
// to follow, whatever the number of records.
type ChangeLog struct {
	seed  maphash.Seed
	slots [changeSlots]atomic.Uint64
}

// NewChangeLog returns an empty change log: nothing changed since any
// generation.
func NewChangeLog() *ChangeLog { return &ChangeLog{seed: maphash.MakeSeed()} }

// slot hashes a record's ID. The seed is random per process, so no one
// can pick IDs that collide on purpose (a collision, also between records
// of different kinds, would only cost rebuilds anyway).
func (l *ChangeLog) slot(id string) *atomic.Uint64 {
	return &l.slots[maphash.String(l.seed, id)%changeSlots]
}

// Mark records that the records with these IDs were written at generation
// gen. Slots only move forward as long as the caller serialises its
// writers and gen never goes back.
func (l *ChangeLog) Mark(gen uint64, ids ...string) {
	for _, id := range ids {
		l.slot(id).Store(gen)
	}
}

// ChangedSince reports whether the record with this ID may have been
// written after generation gen. An empty ID names no record.
func (l *ChangeLog) ChangedSince(gen uint64, id string) bool {
	return id != "" && l.slot(id).Load() > gen
}
