package httpx

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
)

// A restricted credential must not reach a method its permissions deny by
// naming it in a parameter: Rails (Rack::MethodOverride), Laravel and
// Symfony run a POST that carries _method=DELETE as a DELETE. The override
// headers are checked by principal.allowsOverrides; checkMethodParams checks
// the parameters, in the query string and in form, multipart and JSON
// bodies, and leaves the body the upstream reads byte for byte as it was.
//
// Which names count (overrideName.counts): the name as its encoding decodes
// it (percent-decoding and '+' in queries and urlencoded forms, JSON string
// escapes, RFC 2231 and quoted strings in multipart headers), cut at a NUL
// (PHP registers names as C strings) and with leading spaces dropped (PHP
// drops them), is
//   - "method" after one byte of `_ . [ space` (PHP turns `.`, ` ` and `[`
//     into `_`), or "method" alone once spaces were dropped (" method"),
//     in any ASCII case (ASP.NET compares form keys case-insensitively); or
//   - a method-override header name, which ASP.NET MVC also reads from the
//     form and the query (X-HTTP-Method-Override), `_` or `-` alike.
//
// "_methods" and "x_method" do not count. The value, trimmed of spaces and
// upper-cased in ASCII only (a Unicode upper-casing turns "optıons" into
// OPTIONS), must be a method allows accepts; an empty value names nothing.
// Every occurrence counts: frameworks differ on which of two they take.

const (
	overrideMemKeep   = 1 << 20  // body bytes kept in memory; the rest go to a file
	overrideMaxBody   = 64 << 20 // body bytes checked at most
	overrideNameKeep  = 256      // name bytes kept after its leading spaces
	overrideValueKeep = 64       // value bytes kept after its leading spaces
)

var (
	errOverrideTooLarge    = Refuse(http.StatusRequestEntityTooLarge, "invalid_request", "a body that is checked for method overrides (a restricted credential's, or one under a require rule with methods) may not exceed 64 MiB")
	errOverrideUnreadable  = Refuse(http.StatusBadRequest, "invalid_request", "the request body could not be read")
	errOverrideMultipart   = Refuse(http.StatusBadRequest, "invalid_request", "the multipart body is malformed")
	errOverrideBoundary    = Refuse(http.StatusBadRequest, "invalid_request", "a multipart body needs exactly one boundary parameter")
	errOverrideTypes       = Refuse(http.StatusBadRequest, "invalid_request", "send at most one Content-Type header")
	errOverrideEncoded     = Refuse(http.StatusUnsupportedMediaType, "invalid_request", "a form or JSON body that is checked for method overrides (a restricted credential's, or one under a require rule with methods) may not be content-encoded")
	errOverrideCharset     = Refuse(http.StatusUnsupportedMediaType, "invalid_request", "a form or JSON body that is checked for method overrides (a restricted credential's, or one under a require rule with methods) must be in UTF-8 or another ASCII-compatible charset")
	errOverrideUnavailable = Refuse(http.StatusServiceUnavailable, "temporarily_unavailable", "the request body could not be buffered for checking; try again")
)

// errForbidden refuses an override naming a method the credential lacks.
var errForbidden = Refuse(http.StatusForbidden, "insufficient_scope", "the credential does not permit this method")

// CheckMethodParams is checkMethodParams for the request path: a refusal
// as an error, and, when the body was spooled for the check, done frees
// the spool (call it once the upstream has read the body); nil otherwise.
func CheckMethodParams(r *http.Request, allows func(method string) bool) (done func() error, err error) {
	if rf := checkMethodParams(r, allows); rf != nil {
		return nil, rf
	}
	if body, ok := r.Body.(*overrideReplay); ok {
		return body.Close, nil
	}
	return nil, nil
}

// checkMethodParams reports whether every method that a `_method`
// parameter of r names is allowed (by allows). It may replace r.Body
// with an equivalent reader that replays what it read. A refusal is an
// *Refusal: 403 insufficient_scope (errForbidden) when a
// named method is not allowed, 413 when a body is too large to check, 400
// for a body it cannot read.
//
// It also refuses what it could not check the way an upstream reads it:
// two Content-Type headers (400), a content-encoded body (415: Express
// inflates it) and a charset that is not ASCII-compatible (415: UTF-16).
func checkMethodParams(r *http.Request, allows func(method string) bool) *Refusal {
	if r.URL != nil && queryMayOverride(r.URL.RawQuery) {
		f := overrideForm{allows: allows}
		if !f.feed([]byte(r.URL.RawQuery)) || !f.finish() {
			return errForbidden
		}
	}
	kinds, boundary, aerr := overrideBodyKinds(r)
	if aerr != nil || kinds == 0 {
		return aerr
	}
	return checkBodyParams(r, kinds, boundary, allows)
}

// queryMayOverride is the allocation-free pre-check: a query names no
// method unless it spells "method" or escapes something ("%6Dethod").
func queryMayOverride(q string) bool {
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '%':
			return true
		case c|0x20 == 'm' && overrideFoldEqual(q[i:min(i+6, len(q))], "method"):
			return true
		}
	}
	return false
}

