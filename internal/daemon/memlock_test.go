package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

func TestMemLockSteps(t *testing.T) {
	var buf bytes.Buffer
	m := newMemLock(slog.New(slog.NewTextHandler(&buf, nil)))
	var calls []string
	fail := false
	m.lock = func() error {
		calls = append(calls, "lock")
		if fail {
			return errors.New("EPERM")
		}
		return nil
	}
	m.unlock = func() error { calls = append(calls, "unlock"); return nil }
	m.apply(false) // nothing to undo
	m.apply(true)
	m.apply(true) // already locked: no second call
	m.apply(false)
	fail = true
	m.apply(true)
	if got := strings.Join(calls, ","); got != "lock,unlock,lock" {
		t.Errorf("calls %s, want lock,unlock,lock", got)
	}
	if m.locked || !strings.Contains(buf.String(), "cannot lock the daemon's memory: EPERM") {
		t.Errorf("failed lock: locked %v, log %q", m.locked, buf.String())
	}
}

// vmLck is the process's locked memory in kB, from /proc/self/status.
func vmLck(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		}
	}
	t.Fatal("no VmLck in /proc/self/status")
	return ""
}

func TestMemLockReal(t *testing.T) {
	lab.RequireRoot(t)
	m := newMemLock(slog.New(slog.DiscardHandler))
	m.apply(true)
	if !m.locked {
		t.Fatal("mlockall failed as root")
	}
	defer m.apply(false)
	if v := vmLck(t); v == "0" {
		t.Errorf("VmLck %s kB after mlockall", v)
	}
	m.apply(false)
	if v := vmLck(t); v != "0" {
		t.Errorf("VmLck %s kB after munlockall", v)
	}
}
