package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/store"
)

var (
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	algs = []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}
)

const ttl = 15 * time.Minute

// Keys are expensive to make (RSA), so tests share them by name.
var (
	keyMu    sync.Mutex
	keyCache = map[string]store.SigningKey{}
)

func testKey(tb testing.TB, name, alg string) store.SigningKey {
	tb.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[name]; ok {
		return k
	}
	k, err := GenerateKey(alg, t0)
	if err != nil {
		tb.Fatal(err)
	}
	keyCache[name] = k
	return k
}

func newIssuer(tb testing.TB, cfg Config, keys ...store.SigningKey) *Issuer {
	tb.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = "https://auth.example"
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = ttl
	}
	i, err := New(cfg, keys)
	if err != nil {
		tb.Fatal(err)
	}
	return i
}

func parsed(tb testing.TB, sk store.SigningKey) *key {
	tb.Helper()
	k, err := parseKey(sk)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func b64json(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// handSign builds a token with exactly the given header and claims, signed
// by method with signKey.
func handSign(tb testing.TB, method jwt.SigningMethod, signKey any, hdr, claims map[string]any) string {
	tb.Helper()
	s := b64json(tb, hdr) + "." + b64json(tb, claims)
	sig, err := method.Sign(s, signKey)
	if err != nil {
		tb.Fatal(err)
	}
	return s + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// signAs hand-signs with one of our parsed keys, kid and alg set to it.
func signAs(tb testing.TB, k *key, claims map[string]any) string {
	tb.Helper()
	return handSign(tb, k.method, k.sign, map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}, claims)
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://auth.example",
		"sub": "u1",
		"sid": "s1",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": "j1",
	}
}

func without(m map[string]any, drop ...string) map[string]any {
	m2 := map[string]any{}
	for k, v := range m {
		if !slices.Contains(drop, k) {
			m2[k] = v
		}
	}
	return m2
}

func with(m map[string]any, k string, v any) map[string]any {
	m2 := without(m)
	m2[k] = v
	return m2
}

// refused asserts that Verify fails with ErrInvalid and every one of want.
func refused(tb testing.TB, i *Issuer, token string, now time.Time, want ...error) {
	tb.Helper()
	c, err := i.Verify(token, now)
	if err == nil {
		tb.Fatalf("token accepted: %+v", c)
	}
	if c != nil {
		tb.Errorf("claims returned with error %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		tb.Errorf("error %v does not wrap ErrInvalid", err)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			tb.Errorf("error %q, want %q", err, w)
		}
	}
	checkNoLeak(tb, err, token)
}

// checkNoLeak asserts that an error message quotes no part of the token.
func checkNoLeak(tb testing.TB, err error, token string) {
	tb.Helper()
	msg := err.Error()
	for _, part := range strings.Split(token, ".") {
		for n := 0; n+12 <= len(part) && n < 4096; n += 12 {
			if strings.Contains(msg, part[n:n+12]) {
				tb.Fatalf("error %q quotes the token", msg)
			}
		}
	}
}

func splitJWT(tb testing.TB, token string) (h, p, s string) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			sk := testKey(t, alg, alg)
			i := newIssuer(t, Config{Audience: "legacy"}, sk)
			if i.Alg() != alg || i.SignerKID() != sk.KID {
				t.Fatalf("Alg/SignerKID = %s/%s, want %s/%s", i.Alg(), i.SignerKID(), alg, sk.KID)
			}
			now := t0.Add(1500 * time.Millisecond)
			in := Claims{
				UserID: "u-42", Username: "alice", Roles: []string{"admin", "ops"},
				SessionID: "sess-1", Epoch: 7, Permissions: store.PermRead | store.PermCreate,
				ID: "ignored", IssuedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Hour),
			}
			tok, exp, err := i.Issue(in, now)
			if err != nil {
				t.Fatal(err)
			}
			wantExp := now.Add(ttl).Truncate(time.Second)
			if !exp.Equal(wantExp) {
				t.Errorf("exp = %v, want %v", exp, wantExp)
			}
			h, p, _ := splitJWT(t, tok)
			var hdr, pay map[string]any
			for seg, v := range map[string]*map[string]any{h: &hdr, p: &pay} {
				b, err := base64.RawURLEncoding.DecodeString(seg)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, v); err != nil {
					t.Fatal(err)
				}
			}
			if hdr["alg"] != alg || hdr["kid"] != sk.KID {
				t.Errorf("header = %v", hdr)
			}
			for _, claim := range []string{"iss", "aud", "sub", "name", "roles", "sid", "ep", "perm", "iat", "nbf", "exp", "jti"} {
				if _, ok := pay[claim]; !ok {
					t.Errorf("payload lacks %q: %v", claim, pay)
				}
			}
			if pay["iat"] != pay["nbf"] {
				t.Errorf("nbf %v != iat %v", pay["nbf"], pay["iat"])
			}

			got, err := i.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			want.ID = got.ID
			want.IssuedAt = now.Truncate(time.Second)
			want.ExpiresAt = wantExp
			if got.ID == "" || got.ID == "ignored" || len(got.ID) < 16 {
				t.Errorf("jti = %q", got.ID)
			}
			if got.UserID != want.UserID || got.Username != want.Username || !slices.Equal(got.Roles, want.Roles) ||
				got.SessionID != want.SessionID || got.Epoch != want.Epoch || got.Permissions != want.Permissions ||
				!got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("claims = %+v\nwant     %+v", *got, want)
			}

			// jti is fresh each time.
			tok2, _, _ := i.Issue(in, now)
			got2, err := i.Verify(tok2, now)
			if err != nil || got2.ID == got.ID {
				t.Errorf("second token: err %v, jti %q vs %q", err, got2.ID, got.ID)
			}
		})
	}
}

