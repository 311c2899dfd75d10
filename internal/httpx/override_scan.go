package httpx

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
)

// The scanners of checkMethodParams and the spool that lets the upstream
// read again what they read.

// overrideTempDir is where spooled bodies go ("" for os.TempDir); tests
// point it at their own directory.
var overrideTempDir = ""

var (
	overrideTooLarge   = errors.New("body over the limit")
	overrideReadFailed = errors.New("body read failed")
	overrideFileFailed = errors.New("body spool failed")
)

// overrideSpool keeps every byte read of a request body: the first
// overrideMemKeep in memory, the rest in a temporary file unlinked at once,
// so that no crash leaves a body on disk and Close frees it.
type overrideSpool struct {
	src  io.ReadCloser
	mem  []byte
	file *os.File
	path string // set only if the file could not be unlinked (Windows)
	n    int64  // bytes read from src
	err  error  // io.EOF at src's end, or why reading stopped
}

// readAt reads the body at off, reading more of src once off is at the end.
func (s *overrideSpool) readAt(p []byte, off int64) (int, error) {
	if off < s.n {
		n, err := s.spooledAt(p, off)
		if err != nil {
			s.err = overrideFileFailed
		}
		return n, err
	}
	if s.err != nil {
		return 0, s.err
	}
	return s.fill(p)
}

// spooledAt reads what was spooled at off < s.n; it changes nothing.
func (s *overrideSpool) spooledAt(p []byte, off int64) (int, error) {
	if off < int64(len(s.mem)) {
		return copy(p, s.mem[off:]), nil
	}
	if rest := s.n - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.file.ReadAt(p, off-int64(len(s.mem)))
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF // the file lost what was written to it
	}
	return n, err
}

// fill reads the next bytes of src into p and keeps them.
func (s *overrideSpool) fill(p []byte) (int, error) {
	if room := overrideMaxBody + 1 - s.n; int64(len(p)) > room {
		p = p[:room]
	}
	inMem := len(s.mem) < overrideMemKeep
	if free := overrideMemKeep - len(s.mem); inMem && len(p) > free {
		p = p[:free]
	}
	n, err := s.src.Read(p)
	if s.n+int64(n) > overrideMaxBody {
		s.err = overrideTooLarge
		return 0, s.err
	}
	if n > 0 {
		if inMem {
			s.mem = append(s.mem, p[:n]...)
		} else if werr := s.write(p[:n]); werr != nil {
			s.err = overrideFileFailed
			return 0, s.err
		}
		s.n += int64(n)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
	case err == io.EOF:
		s.err = io.EOF
	case errors.As(err, &tooLarge):
		s.err = overrideTooLarge // request_body max_size, say
	default:
		s.err = overrideReadFailed
	}
	if n > 0 {
		return n, nil // the error, if any, comes with the next read
	}
	return 0, s.err
}

func (s *overrideSpool) write(p []byte) error {
	if s.file == nil {
		f, err := os.CreateTemp(overrideTempDir, "authgate-body-*")
		if err != nil {
			return err
		}
		if os.Remove(f.Name()) != nil {
			s.path = f.Name()
		}
		s.file = f
	}
	_, err := s.file.Write(p)
	return err
}

// release frees the file, if there is one.
func (s *overrideSpool) release() {
	if s.file != nil {
		s.file.Close()
		if s.path != "" {
			os.Remove(s.path)
		}
	}
}

// failure is the refusal for why reading stopped, if not at the end.
func (s *overrideSpool) failure() *Refusal {
	switch s.err {
	case overrideTooLarge:
		return errOverrideTooLarge
	case overrideReadFailed:
		return errOverrideUnreadable
	case overrideFileFailed:
		return errOverrideUnavailable
	}
	return nil
}

// overrideCursor is one scanner's read of the body, from its start.
type overrideCursor struct {
	s   *overrideSpool
	off int64
}

