// Command mutants breaks each guarded security property in production
// code, in a scratch copy of the working tree, and runs the tests that must
// catch it. A mutant no test kills is a property no test guards.
//
//	go run ./e2e/mutants          # every mutant (about 10 minutes on 2 cores)
//	go run ./e2e/mutants 3 7      # only mutants 3 and 7
//
// It exits 1 if a mutant survives or no longer applies (the code it breaks
// changed: update the table). Not part of .ci/run, since each e2e mutant
// builds the binary again; run it after changing a guarded property or the
// tests that guard it. Nothing outside the scratch copy is touched.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// mutant breaks one property: the text in file it replaces, and the tests
// (a -run pattern over pkgs) that must fail once it is broken.
type mutant struct {
	id       int
	property string
	file     string
	from, to string
	pkgs     []string
	tests    string
}

var mutants = []mutant{
	{1, "DELETE needs the delete bit", "store/models.go",
		"\tcase \"DELETE\":\n\t\treturn PermDelete", "\tcase \"DELETE\":\n\t\treturn PermWrite",
		[]string{"./store", "./caddymodule"}, "TestPermissionsByMethod|TestKeyPermissionMatrix"},
	{2, "identity headers are stripped in their _ spelling", "internal/httpx/hygiene.go",
		"\tcase c == '_':\n\t\treturn '-'", "\tcase c == '~':\n\t\treturn '-'",
		[]string{"./caddymodule", "./internal/httpx"}, "TestAllowedPathsAndTricks|TestBearerInjectsIdentityAndStripsSpoofs"},
	{3, "an oversized body is invalid_request", "internal/httpx/input.go",
		`ErrBodyTooLarge   = Refuse(http.StatusRequestEntityTooLarge, "invalid_request"`, `ErrBodyTooLarge   = Refuse(http.StatusRequestEntityTooLarge, "too_large"`,
		[]string{"./caddymodule"}, "TestLoginInputsAndFailures"},
	{4, "an unknown user costs a hash", "internal/secret/password.go",
		"\t_, _, _ = verifyArgon(dummyHash, secret)", "\t_ = secret",
		[]string{"./internal/secret", "./caddymodule"}, "TestDummyHashIsRealWork|TestUnknownUserCostsOneHash"},
	{5, "writes are fsynced", "store/bbolt/store.go",
		"&bolt.Options{Timeout: opts.Timeout}", "&bolt.Options{Timeout: opts.Timeout, NoSync: true}",
		[]string{"./store/bbolt"}, "TestWritesAreSynced"},
	{6, "the example's log filter drops query passwords", "Caddyfile.example",
		"\t\t\tdelete password\n", "",
		[]string{"./e2e"}, "TestLogFilterKeepsKeysOutOfLogs"},
	{7, "a guess is reserved before its hash", "store/attempts.go",
		"if e.Failures+e.inflight >= p.Attempts {", "if e.Failures >= p.Attempts {",
		[]string{"./store", "./caddymodule", "./e2e"}, "TestAttemptTrackerReservesBeforeChecking|TestLockoutRace|TestAttackConcurrentGuesses"},
	{8, "a ';' makes a path need a credential", "internal/httpx/paths.go",
		"\t\tif c < 0x20 || c == 0x7f || c == '\\\\' || c == '%' || c == ';' {", "\t\tif c < 0x20 || c == 0x7f || c == '\\\\' || c == '%' {",
		[]string{"./internal/httpx", "./e2e"}, "TestCanonicalPathRefusesDecodingTricks|TestAttack$"},
	{9, "Connection cannot name identity headers", "internal/httpx/hygiene.go",
		"\tif _, ok := hdr[\"Connection\"]; ok {", "\tif _, ok := hdr[\"Connection-Never\"]; ok {",
		[]string{"./internal/httpx", "./caddymodule", "./e2e"}, "TestStripHopByHopTricks|TestConnectionCannotDropIdentity|TestAttack$"},
	{10, "_method is checked for restricted keys", "caddymodule/handler.go",
		"\t\tif p.Permissions()&store.PermAll != store.PermAll {", "\t\tif p.Permissions()&store.PermAll != store.PermAll && false {",
		[]string{"./caddymodule", "./e2e"}, "TestMethodParamsThroughHandler|TestAttack$"},
	{11, "a key's sessions have their own budget", "store/bbolt/sessions.go",
		"\t\tif budget != allBudgets && sess.KeyID != budget {", "\t\tif false && sess.KeyID != budget {",
		[]string{"./store/bbolt", "./e2e"}, "TestConformance|TestAttack$"},
	{12, "an id-shaped name is only an id", "internal/admin/ops.go",
		"\tif store.IDShaped(name) {", "\tif false {",
		[]string{"./internal/admin"}, "TestAdminOpsFindUserByIDNeverByLogin"},
	{13, "mixed-script logins are refused", "store/logins.go",
		"\tif !singleScript(key) {", "\tif false && !singleScript(key) {",
		[]string{"./store/bbolt", "./e2e"}, "TestConformance|TestAttackIdentityConfusion"},
	{14, "a JSON member given twice is refused", "internal/httpx/input.go",
		"\tif err := CheckDuplicateNames(body); err != nil {\n\t\treturn err\n\t}\n\tdec", "\tif err := CheckDuplicateNames(nil); err != nil {\n\t\treturn err\n\t}\n\tdec",
		[]string{"./caddymodule", "./e2e"}, "TestPlentymarketsRefusesDuplicateMembers|TestAttack$"},
	{15, "admin writes need application/json", "internal/admin/routes.go",
		"\t\t\tif err := checkAdminContentType(r); err != nil {", "\t\t\tif err := error(nil); err != nil {",
		[]string{"./internal/admin"}, "TestAdminWritesNeedJSON"},
	{16, "a profile edit does not reveal logins", "internal/auth/profile.go",
		"\t\tif u.Email != before && !selfServiceEmail(before, u.Email) {", "\t\tif u.Email != before && false {",
		[]string{"./internal/auth", "./caddymodule"}, "TestEditProfileEmailRule|TestBabelEmailChangesAreUniform"},
	{17, "the lockout tracker stays bounded", "store/attempts.go",
		"\tfor _, c := range idle[:max(1, min(len(idle), t.limit/10))] {", "\tfor _, c := range idle[:0] {",
		[]string{"./store"}, "TestAttemptTrackerBound"},
	{18, "identifiers are capped before lookup", "internal/auth/login.go",
		"\tif err := checkLoginSize(login); err != nil {", "\tif err := checkLoginSize(\"\"); err != nil {",
		[]string{"./internal/auth", "./caddymodule"}, "TestLoginRefusals|TestIdentifierCaps"},
	{19, "validate neither opens nor creates the store", "caddymodule/app.go",
		"\ta.svc, err = auth.Prepare(a.serviceConfig(), a.logger.Sugar())\n\treturn err\n}",
		"\tif a.svc, err = auth.Prepare(a.serviceConfig(), a.logger.Sugar()); err != nil {\n\t\treturn err\n\t}\n\treturn a.open()\n}",
		[]string{"./caddymodule", "./e2e"}, "TestProvisionLeavesTheStoreAlone|TestValidateOnALiveServer|TestExampleCaddyfileValidates"},
	{20, "an unknown login is not repeated in the audit trail", "internal/auth/login.go",
		"\t\tif u == nil {\n\t\t\tsecret.VerifyDummy(password)\n\t\t\tev.Reason = ReasonUnknownUser",
		"\t\tif u == nil {\n\t\t\tsecret.VerifyDummy(password)\n\t\t\tev.Username = login\n\t\t\tev.Reason = ReasonUnknownUser",
		[]string{"./internal/auth", "./e2e"}, "TestLoginEvents|TestAuditTrail"},
	{21, "a plentymarkets client sees a lock as 403", "internal/dialect/plentymarkets/plentymarkets.go",
		"\tc.Status = http.StatusForbidden\n", "\tc.Status = http.StatusTooManyRequests\n",
		[]string{"./caddymodule", "./e2e"}, "TestPlentymarketsLockIs403|TestPlentyClientSession"},
	{22, "metric labels never hold a client's input", "caddymodule/metrics.go",
		"\t\tm.logins.WithLabelValues(dialect, e.Reason).Inc()", "\t\tm.logins.WithLabelValues(dialect, e.Reason+e.Username).Inc()",
		[]string{"./e2e"}, "TestMetricsScrape"},
	{23, "the session cookie never reaches the upstream", "caddymodule/handler.go",
		"\t\th.browser.StripCookies(r.Header)", "\t\t_ = r.Header",
		[]string{"./caddymodule", "./e2e"}, "TestBrowserLoginWalk|TestBrowserAttacks|TestBrowserWalk"},
	{24, "a cookie-authenticated unsafe request must come from this site", "caddymodule/handler.go",
		"\tif err := h.browser.CheckSameSite(r); err != nil {", "\tif err := error(nil); err != nil {",
		[]string{"./caddymodule", "./e2e"}, "TestBrowserCSRF|TestBrowserAttacks"},
	{25, "rd is checked again after each percent-decoding", "internal/browser/redirect.go",
		"\tfor decoded := rd; strings.Contains(decoded, \"%\"); {", "\tfor decoded := rd; false && strings.Contains(decoded, \"%\"); {",
		[]string{"./internal/browser", "./caddymodule", "./e2e"}, "TestSafeRedirect|TestBrowserRedirectTargets|TestBrowserAttacks"},
	{26, "a path that is not canonical is judged by every rule", "caddymodule/require.go",
		"\tcanonical := canonicalRequest(r)", "\tcanonical := true",
		[]string{"./caddymodule", "./e2e"}, "TestRequire"},
}

