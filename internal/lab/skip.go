package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// CI reports whether the tests run under CI: the environment variable CI
// is set to anything non-empty (CI systems set "true", "1" or "yes"; all
// count). Under CI a skipped test is a failure, because a green run must
// not claim a feature it did not test.
func CI() bool { return os.Getenv("CI") != "" }

// Skip skips the test with the reason, or fails it under CI. Every skip of
// a test goes through Skip, Skipf or one of the machine-fact helpers below,
// never through t.Skip directly, so that CI cannot silently skip anything.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("would skip (%s), but CI (CI=%q) must run this test", reason, os.Getenv("CI"))
		return
	}
	t.Skip(reason)
}

// Skipf is Skip with a format.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}

// SkipMachineFact skips the test, even under CI, because of fact: a
// property of the machine the tests run on that makes the test impossible
// there and that the caller has just established (the host kernel has no
// IPVS: scripts/vmtest runs the test in a VM instead). It is not for
// missing programs, users or privileges, which CI installs or has; the
// message says "machine fact:" so a reader of the run sees it was not a
// dodge.
func SkipMachineFact(t testing.TB, fact string) {
	t.Helper()
	t.Skip("machine fact: " + fact)
}

// SkipKernelOlderThan skips the test, even under CI, when the running
// kernel is older than major.minor, naming the kernel and what it lacks
// (feature, e.g. "the twos IPVS scheduler"). On a newer kernel it returns,
// and the caller must then treat the feature's absence as a failure.
func SkipKernelOlderThan(t testing.TB, major, minor int, feature string) {
	t.Helper()
	rel, maj, mnr, err := KernelVersion()
	if err != nil {
		t.Fatalf("kernel version: %v", err)
	}
	if maj < major || maj == major && mnr < minor {
		SkipMachineFact(t, fmt.Sprintf("kernel %s is older than %d.%d, which added %s", rel, major, minor, feature))
	}
}

// KernelVersion returns the running kernel's release string (uname -r)
// and its major and minor numbers.
func KernelVersion() (release string, major, minor int, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", 0, 0, fmt.Errorf("uname: %w", err)
	}
	release = unix.ByteSliceToString(u.Release[:])
	major, minor, err = ParseKernelRelease(release)
	return release, major, minor, err
}

// ParseKernelRelease reads "6.1.0-57-amd64" as 6 and 1.
func ParseKernelRelease(release string) (major, minor int, err error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) >= 2 {
		digits := parts[1]
		if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			digits = digits[:i]
		}
		var e1, e2 error
		major, e1 = strconv.Atoi(parts[0])
		minor, e2 = strconv.Atoi(digits)
		if e1 == nil && e2 == nil {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR[...]", release)
}
