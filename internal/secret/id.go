package secret

import (
	"crypto/rand"
	"encoding/base32"
)

// idEncoding is lowercase base32: IDs are case-insensitive-safe and
// readable.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 20 random lowercase base32 characters
// (100 bits).
func NewID(prefix string) string {
	var raw [13]byte  // 104 bits, encodes to 21 characters
	rand.Read(raw[:]) // never fails (crypto/rand, Go 1.24+)
	return prefix + idEncoding.EncodeToString(raw[:])[:20]
}
