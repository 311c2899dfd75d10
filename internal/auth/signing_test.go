package auth

import (
	"context"
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

func jwksKids(t *testing.T, s *Service) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
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
	e := newEnv(t)
	e.addUser("max", "pw-max-123")
	before := e.login("max", "pw-max-123")
	oldKid := kidOf(t, before.Access)

	rotated, err := e.svc.RotateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if rotated.KID == oldKid || !rotated.RetiredAt.IsZero() {
		t.Fatalf("rotation gave %+v, old kid %s", rotated, oldKid)
	}
	after := e.login("max", "pw-max-123")
	if kid := kidOf(t, after.Access); kid != rotated.KID {
		t.Fatalf("new token signed by %s, want the new key %s", kid, rotated.KID)
	}
	for _, tok := range []string{before.Access, after.Access} {
		if _, err := e.svc.AuthenticateBearer(tok); err != nil {
			t.Fatalf("token after rotation: %v", err)
		}
	}
	if kids := jwksKids(t, e.svc); len(kids) != 2 || kids[0] != rotated.KID || kids[1] != oldKid {
		t.Fatalf("JWKS kids %v, want [new old]", kids)
	}

	// Within the access token lifetime nothing is pruned.
	if n, err := e.svc.pruneSigningKeys(); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) while old tokens may live", n, err)
	}
	e.clock.add(e.svc.Config().AccessTTL + 2*time.Minute)
	e.svc.pruneAndReload()
	if kids := jwksKids(t, e.svc); len(kids) != 1 || kids[0] != rotated.KID {
		t.Fatalf("JWKS kids after pruning %v, want only %s", kids, rotated.KID)
	}
	keys, err := e.st.SigningKeys()
	if err != nil || len(keys) != 1 || keys[0].KID != rotated.KID {
		t.Fatalf("signing keys after pruning: %+v %v", keys, err)
	}
}

// A signing_alg change: the new configuration signs with a key of its
// algorithm, and the old algorithm's key is retired in the store (not just
// set aside in memory), so tokens it signed keep verifying until they
// expire and then it is pruned like any rotated key, out of the JWKS.
// Starting again on the same algorithm rotates nothing more.
func TestSigningAlgChangeRetiresTheOldKey(t *testing.T) {
	e := newEnv(t)
	e.addUser("ada", "pw-ada-1234")
	before := e.login("ada", "pw-ada-1234")
	oldKid := kidOf(t, before.Access)

	cfg := e.svc.Config()
	cfg.SigningAlg = "ES256"
	svc, err := New(e.st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	keys, err := e.st.SigningKeys()
	if err != nil || len(keys) != 2 {
		t.Fatalf("signing keys after the change: %+v %v, want the old and a new one", keys, err)
	}
	for _, k := range keys {
		switch {
		case k.KID == oldKid && k.RetiredAt.IsZero():
			t.Errorf("the EdDSA key is not retired in the store after signing_alg ES256")
		case k.KID != oldKid && (k.Alg != "ES256" || !k.RetiredAt.IsZero()):
			t.Errorf("the new key: %s retired %v, want an unretired ES256 key", k.Alg, k.RetiredAt)
		}
	}
	pair, err := svc.Login(context.Background(), "ada", "pw-ada-1234")
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, pair.Access); kid == oldKid {
		t.Error("the new configuration signs with the old algorithm's key")
	}
	if _, err := svc.AuthenticateBearer(before.Access); err != nil {
		t.Errorf("a token signed before the change: %v", err)
	}

	// Once more on ES256: nothing to retire, no new key.
	again, err := New(e.st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	if keys, _ := e.st.SigningKeys(); len(keys) != 2 {
		t.Errorf("a second start on ES256 made %d keys, want 2", len(keys))
	}

	e.clock.add(cfg.AccessTTL + 2*time.Minute)
	svc.pruneAndReload()
	if kids := jwksKids(t, svc); len(kids) != 1 || kids[0] == oldKid {
		t.Errorf("JWKS after the old tokens expired: %v, want only the ES256 key", kids)
	}
}
