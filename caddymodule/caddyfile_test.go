package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	// reverse_proxy, basic_auth, request_header... for the golden files.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden adapt files")

// TestAdaptGolden adapts each testdata/*.caddyfiletest (a Caddyfile, a line
// of dashes, the JSON it must adapt to) as `caddy adapt` does.
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok && !*update {
				t.Fatal("golden file lacks the ---------- separator")
			}
			adapter := caddyconfig.GetAdapter("caddyfile")
			out, warnings, err := adapter.Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := pretty.String() + "\n"
			if *update {
				if err := os.WriteFile(file, []byte(input+"\n----------\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("adapted JSON differs from the golden file\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	handlerCases := map[string]string{
		"argument on directive":    "authgate foo {\n}",
		"unknown subdirective":     "authgate {\n\tbogus\n}",
		"unknown dialect":          "authgate {\n\tapi soap /soap\n}",
		"api without prefix":       "authgate {\n\tapi plentymarkets\n}",
		"relative prefix":          "authgate {\n\tapi plentymarkets rest\n}",
		"allow without paths":      "authgate {\n\tallow\n}",
		"relative allow":           "authgate {\n\tallow health\n}",
		"jwks relative":            "authgate {\n\tjwks jwks.json\n}",
		"jwks two args":            "authgate {\n\tjwks /a /b\n}",
		"forward_credentials arg":  "authgate {\n\tforward_credentials yes\n}",
		"key header Authorization": "authgate {\n\tapi_key_header Authorization\n}",
		"key header authorization": "authgate {\n\tapi_key_header authorization\n}",
		"key header Proxy-Auth":    "authgate {\n\tapi_key_header Proxy-Authorization\n}",
		"key header Cookie":        "authgate {\n\tapi_key_header Cookie\n}",
		"key header colon":         "authgate {\n\tapi_key_header x-key:\n}",
		"health relative":          "authgate {\n\thealth health\n}",
		"health two args":          "authgate {\n\thealth /a /b\n}",
		"browser no prefix":        "authgate {\n\tbrowser\n}",
		"browser root":             "authgate {\n\tbrowser /\n}",
		"browser relative":         "authgate {\n\tbrowser auth\n}",
		"browser twice":            "authgate {\n\tbrowser /a\n\tbrowser /b\n}",
		"browser unknown option":   "authgate {\n\tbrowser /auth {\n\t\tcookie x\n\t}\n}",
		"browser bad idle":         "authgate {\n\tbrowser /auth {\n\t\tidle soon\n\t}\n}",
		"require nothing":          "authgate {\n\trequire\n}",
		"require no condition":     "authgate {\n\trequire /admin/*\n}",
		"require no pattern":       "authgate {\n\trequire roles admin\n}",
		"require relative":         "authgate {\n\trequire admin/* roles admin\n}",
		"require role typo":        "authgate {\n\trequire /admin/* role admin\n}",
		"require empty roles":      "authgate {\n\trequire /admin/* roles\n}",
		"require empty methods":    "authgate {\n\trequire /admin/* roles admin methods\n}",
		"require roles then none":  "authgate {\n\trequire /admin/* roles methods GET\n}",
		"require roles twice":      "authgate {\n\trequire /admin/* roles a roles b\n}",
		"require methods twice":    "authgate {\n\trequire /admin/* methods GET methods HEAD\n}",
		"require comma role":       "authgate {\n\trequire /admin/* roles admin,ops\n}",
		"require bad method":       "authgate {\n\trequire /admin/* methods GET/HEAD\n}",
	}
	for name, input := range handlerCases {
		t.Run("handler/"+name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
				t.Errorf("parsed without error: %q", input)
			}
		})
	}

	globalCases := map[string]string{
		"unknown option":    "authgate {\n\tbogus 1\n}",
		"bad alg":           "authgate {\n\tsigning_alg none\n}",
		"bad ttl":           "authgate {\n\taccess_ttl soon\n}",
		"negative ttl":      "authgate {\n\trefresh_ttl -1h\n}",
		"lockout one arg":   "authgate {\n\tlockout 5\n}",
		"lockout zero":      "authgate {\n\tlockout 0 5m\n}",
		"lockout bad dur":   "authgate {\n\tlockout 5 forever\n}",
		"db two args":       "authgate {\n\tdb a b\n}",
		"cache_entries bad": "authgate {\n\tcache_entries many\n}",
		"password_min zero": "authgate {\n\tpassword_min_length 0\n}",
		"password_min bad":  "authgate {\n\tpassword_min_length long\n}",
		"password_min two":  "authgate {\n\tpassword_min_length 8 12\n}",
		"store unknown":     "authgate {\n\tstore redis {\n\t}\n}",
		"store no backend":  "authgate {\n\tstore {\n\t}\n}",
		"store twice":       "authgate {\n\tstore bbolt {\n\t}\n\tstore bbolt {\n\t}\n}",
		"etcd no endpoints": "authgate {\n\tstore etcd {\n\t\tprefix /x/\n\t}\n}",
		"etcd bad endpoint": "authgate {\n\tstore etcd {\n\t\tendpoints 10.0.0.1:2379\n\t}\n}",
		"etcd bad prefix":   "authgate {\n\tstore etcd {\n\t\tendpoints http://a:2379\n\t\tprefix authgate\n\t}\n}",
		"etcd tls two":      "authgate {\n\tstore etcd {\n\t\tendpoints http://a:2379\n\t\ttls a b\n\t}\n}",
		"etcd password":     "authgate {\n\tstore etcd {\n\t\tendpoints http://a:2379\n\t\tusername u\n\t\tpassword hunter2\n\t}\n}",
		"etcd unknown":      "authgate {\n\tstore etcd {\n\t\tendpoints http://a:2379\n\t\tbogus 1\n\t}\n}",
		"bbolt unknown":     "authgate {\n\tstore bbolt {\n\t\tfile x.db\n\t}\n}",
	}
	for name, input := range globalCases {
		t.Run("global/"+name, func(t *testing.T) {
			var a App
			if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
				t.Errorf("parsed without error: %q", input)
			}
		})
	}
}

