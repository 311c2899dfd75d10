package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
)

// TestCrashKeepsAcknowledgedWrites writes through the running server from a
// few goroutines — users and keys through the admin API, logins, key
// revocations, logouts, user disables — and SIGKILLs Caddy in the middle of
// the stream. SECURITY.md, Operations: a 200 from a write means it is on
// disk, so kill -9 loses nothing acknowledged. After a restart on the same
// store every acknowledged write must hold; a write that got no answer may
// have happened or not. The file must pass the store's consistency check
// both as the crash left it and after the restart.
//
// A SIGKILL loses what the process held in memory, not what it handed to
// the kernel: this proves that nothing is acknowledged before it is
// written (and that a torn stream leaves a consistent file), not that the
// fsync reaches the platter (a power cut would).
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up) // on stable ports: the restart binds them again
	g.Start(t)
	waitAdminReady(t, g)
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.AdminPort)

	const (
		workers   = 3
		maxIters  = 60               // per worker: the stream is far from done at the kill
		killAfter = 120              // acknowledged writes
		killAt    = 20 * time.Second // at the latest
	)
	var (
		recs    [workers][]*crashRecord
		acked   atomic.Int64
		sending atomic.Int64 // writes sent and not yet answered
		killed  atomic.Bool
		errMu   sync.Mutex
		errs    []string
		writers sync.WaitGroup
	)
	streamStart := time.Now()
	for w := range workers {
		writers.Add(1)
		go func() {
			defer writers.Done()
			client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil}}
			defer client.CloseIdleConnections()
			// write sends one write; it reports whether it was acknowledged
			// (got want). Anything else stops this worker: after the kill
			// that is expected, before it an error.
			write := func(st *writeState, method, target string, body any, hdr H, want int, out any) bool {
				*st = writeSent
				var rd io.Reader
				if body != nil {
					b, _ := json.Marshal(body)
					rd = bytes.NewReader(b)
				}
				req, _ := http.NewRequest(method, target, rd)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				if strings.HasPrefix(target, admin+"/") {
					req.Header.Set("Origin", admin)
					req.Header.Set("Content-Type", "application/json") // admin writes take nothing else
				}
				for _, kv := range hdr {
					req.Header.Set(kv[0], kv[1])
				}
				sending.Add(1)
				res, err := client.Do(req)
				var b []byte
				if err == nil {
					b, err = io.ReadAll(io.LimitReader(res.Body, 64<<10))
					res.Body.Close()
				}
				sending.Add(-1)
				if err == nil && res.StatusCode == want {
					if out != nil {
						if err := json.Unmarshal(b, out); err != nil {
							errMu.Lock()
							errs = append(errs, fmt.Sprintf("%s %s: %d with a body that does not decode: %v", method, target, want, err))
							errMu.Unlock()
						}
					}
					*st = writeAcked
					acked.Add(1)
					return true
				}
				if !killed.Load() {
					what := fmt.Sprintf("%s %s before the kill: ", method, target)
					if err != nil {
						what += scrub(err.Error())
					} else {
						what += fmt.Sprintf("%d, want %d: %s", res.StatusCode, want, scrub(string(b)))
					}
					errMu.Lock()
					errs = append(errs, what)
					errMu.Unlock()
				}
				return false
			}
			for i := 0; i < maxIters && !killed.Load(); i++ {
				r := &crashRecord{
					name:     fmt.Sprintf("crash-w%d-%d", w, i),
					password: secret(fmt.Sprintf("crash-w%d-%d: a long enough password", w, i)),
					action:   crashAction(i % 4),
				}
				recs[w] = append(recs[w], r)
				if !write(&r.user, "POST", admin+"/authgate/users",
					map[string]any{"username": r.name, "password": r.password}, nil, http.StatusCreated, nil) {
					return
				}
				var key struct{ ID, Key string }
				if !write(&r.key, "POST", admin+"/authgate/keys",
					map[string]any{"user": r.name, "name": "crash"}, nil, http.StatusCreated, &key) {
					return
				}
				r.keyID, r.apiKey = key.ID, secret(key.Key)
				var tok struct {
					Access string `json:"access_token"`
				}
				if !write(&r.login, "POST", g.Base()+"/rest/login",
					map[string]any{"username": r.name, "password": r.password}, nil, http.StatusOK, &tok) {
					return
				}
				r.access = secret(tok.Access)
				var ok bool
				switch r.action {
				case actRevokeKey:
					ok = write(&r.act, "POST", admin+"/authgate/keys/"+url.PathEscape(r.keyID)+"/revoke", nil, nil, http.StatusOK, nil)
				case actLogout:
					ok = write(&r.act, "POST", g.Base()+"/rest/logout", nil, bearer(r.access), http.StatusOK, nil)
				case actDisable:
					ok = write(&r.act, "POST", admin+"/authgate/users/"+url.PathEscape(r.name)+"/disable", nil, nil, http.StatusOK, nil)
				default:
					ok = true
				}
				if !ok {
					return
				}
			}
		}()
	}

	// The kill, mid-stream: once enough writes were acknowledged.
	for acked.Load() < killAfter && time.Since(streamStart) < killAt {
		time.Sleep(5 * time.Millisecond)
	}
	// Kill while writes are on their way: a kill between writes would
	// prove nothing about the ones in flight.
	for deadline := time.Now().Add(2 * time.Second); sending.Load() < 2 && time.Now().Before(deadline); {
		runtime.Gosched()
	}
	ackedAtKill, sendingAtKill := acked.Load(), sending.Load()
	killed.Store(true)
	kill9(t, g)
	killedAfter := time.Since(streamStart)
	streamDone := make(chan struct{})
	go func() { writers.Wait(); close(streamDone) }()
	select {
	case <-streamDone:
	case <-time.After(30 * time.Second):
		t.Fatal("writers did not stop within 30s of the kill")
	}
	errMu.Lock()
	for _, e := range errs {
		t.Errorf("write failed: %s", e)
	}
	errMu.Unlock()
	if ackedAtKill < killAfter {
		t.Logf("only %d writes acknowledged in %s; killed anyway", ackedAtKill, killAt)
	}

	// The file as the crash left it.
	checkStoreFile(t, g.DB, "as the kill left it")

	// Restart on the same store and verify every acknowledged write.
	g.Start(t)
	waitAdminReady(t, g)
	var all []*crashRecord
	for w := range workers {
		all = append(all, recs[w]...)
	}
	var n crashCounts
	positiveLogins := 0
	for _, r := range all {
		if r.user == writeNone {
			continue
		}
		u := adminGet(t, g, "/authgate/users/"+url.PathEscape(r.name))
		if u.Status != http.StatusOK && u.Status != http.StatusNotFound {
			t.Fatalf("admin GET user %s after the restart: %s", r.name, u)
		}
		n.book(t, r.user, u.Status == http.StatusOK, "the user "+r.name)
		if u.Status != http.StatusOK {
			continue
		}
		var user struct{ Disabled bool }
		var keys []struct {
			ID      string
			Revoked bool
		}
		var sessions []struct{ Revoked bool }
		if err := json.Unmarshal(u.Body, &user); err != nil {
			t.Fatalf("admin GET user %s: %v", r.name, err)
		}
		if err := json.Unmarshal(adminGet(t, g, "/authgate/keys?user="+url.QueryEscape(r.name)).Body, &keys); err != nil {
			t.Fatalf("admin GET keys of %s: %v", r.name, err)
		}
		if err := json.Unmarshal(adminGet(t, g, "/authgate/sessions?user="+url.QueryEscape(r.name)).Body, &sessions); err != nil {
			t.Fatalf("admin GET sessions of %s: %v", r.name, err)
		}
		n.book(t, r.key, len(keys) == 1 && (r.keyID == "" || keys[0].ID == r.keyID), "the key of "+r.name)
		n.book(t, r.login, len(sessions) == 1, "the login (session) of "+r.name)

		// The action, as stored, and as the gateway now treats the key,
		// the token and the password.
		keyStatus, tokenStatus := 0, 0
		if r.key == writeAcked {
			keyStatus = g.Do(t, "GET", "/app/crash/"+r.name, nil, apiKey(r.apiKey)).Status
		}
		if r.login == writeAcked {
			tokenStatus = g.Do(t, "GET", "/app/crash/"+r.name, nil, bearer(r.access)).Status
		}
		var ended bool // the action took effect
		switch r.action {
		case actRevokeKey:
			ended = len(keys) == 1 && keys[0].Revoked
			n.book(t, r.act, ended, "the revocation of "+r.name+"'s key")
		case actLogout:
			ended = len(sessions) == 1 && sessions[0].Revoked
			n.book(t, r.act, ended, "the logout of "+r.name)
		case actDisable:
			ended = user.Disabled
			n.book(t, r.act, ended, "the disable of "+r.name)
		}
		if r.act == writeAcked && !ended {
			continue // booked as lost above
		}
		if r.act != writeNone && r.action == actDisable && user.Disabled {
			body, h := jsonBody(t, map[string]string{"username": r.name, "password": r.password})
			if st := g.Do(t, "POST", "/rest/login", body, h).Status; st != http.StatusUnauthorized {
				t.Errorf("%s is disabled after the restart, but their login answers %d, want 401", r.name, st)
			}
		} else if user.Disabled {
			t.Errorf("%s is disabled after the restart, but no disable was ever sent", r.name)
		}
		// What the gateway does must match what is stored.
		keyEnded := ended && (r.action == actRevokeKey || r.action == actDisable)
		tokenEnded := ended && (r.action == actLogout || r.action == actDisable)
		if want := map[bool]int{true: 401, false: 200}[keyEnded]; keyStatus != 0 && keyStatus != want {
			t.Errorf("the key of %s answers %d after the restart, want %d (revoked or owner disabled: %v)", r.name, keyStatus, want, keyEnded)
		}
		if want := map[bool]int{true: 401, false: 200}[tokenEnded]; tokenStatus != 0 && tokenStatus != want {
			t.Errorf("the token of %s answers %d after the restart, want %d (logged out or user disabled: %v)", r.name, tokenStatus, want, tokenEnded)
		}
		if !user.Disabled && r.user == writeAcked && positiveLogins < 3 {
			// The password hash survived too.
			positiveLogins++
			g.Login(t, r.name, r.password)
		}
	}
	t.Logf("writes acknowledged %d (users %d, keys %d, logins %d, revocations/logouts/disables %d), verified after kill -9 %d, lost %d; unanswered %d (applied %d); killed %s into the stream at %d acknowledged",
		n.acked, n.ackedBy["user"], n.ackedBy["key"], n.ackedBy["login"], n.acked-n.ackedBy["user"]-n.ackedBy["key"]-n.ackedBy["login"],
		n.verified, n.lost, n.unanswered, n.unansweredApplied, killedAfter.Round(time.Millisecond), ackedAtKill)
	if n.acked < 20 {
		t.Errorf("only %d writes were acknowledged before the kill: too few to mean anything", n.acked)
	}
	if sendingAtKill == 0 || n.unanswered == 0 {
		t.Errorf("no write was in flight at the kill (%d sending, %d unanswered): the kill fell between writes and proves nothing about them", sendingAtKill, n.unanswered)
	}
	if int64(n.acked) != acked.Load() {
		t.Errorf("%d writes were acknowledged, but %d were looked at after the restart", acked.Load(), n.acked)
	}
	if n.verified != n.acked {
		t.Errorf("%d acknowledged writes, %d verified after the restart", n.acked, n.verified)
	}

	g.Stop(t)
	checkStoreFile(t, g.DB, "after the restart")
}

