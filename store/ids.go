package store

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"time"
)

// The prefixes of the IDs a backend generates (NewID with one of these). No login may start with one (IDShaped), so an ID is never
// mistaken for a login.
const (
	UserIDPrefix    = "usr_"
	KeyIDPrefix     = "key_"
	SessionIDPrefix = "ses_"
)

// MaxIDLen caps every record ID and signing key ID, in bytes.
const MaxIDLen = 128

// ValidateID keeps caller-supplied IDs (imports) safe as index keys: the
// "owner/child" listing keys need IDs without '/'. what names the ID in
// the error ("user id").
func ValidateID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalid, what, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: %s may only contain letters, digits, '_', '-' and '.'", ErrInvalid, what)
		}
	}
	return nil
}

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

// What every backend does to a new record before it stores it: fill the
// id, the record version and the timestamps the caller left out, and
// refuse what no backend may store. Shared, so that backends agree.

// PrepareUser fills and validates a new user: its id (when empty), its
// logins in their stored forms (PrepareLogins), its version and its
// timestamps (when zero).
func PrepareUser(u *User) error {
	if u.ID == "" {
		u.ID = NewID(UserIDPrefix)
	}
	if err := ValidateID("user id", u.ID); err != nil {
		return err
	}
	if err := PrepareLogins(u, nil); err != nil {
		return err
	}
	u.V = RecordVersion
	t := time.Now().UTC()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = t
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = t
	}
	return nil
}

// PrepareAPIKey fills and validates a new key: its id (when empty), its
// version and its creation time (when zero); a key without a digest is
// refused.
func PrepareAPIKey(k *APIKey) error {
	if k.ID == "" {
		k.ID = NewID(KeyIDPrefix)
	}
	if err := ValidateID("key id", k.ID); err != nil {
		return err
	}
	if k.Digest == (Digest{}) {
		return fmt.Errorf("%w: api key without digest", ErrInvalid)
	}
	k.V = RecordVersion
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now().UTC()
	}
	return nil
}

// PrepareSession fills and validates a new session with the digest of its
// first refresh token: its id (when empty), its version and its creation
// time (when zero); a session without a refresh token or an expiry is
// refused.
func PrepareSession(sess *Session, refresh Digest) error {
	if sess.ID == "" {
		sess.ID = NewID(SessionIDPrefix)
	}
	if err := ValidateID("session id", sess.ID); err != nil {
		return err
	}
	if refresh == (Digest{}) {
		return fmt.Errorf("%w: session without refresh token digest", ErrInvalid)
	}
	if sess.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: session without expiry", ErrInvalid)
	}
	sess.V = RecordVersion
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now().UTC()
	}
	sess.ExpiresAt = sess.ExpiresAt.UTC()
	return nil
}
