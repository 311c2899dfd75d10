package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestAttackConcurrentGuesses races the lockout through the built binary:
// a burst of wrong guesses sent at once for one account, with `lockout 5`
// (the default), gets at most 5 checked (401); the rest are refused as
// locked (403, the plentymarkets dialect's lock, API.md section 4) without a check. Password logins, PIN checks with a live
// token and quick_login client secrets alike; then the account is locked
// for the right secret too. Before the attempt was reserved ahead of its
// hash, all 40 of a burst were checked.
func TestAttackConcurrentGuesses(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := newGateway(t, up)
	const pw = "race: the right password"
	const pin = "31415926"
	secret(pin)
	g.AddUser(t, "racer", pw, "dev", "racer@example.com")
	g.AddUser(t, "pinner", pw, "dev", "pinner@example.com")
	g.CLI(t, pin+"\n", "user", "set-pin", "pinner", "--pin-stdin")
	quick := createClientKey(t, g, "racer", "read")
	g.Start(t)
	tok := g.Login(t, "pinner", pw)

	burst := func(n int, do func(i int) Resp) map[int]int {
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := do(i)
				mu.Lock()
				counts[r.Status]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		return counts
	}
	json := func(body string) (*strings.Reader, H) {
		return strings.NewReader(body), H{{"Content-Type", "application/json"}}
	}
	for _, c := range []struct {
		name  string
		do    func(i int) Resp
		right func() Resp // the right secret once the burst is over
	}{
		{"password logins, each naming the account differently", func(i int) Resp {
			login := []string{"racer", "RACER", "racer@example.com", "ｒａｃｅｒ"}[i%4]
			body, h := json(fmt.Sprintf(`{"username":%q,"password":"wrong guess %d"}`, login, i))
			return g.Do(t, "POST", "/rest/login", body, h)
		}, func() Resp {
			body, h := json(`{"username":"racer","password":"` + pw + `"}`)
			return g.Do(t, "POST", "/rest/login", body, h)
		}},
		{"PIN checks with a live token", func(i int) Resp {
			body, h := json(fmt.Sprintf(`{"pin":"%08d"}`, i))
			return g.Do(t, "POST", "/rest/check_pin", body, append(h, bearer(tok.Access)...))
		}, func() Resp {
			body, h := json(`{"pin":"` + pin + `"}`)
			return g.Do(t, "POST", "/rest/check_pin", body, append(h, bearer(tok.Access)...))
		}},
		{"quick_login client secrets", func(i int) Resp {
			body, h := formBody(url.Values{"client_id": {quick.ID}, "client_secret": {fmt.Sprintf("agcs_wrongGuess%04d", i)}})
			return g.Do(t, "POST", "/rest/quick_login", body, h)
		}, func() Resp { return quickLogin(g, quick.ID, quick.ClientSecret)(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			counts := burst(40, c.do)
			if counts[401] > 5 || counts[401]+counts[403] != 40 {
				t.Errorf("SECURITY: statuses %v for 40 concurrent wrong guesses: want at most 5 checked (401) and the rest 403 (locked)", counts)
			}
			if r := c.right(); r.Status != 403 || r.Header.Get("Retry-After") == "" {
				t.Errorf("the right secret after the burst: %s (Retry-After %q), want 403 (locked) with Retry-After", r, r.Header.Get("Retry-After"))
			}
		})
	}
}
