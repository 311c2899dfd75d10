package timed_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/storetest"
	"github.com/authgate/authgate/store/timed"
)

// untimed are the Store methods the wrapper passes through on purpose.
var untimed = []string{"Generation", "ChangedSince", "SigningKeysChangedSince", "HasLegacyKeys", "Health", "Backend", "Close"}

// TestEveryOperationIsTimed: a method added to store.Store is timed, or
// listed above as deliberately untimed; an embedded pass-through would
// otherwise hide it from the histogram without a word.
func TestEveryOperationIsTimed(t *testing.T) {
	declared := map[string]bool{}
	f, err := parser.ParseFile(token.NewFileSet(), "timed.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil {
			declared[fn.Name.Name] = true
		}
	}
	iface := reflect.TypeFor[store.Store]()
	for i := range iface.NumMethod() {
		name := iface.Method(i).Name
		switch {
		case slices.Contains(untimed, name) && declared[name]:
			t.Errorf("%s is listed as untimed but timed.go overrides it", name)
		case !slices.Contains(untimed, name) && !declared[name]:
			t.Errorf("store.Store's %s is not timed: override it in timed.go or list it as untimed", name)
		}
	}
}

// TestReportsOperations: each call reports its method's name once, and
// the request path's feed calls report nothing.
func TestReportsOperations(t *testing.T) {
	var mu sync.Mutex
	var ops []string
	st := timed.New(storetest.NewMemory(), func(op string, d time.Duration) {
		if d < 0 {
			t.Errorf("%s took %v", op, d)
		}
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	})
	u := &store.User{Username: "tim"}
	if err := st.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UserByID(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UserByLogin("nobody"); err == nil {
		t.Fatal("an unknown login was found")
	}
	gen := st.Generation()
	_ = st.ChangedSince(gen, u.ID, "", "")
	_ = st.HasLegacyKeys()
	if want := []string{"CreateUser", "UserByID", "UserByLogin"}; !slices.Equal(ops, want) {
		t.Errorf("reported %v, want %v", ops, want)
	}
}

// TestConformance: the wrapper changes no behaviour.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return timed.New(storetest.NewMemory(), func(string, time.Duration) {})
	})
}
