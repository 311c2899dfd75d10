package httpx

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/auth"
)

// Credentials is where a request's one credential is read from: the
// Authorization header (Bearer) or the API key header.
type Credentials struct {
	// KeyHeader is the canonical name of the API key header (X-Api-Key).
	KeyHeader string
}

// Authenticate finds the request's one credential and resolves it with
// svc. None is ErrNoCredential; two (two Authorization headers, two keys,
// or a token and a key) are ErrTwoCredentials (RFC 6750 §2: one method per
// request); a non-Bearer Authorization is ErrBadScheme.
func (c Credentials) Authenticate(svc *auth.Service, r *http.Request) (auth.Principal, error) {
	authz := r.Header["Authorization"]
	keys := r.Header[c.KeyHeader]
	switch {
	case len(authz) > 1 || len(keys) > 1 || (len(authz) == 1 && len(keys) == 1):
		return auth.Principal{}, ErrTwoCredentials
	case len(keys) == 1:
		return svc.AuthenticateKey(keys[0])
	case len(authz) == 1:
		token, ok := BearerToken(authz[0])
		if !ok {
			return auth.Principal{}, ErrBadScheme
		}
		return svc.AuthenticateBearer(token)
	}
	return auth.Principal{}, ErrNoCredential
}

// AuthenticateRoute is Authenticate for one of authgate's own routes, with
// the method rule of proxied traffic: an API key (or a quick_login
// session) may only do what its permissions allow.
func (c Credentials) AuthenticateRoute(svc *auth.Service, r *http.Request) (auth.Principal, error) {
	p, err := c.Authenticate(svc, r)
	if err != nil {
		return auth.Principal{}, err
	}
	if !p.Allows(r.Method) {
		return auth.Principal{}, auth.ErrForbidden
	}
	return p, nil
}

// BearerToken extracts the token of "Bearer <token>" (scheme in any case).
func BearerToken(v string) (string, bool) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
