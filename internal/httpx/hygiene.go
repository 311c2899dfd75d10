package httpx

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"
)

// Hygiene knows the identity header namespace and the credential header,
// and does the header work of every request before authgate decides and
// after.
type Hygiene struct {
	prefix    string // e.g. "X-Auth-"
	keyHeader string // canonical API key header, e.g. "X-Api-Key"
}

// NewHygiene works on identity headers that start with prefix and API keys
// in keyHeader.
func NewHygiene(prefix, keyHeader string) Hygiene {
	return Hygiene{prefix: prefix, keyHeader: textproto.CanonicalMIMEHeaderKey(keyHeader)}
}

// KeyHeader is the canonical name of the API key header.
func (h *Hygiene) KeyHeader() string { return h.keyHeader }

// Strip deletes every incoming header in the identity namespace: any name
// that starts with the prefix, in any letter case and with '_' for '-'.
// Deleting the whole namespace, not just the names we set, means a client
// can never supply an identity header an upstream might trust, whatever
// spelling the upstream's framework folds together (X_Auth_User, x-auth-user).
// It also deletes the path and method overrides of overridesRequest.
//
// Then it takes from the client the choice of what later hops drop or
// tunnel: see dropHopTricks.
func (h *Hygiene) Strip(hdr http.Header) {
	for name := range hdr {
		if HasIdentityPrefix(name, h.prefix) || overridesRequest(name) {
			delete(hdr, name)
		}
	}
	if _, ok := hdr["Connection"]; ok {
		h.dropHopTricks(hdr)
	} else if _, ok := hdr["Upgrade"]; ok {
		h.dropHopTricks(hdr)
	}
	delete(hdr, "Http2-Settings") // only an h2c upgrade carries it
}

// dropHopTricks removes two ways a client could make the hops after
// authgate undo its decision:
//   - Connection names hop-by-hop headers, which the reverse proxy deletes
//     after authgate set them: naming X-Auth-Permissions would make a
//     read-only key look like a full session upstream (Traefik
//     CVE-2024-45410 class). Identity and credential names go from it.
//   - Upgrade: h2c (or another protocol that carries HTTP, like HTTP/2.0
//     or TLS/1.0) would switch the connection to the upstream to HTTP/2,
//     and every stream after it would bypass authgate (h2c smuggling).
//     Such tokens go; the request goes on as the plain HTTP/1.1 request it
//     also is (RFC 9110 §7.8: a server may ignore Upgrade).
func (h *Hygiene) dropHopTricks(hdr http.Header) {
	upgrade := keepTokens(hdr, "Upgrade", func(tok string) bool { return !carriesHTTP(tok) })
	keepTokens(hdr, "Connection", func(tok string) bool {
		switch {
		case HasIdentityPrefix(tok, h.prefix), foldEqual(tok, "authorization"), foldEqual(tok, h.keyHeader),
			foldEqual(tok, "http2-settings"), foldEqual(tok, "upgrade") && !upgrade:
			return false
		}
		return true
	})
}

// keepTokens rewrites the comma-separated header name to hold only the
// tokens keep accepts, deleting it when none is left. It reports whether
// any token is left.
func keepTokens(hdr http.Header, name string, keep func(tok string) bool) bool {
	vals, ok := hdr[name]
	if !ok {
		return false
	}
	var kept []string
	changed := false
	for _, v := range vals {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			switch {
			case tok == "":
			case keep(tok):
				kept = append(kept, tok)
				continue
			}
			changed = true
		}
	}
	switch {
	case len(kept) == 0:
		delete(hdr, name)
	case changed || len(vals) > 1:
		hdr[name] = []string{strings.Join(kept, ", ")}
	}
	return len(kept) > 0
}

