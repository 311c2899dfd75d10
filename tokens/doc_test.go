package tokens

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/store"
)

// TestDocsListEveryClaim keeps docs/tokens.md true: the names its Header
// and Claims tables list are exactly the names of a token's JOSE header
// and of its payload, with every optional claim present.
func TestDocsListEveryClaim(t *testing.T) {
	doc, err := os.ReadFile("../docs/tokens.md")
	if err != nil {
		t.Fatal(err)
	}
	i := newIssuer(t, Config{Issuer: "https://auth.example", Audience: "legacy", AccessTTL: ttl}, testKey(t, "ed", AlgEdDSA))
	token, _, err := i.Issue(Claims{
		UserID: "usr_1", Username: "alice", Roles: []string{"admin"},
		SessionID: "ses_1", Epoch: 3, Permissions: store.PermRead | store.PermCreate,
	}, t0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	for _, c := range []struct {
		section string
		segment string
	}{{"Header", parts[0]}, {"Claims", parts[1]}} {
		raw, err := base64.RawURLEncoding.DecodeString(c.segment)
		if err != nil {
			t.Fatal(err)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			t.Fatal(err)
		}
		inToken := slices.Sorted(maps.Keys(members))
		inDoc := docTableNames(t, string(doc), c.section)
		for _, name := range inToken {
			if !slices.Contains(inDoc, name) {
				t.Errorf("docs/tokens.md, section %s, does not list %q, which a token has", c.section, name)
			}
		}
		for _, name := range inDoc {
			if !slices.Contains(inToken, name) {
				t.Errorf("docs/tokens.md, section %s, lists %q, which no token has (the token has %v)", c.section, name, inToken)
			}
		}
	}
}

// docTableNames returns the first column's `names` of the first table in
// the "## <section>" section of a Markdown document.
func docTableNames(t *testing.T, doc, section string) []string {
	t.Helper()
	_, body, ok := strings.Cut(doc, "\n## "+section+"\n")
	if !ok {
		t.Fatalf("docs/tokens.md has no section %q", section)
	}
	if end := strings.Index(body, "\n## "); end >= 0 {
		body = body[:end]
	}
	row := regexp.MustCompile("^\\| `([a-z]+)` \\|")
	var names []string
	inTable := false
	for line := range strings.Lines(body) {
		if m := row.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
			inTable = true
		} else if inTable && !strings.HasPrefix(line, "|") {
			break
		}
	}
	if len(names) == 0 {
		t.Fatalf("docs/tokens.md, section %s, has no table of names", section)
	}
	return names
}
