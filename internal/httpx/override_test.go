package httpx

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/authgate/authgate/store"
)

var (
	overrideCreateKey = func(m string) bool { return store.PermCreate.Allows(m) }
	overrideReadKey   = func(m string) bool { return store.PermRead.Allows(m) }
)

// overrideTemp makes the spool write into a directory of the test's own,
// which must be empty whenever one looks: files are unlinked at once.
func overrideTemp(t *testing.T) {
	t.Helper()
	old := overrideTempDir
	overrideTempDir = t.TempDir()
	t.Cleanup(func() { overrideTempDir = old })
}

func overrideRequest(method, query, ctype string, body []byte) *http.Request {
	r := httptest.NewRequest(method, "/app/x", nil)
	r.URL.RawQuery = query
	r.Body, r.ContentLength = http.NoBody, 0
	if body != nil {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	return r
}

// overrideCheck runs checkMethodParams and returns the refusal's status, or
// 0 after making sure the upstream would read body byte for byte, with the
// same Content-Length, and that Close frees the spool.
func overrideCheck(t *testing.T, r *http.Request, body []byte, allows func(string) bool) int {
	t.Helper()
	cl := r.ContentLength
	aerr := checkMethodParams(r, allows)
	overrideNoFiles(t)
	if aerr != nil {
		return aerr.Status
	}
	if r.ContentLength != cl {
		t.Errorf("ContentLength %d, want %d", r.ContentLength, cl)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("reading the replayed body: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(body) {
		t.Errorf("upstream body differs: %d bytes, want %d", len(got), len(body))
	}
	rb, replayed := r.Body.(*overrideReplay)
	if err := r.Body.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if replayed && rb.s.file != nil {
		if _, err := rb.s.file.Stat(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Close left the spool file open: %v", err)
		}
	}
	return 0
}

func overrideNoFiles(t *testing.T) {
	t.Helper()
	if overrideTempDir == "" {
		return
	}
	if ents, err := os.ReadDir(overrideTempDir); err != nil || len(ents) != 0 {
		t.Errorf("spool directory holds %d entries (%v)", len(ents), err)
	}
}

// overrideVariants are parameter strings with, for a create-only and a
// read-only key, the status checkMethodParams answers (0: allowed).
var overrideVariants = []struct {
	params       string
	create, read int
}{
	{"_method=DELETE", 403, 403},
	{"_METHOD=delete", 403, 403},
	{"%5Fmethod=DELETE", 403, 403},
	{"%5fmethod=put", 403, 403},
	{"_%6Dethod=DELETE", 403, 403},
	{"%5F%6D%65%74%68%6F%64=DELETE", 403, 403},
	{".method=DELETE", 403, 403},
	{"+_method=DELETE", 403, 403},
	{"%20method=DELETE", 403, 403},
	{"[method=PATCH", 403, 403},
	{"_method%00junk=DELETE", 403, 403},
	{"X-HTTP-Method-Override=DELETE", 403, 403},
	{"x_http_method=delete", 403, 403},
	{"_method=%20DELETE%20", 403, 403},
	{"_method=%44ELETE", 403, 403},
	{"_method=DELETE;x=1", 403, 403},
	{"_method=%zzDELETE", 403, 403},
	{"%zz&_method=DELETE", 403, 403},
	{"_method=PROPFIND", 403, 403},
	{"_method=" + strings.Repeat("A", 100), 403, 403},
	{"_method=opt%C4%B1ons", 403, 403}, // "optıons": ASCII upper-casing only
	{"_method=POST", 0, 403},
	{"_method=P%4FST", 0, 403},
	{"_method=" + strings.Repeat("+", 300) + "GET", 403, 0},
	{"_method=GET", 403, 0},
	{"_method=", 0, 0},
	{"_method", 0, 0},
	{"_method=++", 0, 0},
	{"x_method=DELETE", 0, 0},
	{"_methods=DELETE", 0, 0},
	{"method=DELETE", 0, 0},
	{"a=1&b=_method%3DDELETE", 0, 0},
	{"_method=POST&_method=DELETE", 403, 403},
	{"_method=DELETE&_method=POST", 403, 403},
	{"a=1&_method=POST&b=2", 0, 403},
	{"a=1&b=2", 0, 0},
}

func TestOverrideQuery(t *testing.T) {
	for _, c := range overrideVariants {
		for _, k := range []struct {
			name   string
			allows func(string) bool
			want   int
		}{{"create", overrideCreateKey, c.create}, {"read", overrideReadKey, c.read}} {
			r := overrideRequest("POST", c.params, "", nil)
			if got := overrideCheck(t, r, nil, k.allows); got != k.want {
				t.Errorf("%s key, query %q: %d, want %d", k.name, c.params, got, k.want)
			}
		}
	}
}

func TestOverrideFormBody(t *testing.T) {
	overrideTemp(t)
	const form = "application/x-www-form-urlencoded"
	for _, c := range overrideVariants {
		for _, k := range []struct {
			name   string
			allows func(string) bool
			want   int
		}{{"create", overrideCreateKey, c.create}, {"read", overrideReadKey, c.read}} {
			body := []byte(c.params)
			if got := overrideCheck(t, overrideRequest("POST", "", form, body), body, k.allows); got != k.want {
				t.Errorf("%s key, body %q: %d, want %d", k.name, c.params, got, k.want)
			}
			r := overrideRequest("POST", "", "Application/X-WWW-Form-Urlencoded; charset=UTF-8", body)
			r.ContentLength = -1 // chunked
			if got := overrideCheck(t, r, body, k.allows); got != k.want {
				t.Errorf("%s key, chunked body %q: %d, want %d", k.name, c.params, got, k.want)
			}
		}
	}

	big := bytes.Repeat([]byte("field=abcdefghij&"), 5<<20/17)
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"_method at the end of 5 MiB", append(append([]byte{}, big...), "_method=DELETE"...), 403},
		{"_method=POST at the end of 5 MiB", append(append([]byte{}, big...), "_method=POST"...), 0},
		{"5 MiB without _method", big, 0},
		{"100000 leading '+'", []byte("a=1&" + strings.Repeat("+", 100000) + "_method=DELETE"), 403},
		{"100000 leading %20", []byte(strings.Repeat("%20", 100000) + "_method=DELETE"), 403},
		{"a 2 MiB name", []byte(strings.Repeat("n", 2<<20) + "=DELETE&_method=POST"), 0},
		{"a 2 MiB value before", []byte("v=" + strings.Repeat("x", 2<<20) + "&_method=delete"), 403},
	} {
		r := overrideRequest("POST", "", form, c.body)
		if got := overrideCheck(t, r, c.body, overrideCreateKey); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
		r = overrideRequest("POST", "", form, c.body)
		r.ContentLength = -1
		if got := overrideCheck(t, r, c.body, overrideCreateKey); got != c.want {
			t.Errorf("%s, chunked: %d, want %d", c.name, got, c.want)
		}
	}
}