func TestIssueMinimalClaims(t *testing.T) {
	i := newIssuer(t, Config{}, testKey(t, AlgEdDSA, AlgEdDSA))
	tok, _, err := i.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := i.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Permissions != 0 || c.Epoch != 0 || c.Roles != nil || c.Username != "" {
		t.Errorf("claims = %+v", c)
	}
	_, p, _ := splitJWT(t, tok)
	b, _ := base64.RawURLEncoding.DecodeString(p)
	if strings.Contains(string(b), `"aud"`) {
		t.Errorf("aud issued without an audience configured: %s", b)
	}
}

func TestIssueRequiresSubjectAndSession(t *testing.T) {
	i := newIssuer(t, Config{}, testKey(t, AlgEdDSA, AlgEdDSA))
	for _, c := range []Claims{{SessionID: "s"}, {UserID: "u"}} {
		if tok, _, err := i.Issue(c, t0); err == nil {
			t.Errorf("Issue(%+v) = %q, want error", c, tok)
		}
	}
}

func TestTamperedPayload(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			i := newIssuer(t, Config{}, testKey(t, alg, alg))
			tok, _, err := i.Issue(Claims{UserID: "u1", SessionID: "s1", Permissions: store.PermRead}, t0)
			if err != nil {
				t.Fatal(err)
			}
			h, p, s := splitJWT(t, tok)
			b, _ := base64.RawURLEncoding.DecodeString(p)
			var m map[string]any
			json.Unmarshal(b, &m)
			m["sub"] = "admin"
			m["perm"] = 15
			refused(t, i, h+"."+b64json(t, m)+"."+s, t0, jwt.ErrTokenSignatureInvalid)
		})
	}
}

func TestTamperedSignature(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			i := newIssuer(t, Config{}, testKey(t, alg, alg))
			tok, _, err := i.Issue(Claims{UserID: "u1", SessionID: "s1"}, t0)
			if err != nil {
				t.Fatal(err)
			}
			h, p, s := splitJWT(t, tok)
			sig, _ := base64.RawURLEncoding.DecodeString(s)
			for _, pos := range []int{0, len(sig) / 2, len(sig) - 1} {
				bad := slices.Clone(sig)
				bad[pos] ^= 0x01
				refused(t, i, h+"."+p+"."+base64.RawURLEncoding.EncodeToString(bad), t0, jwt.ErrTokenSignatureInvalid)
			}
			refused(t, i, h+"."+p+".", t0)              // empty signature
			refused(t, i, h+"."+p+"."+s[:len(s)-4], t0) // truncated
			refused(t, i, h+"."+p+"."+s+"AAAA", t0)     // extended
		})
	}
}

// A signature whose base64 has non-zero padding bits decodes, leniently, to
// the same bytes; strict decoding refuses the alternative spelling so one
// signature has one token.
func TestNonCanonicalSignatureEncoding(t *testing.T) {
	i := newIssuer(t, Config{}, testKey(t, AlgEdDSA, AlgEdDSA))
	tok, _, _ := i.Issue(Claims{UserID: "u1", SessionID: "s1"}, t0)
	h, p, s := splitJWT(t, tok) // 64-byte signature: 86 chars, 4 padding bits
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	alt := s[:len(s)-1] + string(alphabet[last^1])
	a, _ := base64.RawURLEncoding.DecodeString(s)
	b, _ := base64.RawURLEncoding.DecodeString(alt)
	if string(a) != string(b) {
		t.Fatal("test setup: alternative spelling decodes differently")
	}
	refused(t, i, h+"."+p+"."+alt, t0, jwt.ErrTokenMalformed)
}

func TestAlgNone(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	i := newIssuer(t, Config{}, sk)
	pay := b64json(t, goodClaims(t0))
	for _, alg := range []string{"none", "None", "NONE", ""} {
		hdr := b64json(t, map[string]any{"alg": alg, "kid": sk.KID, "typ": "JWT"})
		refused(t, i, hdr+"."+pay+".", t0, errAlg)
		// Even with a signature segment present.
		refused(t, i, hdr+"."+pay+".c2ln", t0, errAlg)
	}
	hdr := b64json(t, map[string]any{"kid": sk.KID}) // no alg at all
	refused(t, i, hdr+"."+pay+".", t0, errAlg)
}

// HS256 "signed" with our public key as the HMAC secret (the classic
// algorithm-confusion attack) must be refused for every public key form.
func TestHS256WithPublicKeyAsSecret(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			sk := testKey(t, alg, alg)
			k := parsed(t, sk)
			i := newIssuer(t, Config{}, sk)
			der, err := x509.MarshalPKIXPublicKey(k.verify)
			if err != nil {
				t.Fatal(err)
			}
			secrets := map[string][]byte{
				"pkix-der": der,
				"pem":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			}
			switch pub := k.verify.(type) {
			case ed25519.PublicKey:
				secrets["raw"] = pub
			case *ecdsa.PublicKey:
				raw, _ := pub.Bytes()
				secrets["raw"] = raw
			case *rsa.PublicKey:
				secrets["raw"] = x509.MarshalPKCS1PublicKey(pub)
			}
			// Also the JWKS text itself.
			secrets["jwks"] = i.JWKS()
			for name, secret := range secrets {
				t.Run(name, func(t *testing.T) {
					tok := handSign(t, jwt.SigningMethodHS256, secret,
						map[string]any{"alg": "HS256", "kid": sk.KID, "typ": "JWT"}, goodClaims(t0))
					refused(t, i, tok, t0, errAlg)

					// Header spelled so that a case-insensitive reader sees
					// our alg while the library's map sees HS256: the
					// library-side check must still refuse it.
					tok = handSign(t, jwt.SigningMethodHS256, secret,
						map[string]any{"alg": "HS256", "ALG": alg, "kid": sk.KID}, goodClaims(t0))
					refused(t, i, tok, t0)
				})
			}
		})
	}
}

