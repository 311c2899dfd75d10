package caddymodule

import (
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/store"
)

// identity indexes the identity headers and their placeholders.
type identity int

const (
	idUserID identity = iota
	idUser
	idEmail
	idRoles
	idMethod
	idKeyID
	idPermissions
	numIdentities
)

// identitySuffixes are the identity header names after the prefix
// (API.md section 3), in identity order.
var identitySuffixes = [numIdentities]string{
	"User-Id", "User", "Email", "Roles", "Method", "Key-Id", "Permissions",
}

// placeholderPrefix starts every identity placeholder; identityPlaceholders
// are the rest of each {http.auth.user.*} name, in identity order.
const placeholderPrefix = "http.auth.user."

var identityPlaceholders = [numIdentities]string{
	"id", "name", "email", "roles", "method", "key_id", "permissions",
}

const (
	methodBearer = "bearer"
	methodAPIKey = "api_key"
)

// principal is an authenticated caller: the decision about one credential,
// built once and cached by the credential's SHA-256 digest. The credential
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
// store's Generation has not moved since it was built, or the store says
// none of its records (user, session, key) was written since
// (store.ChangedSince). Otherwise it is rebuilt.
type principal struct {
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
	// lastUse is when this key's use was last recorded, in Unix seconds
	// (API keys only; see noteKeyUse).
	lastUse int64

	// restricted principals may only use the methods perms allows: every
	// API key, and sessions opened with a key's client secret.
	restricted bool
	perms      store.Permission
	// byKey is set for an API key; a Bearer token's principal may still
	// carry a key ID (a quick_login session rests on a key).
	byKey bool
}

// principalMaxSize bounds a principal: ristretto keeps a value inline in
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

func (p *principal) part(i textPart) string {
	start := uint32(0)
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.text[start:p.ends[i]]
}

// of reports whether p is the decision about the credential with digest d.
func (p *principal) of(d *store.Digest) bool { return p.part(partDigest) == string(d[:]) }

func (p *principal) userID() string    { return p.part(partUserID) }
func (p *principal) keyID() string     { return p.part(partKeyID) }
func (p *principal) sessionID() string { return p.part(partSessionID) }

// newPrincipal lays out a principal's text: one allocation for all of it.
func newPrincipal(d *store.Digest, u *store.User, keyID, sessionID string) principal {
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
	var p principal
	for i, s := range parts {
		b.WriteString(s)
		p.ends[i] = uint32(b.Len())
	}
	p.text = b.String()
	return p
}

// identityValue returns the value of one identity header and placeholder;
// "" means not set.
func (p *principal) identityValue(id identity) string {
	switch id {
	case idUserID:
		return p.userID()
	case idUser:
		return p.part(partUser)
	case idEmail:
		return p.part(partEmail)
	case idRoles:
		return p.part(partRoles)
	case idMethod:
		if p.byKey {
			return methodAPIKey
		}
		return methodBearer
	case idKeyID:
		if p.byKey {
			return p.keyID()
		}
	case idPermissions:
		if p.restricted {
			return p.perms.String()
		}
	}
	return ""
}

// lapses lowers the deadline to t, if t is set and earlier.
func (p *principal) lapses(t time.Time) {
	if t.IsZero() {
		return
	}
	if n := t.UnixNano(); p.deadline == 0 || n < p.deadline {
		p.deadline = n
	}
}

// lapsed reports whether the principal's deadline has passed at now.
func (p *principal) lapsed(now time.Time) bool {
	return p.deadline != 0 && now.UnixNano() >= p.deadline
}

// requestIdentity is one request's identity: its own copy of the header
// values (a handler after authgate may edit them in place: request_header's
// replace does), and the principal its placeholders answer from. One
// allocation for both.
type requestIdentity struct {
	headers   [numIdentities]string
	principal principal
}

// placeholder answers the {http.auth.user.*} placeholders: one replacer
// provider per request instead of seven values copied into the replacer's
// map. A placeholder without a value (the key ID of a Bearer token, an
// unset email) is known and empty, so that `header_up X-Key
// {http.auth.user.key_id}` sends nothing rather than the placeholder's own
// text.
func (ri *requestIdentity) placeholder(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, placeholderPrefix)
	if !ok {
		return nil, false
	}
	for i, n := range identityPlaceholders {
		if n == name {
			return ri.principal.identityValue(identity(i)), true
		}
	}
	return nil, false
}

// allows reports whether the principal may use method.
func (p *principal) allows(method string) bool {
	return !p.restricted || p.perms.Allows(method)
}

// permissionChecks[p] is p.Allows as a func value, made once: passing the
// method value instead would allocate on every restricted request.
var permissionChecks = func() (checks [store.PermAll + 1]func(method string) bool) {
	for p := range checks {
		checks[p] = store.Permission(p).Allows
	}
	return checks
}()

// allowsOverrides reports whether the principal may also use every method
// that a method-override header names: an upstream honouring one would
// otherwise run, say, a DELETE sent as POST by a key that may only create.
func (p *principal) allowsOverrides(hdr http.Header) bool {
	if !p.restricted {
		return true
	}
	for _, name := range methodOverrides {
		for _, m := range hdr[name] {
			if !p.perms.Allows(strings.ToUpper(strings.TrimSpace(m))) {
				return false
			}
		}
	}
	return true
}

// verifiedToken is what a verified access token tells: its claims, or the
// same facts kept by the principal built from it.
type verifiedToken struct {
	userID, sessionID string
	epoch             int64
	expires           time.Time
}

// bearerPrincipal builds the principal of a verified access token.
func bearerPrincipal(d *store.Digest, t verifiedToken, u *store.User, s *store.Session, k *store.APIKey) principal {
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
func (p *principal) token() verifiedToken {
	return verifiedToken{userID: p.userID(), sessionID: p.sessionID(), epoch: p.epoch, expires: time.Unix(0, p.deadline)}
}

// keyPrincipal builds the principal of an API key.
func keyPrincipal(k *store.APIKey, u *store.User) principal {
	p := newPrincipal(&k.Digest, u, k.ID, "")
	p.byKey = true
	p.lapses(k.ExpiresAt)
	p.lastUse = k.LastUsed.Unix()
	p.restricted = true
	p.perms = k.Permissions
	return p
}