// The spool lands in an unlinked file past 1 MiB, which Close closes, and
// a refusal frees it too.
func TestOverrideSpoolFile(t *testing.T) {
	overrideTemp(t)
	body := append(bytes.Repeat([]byte("x=1&"), 2<<20/4), "_method=POST"...)
	r := overrideRequest("POST", "", "application/x-www-form-urlencoded", body)
	if aerr := checkMethodParams(r, overrideCreateKey); aerr != nil {
		t.Fatalf("refused: %v", aerr)
	}
	rb, ok := r.Body.(*overrideReplay)
	if !ok || rb.s.file == nil || len(rb.s.mem) != overrideMemKeep || rb.s.n != int64(len(body)) {
		t.Fatalf("body not spooled to a file past %d bytes", overrideMemKeep)
	}
	overrideNoFiles(t)
	got, _ := io.ReadAll(r.Body)
	if !bytes.Equal(got, body) {
		t.Error("replayed body differs")
	}
	r.Body.Close()
	if _, err := rb.s.file.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("file open after Close: %v", err)
	}

	fds := func() int { ents, _ := os.ReadDir("/proc/self/fd"); return len(ents) }
	before := fds()
	for range 5 {
		body := append(bytes.Repeat([]byte("x=1&"), 2<<20/4), "_method=DELETE"...)
		if got := overrideCheck(t, overrideRequest("POST", "", "application/x-www-form-urlencoded", body), body, overrideCreateKey); got != 403 {
			t.Fatalf("refusal: %d", got)
		}
	}
	if after := fds(); after > before {
		t.Errorf("refusals leaked %d file descriptors", after-before)
	}
}

