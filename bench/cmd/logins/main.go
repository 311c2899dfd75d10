// Command logins measures password logins against a running authgate
// (bench/run.sh points it at configuration C): logins per second and
// latency with 1, 2 and 16 concurrent clients, and the server's resident
// memory while they run, read from /proc/<pid>/status.
//
//	go run ./bench/cmd/logins -url http://127.0.0.1:8403/rest/login -pid 1234
//
// Every login is a full plentymarkets login: an argon2id check at the
// default parameters (m=19 MiB, t=2, p=1), a new session and a lastLogIn
// update (two fsynced store writes) and a signed token pair. Client k logs
// in as user <prefix><k mod users + 1>, so no two clients share a user
// unless -users is smaller than the number of clients. A user's session
// limit revokes their oldest session as they go, as in production.
//
// The first login (a check of URL and password) comes before the first
// phase, so RSS_before includes one login's hash.
//
// Peak memory: before each phase the kernel's high-water mark is reset
// (writing 5 to /proc/<pid>/clear_refs), so VmHWM after the phase is the
// peak during it. If the reset is refused, the peak is the sampled
// maximum of VmRSS (every 20 ms) and is marked "~".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/bench/internal/benchkit"
)

func main() {
	var (
		target   = flag.String("url", "http://127.0.0.1:8403/rest/login", "login URL (plentymarkets dialect)")
		prefix   = flag.String("user-prefix", "bench", "users are <prefix>00001, <prefix>00002, ...")
		users    = flag.Int("users", 16, "how many users exist")
		password = flag.String("password", "bench-password-1", "password of every user")
		clients  = flag.String("clients", "1,2,16", "concurrent clients of each phase")
		duration = flag.Duration("duration", 5*time.Second, "length of each phase")
		pid      = flag.Int("pid", 0, "PID of the server, for its memory (0: not measured)")
		header   = flag.Bool("header", true, "print the table header")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("logins: ")

	var phases []int
	for _, s := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Fatalf("-clients %q: want a comma-separated list of positive numbers", *clients)
		}
		phases = append(phases, n)
	}

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: slices.Max(phases),
			DisableCompression:  true,
		},
	}

	// One login first: fails fast on a wrong URL or password.
	if _, err := login(client, *target, fmt.Sprintf("%s%05d", *prefix, 1), *password); err != nil {
		log.Fatalf("first login: %v", err)
	}

	if *header {
		fmt.Printf("%-8s %8s %10s %9s %9s %7s %11s %11s %11s\n",
			"clients", "logins", "logins/s", "p50_ms", "p99_ms", "failed", "RSS_before", "peak_RSS", "RSS_after")
	}
	for _, n := range phases {
		runPhase(client, n, *target, *prefix, *users, *password, *duration, *pid)
	}
}

func runPhase(client *http.Client, n int, target, prefix string, users int, password string, d time.Duration, pid int) {
	exact := false
	before := "-"
	if pid > 0 {
		before = mib(benchkit.ProcStatus(pid, "VmRSS"))
		exact = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	}
	var sampled atomic.Int64
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	if pid > 0 {
		samplerDone.Add(1)
		go func() {
			defer samplerDone.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if rss := benchkit.ProcStatus(pid, "VmRSS"); rss > sampled.Load() {
					sampled.Store(rss)
				}
				select {
				case <-stopSampling:
					return
				case <-t.C:
				}
			}
		}()
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		failed    atomic.Int64
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("%s%05d", prefix, k%users+1)
			var mine []time.Duration
			for time.Now().Before(deadline) {
				took, err := login(client, target, user, password)
				if err != nil {
					failed.Add(1)
					continue
				}
				mine = append(mine, took)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	samplerDone.Wait()

	slices.Sort(latencies)
	peak, after := "-", "-"
	if pid > 0 {
		if exact {
			peak = mib(benchkit.ProcStatus(pid, "VmHWM"))
		} else {
			peak = "~" + mib(sampled.Load())
		}
		after = mib(benchkit.ProcStatus(pid, "VmRSS"))
	}
	fmt.Printf("%-8d %8d %10.1f %9.1f %9.1f %7d %11s %11s %11s\n",
		n, len(latencies), float64(len(latencies))/elapsed.Seconds(),
		ms(benchkit.Percentile(latencies, 50)), ms(benchkit.Percentile(latencies, 99)), failed.Load(), before, peak, after)
}

// login does one POST /rest/login and checks that a token came back.
func login(client *http.Client, target, user, password string) (time.Duration, error) {
	form := url.Values{"username": {user}, "password": {password}}
	t := time.Now()
	resp, err := client.PostForm(target, form)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(t)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "access_token") {
		return 0, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return took, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
