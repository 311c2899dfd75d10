package auth

import (
	"strings"
	"time"

	"github.com/authgate/authgate/store"
)

// Principal is an authenticated caller: the decision about one credential,
// made once and cached by the credential's SHA-256 digest. The credential
// itself is not kept: a heap or core dump shows no token or key.
//
// The caches hold principals by value, and a principal has one pointer:
// text, whose bytes the garbage collector never scans. A full cache of
// 100,000s of decisions therefore costs the collector next to nothing; a
// principal pointing at its records (as it once did) made the collector
// the biggest cost of a busy gateway with many credentials. Keep it so:
// no other pointer, and small enough (principalMaxSize) for ristretto's map
// to keep it inline.
//
// A cached principal is reused without reading the store as long as the
// store's Generation has not moved since it was built, or the change feed
// says none of its records (user, session, key) was written since.
// Otherwise it is rebuilt.
type Principal struct {
	// text is the credential's digest, then the other parts (textPart) back
	// to back; ends[i] is where part i ends. The digest is compared in full
	// on every cache hit: the cache's own key is only its first 8 bytes.
	text string
	ends [numTextParts]uint32
	// deadline is when the decision lapses on its own, in Unix nanoseconds:
	// the token's exp, or the key's expiry, whichever is first; 0 for never.
	deadline int64
	// built is the store Generation at which the records were read.
	built uint64
	// epoch is the token's "ep" claim (bearer only): what buildBearer
	// needs, with the IDs in text and the deadline, to decide afresh after
	// a write without verifying the signature again.
	epoch int64
	// lastUse is when this key's or browser session's use was last
	// recorded, in Unix seconds (see noteKeyUse, noteSessionUse).
	lastUse int64

	// restricted principals may only use the methods perms allows: every
	// API key, and sessions opened with a key's client secret.
	restricted bool
	perms      store.Permission
	// byKey is set for an API key; a Bearer token's principal may still
	// carry a key ID (a quick_login session rests on a key).
	byKey bool
	// bySession is set for a browser session's cookie.
	bySession bool
}

// principalMaxSize bounds a Principal: ristretto keeps a value inline in
// its map only while its item (40 bytes plus the value) fits Go's 128-byte
// limit for map elements; larger ones get an allocation each.
const principalMaxSize = 88

// textPart indexes the parts of a principal's text.
type textPart int

const (
	partDigest textPart = iota // the credential's SHA-256, 32 bytes
	partUserID
	partUser
	partEmail
	partRoles
	partKeyID     // the API key, or the key a quick_login session rests on
	partSessionID // Bearer tokens only
	numTextParts
)

func (p *Principal) part(i textPart) string {
	start := uint32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.text[start:p.ends[i]]
}

// of reports whether p is the decision about the credential with digest d.
func (p *Principal) of(d *store.Digest) bool { return p.part(partDigest) == string(d[:]) }

// UserID is the user's id.
func (p *Principal) UserID() string { return p.part(partUserID) }

// Username is the user's (stored, normalised) username.
func (p *Principal) Username() string { return p.part(partUser) }

// Email is the user's email, or "".
func (p *Principal) Email() string { return p.part(partEmail) }

// Roles are the user's roles, comma-separated.
func (p *Principal) Roles() string { return p.part(partRoles) }

// KeyID is the API key's id, or for a quick_login session the key it rests
// on; "" otherwise.
func (p *Principal) KeyID() string { return p.part(partKeyID) }

// SessionID is the session of a Bearer token or a browser cookie; "" for
// an API key.
func (p *Principal) SessionID() string { return p.part(partSessionID) }

// ByKey reports whether the credential was an API key.
func (p *Principal) ByKey() bool { return p.byKey }

// BySession reports whether the credential was a browser session cookie.
func (p *Principal) BySession() bool { return p.bySession }

// Restricted reports whether the principal may use only the methods its
// Permissions allow: every API key, and sessions opened with a key's
// client secret.
func (p *Principal) Restricted() bool { return p.restricted }

// Permissions are a restricted principal's permissions.
func (p *Principal) Permissions() store.Permission { return p.perms }

// Method names how the caller authenticated: MethodAPIKey, MethodSession
// or MethodBearer.
func (p *Principal) Method() string {
	switch {
	case p.byKey:
		return MethodAPIKey
	case p.bySession:
		return MethodSession
	}
	return MethodBearer
}

