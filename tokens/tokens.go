// Package tokens issues and verifies the gateway's JWT access tokens and
// publishes the public half of its signing keys as a JWK Set.
//
// Verification follows RFC 8725: the algorithm is pinned per key, "kid"
// only selects among our own keys, "jku", "x5u" and "jwk" are never used,
// iss/aud/exp/nbf/iat are checked with a leeway of at most a minute, and
// oversized or many-dotted tokens are refused before any parsing.
//
// The package imports no Caddy package.
package tokens

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authgate/authgate/store"
)

const (
	// MaxTokenSize is the longest token Verify looks at. Ours are well under
	// 1 KiB (RS256 about 700 bytes).
	MaxTokenSize = 8 << 10
	// maxHeaderSegment bounds the encoded header; ours is about 70 bytes.
	maxHeaderSegment = 1 << 10

	// DefaultLeeway is the clock skew allowed when Config.Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest clock skew allowed; larger values are clamped.
	MaxLeeway = time.Minute
)

// Config configures an Issuer.
type Config struct {
	Issuer    string        // iss; required
	Audience  string        // aud; checked only when non-empty
	AccessTTL time.Duration // lifetime of access tokens; must be positive
	// Leeway is the clock skew allowed on exp, nbf and iat: zero means
	// DefaultLeeway, more than MaxLeeway is clamped to it, negative is an error.
	Leeway time.Duration
}

// Claims of an access token.
type Claims struct {
	UserID    string   // sub
	Username  string   // "name"
	Roles     []string // "roles"
	SessionID string   // "sid" (required in every token we issue and verify)
	Epoch     int64    // "ep": user's token epoch at issue time
	// Permissions ("perm"): 0 = the user's full rights; quick_login tokens
	// carry the API key's bitmask.
	Permissions store.Permission
	ID          string // jti (random); set by Issue
	IssuedAt    time.Time
	ExpiresAt   time.Time
}

// ErrInvalid is wrapped by every Verify failure. Error messages never
// include the token.
var ErrInvalid = errors.New("invalid token")

// Failures detected before the JWT library sees the token. They are built
// once so a refused token costs no allocation.
var (
	errTooLong      = fmt.Errorf("%w: too long", ErrInvalid)
	errShape        = fmt.Errorf("%w: not three dot-separated segments", ErrInvalid)
	errHeader       = fmt.Errorf("%w: malformed header", ErrInvalid)
	errCrit         = fmt.Errorf("%w: unsupported critical header", ErrInvalid)
	errKID          = fmt.Errorf("%w: unknown or missing key id", ErrInvalid)
	errAlg          = fmt.Errorf("%w: algorithm does not match the key", ErrInvalid)
	errNoSubject    = fmt.Errorf("%w: missing sub", ErrInvalid)
	errNoSession    = fmt.Errorf("%w: missing sid", ErrInvalid)
	errUnverifiable = fmt.Errorf("%w: unverifiable", ErrInvalid)
)

// jwtErrors maps the library's sentinels, most specific first, to our
// errors; each wraps both ErrInvalid and the library sentinel, so callers
// may test errors.Is(err, jwt.ErrTokenExpired).
var jwtErrors = func() (m [][2]error) {
	for _, e := range []error{
		jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenExpired,
		jwt.ErrTokenNotValidYet,
		jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrTokenMalformed,
	} {
		m = append(m, [2]error{e, fmt.Errorf("%w: %w", ErrInvalid, e)})
	}
	return m
}()

// Issuer signs access tokens with its newest active key and verifies tokens
// signed by any of its keys. It is immutable after New and safe for
// concurrent use.
type Issuer struct {
	iss    string
	aud    string
	ttl    time.Duration
	leeway time.Duration
	keys   map[string]*key // by kid
	signer *key
	jwks   []byte
}

// New builds an Issuer from cfg and keys. The signer is the newest key
// (by CreatedAt, ties broken by the greater KID) whose RetiredAt is zero;
// every key verifies.
func New(cfg Config, keys []store.SigningKey) (*Issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("tokens: issuer is required")
	}
	if cfg.AccessTTL <= 0 {
		return nil, fmt.Errorf("tokens: access token lifetime must be positive, have %s", cfg.AccessTTL)
	}
	leeway := cfg.Leeway
	switch {
	case leeway < 0:
		return nil, fmt.Errorf("tokens: leeway must not be negative, have %s", leeway)
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway > MaxLeeway:
		leeway = MaxLeeway
	}
	if len(keys) == 0 {
		return nil, errors.New("tokens: no signing keys")
	}
	i := &Issuer{
		iss:    cfg.Issuer,
		aud:    cfg.Audience,
		ttl:    cfg.AccessTTL,
		leeway: leeway,
		keys:   make(map[string]*key, len(keys)),
	}
	ordered := make([]*key, 0, len(keys))
	for _, sk := range keys {
		k, err := parseKey(sk)
		if err != nil {
			return nil, err
		}
		if _, dup := i.keys[k.kid]; dup {
			return nil, fmt.Errorf("tokens: duplicate key id %q", k.kid)
		}
		i.keys[k.kid] = k
		ordered = append(ordered, k)
	}
	// Newest first; the signer is the first active key.
	slices.SortFunc(ordered, func(a, b *key) int {
		if c := b.createdAt.Compare(a.createdAt); c != 0 {
			return c
		}
		return cmp.Compare(b.kid, a.kid)
	})
	for _, k := range ordered {
		if !k.retired {
			i.signer = k
			break
		}
	}
	if i.signer == nil {
		return nil, errors.New("tokens: every signing key is retired; no key to sign with")
	}
	// Publish the signer first, then the others newest first.
	jwksOrder := append([]*key{i.signer}, slices.DeleteFunc(slices.Clone(ordered), func(k *key) bool { return k == i.signer })...)
	jwks, err := buildJWKS(jwksOrder)
	if err != nil {
		return nil, err
	}
	i.jwks = jwks
	return i, nil
}

