package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// kidOf reads the kid of a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func jwksKids(t *testing.T, g *gateway) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(g.app.issuer.Load().JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// Rotation: the new key signs, tokens signed by the old one keep working
// and its public key stays published, until every token it signed has
// expired; then pruning removes it.
func TestSigningKeyRotation(t *testing.T) {
	g := newGateway(t, nil)
	g.addUser("max", "pw-max-123")
	before := g.login("max", "pw-max-123")
	oldKid := kidOf(t, before.AccessToken)

	rotated, err := g.app.rotateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if rotated.KID == oldKid || !rotated.Signing {
		t.Fatalf("rotation gave %+v, old kid %s", rotated, oldKid)
	}
	after := g.login("max", "pw-max-123")
	if kid := kidOf(t, after.AccessToken); kid != rotated.KID {
		t.Fatalf("new token signed by %s, want the new key %s", kid, rotated.KID)
	}
	for _, tok := range []string{before.AccessToken, after.AccessToken} {
		if w := g.do(bearer("GET", "/app", tok)); w.Code != 200 {
			t.Fatalf("token after rotation: %d %s", w.Code, w.Body)
		}
	}
	if kids := jwksKids(t, g); len(kids) != 2 || kids[0] != rotated.KID || kids[1] != oldKid {
		t.Fatalf("JWKS kids %v, want [new old]", kids)
	}

	// Within the access token lifetime nothing is pruned.
	if n, err := g.app.pruneSigningKeys(); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) while old tokens may live", n, err)
	}
	later := time.Now().Add(time.Duration(g.app.AccessTTL) + 2*time.Minute)
	g.app.now = func() time.Time { return later }
	g.app.pruneAndReload()
	if kids := jwksKids(t, g); len(kids) != 1 || kids[0] != rotated.KID {
		t.Fatalf("JWKS kids after pruning %v, want only %s", kids, rotated.KID)
	}
	views, err := g.ops.listSigningKeys(g.app.SigningAlg)
	if err != nil || len(views) != 1 || !views[0].Signing {
		t.Fatalf("signing keys after pruning: %+v %v", views, err)
	}
}
