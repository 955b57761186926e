package lab

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Fatal and Skip instead of ending
// the goroutine, so the helpers' decisions can be checked.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatal(args ...any)            { r.fatal = fmt.Sprint(args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skip(args ...any)             { r.skip = fmt.Sprint(args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

func TestSkipFailsUnderAnyCI(t *testing.T) {
	for _, ci := range []string{"true", "1", "yes", "false"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			Skip(r, "no widget")
			if r.skip != "" || !strings.Contains(r.fatal, "no widget") || !strings.Contains(r.fatal, "CI") {
				t.Errorf("Skip under CI=%s: fatal %q, skip %q; want a failure naming the reason", ci, r.fatal, r.skip)
			}
			// A fact of the machine is the one skip CI allows.
			r = &recorder{TB: t}
			SkipMachineFact(r, "no IPVS in the host kernel")
			if r.fatal != "" || r.skip != "machine fact: no IPVS in the host kernel" {
				t.Errorf("SkipMachineFact under CI: fatal %q, skip %q", r.fatal, r.skip)
			}
		})
	}
	t.Run("no CI", func(t *testing.T) {
		t.Setenv("CI", "")
		r := &recorder{TB: t}
		Skipf(r, "no %s", "widget")
		if r.fatal != "" || r.skip != "no widget" {
			t.Errorf("Skip without CI: fatal %q, skip %q", r.fatal, r.skip)
		}
	})
}

func TestSkipKernelOlderThan(t *testing.T) {
	rel, major, minor, err := KernelVersion()
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	SkipKernelOlderThan(r, major, minor+1, "a feature")
	if want := "machine fact: kernel " + rel + " is older than"; !strings.HasPrefix(r.skip, want) || !strings.Contains(r.skip, "a feature") {
		t.Errorf("newer required: skip %q, want it to start %q and name the feature", r.skip, want)
	}
	r = &recorder{TB: t}
	SkipKernelOlderThan(r, major, minor, "a feature")
	if r.skip != "" || r.fatal != "" {
		t.Errorf("this kernel required: skip %q, fatal %q; want neither", r.skip, r.fatal)
	}
}

func TestParseKernelRelease(t *testing.T) {
	for in, want := range map[string][2]int{
		"6.1.0-57-amd64": {6, 1}, "5.12.19": {5, 12}, "6.18.44-fc-v1300": {6, 18}, "4.19-rc1": {4, 19}, "6.2": {6, 2},
	} {
		maj, mnr, err := ParseKernelRelease(in)
		if err != nil || maj != want[0] || mnr != want[1] {
			t.Errorf("ParseKernelRelease(%q) = %d, %d, %v; want %v", in, maj, mnr, err, want)
		}
	}
	for _, in := range []string{"", "6", "x.1", "6.x"} {
		if _, _, err := ParseKernelRelease(in); err == nil {
			t.Errorf("ParseKernelRelease(%q): no error", in)
		}
	}
}
