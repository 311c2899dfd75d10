package secret

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/authgate/authgate/store"
)

func TestSecretRoundTrip(t *testing.T) {
	for _, prefix := range []string{KeyPrefix, ClientSecretPrefix, RefreshPrefix} {
		s, err := NewSecret(prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != len(prefix)+49 || !strings.HasPrefix(s, prefix) {
			t.Fatalf("secret %q: wrong shape", s)
		}
		d, err := ParseSecret(prefix, s)
		if err != nil || d != store.DigestOf(s) {
			t.Fatalf("ParseSecret(%q) = %v, %v", s, d, err)
		}
		if other, _ := NewSecret(prefix); other == s {
			t.Fatal("two secrets are equal")
		}
	}
}

// A body made of small numbers still has full width: padding is part of
// the format, not an accident of big random numbers.
func TestSecretFixedWidth(t *testing.T) {
	s := appendBase62(nil, bigZero(), bodyLen)
	if string(s) != strings.Repeat("0", bodyLen) {
		t.Fatalf("zero body = %q", s)
	}
}

func TestParseSecretRefusesGarbage(t *testing.T) {
	good, err := NewSecret(KeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	lowered := []byte(good)
	changed := false
	for i := len(KeyPrefix); i < len(lowered); i++ {
		if 'A' <= lowered[i] && lowered[i] <= 'Z' {
			lowered[i] += 'a' - 'A'
			changed = true
			break
		}
	}
	cases := map[string]string{
		"empty":            "",
		"prefix only":      KeyPrefix,
		"wrong prefix":     "xx_" + good[3:],
		"other type":       strings.Replace(good, KeyPrefix, RefreshPrefix, 1),
		"truncated":        good[:len(good)-1],
		"padded":           good + "0",
		"space padded":     " " + good,
		"flipped in body":  flip(good, 10),
		"flipped checksum": flip(good, len(good)-1),
		"bad character":    good[:10] + "-" + good[11:],
		"non-ascii":        good[:10] + "é" + good[12:],
	}
	if changed {
		cases["lowercased"] = string(lowered)
	}
	for name, s := range cases {
		if _, err := ParseSecret(KeyPrefix, s); !errors.Is(err, store.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		} else if len(s) > 8 && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error contains the secret", name)
		}
	}
	// Every single-character change anywhere is caught (CRC32 catches any
	// error burst shorter than 32 bits).
	for i := len(KeyPrefix); i < len(good); i++ {
		if _, err := ParseSecret(KeyPrefix, flip(good, i)); err == nil {
			t.Fatalf("change at %d passed the checksum", i)
		}
	}
}

func TestMask(t *testing.T) {
	key, _ := NewSecret(KeyPrefix)
	m := Mask(key)
	if m != key[:7]+"…"+key[len(key)-4:] {
		t.Errorf("Mask(key) = %q", m)
	}
	cs, _ := NewSecret(ClientSecretPrefix)
	if m := Mask(cs); !strings.HasPrefix(m, cs[:9]+"…") {
		t.Errorf("Mask(client secret) = %q", m)
	}
	if m := Mask("ag_short"); m != "ag_…" {
		t.Errorf("Mask(short) = %q", m)
	}
	legacy := "0123456789abcdef0123456789abcdef"
	if m := Mask(legacy); m != "0123…cdef" {
		t.Errorf("Mask(legacy) = %q", m)
	}
}

func bigZero() *big.Int { return new(big.Int) }

func BenchmarkParseSecret(b *testing.B) {
	secret, _ := NewSecret(KeyPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSecret(KeyPrefix, secret); err != nil {
			b.Fatal(err)
		}
	}
}