func (c *overrideCursor) Read(p []byte) (int, error) {
	n, err := c.s.readAt(p, c.off)
	c.off += int64(n)
	return n, err
}

// overrideReplay is the body the upstream reads: what was spooled, then
// the rest of the original, which no scanner needed. Close may come from
// another goroutine while a Read runs (the transport does that), so it
// touches nothing a Read changes.
type overrideReplay struct {
	s        *overrideSpool
	off      int64
	once     sync.Once
	closeErr error
}

func (b *overrideReplay) Read(p []byte) (int, error) {
	if b.off < b.s.n {
		n, err := b.s.spooledAt(p, b.off)
		b.off += int64(n)
		return n, err
	}
	if b.s.err != nil {
		return 0, b.s.err // io.EOF: the scanners read it all
	}
	return b.s.src.Read(p)
}

func (b *overrideReplay) Close() error {
	b.once.Do(func() {
		b.s.release()
		b.closeErr = b.s.src.Close()
	})
	return b.closeErr
}

// scanFormBody checks an application/x-www-form-urlencoded body.
func scanFormBody(rd io.Reader, allows func(string) bool) *Refusal {
	f := overrideForm{allows: allows}
	buf := make([]byte, 32<<10)
	for {
		n, err := rd.Read(buf)
		if n > 0 && !f.feed(buf[:n]) {
			return errForbidden
		}
		if err != nil {
			break
		}
	}
	if !f.finish() {
		return errForbidden
	}
	return nil
}

// overrideForm scans urlencoded pairs as they stream by, decoding as PHP
// does: '&' alone separates pairs, the first '=' ends the name, '+' is a
// space and a bad escape stands for itself. Go skips a pair with a bad
// escape or a ';', so whatever Go reads this reads too.
type overrideForm struct {
	allows   func(string) bool
	name     overrideName
	value    overrideValue
	inValue  bool // after the '=' of a name that counts
	skipping bool // after the '=' of one that does not
	pct      int8 // 1 after '%', 2 after '%' and a hex digit
	hi       byte // that digit
}

// feed scans p; false means a named method is not allowed.
func (f *overrideForm) feed(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if f.skipping {
			j := bytes.IndexByte(p[i:], '&')
			if j < 0 {
				return true
			}
			i += j
		}
		if !f.step(p[i]) {
			return false
		}
	}
	return true
}

func (f *overrideForm) step(c byte) bool {
	if f.pct != 0 {
		if h, ok := unhexOverride(c); ok {
			if f.pct == 1 {
				f.pct, f.hi = 2, c
				return true
			}
			hi, _ := unhexOverride(f.hi)
			f.pct = 0
			f.emit(hi<<4 | h)
			return true
		}
		f.flushPct()
	}
	switch c {
	case '&':
		return f.endPair()
	case '=':
		if f.inValue {
			f.emit(c)
		} else if f.name.counts() {
			f.inValue = true
		} else {
			f.skipping = true
		}
	case '+':
		f.emit(' ')
	case '%':
		f.pct = 1
	default:
		f.emit(c)
	}
	return true
}

func (f *overrideForm) emit(c byte) {
	if f.inValue {
		f.value.add(c)
	} else {
		f.name.add(c)
	}
}

// flushPct emits an unfinished escape as it was.
func (f *overrideForm) flushPct() {
	pct := f.pct
	f.pct = 0
	if pct > 0 {
		f.emit('%')
	}
	if pct > 1 {
		f.emit(f.hi)
	}
}

func (f *overrideForm) endPair() bool {
	f.flushPct()
	ok := !f.inValue || f.value.allowed(f.allows)
	f.name.reset()
	f.value.reset()
	f.inValue, f.skipping = false, false
	return ok
}

// finish ends the last pair.
func (f *overrideForm) finish() bool { return f.endPair() }

