package store

import (
	"fmt"
	"testing"
)

// A mark moves only its own records' slots, and only for generations
// before it; no ID is never changed.
func TestChangeLog(t *testing.T) {
	l := NewChangeLog()
	if l.ChangedSince(0, "usr_a") {
		t.Error("a new change log says a record changed")
	}
	var other string
	for i := 0; other == ""; i++ {
		if id := fmt.Sprint("usr_", i); l.slot(id) != l.slot("usr_a") && l.slot(id) != l.slot("ses_b") {
			other = id
		}
	}
	l.Mark(5, "usr_a", "ses_b")
	for _, c := range []struct {
		gen  uint64
		id   string
		want bool
	}{
		{4, "usr_a", true}, {4, "ses_b", true}, {5, "usr_a", false}, {6, "usr_a", false},
		{4, other, false}, {4, "", false},
	} {
		if got := l.ChangedSince(c.gen, c.id); got != c.want {
			t.Errorf("ChangedSince(%d, %q) = %v, want %v", c.gen, c.id, got, c.want)
		}
	}
	l.Mark(9)
	if l.ChangedSince(5, "usr_a") {
		t.Error("a mark of no records moved one")
	}
}
