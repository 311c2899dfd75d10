package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// ---------------------------------------------------------------------------
// A real browser: Debian's Chromium, headless, driven over the DevTools
// protocol by chromedp. One browser per test, in a fresh profile, bounded in
// time, and gone (every process of it) when the test ends.
//
// Without a Chromium the browser tests skip, unless
// AUTHGATE_BROWSER_TESTS=require (CI sets it), and then they fail.
// .ci/install-chromium installs one; AUTHGATE_CHROMIUM names another binary.

const (
	// browserTestTimeout bounds one test's browser: when it passes, the
	// browser is killed and every action still running fails.
	browserTestTimeout = 60 * time.Second
	// browserStepTimeout bounds one helper's action (a navigation, a
	// submit, a query), so that a test fails at the step that hangs.
	browserStepTimeout = 20 * time.Second
)

// findChromium returns the browser binary: AUTHGATE_CHROMIUM if set (it
// must exist), else the first of chromium, chromium-browser, google-chrome
// on PATH.
func findChromium() (string, error) {
	if p := os.Getenv("AUTHGATE_CHROMIUM"); p != "" {
		full, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("AUTHGATE_CHROMIUM=%s: %w", p, err)
		}
		return full, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if full, err := exec.LookPath(name); err == nil {
			return full, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome on PATH")
}

// browserRequired reports whether a missing browser fails the test rather
// than skipping it.
func browserRequired() bool { return os.Getenv("AUTHGATE_BROWSER_TESTS") == "require" }

// browserFlags are the allocator options: chromedp's defaults (no first
// run, no background networking, no extensions, no sync, ...) and those
// fit for CI: the new headless mode, no GPU, shared memory in /tmp (a
// container's /dev/shm is small), no sandbox as root (Chromium refuses to
// start as root with it), no proxy, and no name resolution but localhost:
// a test's browser reaches only loopback.
func browserFlags(bin, dataDir string, out *lockedBuffer) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dataDir),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	return opts
}

// newBrowser starts a headless Chromium for t and returns its chromedp
// context (one tab). The browser lives at most browserTestTimeout and is
// closed, its processes checked gone and its profile removed, when t ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	bin, err := findChromium()
	if err != nil {
		switch {
		case os.Getenv("AUTHGATE_CHROMIUM") != "":
			t.Fatalf("browser test: %v", err)
		case browserRequired():
			t.Fatalf("browser test: %v, and AUTHGATE_BROWSER_TESTS=require; run .ci/install-chromium", err)
		default:
			t.Skipf("browser test skipped: %v (run .ci/install-chromium, or set AUTHGATE_CHROMIUM)", err)
		}
	}

	// Our own profile dir, not chromedp's, so that cleanup can find every
	// process that still uses it (Chromium passes --user-data-dir to all
	// its children) and fail the test if any outlived the browser.
	dataDir, err := os.MkdirTemp("", "authgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}

	root, rootCancel := context.WithTimeout(context.Background(), browserTestTimeout)
	allocCtx, allocCancel := chromedp.NewExecAllocator(root, browserFlags(bin, dataDir, out)...)
	ctx, ctxCancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		fmt.Fprintf(out, "chromedp error: "+format+"\n", args...)
	}))

	var pid int
	t.Cleanup(func() {
		closeBrowser(t, ctx, ctxCancel, allocCancel, rootCancel)
		if pid != 0 {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("browser: Chromium (pid %d) still exists after the test (kill -0: %v)", pid, err)
			}
		}
		// Children exit on their own once the browser has gone; give
		// those of a killed browser a moment before calling them stray.
		stray := processesUsing(dataDir)
		for deadline := time.Now().Add(3 * time.Second); len(stray) > 0 && time.Now().Before(deadline); stray = processesUsing(dataDir) {
			time.Sleep(50 * time.Millisecond)
		}
		if len(stray) > 0 {
			t.Errorf("browser: %d Chromium processes outlived the browser (pids %v); killing them", len(stray), stray)
			for _, p := range stray {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		removeProfile(t, dataDir)
		if t.Failed() {
			t.Logf("---- chromium output ----\n%s---- end of chromium output ----", scrub(out.String()))
		}
	})

	// Start it now, so that a browser that cannot start fails here, with
	// its output, and not in the middle of a test's first step.
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v\n---- chromium output ----\n%s", bin, err, out.String())
	}
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		pid = c.Browser.Process().Pid
	}
	// The leak check at cleanup finds processes by their profile dir: it
	// must see this browser's now, or it would see nothing then.
	procs := processesUsing(dataDir)
	if len(procs) < 2 {
		t.Fatalf("browser: %d processes have --user-data-dir=%s, want the browser and its children: the check for stray processes would be blind", len(procs), dataDir)
	}
	t.Logf("browser: %s started in %s (pid %d, %d processes)", bin, time.Since(start).Round(time.Millisecond), pid, len(procs))
	return ctx
}

// closeBrowser closes the browser gracefully (at most 10s), then cancels
// everything and waits (at most 30s) for the process to be reaped.
func closeBrowser(t *testing.T, ctx context.Context, ctxCancel, allocCancel, rootCancel context.CancelFunc) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := chromedp.Cancel(cctx); err != nil && !errors.Is(err, context.Canceled) &&
			!errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			t.Logf("browser: closing: %v", err)
		}
		ctxCancel()
		allocCancel() // kills the process if still there, and waits for it
		rootCancel()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rootCancel()
		t.Errorf("browser: Chromium did not stop within 30s of the end of the test")
	}
}

