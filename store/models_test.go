package store

import "testing"

// Every method against every permission bit, from a table written out by
// hand (API.md section 3), not derived from Required: read=1 (GET, HEAD,
// OPTIONS), write=2 (PUT, PATCH), delete=4 (DELETE), create=8 (POST); any
// other method, and a method in the wrong case, needs all four.
func TestPermissionsByMethod(t *testing.T) {
	type bits = Permission
	const r, w, d, c = PermRead, PermWrite, PermDelete, PermCreate
	needs := map[string]bits{
		"GET": r, "HEAD": r, "OPTIONS": r,
		"PUT": w, "PATCH": w,
		"DELETE": d,
		"POST":   c,
		"TRACE":  r | w | d | c, "CONNECT": r | w | d | c, "PROPFIND": r | w | d | c,
		"get": r | w | d | c, "Delete": r | w | d | c, "": r | w | d | c,
	}
	for method, need := range needs {
		if got := Required(method); got != need {
			t.Errorf("Required(%q) = %v, want %v", method, got, need)
		}
	}
	// Single bits: each opens exactly its own methods.
	opens := map[bits][]string{
		r: {"GET", "HEAD", "OPTIONS"},
		w: {"PUT", "PATCH"},
		d: {"DELETE"},
		c: {"POST"},
	}
	for p, methods := range opens {
		for method := range needs {
			want := false
			for _, m := range methods {
				want = want || m == method
			}
			if got := p.Allows(method); got != want {
				t.Errorf("%s key, %q: Allows = %v, want %v", p, method, got, want)
			}
		}
	}
	// Every combination: a method is allowed when it is one of the opened
	// methods of one of the bits, or when all four are held.
	for p := Permission(0); p <= PermAll; p++ {
		for method := range needs {
			want := p == PermAll
			for bit, methods := range opens {
				if p&bit == 0 {
					continue
				}
				for _, m := range methods {
					want = want || m == method
				}
			}
			if got := p.Allows(method); got != want {
				t.Errorf("permissions %q, %q: Allows = %v, want %v", p, method, got, want)
			}
		}
	}
}

func TestParsePermissions(t *testing.T) {
	for in, want := range map[string]Permission{
		"read": PermRead, "write": PermWrite, "delete": PermDelete, "create": PermCreate,
		"read,write": PermRead | PermWrite, " Delete , CREATE ": PermDelete | PermCreate, "all": PermAll,
	} {
		if got, err := ParsePermissions(in); err != nil || got != want {
			t.Errorf("ParsePermissions(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "read,", "fly", "read,fly"} {
		if _, err := ParsePermissions(in); err == nil {
			t.Errorf("ParsePermissions(%q) accepted", in)
		}
	}
	if s := (PermWrite | PermDelete).String(); s != "write,delete" {
		t.Errorf("String = %q", s)
	}
}