// The store options reach the app: store etcd with every option, and
// store bbolt as the long form of db.
func TestParseStore(t *testing.T) {
	var a App
	input := "authgate {\n\tstore etcd {\n\t\tendpoints https://10.0.0.1:2379 https://10.0.0.2:2379\n\t\tprefix /ag/\n\t\ttls c.crt c.key ca.crt\n\t\tusername u\n\t\tpassword {env.AG_PW}\n\t\tmax_stale 2s\n\t}\n}"
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
		t.Fatal(err)
	}
	e := a.Store.Etcd
	if a.Store.Backend != "etcd" || e == nil || len(e.Endpoints) != 2 || e.Prefix != "/ag/" || e.TLSCA != "ca.crt" ||
		e.Username != "u" || e.Password != "{env.AG_PW}" || time.Duration(e.MaxStale) != 2*time.Second {
		t.Errorf("store etcd parsed as %+v %+v", a.Store, e)
	}
	kind, id, err := a.storeBackend()
	if err != nil || kind != "etcd" || id != "etcd:https://10.0.0.1:2379,https://10.0.0.2:2379|/ag/" {
		t.Errorf("backend %q %q %v", kind, id, err)
	}
	var b App
	if err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser("authgate {\n\tstore bbolt {\n\t\tpath /tmp/x.db\n\t}\n}")); err != nil {
		t.Fatal(err)
	}
	if kind, id, err := b.storeBackend(); err != nil || kind != "bbolt" || id != "bbolt:/tmp/x.db" {
		t.Errorf("bbolt backend %q %q %v", kind, id, err)
	}
}