// processesUsing returns the pids of the live processes whose command line
// holds --user-data-dir=dir. Chromium's children rewrite their argv into
// one space-separated string, so the flag is matched as a word, not as a
// whole NUL-separated argument. Zombies (dead, not yet reaped) have an
// empty command line and are not counted.
func processesUsing(dir string) []int {
	want := []byte("--user-data-dir=" + dir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for rest := cmdline; ; {
			i := bytes.Index(rest, want)
			if i < 0 {
				break
			}
			before, after := i == 0 || rest[i-1] == 0 || rest[i-1] == ' ', rest[i+len(want):]
			if before && (len(after) == 0 || after[0] == 0 || after[0] == ' ') {
				pids = append(pids, pid)
				break
			}
			rest = after
		}
	}
	return pids
}

// removeProfile removes the profile dir, retrying for a few seconds (a
// child that just died may have written into it).
func removeProfile(t *testing.T, dir string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Errorf("browser: removing the profile %s: %v", dir, err)
}

// step runs a with the per-step bound and fails t with what on error.
func step[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// cssQuote quotes s for a CSS attribute selector.
func cssQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ---------------------------------------------------------------------------
// What a login walk needs.

// visit navigates to url, waits for the page to load and, if sel is not
// empty, for the element sel (CSS) to be visible. It returns the final
// document's response (after any redirects).
func visit(t *testing.T, ctx context.Context, url, sel string) *network.Response {
	t.Helper()
	res := step(t, ctx, "navigating to "+url, chromedp.NavigateResponse(url))
	if sel != "" {
		step(t, ctx, "waiting for "+sel+" on "+url, chromedp.WaitVisible(chromedp.CSS(sel)))
	}
	return res
}

// waitVisible waits for the element sel (CSS) to be visible.
func waitVisible(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	step(t, ctx, "waiting for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// currentURL is the tab's document location.
func currentURL(t *testing.T, ctx context.Context) string {
	t.Helper()
	return step(t, ctx, "reading the location", chromedp.Location())
}

// fill types value into input[name=name] (after clearing it), as a person
// would: key events, so that the page's input handlers run. It fails t
// unless the field then holds exactly value.
func fill(t *testing.T, ctx context.Context, name, value string) {
	t.Helper()
	css := "input[name=" + cssQuote(name) + "]"
	sel := chromedp.CSS(css)
	q, _ := json.Marshal(css)
	// Cleared in JS: chromedp v0.23's SetValue(sel, "") sends no argument
	// (an empty string is dropped by omitempty) and sets "undefined".
	clear := fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = ""; e.dispatchEvent(new Event("input", {bubbles: true})); return e.value })()`, q)
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.WaitVisible(sel),
		chromedp.Focus(sel),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			v, err := chromedp.Evaluate[string](clear)(ctx, tg)
			if err == nil && v != "" {
				err = fmt.Errorf("clearing left %q", v)
			}
			return err
		}),
	}
	if value != "" {
		steps = append(steps, chromedp.SendKeys(sel, value))
	}
	step(t, ctx, "filling "+name, chromedp.Steps(steps...))
	got := step(t, ctx, "reading "+name, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).value`, q)))
	if got != value {
		t.Fatalf("browser: filling %s: the field holds %d characters, want the %d typed", name, len([]rune(got)), len([]rune(value)))
	}
}

// submitForm clicks the element sel (CSS: a submit button), waits for the
// navigation it starts to load, and returns the final document's response
// (after any redirects: a 303 to the next page gives that page's).
func submitForm(t *testing.T, ctx context.Context, sel string) *network.Response {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: submitting with %s: %v", sel, err)
	}
	return res
}

// pageText is document.body.innerText: what a person reads.
func pageText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return step(t, ctx, "reading the page text", chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
}

// evalJS evaluates a JavaScript expression in the page.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return step(t, ctx, "evaluating "+expr, chromedp.Evaluate[T](expr))
}

// screenshot takes a PNG of the whole page (beyond the viewport), writes
// it to path (its directory is created) and returns it.
func screenshot(t *testing.T, ctx context.Context, path string) []byte {
	t.Helper()
	png := step(t, ctx, "taking a screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

// browserCookies lists the cookies the browser would send to url, with
// their flags (HTTPOnly, Secure, SameSite, Path, Expires, Session).
func browserCookies(t *testing.T, ctx context.Context, url string) []*network.Cookie {
	t.Helper()
	return step(t, ctx, "reading the cookies of "+url, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return res.Cookies, err
	})
}

// cookieNamed returns the cookie called name, or nil.
func cookieNamed(cookies []*network.Cookie, name string) *network.Cookie {
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// setBrowserCookie plants a cookie in the browser, as an attacker who can
// write one would (a session-fixation test). Set URL (or Domain and Path);
// HTTPOnly, Secure and SameSite as wanted.
func setBrowserCookie(t *testing.T, ctx context.Context, c network.SetCookieParams) {
	t.Helper()
	step(t, ctx, "setting the cookie "+c.Name, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCookie, c)
		return err
	}))
}