// A header with two spellings of "alg" must not make our reading and the
// library's reading differ.
func TestHeaderCaseConfusion(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	pub := []byte(k.verify.(ed25519.PublicKey))
	// encoding/json into a struct: last case-insensitive match wins → "EdDSA".
	// map[string]any (the library): "alg" → "HS256".
	hdr := b64json(t, map[string]any{"kid": sk.KID, "alg": "HS256"})
	hdr = strings.TrimSuffix(mustDecode(t, hdr), "}") + `,"ALG":"EdDSA"}`
	h := base64.RawURLEncoding.EncodeToString([]byte(hdr))
	s := h + "." + b64json(t, goodClaims(t0))
	sig, _ := jwt.SigningMethodHS256.Sign(s, pub)
	tok := s + "." + base64.RawURLEncoding.EncodeToString(sig)
	// Our reading passes the pin; the library's reading (HS256) must be
	// refused by WithValidMethods / the keyfunc check.
	var ours header
	json.Unmarshal([]byte(hdr), &ours)
	if ours.Alg != AlgEdDSA {
		t.Fatalf("test setup: struct reading of alg is %q", ours.Alg)
	}
	refused(t, i, tok, t0, jwt.ErrTokenSignatureInvalid)

	// Same trick on kid: "kid" names key A for the library, "KID" names key
	// B for us; the two readings must agree or the token is refused.
	skB := testKey(t, "EdDSA-b", AlgEdDSA)
	skB.CreatedAt = t0.Add(-time.Hour)
	kb := parsed(t, skB)
	i2 := newIssuer(t, Config{}, sk, skB)
	hdr = fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"KID":%q}`, sk.KID, skB.KID)
	s = base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + b64json(t, goodClaims(t0))
	sig, _ = kb.method.Sign(s, kb.sign)
	refused(t, i2, s+"."+base64.RawURLEncoding.EncodeToString(sig), t0, errKID)
}

// The keyfunc refuses whatever the library parsed if it disagrees with the
// key on alg or kid; it is the second lock behind WithValidMethods.
func TestKeyFuncChecksLibraryReading(t *testing.T) {
	k := parsed(t, testKey(t, AlgEdDSA, AlgEdDSA))
	for _, tc := range []struct {
		method jwt.SigningMethod
		kid    any
		want   error
	}{
		{jwt.SigningMethodHS256, k.kid, errAlg},
		{jwt.SigningMethodES256, k.kid, errAlg},
		{nil, k.kid, errAlg},
		{jwt.SigningMethodEdDSA, "other", errKID},
		{jwt.SigningMethodEdDSA, nil, errKID},
	} {
		got, err := k.keyFunc(&jwt.Token{Method: tc.method, Header: map[string]any{"kid": tc.kid}})
		if got != nil || !errors.Is(err, tc.want) {
			t.Errorf("keyFunc(%v, %v) = %v, %v; want %v", tc.method, tc.kid, got, err, tc.want)
		}
	}
	if got, err := k.keyFunc(&jwt.Token{Method: jwt.SigningMethodEdDSA, Header: map[string]any{"kid": k.kid}}); err != nil || got == nil {
		t.Errorf("keyFunc for our own reading = %v, %v", got, err)
	}
}

func mustDecode(tb testing.TB, s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Switching the header alg between our own asymmetric algorithms, or
// presenting one key's token under another key's kid, is refused.
func TestAlgSwap(t *testing.T) {
	es := testKey(t, AlgES256, AlgES256)
	rs := testKey(t, AlgRS256, AlgRS256)
	rs.CreatedAt = t0.Add(time.Second) // signer
	ik := parsed(t, es)
	rk := parsed(t, rs)
	i := newIssuer(t, Config{}, es, rs)

	// RS256 token, claiming the ES256 key.
	refused(t, i, handSign(t, rk.method, rk.sign, map[string]any{"alg": "RS256", "kid": es.KID}, goodClaims(t0)), t0, errAlg)
	// ES256 token, claiming the RS256 key.
	refused(t, i, handSign(t, ik.method, ik.sign, map[string]any{"alg": "ES256", "kid": rs.KID}, goodClaims(t0)), t0, errAlg)
	// Header alg rewritten on a genuine token.
	tok, _, err := i.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, p, s := splitJWT(t, tok)
	for _, alg := range []string{"ES256", "RS384", "RS512", "PS256", "HS256", "HS512", "ES384", "EdDSA"} {
		refused(t, i, b64json(t, map[string]any{"alg": alg, "kid": rs.KID})+"."+p+"."+s, t0, errAlg)
	}
	// A valid-looking alg the library supports but we never configured,
	// signed properly with a matching key type.
	rsa512 := handSign(t, jwt.SigningMethodRS512, rk.sign, map[string]any{"alg": "RS512", "kid": rs.KID}, goodClaims(t0))
	refused(t, i, rsa512, t0, errAlg)
	ps256 := handSign(t, jwt.SigningMethodPS256, rk.sign, map[string]any{"alg": "PS256", "kid": rs.KID}, goodClaims(t0))
	refused(t, i, ps256, t0, errAlg)
}

func TestOtherKeySameKID(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			ours := testKey(t, alg, alg)
			theirs := parsed(t, testKey(t, alg+"-attacker", alg))
			i := newIssuer(t, Config{}, ours)
			refused(t, i, handSign(t, theirs.method, theirs.sign,
				map[string]any{"alg": alg, "kid": ours.KID, "typ": "JWT"}, goodClaims(t0)), t0, jwt.ErrTokenSignatureInvalid)
		})
	}
}

func TestKID(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	// Control: a correct hand-signed token verifies.
	if _, err := i.Verify(signAs(t, k, goodClaims(t0)), t0); err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string]map[string]any{
		"unknown":      {"alg": "EdDSA", "kid": "not-our-key"},
		"missing":      {"alg": "EdDSA"},
		"empty":        {"alg": "EdDSA", "kid": ""},
		"not a string": {"alg": "EdDSA", "kid": 1},
		"path":         {"alg": "EdDSA", "kid": "../../" + sk.KID},
		"prefix":       {"alg": "EdDSA", "kid": sk.KID + "x"},
	} {
		t.Run(name, func(t *testing.T) {
			want := []error{errKID}
			if name == "not a string" {
				want = []error{errHeader}
			}
			refused(t, i, handSign(t, k.method, k.sign, hdr, goodClaims(t0)), t0, want...)
		})
	}
}

func TestIssuerClaim(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	a := newIssuer(t, Config{Issuer: "https://a.example"}, sk)
	b := newIssuer(t, Config{Issuer: "https://b.example"}, sk)
	tok, _, _ := b.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
	refused(t, a, tok, t0, jwt.ErrTokenInvalidIssuer)
	refused(t, a, signAs(t, k, without(goodClaims(t0), "iss")), t0)
	refused(t, a, signAs(t, k, with(goodClaims(t0), "iss", "https://A.example")), t0, jwt.ErrTokenInvalidIssuer)
}

func TestAudience(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	a := newIssuer(t, Config{Audience: "a"}, sk)
	b := newIssuer(t, Config{Audience: "b"}, sk)
	none := newIssuer(t, Config{}, sk)
	tokA, _, _ := a.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
	tokB, _, _ := b.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
	tokNone, _, _ := none.Issue(Claims{UserID: "u", SessionID: "s"}, t0)

	if _, err := a.Verify(tokA, t0); err != nil {
		t.Fatal(err)
	}
	refused(t, a, tokB, t0, jwt.ErrTokenInvalidAudience)
	refused(t, a, tokNone, t0, jwt.ErrTokenRequiredClaimMissing) // aud configured: required
	refused(t, a, signAs(t, k, with(goodClaims(t0), "aud", []string{"x", "y"})), t0, jwt.ErrTokenInvalidAudience)
	if _, err := a.Verify(signAs(t, k, with(goodClaims(t0), "aud", []string{"x", "a"})), t0); err != nil {
		t.Errorf("aud list containing ours: %v", err)
	}
	if _, err := a.Verify(signAs(t, k, with(goodClaims(t0), "aud", "a")), t0); err != nil {
		t.Errorf("aud as a single string: %v", err)
	}
	// No audience configured: aud is ignored whatever it says.
	for _, tok := range []string{tokA, tokB, tokNone} {
		if _, err := none.Verify(tok, t0); err != nil {
			t.Errorf("audience not configured: %v", err)
		}
	}
}

func TestExpiry(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	for _, tc := range []struct {
		leeway, effective time.Duration
	}{
		{0, DefaultLeeway},
		{10 * time.Second, 10 * time.Second},
		{time.Minute, time.Minute},
		{10 * time.Minute, MaxLeeway}, // clamped
	} {
		t.Run(tc.leeway.String(), func(t *testing.T) {
			i := newIssuer(t, Config{Leeway: tc.leeway}, sk)
			if i.leeway != tc.effective {
				t.Fatalf("leeway = %s, want %s", i.leeway, tc.effective)
			}
			tok, exp, _ := i.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
			if _, err := i.Verify(tok, exp.Add(-time.Second)); err != nil {
				t.Errorf("before exp: %v", err)
			}
			if _, err := i.Verify(tok, exp.Add(tc.effective-time.Second)); err != nil {
				t.Errorf("expired within leeway: %v", err)
			}
			refused(t, i, tok, exp.Add(tc.effective+time.Second), jwt.ErrTokenExpired)
			refused(t, i, tok, exp.Add(24*time.Hour), jwt.ErrTokenExpired)

			// nbf and iat in the future, beyond and within the leeway.
			ahead := t0.Add(tc.effective + 5*time.Second)
			refused(t, i, signAs(t, k, with(goodClaims(t0), "nbf", ahead.Unix())), t0, jwt.ErrTokenNotValidYet)
			refused(t, i, signAs(t, k, with(without(goodClaims(t0), "nbf"), "iat", ahead.Unix())), t0, jwt.ErrTokenUsedBeforeIssued)
			near := t0.Add(tc.effective - 5*time.Second)
			if _, err := i.Verify(signAs(t, k, with(with(goodClaims(t0), "nbf", near.Unix()), "iat", near.Unix())), t0); err != nil {
				t.Errorf("nbf/iat within leeway: %v", err)
			}
		})
	}
}

func TestIssuedTokenNotYetValid(t *testing.T) {
	i := newIssuer(t, Config{}, testKey(t, AlgEdDSA, AlgEdDSA))
	tok, _, _ := i.Issue(Claims{UserID: "u", SessionID: "s"}, t0.Add(time.Hour))
	refused(t, i, tok, t0) // iat and nbf an hour ahead of the verifier's clock
}

func TestRequiredClaims(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	refused(t, i, signAs(t, k, without(goodClaims(t0), "exp")), t0, jwt.ErrTokenRequiredClaimMissing)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "exp", nil)), t0, jwt.ErrTokenRequiredClaimMissing)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "exp", "tomorrow")), t0)
	refused(t, i, signAs(t, k, without(goodClaims(t0), "sub")), t0, errNoSubject)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "sub", "")), t0, errNoSubject)
	refused(t, i, signAs(t, k, without(goodClaims(t0), "sid")), t0, errNoSession)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "sid", "")), t0, errNoSession)
	// Types the claims struct cannot hold.
	refused(t, i, signAs(t, k, with(goodClaims(t0), "perm", 300)), t0, jwt.ErrTokenMalformed)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "perm", -1)), t0, jwt.ErrTokenMalformed)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "sub", 42)), t0, jwt.ErrTokenMalformed)
	refused(t, i, signAs(t, k, with(goodClaims(t0), "ep", "1")), t0, jwt.ErrTokenMalformed)
}

// Oversized and many-dotted tokens are refused by the shape checks, before
// any decoding: no allocation and no measurable time.
func TestShapeChecksBeforeParse(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	good := signAs(t, k, goodClaims(t0))
	h, p, s := splitJWT(t, good)

	// Correctly signed, but too big: the size limit alone refuses it.
	bigRoles := make([]string, 1000)
	for n := range bigRoles {
		bigRoles[n] = fmt.Sprintf("role-%04d", n)
	}
	bigSigned := signAs(t, k, with(goodClaims(t0), "roles", bigRoles))
	if len(bigSigned) <= MaxTokenSize {
		t.Fatalf("test setup: token is only %d bytes", len(bigSigned))
	}
	// Correctly signed, modest size, but a huge header.
	bigHeader := handSign(t, k.method, k.sign, map[string]any{"alg": k.alg, "kid": k.kid, "pad": strings.Repeat("x", 2000)}, goodClaims(t0))
	if len(bigHeader) > MaxTokenSize {
		t.Fatalf("test setup: token is %d bytes", len(bigHeader))
	}

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"10000 dots", strings.Repeat(".", 10000), errTooLong},
		{"10000 dots in a token", h + strings.Repeat(".", 10000) + p + "." + s, errTooLong},
		{"4000 dots (under the size limit)", h + "." + p + strings.Repeat(".", 4000) + s, errShape},
		{"one extra dot", good + ".", errShape},
		{"one dot", h + "." + p, errShape},
		{"no dot", h, errShape},
		{"empty", "", errShape},
		{"100 KB", h + "." + strings.Repeat("A", 100<<10) + "." + s, errTooLong},
		{"signed but oversized", bigSigned, errTooLong},
		{"signed with a huge header", bigHeader, errHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, i, tc.token, t0, tc.want)
			allocs := testing.AllocsPerRun(100, func() { i.Verify(tc.token, t0) })
			if allocs != 0 {
				t.Errorf("%v allocations per refused token, want 0 (refused before parsing)", allocs)
			}
			start := time.Now()
			for range 1000 {
				i.Verify(tc.token, t0)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("1000 refusals took %s", d)
			}
		})
	}
}

func TestMalformedHeader(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	i := newIssuer(t, Config{}, sk)
	pay := b64json(t, goodClaims(t0))
	for name, hdr := range map[string]string{
		"not base64": "!!!!",
		"padded":     base64.URLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"` + sk.KID + `"}`)),
		"std base64": base64.StdEncoding.EncodeToString([]byte(`{"alg":"EdDSA","kid":"` + sk.KID + `"}?>?>`)),
		"not json":   base64.RawURLEncoding.EncodeToString([]byte("alg=EdDSA")),
		"array":      base64.RawURLEncoding.EncodeToString([]byte(`["EdDSA"]`)),
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, i, hdr+"."+pay+".c2ln", t0, errHeader)
		})
	}
}

