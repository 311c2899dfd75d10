package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"testing"
)

// TestPlentyClientSession drives the real gateway the way the plentymarkets
// Python client (plenty-api) does (issue 17): it logs in with the
// credentials in the query string and an empty body, pages through GETs
// with its Bearer token, and on a refusal reads response['error']['message']
// — which crashed on section 3's string under "error" once the token was
// revoked. A locked account must be a 403 with Retry-After, which it
// recognises (a 429 it reads as throttling and retries forever).
func TestPlentyClientSession(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "plenty: pages & pages?"
	g.AddUser(t, "pim", pw, "shop", "pim@example.com")
	g.AddUser(t, "lena", pw, "shop", "lena@example.com")
	g.Start(t)

	login := func(user, password string) Resp {
		q := url.Values{"username": {user}, "password": {password}}
		return g.Do(t, "POST", "/rest/login?"+q.Encode(), nil, nil)
	}
	// errorMessage reads a refusal as plenty-api does; it fails the test
	// where the client would raise TypeError.
	errorMessage := func(what string, r Resp) string {
		t.Helper()
		var resp map[string]any
		if err := json.Unmarshal(r.Body, &resp); err != nil {
			t.Fatalf("%s: body is not JSON: %s", what, r)
		}
		obj, ok := resp["error"].(map[string]any)
		if !ok {
			t.Fatalf("%s: response['error'] is %T, not an object: the client crashes reading ['message']; %s", what, resp["error"], r)
		}
		msg, ok := obj["message"].(string)
		if !ok || msg == "" {
			t.Fatalf("%s: response['error']['message'] is %T %v; %s", what, obj["message"], obj["message"], r)
		}
		return msg
	}

	pair := checkTokenBody(t, "query-string login, empty body", login("pim", pw))

	mark := up.Mark()
	for page := 1; page <= 3; page++ {
		target := fmt.Sprintf("/rest/items?page=%d", page)
		if r := g.Do(t, "GET", target, nil, bearer(pair.Access)); r.Status != 200 {
			t.Fatalf("GET %s: %s, want 200 from the upstream", target, r)
		}
	}
	for i, s := range up.Since(mark) {
		if want := "/rest/items?page=" + strconv.Itoa(i+1); s.URI != want || s.Header.Get("X-Auth-User") != "pim" || s.Header.Get("Authorization") != "" {
			t.Errorf("upstream request %d: %s, user %q, Authorization forwarded %v; want %s for pim", i+1, s.URI, s.Header.Get("X-Auth-User"), s.Header.Get("Authorization") != "", want)
		}
	}
	if n := len(up.Since(mark)); n != 3 {
		t.Fatalf("the upstream saw %d pages, want 3", n)
	}

	// An administrator revokes the session on the running server.
	var sessions []struct{ ID string }
	if err := json.Unmarshal([]byte(g.LiveCLI(t, "", "session", "list", "--user", "pim", "--json")), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("session list --json: %v, %d sessions, want 1", err, len(sessions))
	}
	g.LiveCLI(t, "", "session", "revoke", sessions[0].ID)

	mark = up.Mark()
	r := g.Do(t, "GET", "/rest/items?page=4", nil, bearer(pair.Access))
	wantPlentyError(t, "the next page after the revocation", r, 401, "invalid_token", challengeInvalid)
	t.Logf("the client reports: %s", errorMessage("the next page after the revocation", r))
	// The dialect's own Bearer routes answer the same way.
	r = g.Do(t, "GET", "/rest/user", nil, bearer(pair.Access))
	wantPlentyError(t, "GET /rest/user after the revocation", r, 401, "invalid_token", challengeInvalid)
	errorMessage("GET /rest/user after the revocation", r)
	// Outside the prefix nothing changes: section 3's shape.
	wantError(t, "GET /app after the revocation", g.Do(t, "GET", "/app/items", nil, bearer(pair.Access)), 401, "invalid_token", challengeInvalid)
	wantError(t, "a look-alike of the prefix", g.Do(t, "GET", "/restx/items", nil, bearer(pair.Access)), 401, "invalid_token", challengeInvalid)
	wantNothingUpstream(t, "the revoked token", up, mark)

	// Wrong passwords keep the OAuth shape (with message) until the lock
	// (`lockout 5`, the default); then even the right one is 403.
	for i := range 5 {
		wantError(t, fmt.Sprintf("wrong password %d", i+1), login("lena", "not the password"), 401, "invalid_credentials", "")
	}
	r = login("lena", pw)
	wantError(t, "the right password while locked", r, 403, "locked", "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra <= 0 {
		t.Errorf("locked login: Retry-After %q, want a positive number of seconds", r.Header.Get("Retry-After"))
	}
	if m := r.Obj(t); m["message"] != m["error_description"] {
		t.Errorf("locked login: message %v, want the error_description %v", m["message"], m["error_description"])
	}
	wantNothingUpstream(t, "logins", up, mark)
}
