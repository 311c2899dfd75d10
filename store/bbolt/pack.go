package bbolt

import (
	"strings"

	"github.com/authgate/authgate/store"
)

// Users kept in the cache have their text packed into one allocation.
// A full cache holds 100,000s of records, and the garbage collector visits
// every object on each cycle: one string for all of a record's fields
// instead of one per field makes that walk several times shorter.

// packStrings makes the strings behind ps share one backing array.
func packStrings(ps ...*string) {
	n := 0
	for _, p := range ps {
		n += len(*p)
	}
	if n == 0 {
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range ps {
		b.WriteString(*p)
	}
	all, off := b.String(), 0
	for _, p := range ps {
		end := off + len(*p)
		*p = all[off:end]
		off = end
	}
}

// packUser packs the fields the request path reads and the roles; the rest
// of a user (profile fields, settings) is left as decoded.
func packUser(u *store.User) {
	ps := []*string{&u.ID, &u.Username, &u.Email, &u.PasswordHash, &u.PINHash}
	for i := range u.Roles {
		ps = append(ps, &u.Roles[i])
	}
	packStrings(ps...)
}