// A scanner that stops early (a JSON array names nothing) leaves the rest
// of the body unread: the upstream reads it from the client.
func TestOverrideReplaysTheUnreadRest(t *testing.T) {
	overrideTemp(t)
	body := []byte("[" + strings.Repeat(`"_method",`, 3<<20/10) + "1]")
	src := &overrideCounting{r: bytes.NewReader(body)}
	r := overrideRequest("POST", "", "application/json", nil)
	r.Body, r.ContentLength = src, -1
	if aerr := checkMethodParams(r, overrideCreateKey); aerr != nil {
		t.Fatalf("refused: %v", aerr)
	}
	if src.n > 64<<10 {
		t.Errorf("read %d bytes to scan a body it could stop at after one", src.n)
	}
	got, err := io.ReadAll(r.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("replayed %d bytes (%v), want the %d sent", len(got), err, len(body))
	}
	r.Body.Close()
}

type overrideCounting struct {
	r *bytes.Reader
	n int
}

func (c *overrideCounting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *overrideCounting) Close() error { return nil }

// overrideSized is a body of n bytes that records how much was read.
type overrideSized struct {
	n, read int64
}

func (b *overrideSized) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), b.n-b.read)
	for i := range p[:k] {
		p[i] = 'a'
	}
	b.read += k
	return int(k), nil
}

func (b *overrideSized) Close() error { return nil }

func TestOverrideBodyLimits(t *testing.T) {
	overrideTemp(t)
	const form = "application/x-www-form-urlencoded"

	src := &overrideSized{n: 70 << 20}
	r := overrideRequest("POST", "", form, nil)
	r.Body, r.ContentLength = src, src.n
	if got := overrideCheck(t, r, nil, overrideCreateKey); got != 413 || src.read != 0 {
		t.Errorf("70 MiB with Content-Length: %d after reading %d bytes, want 413 unread", got, src.read)
	}
	src = &overrideSized{n: 70 << 20}
	r = overrideRequest("POST", "", form, nil)
	r.Body, r.ContentLength = src, -1
	if got := overrideCheck(t, r, nil, overrideCreateKey); got != 413 || src.read > overrideMaxBody+64<<10 {
		t.Errorf("70 MiB chunked: %d after reading %d bytes, want 413", got, src.read)
	}
	src = &overrideSized{n: overrideMaxBody}
	r = overrideRequest("POST", "", form, nil)
	r.Body, r.ContentLength = src, -1
	if aerr := checkMethodParams(r, overrideCreateKey); aerr != nil {
		t.Errorf("exactly 64 MiB chunked: %v", aerr)
	} else if n, _ := io.Copy(io.Discard, r.Body); n != overrideMaxBody {
		t.Errorf("exactly 64 MiB replays %d bytes", n)
	}
	r.Body.Close()

	// request_body max_size before us: too large, not unreadable.
	w := httptest.NewRecorder()
	r = overrideRequest("POST", "", form, []byte(strings.Repeat("a", 100)))
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	if got := overrideCheck(t, r, nil, overrideCreateKey); got != 413 {
		t.Errorf("over MaxBytesReader: %d, want 413", got)
	}

	// The client hangs up.
	r = overrideRequest("POST", "", form, nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("a=1&b=2"), overrideFailing{}))
	r.ContentLength = 100
	if got := overrideCheck(t, r, nil, overrideCreateKey); got != 400 {
		t.Errorf("read error: %d, want 400", got)
	}
}

type overrideFailing struct{}

func (overrideFailing) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

const overrideBoundaryText = "XyZzy42"