func TestCritHeaderRefused(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	tok := handSign(t, k.method, k.sign, map[string]any{"alg": k.alg, "kid": k.kid, "crit": []string{"b64"}, "b64": false}, goodClaims(t0))
	refused(t, i, tok, t0, errCrit)
}

// An attacker embeds their own public key in the header (jwk) and signs
// with it; the key must never be used.
func TestEmbeddedJWKIgnored(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	i := newIssuer(t, Config{}, sk)
	pub, priv, _ := ed25519.GenerateKey(nil)
	attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub), "kid": "attacker"}
	for name, tc := range map[string]struct {
		hdr  map[string]any
		want error
	}{
		"kid ours":    {map[string]any{"alg": "EdDSA", "kid": sk.KID, "jwk": attackerJWK}, jwt.ErrTokenSignatureInvalid},
		"no kid":      {map[string]any{"alg": "EdDSA", "jwk": attackerJWK}, errKID},
		"kid of jwk":  {map[string]any{"alg": "EdDSA", "kid": "attacker", "jwk": attackerJWK}, errKID},
		"x5c and x5u": {map[string]any{"alg": "EdDSA", "kid": sk.KID, "x5u": "https://attacker.example/cert.pem", "x5c": []string{"MIIB"}}, jwt.ErrTokenSignatureInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			refused(t, i, handSign(t, jwt.SigningMethodEdDSA, priv, tc.hdr, goodClaims(t0)), t0, tc.want)
		})
	}
}

