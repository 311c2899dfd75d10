package caddymodule

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/internal/auth"
)

// What the upstream learns of the caller: the identity headers (API.md
// section 3) and the {http.auth.user.*} placeholders.

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

// identitySuffixes are the identity header names after the prefix, in
// identity order.
var identitySuffixes = [numIdentities]string{
	"User-Id", "User", "Email", "Roles", "Method", "Key-Id", "Permissions",
}

// placeholderPrefix starts every identity placeholder; identityPlaceholders
// are the rest of each {http.auth.user.*} name, in identity order.
const placeholderPrefix = "http.auth.user."

var identityPlaceholders = [numIdentities]string{
	"id", "name", "email", "roles", "method", "key_id", "permissions",
}

// identityHeaders are the configured identity header names, canonical.
type identityHeaders struct {
	names [numIdentities]string // e.g. "X-Auth-User-Id"
}

func newIdentityHeaders(prefix string) identityHeaders {
	var h identityHeaders
	for i, suffix := range identitySuffixes {
		h.names[i] = textproto.CanonicalMIMEHeaderKey(prefix + suffix)
	}
	return h
}

// identityValue returns the value of one identity header and placeholder;
// "" means not set.
func identityValue(p *auth.Principal, id identity) string {
	switch id {
	case idUserID:
		return p.UserID()
	case idUser:
		return p.Username()
	case idEmail:
		return p.Email()
	case idRoles:
		return p.Roles()
	case idMethod:
		return p.Method()
	case idKeyID:
		if p.ByKey() {
			return p.KeyID()
		}
	case idPermissions:
		if p.Restricted() {
			return p.Permissions().String()
		}
	}
	return ""
}

// requestIdentity is one request's identity: its own copy of the header
// values (a handler after authgate may edit them in place: request_header's
// replace does), and the principal its placeholders answer from. One
// allocation for both.
type requestIdentity struct {
	headers   [numIdentities]string
	principal auth.Principal
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
			return identityValue(&ri.principal, identity(i)), true
		}
	}
	return nil, false
}

// inject sets the principal's identity headers and placeholders, at the
// cost of two small allocations (the request's identity and its
// placeholder provider). Each request gets its own copy of the header
// values: a handler after this one may edit values in place
// (request_header's replace does), and must not reach other requests.
func (h *identityHeaders) inject(r *http.Request, repl *caddy.Replacer, p *auth.Principal) {
	ri := &requestIdentity{principal: *p} // escapes: one allocation
	for i := range ri.headers {
		if v := identityValue(p, identity(i)); v != "" {
			ri.headers[i] = v
			r.Header[h.names[i]] = ri.headers[i : i+1 : i+1]
		}
	}
	repl.Map(ri.placeholder)
}
