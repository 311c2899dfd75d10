package auth

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/authgate/authgate/store"
)

// The caches hold principals by value; for ristretto's map to keep them
// inline (no allocation per entry for the garbage collector to visit), a
// principal must stay within principalMaxSize and hold a single pointer.
func TestPrincipalStaysSmallAndFlat(t *testing.T) {
	if size := unsafe.Sizeof(Principal{}); size > principalMaxSize {
		t.Errorf("Principal is %d bytes, more than %d: ristretto's map would allocate every entry", size, principalMaxSize)
	}
	typ := reflect.TypeFor[Principal]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name != "text" && hasPointers(f.Type) {
			t.Errorf("Principal.%s holds a pointer: only text may", f.Name)
		}
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan,
		reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// The text parts come back as they went in, including empty ones.
func TestPrincipalText(t *testing.T) {
	u := &store.User{ID: "usr_1", Username: "ada", Roles: []string{"admin", "ops"}}
	d := store.DigestOf("ag_secret")
	p := newPrincipal(&d, u, "key_9", "")
	if !p.of(&d) {
		t.Error("the principal is not of its own digest")
	}
	other := store.DigestOf("ag_other")
	if p.of(&other) {
		t.Error("the principal is of another digest")
	}
	want := map[textPart]string{
		partDigest: string(d[:]), partUserID: "usr_1", partUser: "ada", partEmail: "",
		partRoles: "admin,ops", partKeyID: "key_9", partSessionID: "",
	}
	for part, w := range want {
		if got := p.part(part); got != w {
			t.Errorf("part %d = %q, want %q", part, got, w)
		}
	}
}
