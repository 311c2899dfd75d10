package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/store"
)

// Supported signing algorithms (the "alg" of a key and of its tokens).
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgHS256 = "HS256"
)

const (
	rsaBits        = 2048 // generated RSA modulus; also the smallest accepted
	hmacSecretSize = 32   // RFC 7518 §3.2: at least the hash output size
)

// key is one parsed signing key.
type key struct {
	kid       string
	alg       string
	method    jwt.SigningMethod
	sign      any // ed25519.PrivateKey, *ecdsa.PrivateKey, *rsa.PrivateKey or []byte
	verify    any // ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey or []byte
	createdAt time.Time
	retired   bool
}

// GenerateKey makes a new signing key for alg (EdDSA, ES256, RS256 or
// HS256) created at now. Private holds the PKCS#8 DER private key, or for
// HS256 32 random bytes. KID is 16 random URL-safe characters.
func GenerateKey(alg string, now time.Time) (store.SigningKey, error) {
	var der []byte
	var err error
	switch alg {
	case AlgEdDSA:
		var priv ed25519.PrivateKey
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(priv)
		}
	case AlgES256:
		var priv *ecdsa.PrivateKey
		if priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(priv)
		}
	case AlgRS256:
		var priv *rsa.PrivateKey
		if priv, err = rsa.GenerateKey(rand.Reader, rsaBits); err == nil {
			der, err = x509.MarshalPKCS8PrivateKey(priv)
		}
	case AlgHS256:
		der = make([]byte, hmacSecretSize)
		_, err = rand.Read(der)
	default:
		return store.SigningKey{}, fmt.Errorf("tokens: unsupported signing algorithm %q (want EdDSA, ES256, RS256 or HS256)", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("tokens: generating %s key: %w", alg, err)
	}
	return store.SigningKey{
		V:         1,
		KID:       randomID(12), // 12 bytes → 16 base64url characters
		Alg:       alg,
		Private:   der,
		CreatedAt: now,
	}, nil
}

// parseKey checks a stored key and turns it into signing and verification
// keys. The key type must match the stored algorithm.
func parseKey(sk store.SigningKey) (*key, error) {
	if sk.KID == "" {
		return nil, errors.New("tokens: signing key without kid")
	}
	k := &key{kid: sk.KID, alg: sk.Alg, createdAt: sk.CreatedAt, retired: !sk.RetiredAt.IsZero()}
	if sk.Alg == AlgHS256 {
		if len(sk.Private) < hmacSecretSize {
			return nil, fmt.Errorf("tokens: key %q: HS256 secret is %d bytes, want at least %d", sk.KID, len(sk.Private), hmacSecretSize)
		}
		secret := append([]byte(nil), sk.Private...)
		k.method, k.sign, k.verify = jwt.SigningMethodHS256, secret, secret
		return k, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(sk.Private)
	if err != nil {
		// The parse error describes the DER structure, never the key bytes.
		return nil, fmt.Errorf("tokens: key %q: parsing PKCS#8 private key: %w", sk.KID, err)
	}
	switch sk.Alg {
	case AlgEdDSA:
		p, ok := priv.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("tokens: key %q: alg EdDSA needs an Ed25519 key, have %T", sk.KID, priv)
		}
		k.method, k.sign, k.verify = jwt.SigningMethodEdDSA, p, p.Public()
	case AlgES256:
		p, ok := priv.(*ecdsa.PrivateKey)
		if !ok || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("tokens: key %q: alg ES256 needs a P-256 ECDSA key", sk.KID)
		}
		k.method, k.sign, k.verify = jwt.SigningMethodES256, p, &p.PublicKey
	case AlgRS256:
		p, ok := priv.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("tokens: key %q: alg RS256 needs an RSA key, have %T", sk.KID, priv)
		}
		if p.N.BitLen() < rsaBits {
			return nil, fmt.Errorf("tokens: key %q: RSA key is %d bits, want at least %d", sk.KID, p.N.BitLen(), rsaBits)
		}
		p.Precompute() // before sharing across goroutines
		k.method, k.sign, k.verify = jwt.SigningMethodRS256, p, &p.PublicKey
	default:
		return nil, fmt.Errorf("tokens: key %q: unsupported signing algorithm %q", sk.KID, sk.Alg)
	}
	return k, nil
}

// jwk is one public key of the JWK Set (RFC 7517, RFC 7518 §6, RFC 8037).
// It has no field for private material.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// publicJWK returns the JWK of k's public key; ok is false for HS256 keys,
// whose secret must never be published.
func publicJWK(k *key) (j jwk, ok bool, err error) {
	b64 := base64.RawURLEncoding.EncodeToString
	j = jwk{Use: "sig", Kid: k.kid, Alg: k.alg}
	switch pub := k.verify.(type) {
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(pub)
	case *ecdsa.PublicKey:
		pt, err := pub.Bytes() // uncompressed: 0x04 || X || Y, fixed width
		if err != nil {
			return j, false, fmt.Errorf("tokens: key %q: encoding EC public key: %w", k.kid, err)
		}
		size := (len(pt) - 1) / 2
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(pt[1:1+size]), b64(pt[1+size:])
	case *rsa.PublicKey:
		j.Kty, j.N, j.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	default: // HS256: symmetric, never published
		return j, false, nil
	}
	return j, true, nil
}

// buildJWKS renders the public keys of keys (already in output order).
func buildJWKS(keys []*key) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range keys {
		j, ok, err := publicJWK(k)
		if err != nil {
			return nil, err
		}
		if ok {
			set.Keys = append(set.Keys, j)
		}
	}
	return json.Marshal(set)
}

// randomID returns n random bytes as unpadded base64url.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