// writeState is what became of one write.
type writeState int

const (
	writeNone  writeState = iota // never sent
	writeSent                    // sent, no (expected) answer: may go either way
	writeAcked                   // answered 2xx: must hold
)

type crashAction int

const (
	actRevokeKey crashAction = iota
	actLogout
	actDisable
	actNothing
)

// crashRecord is one chain of writes: user, key, login, then the action.
type crashRecord struct {
	name, password        string
	action                crashAction
	user, key, login, act writeState
	keyID, apiKey, access string
}

type crashCounts struct {
	acked, verified, lost         int
	ackedBy                       map[string]int
	unanswered, unansweredApplied int
}

// book records one write whose effect was looked up after the restart:
// an acknowledged write must have taken effect; an unanswered one may go
// either way.
func (n *crashCounts) book(t *testing.T, st writeState, applied bool, what string) {
	t.Helper()
	switch st {
	case writeAcked:
		n.acked++
		if n.ackedBy == nil {
			n.ackedBy = map[string]int{}
		}
		for _, k := range []string{"user", "key", "login"} {
			if strings.HasPrefix(what, "the "+k+" ") {
				n.ackedBy[k]++
			}
		}
		if applied {
			n.verified++
		} else {
			n.lost++
			t.Errorf("LOST: %s was acknowledged before the kill but does not hold after the restart", what)
		}
	case writeSent:
		n.unanswered++
		if applied {
			n.unansweredApplied++
		}
	}
}

