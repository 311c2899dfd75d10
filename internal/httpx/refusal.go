// Package httpx is authgate's HTTP hygiene, shared by the plugin and the
// dialects: strict readers of auth-route requests (body caps, content
// types, members given twice), the refusal writer of API.md section 3, the
// credential a request carries, the identity-header namespace and the
// hop-by-hop and method-override tricks a client could play on the hops
// after authgate.
package httpx

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/authgate/authgate/internal/auth"
)

// Refusal is a refused request as the wire shows it: the status, the
// RFC 6750 error code and a description that never holds a credential.
type Refusal struct {
	Status      int
	Code        string
	Description string
	RetryAfter  int // seconds; set only on a lock (429; the plentymarkets dialect answers 403)
}

// Refuse makes a Refusal.
func Refuse(status int, code, description string) *Refusal {
	return &Refusal{Status: status, Code: code, Description: description}
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Description }

// The refusals of the request itself (the service never sees these).
var (
	ErrNoCredential   = Refuse(http.StatusUnauthorized, "unauthorized", "a Bearer token or an API key is required")
	ErrTwoCredentials = Refuse(http.StatusBadRequest, "invalid_request", "use exactly one credential per request: one Authorization header or one API key, not both")
	ErrBadScheme      = Refuse(http.StatusUnauthorized, "invalid_token", "the Authorization header must be \"Bearer <token>\"")
)

// errUnavailable is what a client sees of a store failure: never its cause.
var errUnavailable = Refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the credential store could not be read; try again")

// RefusalOf maps any error of a request to its refusal: a Refusal as it
// is, the service's domain errors to section 3's statuses and codes, and
// anything else, which is never the client's fault, to a 503.
func RefusalOf(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	var locked *auth.LockedError
	if errors.As(err, &locked) {
		return &Refusal{
			Status: http.StatusTooManyRequests, Code: "locked", Description: locked.Error(),
			RetryAfter: int(math.Ceil(locked.RetryAfter.Seconds())),
		}
	}
	var input *auth.InputError
	if errors.As(err, &input) {
		return Refuse(http.StatusBadRequest, "invalid_request", input.Msg)
	}
	for _, m := range domainRefusals {
		if errors.Is(err, m.err) {
			return Refuse(m.status, m.code, m.err.Error())
		}
	}
	return errUnavailable
}

// domainRefusals are the statuses and codes of the service's refusals.
var domainRefusals = []struct {
	err    error
	status int
	code   string
}{
	{auth.ErrInvalidToken, http.StatusUnauthorized, "invalid_token"},
	{auth.ErrInvalidKey, http.StatusUnauthorized, "invalid_token"},
	{auth.ErrBadCredentials, http.StatusUnauthorized, "invalid_credentials"},
	{auth.ErrWrongPassword, http.StatusUnauthorized, "invalid_credentials"},
	{auth.ErrWrongPIN, http.StatusUnauthorized, "invalid_credentials"},
	{auth.ErrBadGrant, http.StatusUnauthorized, "invalid_grant"},
	{auth.ErrBadClient, http.StatusUnauthorized, "invalid_client"},
	{auth.ErrNeedsBearer, http.StatusBadRequest, "invalid_request"},
	{auth.ErrKeyLogout, http.StatusBadRequest, "invalid_request"},
	{auth.ErrForbidden, http.StatusForbidden, "insufficient_scope"},
	{auth.ErrEmailByAdmin, http.StatusForbidden, "forbidden"},
}

// Unavailable reports whether err is the store failing (a 503), so the
// caller can log its cause.
func Unavailable(err error) bool {
	var u *auth.UnavailableError
	return errors.As(err, &u) || RefusalOf(err) == errUnavailable
}

// challenges are the WWW-Authenticate values of API.md section 3.
var challenges = map[string]string{
	"unauthorized":       `Bearer realm="authgate"`,
	"invalid_token":      `Bearer realm="authgate", error="invalid_token"`,
	"invalid_request":    `Bearer realm="authgate", error="invalid_request"`,
	"insufficient_scope": `Bearer realm="authgate", error="insufficient_scope"`,
}

// SetChallenge sets the refusal's WWW-Authenticate and Retry-After headers.
func SetChallenge(h http.Header, r *Refusal) {
	if c, ok := challenges[r.Code]; ok && r.Status != http.StatusServiceUnavailable {
		h.Set("WWW-Authenticate", c)
	}
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
}

// WriteRefusal writes a refusal in the shape of API.md section 3:
// {"error":..., "error_description":...} with the matching challenge.
func WriteRefusal(w http.ResponseWriter, r *Refusal) error {
	SetChallenge(w.Header(), r)
	return WriteJSON(w, r.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{r.Code, r.Description})
}

// WriteJSON writes v as the response body. Auth responses are never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}

// MethodNotAllowed is the refusal of a known route called with the wrong
// method; set the Allow header with it (SetAllow).
func MethodNotAllowed(allow string) *Refusal {
	return Refuse(http.StatusMethodNotAllowed, "invalid_request", "this route accepts "+allow+" only")
}