// The bodies a framework parses for parameters.
const (
	scanForm = 1 << iota
	scanMultipart
	scanJSON
)

// overrideBodyKinds says how the upstream may parse r's body: as what
// PHP, Rack, Laravel and Express take for a form, multipart or JSON body,
// which is more than mime.ParseMediaType accepts. It allocates nothing for
// a body it need not scan.
func overrideBodyKinds(r *http.Request) (kinds int, boundary string, aerr *Refusal) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return 0, "", nil
	}
	cts := r.Header["Content-Type"]
	if len(cts) > 1 {
		// Upstreams take the first, the last, or both joined by a comma.
		return 0, "", errOverrideTypes
	}
	ct := ""
	if len(cts) == 1 {
		ct = cts[0]
	}
	// PHP ends the media type at ';', ',' or a space; Rack at ';' or ','.
	base := strings.TrimLeft(ct, " \t\r\n\v\f")
	if i := strings.IndexAny(base, ";, \t\r\n\v\f"); i >= 0 {
		base = base[:i]
	}
	switch {
	case base == "":
		// Rack parses the body of a POST without a type as a form.
		if r.Method == http.MethodPost {
			kinds |= scanForm
		}
	case overrideFoldPrefix(base, "application/x-www-form-urlencoded"):
		kinds |= scanForm // Symfony matches the prefix
	case overrideFoldPrefix(base, "multipart/"):
		kinds |= scanMultipart // Rack parses multipart/mixed and /related too
	}
	// Laravel's isJson: the header contains "/json" or "+json" anywhere.
	if overrideFoldIndex(ct, "/json") >= 0 || overrideFoldIndex(ct, "+json") >= 0 {
		kinds |= scanJSON
	}
	if kinds == 0 {
		return 0, "", nil
	}

	for _, v := range r.Header["Content-Encoding"] {
		for _, coding := range strings.Split(v, ",") {
			if coding = strings.TrimSpace(coding); coding != "" && !strings.EqualFold(coding, "identity") {
				return 0, "", errOverrideEncoded
			}
		}
	}
	if !overrideCharsetsOK(ct) {
		return 0, "", errOverrideCharset
	}
	if r.ContentLength > overrideMaxBody {
		return 0, "", errOverrideTooLarge
	}
	if kinds&scanMultipart != 0 {
		var ok bool
		if boundary, ok = overrideBoundary(ct); !ok {
			// Rack reads a multipart body without a boundary as a form.
			return 0, "", errOverrideBoundary
		}
	}
	return kinds, boundary, nil
}

// overrideBoundary returns the multipart boundary of ct only if every
// parser agrees on it: PHP takes the first "boundary", Rack's regex the
// last, mime the one well-formed parameter.
func overrideBoundary(ct string) (string, bool) {
	i := overrideFoldIndex(ct, "boundary")
	if i < 0 || overrideFoldIndex(ct[i+1:], "boundary") >= 0 {
		return "", false
	}
	rest := strings.TrimLeft(ct[i+len("boundary"):], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", false
	}
	rest = rest[1:]
	var b string
	if strings.HasPrefix(rest, `"`) {
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return "", false
		}
		b = rest[1 : 1+end]
	} else {
		end := strings.IndexAny(rest, `";,`)
		if end < 0 {
			end = len(rest)
		}
		b = rest[:end]
	}
	if b == "" {
		return "", false
	}
	if _, params, err := mime.ParseMediaType(ct); err == nil && params["boundary"] != b {
		return "", false
	}
	return b, true
}

// overrideCharsetsOK reports whether every charset parameter of ct keeps
// ASCII as ASCII, so that scanning the bytes finds what a decoder finds.
func overrideCharsetsOK(ct string) bool {
	for i := 0; ; {
		j := overrideFoldIndex(ct[i:], "charset")
		if j < 0 {
			return true
		}
		i += j + len("charset")
		rest := strings.TrimLeft(ct[i:], " \t")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t\"'")
		if end := strings.IndexAny(rest, "\"'; \t,"); end >= 0 {
			rest = rest[:end]
		}
		cs := strings.ToLower(rest)
		switch {
		case cs == "utf-8", cs == "utf8", cs == "us-ascii", cs == "ascii", cs == "latin1",
			strings.HasPrefix(cs, "iso-8859-"), strings.HasPrefix(cs, "iso8859-"),
			strings.HasPrefix(cs, "windows-125"), strings.HasPrefix(cs, "cp125"):
		default:
			return false
		}
	}
}

