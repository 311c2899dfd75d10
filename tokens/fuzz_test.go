package tokens

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
)

// The fuzz issuer's keys are fixed, so the seed corpus in
// testdata/fuzz/FuzzVerify holds tokens that really verify (and mutations
// of them): the fuzzer starts next to the accepting path, not only in the
// refusals.
var (
	fuzzT0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fuzzNow = fuzzT0.Add(time.Minute)
)

const (
	fuzzIss = "https://auth.example"
	fuzzAud = "legacy"
)

// fuzzKeys are an active EdDSA key and retired ES256 and HS256 keys, all
// derived from fixed bytes.
func fuzzKeys(tb testing.TB) []store.SigningKey {
	tb.Helper()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	edDER, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		tb.Fatal(err)
	}
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{9}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	esDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		tb.Fatal(err)
	}
	return []store.SigningKey{
		{V: 1, KID: "fz-ed", Alg: AlgEdDSA, Private: edDER, CreatedAt: fuzzT0},
		{V: 1, KID: "fz-es", Alg: AlgES256, Private: esDER, CreatedAt: fuzzT0.Add(-time.Hour), RetiredAt: fuzzT0},
		{V: 1, KID: "fz-hs", Alg: AlgHS256, Private: bytes.Repeat([]byte{5}, 32), CreatedAt: fuzzT0.Add(-2 * time.Hour), RetiredAt: fuzzT0},
	}
}

func fuzzClaims() map[string]any {
	return map[string]any{
		"iss": fuzzIss, "aud": fuzzAud, "sub": "u1", "sid": "s1", "jti": "fuzz",
		"iat": fuzzT0.Unix(), "nbf": fuzzT0.Unix(), "exp": fuzzT0.Add(15 * time.Minute).Unix(),
		"name": "alice", "roles": []string{"admin"}, "ep": 0,
	}
}

// FuzzVerify: Verify never panics, every refusal wraps ErrInvalid without
// quoting the token, and it accepts only what one of the issuer's own keys
// signed, with that key's algorithm. The last is checked by an independent
// oracle (the crypto primitives directly, no JWT library) and by the
// encoding: an accepted token is canonical base64url in every segment, so
// it is byte for byte a token we could have issued.
func FuzzVerify(f *testing.F) {
	keys := fuzzKeys(f)
	v, err := New(Config{Issuer: fuzzIss, Audience: fuzzAud, AccessTTL: 15 * time.Minute}, keys)
	if err != nil {
		f.Fatal(err)
	}
	parsedKeys := map[string]*key{}
	for _, sk := range keys {
		parsedKeys[sk.KID] = parsed(f, sk)
	}

	// Seeds: verifySeeds (also checked in, in testdata/fuzz/FuzzVerify),
	// and tokens from Issue (their jti is random).
	for _, s := range verifySeeds(f) {
		f.Add(s)
	}
	for _, sk := range keys {
		sk.RetiredAt = time.Time{}
		signer, err := New(Config{Issuer: fuzzIss, Audience: fuzzAud, AccessTTL: 15 * time.Minute}, []store.SigningKey{sk})
		if err != nil {
			f.Fatal(err)
		}
		tok, _, err := signer.Issue(Claims{UserID: "u1", SessionID: "s1", Username: "alice", Permissions: 1}, fuzzT0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}

	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, fuzzNow)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal %q does not wrap ErrInvalid", err)
			}
			if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
				t.Fatalf("refusal %q quotes the token", err)
			}
			return
		}
		if c == nil || c.UserID == "" || c.SessionID == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted with incomplete claims %+v", c)
		}
		if !fuzzOracle(parsedKeys, tok) {
			t.Fatalf("accepted a token none of our keys signed with its algorithm: %q", tok)
		}
	})
}

// verifySeeds are the checked-in seeds of FuzzVerify: a token hand-signed
// by each key, and the classic forgeries and malformations built from one.
func verifySeeds(tb testing.TB) []string {
	keys := map[string]*key{}
	for _, sk := range fuzzKeys(tb) {
		keys[sk.KID] = parsed(tb, sk)
	}
	ed := keys["fz-ed"]
	good := signAs(tb, ed, fuzzClaims())
	h, p, s := splitJWT(tb, good)
	pub := ed.verify.(ed25519.PublicKey)
	edSign := func(hdr, claims map[string]any) string { return handSign(tb, ed.method, ed.sign, hdr, claims) }
	return []string{
		good,
		signAs(tb, keys["fz-es"], fuzzClaims()),
		signAs(tb, keys["fz-hs"], fuzzClaims()),
		h + "." + p + ".",
		h + "." + p,
		b64json(tb, map[string]any{"alg": "none", "kid": "fz-ed"}) + "." + p + ".",
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed", "crit": []string{"exp"}}, fuzzClaims()),
		hmacToken(tb, []byte(pub), map[string]any{"alg": "HS256", "kid": "fz-ed"}, fuzzClaims()),
		hmacToken(tb, []byte(pub), map[string]any{"alg": "HS256", "kid": "fz-hs"}, fuzzClaims()),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed", "KID": "fz-hs", "Alg": "HS256"}, fuzzClaims()),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed", "jku": "https://evil.example/jwks", "jwk": map[string]string{"kty": "OKP"}}, fuzzClaims()),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed"}, with(fuzzClaims(), "exp", "9999999999")),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed"}, with(fuzzClaims(), "aud", []string{"other", fuzzAud})),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed"}, with(fuzzClaims(), "iss", "https://evil.example")),
		edSign(map[string]any{"alg": "EdDSA", "kid": "fz-ed"}, without(fuzzClaims(), "exp")),
		edSign(map[string]any{"alg": "EdDSA", "kid": "../fz-ed"}, fuzzClaims()),
		h + "." + p + "." + s + ".",
		h + "=." + p + "." + s,
		strings.Repeat(".", 100),
		"",
		strings.Repeat("A", MaxTokenSize+1),
	}
}

// fuzzOracle checks independently of the JWT library that tok is three
// canonical base64url segments whose signature one of our keys made, with
// that key's algorithm, named by the header's kid.
func fuzzOracle(keys map[string]*key, tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	var raw [3][]byte
	for i, seg := range parts {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
			return false
		}
		raw[i] = b
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw[0], &hdr) != nil {
		return false
	}
	k := keys[hdr.Kid]
	if k == nil || k.alg != hdr.Alg {
		return false
	}
	in, sig := []byte(parts[0]+"."+parts[1]), raw[2]
	switch pub := k.verify.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(pub, in, sig)
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256(in)
		return ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case []byte:
		m := hmac.New(sha256.New, pub)
		m.Write(in)
		return hmac.Equal(m.Sum(nil), sig)
	}
	return false
}

func hmacToken(tb testing.TB, secret []byte, hdr, claims map[string]any) string {
	tb.Helper()
	in := b64json(tb, hdr) + "." + b64json(tb, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
