package caddymodule

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
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

// identityPlaceholders are the {http.auth.user.*} names, in identity order.
var identityPlaceholders = [numIdentities]string{
	"http.auth.user.id", "http.auth.user.name", "http.auth.user.email",
	"http.auth.user.roles", "http.auth.user.method", "http.auth.user.key_id",
	"http.auth.user.permissions",
}

const (
	methodBearer = "bearer"
	methodAPIKey = "api_key"
)

// principal is an authenticated caller. It is built once per credential and
// cached; the header values and placeholder values are precomputed so that
// the request path sets them without allocating.
//
// A cached principal is only reused while the store still hands out the very
// same user, session and key records it was built from: every store write
// replaces those records (new pointers), so pointer equality says "nothing
// changed since" without reading the records' fields again.
type principal struct {
	// credential is the token or the API key itself, compared in full on
	// every cache hit: the cache's own key is only a hash.
	credential string
	expires    time.Time // the token's exp; zero for API keys

	user    *store.User
	session *store.Session // bearer only
	key     *store.APIKey  // API key, or the key a quick_login session rests on
	claims  *tokens.Claims // bearer only

	// restricted principals may only use the methods perms allows: every
	// API key, and sessions opened with a key's client secret.
	restricted bool
	perms      store.Permission

	// lastUse is when this key's use was last recorded, in Unix seconds
	// (API keys only; see noteKeyUse).
	lastUse atomic.Int64

	values       [numIdentities][]string // nil: header not set
	placeholders [numIdentities]any      // nil: placeholder not set
}

func newPrincipal(method string, u *store.User) *principal {
	p := &principal{user: u}
	p.set(idUserID, u.ID)
	p.set(idUser, u.Username)
	p.set(idEmail, u.Email)
	p.set(idRoles, strings.Join(u.Roles, ","))
	p.set(idMethod, method)
	return p
}

func (p *principal) set(id identity, v string) {
	if v == "" {
		return
	}
	p.values[id] = []string{v}
	p.placeholders[id] = v
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

// bearerPrincipal builds the principal of a verified access token.
func bearerPrincipal(token string, c *tokens.Claims, u *store.User, s *store.Session, k *store.APIKey) *principal {
	p := newPrincipal(methodBearer, u)
	p.credential = token
	p.expires = c.ExpiresAt
	p.session = s
	p.key = k
	p.claims = c
	if s.Permissions != 0 {
		p.restricted = true
		p.perms = s.Permissions
		p.set(idPermissions, s.Permissions.String())
	}
	return p
}

// keyPrincipal builds the principal of an API key.
func keyPrincipal(key string, k *store.APIKey, u *store.User) *principal {
	p := newPrincipal(methodAPIKey, u)
	p.credential = key
	p.key = k
	p.lastUse.Store(k.LastUsed.Unix())
	p.restricted = true
	p.perms = k.Permissions
	p.set(idKeyID, k.ID)
	p.set(idPermissions, k.Permissions.String())
	return p
}
