package e2e

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	agsecret "github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/tokens"
)

// TestAttack sends hostile requests to the built binary, one table entry
// each, and checks for every one the status, whether the upstream may be
// reached, and that nothing an attacker sent (a spoofed identity header, a
// credential) arrives upstream. It proves the properties of SECURITY.md by
// attack: forged and tampered tokens, bad API keys, spoofed identity and
// forwarding headers, path tricks against `allow`, conflicting credentials,
// hostile bodies on every auth route of both dialects, refresh-token
// replay, and lockout under spoofed client addresses.
//
// The spoof marker is "mallory": no header the upstream sees may contain it.
func TestAttack(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	tr := newTrailerUpstream(t)
	h2 := newH2CUpstream(t)
	evil := newAttackerKeyServer(t)
	g := newGateway(t, up)
	g.ConfigPath = writeAttackConfig(t, g, tr.port, h2.port)

	const (
		alicePW = "alice: attack surface is large"
		bobPW   = "bob: hostile input everywhere"
		carolPW = "carol: soon to be disabled"
		davePW  = "dave: soon to be deleted"
		erinPW  = "erin: password about to change"
		frankPW = "frank: the lockout target"
		bobPIN  = "73193119"
	)
	aliceID := g.AddUser(t, "alice", alicePW, "admin,ops", "alice@example.com")
	bobID := g.AddUser(t, "bob", bobPW, "dev", "bob@example.com")
	g.AddUser(t, "carol", carolPW, "dev", "carol@example.com")
	g.AddUser(t, "dave", davePW, "dev", "dave@example.com")
	g.AddUser(t, "erin", erinPW, "dev", "erin@example.com")
	g.AddUser(t, "frank", frankPW, "dev", "frank@example.com")
	secret(bobPIN)
	g.CLI(t, bobPIN+"\n", "user", "set-pin", "bob", "--pin-stdin")
	g.CLI(t, "", "user", "setting", "set", "bob", "tier", "bronze", "--read-only")

	aliceRead := g.CreateKey(t, "alice", "read", "read")
	createKey := g.CreateKey(t, "alice", "create", "create")
	writeKey := g.CreateKey(t, "alice", "write", "write")
	deleteKey := g.CreateKey(t, "alice", "delete", "delete")
	aliceQuick := createClientKey(t, g, "alice", "read")
	revoked := g.CreateKey(t, "alice", "revoked", "read")
	g.CLI(t, "", "key", "revoke", revoked.ID)
	revokedQuick := createClientKey(t, g, "alice", "read")
	g.CLI(t, "", "key", "revoke", revokedQuick.ID)
	carolKey := g.CreateKey(t, "carol", "carol", "read")
	daveKey := g.CreateKey(t, "dave", "dave", "read")
	var expired CreatedKey
	out := g.CLI(t, "", "key", "create", "--user", "alice", "--name", "short", "--permissions", "read", "--expires", "1s", "--json")
	if err := json.Unmarshal([]byte(out), &expired); err != nil || expired.Key == "" {
		t.Fatalf("key create --expires 1s --json: %d bytes of output, %v", len(out), err)
	}
	secret(expired.Key)
	expiresAt := time.Now().Add(time.Second)

	// The signing key: made here, so this test can sign forgeries with the
	// gateway's own private key (a token signed by us but with a wrong
	// claim must still be refused).
	kid, priv := seedSigningKey(t, g.DB)
	g.Start(t)

	// Tokens of real sessions.
	alice := g.Login(t, "alice", alicePW)
	bob := g.Login(t, "bob", bobPW)
	carol := g.Login(t, "carol", carolPW)
	dave := g.Login(t, "dave", davePW)
	erin := g.Login(t, "erin", erinPW)
	loggedOut := g.Login(t, "alice", alicePW)
	if r := g.Do(t, "POST", "/rest/logout", nil, bearer(loggedOut.Access)); r.Status != 200 {
		t.Fatalf("logout: %s", r)
	}
	bobLogout := babelToken(t, g, "bob", bobPW) // survives every hostile logout
	bobBabel := babelToken(t, g, "bob", bobPW)
	quickBody, qh := formBody(url.Values{"client_id": {aliceQuick.ID}, "client_secret": {aliceQuick.ClientSecret}})
	quick := checkTokenBody(t, "quick_login", g.Do(t, "POST", "/rest/quick_login", quickBody, qh))

	// Live administration: disabled, deleted, password changed.
	g.LiveCLI(t, "", "user", "disable", "carol")
	g.LiveCLI(t, "", "user", "delete", "dave", "--yes")
	secret(erinPW + "2")
	g.LiveCLI(t, erinPW+"2\n", "user", "passwd", "erin", "--password-stdin")
	if d := time.Until(expiresAt); d > 0 {
		time.Sleep(d + 100*time.Millisecond)
	}

	jwks := g.Do(t, "GET", "/.well-known/jwks.json", nil, nil)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks.Body, &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != kid {
		t.Fatalf("JWKS: %v; want exactly our key %s: %s", err, kid, jwks.Body)
	}
	pubX, _ := set.Keys[0]["x"].(string)
	pubRaw, err := base64.RawURLEncoding.DecodeString(pubX)
	if err != nil || len(pubRaw) != ed25519.PublicKeySize {
		t.Fatalf("JWKS x: %v (%d bytes)", err, len(pubRaw))
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(ed25519.PublicKey(pubRaw))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	keyJSON, _ := json.Marshal(set.Keys[0])

	aliceIdentity := map[string]string{
		"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com",
		"x-auth-roles": "admin,ops", "x-auth-method": "bearer",
	}
	aliceKeyIdentity := map[string]string{
		"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com",
		"x-auth-roles": "admin,ops", "x-auth-method": "api_key",
		"x-auth-key-id": aliceRead.ID, "x-auth-permissions": "read",
	}
	noIdentity := map[string]string{}

	// Forging. claimsOf reads a real token's payload; sign* build tokens.
	ourHeader := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}
	aliceClaims := claimsOf(t, alice.Access)
	bobClaims := claimsOf(t, bob.Access)
	forge := func(edit func(c map[string]any)) string {
		c := cloneClaims(aliceClaims)
		if edit != nil {
			edit(c)
		}
		return signEd(t, priv, ourHeader, c)
	}
	attackerPub, attackerPriv, _ := ed25519.GenerateKey(rand.Reader)
	attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(attackerPub), "kid": "attacker", "use": "sig", "alg": "EdDSA"}
	evil.serve(attackerJWK)
	attackerCert := selfSigned(t, attackerPub, attackerPriv)
	forgeAttacker := func(hdr map[string]any) string {
		return signEd(t, attackerPriv, hdr, cloneClaims(aliceClaims))
	}
	ah, ap, as := splitToken(t, alice.Access)
	_, bp, bs := splitToken(t, bob.Access)

	get := func(path string, h H) func(t *testing.T) Resp {
		return func(t *testing.T) Resp { return g.Do(t, "GET", path, nil, h) }
	}
	withBearer := func(tok string) func(t *testing.T) Resp { return get("/app/x", bearer(tok)) }
	withKey := func(key string) func(t *testing.T) Resp { return get("/app/x", apiKey(key)) }
	raw := func(target string) func(t *testing.T) Resp {
		return func(t *testing.T) Resp { return g.Raw(t, target, nil) }
	}
	send := func(method, path, ct string, body string, h H) func(t *testing.T) Resp {
		return func(t *testing.T) Resp {
			if ct != "" {
				h = append(H{{"Content-Type", ct}}, h...)
			}
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			return g.Do(t, method, path, rd, h)
		}
	}

	var cases []attackCase
	add := func(c ...attackCase) { cases = append(cases, c...) }

	// --- Forged and tampered tokens ------------------------------------
	noneClaims := cloneClaims(aliceClaims)
	add(
		attackCase{name: "control: our own signature over genuine claims is accepted", do: withBearer(forge(nil)), status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "alg none, no kid", do: withBearer(unsigned(map[string]any{"alg": "none", "typ": "JWT"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "alg none with our kid", do: withBearer(unsigned(map[string]any{"alg": "none", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "alg None with our kid", do: withBearer(unsigned(map[string]any{"alg": "None", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "alg NONE with our kid and a signature", do: withBearer(unsigned(map[string]any{"alg": "NONE", "kid": kid}, noneClaims) + as), status: 401, code: "invalid_token"},
		attackCase{name: "HS256 keyed with the raw public key", do: withBearer(signHS(t, pubRaw, map[string]any{"alg": "HS256", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "HS256 keyed with the base64url x", do: withBearer(signHS(t, []byte(pubX), map[string]any{"alg": "HS256", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "HS256 keyed with the JWK JSON", do: withBearer(signHS(t, keyJSON, map[string]any{"alg": "HS256", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "HS256 keyed with the PEM public key", do: withBearer(signHS(t, pubPEM, map[string]any{"alg": "HS256", "kid": kid}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "HS256 keyed with the public key, no kid", do: withBearer(signHS(t, pubRaw, map[string]any{"alg": "HS256"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "RS256 header with our kid", do: withBearer(b64JSON(t, map[string]any{"alg": "RS256", "kid": kid}) + "." + ap + "." + as), status: 401, code: "invalid_token"},
		attackCase{name: "unknown kid, signed with our key", do: withBearer(signEd(t, priv, map[string]any{"alg": "EdDSA", "kid": "nope"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "no kid, signed with our key", do: withBearer(signEd(t, priv, map[string]any{"alg": "EdDSA"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "kid path traversal, HS256 with an empty key", do: withBearer(signHS(t, []byte{}, map[string]any{"alg": "HS256", "kid": "../../../../../../dev/null"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "kid path to the store file", do: withBearer(signHS(t, []byte{}, map[string]any{"alg": "HS256", "kid": g.DB}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "kid SQL-ish", do: withBearer(signEd(t, attackerPriv, map[string]any{"alg": "EdDSA", "kid": "x' UNION SELECT 'key' -- "}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "kid our kid with a suffix", do: withBearer(signEd(t, attackerPriv, map[string]any{"alg": "EdDSA", "kid": kid + "\x00"}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "kid is a number", do: withBearer(signEd(t, priv, map[string]any{"alg": "EdDSA", "kid": 1}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "jku to an attacker JWKS, attacker kid", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "kid": "attacker", "jku": evil.url + "/jwks.json"})), status: 401, code: "invalid_token"},
		attackCase{name: "jku to an attacker JWKS, our kid", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "kid": kid, "jku": evil.url + "/jwks.json"})), status: 401, code: "invalid_token"},
		attackCase{name: "x5u to an attacker certificate", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "kid": kid, "x5u": evil.url + "/cert.pem"})), status: 401, code: "invalid_token"},
		attackCase{name: "embedded attacker jwk, no kid", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "jwk": attackerJWK})), status: 401, code: "invalid_token"},
		attackCase{name: "embedded attacker jwk, our kid", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "kid": kid, "jwk": attackerJWK})), status: 401, code: "invalid_token"},
		attackCase{name: "embedded attacker x5c, our kid", do: withBearer(forgeAttacker(map[string]any{"alg": "EdDSA", "kid": kid, "x5c": []string{base64.StdEncoding.EncodeToString(attackerCert)}})), status: 401, code: "invalid_token",
			check: func(t *testing.T, _ Resp, _ []Seen) {
				if n := evil.hits.Load(); n != 0 {
					t.Errorf("SECURITY: the gateway fetched an attacker's jku/x5u URL %d times", n)
				}
			}},
		attackCase{name: "crit header", do: withBearer(signEd(t, priv, map[string]any{"alg": "EdDSA", "kid": kid, "crit": []string{"exp"}}, noneClaims)), status: 401, code: "invalid_token"},
		attackCase{name: "wrong iss, our signature", do: withBearer(forge(func(c map[string]any) { c["iss"] = "https://evil.example" })), status: 401, code: "invalid_token"},
		attackCase{name: "no iss, our signature", do: withBearer(forge(func(c map[string]any) { delete(c, "iss") })), status: 401, code: "invalid_token"},
		attackCase{name: "wrong aud, our signature", do: withBearer(forge(func(c map[string]any) { c["aud"] = "other-app" })), status: 401, code: "invalid_token"},
		attackCase{name: "no aud, our signature", do: withBearer(forge(func(c map[string]any) { delete(c, "aud") })), status: 401, code: "invalid_token"},
		attackCase{name: "exp missing, our signature", do: withBearer(forge(func(c map[string]any) { delete(c, "exp") })), status: 401, code: "invalid_token"},
		attackCase{name: "exp 90s ago (past the leeway), our signature", do: func(t *testing.T) Resp {
			return withBearer(forge(func(c map[string]any) { c["exp"] = time.Now().Add(-90 * time.Second).Unix() }))(t)
		}, status: 401, code: "invalid_token"},
		attackCase{name: "exp 5s ago (inside the 30s leeway) is accepted", do: func(t *testing.T) Resp {
			return withBearer(forge(func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Second).Unix() }))(t)
		}, status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "nbf in 5 minutes, our signature", do: func(t *testing.T) Resp {
			return withBearer(forge(func(c map[string]any) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() }))(t)
		}, status: 401, code: "invalid_token"},
		attackCase{name: "iat in 5 minutes, our signature", do: func(t *testing.T) Resp {
			return withBearer(forge(func(c map[string]any) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() }))(t)
		}, status: 401, code: "invalid_token"},
		attackCase{name: "no sid, our signature", do: withBearer(forge(func(c map[string]any) { delete(c, "sid") })), status: 401, code: "invalid_token"},
		attackCase{name: "cross-session: bob's sub on alice's sid, our signature", do: withBearer(forge(func(c map[string]any) { c["sub"] = bobClaims["sub"] })), status: 401, code: "invalid_token"},
		attackCase{name: "cross-session: alice's sub on bob's sid, our signature", do: withBearer(forge(func(c map[string]any) { c["sid"] = bobClaims["sid"] })), status: 401, code: "invalid_token"},
		attackCase{name: "epoch below the user's, our signature", do: withBearer(forge(func(c map[string]any) { c["ep"] = -1 })), status: 401, code: "invalid_token"},
		attackCase{name: "a 100 KB token", do: withBearer(strings.Repeat("A", 100<<10)), status: 431},
		attackCase{name: "a 12 KB well-shaped token", do: withBearer(ah + "." + strings.Repeat("A", 12<<10) + "." + as), status: 401, code: "invalid_token"},
		attackCase{name: "a 10,000-dot token", do: withBearer(strings.Repeat(".", 10000)), status: 401, code: "invalid_token"},
		attackCase{name: "a 10,000-dot token around real segments", do: withBearer(ah + strings.Repeat(".", 5000) + ap + strings.Repeat(".", 4998) + as), status: 401, code: "invalid_token"},
		attackCase{name: "signature stripped, trailing dot kept", do: withBearer(ah + "." + ap + "."), status: 401, code: "invalid_token"},
		attackCase{name: "signature stripped, two segments", do: withBearer(ah + "." + ap), status: 401, code: "invalid_token"},
		attackCase{name: "payload swapped between two valid tokens", do: withBearer(ah + "." + bp + "." + as), status: 401, code: "invalid_token"},
		attackCase{name: "signature swapped between two valid tokens", do: withBearer(ah + "." + ap + "." + bs), status: 401, code: "invalid_token"},
		attackCase{name: "padded base64 segments", do: withBearer(ah + "=." + ap + "==." + as), status: 401, code: "invalid_token"},
		attackCase{name: "one flipped signature bit", do: withBearer(ah + "." + ap + "." + flipBit(as)), status: 401, code: "invalid_token"},
		attackCase{name: "token appended with a character", do: withBearer(alice.Access + "A"), status: 401, code: "invalid_token"},
		attackCase{name: "token of a deleted user", do: withBearer(dave.Access), status: 401, code: "invalid_token"},
		attackCase{name: "token of a disabled user", do: withBearer(carol.Access), status: 401, code: "invalid_token"},
		attackCase{name: "token after a password change", do: withBearer(erin.Access), status: 401, code: "invalid_token"},
		attackCase{name: "token after logout", do: withBearer(loggedOut.Access), status: 401, code: "invalid_token"},
		attackCase{name: "refresh token as a Bearer token", do: withBearer(alice.Refresh), status: 401, code: "invalid_token"},
		attackCase{name: "API key as a Bearer token", do: withBearer(aliceRead.Key), status: 401, code: "invalid_token"},
		attackCase{name: "client secret as a Bearer token", do: withBearer(aliceQuick.ClientSecret), status: 401, code: "invalid_token"},
		attackCase{name: "access token in the query string", do: get("/app/x?access_token="+url.QueryEscape(alice.Access), nil), status: 401, code: "unauthorized"},
		attackCase{name: "access token in a cookie", do: get("/app/x", H{{"Cookie", "access_token=" + alice.Access}}), status: 401, code: "unauthorized"},
		attackCase{name: "quick_login token (read) used to POST", do: send("POST", "/app/x", "application/json", "{}", bearer(quick.Access)), status: 403, code: "insufficient_scope"},
	)

	// --- Authorization header shapes -------------------------------------
	add(
		attackCase{name: "Authorization: Basic with alice's password", do: get("/app/x", H{{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+alicePW))}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization: Bearer with no token", do: get("/app/x", H{{"Authorization", "Bearer"}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization: Bearer and spaces only", do: get("/app/x", H{{"Authorization", "Bearer    "}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization empty", do: get("/app/x", H{{"Authorization", ""}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization: Token scheme", do: get("/app/x", H{{"Authorization", "Token " + alice.Access}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization: Bearer<TAB>token", do: get("/app/x", H{{"Authorization", "Bearer\t" + alice.Access}}), status: 401, code: "invalid_token"},
		attackCase{name: "Authorization: lowercase bearer (schemes are case-insensitive)", do: get("/app/x", H{{"Authorization", "bearer " + alice.Access}}), status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "Authorization: two tokens in one header", do: get("/app/x", H{{"Authorization", "Bearer " + alice.Access + ", Bearer " + bob.Access}}), status: 401, code: "invalid_token"},
		attackCase{name: "two Authorization headers, both valid", do: get("/app/x", H{{"Authorization", "Bearer " + alice.Access}, {"Authorization", "Bearer " + bob.Access}}), status: 400, code: "invalid_request"},
		attackCase{name: "two Authorization headers, garbage first", do: get("/app/x", H{{"Authorization", "Bearer x"}, {"authorization", "Bearer " + alice.Access}}), status: 400, code: "invalid_request"},
		attackCase{name: "Bearer and x-api-key together", do: get("/app/x", H{{"Authorization", "Bearer " + alice.Access}, {"x-api-key", aliceRead.Key}}), status: 400, code: "invalid_request"},
		attackCase{name: "garbage Bearer and a valid key", do: get("/app/x", H{{"Authorization", "Bearer garbage"}, {"x-api-key", aliceRead.Key}}), status: 400, code: "invalid_request"},
		attackCase{name: "two x-api-key headers, differing case", do: get("/app/x", H{{"x-api-key", "garbage-key-1234"}, {"X-API-KEY", aliceRead.Key}}), status: 400, code: "invalid_request"},
		attackCase{name: "Proxy-Authorization carries no credential", do: get("/app/x", H{{"Proxy-Authorization", "Bearer " + alice.Access}}), status: 401, code: "unauthorized"},
		attackCase{name: "valid Bearer with an x_api_key variant: not forwarded", do: get("/app/x", H{{"Authorization", "Bearer " + alice.Access}, {"x_api_key", "mallory-key"}}), status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "no credential with an x_api_key variant", do: get("/app/x", H{{"x_api_key", aliceRead.Key}}), status: 401, code: "unauthorized"},
	)

	// --- API keys -----------------------------------------------------------
	k := aliceRead.Key
	add(
		attackCase{name: "control: a good key is accepted", do: withKey(k), status: 200, reach: true, ident: aliceKeyIdentity},
		attackCase{name: "key with a bad checksum", do: withKey(k[:len(k)-1] + otherBase62(k[len(k)-1])), status: 401, code: "invalid_token"},
		attackCase{name: "key with a changed body", do: withKey(k[:10] + otherBase62(k[10]) + k[11:]), status: 401, code: "invalid_token"},
		attackCase{name: "revoked key", do: withKey(revoked.Key), status: 401, code: "invalid_token"},
		attackCase{name: "expired key", do: withKey(expired.Key), status: 401, code: "invalid_token"},
		attackCase{name: "key of a disabled owner", do: withKey(carolKey.Key), status: 401, code: "invalid_token"},
		attackCase{name: "key of a deleted owner", do: withKey(daveKey.Key), status: 401, code: "invalid_token"},
		attackCase{name: "truncated key", do: withKey(k[:len(k)-1]), status: 401, code: "invalid_token"},
		attackCase{name: "key padded with a character", do: withKey(k + "0"), status: 401, code: "invalid_token"},
		attackCase{name: "key in upper case", do: withKey(strings.ToUpper(k)), status: 401, code: "invalid_token"},
		attackCase{name: "key with swapped case", do: withKey(swapCase(k)), status: 401, code: "invalid_token"},
		attackCase{name: "key with a space inside", do: withKey(k[:20] + " " + k[20:]), status: 401, code: "invalid_token"},
		attackCase{name: "key with surrounding whitespace (HTTP strips OWS)", do: withKey(" \t" + k + " \t"), status: 200, reach: true, ident: aliceKeyIdentity},
		attackCase{name: "key with a wrong prefix", do: withKey("agr_" + k[3:]), status: 401, code: "invalid_token"},
		attackCase{name: "key without its prefix", do: withKey(k[3:]), status: 401, code: "invalid_token"},
		attackCase{name: "client secret as a key", do: withKey(aliceQuick.ClientSecret), status: 401, code: "invalid_token"},
		attackCase{name: "refresh token as a key", do: withKey(alice.Refresh), status: 401, code: "invalid_token"},
		attackCase{name: "access token as a key", do: withKey(alice.Access), status: 401, code: "invalid_token"},
		attackCase{name: "empty key", do: get("/app/x", H{{"x-api-key", ""}}), status: 401, code: "invalid_token"},
		attackCase{name: "non-ASCII key", do: withKey("ag_ключ-" + strings.Repeat("ж", 20)), status: 401, code: "invalid_token"},
		attackCase{name: "10 KB key", do: withKey(strings.Repeat("k", 10<<10)), status: 401, code: "invalid_token"},
		attackCase{name: "key in the query string", do: get("/app/x?x-api-key="+url.QueryEscape(k)+"&api_key="+url.QueryEscape(k), nil), status: 401, code: "unauthorized"},
		attackCase{name: "read key used to DELETE", do: send("DELETE", "/app/x", "", "", apiKey(k)), status: 403, code: "insufficient_scope"},
		attackCase{name: "read key used to PUT", do: send("PUT", "/app/x", "application/json", "{}", apiKey(k)), status: 403, code: "insufficient_scope"},
	)
	// Write-only and delete-only keys: each bit opens its own methods only.
	keyIdentity := func(key CreatedKey) map[string]string {
		return map[string]string{
			"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com", "x-auth-roles": "admin,ops",
			"x-auth-method": "api_key", "x-auth-key-id": key.ID, "x-auth-permissions": key.Permissions,
		}
	}
	for _, c := range []struct {
		key     CreatedKey
		allowed string
	}{{writeKey, "PUT PATCH"}, {deleteKey, "DELETE"}} {
		for _, method := range []string{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "POST", "TRACE"} {
			name := fmt.Sprintf("%s-only key used to %s", c.key.Permissions, method)
			if strings.Contains(" "+c.allowed+" ", " "+method+" ") {
				add(attackCase{name: name, do: send(method, "/app/x", "", "", apiKey(c.key.Key)), status: 200, reach: true, ident: keyIdentity(c.key)})
				continue
			}
			code := "insufficient_scope"
			if method == "HEAD" {
				code = "" // no body to read the code from
			}
			add(attackCase{name: name, do: send(method, "/app/x", "", "", apiKey(c.key.Key)), status: 403, code: code})
		}
	}
	add(
		attackCase{name: "write-only key: PUT overridden to DELETE", do: send("PUT", "/app/x", "", "", append(apiKey(writeKey.Key), [2]string{"X-HTTP-Method-Override", "DELETE"})), status: 403, code: "insufficient_scope"},
		attackCase{name: "write-only key: PATCH with _method=DELETE", do: send("PATCH", "/app/x?_method=DELETE", "", "", apiKey(writeKey.Key)), status: 403, code: "insufficient_scope"},
		attackCase{name: "delete-only key: DELETE overridden to PUT", do: send("DELETE", "/app/x", "", "", append(apiKey(deleteKey.Key), [2]string{"X-HTTP-Method", "PUT"})), status: 403, code: "insufficient_scope"},
		attackCase{name: "delete-only key: DELETE overridden to DELETE passes", do: send("DELETE", "/app/x", "", "", append(apiKey(deleteKey.Key), [2]string{"X-HTTP-Method-Override", "delete"})), status: 200, reach: true, ident: keyIdentity(deleteKey)},
	)

	// --- Spoofed identity headers --------------------------------------------
	variants := map[string]func(string) string{
		"canonical":  func(s string) string { return s },
		"lowercase":  strings.ToLower,
		"uppercase":  strings.ToUpper,
		"underscore": func(s string) string { return strings.ReplaceAll(s, "-", "_") },
		"mixed":      func(s string) string { return mixed(strings.Replace(s, "-", "_", 1)) },
	}
	names := []string{"X-Auth-User-Id", "X-Auth-User", "X-Auth-Email", "X-Auth-Roles", "X-Auth-Method", "X-Auth-Key-Id", "X-Auth-Permissions", "X-Auth-Admin"}
	spoofs := func(v func(string) string) H {
		var h H
		for _, n := range names {
			h = append(h, [2]string{v(n), "mallory"}, [2]string{v(n), "mallory-dup"})
		}
		return h
	}
	for _, vn := range []string{"canonical", "lowercase", "uppercase", "underscore", "mixed"} {
		v := variants[vn]
		add(
			attackCase{name: "spoofed identity (" + vn + ", duplicated) on an allowed path", do: get("/health", spoofs(v)), status: 200, reach: true, ident: noIdentity},
			attackCase{name: "spoofed identity (" + vn + ") with a valid Bearer", do: get("/app/x", append(bearer(alice.Access), spoofs(v)...)), status: 200, reach: true, ident: aliceIdentity},
			attackCase{name: "spoofed identity (" + vn + ") without a credential", do: get("/app/x", spoofs(v)), status: 401, code: "unauthorized"},
		)
	}
	add(
		attackCase{name: "spoofed identity with a valid key", do: get("/app/x", append(apiKey(k), spoofs(variants["underscore"])...)), status: 200, reach: true, ident: aliceKeyIdentity},
		attackCase{name: "spoofed identity on /public/*", do: get("/public/doc.txt", spoofs(variants["mixed"])), status: 200, reach: true, ident: noIdentity},
		attackCase{name: "spoofed identity on /rest/user", do: get("/rest/user", append(bearer(alice.Access), spoofs(variants["lowercase"])...)), status: 200,
			check: wantNoMallory},
		attackCase{name: "spoofed identity on /v1/auth/user", do: get("/v1/auth/user", append(bearer(bobBabel), spoofs(variants["underscore"])...)), status: 200,
			check: wantNoMallory},
		attackCase{name: "spoofed identity on /rest/login", do: send("POST", "/rest/login", "application/json", `{"username":"mallory","password":"x"}`, spoofs(variants["canonical"])), status: 401},
		attackCase{name: "spoofed identity on /v1/auth/login", do: send("POST", "/v1/auth/login", "application/json", `{"username":"mallory","password":"x"}`, spoofs(variants["canonical"])), status: 401, env: 4},
		attackCase{name: "spoofed identity on the JWKS route", do: get("/.well-known/jwks.json", spoofs(variants["uppercase"])), status: 200},
		attackCase{name: "spoofed identity in request trailers (allowed path)", do: func(t *testing.T) Resp {
			return rawExchange(t, g, chunkedWithTrailers("/public/trailers/x", g.addr(), nil))
		}, status: 200, reach: true, ident: noIdentity},
		attackCase{name: "spoofed identity in request trailers (Bearer)", do: func(t *testing.T) Resp {
			return rawExchange(t, g, chunkedWithTrailers("/app/trailers/x", g.addr(), H{{"Authorization", "Bearer " + alice.Access}}))
		}, status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "spoofed identity in undeclared request trailers", do: func(t *testing.T) Resp {
			req := strings.Replace(chunkedWithTrailers("/app/trailers/x", g.addr(), H{{"Authorization", "Bearer " + alice.Access}}), "Trailer: X-Auth-User\r\n", "", 1)
			return rawExchange(t, g, req)
		}, status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "other request trailers still pass", do: func(t *testing.T) Resp {
			req := strings.Replace(chunkedWithTrailers("/public/trailers/x", g.addr(), nil), "Trailer: X-Auth-User\r\n", "Trailer: X-Auth-User, X-Checksum\r\n", 1)
			req = strings.Replace(req, "0\r\n", "0\r\nX-Checksum: 5d41402a\r\n", 1)
			return rawExchange(t, g, req)
		}, status: 200, reach: true, ident: noIdentity, check: func(t *testing.T, _ Resp, seen []Seen) {
			if len(seen) != 1 || seen[0].Header.Get("X-Checksum") != "5d41402a" {
				t.Errorf("an ordinary trailer did not reach the upstream: %v", seen)
			}
		}},
	)

	// --- Forwarding headers decide nothing ---------------------------------------
	fwd := H{
		{"X-Forwarded-For", "127.0.0.1"}, {"X-Real-IP", "127.0.0.1"}, {"Forwarded", "for=127.0.0.1;host=localhost;proto=https"},
		{"X-Forwarded-Host", "localhost"}, {"X-Forwarded-Proto", "https"}, {"X-Client-IP", "127.0.0.1"},
	}
	add(
		attackCase{name: "X-Forwarded-*/Forwarded/X-Real-IP from loopback, no credential", do: get("/app/x", fwd), status: 401, code: "unauthorized"},
		attackCase{name: "X-Original-URL: /health on a protected path", do: get("/app/x", H{{"X-Original-URL", "/health"}}), status: 401, code: "unauthorized"},
		attackCase{name: "X-Rewrite-URL: /public/x on a protected path", do: get("/app/x", H{{"X-Rewrite-URL", "/public/x"}}), status: 401, code: "unauthorized"},
		attackCase{name: "X-Forwarded-Uri/Prefix/Path pointing at allowed paths", do: get("/app/x", H{{"X-Forwarded-Uri", "/health"}, {"X-Forwarded-Prefix", "/public"}, {"X-Forwarded-Path", "/public/x"}, {"X-Envoy-Original-Path", "/health"}}), status: 401, code: "unauthorized"},
		attackCase{name: "X-HTTP-Method-Override: DELETE on a read key's GET", do: get("/app/x", append(apiKey(k), [2]string{"X-HTTP-Method-Override", "DELETE"})), status: 403, code: "insufficient_scope"},
		attackCase{name: "X-Method-Override: delete on a create key's POST", do: send("POST", "/app/x", "application/json", "{}", append(apiKey(createKey.Key), [2]string{"X-Method-Override", " delete "})), status: 403, code: "insufficient_scope"},
		attackCase{name: "X-HTTP-Method: PUT on a create key's POST", do: send("POST", "/app/x", "application/json", "{}", append(apiKey(createKey.Key), [2]string{"X-HTTP-Method", "PUT"})), status: 403, code: "insufficient_scope"},
		attackCase{name: "X-HTTP-Method-Override: DELETE on a quick_login token's GET", do: get("/app/x", append(bearer(quick.Access), [2]string{"X-HTTP-Method-Override", "DELETE"})), status: 403, code: "insufficient_scope"},
		attackCase{name: "X-HTTP-Method-Override: POST on a create key's POST is fine", do: send("POST", "/app/x", "application/json", "{}", append(apiKey(createKey.Key), [2]string{"X-HTTP-Method-Override", "POST"})), status: 200, reach: true, ident: map[string]string{
			"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com", "x-auth-roles": "admin,ops",
			"x-auth-method": "api_key", "x-auth-key-id": createKey.ID, "x-auth-permissions": "create",
		}},
		attackCase{name: "X-Original-URL: /app/x on an allowed path is not passed on", do: get("/health", H{{"X-Original-URL", "/app/x"}, {"X-Rewrite-URL", "/app/x"}, {"x_original_url", "/app/x"}}), status: 200, reach: true, ident: noIdentity,
			check: func(t *testing.T, _ Resp, seen []Seen) {
				for _, s := range seen {
					for name := range s.Header {
						if f := foldName(name); f == "x-original-url" || f == "x-rewrite-url" {
							t.Errorf("SECURITY: %s reached the upstream of an allowed path; an upstream that honours it would serve a protected path without identity", name)
						}
					}
				}
			}},
	)

	// --- Path tricks against allow (raw request targets, no credential) ------
	for _, target := range []string{
		"//app/x", "/public/../app/x", "/public/..%2fapp/x", "/public%2f..%2fapp/x", "/public/%2e%2e/app/x",
		"/public/%2E%2E/%2e%2E/app/x", "/public/.%2e/app/x", "/public\\..\\app\\x", "/public/%5c..%5capp/x",
		"/public/..%5capp/x", "/health/../app/x", "/health%2f..%2fapp/x", "/PUBLIC/../APP/x", "/Public/%2E%2E/app/x",
		"/app/x?/health", "/app/x?x=/public/y", "/app/x#/health", "/health#/../app/x", "/health;/../app/x",
		"/public/x;/../../app/x", "/health;jsessionid=1", "/app/x;/health", "/./health", "/health/.", "/%2fhealth",
		"/health%20", "/health%09", "/public", "/rest/login/../../app/x", "/rest/../app/x",
		"/.well-known/jwks.json/../../app/x", "/public/%c0%ae%c0%ae/app/x", "/public/%c0%af..%c0%afapp/x",
		"/public/%e0%80%ae%e0%80%ae/app/x", "/public/%252e%252e/app/x", "/public/%252e%252e%252fapp/x",
		"/public/x%00/../../app/x",
	} {
		add(attackCase{name: "path " + target, do: raw(target), status: 401, code: "unauthorized"})
	}
	for _, target := range []string{"/health?next=/../app/x", "/public/x?a=%2f..%2fapp", "/Public/x", "/heal%74h"} {
		add(attackCase{name: "path " + target + " (canonical, allowed)", do: raw(target), status: 200, reach: true, ident: noIdentity,
			check: func(t *testing.T, _ Resp, seen []Seen) {
				for _, s := range seen {
					if strings.Contains(strings.ToLower(s.Path), "/app") {
						t.Errorf("SECURITY: the upstream saw path %q", s.Path)
					}
				}
			}})
	}
	add(
		// net/http answers OPTIONS * itself (200, no body): no handler runs.
		attackCase{name: "OPTIONS * (asterisk form) with spoofed identity", do: func(t *testing.T) Resp {
			return rawExchange(t, g, "OPTIONS * HTTP/1.1\r\nHost: "+g.addr()+"\r\nX-Auth-User: mallory\r\nConnection: close\r\n\r\n")
		}, status: 200},
		attackCase{name: "the admin API's paths on the site are protected traffic", do: raw("/authgate/users"), status: 401, code: "unauthorized"},
		attackCase{name: "Caddy's admin paths on the site are protected traffic", do: raw("/config/"), status: 401, code: "unauthorized"},
		attackCase{name: "two differing Content-Length headers", do: func(t *testing.T) Resp {
			return rawExchange(t, g, "POST /health HTTP/1.1\r\nHost: "+g.addr()+"\r\nContent-Length: 2\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{}")
		}, status: 400},
		attackCase{name: "a NUL in the API key header", do: func(t *testing.T) Resp {
			return rawExchange(t, g, "GET /app/x HTTP/1.1\r\nHost: "+g.addr()+"\r\nX-Api-Key: "+k+"\x00\r\nConnection: close\r\n\r\n")
		}, status: 400},
		attackCase{name: "two Host headers", do: func(t *testing.T) Resp {
			return rawExchange(t, g, "GET /health HTTP/1.1\r\nHost: "+g.addr()+"\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
		}, status: 400},
		attackCase{name: "absolute-form target through an allowed path", do: raw("http://" + g.addr() + "/public/../app/x"), status: 401, code: "unauthorized"},
		attackCase{name: "CL+TE smuggling of GET /app/x behind /health", do: func(t *testing.T) Resp {
			smuggled := "GET /app/x HTTP/1.1\r\nHost: " + g.addr() + "\r\nX-Auth-User: mallory\r\n\r\n"
			req := "POST /health HTTP/1.1\r\nHost: " + g.addr() + "\r\nContent-Length: " + fmt.Sprint(len(smuggled)+5) +
				"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n" + smuggled
			return rawExchange(t, g, req)
		}, status: 200, reach: true, ident: noIdentity, check: func(t *testing.T, _ Resp, seen []Seen) {
			for _, s := range seen {
				if s.Path != "/health" {
					t.Errorf("SECURITY: a smuggled request reached the upstream: %s %s", s.Method, s.URI)
				}
			}
		}},
	)

	// --- Hostile bodies on every auth route of both dialects ---------------------
	big := `{"username":"` + strings.Repeat("a", 70<<10) + `","password":"x","refresh_token":"x","client_id":"x","client_secret":"x","pin":"x"}`
	padded := `{"username":"nobody-padded","password":"x","refresh_token":"x","client_id":"x","client_secret":"x","pin":"1","user":{"city":"Padded"}}` + strings.Repeat(" ", 70<<10)
	mp, mpType := multipartBody(t, "username", strings.Repeat("a", 70<<10))
	type route struct {
		path  string
		auth  H
		babel bool
	}
	routes := []route{
		{"/rest/login", nil, false},
		{"/rest/login/refresh", nil, false},
		{"/rest/quick_login", nil, false},
		{"/rest/check_password", bearer(bob.Access), false},
		{"/rest/check_pin", bearer(bob.Access), false},
		{"/v1/auth/login", nil, true},
		{"/v1/auth/user", bearer(bobBabel), true},
		{"/v1/auth/logout", bearer(bobLogout), true},
	}
	for _, rt := range routes {
		env := func(code int) int {
			if rt.babel {
				return code
			}
			return 0
		}
		// The plentymarkets routes answer with an error code (the OAuth
		// shape or the error object, API.md section 4); the Babel ones in
		// their envelope (env).
		ir := "invalid_request"
		if rt.babel {
			ir = ""
		}
		add(
			attackCase{name: rt.path + ": 70 KiB JSON body", do: send("POST", rt.path, "application/json", big, rt.auth), code: ir, status: 413, env: env(3)},
			attackCase{name: rt.path + ": valid JSON padded past 64 KiB", do: send("POST", rt.path, "application/json", padded, rt.auth), code: ir, status: 413, env: env(3)},
			attackCase{name: rt.path + ": malformed JSON", do: send("POST", rt.path, "application/json", `{"username":"a","password":`, rt.auth), code: ir, status: 400, env: env(1)},
			attackCase{name: rt.path + ": JSON object followed by ]", do: send("POST", rt.path, "application/json", `{"username":"nobody-trailing","password":"x","refresh_token":"x","client_id":"x","client_secret":"x","pin":"1","user":{}}]`, rt.auth), code: ir, status: 400, env: env(1)},
			attackCase{name: rt.path + ": JSON array", do: send("POST", rt.path, "application/json", `[{"username":"a"}]`, rt.auth), code: ir, status: 400, env: env(1)},
			attackCase{name: rt.path + ": JSON nested 20000 deep", do: send("POST", rt.path, "application/json", strings.Repeat("[", 20000)+strings.Repeat("]", 20000), rt.auth), code: ir, status: 400, env: env(1)},
			attackCase{name: rt.path + ": text/plain body", do: send("POST", rt.path, "text/plain", "username=a&password=b", rt.auth), code: ir, status: 415, env: env(2)},
			attackCase{name: rt.path + ": application/xml body", do: send("POST", rt.path, "application/xml", "<login><username>a</username></login>", rt.auth), code: ir, status: 415, env: env(2)},
			attackCase{name: rt.path + ": unparseable Content-Type", do: send("POST", rt.path, "application/json; charset=\"", `{}`, rt.auth), code: ir, status: 415, env: env(2)},
			attackCase{name: rt.path + ": body without Content-Type", do: send("POST", rt.path, "", `{"username":"a","password":"b"}`, rt.auth), code: ir, status: 415, env: env(2)},
		)
		add(attackCase{name: rt.path + ": duplicate member names", do: send("POST", rt.path, "application/json", `{"username":"a","username":"b","password":"x","user":{"city":"a","city":"b"}}`, rt.auth), code: ir, status: 400, env: env(1)})
		if !rt.babel {
			add(attackCase{name: rt.path + ": every member given twice", do: send("POST", rt.path, "application/json",
				`{"username":"bob","username":"alice","password":"x","password":"`+alicePW+`","refresh_token":"x","refresh_token":"y","refreshToken":"z","refreshToken":"w","client_id":"a","client_id":"b","client_secret":"a","client_secret":"b","pin":"1","pin":"2"}`, rt.auth), status: 400, code: "invalid_request"})
		}
		if !rt.babel {
			add(
				attackCase{name: rt.path + ": 70 KiB form body", do: send("POST", rt.path, "application/x-www-form-urlencoded", "username="+strings.Repeat("a", 70<<10), rt.auth), code: ir, status: 413},
				attackCase{name: rt.path + ": 70 KiB multipart body", do: send("POST", rt.path, mpType, mp, rt.auth), code: ir, status: 413},
				attackCase{name: rt.path + ": multipart without boundary", do: send("POST", rt.path, "multipart/form-data", "--x\r\n\r\n", rt.auth), code: ir, status: 400},
				attackCase{name: rt.path + ": malformed form", do: send("POST", rt.path, "application/x-www-form-urlencoded", "a=%zz&b=%", rt.auth), code: ir, status: 400},
				attackCase{name: rt.path + ": query and body disagree", do: send("POST", rt.path+"?username=a&password=a&refresh_token=a&client_id=a&client_secret=a&pin=a", "application/x-www-form-urlencoded", "username=b&password=b&refresh_token=b&client_id=b&client_secret=b&pin=b", rt.auth), code: ir, status: 400},
			)
		}
	}
	add(
		attackCase{name: "babel logout session survived every refused body", do: get("/v1/auth/user", bearer(bobLogout)), status: 200},
		attackCase{name: "check_password with an API key", do: send("POST", "/rest/check_password", "application/json", `{"password":"x"}`, apiKey(k)), status: 400},
		attackCase{name: "pm logout with an API key", do: send("POST", "/rest/logout", "", "", apiKey(k)), status: 400},
		attackCase{name: "babel logout with an API key", do: send("POST", "/v1/auth/logout", "application/json", "{}", apiKey(k)), status: 400, env: 1},
	)

	// --- Babel profile: privilege changes are refused, nothing is written -----
	bobAuth := bearer(bobBabel)
	for _, c := range []struct{ name, body string }{
		{"roles", `{"user":{"roles":["admin"]}}`},
		{"userName", `{"user":{"userName":"alice"}}`},
		{"id", `{"user":{"id":"` + aliceID + `"}}`},
		{"apiKeys", `{"user":{"apiKeys":[{"id":"` + aliceRead.ID + `","permissions":15}]}}`},
		{"createdAt", `{"user":{"createdAt":"2000-01-01T00:00:00Z"}}`},
		{"email taken", `{"user":{"email":"alice@example.com"}}`},
		{"email = another's username", `{"user":{"email":"ALICE"}}`},
		{"readOnly setting", `{"user":{"settings":[{"name":"tier","value":"platinum"}]}}`},
		{"readOnly flag", `{"user":{"settings":[{"name":"tier","readOnly":false}]}}`},
		{"a new setting", `{"user":{"settings":[{"name":"admin","value":"true"}]}}`},
		{"control characters", `{"user":{"city":"Bonn\u0000\u001b[31m"}}`},
	} {
		status, code := 400, 1
		switch c.name {
		case "email taken", "email = another's username", "readOnly setting":
			status, code = 403, 8
		}
		add(attackCase{name: "babel POST user changing " + c.name, do: send("POST", "/v1/auth/user", "application/json", c.body, bobAuth), status: status, env: code})
	}
	add(attackCase{name: "babel user unchanged after the refused edits", do: get("/v1/auth/user", bobAuth), status: 200,
		check: func(t *testing.T, r Resp, _ []Seen) {
			var m struct {
				User struct {
					ID       string   `json:"id"`
					UserName string   `json:"userName"`
					Email    string   `json:"email"`
					City     string   `json:"city"`
					Roles    []string `json:"roles"`
					Settings []struct {
						Name, Value string
						ReadOnly    bool
					} `json:"settings"`
				} `json:"user"`
			}
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatalf("GET user: %v", err)
			}
			u := m.User
			if u.ID != bobID || u.UserName != "bob" || u.Email != "bob@example.com" || u.City != "" ||
				!slices.Equal(u.Roles, []string{"dev"}) || len(u.Settings) != 1 || u.Settings[0].Value != "bronze" || !u.Settings[0].ReadOnly {
				t.Errorf("SECURITY: refused edits changed bob: %+v", u)
			}
		}})

	// --- Refresh-token replay and cross-session use ---------------------------------
	var fam1, fam2 Pair
	refreshForm := func(field, tok string) func(t *testing.T) Resp {
		return func(t *testing.T) Resp {
			body, h := formBody(url.Values{field: {tok}})
			return g.Do(t, "POST", "/rest/login/refresh", body, h)
		}
	}
	unknownRefresh, _ := agsecret.NewSecret(agsecret.RefreshPrefix)
	secret(unknownRefresh)
	add(
		attackCase{name: "refresh: first rotation is fine", do: func(t *testing.T) Resp {
			fam1 = g.Login(t, "bob", bobPW)
			r := g.Refresh(t, fam1.Refresh)
			if r.Status == 200 {
				fam2 = checkTokenBody(t, "refresh", r)
			}
			return r
		}, status: 200},
		attackCase{name: "refresh: spent token replayed", do: func(t *testing.T) Resp { return g.Refresh(t, fam1.Refresh) }, status: 401},
		attackCase{name: "refresh: successor's access token after the replay", do: func(t *testing.T) Resp { return withBearer(fam2.Access)(t) }, status: 401, code: "invalid_token"},
		attackCase{name: "refresh: first access token after the replay", do: func(t *testing.T) Resp { return withBearer(fam1.Access)(t) }, status: 401, code: "invalid_token"},
		attackCase{name: "refresh: successor's refresh token after the replay", do: func(t *testing.T) Resp { return g.Refresh(t, fam2.Refresh) }, status: 401},
		attackCase{name: "refresh: spent token replayed as refreshToken form field", do: func(t *testing.T) Resp { return refreshForm("refreshToken", fam1.Refresh)(t) }, status: 401},
		attackCase{name: "refresh: spent token replayed in the query", do: func(t *testing.T) Resp {
			return g.Do(t, "POST", "/rest/login/refresh?refresh_token="+url.QueryEscape(fam1.Refresh), nil, nil)
		}, status: 401},
		attackCase{name: "refresh: other sessions survive the family's revocation", do: withBearer(bob.Access), status: 200, reach: true, ident: map[string]string{
			"x-auth-user": "bob", "x-auth-user-id": bobID, "x-auth-email": "bob@example.com", "x-auth-roles": "dev", "x-auth-method": "bearer",
		}},
		attackCase{name: "refresh: access token as refresh token", do: refreshForm("refresh_token", alice.Access), status: 401},
		attackCase{name: "refresh: API key as refresh token", do: refreshForm("refresh_token", k), status: 401},
		attackCase{name: "refresh: client secret as refresh token", do: refreshForm("refresh_token", aliceQuick.ClientSecret), status: 401},
		attackCase{name: "refresh: well-formed unknown refresh token", do: refreshForm("refresh_token", unknownRefresh), status: 401},
		attackCase{name: "refresh: logged-out session", do: refreshForm("refresh_token", loggedOut.Refresh), status: 401},
		attackCase{name: "refresh: deleted user", do: refreshForm("refresh_token", dave.Refresh), status: 401},
		attackCase{name: "refresh: disabled user", do: refreshForm("refresh_token", carol.Refresh), status: 401},
		attackCase{name: "refresh: session ended by a password change", do: refreshForm("refresh_token", erin.Refresh), status: 401},
		attackCase{name: "refresh: alice's refresh token with bob's Bearer yields alice, not bob", do: func(t *testing.T) Resp {
			p := g.Login(t, "alice", alicePW)
			body, h := formBody(url.Values{"refresh_token": {p.Refresh}})
			return g.Do(t, "POST", "/rest/login/refresh", body, append(h, bearer(bob.Access)...))
		}, status: 200, check: func(t *testing.T, r Resp, _ []Seen) {
			var m struct {
				Access string `json:"access_token"`
			}
			_ = json.Unmarshal(r.Body, &m)
			secret(m.Access)
			if m.Access == "" || claimsOf(t, m.Access)["sub"] != aliceID {
				t.Errorf("SECURITY: a refresh with another session's Bearer issued a token for someone else")
			}
		}},
		attackCase{name: "quick_login: API key as client secret", do: quickLogin(g, aliceQuick.ID, aliceQuick.Key), status: 401},
		attackCase{name: "quick_login: another key's secret", do: quickLogin(g, aliceRead.ID, aliceQuick.ClientSecret), status: 401},
		attackCase{name: "quick_login: revoked key", do: quickLogin(g, revokedQuick.ID, revokedQuick.ClientSecret), status: 401},
		attackCase{name: "quick_login: unknown client id", do: quickLogin(g, "key_doesnotexist0000000", aliceQuick.ClientSecret), status: 401},
		attackCase{name: "check_password with a quick_login token (POST needs create)", do: send("POST", "/rest/check_password", "application/json", `{"password":"`+alicePW+`"}`, bearer(quick.Access)), status: 403},
		attackCase{name: "check_pin: wrong PIN", do: send("POST", "/rest/check_pin", "application/json", `{"pin":"0000"}`, bearer(bob.Access)), status: 401},
	)

	// --- Lockout is per account: spoofed client addresses and other names change nothing
	for i, login := range []string{"frank", "FRANK", "frank@example.com", "Frank@Example.com", "frank"} {
		h := H{{"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1)}, {"X-Real-IP", fmt.Sprintf("203.0.113.%d", i+1)}, {"Forwarded", fmt.Sprintf("for=192.0.2.%d", i+1)}}
		add(attackCase{name: fmt.Sprintf("lockout: wrong password %d as %q from a spoofed address", i+1, login),
			do: send("POST", "/rest/login", "application/json", `{"username":"`+login+`","password":"wrong"}`, h), status: 401})
	}
	add(
		attackCase{name: "lockout: the right password from a new spoofed address is 403 (plentymarkets' lock)", do: send("POST", "/rest/login", "application/json", `{"username":"frank","password":"`+frankPW+`"}`, H{{"X-Forwarded-For", "10.9.8.7"}}), status: 403, code: "locked",
			check: func(t *testing.T, r Resp, _ []Seen) {
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("403 (locked) without Retry-After")
				}
			}},
		attackCase{name: "lockout: the Babel dialect shares the lock", do: send("POST", "/v1/auth/login", "application/json", `{"username":"frank@example.com","password":"`+frankPW+`"}`, nil), status: 429, env: 5},
	)

	// --- Paths every upstream might read differently: `;` parameters,
	// control characters, non-ASCII that normalises to '.' or '/' ----------
	for _, target := range []string{
		"/public/..;/app/x", "/public/..;jsessionid=1/app/x", "/public/x/..;/..;/app/x", "/public/..;a=b;c=d/app/x",
		"/public/..%3b/app/x", "/public/..%3B/app/x", "/public/%2e%2e;/app/x", "/public/x;/../../app/x",
		"/public/x;jsessionid=1", "/public/x;", "/health;", "/health;x=1", "/public/;/x",
		"/public/x%00", "/public/%00/../app/x", "/public/x%01y", "/public/x%1f", "/public/x%7f", "/public/x%0d%0aX-Auth-User:%20mallory",
		"/public/x%09", "/public/x%c2%85", "/public/x%e2%80%8b", "/public/%e2%80%aex", "/public/x%c2%a0",
		"/public/%ef%bc%8e%ef%bc%8e/app/x", "/public/%e2%80%a4%e2%80%a4/app/x", "/public/%e2%80%a5/app/x",
		"/public/%ef%b9%92%ef%b9%92/app/x", "/public/..%ef%bc%8fapp/x", "/public/..%e2%88%95app/x",
		"/public/..%ef%bc%bcapp/x", "/public/x%ef%bc%9b/app/x", "/public/%e2%92%88x",
		"http://" + g.addr() + "/public/..;/app/x", "http://" + g.addr() + "/public/x%00", "http://" + g.addr() + "/public/%ef%bc%8e%ef%bc%8e/app/x",
	} {
		add(attackCase{name: "path " + target, do: raw(target), status: 401, code: "unauthorized"})
	}
	for _, target := range []string{"/public/caf%c3%a9", "/public/%e6%97%a5%e6%9c%ac/x", "/public/x-y_z.txt"} {
		add(attackCase{name: "path " + target + " (canonical non-ASCII, allowed)", do: raw(target), status: 200, reach: true, ident: noIdentity})
	}

	// --- A client's Connection header cannot strip the identity ----------
	// Caddy's proxy deletes the headers Connection names after authgate set
	// them: a read-only key would look like a full Bearer session upstream.
	rawGet := func(path string, lines ...string) func(t *testing.T) Resp {
		return func(t *testing.T) Resp {
			req := "GET " + path + " HTTP/1.1\r\nHost: " + g.addr() + "\r\n" + strings.Join(lines, "\r\n")
			if len(lines) > 0 {
				req += "\r\n"
			}
			return rawExchange(t, g, req+"Connection: close\r\n\r\n")
		}
	}
	keyLine := "X-Api-Key: " + k
	for _, conn := range [][]string{
		{"Connection: X-Auth-Method, X-Auth-Permissions, X-Auth-Key-Id"},
		{"Connection: x-auth-method, x-auth-permissions, x-auth-key-id"},
		{"Connection: X_Auth_Method, X_AUTH_PERMISSIONS, x_auth_key_id"},
		{"Connection: keep-alive", "Connection: X-Auth-Permissions", "Connection: X-Auth-Method,X-Auth-Key-Id"},
		{"Connection: X-Auth-User-Id, X-Auth-User, X-Auth-Email, X-Auth-Roles"},
		{"Connection: Upgrade, X-Auth-Permissions", "Upgrade: websocket-not-really"},
	} {
		add(attackCase{name: "Connection naming identity headers (" + strings.Join(conn, " | ") + ") with a read key",
			do: rawGet("/app/x", append([]string{keyLine}, conn...)...), status: 200, reach: true, ident: aliceKeyIdentity})
	}
	add(
		attackCase{name: "Connection naming identity headers with a Bearer token", do: rawGet("/app/x", "Authorization: Bearer "+alice.Access, "Connection: X-Auth-User, X-Auth-User-Id, X-Auth-Email, X-Auth-Roles, X-Auth-Method"),
			status: 200, reach: true, ident: aliceIdentity},
		attackCase{name: "Connection naming the credential headers and identity on an allowed path", do: rawGet("/health", "Connection: Authorization, X-Api-Key, X-Auth-User"), status: 200, reach: true, ident: noIdentity},
	)

	// --- h2c upgrades never reach the upstream ----------------------------
	// An h2c-capable upstream would answer 101 and every HTTP/2 stream on
	// the tunnel after it would bypass authgate.
	h2cLines := []string{"Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Connection: Upgrade, HTTP2-Settings"}
	noUpgrade := func(t *testing.T, r Resp, seen []Seen) {
		if r.Status == http.StatusSwitchingProtocols {
			t.Errorf("SECURITY: the upstream switched protocols (101): an h2c tunnel past authgate")
		}
		for _, s := range seen {
			for name, vals := range s.Header {
				f := foldName(name)
				if f == "http2-settings" || f == "upgrade" && strings.Contains(strings.ToLower(strings.Join(vals, ",")), "h2") ||
					f == "upgrade" && strings.Contains(strings.ToLower(strings.Join(vals, ",")), "http/") {
					t.Errorf("SECURITY: %s: %q reached the upstream", name, vals)
				}
			}
		}
	}
	for _, c := range []struct {
		name  string
		path  string
		lines []string
		ident map[string]string
	}{
		{"on an allowed path", "/public/h2c/x", h2cLines, noIdentity},
		{"with a read key", "/h2c/x", append([]string{keyLine}, h2cLines...), aliceKeyIdentity},
		{"in capitals, without HTTP2-Settings", "/public/h2c/y", []string{"Upgrade: H2C", "Connection: upgrade"}, noIdentity},
		{"beside websocket", "/public/h2c/z", []string{"Upgrade: h2c, websocket", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Connection: Upgrade, HTTP2-Settings"}, noIdentity},
		{"as HTTP/2.0", "/public/h2c/w", []string{"Upgrade: HTTP/2.0", "Connection: Upgrade"}, noIdentity},
	} {
		add(attackCase{name: "h2c upgrade " + c.name, do: rawGet(c.path, c.lines...), status: 200, reach: true, ident: c.ident,
			check: func(t *testing.T, r Resp, seen []Seen) {
				noUpgrade(t, r, seen)
				if len(seen) != 1 || seen[0].Proto != "HTTP/1.1" {
					t.Errorf("the h2c upstream saw %d requests (%v), want one plain HTTP/1.1 request", len(seen), seen)
				}
			}})
	}

	// --- _method parameters are method overrides too -----------------------
	// Rails, Laravel and Symfony run the method `_method` names.
	ck := apiKey(createKey.Key)
	createIdentity := map[string]string{
		"x-auth-user": "alice", "x-auth-user-id": aliceID, "x-auth-email": "alice@example.com", "x-auth-roles": "admin,ops",
		"x-auth-method": "api_key", "x-auth-key-id": createKey.ID, "x-auth-permissions": "create",
	}
	mpMethod, mpMethodType := multipartBody(t, "_method", "DELETE")
	for _, c := range []struct{ name, target, ct, body string }{
		{"in the query", "/app/x?_method=DELETE", "application/json", "{}"},
		{"in the query, encoded name", "/app/x?%5Fmethod=delete", "", ""},
		{"in the query, PHP's dot", "/app/x?.method=PUT", "", ""},
		{"in the query, upper case", "/app/x?_METHOD=PATCH", "", ""},
		{"in a form body", "/app/x", "application/x-www-form-urlencoded", "a=1&_method=DELETE"},
		{"in a form body, encoded", "/app/x", "application/x-www-form-urlencoded; charset=utf-8", "%5F%6Dethod=%44ELETE"},
		{"in a form body after 2 MiB", "/app/x", "application/x-www-form-urlencoded", "pad=" + strings.Repeat("x", 2<<20) + "&_method=DELETE"},
		{"in a multipart body", "/app/x", mpMethodType, mpMethod},
		{"in a JSON body (Laravel)", "/app/x", "application/json", `{"name":"x","_method":"DELETE"}`},
		{"in a JSON body, escaped name", "/app/x", "application/json", `{"\u005fmethod":"PUT"}`},
	} {
		add(attackCase{name: "_method " + c.name + " on a create key's POST", do: send("POST", c.target, c.ct, c.body, ck), status: 403, code: "insufficient_scope"})
	}
	add(
		attackCase{name: "_method=DELETE in the query of a read key's GET", do: get("/app/x?_method=DELETE", apiKey(k)), status: 403, code: "insufficient_scope"},
		attackCase{name: "_method=PUT in the query of a quick_login token's GET", do: get("/app/x?_method=PUT", bearer(quick.Access)), status: 403, code: "insufficient_scope"},
		attackCase{name: "_method=POST in a create key's form body passes, body intact", do: send("POST", "/app/x", "application/x-www-form-urlencoded", "a=1&_method=POST&b=2", ck),
			status: 200, reach: true, ident: createIdentity, check: func(t *testing.T, _ Resp, seen []Seen) {
				if len(seen) != 1 || string(seen[0].Body) != "a=1&_method=POST&b=2" {
					t.Errorf("the upstream did not get the form body unchanged: %q", seen)
				}
			}},
		attackCase{name: "a create key's JSON body with no _method passes, body intact", do: send("POST", "/app/x", "application/json", `{"a":{"_method":"DELETE"},"b":[1,2,3]}`, ck),
			status: 200, reach: true, ident: createIdentity, check: func(t *testing.T, _ Resp, seen []Seen) {
				if len(seen) != 1 || string(seen[0].Body) != `{"a":{"_method":"DELETE"},"b":[1,2,3]}` {
					t.Errorf("the upstream did not get the JSON body unchanged: %q", seen)
				}
			}},
		attackCase{name: "_method=DELETE with an unrestricted Bearer token passes", do: get("/app/x?_method=DELETE", bearer(alice.Access)), status: 200, reach: true, ident: aliceIdentity},
	)

	// --- Identifiers are capped before any lookup ---------------------------
	add(
		attackCase{name: "login with a 65-byte username", do: send("POST", "/rest/login", "application/json", `{"username":"`+strings.Repeat("u", 65)+`","password":"x"}`, nil), status: 400, code: "invalid_request"},
		attackCase{name: "login with a 255-byte email", do: send("POST", "/rest/login", "application/json", `{"username":"`+strings.Repeat("e", 243)+`@example.com","password":"x"}`, nil), status: 400, code: "invalid_request"},
		attackCase{name: "Babel login with a 60 KB username", do: send("POST", "/v1/auth/login", "application/json", `{"username":"`+strings.Repeat("u", 60<<10)+`","password":"x"}`, nil), status: 400, env: 1},
		attackCase{name: "quick_login with a 60 KB client id", do: send("POST", "/rest/quick_login", "application/x-www-form-urlencoded", "client_id="+strings.Repeat("k", 60<<10)+"&client_secret=agcs_x", nil), status: 400, code: "invalid_request"},
		attackCase{name: "quick_login with a 65-byte client id", do: send("POST", "/rest/quick_login", "application/x-www-form-urlencoded", "client_id=key_"+strings.Repeat("k", 61)+"&client_secret=agcs_x", nil), status: 400, code: "invalid_request"},
	)

	// --- Logins are one namespace, compared after PRECIS ------------------
	aliceBody := func(login string) string {
		return `{"username":"` + login + `","password":"` + alicePW + `"}`
	}
	for _, login := range []string{"ALICE", "ａｌｉｃｅ", "ＡＬＩＣＥ@example.com", "Alice@EXAMPLE.COM"} {
		add(attackCase{name: "login as " + login + " is alice", do: send("POST", "/rest/login", "application/json", aliceBody(login), nil), status: 200,
			check: func(t *testing.T, r Resp, _ []Seen) {
				var m struct {
					Access string `json:"access_token"`
				}
				_ = json.Unmarshal(r.Body, &m)
				secret(m.Access)
				if m.Access == "" || claimsOf(t, m.Access)["sub"] != aliceID {
					t.Errorf("login as %q did not log in alice", login)
				}
			}})
	}
	for _, login := range []string{"alice\u200b", "al\u00adice", "\u202ealice", "аlice", "alic\u0435", "ſalice", "alice\u2060"} {
		add(attackCase{name: fmt.Sprintf("login as the look-alike %q is nobody", login), do: send("POST", "/rest/login", "application/json", aliceBody(login), nil), status: 401, code: "invalid_credentials"})
	}

	// --- A profile edit reveals no other login, and cannot squat an id -------
	var emailAnswer string
	for _, email := range []string{"alice@example.com", "ALICE@example.com", "no-such-user@example.com", aliceID, "a@x,b@y", "root"} {
		add(attackCase{name: "babel POST user setting email " + email, do: send("POST", "/v1/auth/user", "application/json", `{"user":{"email":"`+email+`"}}`, bobAuth), status: 403, env: 8,
			check: func(t *testing.T, r Resp, _ []Seen) {
				if emailAnswer == "" {
					emailAnswer = string(r.Body)
				} else if string(r.Body) != emailAnswer {
					t.Errorf("the answer for %q differs from the others: %s vs %s", email, r.Body, emailAnswer)
				}
			}})
	}
	add(attackCase{name: "an admin command naming alice's id acts on alice", do: func(t *testing.T) Resp {
		out := g.LiveCLI(t, "", "user", "show", aliceID, "--json")
		var v struct{ Username string }
		_ = json.Unmarshal([]byte(out), &v)
		if v.Username != "alice" {
			t.Errorf("user show <alice's id> showed %q", v.Username)
		}
		return Resp{Status: 200}
	}, status: 200})

	// --- The admin API takes JSON writes only --------------------------------
	add(attackCase{name: "admin API POST /authgate/users as text/plain", do: func(t *testing.T) Resp {
		res, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/authgate/users", g.AdminPort), "text/plain", strings.NewReader(`{"username":"mallory","password":"mallory-password"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return Resp{Status: res.StatusCode, Header: res.Header, Body: body}
	}, status: 415, check: func(t *testing.T, _ Resp, _ []Seen) {
		if _, errOut, err := g.Run("", "authgate", "user", "show", "mallory", "--address", fmt.Sprintf("127.0.0.1:%d", g.AdminPort)); err == nil {
			t.Errorf("SECURITY: a text/plain admin write created a user (%s)", errOut)
		}
	}})

	// --- A restricted credential cannot end its owner's sessions ---------------
	// (Last: it spends the quick_login budget the cases above use.)
	add(attackCase{name: "twelve quick_logins with a read key leave alice's login alive", do: func(t *testing.T) Resp {
		for range 12 {
			r := quickLogin(g, aliceQuick.ID, aliceQuick.ClientSecret)(t)
			if r.Status != 200 {
				t.Fatalf("quick_login: %s", r)
			}
			checkTokenBody(t, "quick_login", r)
		}
		return withBearer(alice.Access)(t)
	}, status: 200, reach: true, ident: aliceIdentity})

	// --- Run. ----------------------------------------------------------------
	var leaked, fiveXX int
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mark, tmark, hmark := up.Mark(), tr.Mark(), h2.Mark()
			r := c.do(t)
			seen := append(append(up.Since(mark), tr.Since(tmark)...), h2.Since(hmark)...)
			if r.Status >= 500 {
				fiveXX++
				t.Errorf("%s: status %d: a client's request must never cause a 5xx; body %s", c.name, r.Status, scrub(string(r.Body)))
			}
			if r.Status != c.status {
				t.Errorf("%s: status %d, want %d; body %.300s", c.name, r.Status, c.status, scrub(string(r.Body)))
			}
			leak := false
			if !c.reach && len(seen) > 0 {
				leak = true
				t.Errorf("%s: SECURITY: the upstream was reached %d times, want never", c.name, len(seen))
			}
			for _, s := range seen {
				if problems := upstreamProblems(s, c.ident); len(problems) > 0 {
					leak = true
					t.Errorf("%s: SECURITY: the upstream saw %s %s with: %s", c.name, s.Method, s.URI, strings.Join(problems, "; "))
				}
			}
			if leak {
				leaked++
			}
			if c.code != "" && r.Status == c.status {
				var m map[string]any
				err := json.Unmarshal(r.Body, &m)
				got := m["error"]
				// Below /rest the Bearer routes' refusals are the plentymarkets
				// error object, its reason the code (the shapes are asserted in
				// walk_test and plentyclient_test).
				if obj, ok := got.(map[string]any); ok && obj["code"] == float64(r.Status) {
					got = obj["reason"]
				}
				if err != nil || got != c.code {
					t.Errorf("%s: error %v, want %q (%v); body %.300s", c.name, got, c.code, err, scrub(string(r.Body)))
				}
			}
			if c.env != 0 && r.Status == c.status {
				var m map[string]any
				if err := json.Unmarshal(r.Body, &m); err != nil || m["success"] != false || m["code"] != float64(c.env) {
					t.Errorf("%s: envelope %v, want success false, code %d; body %.300s", c.name, m, c.env, scrub(string(r.Body)))
				}
			}
			for _, sec := range allSecrets() {
				if r.Status != 200 && strings.Contains(string(r.Body), sec) {
					t.Errorf("%s: SECURITY: the refusal echoes a secret (%s)", c.name, redact(sec))
				}
			}
			if c.check != nil {
				c.check(t, r, seen)
			}
		})
	}
	summary := fmt.Sprintf("%d hostile cases, %d leaked, %d 5xx", len(cases), leaked, fiveXX)
	t.Log(summary)
	fmt.Println(summary)
	if leaked != 0 || fiveXX != 0 {
		t.Errorf("%s: want 0 leaked and 0 5xx", summary)
	}
	// The floor is the count: a case deleted by accident fails the run.
	if len(cases) < minAttackCases {
		t.Errorf("only %d hostile cases, want at least %d", len(cases), minAttackCases)
	}
}

// attackCase is one hostile request.
type attackCase struct {
	name   string
	do     func(t *testing.T) Resp
	status int               // the expected status
	code   string            // the expected "error" of a section 3 refusal ("" skips)
	env    int               // the expected Babel envelope code (0 skips)
	reach  bool              // the upstream may be reached
	ident  map[string]string // when it is: exactly these identity headers
	check  func(t *testing.T, r Resp, seen []Seen)
}

// upstreamProblems lists what is wrong with a request the upstream saw: a
// spoofed value, a forwarded credential, identity headers other than want.
func upstreamProblems(s Seen, want map[string]string) []string {
	var out []string
	for name, vals := range s.Header {
		if strings.Contains(strings.ToLower(name), "mallory") {
			out = append(out, "a spoofed header name "+name)
		}
		for _, v := range vals {
			if strings.Contains(strings.ToLower(v), "mallory") {
				out = append(out, fmt.Sprintf("spoofed %s: %q", name, v))
			}
		}
		switch foldName(name) {
		case "authorization", "x-api-key":
			out = append(out, "the credential header "+name+" was forwarded")
		}
	}
	if want == nil {
		want = map[string]string{}
	}
	got := identityOf(s)
	for k, v := range want {
		if g := got[k]; len(g) != 1 || g[0] != v {
			out = append(out, fmt.Sprintf("identity %s = %q, want %q", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected identity %s = %q", k, v))
		}
	}
	return out
}

func wantNoMallory(t *testing.T, r Resp, _ []Seen) {
	t.Helper()
	if strings.Contains(strings.ToLower(string(r.Body)), "mallory") {
		t.Errorf("SECURITY: a spoofed identity header shows in the answer: %.300s", scrub(string(r.Body)))
	}
}

// writeAttackConfig is the harness's configuration with an issuer and an
// audience (so their checks are live), a second upstream that records
// request trailers for paths containing /trailers/, and an h2c-capable one
// for /h2c/* and /public/h2c/*.
func writeAttackConfig(t *testing.T, g *Gateway, trailerPort, h2cPort int) string {
	t.Helper()
	cfg := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	authgate {
		db %q
		issuer https://legacy.example
		audience legacy
	}
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	authgate {
		api plentymarkets /rest
		api babel /v1/auth
		jwks /.well-known/jwks.json
		allow /health /public/*
	}
	@trailers path */trailers/*
	reverse_proxy @trailers 127.0.0.1:%d
	@h2c path /h2c/* /public/h2c/*
	reverse_proxy @h2c 127.0.0.1:%d
	reverse_proxy 127.0.0.1:%d
}
`, g.AdminPort, g.DB, g.SitePort, trailerPort, h2cPort, g.Up.Port)
	p := filepath.Join(g.Dir, "Caddyfile.attack")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedSigningKey stores an EdDSA signing key in the (stopped) gateway's
// store, which the gateway then signs with, and returns its kid and
// private key.
func seedSigningKey(t *testing.T, db string) (string, ed25519.PrivateKey) {
	t.Helper()
	st, err := bbolt.Open(db, bbolt.Options{})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	defer st.Close()
	sk, err := st.EnsureSigningKey(tokens.AlgEdDSA, func() (store.SigningKey, error) {
		return tokens.GenerateKey(tokens.AlgEdDSA, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(sk.Private)
	if err != nil {
		t.Fatal(err)
	}
	return sk.KID, k.(ed25519.PrivateKey)
}

// babelToken logs in through the Babel dialect.
func babelToken(t *testing.T, g *Gateway, user, password string) string {
	t.Helper()
	body, h := jsonBody(t, map[string]string{"username": user, "password": password})
	r := g.Do(t, "POST", "/v1/auth/login", body, h)
	var m struct {
		Token string `json:"token"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &m) != nil || m.Token == "" {
		t.Fatalf("Babel login %s: %s", user, r)
	}
	return secret(m.Token)
}

func quickLogin(g *Gateway, id, sec string) func(t *testing.T) Resp {
	return func(t *testing.T) Resp {
		body, h := formBody(url.Values{"client_id": {id}, "client_secret": {sec}})
		return g.Do(t, "POST", "/rest/quick_login", body, h)
	}
}

// ---------------------------------------------------------------------------
// JWT forging.

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

func splitToken(t *testing.T, tok string) (h, p, s string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

// claimsOf decodes a token's payload, numbers kept exact.
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, p, _ := splitToken(t, tok)
	b, err := base64URL(p)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func cloneClaims(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// signEd, signHS and unsigned register what they make with secret(): a
// forged token must not show in logs either.
func signEd(t *testing.T, priv ed25519.PrivateKey, hdr, claims map[string]any) string {
	t.Helper()
	in := b64JSON(t, hdr) + "." + b64JSON(t, claims)
	return secret(in + "." + b64(ed25519.Sign(priv, []byte(in))))
}

func signHS(t *testing.T, key []byte, hdr, claims map[string]any) string {
	t.Helper()
	in := b64JSON(t, hdr) + "." + b64JSON(t, claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return secret(in + "." + b64(m.Sum(nil)))
}

func unsigned(hdr, claims map[string]any) string {
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	return secret(b64(h) + "." + b64(c) + ".")
}

func flipBit(seg string) string {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || len(b) == 0 {
		return seg + "A"
	}
	b[len(b)/2] ^= 1
	return b64(b)
}

func selfSigned(t *testing.T, pub ed25519.PublicKey, priv ed25519.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "authgate"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// attackerKeyServer serves an attacker's JWKS and certificate and counts
// every fetch: the gateway must never fetch either.
type attackerKeyServer struct {
	url  string
	hits atomic.Int64
	mu   sync.Mutex
	jwks []byte
}

func newAttackerKeyServer(t *testing.T) *attackerKeyServer {
	a := &attackerKeyServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.mu.Lock()
		defer a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.jwks)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

func (a *attackerKeyServer) serve(jwk map[string]any) {
	b, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	a.mu.Lock()
	a.jwks = b
	a.mu.Unlock()
}

// ---------------------------------------------------------------------------
// API key mutations.

func otherBase62(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 32
		case 'A' <= c && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

// mixed alternates letter case: X-aUtH_uSeR-iD.
func mixed(s string) string {
	b := []byte(strings.ToLower(s))
	for i := 0; i < len(b); i += 2 {
		if 'a' <= b[i] && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1.

// rawExchange writes req byte for byte on a new connection and reads the
// first response.
func rawExchange(t *testing.T, g *Gateway, req string) Resp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", g.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatalf("raw write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("raw request: reading response: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return Resp{Status: res.StatusCode, Header: res.Header, Body: body}
}

// chunkedWithTrailers is a chunked POST whose trailers spoof identity
// headers, one declared in Trailer, the others not.
func chunkedWithTrailers(path, host string, hdr H) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\nTrailer: X-Auth-User\r\nConnection: close\r\n", path, host)
	for _, kv := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[0], kv[1])
	}
	b.WriteString("\r\n5\r\nhello\r\n0\r\nX-Auth-User: mallory\r\nX_Auth_Roles: mallory\r\nx-auth-user-id: mallory\r\nAuthorization: Bearer mallory\r\n\r\n")
	return b.String()
}

func multipartBody(t *testing.T, field, value string) (body, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if err := w.WriteField(field, value); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), w.FormDataContentType()
}

// trailerUpstream records requests with their trailers merged into the
// headers, as some upstream frameworks read them.
type trailerUpstream struct {
	port int
	seenLog
}

func newTrailerUpstream(t *testing.T) *trailerUpstream {
	u := &trailerUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := r.Header.Clone()
		for k, v := range r.Trailer {
			h[k] = append(h[k], v...)
		}
		u.record(Seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Header: h})
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	u.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return u
}

// minAttackCases is TestAttack's case count: raise it with every case added.
const minAttackCases = 460

// h2cUpstream speaks HTTP/2 over cleartext, upgrading an HTTP/1.1 request
// that asks (Upgrade: h2c) as such servers do: if an upgrade reached it,
// the connection from the gateway would become an HTTP/2 tunnel.
type h2cUpstream struct {
	port int
	seenLog
}

func newH2CUpstream(t *testing.T) *h2cUpstream {
	u := &h2cUpstream{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.record(Seen{Method: r.Method, URI: r.RequestURI, Path: r.URL.Path, Header: r.Header.Clone(), Proto: r.Proto})
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(h2c.NewHandler(handler, &http2.Server{}))
	t.Cleanup(srv.Close)
	u.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return u
}
