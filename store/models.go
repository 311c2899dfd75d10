package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

// RecordVersion is written into every stored value (the V fields) so a
// later release can tell old records from new ones and migrate them.
const RecordVersion = 1

// Digest is the SHA-256 of a secret (API key, client secret, refresh token).
// Only digests are stored; the secret itself never touches the disk.
type Digest [32]byte

// DigestOf returns the SHA-256 digest of secret. It hashes the string's
// bytes in place (sha256 only reads them): a []byte conversion would copy a
// secret longer than 32 bytes to the heap, and the request path digests
// every credential.
func DigestOf(secret string) Digest {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(secret), len(secret)))
}

// Slot returns the first 8 bytes of d as a number: a cache key for it.
// Digests sharing a slot are told apart by comparing them in full.
func (d *Digest) Slot() uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// String returns the digest in hex, for logs and JSON. It reveals nothing of
// the secret.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText stores a digest as hex in JSON values.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a hex digest.
func (d *Digest) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(d) {
		return fmt.Errorf("digest: want %d hex characters, got %d", 2*len(d), len(b))
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// Permission is the Babel API key permission bitmask.
type Permission uint8

const (
	PermRead   Permission = 1 // GET, HEAD, OPTIONS
	PermWrite  Permission = 2 // PUT, PATCH
	PermDelete Permission = 4 // DELETE
	PermCreate Permission = 8 // POST
	PermAll               = PermRead | PermWrite | PermDelete | PermCreate
)

var permissionNames = [...]struct {
	bit  Permission
	name string
}{{PermRead, "read"}, {PermWrite, "write"}, {PermDelete, "delete"}, {PermCreate, "create"}}

// ParsePermissions parses a comma-separated list such as "read,write".
// "all" stands for every permission. An empty list or an unknown name is an
// error.
func ParsePermissions(s string) (Permission, error) {
	var p Permission
	for _, part := range strings.Split(s, ",") {
		name := strings.ToLower(strings.TrimSpace(part))
		if name == "all" {
			p |= PermAll
			continue
		}
		found := false
		for _, pn := range permissionNames {
			if pn.name == name {
				p |= pn.bit
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown permission %q (want read, write, delete, create or all)", name)
		}
	}
	return p, nil
}

// String lists the permissions by name, comma-separated, in bit order.
// The names of the 16 combinations are built once: every cached credential
// holds one, and a shared string costs the garbage collector nothing.
func (p Permission) String() string {
	if p <= PermAll {
		return permissionStrings[p]
	}
	return p.names()
}

var permissionStrings = func() (s [PermAll + 1]string) {
	for p := range s {
		s[p] = Permission(p).names()
	}
	return s
}()

func (p Permission) names() string {
	var names []string
	for _, pn := range permissionNames {
		if p&pn.bit != 0 {
			names = append(names, pn.name)
		}
	}
	return strings.Join(names, ",")
}

// Required returns the permission an HTTP method needs. Methods outside the
// Babel mapping (TRACE, CONNECT, extension methods) need every permission.
func Required(method string) Permission {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return PermRead
	case "PUT", "PATCH":
		return PermWrite
	case "DELETE":
		return PermDelete
	case "POST":
		return PermCreate
	}
	return PermAll
}

// Allows reports whether p grants what method needs.
func (p Permission) Allows(method string) bool {
	need := Required(method)
	return p&need == need
}

// User is an account. It carries every field of the Babel user profile, the
// plentymarkets fields, and what the gateway needs to decide on a request.
//
// Values returned by the cached lookups (UserByID) are shared: never modify
// them; use UpdateUser.
type User struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	Username string `json:"userName"`

	Email               string    `json:"email,omitempty"`
	PhoneNumber         string    `json:"phoneNumber,omitempty"`
	Title               string    `json:"title,omitempty"`
	FirstName           string    `json:"firstName,omitempty"`
	LastName            string    `json:"lastName,omitempty"`
	Department          string    `json:"department,omitempty"`
	BirthDate           string    `json:"birthDate,omitempty"`
	Rank                int       `json:"rank,omitempty"`
	Image               string    `json:"image,omitempty"`
	Address             string    `json:"address,omitempty"`
	PostalCode          string    `json:"postalCode,omitempty"`
	Region              string    `json:"region,omitempty"`
	City                string    `json:"city,omitempty"`
	Country             string    `json:"country,omitempty"`
	CountryCode         string    `json:"countryCode,omitempty"`
	Mobile              string    `json:"mobile,omitempty"`
	Notes               string    `json:"notes,omitempty"`
	CustomerID          string    `json:"customerId,omitempty"`
	Lang                string    `json:"lang,omitempty"`
	Timezone            string    `json:"timezone,omitempty"`
	LastDismissMessages time.Time `json:"lastDismissMessages,omitzero"`
	LastLogIn           time.Time `json:"lastLogIn,omitzero"`
	CreatedAt           time.Time `json:"createdAt"`
	UpdatedAt           time.Time `json:"updatedAt"`

	Roles    []string  `json:"roles,omitempty"`
	Settings []Setting `json:"settings,omitempty"`

	// Disabled users cannot log in, and their tokens and keys stop working.
	Disabled bool `json:"disabled,omitempty"`
	// PasswordHash and PINHash are PHC strings (argon2id, or bcrypt on import).
	PasswordHash string `json:"passwordHash,omitempty"`
	PINHash      string `json:"pinHash,omitempty"`
	// SessionLimit caps this user's live sessions; 0 means the gateway's
	// session_limit.
	SessionLimit int `json:"sessionLimit,omitempty"`
	// TokenEpoch is carried in every access token; raising it refuses every
	// token issued before (password change, "log out everywhere").
	TokenEpoch int64 `json:"tokenEpoch,omitempty"`
}