// The values of Principal.Method, as upstreams see them in X-Auth-Method.
const (
	MethodBearer  = "bearer"
	MethodAPIKey  = "api_key"
	MethodSession = "session" // a browser session cookie
)

// Allows reports whether the principal may use method.
func (p *Principal) Allows(method string) bool {
	return !p.restricted || p.perms.Allows(method)
}

// MethodCheck is Allows as a func value, without an allocation: a
// restricted request's method overrides are checked with it.
func (p *Principal) MethodCheck() func(method string) bool {
	if !p.restricted {
		return allowsAll
	}
	return permissionChecks[p.perms&store.PermAll]
}

func allowsAll(string) bool { return true }

// permissionChecks[p] is p.Allows as a func value, made once: a method
// value made per request would allocate.
var permissionChecks = func() (checks [store.PermAll + 1]func(method string) bool) {
	for p := range checks {
		checks[p] = store.Permission(p).Allows
	}
	return checks
}()

// newPrincipal lays out a principal's text: one allocation for all of it.
func newPrincipal(d *store.Digest, u *store.User, keyID, sessionID string) Principal {
	parts := [numTextParts]string{
		partDigest:    string(d[:]),
		partUserID:    u.ID,
		partUser:      u.Username,
		partEmail:     u.Email,
		partRoles:     strings.Join(u.Roles, ","),
		partKeyID:     keyID,
		partSessionID: sessionID,
	}
	n := 0
	for _, s := range parts {
		n += len(s)
	}
	var b strings.Builder
	b.Grow(n)
	var p Principal
	for i, s := range parts {
		b.WriteString(s)
		p.ends[i] = uint32(b.Len())
	}
	p.text = b.String()
	return p
}

// lapses lowers the deadline to t, if t is set and earlier.
func (p *Principal) lapses(t time.Time) {
	if t.IsZero() {
		return
	}
	if n := t.UnixNano(); p.deadline == 0 || n < p.deadline {
		p.deadline = n
	}
}

// lapsed reports whether the principal's deadline has passed at now.
func (p *Principal) lapsed(now time.Time) bool {
	return p.deadline != 0 && now.UnixNano() >= p.deadline
}

// verifiedToken is what a verified access token tells: its claims, or the
// same facts kept by the principal built from it.
type verifiedToken struct {
	userID, sessionID string
	epoch             int64
	expires           time.Time
}

// bearerPrincipal builds the principal of a verified access token.
func bearerPrincipal(d *store.Digest, t verifiedToken, u *store.User, s *store.Session, k *store.APIKey) Principal {
	keyID := ""
	if k != nil {
		keyID = k.ID
	}
	p := newPrincipal(d, u, keyID, s.ID)
	p.lapses(t.expires)
	p.epoch = t.epoch
	if k != nil {
		p.lapses(k.ExpiresAt)
	}
	if s.Permissions != 0 {
		p.restricted = true
		p.perms = s.Permissions
	}
	return p
}

// token returns the facts buildBearer needs to decide about the principal's
// token afresh. Its expiry is the principal's deadline, which is the
// token's exp or, for a quick_login session, the key's expiry if earlier:
// a deadline too early only costs verifying the token again.
func (p *Principal) token() verifiedToken {
	return verifiedToken{userID: p.UserID(), sessionID: p.SessionID(), epoch: p.epoch, expires: time.Unix(0, p.deadline)}
}

// sessionPrincipal builds the principal of a browser session's cookie,
// whose digest is d, last used at seen.
func sessionPrincipal(d *store.Digest, u *store.User, s *store.Session, seen time.Time) Principal {
	p := newPrincipal(d, u, "", s.ID)
	p.bySession = true
	p.lapses(s.ExpiresAt)
	p.lastUse = seen.Unix()
	return p
}

// idle reports whether a browser session's principal has gone unused for
// idle or longer at now.
func (p *Principal) idle(now time.Time, idle time.Duration) bool {
	return now.Unix()-p.lastUse >= int64(idle/time.Second)
}

// keyPrincipal builds the principal of an API key.
func keyPrincipal(k *store.APIKey, u *store.User) Principal {
	p := newPrincipal(&k.Digest, u, k.ID, "")
	p.byKey = true
	p.lapses(k.ExpiresAt)
	p.lastUse = k.LastUsed.Unix()
	p.restricted = true
	p.perms = k.Permissions
	return p
}
