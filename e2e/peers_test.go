package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A keepalived peer is a keepalived binary the interop tests run against
// the vipd daemon: Debian's package (2.2.7, what most users run) and the
// newest release, 2.4.3, built from the source archive in the shared
// directory beside the repository (../shared/peers).
type keepalivedPeer struct {
	Name    string // in test names: "2.2.7", "2.4.3"
	Version string // what "keepalived --version" must print
	find    func() (string, error)
}

var keepalivedPeers = []keepalivedPeer{
	{Name: "2.2.7", Version: "Keepalived v2.2.7 ", find: func() (string, error) { return exec.LookPath("keepalived") }},
	{Name: "2.4.3", Version: "Keepalived v2.4.3 ", find: waitKeepalived243},
}

// binary returns the peer's keepalived, after checking that it is the
// version the test names. A peer that cannot be had fails the test under
// CI (scripts/packages.txt and build-keepalived.sh provide both on a
// clean machine) and skips it elsewhere.
func (p keepalivedPeer) binary(t *testing.T) string {
	t.Helper()
	bin, err := p.find()
	if err != nil {
		requireOrSkip(t, "keepalived %s: %v", p.Name, err)
	}
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	if !strings.HasPrefix(string(out), p.Version) {
		t.Fatalf("%s is not keepalived %s: --version says %q", bin, p.Name, firstLine(string(out)))
	}
	return bin
}

// requireOrSkip fails the test under CI (any non-empty CI) and skips it
// elsewhere: CI must run every interop case.
func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// The 2.4.3 build runs once per test process, in the background from
// TestMain when the run may need it: it takes minutes the first time,
// which the tests that run before the interop matrix then hide.
var build243 struct {
	once sync.Once
	done chan struct{}
	bin  string
	err  error
}

func startKeepalived243() {
	build243.once.Do(func() {
		build243.done = make(chan struct{})
		go func() {
			defer close(build243.done)
			build243.bin, build243.err = buildKeepalived243()
		}()
	})
}

func waitKeepalived243() (string, error) {
	startKeepalived243()
	<-build243.done
	return build243.bin, build243.err
}

// buildKeepalived243 runs shared/peers/build-keepalived.sh (a no-op once
// built), under a lock file so that test processes running at once do
// not build into the same prefix together.
func buildKeepalived243() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("building it needs root (Debian build dependencies, /opt)")
	}
	// build-keepalived.sh's own "already built" check pipes --version
	// into grep -q under pipefail, which fails whenever grep's early exit
	// kills keepalived with SIGPIPE (about one run in three here), and
	// then rebuilds for minutes: look first.
	const installed = "/opt/keepalived-2.4.3/sbin/keepalived"
	if out, err := exec.Command(installed, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "Keepalived v2.4.3 ") {
		return installed, nil
	}
	shared, err := sharedDir()
	if err != nil {
		return "", err
	}
	script := filepath.Join(shared, "peers", "build-keepalived.sh")
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "vipd-build-keepalived.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, stderr.String())
	}
	bin := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(bin, '\n'); i >= 0 {
		bin = bin[i+1:]
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, bin, err)
	}
	return bin, nil
}

// sharedDir finds the shared directory (vectors, peers, ...) that sits
// beside the repository: ../shared from the repository's root, or from
// the main checkout's root when this is a git worktree. $VIPD_SHARED
// overrides both.
func sharedDir() (string, error) {
	if d := os.Getenv("VIPD_SHARED"); d != "" {
		return d, nil
	}
	root, err := filepath.Abs("..") // tests run in e2e/
	if err != nil {
		return "", err
	}
	tried := []string{filepath.Join(root, "..", "shared")}
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		main := filepath.Dir(strings.TrimSpace(string(out)))
		tried = append(tried, filepath.Join(main, "..", "shared"))
	}
	for _, d := range tried {
		if _, err := os.Stat(filepath.Join(d, "peers", "build-keepalived.sh")); err == nil {
			return filepath.Clean(d), nil
		}
	}
	return "", fmt.Errorf("no shared/peers/build-keepalived.sh in %s (set VIPD_SHARED)", strings.Join(tried, ", "))
}

// TestMain starts the keepalived 2.4.3 build early when the run includes
// the interop tests, and lets more tests run at once than there are
// cores: the interop matrix's 28 cases wait on VRRP timers, not on the
// CPU, and would take minutes two at a time. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < 32 {
		_ = flag.Set("test.parallel", "32")
	}
	if os.Geteuid() == 0 && runsInterop(flag.Lookup("test.run").Value.String()) {
		startKeepalived243()
	}
	os.Exit(m.Run())
}

// runsInterop reports whether a -run pattern may select a TestInterop
// test (its first element matches the name).
func runsInterop(run string) bool {
	if run == "" {
		return true
	}
	top, _, _ := strings.Cut(run, "/")
	for _, name := range []string{"TestInteropMatrix", "TestInteropWrongPassword"} {
		if ok, err := regexp.MatchString(top, name); err == nil && ok {
			return true
		}
	}
	return false
}
