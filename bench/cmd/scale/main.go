// Command scale fills a store with 1,000,000 users and 1,000,000 API keys
// through the store API and reports what that costs: file size per
// record, open time, uncached lookup latency of UserByID and
// APIKeyByDigest (each record looked up once, so every lookup reads bbolt:
// users miss the bounded cache, keys are not cached by the store), and
// resident memory with the cache bound in force. bench/run.sh --scale runs it.
//
//	go run ./bench/cmd/scale -dir /dev/shm/x -move-to /tmp/x
//
// It runs in two processes: this one fills the file (and its memory says
// nothing about serving), then starts itself again with -measure, which
// opens the file cold in a fresh process and measures; that process's
// memory is what a server holding such a store would hold on top of
// Caddy.
//
// Records are built on several goroutines and stored with the store's
// batch calls (CreateUsers, CreateAPIKeys), -batch records per fsynced
// transaction. -dir may be on tmpfs (/dev/shm/...) with -move-to putting
// the file on the real disk before measuring. The lookups then read the
// file through the page cache (it was just written); a cold disk would add
// device reads to the misses.
package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/authgate/authgate/bench/internal/benchkit"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
)

var (
	dir     = flag.String("dir", "", "directory to fill scale.db in")
	moveTo  = flag.String("move-to", "", "move scale.db here before measuring (default: measure in -dir)")
	users   = flag.Int("users", 1_000_000, "users to create")
	keys    = flag.Int("keys", 1_000_000, "API keys to create (owners round-robin)")
	cache   = flag.Int64("cache", 100_000, "cache bound: Options.CacheEntries, as the `cache_entries` option")
	samples = flag.Int("lookups", 100_000, "distinct random records looked up, of each kind")
	workers = flag.Int("workers", runtime.GOMAXPROCS(0), "goroutines building records while filling")
	batch   = flag.Int("batch", 10000, "records per transaction while filling")
	measure = flag.Bool("measure", false, "internal: measure an existing file (the second process)")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("scale: ")
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if *measure {
		measureStore(*dir)
		return
	}

	db := filepath.Join(*dir, "scale.db")
	if _, err := os.Stat(db); err == nil {
		log.Fatalf("%s exists; give an empty -dir", db)
	}
	fill(db)

	at := *dir
	if *moveTo != "" && *moveTo != *dir {
		t := time.Now()
		for _, name := range []string{"scale.db", "scale-users.txt", "scale-keys.txt"} {
			if err := move(filepath.Join(*dir, name), filepath.Join(*moveTo, name)); err != nil {
				log.Fatal(err)
			}
		}
		at = *moveTo
		fmt.Printf("moved to %s in %v\n", at, benchkit.Since(t))
	}

	// Measure in a fresh process: its memory is the serving side's only.
	cmd := exec.Command(os.Args[0], "-measure", "-dir", at,
		"-cache", strconv.FormatInt(*cache, 10), "-lookups", strconv.Itoa(*samples))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatal(err)
	}
}