// kill9 SIGKILLs the running Caddy and waits for it to be gone.
func kill9(t *testing.T, g *Gateway) {
	t.Helper()
	if g.proc == nil {
		t.Fatal("kill9: the gateway is not running")
	}
	proc, done := g.proc, g.done
	g.proc = nil
	fmt.Fprintf(g.out, "\n==== e2e: SIGKILL ====\n")
	if err := proc.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("caddy did not exit within 10s of SIGKILL")
	}
	g.client.CloseIdleConnections()
}

// adminGet sends a GET to the admin endpoint.
func adminGet(t *testing.T, g *Gateway, path string) Resp {
	t.Helper()
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.AdminPort)
	req, _ := http.NewRequest("GET", admin+path, nil)
	req.Header.Set("Origin", admin)
	res, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("admin GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return Resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// checkStoreFile opens the (unheld) store file and runs its consistency
// check.
func checkStoreFile(t *testing.T, path, when string) store.Counts {
	t.Helper()
	st, err := bbolt.Open(path, bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("opening the store %s: %v", when, err)
	}
	defer st.Close()
	c, err := st.Check()
	if err != nil {
		t.Fatalf("store check %s: %v", when, err)
	}
	t.Logf("store %s: %+v", when, c)
	return c
}

// waitAdminReady waits (at most 10s) until the admin API serves authgate's
// routes. Caddy's site port answers a moment before the new config becomes
// the one the admin API looks up: until then the routes answer 503.
func waitAdminReady(t *testing.T, g *Gateway) {
	t.Helper()
	admin := fmt.Sprintf("http://127.0.0.1:%d", g.AdminPort)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", admin+"/authgate/signing-keys", nil)
		req.Header.Set("Origin", admin)
		res, err := g.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin API did not serve authgate's routes within 10s of the start (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
