package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// challenges are the WWW-Authenticate values of API.md section 3.
var challenges = map[string]string{
	"unauthorized":       `Bearer realm="authgate"`,
	"invalid_token":      `Bearer realm="authgate", error="invalid_token"`,
	"invalid_request":    `Bearer realm="authgate", error="invalid_request"`,
	"insufficient_scope": `Bearer realm="authgate", error="insufficient_scope"`,
}

// writeAuthError writes a refusal in the shape of API.md section 3:
// {"error":..., "error_description":...} with the matching challenge.
func writeAuthError(w http.ResponseWriter, e *authError) error {
	if c, ok := challenges[e.code]; ok && e.status != http.StatusServiceUnavailable {
		w.Header().Set("WWW-Authenticate", c)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	return writeJSON(w, e.status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.code, e.description})
}

// writeJSON writes v as the response body. Auth responses are never cached.
func writeJSON(w http.ResponseWriter, status int, v any) error {
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

// methodNotAllowed answers a known route called with the wrong method.
func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return writeAuthError(w, refusal(http.StatusMethodNotAllowed, "invalid_request", "this route accepts "+allow+" only"))
}