// fill creates the users and keys and writes their IDs and key digests to
// scale-users.txt and scale-keys.txt for the measuring process.
func fill(db string) {
	start := time.Now()
	st, err := bbolt.Open(db, bbolt.Options{CacheEntries: *cache})
	if err != nil {
		log.Fatal(err)
	}
	phc, err := secret.HashSecret("scale-password-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("filling %s: %d users, %d API keys, in transactions of %d records\n",
		db, *users, *keys, *batch)

	ids := make([]string, *users)
	t := time.Now()
	userList := make([]*store.User, *users)
	parallel("users built", *users, func(i int) error {
		userList[i] = &store.User{
			ID:           store.NewID("usr_"),
			Username:     fmt.Sprintf("user%07d", i+1),
			Email:        fmt.Sprintf("user%07d@example.com", i+1),
			FirstName:    "Scale",
			LastName:     fmt.Sprintf("User %d", i+1),
			PasswordHash: phc,
			Roles:        []string{"staff"},
		}
		ids[i] = userList[i].ID
		return nil
	})
	inBatches("users stored", *users, func(lo, hi int) error { return st.CreateUsers(userList[lo:hi]) })
	userList = nil
	usersTook := time.Since(t)

	digests := make([]store.Digest, *keys)
	t = time.Now()
	keyList := make([]*store.APIKey, *keys)
	parallel("API keys built", *keys, func(i int) error {
		key, err := secret.NewSecret(secret.KeyPrefix)
		if err != nil {
			return err
		}
		keyList[i] = &store.APIKey{
			Name:        fmt.Sprintf("key-%d", i+1),
			OwnerID:     ids[i%len(ids)],
			Permissions: store.PermRead,
			Digest:      store.DigestOf(key),
			Hint:        secret.Mask(key),
		}
		digests[i] = keyList[i].Digest
		return nil
	})
	inBatches("API keys stored", *keys, func(lo, hi int) error { return st.CreateAPIKeys(keyList[lo:hi]) })
	keyList = nil
	keysTook := time.Since(t)
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("filled in %v: users %v (%.0f/s), API keys %v (%.0f/s)\n", benchkit.Since(start),
		usersTook.Round(time.Second), float64(*users)/usersTook.Seconds(),
		keysTook.Round(time.Second), float64(*keys)/keysTook.Seconds())

	writeLines(filepath.Join(*dir, "scale-users.txt"), len(ids), func(i int) string { return ids[i] })
	writeLines(filepath.Join(*dir, "scale-keys.txt"), len(digests), func(i int) string { return hex.EncodeToString(digests[i][:]) })
}

func measureStore(dir string) {
	db := filepath.Join(dir, "scale.db")
	fi, err := os.Stat(db)
	if err != nil {
		log.Fatal(err)
	}
	// Only the sampled records are kept in memory: this process's memory
	// should be the store's, not a list of a million IDs.
	rng := rand.New(rand.NewPCG(1, 2))
	nUsers, nKeys := countLines(filepath.Join(dir, "scale-users.txt")), countLines(filepath.Join(dir, "scale-keys.txt"))
	ids := sampleLines(filepath.Join(dir, "scale-users.txt"), pick(rng, nUsers, *samples))
	var digests []store.Digest
	for _, h := range sampleLines(filepath.Join(dir, "scale-keys.txt"), pick(rng, nKeys, *samples)) {
		var d store.Digest
		if err := d.UnmarshalText([]byte(h)); err != nil {
			log.Fatal(err)
		}
		digests = append(digests, d)
	}
	records := nUsers + nKeys
	fmt.Printf("\nfile: %.1f MiB for %d users + %d API keys = %.0f bytes per record (all indexes included)\n",
		mib(fi.Size()), nUsers, nKeys, float64(fi.Size())/float64(records))
	debug.FreeOSMemory() // what is left of reading the sample lists
	rssBase := benchkit.ProcStatus(0, "VmRSS")

	t := time.Now()
	st, err := bbolt.Open(db, bbolt.Options{CacheEntries: *cache})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	fmt.Printf("open: %v (user cache bound %d)\n", time.Since(t).Round(time.Microsecond), *cache)
	rssOpen := benchkit.ProcStatus(0, "VmRSS")

	userLat := timeLookups(len(ids), func(i int) error {
		_, err := st.UserByID(ids[i])
		return err
	})
	keyLat := timeLookups(len(digests), func(i int) error {
		_, err := st.APIKeyByDigest(digests[i])
		return err
	})
	// For contrast: up to 1,000 users (well within the cache bound) looked
	// up a second and a third time; the third is timed, when they are
	// cached.
	hot := ids[:min(1000, len(ids), int(*cache/2))]
	hotLookup := func(i int) error {
		_, err := st.UserByID(hot[i])
		return err
	}
	timeLookups(len(hot), hotLookup)
	st.WaitCache()
	userHot := timeLookups(len(hot), hotLookup)

	fmt.Printf("\nlookups, each of %d distinct random records once (bbolt read + JSON decode; a user also fills the cache, keys are not cached by the store):\n", *samples)
	fmt.Printf("  %-16s p50 %7.1fµs  p99 %7.1fµs  mean %7.1fµs\n", "UserByID", us(benchkit.Percentile(userLat, 50)), us(benchkit.Percentile(userLat, 99)), us(mean(userLat)))
	fmt.Printf("  %-16s p50 %7.1fµs  p99 %7.1fµs  mean %7.1fµs\n", "APIKeyByDigest", us(benchkit.Percentile(keyLat, 50)), us(benchkit.Percentile(keyLat, 99)), us(mean(keyLat)))
	fmt.Printf("  %-16s p50 %7.1fµs  p99 %7.1fµs  (a cached UserByID, for contrast)\n", "UserByID, hit", us(benchkit.Percentile(userHot, 50)), us(benchkit.Percentile(userHot, 99)))

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("\nmemory of the measuring process (user cache bound %d entries, %d users + %d keys looked up):\n",
		*cache, *samples, *samples)
	fmt.Printf("  VmRSS before open %.1f MiB (this program and its samples), after open %.1f MiB, after lookups %.1f MiB, peak (VmHWM) %.1f MiB\n",
		mib(rssBase), mib(rssOpen), mib(benchkit.ProcStatus(0, "VmRSS")), mib(benchkit.ProcStatus(0, "VmHWM")))
	fmt.Printf("  of which RssAnon %.1f MiB (Go heap: mostly the user cache) and RssFile %.1f MiB (mmap'd store pages touched; the kernel may drop them)\n",
		mib(benchkit.ProcStatus(0, "RssAnon")), mib(benchkit.ProcStatus(0, "RssFile")))
	fmt.Printf("  Go heap in use %.1f MiB after GC\n", mib(int64(ms.HeapInuse)))
}

