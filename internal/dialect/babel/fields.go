package babel

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/authgate/authgate/internal/httpx"
)

// Reading requests: every body is one JSON object (httpx.ReadJSONObject),
// its members kept encoded until a route asks for one.

// fields is a JSON object with its members still encoded, so a member
// that is absent (or null) can be told from one that is empty. Member names
// match exactly, as JSON says, not case-insensitively as encoding/json would.
type fields map[string]json.RawMessage

// has reports whether name is present and not null.
func (f fields) has(name string) bool {
	raw, ok := f[name]
	return ok && string(raw) != "null"
}

// decode sets *v from member name when it is present and not null, and
// leaves *v alone otherwise. A value of the wrong type is a bad request.
func (f fields) decode(name string, v any) error {
	if !f.has(name) {
		return nil
	}
	if err := json.Unmarshal(f[name], v); err != nil {
		return httpx.Refuse(http.StatusBadRequest, "invalid_request", strconv.Quote(name)+" has the wrong type or form")
	}
	return nil
}

// unchanged refuses a member of f that differs from its current value.
// Clients post back the whole object they read, so a member equal to the
// current value is fine: only an actual change is refused.
func (f fields) unchanged(fields []immutableField) error {
	for _, field := range fields {
		if !f.has(field.name) {
			continue
		}
		same, err := field.same(f[field.name])
		if err != nil {
			return httpx.Refuse(http.StatusBadRequest, "invalid_request", strconv.Quote(field.name)+" has the wrong type or form")
		}
		if !same {
			return httpx.Refuse(http.StatusBadRequest, "invalid_request", strconv.Quote(field.name)+" cannot be changed (if your copy is old, read it again)")
		}
	}
	return nil
}

// immutableField compares a posted member with the current value.
type immutableField struct {
	name string
	same func(json.RawMessage) (bool, error)
}

// sameAs builds an immutableField comparing with cur by equal.
func sameAs[T any](name string, cur T, equal func(a, b T) bool) immutableField {
	return immutableField{name, func(raw json.RawMessage) (bool, error) {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return false, err
		}
		return equal(v, cur), nil
	}}
}

func equal[T comparable](a, b T) bool { return a == b }

// readFields reads a request body: JSON only, at most 64 KiB, an object
// without members given twice. An empty body reads as {}.
func readFields(w http.ResponseWriter, r *http.Request) (fields, error) {
	f, err := httpx.ReadJSONObject(w, r)
	return fields(f), err
}
