package config

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

const keepalivedSamples = "/usr/share/doc/keepalived/samples"

// knownExitDifferences are the configurations where vipd -t and
// keepalived -t both reject but with different exit codes, with the
// reason (docs/compat.md repeats them).
var knownExitDifferences = map[string]string{}

// TestKeepalivedSideBySide runs `keepalived -t` and `vipd -t` on the same
// configurations, in a network namespace that has the interfaces they
// name, and requires that vipd accepts exactly when keepalived does (and,
// unless a reason is recorded, with the same exit code). The
// configurations are every sample of the keepalived package, the
// configurations transcribed from the users' posts in testdata/seeds, and
// every case of the diagnostics table, and one-line mutants of them.
// keepalived must be the version the expectations were recorded against
// (keepalivedVersion). A case where keepalived -t crashes, is killed or
// times out fails unless knownKeepalivedCrashes says why it happens
// there; the summary counts and names them.
func TestKeepalivedSideBySide(t *testing.T) {
	lab.RequireRoot(t)
	for _, kv := range sideBySideVersions {
		t.Run("keepalived-"+kv.name, func(t *testing.T) {
			bin := kv.find(t)
			version := keepalivedVersion(t, bin, kv)
			sideBySide(t, bin, version, kv)
		})
	}
}

// sideBySide compares vipd -t, judging as keepalived kv.minor, with one
// keepalived binary.
func sideBySide(t *testing.T, bin, version string, kv sideBySideVersion) {
	l := lab.New(t)
	h := l.Host("kt")
	// Interfaces the configurations name, besides eth0 (veth pairs: the
	// kernel has no dummy interfaces).
	for _, name := range []string{"eth1", "eth2", "ens33"} {
		h.MustRun("ip", "link", "add", name, "type", "veth", "peer", "name", name+"-p")
		h.MustRun("ip", "link", "set", name, "up")
	}
	dir := t.TempDir()

	type cfgFile struct{ name, path string }
	var files []cfgFile
	samples, _ := filepath.Glob(filepath.Join(keepalivedSamples, "keepalived.conf.*"))
	if len(samples) == 0 {
		t.Fatalf("no keepalived samples in %s", keepalivedSamples)
	}
	for _, f := range samples {
		files = append(files, cfgFile{"sample/" + filepath.Base(f), f})
	}
	seeds, _ := filepath.Glob("testdata/seeds/*.conf")
	if len(seeds) < 8 {
		t.Fatalf("want the seed configurations in testdata/seeds, found %d", len(seeds))
	}
	for _, f := range seeds {
		abs, _ := filepath.Abs(f)
		files = append(files, cfgFile{"seed/" + filepath.Base(f), abs})
	}
	golden, _ := filepath.Glob("testdata/golden/*.conf")
	for _, f := range golden {
		if strings.HasSuffix(f, ".vipd.conf") {
			continue // vipd extensions: keepalived rejects them by design
		}
		abs, _ := filepath.Abs(f)
		files = append(files, cfgFile{"golden/" + filepath.Base(f), abs})
	}
	for i, tc := range diagCases {
		if tc.vipdOnly || tc.version != "" && tc.version != kv.minor {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("diag%03d.conf", i))
		if err := os.WriteFile(p, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, cfgFile{"diag/" + tc.name, p})
	}

	// Mutants: the configurations above with one line changed (a value
	// replaced, a line dropped or repeated, a keyword misspelt),
	// deterministic, to compare verdicts beyond the cases written by hand.
	var bases []mutantBase
	for _, f := range files {
		if strings.HasPrefix(f.name, "diag/") {
			continue
		}
		if data, err := os.ReadFile(f.path); err == nil {
			bases = append(bases, mutantBase{f.name, data})
		}
	}
	// VIPD_MUTANTS and VIPD_MUTANT_SEED widen the search by hand.
	nMut, seed := defaultMutants, int64(defaultMutantSeed)
	if v, err := strconv.Atoi(os.Getenv("VIPD_MUTANTS")); err == nil {
		nMut = v
	}
	if v, err := strconv.ParseInt(os.Getenv("VIPD_MUTANT_SEED"), 10, 64); err == nil {
		seed = v
	}
	muts := mutants(bases, nMut, seed)
	if len(muts) != nMut {
		t.Fatalf("generated %d mutants, want %d", len(muts), nMut)
	}
	for i, m := range muts {
		// A mutant that means what its base means tests nothing new.
		if slices.Equal(confWords(m.data), confWords(m.base)) {
			t.Fatalf("%s does not differ from its base", m.name)
		}
		p := filepath.Join(dir, fmt.Sprintf("mutant%03d.conf", i))
		if err := os.WriteFile(p, m.data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, cfgFile{m.name, p})
	}

	var mu sync.Mutex
	var accepted, rejected int
	var crashes, timeouts []string
	ran := map[string]bool{}
	t.Run("case", func(t *testing.T) {
		for _, f := range files {
			t.Run(f.name, func(t *testing.T) {
				t.Parallel()
				pids := t.TempDir()
				k := runKeepalived(t, h, bin, "-t", "-f", f.path,
					"-p", pids+"/k.pid", "-r", pids+"/v.pid", "-c", pids+"/c.pid", "-b", pids+"/b.pid")
				mu.Lock()
				ran[f.name] = true
				mu.Unlock()
				known, listed := kv.crashes[f.name]
				if k.broke() {
					mu.Lock()
					if k.timedOut {
						timeouts = append(timeouts, f.name)
					} else {
						crashes = append(crashes, f.name)
					}
					mu.Unlock()
					switch {
					case !listed:
						t.Fatalf("keepalived -t %s, and knownKeepalivedCrashes does not list this case: find out why and list it (or fix the case)\n%s", k.how(), k.out)
					case !regexp.MustCompile(known.evidence).MatchString(k.out):
						t.Fatalf("keepalived -t %s, but without what knownKeepalivedCrashes expects it to print first (%q), so the recorded reason may not hold\n%s", k.how(), known.evidence, k.out)
					}
					t.Logf("keepalived -t %s, a known crash: %s", k.how(), known.why)
					// Still hold vipd to a verdict with a file:line diagnostic.
					vout, vcode := vipdCheck(t, h, f.path, kv.minor)
					if vcode == 0 {
						t.Errorf("vipd -t accepts what keepalived crashes on:\n%s", vout)
					}
					return
				}
				if listed {
					t.Errorf("knownKeepalivedCrashes lists this case (%s), but keepalived -t exits %d: remove it from the list\n%s", known.why, k.code, k.out)
				}
				kout, kcode := k.out, k.code
				vout, vcode := vipdCheck(t, h, f.path, kv.minor)
				if (kcode == 0) != (vcode == 0) {
					t.Fatalf("keepalived -t exits %d, vipd -t exits %d\n--- keepalived:\n%s--- vipd:\n%s", kcode, vcode, kout, vout)
				}
				if kcode != vcode {
					if why, ok := knownExitDifferences[f.name]; ok {
						t.Logf("exit codes differ (keepalived %d, vipd %d): %s", kcode, vcode, why)
					} else {
						t.Errorf("both reject, but keepalived -t exits %d and vipd -t %d\n--- keepalived:\n%s--- vipd:\n%s", kcode, vcode, kout, vout)
					}
				}
				mu.Lock()
				if kcode == 0 {
					accepted++
				} else {
					rejected++
				}
				mu.Unlock()
				if kcode != 0 && !regexp.MustCompile(`:\d+: (warning|error|fatal|security)|^(error|fatal|security)`).MatchString(vout) && vcode != ExitConfigTestSecurity {
					t.Errorf("vipd rejects without a file:line diagnostic:\n%s", vout)
				}
			})
		}
	})
	// With the default mutants every listed crash must still happen: a
	// list that outlives its cases hides nothing but says what is false.
	if nMut == defaultMutants && seed == defaultMutantSeed {
		for name, c := range kv.crashes {
			if !ran[name] {
				t.Errorf("knownKeepalivedCrashes lists %q (%s), but no such case ran: update the list", name, c.why)
			}
		}
	}
	slices.Sort(crashes)
	slices.Sort(timeouts)
	t.Logf("keepalived %s; %d configurations (%d mutants): %d accepted and %d rejected by both, keepalived -t crashed on %d %v and timed out on %d %v",
		version, len(files), len(muts), accepted, rejected, len(crashes), crashes, len(timeouts), timeouts)
}