// jku and x5u are never fetched: a genuine token carrying them verifies
// (they are simply ignored), an attacker's token carrying them does not,
// and the URLs are never requested.
func TestJKUIgnored(t *testing.T) {
	sk := testKey(t, AlgEdDSA, AlgEdDSA)
	k := parsed(t, sk)
	i := newIssuer(t, Config{}, sk)
	pub, priv, _ := ed25519.GenerateKey(nil)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":%q,"alg":"EdDSA","x":%q}]}`,
			sk.KID, base64.RawURLEncoding.EncodeToString(pub))
	}))
	defer srv.Close()

	hdr := map[string]any{"alg": "EdDSA", "kid": sk.KID, "jku": srv.URL + "/jwks.json", "x5u": srv.URL + "/cert.pem"}
	if _, err := i.Verify(handSign(t, k.method, k.sign, hdr, goodClaims(t0)), t0); err != nil {
		t.Errorf("genuine token with jku: %v", err)
	}
	refused(t, i, handSign(t, jwt.SigningMethodEdDSA, priv, hdr, goodClaims(t0)), t0, jwt.ErrTokenSignatureInvalid)
	if n := hits.Load(); n != 0 {
		t.Errorf("jku/x5u fetched %d times", n)
	}
}

func TestRetiredKeyVerifiesAndIsPublished(t *testing.T) {
	old := testKey(t, AlgEdDSA, AlgEdDSA)
	newer := testKey(t, AlgES256, AlgES256)
	newer.CreatedAt = t0.Add(time.Hour)
	before := newIssuer(t, Config{}, old)
	tok, _, _ := before.Issue(Claims{UserID: "u", SessionID: "s"}, t0.Add(59*time.Minute))

	old.RetiredAt = t0.Add(time.Hour)
	after := newIssuer(t, Config{}, old, newer)
	if after.SignerKID() != newer.KID || after.Alg() != AlgES256 {
		t.Fatalf("signer = %s/%s, want the new key", after.SignerKID(), after.Alg())
	}
	if _, err := after.Verify(tok, t0.Add(61*time.Minute)); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
	kids := jwksKIDs(t, after.JWKS())
	if !slices.Equal(kids, []string{newer.KID, old.KID}) {
		t.Errorf("JWKS kids = %v, want signer then retired key", kids)
	}
}

