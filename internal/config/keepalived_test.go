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
	"strconv"
	"strings"
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
// every case of the diagnostics table.
func TestKeepalivedSideBySide(t *testing.T) {
	lab.RequireCommand(t, "keepalived")
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
		if tc.vipdOnly {
			continue
		}
		p := filepath.Join(dir, fmt.Sprintf("diag%03d.conf", i))
		if err := os.WriteFile(p, []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, cfgFile{"diag/" + tc.name, p})
	}

	// Mutants: the accepted configurations above with one line changed
	// (a value replaced, a line dropped or repeated, a keyword
	// misspelt), deterministic, to compare verdicts beyond the cases
	// written by hand.
	var bases [][]byte
	for _, f := range files {
		if strings.HasPrefix(f.name, "diag/") {
			continue
		}
		if data, err := os.ReadFile(f.path); err == nil {
			bases = append(bases, data)
		}
	}
	// VIPD_MUTANTS and VIPD_MUTANT_SEED widen the search by hand.
	nMut, seed := 200, int64(1)
	if v, err := strconv.Atoi(os.Getenv("VIPD_MUTANTS")); err == nil {
		nMut = v
	}
	if v, err := strconv.ParseInt(os.Getenv("VIPD_MUTANT_SEED"), 10, 64); err == nil {
		seed = v
	}
	for i, m := range mutants(bases, nMut, seed) {
		p := filepath.Join(dir, fmt.Sprintf("mutant%03d.conf", i))
		if err := os.WriteFile(p, m, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, cfgFile{fmt.Sprintf("mutant/%03d", i), p})
	}

	accepted, rejected := 0, 0
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			pids := t.TempDir()
			kout, kcode := runIn(t, h, "keepalived", "-t", "-f", f.path,
				"-p", pids+"/k.pid", "-r", pids+"/v.pid", "-c", pids+"/c.pid", "-b", pids+"/b.pid")
			if kcode < 0 || kcode >= 128 {
				t.Skipf("keepalived -t crashed (status %d); compat.md lists the known crashes\n%s", kcode, kout)
			}
			vout, vcode := vipdCheck(t, h, f.path)
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
			if kcode == 0 {
				accepted++
			} else {
				rejected++
				if !regexp.MustCompile(`:\d+: (warning|error|fatal|security)|^(error|fatal|security)`).MatchString(vout) && vcode != ExitConfigTestSecurity {
					t.Errorf("vipd rejects without a file:line diagnostic:\n%s", vout)
				}
			}
		})
	}
	t.Logf("%d configurations: %d accepted and %d rejected by both", len(files), accepted, rejected)
}

// vipdCheck judges a configuration as `vipd -t` does (config.Check with
// the host's view of the system) in a child process started inside the
// host's network namespace: this test binary again, running
// TestVipdCheckHelper. It returns the diagnostics as vipd -t prints them
// and the exit status. (cmd/vipd's own tests cover the command line.)
func vipdCheck(t *testing.T, h *lab.Host, path string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, os.Args[0], "-test.run=^TestVipdCheckHelper$")
	cmd.Env = append(os.Environ(), "VIPD_CHECK_FILE="+path)
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

// TestVipdCheckHelper is the child process of vipdCheck; it does nothing
// in a normal test run.
func TestVipdCheckHelper(t *testing.T) {
	path := os.Getenv("VIPD_CHECK_FILE")
	if path == "" {
		t.Skip("helper process of TestKeepalivedSideBySide")
	}
	_, diags := Check(path, Options{Host: OSHost{}})
	fmt.Print(diags.String())
	os.Exit(diags.ExitCode())
}

// runIn runs a command in the host's namespace and returns its combined
// output and exit status.
func runIn(t *testing.T, h *lab.Host, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return string(out), ee.ExitCode()
	case errors.As(err, &ee):
		return string(out) + err.Error(), 128 // killed by a signal
	}
	t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	return "", -1
}

// mutants derives n configurations from bases, each with one line
// changed, deterministically.
func mutants(bases [][]byte, n int, seed int64) [][]byte {
	rnd := rand.New(rand.NewSource(seed))
	values := []string{"0", "-1", "256", "1.5", "abc", "70000", "on", "198.18.0.999", "eth9", "{", "}", "#x", "1", "255", "2001:db8::1", "4294967296", "yes"}
	var out [][]byte
	for len(out) < n && len(bases) > 0 {
		lines := strings.Split(string(bases[rnd.Intn(len(bases))]), "\n")
		var idx []int
		for j, l := range lines {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "#") {
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 {
			continue
		}
		j := idx[rnd.Intn(len(idx))]
		words := strings.Fields(lines[j])
		switch rnd.Intn(5) {
		case 0:
			if len(words) > 1 {
				words[1+rnd.Intn(len(words)-1)] = values[rnd.Intn(len(values))]
				lines[j] = strings.Join(words, " ")
			}
		case 1:
			lines = append(lines[:j], lines[j+1:]...)
		case 2:
			lines = append(lines[:j+1], lines[j:]...)
		case 3:
			k := idx[rnd.Intn(len(idx))]
			lines = append(lines[:j], append([]string{lines[k]}, lines[j:]...)...)
		case 4:
			if len(words) > 0 && len(words[0]) > 1 {
				words[0] = words[0][:len(words[0])-1]
				lines[j] = strings.Join(words, " ")
			}
		}
		out = append(out, []byte(strings.Join(lines, "\n")))
	}
	return out
}