// The default mutants: the ones the suite runs and knownKeepalivedCrashes
// names.
const (
	defaultMutants    = 200
	defaultMutantSeed = 1
)

// knownCrash says why keepalived -t crashes (or is killed, or hangs) on a
// case, and what it prints before, which the test requires so the reason
// stays true.
type knownCrash struct {
	why      string
	evidence string // regexp over keepalived's output
}

// sideBySideVersion is a keepalived the side-by-side test compares with:
// vipd -t judges as its minor version.
type sideBySideVersion struct {
	name, minor string
	find        func(t *testing.T) string
	crashes     map[string]knownCrash // the cases on which this keepalived -t reaches no verdict
}

var sideBySideVersions = []sideBySideVersion{
	{name: "2.2.7", minor: "2.2", crashes: knownKeepalivedCrashes, find: func(t *testing.T) string {
		lab.RequireCommand(t, "keepalived")
		p, _ := exec.LookPath("keepalived")
		return p
	}},
	{name: "2.4.3", minor: "2.4", crashes: knownKeepalived243Crashes, find: keepalived243},
}

// knownKeepalived243Crashes: keepalived 2.4.3 reaches a verdict on every
// case, the two mutants 2.2.7 segfaults on included (it reports the
// checker without urls and goes on).
var knownKeepalived243Crashes = map[string]knownCrash{}

