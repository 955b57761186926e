package vrrp

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPrepareRuntime(t *testing.T) {
	var procs, gc int
	set := func(p *int) func(int) int { return func(v int) int { old := *p; *p = v; return old } }
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if got := prepareRuntime(getenv, set(&procs), set(&gc), 2); procs != 4 || gc != 400 || got != "GOMAXPROCS 4 (2 CPUs + 2 spare for the VRRP thread), GOGC 400" {
		t.Errorf("defaults: procs %d gc %d %q", procs, gc, got)
	}
	procs, gc = 0, 0
	env["GOMAXPROCS"], env["GOGC"] = "1", "50"
	if got := prepareRuntime(getenv, set(&procs), set(&gc), 2); procs != 0 || gc != 0 || got != "" {
		t.Errorf("environment set: changed procs %d gc %d %q", procs, gc, got)
	}
	delete(env, "GOMAXPROCS")
	if got := prepareRuntime(getenv, set(&procs), set(&gc), 8); procs != 10 || gc != 0 || got != "GOMAXPROCS 10 (8 CPUs + 2 spare for the VRRP thread)" {
		t.Errorf("GOGC set: procs %d gc %d %q", procs, gc, got)
	}
}

func TestSetProcessPriority(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE) to set real-time priorities") // not an e2e test: the unit tests above cover the logic
	}
	policies := func() map[int]string {
		tids, err := threadIDs()
		if err != nil || len(tids) == 0 {
			t.Fatalf("threadIDs: %v %v", tids, err)
		}
		out := map[int]string{}
		for _, tid := range tids {
			if a, err := unix.SchedGetAttr(tid, 0); err == nil {
				out[tid] = fmt.Sprintf("%d/%d/%d", a.Policy, a.Priority, a.Flags&unix.SCHED_FLAG_RESET_ON_FORK)
			}
		}
		return out
	}
	defer setProcessPriority(0)
	if _, err := setProcessPriority(3); err != nil {
		t.Fatal(err)
	}
	for tid, p := range policies() {
		if p != fmt.Sprintf("%d/3/%d", unix.SCHED_RR, unix.SCHED_FLAG_RESET_ON_FORK) {
			t.Errorf("thread %d: policy/priority/reset-on-fork %s after setProcessPriority(3)", tid, p)
		}
	}
	if _, err := setProcessPriority(0); err != nil {
		t.Fatal(err)
	}
	for tid, p := range policies() {
		if !strings.HasPrefix(p, "0/0/") {
			t.Errorf("thread %d: %s after setProcessPriority(0)", tid, p)
		}
	}
}
