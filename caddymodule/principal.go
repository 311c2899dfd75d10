package caddymodule

import (
	"net/http"
	"strings"
	"sync/atomic"
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
// built once and cached by the credential's text.
//
// A cached principal is reused without reading the store as long as the
// store's Generation has not moved since it was last checked. After a
// write it is checked once more: reused while the store still hands out the
// very same user, session and key records it was built from (every write
// replaces the records it touches, so an unchanged pointer means nothing
// changed), rebuilt otherwise.
//
// It is kept small and with few pointers: a full cache holds 100,000s of
// them, and the garbage collector walks every one on each cycle. The
// identity values are the records' own strings, not copies.
type principal struct {
	// credential is the token or the API key itself, compared in full on
	// every cache hit: the cache's own key is only a hash.
	credential string
	// deadline is when the decision lapses on its own, in Unix nanoseconds:
	// the token's exp, or the key's expiry, whichever is first; 0 for never.
	deadline int64
	// checked is the store Generation at which the records were last known
	// to be current.
	checked atomic.Uint64

	user    *store.User
	session *store.Session // bearer only
	key     *store.APIKey  // API key, or the key a quick_login session rests on

	// epoch and tokenExp are the token's "ep" and "exp" claims (bearer
	// only): what buildBearer needs, with the user and session IDs above, to
	// decide afresh after a write without verifying the signature again.
	epoch, tokenExp int64

	// restricted principals may only use the methods perms allows: every
	// API key, and sessions opened with a key's client secret.
	restricted bool
	perms      store.Permission

	// lastUse is when this key's use was last recorded, in Unix seconds
	// (API keys only; see noteKeyUse).
	lastUse atomic.Int64

	// identity holds the header and placeholder values; "" means not set.
	identity [numIdentities]string
}

func newPrincipal(method string, u *store.User) *principal {
	p := &principal{user: u}
	p.identity[idUserID] = u.ID
	p.identity[idUser] = u.Username
	p.identity[idEmail] = u.Email
	p.identity[idRoles] = strings.Join(u.Roles, ",")
	p.identity[idMethod] = method
	return p
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

// placeholder answers the {http.auth.user.*} placeholders from the
// principal: one replacer provider per request instead of seven values
// copied into the replacer's map. A placeholder without a value (the key ID
// of a Bearer token, an unset email) is known and empty, so that
// `header_up X-Key {http.auth.user.key_id}` sends nothing rather than the
// placeholder's own text.
func (p *principal) placeholder(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, placeholderPrefix)
	if !ok {
		return nil, false
	}
	for i, n := range identityPlaceholders {
		if n == name {
			return p.identity[i], true
		}
	}
	return nil, false
}

// allows reports whether the principal may use method.
func (p *principal) allows(method string) bool {
	return !p.restricted || p.perms.Allows(method)
}

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
func bearerPrincipal(token string, t verifiedToken, u *store.User, s *store.Session, k *store.APIKey) *principal {
	p := newPrincipal(methodBearer, u)
	p.credential = token
	p.lapses(t.expires)
	p.epoch, p.tokenExp = t.epoch, t.expires.Unix()
	p.session = s
	if k != nil {
		p.key = k
		p.lapses(k.ExpiresAt)
	}
	if s.Permissions != 0 {
		p.restricted = true
		p.perms = s.Permissions
		p.identity[idPermissions] = s.Permissions.String()
	}
	return p
}

// token returns the facts buildBearer needs to decide about the principal's
// token afresh.
func (p *principal) token() verifiedToken {
	return verifiedToken{userID: p.user.ID, sessionID: p.session.ID, epoch: p.epoch, expires: time.Unix(p.tokenExp, 0)}
}

// keyPrincipal builds the principal of an API key.
func keyPrincipal(key string, k *store.APIKey, u *store.User) *principal {
	p := newPrincipal(methodAPIKey, u)
	p.credential = key
	p.key = k
	p.lapses(k.ExpiresAt)
	p.lastUse.Store(k.LastUsed.Unix())
	p.restricted = true
	p.perms = k.Permissions
	p.identity[idKeyID] = k.ID
	p.identity[idPermissions] = k.Permissions.String()
	return p
}