// scanMultipartBody checks a multipart body part by part, keeping at most
// overrideValueKeep bytes of a part that names a method.
func scanMultipartBody(rd io.Reader, boundary string, allows func(string) bool) *Refusal {
	mr := multipart.NewReader(rd, boundary)
	var buf [512]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errOverrideMultipart
		}
		if overridePartCounts(p) {
			var v overrideValue
			for !v.over {
				n, err := p.Read(buf[:])
				for _, c := range buf[:n] {
					v.add(c)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return errOverrideMultipart
				}
			}
			if !v.allowed(allows) {
				return errForbidden
			}
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return errOverrideMultipart
		}
	}
}

// overridePartCounts reports whether a part's name counts, whatever its
// disposition type (PHP and Rack ignore it, where FormName wants
// form-data), as mime reads the name and as the lenient parsers do.
func overridePartCounts(p *multipart.Part) bool {
	for _, cd := range p.Header["Content-Disposition"] {
		if _, params, err := mime.ParseMediaType(cd); err == nil && overrideNameCounts(params["name"], false) {
			return true
		}
		if overrideLenientName(cd) {
			return true
		}
	}
	return false
}

// overrideLenientName reports whether some name parameter of cd counts as
// PHP reads it (skipping junk, up to ';', quotes with backslash escapes),
// as Rack's regex does (a token) or, for name*=, percent-decoded.
func overrideLenientName(cd string) bool {
	for i := 0; ; {
		j := overrideFoldIndex(cd[i:], "name")
		if j < 0 {
			return false
		}
		j += i
		i = j + len("name")
		if j > 0 && !strings.ContainsRune("; \t", rune(cd[j-1])) {
			continue // filename=
		}
		rest := cd[i:]
		star := strings.HasPrefix(rest, "*")
		if star {
			rest = rest[1:]
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		switch {
		case star:
			if end := strings.IndexAny(rest, "; \t"); end >= 0 {
				rest = rest[:end]
			}
			if k := strings.LastIndexByte(rest, '\''); k >= 0 {
				rest = rest[k+1:] // charset'language'
			}
			if overrideNameCounts(rest, true) {
				return true
			}
		case strings.HasPrefix(rest, `"`) || strings.HasPrefix(rest, "'"):
			// PHP unescapes only the quote and '\\', RFC 9110 any byte.
			q := rest[0]
			var php, rfc strings.Builder
			for k := 1; k < len(rest) && rest[k] != q; k++ {
				c := rest[k]
				if c == '\\' && k+1 < len(rest) {
					k++
					if rest[k] != q && rest[k] != '\\' {
						php.WriteByte(c)
					}
					c = rest[k]
				}
				php.WriteByte(c)
				rfc.WriteByte(c)
			}
			if overrideNameCounts(php.String(), false) || overrideNameCounts(rfc.String(), false) {
				return true
			}
		default:
			upTo := rest
			if end := strings.IndexByte(upTo, ';'); end >= 0 {
				upTo = upTo[:end]
			}
			token := upTo
			if end := strings.IndexAny(token, " \t,\"'"); end >= 0 {
				token = token[:end]
			}
			if overrideNameCounts(upTo, false) || overrideNameCounts(token, false) {
				return true
			}
		}
	}
}

// scanJSONBody checks the members of a JSON body's top-level object.
func scanJSONBody(rd io.Reader, allows func(string) bool) *Refusal {
	j := overrideJSON{br: bufio.NewReaderSize(rd, 32<<10)}
	if !j.object(allows) {
		return errForbidden
	}
	return nil
}

// overrideJSON streams through JSON without keeping any of it but what a
// counting name and its value need. It is lenient where a strict parser
// would stop (bad escapes, raw control bytes, odd literals): going on
// can only find more. Where it cannot make sense of the text it stops and
// lets the body pass, since the upstream cannot parse it either; every
// member found before was checked as it came.
type overrideJSON struct {
	br *bufio.Reader
}

// overrideSink takes the decoded bytes of a JSON string.
type overrideSink interface{ add(byte) }

// object reports false if a member of the top-level object names a method
// that allows refuses.
func (j *overrideJSON) object(allows func(string) bool) bool {
	if b, err := j.br.Peek(3); err == nil && string(b) == "\xEF\xBB\xBF" {
		j.br.Discard(3) // a BOM: body-parser drops it
	}
	c, ok := j.next()
	if !ok || c != '{' {
		return true // only an object has members
	}
	if c, ok = j.next(); !ok || c == '}' {
		return true
	}
	var name overrideName
	var value overrideValue
	for {
		if c != '"' {
			return true
		}
		name.reset()
		if !j.str(&name) {
			return true
		}
		if c, ok = j.next(); !ok || c != ':' {
			return true
		}
		if c, ok = j.next(); !ok {
			return true
		}
		if c == '"' && name.counts() {
			value.reset()
			done := j.str(&value)
			if !value.allowed(allows) {
				return false // even a cut-off value is checked
			}
			if !done {
				return true
			}
		} else if !j.skip(c) {
			return true // a value that is not a string names no method
		}
		if c, ok = j.next(); !ok || c != ',' {
			return true // '}' or broken: either way the end
		}
		if c, ok = j.next(); !ok {
			return true
		}
	}
}

// next returns the next byte that is not white space.
func (j *overrideJSON) next() (byte, bool) {
	for {
		c, err := j.br.ReadByte()
		if err != nil {
			return 0, false
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, true
		}
	}
}

// str reads the rest of a string whose opening quote was read, giving its
// decoded bytes to sink (nil: skip them); false if the text ends first.
func (j *overrideJSON) str(sink overrideSink) bool {
	for {
		if j.br.Buffered() == 0 {
			if _, err := j.br.Peek(1); err != nil {
				return false
			}
		}
		buf, _ := j.br.Peek(j.br.Buffered())
		i := 0
		for i < len(buf) && buf[i] != '"' && buf[i] != '\\' {
			if sink != nil {
				sink.add(buf[i])
			}
			i++
		}
		if i == len(buf) {
			j.br.Discard(i)
			continue
		}
		quote := buf[i] == '"'
		j.br.Discard(i + 1)
		if quote {
			return true
		}
		e, err := j.br.ReadByte()
		if err != nil {
			return false
		}
		switch e {
		case 'b':
			e = '\b'
		case 'f':
			e = '\f'
		case 'n':
			e = '\n'
		case 'r':
			e = '\r'
		case 't':
			e = '\t'
		case 'u':
			e = j.hex4()
		}
		if sink != nil {
			sink.add(e)
		}
	}
}

// hex4 reads the digits of a \u escape: the byte for an ASCII code point,
// 0x80 (no ASCII byte, so never part of a counting name) for any other.
func (j *overrideJSON) hex4() byte {
	var r rune
	for k := 0; k < 4; k++ {
		c, err := j.br.ReadByte()
		if err != nil {
			return 0x80
		}
		h, ok := unhexOverride(c)
		if !ok {
			j.br.UnreadByte()
			return 0x80
		}
		r = r<<4 | rune(h)
	}
	if r < 0x80 {
		return byte(r)
	}
	return 0x80
}

// skip reads past the value that starts with c, nested ones counted by
// depth rather than kept; false if the text ends or breaks first.
func (j *overrideJSON) skip(c byte) bool {
	depth := 0
	for {
		switch {
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth < 0 {
				return false
			}
		case c == '"':
			if !j.str(nil) {
				return false
			}
		case c == ',' || c == ':':
			if depth == 0 {
				return false
			}
		case overrideLiteral(c):
			for {
				b, err := j.br.Peek(1)
				if err != nil || !overrideLiteral(b[0]) {
					break
				}
				j.br.Discard(1)
			}
		default:
			return false
		}
		if depth == 0 {
			return true
		}
		var ok bool
		if c, ok = j.next(); !ok {
			return false
		}
	}
}

// overrideLiteral reports whether c may be part of a number or literal.
func overrideLiteral(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}
