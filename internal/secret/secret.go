// Package secret holds the formats of what authgate hands out and hashes:
// API keys, client secrets and refresh tokens with their checksums and
// masks (this file), record IDs (id.go), and the password and PIN hashes
// with the bound on concurrent hashing (password.go). Nothing here stores
// anything, and no error ever contains a secret.
package secret

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"math/big"

	"github.com/authgate/authgate/store"
)

// Secrets handed to clients (API keys, client secrets, refresh tokens) look
// like
//
//	ag_<43 base62 characters of 32 random bytes><6 base62 characters of CRC32>
//
// The type prefix tells a leaked secret's kind at a glance (and to secret
// scanners); the checksum, over prefix and body, lets the request path refuse
// typos and garbage without a store read. Only the SHA-256 digest of the
// whole string is stored.
const (
	KeyPrefix          = "ag_"   // API key
	ClientSecretPrefix = "agcs_" // client secret of an API key (quick_login)
	RefreshPrefix      = "agr_"  // refresh token
	SessionPrefix      = "ags_"  // browser session cookie
)

const (
	base62Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	secretBytes    = 32
	bodyLen        = 43 // base62 digits of 2^256 - 1
	checksumLen    = 6  // base62 digits of 2^32 - 1
)

// NewSecret returns a fresh random secret with prefix.
func NewSecret(prefix string) (string, error) {
	var raw [secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("new secret: reading random bytes: %w", err)
	}
	s := make([]byte, 0, len(prefix)+bodyLen+checksumLen)
	s = append(s, prefix...)
	s = appendBase62(s, new(big.Int).SetBytes(raw[:]), bodyLen)
	s = appendBase62(s, big.NewInt(int64(crc32.ChecksumIEEE(s))), checksumLen)
	return string(s), nil
}

// ParseSecret checks that s is a well-formed secret of the given type (prefix,
// length, alphabet, checksum) and returns its digest. A bad one is
// store.ErrMalformed; nothing is looked up. The error never contains s.
func ParseSecret(prefix, s string) (store.Digest, error) {
	if len(s) != len(prefix)+bodyLen+checksumLen || s[:len(prefix)] != prefix {
		return store.Digest{}, fmt.Errorf("secret: %w", store.ErrMalformed)
	}
	signed := s[:len(s)-checksumLen]
	var sum uint64
	for i := len(prefix); i < len(s); i++ {
		d := base62Value(s[i])
		if d < 0 {
			return store.Digest{}, fmt.Errorf("secret: %w", store.ErrMalformed)
		}
		if i >= len(signed) {
			sum = sum*62 + uint64(d)
		}
	}
	if sum != uint64(crc32String(signed)) {
		return store.Digest{}, fmt.Errorf("secret: %w", store.ErrMalformed)
	}
	return store.DigestOf(s), nil
}

// Mask returns a form of secret safe to show and store as a hint: the
// prefix and 4 more characters, "…", and the last 4. Short secrets show only
// their prefix, so a hint never gives away most of a secret.
func Mask(secret string) string {
	prefix := ""
	for _, p := range []string{ClientSecretPrefix, RefreshPrefix, SessionPrefix, KeyPrefix} {
		if len(secret) >= len(p) && secret[:len(p)] == p {
			prefix = p
			break
		}
	}
	for i := 0; i < len(secret); i++ {
		if secret[i] >= 0x80 { // a hint is ASCII; cut no rune in half
			return prefix + "…"
		}
	}
	// Keep at least 16 characters hidden.
	if len(secret) < len(prefix)+4+4+16 {
		return prefix + "…"
	}
	return secret[:len(prefix)+4] + "…" + secret[len(secret)-4:]
}

// appendBase62 appends n in base62, left-padded with '0' to width.
func appendBase62(dst []byte, n *big.Int, width int) []byte {
	var digits [bodyLen]byte
	i := len(digits)
	base, rem := big.NewInt(62), new(big.Int)
	for n.Sign() > 0 {
		n.QuoRem(n, base, rem)
		i--
		digits[i] = base62Alphabet[rem.Int64()]
	}
	for len(digits)-i < width {
		i--
		digits[i] = '0'
	}
	return append(dst, digits[i:]...)
}

// base62Value returns the value of a base62 digit, or -1.
func base62Value(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 36
	}
	return -1
}

// crc32String is crc32.ChecksumIEEE of a string without converting it to a
// []byte (ParseSecret runs on every API-key request).
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}
