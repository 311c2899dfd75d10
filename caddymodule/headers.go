package caddymodule

import (
	"net/http"
	"net/textproto"

	"github.com/caddyserver/caddy/v2"
)

// identityHeaders knows the configured identity header names and the
// credential header, and does the header work of every request.
type identityHeaders struct {
	prefix    string                // e.g. "X-Auth-"
	names     [numIdentities]string // canonical names, e.g. "X-Auth-User-Id"
	keyHeader string                // canonical API key header, e.g. "X-Api-Key"
}

func newIdentityHeaders(prefix, keyHeader string) identityHeaders {
	h := identityHeaders{
		prefix:    prefix,
		keyHeader: textproto.CanonicalMIMEHeaderKey(keyHeader),
	}
	for i, suffix := range identitySuffixes {
		h.names[i] = textproto.CanonicalMIMEHeaderKey(prefix + suffix)
	}
	return h
}

// strip deletes every incoming header in the identity namespace: any name
// that starts with the prefix, in any letter case and with '_' for '-'.
// Deleting the whole namespace, not just the names we set, means a client
// can never supply an identity header an upstream might trust, whatever
// spelling the upstream's framework folds together (X_Auth_User, x-auth-user).
func (h *identityHeaders) strip(hdr http.Header) {
	for name := range hdr {
		if hasIdentityPrefix(name, h.prefix) {
			delete(hdr, name)
		}
	}
}

// hasIdentityPrefix compares without allocating: ASCII case folded, and '_'
// equal to '-'.
func hasIdentityPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldHeaderByte(name[i]) != foldHeaderByte(prefix[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}

// inject sets the principal's identity headers and placeholders. The header
// values are the principal's own precomputed slices: no allocation.
func (h *identityHeaders) inject(r *http.Request, repl *caddy.Replacer, p *principal) {
	for i := range numIdentities {
		if p.values[i] == nil {
			continue
		}
		r.Header[h.names[i]] = p.values[i]
		repl.Set(identityPlaceholders[i], p.placeholders[i])
	}
}

// dropCredentials removes the caller's credential headers so that the
// upstream never sees a token or key unless configured to.
func (h *identityHeaders) dropCredentials(hdr http.Header) {
	delete(hdr, "Authorization")
	delete(hdr, h.keyHeader)
}