// keepalived243 returns keepalived 2.4.3, built by the shared
// build-keepalived.sh into /opt/keepalived-2.4.3 (e2e/peers_test.go
// builds it when missing; so does this, under the same lock).
func keepalived243(t *testing.T) string {
	t.Helper()
	const installed = "/opt/keepalived-2.4.3/sbin/keepalived"
	if out, err := exec.Command(installed, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "Keepalived v2.4.3 ") {
		return installed
	}
	script := ""
	if out, err := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		script = filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "..", "shared", "peers", "build-keepalived.sh")
	}
	if d := os.Getenv("VIPD_SHARED"); d != "" {
		script = filepath.Join(d, "peers", "build-keepalived.sh")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "vipd-build-keepalived.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		// lab.Skipf fails the test under CI.
		lab.Skipf(t, "keepalived 2.4.3: %s: %v\n%s", script, err, out)
	}
	return installed
}

// knownKeepalivedCrashes are the cases on which keepalived 2.2.7 -t does
// not reach a verdict, found by running keepalived -t on each. Any other
// crash, kill or timeout fails the test.
var knownKeepalivedCrashes = map[string]knownCrash{
	// The misspelt "pat" leaves the only url block without a path;
	// keepalived drops the url, then the HTTP_GET left without urls
	// ("has no urls specified - ignoring"), and segfaults.
	"mutant/sample/keepalived.conf.inhibit:25:misspell": {
		why:      "HTTP_GET whose only url has no path: 2.2.7 -t drops the checker and segfaults (compat.md: HTTP_GET/SSL_GET without url)",
		evidence: `(?s)url has no path.*has no urls specified - ignoring`,
	},
	// A "}" copied right after "SSL_GET {" closes the checker before its
	// urls; keepalived drops it as having no urls and segfaults.
	"mutant/sample/keepalived.conf.virtualhost:25:copy37": {
		why:      "SSL_GET closed before its urls: 2.2.7 -t drops the checker and segfaults (compat.md: HTTP_GET/SSL_GET without url)",
		evidence: `has no urls specified - ignoring`,
	},
}

