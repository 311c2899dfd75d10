package store

import (
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	id := NewID("usr_")
	if len(id) != 24 || !strings.HasPrefix(id, "usr_") {
		t.Fatalf("NewID = %q", id)
	}
	for _, c := range id[4:] {
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			t.Fatalf("NewID = %q: %q is not lowercase base32", id, c)
		}
	}
	if NewID("usr_") == id {
		t.Fatal("two IDs are equal")
	}
}
