package secret

import (
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"

	"github.com/authgate/authgate/store"
)

// fuzzPrefixes are the secret types ParseSecret is asked about; which
// selects one (modulo the length).
var fuzzPrefixes = []string{KeyPrefix, ClientSecretPrefix, RefreshPrefix}

// FuzzParseSecret: ParseSecret never panics, refuses with ErrMalformed
// without quoting the input, and whatever it accepts round-trips: it has
// the prefix and the length of a secret, its digest is DigestOf(s), and its
// checksum is right by an independent computation (hash/crc32 and
// math/big, not the parser's own code).
func FuzzParseSecret(f *testing.F) {
	// Fresh secrets and their mutations; fixed ones are checked in, in
	// testdata/fuzz/FuzzParseSecret.
	for i, prefix := range fuzzPrefixes {
		s, err := NewSecret(prefix)
		if err != nil {
			f.Fatal(err)
		}
		for _, seed := range secretSeeds(i, s) {
			f.Add(uint8(i), seed)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, s string) {
		prefix := fuzzPrefixes[int(which)%len(fuzzPrefixes)]
		d, err := ParseSecret(prefix, s)
		if err != nil {
			if !errors.Is(err, store.ErrMalformed) {
				t.Fatalf("refusal %q does not wrap ErrMalformed", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("refusal %q quotes the secret", err)
			}
			return
		}
		if d != store.DigestOf(s) {
			t.Fatalf("digest of an accepted secret is not DigestOf(s)")
		}
		if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+bodyLen+checksumLen {
			t.Fatalf("accepted %q: want prefix %q and length %d", s, prefix, len(prefix)+bodyLen+checksumLen)
		}
		sum := new(big.Int)
		for i := len(prefix); i < len(s); i++ {
			d := strings.IndexByte(base62Alphabet, s[i])
			if d < 0 {
				t.Fatalf("accepted %q with a non-base62 character %q", s, s[i])
			}
			if i >= len(s)-checksumLen {
				sum.Mul(sum, big.NewInt(62)).Add(sum, big.NewInt(int64(d)))
			}
		}
		if want := crc32.ChecksumIEEE([]byte(s[:len(s)-checksumLen])); !sum.IsUint64() || sum.Uint64() != uint64(want) {
			t.Fatalf("accepted %q with checksum %v, want %d", s, sum, want)
		}
	})
}

// secretSeeds are a well-formed secret s of fuzzPrefixes[i] and mutations
// of it: truncated, padded, case-changed, NUL-ended, another type's prefix,
// white space, a multi-byte character, empty, the bare prefix.
func secretSeeds(i int, s string) []string {
	prefix := fuzzPrefixes[i]
	other := fuzzPrefixes[(i+1)%len(fuzzPrefixes)]
	return []string{
		s, s[:len(s)-1], s + "0", strings.ToUpper(s), s[:len(s)-1] + "\x00",
		other + s[len(prefix):], " " + s, s[:10] + "é" + s[12:], "", prefix,
	}
}
