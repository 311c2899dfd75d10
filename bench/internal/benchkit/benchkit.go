// Package benchkit holds the small helpers bench/cmd's programs share:
// running work on several goroutines or in batches, percentiles, and
// memory figures from /proc.
package benchkit

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Parallel runs fn(0..n-1) on workers goroutines and returns the first
// error, after which the others stop taking work. If progress is set, it
// is called with the count done after every tenth of n.
func Parallel(n, workers int, progress func(done int), fn func(i int) error) error {
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	step := int64(max(n/10, 1))
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others
					return
				}
				if d := done.Add(1); progress != nil && d%step == 0 {
					progress(int(d))
				}
			}
		})
	}
	wg.Wait()
	return first
}

// InBatches calls fn for [0, size), [size, 2*size), ... up to n, in order,
// and returns the first error. If progress is set, it is called with the
// count done after the batches that complete each tenth of n.
func InBatches(n, size int, progress func(done int), fn func(lo, hi int) error) error {
	size = max(size, 1)
	next := 0
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		if err := fn(lo, hi); err != nil {
			return err
		}
		if progress != nil && hi >= next {
			progress(hi)
			next += max(n/10, 1)
		}
	}
	return nil
}

// Percentile returns the p-th percentile of sorted durations, or 0.
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// ProcStatus returns a "kB" field of /proc/<pid>/status (pid 0: this
// process) in bytes, or 0 if it cannot be read.
func ProcStatus(pid int, field string) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Since is the time since t, to the millisecond.
func Since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