// checkBodyParams runs the scanners kinds asks for over r's body, each from
// its start, and gives r a body that replays what they read.
func checkBodyParams(r *http.Request, kinds int, boundary string, allows func(string) bool) *Refusal {
	// A body checked once already (a restricted key's, then by a require
	// rule) is scanned again from the same spool, not spooled twice.
	replay, again := r.Body.(*overrideReplay)
	again = again && replay.off == 0
	var s *overrideSpool
	if again {
		s = replay.s
	} else {
		s = &overrideSpool{src: r.Body}
		if r.ContentLength > 0 {
			s.mem = make([]byte, 0, min(r.ContentLength, overrideMemKeep))
		}
	}
	for _, kind := range [...]int{scanForm, scanMultipart, scanJSON} {
		if kinds&kind == 0 {
			continue
		}
		rd := &overrideCursor{s: s}
		var aerr *Refusal
		switch kind {
		case scanForm:
			aerr = scanFormBody(rd, allows)
		case scanMultipart:
			aerr = scanMultipartBody(rd, boundary, allows)
		case scanJSON:
			aerr = scanJSONBody(rd, allows)
		}
		if f := s.failure(); f != nil {
			aerr = f // what the scanner made of a cut-off body is beside the point
		}
		if aerr != nil {
			s.release()
			return aerr
		}
	}
	if !again {
		r.Body = &overrideReplay{s: s}
	}
	return nil
}

// overrideName gathers a decoded parameter name byte by byte in bounded
// memory, however many leading spaces it has.
type overrideName struct {
	buf     [overrideNameKeep]byte
	n       int
	trimmed bool // leading spaces were dropped
	started bool // a byte other than a leading space came
	cut     bool // a NUL or the bound ended what is kept
	over    bool // the bound did
}

func (a *overrideName) add(c byte) {
	switch {
	case a.cut:
	case !a.started && c == ' ':
		a.trimmed = true
	case c == 0:
		a.started, a.cut = true, true
	case a.n == len(a.buf):
		a.over, a.cut = true, true
	default:
		a.started = true
		a.buf[a.n] = c
		a.n++
	}
}

func (a *overrideName) reset() {
	a.n, a.trimmed, a.started, a.cut, a.over = 0, false, false, false, false
}

// overrideHeaderParams are the override header names as parameter names.
var overrideHeaderParams = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// counts reports whether the name names a method override: see the rule
// at the top of this file.
func (a *overrideName) counts() bool {
	if a.over {
		return false
	}
	b := a.buf[:a.n]
	switch {
	case len(b) == 6:
		return a.trimmed && overrideFoldEqual(b, "method")
	case len(b) == 7 && strings.IndexByte("_.[ ", b[0]) >= 0:
		return overrideFoldEqual(b[1:], "method")
	}
	for _, h := range overrideHeaderParams {
		if len(b) == len(h) && overrideFoldDashes(b, h) {
			return true
		}
	}
	return false
}

// overrideNameCounts applies the rule to a name already decoded, or, with
// pct, still percent-encoded (an RFC 2231 value read leniently).
func overrideNameCounts(s string, pct bool) bool {
	var a overrideName
	for i := 0; i < len(s); i++ {
		c := s[i]
		if pct && c == '%' && i+2 < len(s) {
			if hi, ok := unhexOverride(s[i+1]); ok {
				if lo, ok := unhexOverride(s[i+2]); ok {
					c = hi<<4 | lo
					i += 2
				}
			}
		}
		a.add(c)
	}
	return a.counts()
}

// overrideValue gathers a decoded value in bounded memory, without its
// leading spaces.
type overrideValue struct {
	buf  [overrideValueKeep]byte
	n    int
	over bool
}

func (v *overrideValue) add(c byte) {
	switch {
	case v.n == 0 && overrideSpace(c):
	case v.n == len(v.buf):
		v.over = true
	default:
		v.buf[v.n] = c
		v.n++
	}
}

func (v *overrideValue) reset() { v.n, v.over = 0, false }

// allowed asks allows about the method the value names. A value too long
// to keep is no method's name: allows then sees (and refuses, unless the
// credential may do everything) what was kept.
func (v *overrideValue) allowed(allows func(string) bool) bool {
	b := v.buf[:v.n]
	if !v.over {
		if b = bytes.TrimSpace(b); len(b) == 0 {
			return true
		}
	}
	up := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	return allows(string(up))
}

func overrideSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func unhexOverride(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func overrideLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// overrideFoldEqual reports whether s is lower in ASCII case folding.
func overrideFoldEqual[S string | []byte](s S, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if overrideLower(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// overrideFoldDashes is overrideFoldEqual with '_' for '-' (equal lengths).
func overrideFoldDashes(s []byte, lower string) bool {
	for i, c := range s {
		if c = overrideLower(c); c == '_' {
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func overrideFoldPrefix(s, lower string) bool {
	return len(s) >= len(lower) && overrideFoldEqual(s[:len(lower)], lower)
}

// overrideFoldIndex is the index of lower in s in ASCII case folding, or -1.
func overrideFoldIndex(s, lower string) int {
	for i := 0; i+len(lower) <= len(s); i++ {
		if overrideLower(s[i]) == lower[0] && overrideFoldEqual(s[i:i+len(lower)], lower) {
			return i
		}
	}
	return -1
}