func jwksKIDs(t *testing.T, b []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestSignerIsNewestActiveKey(t *testing.T) {
	mk := func(name string, created, retired time.Time) store.SigningKey {
		k := testKey(t, name, AlgEdDSA)
		k.CreatedAt, k.RetiredAt = created, retired
		return k
	}
	oldest := mk("s-oldest", t0, time.Time{})
	newest := mk("s-newest", t0.Add(2*time.Hour), time.Time{})
	retired := mk("s-retired", t0.Add(3*time.Hour), t0.Add(4*time.Hour)) // newer, but retired
	middle := mk("s-middle", t0.Add(time.Hour), time.Time{})
	for _, order := range [][]store.SigningKey{
		{oldest, newest, retired, middle},
		{retired, middle, newest, oldest},
		{newest, oldest, middle, retired},
	} {
		i := newIssuer(t, Config{}, order...)
		if i.SignerKID() != newest.KID {
			t.Errorf("signer = %s, want %s", i.SignerKID(), newest.KID)
		}
		tok, _, _ := i.Issue(Claims{UserID: "u", SessionID: "s"}, t0)
		h, _, _ := splitJWT(t, tok)
		if !strings.Contains(mustDecode(t, h), newest.KID) {
			t.Errorf("token header %s not signed by %s", mustDecode(t, h), newest.KID)
		}
		// Every key verifies.
		for _, sk := range order {
			if _, err := i.Verify(signAs(t, parsed(t, sk), goodClaims(t0)), t0); err != nil {
				t.Errorf("key %s: %v", sk.KID, err)
			}
		}
	}
	// Same CreatedAt: the greater KID wins, whatever the order.
	a, b := mk("s-tie-a", t0, time.Time{}), mk("s-tie-b", t0, time.Time{})
	want := max(a.KID, b.KID)
	if s1, s2 := newIssuer(t, Config{}, a, b).SignerKID(), newIssuer(t, Config{}, b, a).SignerKID(); s1 != want || s2 != want {
		t.Errorf("tie: signer %s / %s, want %s", s1, s2, want)
	}
}

func TestJWKS(t *testing.T) {
	var sks []store.SigningKey
	for n, alg := range algs {
		sk := testKey(t, alg, alg)
		sk.CreatedAt = t0.Add(time.Duration(n) * time.Minute) // HS256 newest: the signer
		sks = append(sks, sk)
	}
	i := newIssuer(t, Config{}, sks...)
	if i.Alg() != AlgHS256 {
		t.Fatalf("test setup: signer is %s", i.Alg())
	}
	raw := i.JWKS()

	// Only public members, and none of the private bytes in any encoding.
	var generic struct {
		Keys []map[string]any `json:"keys"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&generic); err != nil {
		t.Fatalf("JWKS is not valid JSON: %v\n%s", err, raw)
	}
	allowed := []string{"kty", "use", "kid", "alg", "crv", "x", "y", "n", "e"}
	for _, jk := range generic.Keys {
		for field := range jk {
			if !slices.Contains(allowed, field) {
				t.Errorf("JWK %v has member %q", jk["kid"], field)
			}
		}
		if jk["use"] != "sig" {
			t.Errorf("JWK %v: use = %v", jk["kid"], jk["use"])
		}
	}
	for _, sk := range sks {
		for _, enc := range []func([]byte) string{base64.RawURLEncoding.EncodeToString, base64.StdEncoding.EncodeToString} {
			if strings.Contains(string(raw), enc(sk.Private)) {
				t.Errorf("JWKS contains the private key of %s", sk.Alg)
			}
		}
	}
	hs := sks[3]
	// Match whole JSON members: a random RSA modulus may contain "oct".
	if strings.Contains(string(raw), `"`+hs.KID+`"`) || strings.Contains(string(raw), `"oct"`) || strings.Contains(string(raw), `"HS256"`) {
		t.Errorf("JWKS publishes the HS256 key: %s", raw)
	}
	if len(generic.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want 3: %s", len(generic.Keys), raw)
	}

	// Each published key is the right public key: a token signed by our
	// private key verifies with the key rebuilt from the JWK alone.
	var set struct {
		Keys []jwk `json:"keys"`
	}
	json.Unmarshal(raw, &set)
	for _, j := range set.Keys {
		sk := sks[slices.IndexFunc(sks, func(s store.SigningKey) bool { return s.KID == j.Kid })]
		if j.Alg != sk.Alg {
			t.Errorf("JWK %s alg %s, want %s", j.Kid, j.Alg, sk.Alg)
		}
		pub := pubFromJWK(t, j)
		tok := signAs(t, parsed(t, sk), goodClaims(t0))
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{sk.Alg}), jwt.WithTimeFunc(func() time.Time { return t0 })); err != nil {
			t.Errorf("JWK %s (%s) does not verify our token: %v", j.Kid, j.Kty, err)
		}
	}

	// The caller's copy is its own.
	raw[0] = 'X'
	if i.JWKS()[0] != '{' {
		t.Error("JWKS returns the shared buffer")
	}

	// Only an HS256 key: an empty, valid set.
	if got := string(newIssuer(t, Config{}, hs).JWKS()); got != `{"keys":[]}` {
		t.Errorf("HS256-only JWKS = %s", got)
	}
}

func pubFromJWK(t *testing.T, j jwk) any {
	t.Helper()
	d := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWK %s: %v", j.Kid, err)
		}
		return b
	}
	switch j.Kty {
	case "OKP":
		if j.Crv != "Ed25519" || len(d(j.X)) != ed25519.PublicKeySize {
			t.Fatalf("bad OKP JWK %+v", j)
		}
		return ed25519.PublicKey(d(j.X))
	case "EC":
		x, y := d(j.X), d(j.Y)
		if j.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
			t.Fatalf("bad EC JWK %+v", j)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(d(j.N)), E: int(new(big.Int).SetBytes(d(j.E)).Int64())}
	}
	t.Fatalf("unexpected kty %q", j.Kty)
	return nil
}

func TestNew(t *testing.T) {
	ed := testKey(t, AlgEdDSA, AlgEdDSA)
	es := testKey(t, AlgES256, AlgES256)
	retired := ed
	retired.RetiredAt = t0
	mismatched := es
	mismatched.Alg = AlgEdDSA
	shortHS := store.SigningKey{KID: "short", Alg: AlgHS256, Private: make([]byte, 16)}
	noKID := ed
	noKID.KID = ""
	garbage := store.SigningKey{KID: "g", Alg: AlgEdDSA, Private: []byte("not DER")}
	es384 := func() store.SigningKey {
		p, _ := ecdsa.GenerateKey(elliptic.P384(), nil)
		der, _ := x509.MarshalPKCS8PrivateKey(p)
		return store.SigningKey{KID: "p384", Alg: AlgES256, Private: der}
	}()
	rsa1024 := func() store.SigningKey {
		p, _ := rsa.GenerateKey(nil, 1024)
		der, _ := x509.MarshalPKCS8PrivateKey(p)
		return store.SigningKey{KID: "rsa1024", Alg: AlgRS256, Private: der}
	}()
	unknownAlg := ed
	unknownAlg.Alg = "PS256"
	noneAlg := ed
	noneAlg.Alg = "none"

	good := Config{Issuer: "iss", AccessTTL: time.Minute}
	for name, tc := range map[string]struct {
		cfg  Config
		keys []store.SigningKey
	}{
		"no issuer":        {Config{AccessTTL: time.Minute}, []store.SigningKey{ed}},
		"no ttl":           {Config{Issuer: "iss"}, []store.SigningKey{ed}},
		"negative ttl":     {Config{Issuer: "iss", AccessTTL: -time.Minute}, []store.SigningKey{ed}},
		"negative leeway":  {Config{Issuer: "iss", AccessTTL: time.Minute, Leeway: -time.Second}, []store.SigningKey{ed}},
		"no keys":          {good, nil},
		"all retired":      {good, []store.SigningKey{retired}},
		"duplicate kid":    {good, []store.SigningKey{ed, ed}},
		"alg/key mismatch": {good, []store.SigningKey{mismatched}},
		"short HS256":      {good, []store.SigningKey{shortHS}},
		"no kid":           {good, []store.SigningKey{noKID}},
		"garbage DER":      {good, []store.SigningKey{garbage}},
		"P-384 as ES256":   {good, []store.SigningKey{es384}},
		"RSA 1024":         {good, []store.SigningKey{rsa1024}},
		"unknown alg":      {good, []store.SigningKey{unknownAlg}},
		"alg none":         {good, []store.SigningKey{noneAlg}},
		"one bad of two":   {good, []store.SigningKey{es, garbage}},
	} {
		t.Run(name, func(t *testing.T) {
			if i, err := New(tc.cfg, tc.keys); err == nil {
				t.Errorf("New = %v, want error", i)
			} else if len(tc.keys) > 0 && len(tc.keys[0].Private) >= 16 && strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(tc.keys[0].Private)[:16]) {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
	// Retired keys are fine next to an active one.
	if _, err := New(good, []store.SigningKey{retired, es}); err != nil {
		t.Error(err)
	}
}

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for _, alg := range algs {
		for range 3 {
			sk, err := GenerateKey(alg, t0)
			if err != nil {
				t.Fatal(err)
			}
			if sk.Alg != alg || !sk.CreatedAt.Equal(t0) || !sk.RetiredAt.IsZero() {
				t.Errorf("%+v", sk)
			}
			if len(sk.KID) != 16 || strings.Trim(sk.KID, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Errorf("kid %q is not 16 URL-safe characters", sk.KID)
			}
			if seen[sk.KID] {
				t.Errorf("kid %q repeated", sk.KID)
			}
			seen[sk.KID] = true
			k := parsed(t, sk)
			switch alg {
			case AlgHS256:
				if len(sk.Private) != 32 {
					t.Errorf("HS256 secret is %d bytes", len(sk.Private))
				}
			case AlgRS256:
				if n := k.verify.(*rsa.PublicKey).N.BitLen(); n != 2048 {
					t.Errorf("RSA key is %d bits", n)
				}
			case AlgES256:
				if k.verify.(*ecdsa.PublicKey).Curve != elliptic.P256() {
					t.Error("ES256 key is not P-256")
				}
			}
			if alg == AlgRS256 {
				break // slow; one is enough
			}
		}
	}
	if _, err := GenerateKey("none", t0); err == nil {
		t.Error("GenerateKey(none) succeeded")
	}
	if _, err := GenerateKey("HS512", t0); err == nil {
		t.Error("GenerateKey(HS512) succeeded")
	}
}

func TestConcurrentUse(t *testing.T) {
	var sks []store.SigningKey
	for n, alg := range algs {
		sk := testKey(t, alg, alg)
		sk.CreatedAt = t0.Add(time.Duration(n) * time.Minute)
		sks = append(sks, sk)
	}
	issuers := []*Issuer{newIssuer(t, Config{Audience: "x"}, sks...)}
	for _, sk := range sks[:3] {
		// Issuers that sign with each algorithm but share the key set.
		others := slices.DeleteFunc(slices.Clone(sks), func(o store.SigningKey) bool { return o.KID == sk.KID })
		for n := range others {
			others[n].RetiredAt = t0
		}
		issuers = append(issuers, newIssuer(t, Config{Audience: "x"}, append(others, sk)...))
	}
	verifier := issuers[0]
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			is := issuers[g%len(issuers)]
			for n := range 50 {
				uid := fmt.Sprintf("u-%d-%d", g, n)
				tok, _, err := is.Issue(Claims{UserID: uid, SessionID: "s", Roles: []string{"r"}}, t0)
				if err != nil {
					errs <- err
					return
				}
				c, err := verifier.Verify(tok, t0)
				if err != nil || c.UserID != uid {
					errs <- fmt.Errorf("verify %s: %v %+v", uid, err, c)
					return
				}
				h, rest, _ := strings.Cut(tok, ".")
				p, sg, _ := strings.Cut(rest, ".")
				sig, _ := base64.RawURLEncoding.DecodeString(sg)
				sig[len(sig)/2] ^= 0x80
				if _, err := verifier.Verify(h+"."+p+"."+base64.RawURLEncoding.EncodeToString(sig), t0); err == nil {
					errs <- errors.New("tampered token accepted")
					return
				}
				if len(verifier.JWKS()) == 0 {
					errs <- errors.New("empty JWKS")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			i := newIssuer(b, Config{Audience: "legacy"}, testKey(b, alg, alg))
			tok, _, err := i.Issue(Claims{UserID: "u-1", Username: "alice", Roles: []string{"admin"}, SessionID: "s-1", Epoch: 3}, t0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.Verify(tok, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIssue(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			i := newIssuer(b, Config{Audience: "legacy"}, testKey(b, alg, alg))
			c := Claims{UserID: "u-1", Username: "alice", Roles: []string{"admin"}, SessionID: "s-1", Epoch: 3}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := i.Issue(c, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyRefusedHuge(b *testing.B) {
	i := newIssuer(b, Config{}, testKey(b, AlgEdDSA, AlgEdDSA))
	tok := strings.Repeat(".", 10000)
	b.ReportAllocs()
	for b.Loop() {
		i.Verify(tok, t0)
	}
}