func main() {
	root, err := moduleRoot()
	if err != nil {
		fail(err)
	}
	var only []int
	for _, a := range os.Args[1:] {
		var id int
		if _, err := fmt.Sscan(a, &id); err != nil {
			fail(fmt.Errorf("mutant %q: want a number", a))
		}
		only = append(only, id)
	}
	scratch, err := os.MkdirTemp("", "authgate-mutants-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(scratch)
	if err := copyTree(root, scratch); err != nil {
		fail(err)
	}

	bad := 0
	for _, m := range mutants {
		if len(only) > 0 && !slices.Contains(only, m.id) {
			continue
		}
		verdict, err := run(scratch, m)
		if err != nil {
			verdict = "COULD NOT APPLY: " + err.Error()
		}
		if !strings.HasPrefix(verdict, "killed") {
			bad++
		}
		fmt.Printf("mutant %2d  %-50s %s\n", m.id, m.property, verdict)
	}
	if bad > 0 {
		fmt.Printf("%d mutant(s) survived or no longer apply\n", bad)
		os.Exit(1)
	}
	fmt.Println("every mutant was killed")
}

// failRE names a failed test, or its failed subtest
// (TestConformance/SessionLimitPerBudget); deeper levels are left out.
var failRE = regexp.MustCompile(`--- FAIL: (Test\w+(?:/\w+)?)`)

// run applies m to the scratch copy, runs its tests and restores the file.
func run(scratch string, m mutant) (string, error) {
	path := filepath.Join(scratch, m.file)
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if n := bytes.Count(orig, []byte(m.from)); n != 1 {
		return "", fmt.Errorf("the text to break is in %s %d times, want once", m.file, n)
	}
	if err := os.WriteFile(path, bytes.Replace(orig, []byte(m.from), []byte(m.to), 1), 0o644); err != nil {
		return "", err
	}
	defer os.WriteFile(path, orig, 0o644)

	args := append([]string{"test", "-count=1", "-run", m.tests}, m.pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = scratch
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "SURVIVED: " + m.tests + " all passed", nil
	}
	var killers []string
	for _, match := range failRE.FindAllSubmatch(out, -1) {
		if k := string(match[1]); !slices.Contains(killers, k) {
			killers = append(killers, k)
		}
	}
	// A parent fails with its subtest: name only the subtest.
	killers = slices.DeleteFunc(killers, func(k string) bool {
		return slices.ContainsFunc(killers, func(sub string) bool { return strings.HasPrefix(sub, k+"/") })
	})
	sort.Strings(killers)
	if len(killers) == 0 {
		return "killed (the build or a test binary failed)", nil
	}
	return "killed by " + strings.Join(killers, ", "), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// copyTree copies the files git tracks or would track (the working tree
// as it is, uncommitted changes included; not .git, not ignored files).
func copyTree(root, dst string) error {
	cmd := exec.Command("git", "ls-files", "-co", "--exclude-standard", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the working tree
			}
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutants:", err)
	os.Exit(2)
}
