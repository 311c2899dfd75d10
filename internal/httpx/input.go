package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// MaxAuthBody caps request bodies on auth routes (API.md section 6).
const MaxAuthBody = 64 << 10

// The refusals of a request body.
var (
	ErrBodyTooLarge   = Refuse(http.StatusRequestEntityTooLarge, "invalid_request", "the request body is larger than 64 KiB")
	ErrMalformed      = Refuse(http.StatusBadRequest, "invalid_request", "the request body is malformed")
	ErrAmbiguous      = Refuse(http.StatusBadRequest, "invalid_request", "a parameter was given twice with different values")
	ErrContentType    = Refuse(http.StatusUnsupportedMediaType, "invalid_request", "send JSON, a urlencoded form or multipart form data")
	ErrNotJSON        = Refuse(http.StatusUnsupportedMediaType, "invalid_request", "send the body as application/json")
	ErrDuplicateNames = Refuse(http.StatusBadRequest, "invalid_request", "a JSON object names the same member twice")
)

// Params are the string parameters of an auth route: the query string
// merged with a JSON object, urlencoded form or multipart form body.
type Params map[string]string

// First returns the first non-empty value among names (alternate
// spellings, e.g. refresh_token and refreshToken).
func (p Params) First(names ...string) string {
	for _, n := range names {
		if v := p[n]; v != "" {
			return v
		}
	}
	return ""
}

// ReadParams reads the parameters of r. A parameter given twice with
// different values is refused rather than guessed at.
func ReadParams(w http.ResponseWriter, r *http.Request) (Params, error) {
	p := Params{}
	if err := p.addValues(r.URL.Query()); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxAuthBody)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return p, p.readEmptyBody(r)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, ErrContentType
	}
	switch {
	case IsJSONType(ct):
		return p, p.readJSON(r)
	case mt == "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		return p, p.addValues(r.PostForm)
	case mt == "multipart/form-data":
		if err := r.ParseMultipartForm(MaxAuthBody); err != nil {
			return nil, bodyError(err)
		}
		return p, p.addValues(r.MultipartForm.Value)
	}
	return nil, ErrContentType
}

// readEmptyBody accepts a request without Content-Type only if it has no body.
func (p Params) readEmptyBody(r *http.Request) error {
	var one [1]byte
	n, err := r.Body.Read(one[:])
	if n > 0 {
		return ErrContentType
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return bodyError(err)
	}
	return nil
}

func (p Params) readJSON(r *http.Request) error {
	// Read the whole body first: a decoder stops after the first value, so
	// a valid object padded past the cap would otherwise be accepted
	// (More() reports false on the read error instead of failing).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	// A member given twice: encoding/json keeps the last, a proxy or WAF in
	// front of us may have read the first ({"username":"bob","username":"alice"}).
	if err := CheckDuplicateNames(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty body: parameters may come from the query
		}
		return bodyError(err)
	}
	// Nothing but white space may follow (More() lets a stray ']' or '}' pass).
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrMalformed
	}
	for k, v := range obj {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case nil:
			continue
		default:
			continue // objects and arrays carry no auth parameter
		}
		if err := p.add(k, s); err != nil {
			return err
		}
	}
	return nil
}

func (p Params) addValues(v url.Values) error {
	for k, vals := range v {
		for _, s := range vals {
			if err := p.add(k, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p Params) add(k, v string) error {
	if old, ok := p[k]; ok && old != v {
		return ErrAmbiguous
	}
	p[k] = v
	return nil
}

// bodyError maps a body read's error: over the cap is 413, else 400.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return ErrBodyTooLarge
	}
	return ErrMalformed
}

// ReadJSONObject reads a JSON request body: at most MaxAuthBody bytes, of
// a JSON media type, an object without members given twice, its members
// still encoded. An empty body reads as an empty object.
func ReadJSONObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAuthBody))
	if err != nil {
		return nil, bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if !IsJSONType(r.Header.Get("Content-Type")) {
		return nil, ErrNotJSON
	}
	if err := CheckDuplicateNames(body); err != nil {
		return nil, err
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, ErrMalformed
	}
	if f == nil { // the body was null
		f = map[string]json.RawMessage{}
	}
	return f, nil
}

// IsJSONType accepts application/json and any application/*+json.
func IsJSONType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// CheckDuplicateNames refuses a JSON text in which some object names a
// member twice: encoding/json would silently keep the last, and a proxy in
// front of us might have read the first.
func CheckDuplicateNames(body []byte) error {
	type object struct {
		names   map[string]bool
		wantKey bool
	}
	var stack []*object // nil entries are arrays
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return ErrMalformed
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.wantKey {
			if top.names[name] {
				return ErrDuplicateNames
			}
			top.names[name] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects its next name.
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}