// overrideMultipart builds a multipart body from raw part headers and
// contents.
func overrideMultipart(parts ...string) []byte {
	var b bytes.Buffer
	for i := 0; i < len(parts); i += 2 {
		fmt.Fprintf(&b, "--%s\r\n%s\r\n\r\n%s\r\n", overrideBoundaryText, parts[i], parts[i+1])
	}
	fmt.Fprintf(&b, "--%s--\r\n", overrideBoundaryText)
	return b.Bytes()
}

func TestOverrideMultipart(t *testing.T) {
	overrideTemp(t)
	ct := "multipart/form-data; boundary=" + overrideBoundaryText
	file := strings.Repeat("0123456789abcdef", 3<<20/16)
	filePart := `Content-Disposition: form-data; name="upload"; filename="big.bin"` + "\r\nContent-Type: application/octet-stream"
	named := func(v string) []string { return []string{`Content-Disposition: form-data; name="_method"`, v} }
	for _, c := range []struct {
		name string
		ct   string
		body []byte
		want int
	}{
		{"before a 3 MiB file", ct, overrideMultipart(append(named("DELETE"), filePart, file)...), 403},
		{"after a 3 MiB file", ct, overrideMultipart(append([]string{filePart, file}, named("delete")...)...), 403},
		{"POST after a 3 MiB file", ct, overrideMultipart(append([]string{filePart, file}, named("POST")...)...), 0},
		{"a 3 MiB file alone", ct, overrideMultipart(filePart, file), 0},
		{"spaced value", ct, overrideMultipart(named(" \tput \r\n")...), 403},
		{"empty value", ct, overrideMultipart(named("")...), 0},
		{"a file named _method", ct, overrideMultipart(`Content-Disposition: form-data; name="_method"; filename="m.txt"`, "DELETE"), 403},
		{"RFC 2231", ct, overrideMultipart(`Content-Disposition: form-data; name*=utf-8''%5Fmethod`, "DELETE"), 403},
		{"RFC 2231, a charset mime drops", ct, overrideMultipart(`Content-Disposition: form-data; name*=iso-8859-1'en'%5Fmethod`, "DELETE"), 403},
		{"unquoted .method", ct, overrideMultipart(`Content-Disposition: form-data; name=.method`, "DELETE"), 403},
		{"attachment disposition", ct, overrideMultipart(`Content-Disposition: attachment; name="_method"`, "DELETE"), 403},
		{"junk parameter (PHP reads on)", ct, overrideMultipart(`Content-Disposition: form-data; name="_method"; junk`, "DELETE"), 403},
		{"two names (PHP takes the last)", ct, overrideMultipart(`Content-Disposition: form-data; name="a"; name="_METHOD"`, "DELETE"), 403},
		{"escaped quote", ct, overrideMultipart(`Content-Disposition: form-data; name="_meth\od"`, "DELETE"), 403},
		{"other names", ct, overrideMultipart(`Content-Disposition: form-data; name="x_method"`, "DELETE", `Content-Disposition: form-data; name="a"; filename="_method"`, "DELETE"), 0},
		{"two, one bad", ct, overrideMultipart(append(named("POST"), named("PATCH")...)...), 403},
		{"a long value", ct, overrideMultipart(named("POST" + strings.Repeat(" x", 100))...), 403},
		{"multipart/mixed", "multipart/mixed; boundary=" + overrideBoundaryText, overrideMultipart(named("DELETE")...), 403},
		{"no final boundary", ct, []byte("--" + overrideBoundaryText + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"), 400},
		{"no boundary at all", ct, []byte("_method=DELETE"), 400},
		{"malformed part header", ct, []byte("--" + overrideBoundaryText + "\r\nno colon here\r\n\r\nx\r\n--" + overrideBoundaryText + "--\r\n"), 400},
		{"missing boundary", "multipart/form-data", overrideMultipart(named("POST")...), 400},
		{"two boundaries", ct + "; x=\"boundary=other\"", overrideMultipart(named("POST")...), 400},
		{"unparsable type (PHP cuts at ',')", "multipart/form-data; boundary=" + overrideBoundaryText + ", text/plain", overrideMultipart(named("DELETE")...), 403},
	} {
		r := overrideRequest("POST", "", c.ct, c.body)
		if got := overrideCheck(t, r, c.body, overrideCreateKey); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestOverrideJSON(t *testing.T) {
	overrideTemp(t)
	huge := `"` + strings.Repeat(`ab\"\\`, 4<<20/6) + `"`
	for _, c := range []struct {
		name, ct, body string
		want           int
	}{
		{"plain", "application/json", `{"_method":"DELETE"}`, 403},
		{"escaped name", "application/json", `{"\u005fmethod":"DELETE"}`, 403},
		{"escaped value", "application/json", `{"_method":"\u0044ELETE"}`, 403},
		{"spaced", "application/json", " {\n\t\"_method\" : \" put \" } ", 403},
		{"POST", "application/json", `{"_method":"POST"}`, 0},
		{"nested", "application/json", `{"a":{"_method":"DELETE"}}`, 0},
		{"after nesting", "application/json", `{"a":[1,2,{"b":"x\"y"}],"_method":"delete"}`, 403},
		{"after literals", "application/json", `{"a":true,"b":null,"c":-1.5e+3,"d":[],"e":{},"_method":"DELETE"}`, 403},
		{"after a 4 MiB string", "application/json", `{"a":` + huge + `,"_method":"DELETE"}`, 403},
		{"POST after a 4 MiB string", "application/json", `{"a":` + huge + `,"_method":"POST"}`, 0},
		{"a 4 MiB name", "application/json", `{` + huge + `:"DELETE","x":1}`, 0},
		{"+json", "application/vnd.api+json", `{"_method":"DELETE"}`, 403},
		{"Laravel's /json anywhere", "text/plain; x=/json", `{"_method":"DELETE"}`, 403},
		{"BOM", "application/json", "\xEF\xBB\xBF{\"_method\":\"DELETE\"}", 403},
		{"duplicates, one bad", "application/json", `{"_method":"POST","_method":"DELETE"}`, 403},
		{"not a string", "application/json", `{"_method":["DELETE"],"x":{"_method":1}}`, 0},
		{"array at the top", "application/json", `[{"_method":"DELETE"}]`, 0},
		{"invalid", "application/json", `{"_method" "DELETE"}`, 0},
		{"invalid after", "application/json", `{"a":1,,"_method":"DELETE"}`, 0},
		{"not JSON", "application/json", `_method=DELETE`, 0},
		{"truncated", "application/json", `{"a":[1,2`, 0},
		{"cut-off value", "application/json", `{"_method":"DELE`, 403},
		{"checked before the break", "application/json", `{"_method":"DELETE",}}}`, 403},
		{"a form in JSON", "application/x-www-form-urlencoded; x=+json", `{"a":"&_method=DELETE&"}`, 403},
	} {
		body := []byte(c.body)
		if got := overrideCheck(t, overrideRequest("POST", "", c.ct, body), body, overrideCreateKey); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func TestOverrideContentTypes(t *testing.T) {
	overrideTemp(t)
	body := []byte("_method=DELETE")
	for _, c := range []struct {
		name, method, ct string
		hdr              http.Header
		want             int
	}{
		{"text/plain", "POST", "text/plain", nil, 0},
		{"octet-stream", "POST", "application/octet-stream", nil, 0},
		{"broken type", "POST", "text/plain; ===", nil, 0},
		{"no type, POST (Rack parses a form)", "POST", "", nil, 403},
		{"no type, PUT", "PUT", "", nil, 0},
		{"form with a space (PHP)", "POST", "application/x-www-form-urlencoded foo", nil, 403},
		{"form, comma list", "POST", "application/x-www-form-urlencoded, text/plain", nil, 403},
		{"two Content-Types", "POST", "", http.Header{"Content-Type": {"text/plain", "application/x-www-form-urlencoded"}}, 400},
		{"gzip", "POST", "application/x-www-form-urlencoded", http.Header{"Content-Encoding": {"gzip"}}, 415},
		{"identity", "POST", "application/x-www-form-urlencoded", http.Header{"Content-Encoding": {"identity"}}, 403},
		{"gzip text", "POST", "text/plain", http.Header{"Content-Encoding": {"gzip"}}, 0},
		{"utf-16", "POST", "application/json; charset=utf-16", nil, 415},
		{"latin1", "POST", "application/x-www-form-urlencoded; charset=ISO-8859-1", nil, 403},
	} {
		r := overrideRequest(c.method, "", c.ct, body)
		for k, v := range c.hdr {
			r.Header[k] = v
		}
		orig := r.Body
		if got := overrideCheck(t, r, body, overrideCreateKey); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		} else if c.want == 0 && c.ct != "" && !strings.Contains(c.ct, "json") && r.Body != orig {
			t.Errorf("%s: body replaced though not scanned", c.name)
		}
	}
}

func TestOverrideNameRule(t *testing.T) {
	for name, want := range map[string]bool{
		"_method": true, "_METHOD": true, ".method": true, "[method": true, " method": true,
		"  _method": true, "   method": true, " .Method": true, "_method\x00x": true,
		"X-HTTP-Method-Override": true, "x_method_override": true, "X-Http-Method": true,
		"method": false, "_methods": false, "x_method": false, "__method": false, "_method ": false,
		"": false, "_": false, "\x00_method": false, "-method": false, "_metho": false,
	} {
		if got := overrideNameCounts(name, false); got != want {
			t.Errorf("%q counts: %v, want %v", name, got, want)
		}
	}
}

// overrideNoneRequest is what most requests look like: no method in the
// query, a body no framework reads parameters from.
func overrideNoneRequest() *http.Request {
	r := overrideRequest("POST", "page=2&sort=name&q=x%20y", "application/octet-stream", []byte("_method=DELETE"))
	r.URL.RawQuery = "page=2&sort=name"
	return r
}

func TestOverrideNoneAllocatesNothing(t *testing.T) {
	r := overrideNoneRequest()
	empty := overrideRequest("GET", "id=1", "", nil)
	if n := testing.AllocsPerRun(100, func() {
		if checkMethodParams(r, overrideCreateKey) != nil || checkMethodParams(empty, overrideCreateKey) != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkCheckMethodParamsNone(b *testing.B) {
	r := overrideNoneRequest()
	b.ReportAllocs()
	for b.Loop() {
		if checkMethodParams(r, overrideCreateKey) != nil {
			b.Fatal("refused")
		}
	}
}

// A body checked twice (a restricted key's permissions, then a require
// rule's methods) is scanned again from the one spool: no second spool,
// the second check's own verdict, and the upstream still reads it whole.
func TestOverrideCheckedTwiceSpoolsOnce(t *testing.T) {
	overrideTemp(t)
	body := append(bytes.Repeat([]byte("x=1&"), 2<<20/4), "_method=HEAD"...)
	r := overrideRequest("POST", "", "application/x-www-form-urlencoded", body)
	done, err := CheckMethodParams(r, overrideReadKey)
	if err != nil || done == nil {
		t.Fatalf("first check: %v", err)
	}
	first := r.Body.(*overrideReplay)
	headOnly := func(m string) bool { return m == "HEAD" }
	if done2, err := CheckMethodParams(r, headOnly); err != nil || done2 == nil || r.Body != first {
		t.Fatalf("second check: %v, body replaced: %v", err, r.Body != first)
	}
	got, _ := io.ReadAll(r.Body)
	if !bytes.Equal(got, body) {
		t.Errorf("replayed body differs: %d bytes, want %d", len(got), len(body))
	}
	if err := done(); err != nil {
		t.Errorf("done: %v", err)
	}
	_ = done() // twice, as two deferred calls do
	overrideNoFiles(t)

	small := []byte("a=1&_method=HEAD")
	r = overrideRequest("POST", "", "application/x-www-form-urlencoded", small)
	if _, err := CheckMethodParams(r, overrideReadKey); err != nil {
		t.Fatalf("first check of the small body: %v", err)
	}
	if _, err := CheckMethodParams(r, func(m string) bool { return m == "GET" }); RefusalOf(err).Status != http.StatusForbidden {
		t.Errorf("a second check that refuses HEAD: %v, want a 403", err)
	}
}