// SignerKID is the kid of the key Issue signs with.
func (i *Issuer) SignerKID() string { return i.signer.kid }

// Alg is the algorithm of the key Issue signs with.
func (i *Issuer) Alg() string { return i.signer.alg }

// JWKS returns the JWK Set {"keys":[...]} of the public verification keys,
// the signer first. HS256 keys are never published. The caller gets its
// own copy.
func (i *Issuer) JWKS() []byte { return bytes.Clone(i.jwks) }

// wireClaims is the JSON payload of an access token.
type wireClaims struct {
	jwt.RegisteredClaims
	Name  string           `json:"name,omitempty"`
	Roles []string         `json:"roles,omitempty"`
	SID   string           `json:"sid"`
	Epoch int64            `json:"ep"`
	Perm  store.Permission `json:"perm,omitempty"`
}

// Validate is called by the JWT validator after the registered claims.
func (c *wireClaims) Validate() error {
	if c.Subject == "" {
		return errNoSubject
	}
	if c.SID == "" {
		return errNoSession
	}
	return nil
}

// Issue signs an access token for c at now. It fills iss, aud (when
// configured), iat, nbf = iat, exp = now + AccessTTL, a random jti and the
// kid header; c.ID, c.IssuedAt and c.ExpiresAt are ignored. exp is the
// token's expiry (whole seconds, as in the token).
func (i *Issuer) Issue(c Claims, now time.Time) (token string, exp time.Time, err error) {
	if c.UserID == "" {
		return "", time.Time{}, errors.New("tokens: issue: user ID is required")
	}
	if c.SessionID == "" {
		return "", time.Time{}, errors.New("tokens: issue: session ID is required")
	}
	iat := jwt.NewNumericDate(now)
	wc := &wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.iss,
			Subject:   c.UserID,
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
			NotBefore: iat,
			IssuedAt:  iat,
			ID:        randomID(16),
		},
		Name:  c.Username,
		Roles: c.Roles,
		SID:   c.SessionID,
		Epoch: c.Epoch,
		Perm:  c.Permissions,
	}
	if i.aud != "" {
		wc.Audience = jwt.ClaimStrings{i.aud}
	}
	k := i.signer
	t := jwt.NewWithClaims(k.method, wc)
	t.Header["kid"] = k.kid
	token, err = t.SignedString(k.sign)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: signing with key %q: %w", k.kid, err)
	}
	return token, wc.ExpiresAt.Time, nil
}

// header is what Verify reads of the JOSE header before verifying. Other
// fields (jku, x5u, jwk, x5c, typ, ...) are ignored.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// Verify checks token at now and returns its claims. Every failure wraps
// ErrInvalid; the message never contains the token.
func (i *Issuer) Verify(token string, now time.Time) (*Claims, error) {
	// Cheap shape checks before any decoding (CVE-2025-30204).
	if len(token) > MaxTokenSize {
		return nil, errTooLong
	}
	if strings.Count(token, ".") != 2 {
		return nil, errShape
	}
	seg := token[:strings.IndexByte(token, '.')]
	if len(seg) > maxHeaderSegment {
		return nil, errHeader
	}
	var buf [maxHeaderSegment * 3 / 4]byte
	n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(seg))
	if err != nil {
		return nil, errHeader
	}
	var h header
	if err := json.Unmarshal(buf[:n], &h); err != nil {
		return nil, errHeader
	}
	if h.Crit != nil {
		// RFC 7515 §4.1.11: we understand no extension, so refuse.
		return nil, errCrit
	}
	// kid only selects among our own keys.
	k := i.keys[h.Kid]
	if k == nil {
		return nil, errKID
	}
	// The algorithm is pinned per key.
	if h.Alg != k.alg {
		return nil, errAlg
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{k.alg}),
		jwt.WithIssuer(i.iss),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(i.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	}
	if i.aud != "" {
		opts = append(opts, jwt.WithAudience(i.aud))
	}
	var wc wireClaims
	_, err = jwt.NewParser(opts...).ParseWithClaims(token, &wc, k.keyFunc)
	if err != nil {
		return nil, classify(err)
	}
	c := &Claims{
		UserID:      wc.Subject,
		Username:    wc.Name,
		Roles:       wc.Roles,
		SessionID:   wc.SID,
		Epoch:       wc.Epoch,
		Permissions: wc.Perm,
		ID:          wc.ID,
	}
	if wc.IssuedAt != nil {
		c.IssuedAt = wc.IssuedAt.Time
	}
	c.ExpiresAt = wc.ExpiresAt.Time // required by the parser
	return c, nil
}

// keyFunc hands the JWT library k's verification key. The library decodes
// the header again, into a map; make sure it reads the same alg and kid as
// Verify did (encoding/json matches struct fields case-insensitively, a map
// does not). WithValidMethods already pins alg; this is the second lock.
func (k *key) keyFunc(t *jwt.Token) (any, error) {
	if t.Method == nil || t.Method.Alg() != k.alg {
		return nil, errAlg
	}
	if kid, _ := t.Header["kid"].(string); kid != k.kid {
		return nil, errKID
	}
	return k.verify, nil
}

// classify turns a parser error into one of ours, dropping the library's
// detail text (which may quote pieces of the decoded token).
func classify(err error) error {
	for _, own := range []error{errAlg, errKID, errNoSubject, errNoSession} {
		if errors.Is(err, own) {
			return own
		}
	}
	for _, m := range jwtErrors {
		if errors.Is(err, m[0]) {
			return m[1]
		}
	}
	return errUnverifiable
}
