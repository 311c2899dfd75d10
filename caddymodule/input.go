package caddymodule

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

// maxAuthBody caps request bodies on auth routes (API.md section 6).
const maxAuthBody = 64 << 10

var (
	errBodyTooLarge = refusal(http.StatusRequestEntityTooLarge, "invalid_request", "the request body is larger than 64 KiB")
	errMalformed    = refusal(http.StatusBadRequest, "invalid_request", "the request body is malformed")
	errAmbiguous    = refusal(http.StatusBadRequest, "invalid_request", "a parameter was given twice with different values")
	errContentType  = refusal(http.StatusUnsupportedMediaType, "invalid_request", "send JSON, a urlencoded form or multipart form data")
)

// params are the string parameters of an auth route: the query string
// merged with a JSON object, urlencoded form or multipart form body.
type params map[string]string

// first returns the first non-empty value among names (alternate
// spellings, e.g. refresh_token and refreshToken).
func (p params) first(names ...string) string {
	for _, n := range names {
		if v := p[n]; v != "" {
			return v
		}
	}
	return ""
}

// readParams reads the parameters of r. A parameter given twice with
// different values is refused rather than guessed at.
func readParams(w http.ResponseWriter, r *http.Request) (params, *authError) {
	p := params{}
	if err := p.addValues(r.URL.Query()); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthBody)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return p, p.readEmptyBody(r)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, errContentType
	}
	switch {
	case mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")):
		return p, p.readJSON(r)
	case mt == "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		return p, p.addValues(r.PostForm)
	case mt == "multipart/form-data":
		if err := r.ParseMultipartForm(maxAuthBody); err != nil {
			return nil, bodyError(err)
		}
		return p, p.addValues(r.MultipartForm.Value)
	}
	return nil, errContentType
}

// readEmptyBody accepts a request without Content-Type only if it has no body.
func (p params) readEmptyBody(r *http.Request) *authError {
	var one [1]byte
	n, err := r.Body.Read(one[:])
	if n > 0 {
		return errContentType
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return bodyError(err)
	}
	return nil
}

func (p params) readJSON(r *http.Request) *authError {
	// Read the whole body first: a decoder stops after the first value, so
	// a valid object padded past the cap would otherwise be accepted
	// (More() reports false on the read error instead of failing).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	// A member given twice: encoding/json keeps the last, a proxy or WAF in
	// front of us may have read the first ({"username":"bob","username":"alice"}).
	if aerr := checkDuplicateNames(body); aerr != nil {
		return aerr
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
		return errMalformed
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

func (p params) addValues(v url.Values) *authError {
	for k, vals := range v {
		for _, s := range vals {
			if err := p.add(k, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p params) add(k, v string) *authError {
	if old, ok := p[k]; ok && old != v {
		return errAmbiguous
	}
	p[k] = v
	return nil
}

func bodyError(err error) *authError {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errBodyTooLarge
	}
	return errMalformed
}