// pick returns n distinct indexes below max in random order.
func pick(rng *rand.Rand, max, n int) []int {
	n = min(n, max)
	return rng.Perm(max)[:n]
}

func timeLookups(n int, fn func(i int) error) []time.Duration {
	lat := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if err := fn(i); err != nil {
			log.Fatalf("lookup %d: %v", i, err)
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat
}

// inBatches stores n records in transactions of -batch, reporting progress.
func inBatches(what string, n int, fn func(lo, hi int) error) {
	progress := func(done int) { fmt.Printf("  %s: %d of %d\n", what, done, n) }
	if err := benchkit.InBatches(n, *batch, progress, fn); err != nil {
		log.Fatalf("%s: %v", what, err)
	}
}

// parallel builds n records on -workers goroutines, reporting progress.
func parallel(what string, n int, fn func(i int) error) {
	start := time.Now()
	progress := func(done int) {
		el := time.Since(start)
		fmt.Printf("  %s: %d of %d, %v, %.0f/s\n", what, done, n, el.Round(time.Second), float64(done)/el.Seconds())
	}
	if err := benchkit.Parallel(n, *workers, progress, fn); err != nil {
		log.Fatal(err)
	}
}

func move(from, to string) error {
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(from)
}

func writeLines(path string, n int, line func(i int) string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		w.WriteString(line(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// countLines counts the non-empty lines of path.
func countLines(path string) int {
	n := 0
	eachLine(path, func(int, string) { n++ })
	return n
}

// sampleLines returns the lines of path at the indexes of want, in want's
// order.
func sampleLines(path string, want []int) []string {
	pos := make(map[int]int, len(want))
	for p, i := range want {
		pos[i] = p
	}
	out := make([]string, len(want))
	eachLine(path, func(i int, l string) {
		if p, ok := pos[i]; ok {
			out[p] = l
		}
	})
	return out
}

func eachLine(path string, fn func(i int, line string)) {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			fn(i, l)
			i++
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