// keepalivedVersion returns the version of a keepalived binary and
// fails the test unless it is the one the verdicts, exit codes and
// crashes above were recorded against (kv.name), or
// VIPD_KEEPALIVED_VERSION when set for the 2.2 run (to compare against
// another build in PATH knowingly).
func keepalivedVersion(t *testing.T, bin string, kv sideBySideVersion) string {
	t.Helper()
	want := ""
	if kv.minor == "2.2" {
		want = os.Getenv("VIPD_KEEPALIVED_VERSION")
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	m := regexp.MustCompile(`(?m)^Keepalived v(\S+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("%s --version: %v, no version in its output:\n%s", bin, err, out)
	}
	got := string(m[1])
	switch {
	case want != "" && got != want:
		t.Fatalf("%s is keepalived %s, but VIPD_KEEPALIVED_VERSION expects %s", bin, got, want)
	case want == "" && got != kv.name:
		t.Fatalf("%s is keepalived %s, but this test's expectations (verdicts, exit codes, known crashes) were recorded against keepalived %s: install that, or set VIPD_KEEPALIVED_VERSION=%s to compare against this one knowingly", bin, got, kv.name, got)
	}
	return got
}

// keepalivedRun is the outcome of one keepalived run.
type keepalivedRun struct {
	out      string
	code     int    // exit status; -1 when killed by a signal
	signal   string // the signal that killed it, if any
	timedOut bool   // killed by the test after keepalivedTimeout
}

// keepalivedTimeout bounds one keepalived -t run; the samples take
// milliseconds.
const keepalivedTimeout = 30 * time.Second

// broke reports whether keepalived reached no verdict: killed by a signal,
// timed out, or exiting with a shell's signal status (128+n, as its
// children's deaths are reported).
func (r keepalivedRun) broke() bool {
	return r.timedOut || r.signal != "" || r.code >= 128
}

func (r keepalivedRun) how() string {
	switch {
	case r.timedOut:
		return fmt.Sprintf("ran longer than %v and was killed", keepalivedTimeout)
	case r.signal != "":
		return "was killed by " + r.signal
	}
	return fmt.Sprintf("exited %d", r.code)
}

// runKeepalived runs keepalived in the host's namespace.
func runKeepalived(t *testing.T, h *lab.Host, bin string, args ...string) keepalivedRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), keepalivedTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, bin}, args...)...)
	cmd.WaitDelay = 5 * time.Second // a child left holding the output pipe
	out, err := cmd.CombinedOutput()
	r := keepalivedRun{out: string(out), timedOut: ctx.Err() != nil}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal().String()
		}
	default:
		t.Fatalf("keepalived %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return r
}

// vipdCheck judges a configuration as `vipd -t` does (config.Check with
// the host's view of the system) in a child process started inside the
// host's network namespace: this test binary again, running
// TestMain. It returns the diagnostics as vipd -t prints them
// and the exit status. (cmd/vipd's own tests cover the command line.)
func vipdCheck(t *testing.T, h *lab.Host, path, version string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VIPD_CHECK_FILE="+path, "VIPD_CHECK_VERSION="+version)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("vipd check of %s: %v\n%s", path, err, out)
	return "", -1
}

// TestMain runs the child process of vipdCheck when VIPD_CHECK_FILE is set
// (a dispatch, not a test: a helper test would show as a skip in every run),
// and the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv("VIPD_CHECK_FILE"); path != "" {
		_, diags := Check(path, Options{Host: OSHost{}, KeepalivedVersion: os.Getenv("VIPD_CHECK_VERSION")})
		fmt.Print(diags.String())
		os.Exit(diags.ExitCode())
	}
	os.Exit(m.Run())
}

// mutantBase is a configuration mutants derive from.
type mutantBase struct {
	name string
	data []byte
}

// mutant is a base with one line changed, named after the change:
// "mutant/<base>:<line>:<change>", so a name means the same configuration
// whatever the seed and count.
type mutant struct {
	name       string
	data, base []byte
}

// mutants derives n distinct configurations from bases, each with one line
// changed so that it means something else than its base (confWords
// differ), deterministically.
func mutants(bases []mutantBase, n int, seed int64) []mutant {
	rnd := rand.New(rand.NewSource(seed))
	values := []string{"0", "-1", "256", "1.5", "abc", "70000", "on", "198.18.0.999", "eth9", "{", "}", "#x", "1", "255", "2001:db8::1", "4294967296", "yes"}
	var out []mutant
	seen := map[string]bool{}
	// Bounded: most draws make a new mutant; a draw that changes nothing
	// or repeats one is drawn again.
	for tries := 0; len(out) < n && len(bases) > 0 && tries < 50*n; tries++ {
		b := bases[rnd.Intn(len(bases))]
		lines := strings.Split(string(b.data), "\n")
		var idx []int
		for j, l := range lines {
			if len(strings.Fields(stripComment(l))) > 0 {
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 {
			continue
		}
		j := idx[rnd.Intn(len(idx))]
		words := strings.Fields(stripComment(lines[j]))
		var change string
		switch rnd.Intn(5) {
		case 0:
			if len(words) > 1 {
				w, v := 1+rnd.Intn(len(words)-1), values[rnd.Intn(len(values))]
				words[w] = v
				lines[j] = strings.Join(words, " ")
				change = fmt.Sprintf("word%d=%s", w+1, v)
			}
		case 1:
			lines = slices.Delete(lines, j, j+1)
			change = "drop"
		case 2:
			lines = slices.Insert(lines, j, lines[j])
			change = "repeat"
		case 3:
			k := idx[rnd.Intn(len(idx))]
			lines = slices.Insert(lines, j, lines[k])
			change = fmt.Sprintf("copy%d", k+1)
		case 4:
			if len(words[0]) > 1 {
				words[0] = words[0][:len(words[0])-1]
				lines[j] = strings.Join(words, " ")
				change = "misspell"
			}
		}
		m := mutant{
			name: fmt.Sprintf("mutant/%s:%d:%s", b.name, j+1, change),
			data: []byte(strings.Join(lines, "\n")),
			base: b.data,
		}
		if change == "" || seen[m.name] || slices.Equal(confWords(m.data), confWords(b.data)) {
			continue
		}
		seen[m.name] = true
		out = append(out, m)
	}
	return out
}

// confWords is what a configuration says, as keepalived reads it: its
// words without comments, line breaks or spacing.
func confWords(data []byte) []string {
	var w []string
	for _, l := range strings.Split(string(data), "\n") {
		w = append(w, strings.Fields(stripComment(l))...)
	}
	return w
}
