package store

import "fmt"

// The prefixes of the IDs a backend generates (internal/secret.NewID with
// one of these). No login may start with one (IDShaped), so an ID is never
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