// carriesHTTP reports whether an Upgrade token names a protocol that
// carries further HTTP requests: h2c (and h2, its drafts), HTTP/x, TLS/x.
func carriesHTTP(token string) bool {
	name, _, _ := strings.Cut(token, "/")
	name = strings.ToLower(strings.TrimSpace(name))
	return strings.HasPrefix(name, "h2") || name == "http" || name == "https" || name == "tls" || name == "shttp"
}

// methodOverrides are the headers some frameworks read as the request's
// real method (ASP.NET, Express method-override, Symfony, Laravel), in the
// canonical spelling AllowsOverrides checks.
var methodOverrides = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// AllowsOverrides reports whether allows accepts every method that a
// method-override header names: an upstream honouring one would otherwise
// run, say, a DELETE sent as POST by a key that may only create.
func AllowsOverrides(hdr http.Header, allows func(method string) bool) bool {
	for _, name := range methodOverrides {
		for _, m := range hdr[name] {
			if !allows(strings.ToUpper(strings.TrimSpace(m))) {
				return false
			}
		}
	}
	return true
}

// overrides are headers an upstream may read instead of the request line.
// X-Original-URL and X-Rewrite-URL name the path to serve (IIS URL Rewrite,
// Symfony, Zend): the path we authorized or allowed would not be the one
// served, so they go in every spelling. Method overrides go in every
// spelling but the canonical one, which allowsOverrides then checks.
var overrides = [...]struct{ folded, keep string }{
	{"x-original-url", ""}, {"x-rewrite-url", ""},
	{"x-http-method-override", methodOverrides[0]}, {"x-http-method", methodOverrides[1]}, {"x-method-override", methodOverrides[2]},
}

// overridesRequest reports whether strip must delete name as an override.
func overridesRequest(name string) bool {
	for _, o := range overrides {
		if name != o.keep && foldEqual(name, o.folded) {
			return true
		}
	}
	return false
}

// trailerFilter passes request trailers on without the names strip
// deletes and without credentials: trailers arrive after the body, long
// after strip ran, and some upstreams merge them into the headers. When the
// body reaches EOF, net/http has filled from; the filter copies the trusted
// ones into to (the request's Trailer from then on) before returning EOF,
// which is when the reverse proxy reads them.
type trailerFilter struct {
	io.ReadCloser
	h        *Hygiene
	from, to http.Header
	done     bool
}

func (f *trailerFilter) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err == io.EOF && !f.done {
		f.done = true
		for name, vals := range f.from {
			if !f.h.untrustedTrailer(name) {
				f.to[name] = vals
			}
		}
	}
	return n, err
}

// untrustedTrailer reports whether a request trailer must not reach the
// upstream: an identity name, a path or method override, a credential, in
// any spelling.
func (h *Hygiene) untrustedTrailer(name string) bool {
	if HasIdentityPrefix(name, h.prefix) || foldEqual(name, "authorization") || foldEqual(name, h.keyHeader) {
		return true
	}
	for _, o := range overrides {
		if foldEqual(name, o.folded) {
			return true
		}
	}
	return false
}

// FilterTrailers makes r pass on only trusted trailers. A client declares
// trailers in the Trailer header; only then does r.Trailer exist and do
// they reach the upstream.
func (h *Hygiene) FilterTrailers(r *http.Request) {
	if r.Trailer == nil || r.Body == nil {
		return
	}
	f := &trailerFilter{ReadCloser: r.Body, h: h, from: r.Trailer, to: make(http.Header)}
	r.Body, r.Trailer = f, f.to
}

// HasIdentityPrefix compares without allocating: ASCII case folded, and '_'
// equal to '-'.
func HasIdentityPrefix(name, prefix string) bool {
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

// foldEqual is hasIdentityPrefix for the whole name.
func foldEqual(name, target string) bool {
	return len(name) == len(target) && HasIdentityPrefix(name, target)
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

// DropCredentials removes the caller's credential headers so that the
// upstream never sees a token or key unless configured to.
func (h *Hygiene) DropCredentials(hdr http.Header) {
	delete(hdr, "Authorization")
	delete(hdr, h.keyHeader)
}