// RealName is the plentymarkets "realName": first and last name.
func (u *User) RealName() string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// Setting is one per-user settings row of the Babel profile.
type Setting struct {
	ID          int64  `json:"id"`
	Category    string `json:"category,omitempty"`
	Group       string `json:"group,omitempty"`
	Name        string `json:"name"`
	Value       string `json:"value"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	UserID      string `json:"userId,omitempty"`
}

// APIKey is a long-lived credential. The key and its client secret are never
// stored; Digest and ClientSecretDigest are their SHA-256.
type APIKey struct {
	V           int        `json:"v"`
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	OwnerID     string     `json:"ownerId"`
	Permissions Permission `json:"permissions"`

	Digest Digest `json:"digest"`
	// Hint is a masked form of the key (prefix and last characters), the
	// only thing ever shown after creation.
	Hint string `json:"hint"`

	ClientSecretDigest Digest `json:"clientSecretDigest,omitzero"`
	ClientSecretHint   string `json:"clientSecretHint,omitempty"`

	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"` // zero: never
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
	LastUsed  time.Time `json:"lastUsed,omitzero"`
	// Legacy keys were imported from another system: no prefix, no checksum.
	Legacy bool `json:"legacy,omitempty"`
}

// HasClientSecret reports whether a client secret was issued with the key.
func (k *APIKey) HasClientSecret() bool { return k.ClientSecretDigest != Digest{} }

// Usable reports whether the key may authenticate at now: not revoked and
// not past its expiry. The owner's state is checked separately.
func (k *APIKey) Usable(now time.Time) bool {
	return !k.Revoked && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// Session is one login and every token descended from it (a refresh-token
// family). Access tokens carry its ID; revoking it refuses them all.
type Session struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	CreatedAt time.Time `json:"createdAt"`
	// RefreshedAt is the last rotation; ExpiresAt is when the current
	// refresh token stops working.
	RefreshedAt time.Time `json:"refreshedAt,omitzero"`
	ExpiresAt   time.Time `json:"expiresAt"`
	// Generation counts rotations; the live refresh token is the newest.
	Generation int `json:"generation"`

	Revoked      bool      `json:"revoked,omitempty"`
	RevokedAt    time.Time `json:"revokedAt,omitzero"`
	RevokeReason string    `json:"revokeReason,omitempty"`

	// Permissions limits a session opened with an API key's client secret
	// (quick_login) to that key's permissions; zero means the user's own.
	Permissions Permission `json:"permissions,omitempty"`
	KeyID       string     `json:"keyId,omitempty"`
	// Browser marks a session opened by the browser login: its secret is
	// a cookie, stored like a first refresh token and never rotated.
	Browser bool `json:"browser,omitempty"`
	// LastSeen is when the session was last used, to within a minute,
	// written in batches (TouchSessions); zero until first touched.
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// Alive reports whether the session's access tokens may be used at now.
// Access tokens have their own exp; this only says the family is not revoked.
func (s *Session) Alive() bool { return !s.Revoked }

// RevokeReasons a store writes itself, beside the callers' own ("logout").
const (
	// ReasonRefreshReused: a spent refresh token of the session came back.
	ReasonRefreshReused = "refresh token reused"
	// ReasonSessionLimit: a newer login pushed the session out.
	ReasonSessionLimit = "session limit reached"
)

// NewSession is one session of CreateSessions, with the digest of its
// refresh token.
type NewSession struct {
	Session *Session
	Refresh Digest
}

// SigningKey is a token signing key. Private holds the PKCS#8 DER private key
// (for HS256, the raw secret). The store file is created 0600 for this.
type SigningKey struct {
	V         int       `json:"v"`
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"` // EdDSA, ES256, RS256 or HS256
	Private   []byte    `json:"private"`
	CreatedAt time.Time `json:"createdAt"`
	// RetiredAt is set when another key took over signing; a retired key
	// still verifies until the tokens it signed have expired.
	RetiredAt time.Time `json:"retiredAt,omitzero"`
}

// Counts is how many records of each kind a store holds.
type Counts struct {
	Users       int `json:"users"`
	APIKeys     int `json:"apiKeys"`
	Sessions    int `json:"sessions"`
	SigningKeys int `json:"signingKeys"`
}
