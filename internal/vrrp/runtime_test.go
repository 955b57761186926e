package vrrp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
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
	lab.RequireRoot(t) // CAP_SYS_NICE sets real-time priorities
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

// rrThreads counts the process's threads at SCHED_RR prio and the others.
func rrThreads(t *testing.T, prio int) (rr, other int) {
	tids, err := threadIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tid := range tids {
		a, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // ended meanwhile
		}
		if a.Policy == unix.SCHED_RR && int(a.Priority) == prio {
			rr++
		} else {
			other++
		}
	}
	return rr, other
}

// TestNodeProcessRealtime: with ProcessRealtime every thread of the
// process runs SCHED_RR, a reload without it leaves the VRRP thread
// alone real-time, and a stopped node leaves none.
func TestNodeProcessRealtime(t *testing.T) {
	lab.RequireRoot(t) // CAP_SYS_NICE sets real-time priorities
	defer setProcessPriority(0)
	rt := func(on bool) Config {
		return fakeConfig(100, func(c *Config) { c.NoRealtime, c.RTPriority, c.ProcessRealtime = false, 2, on })
	}
	f := startFakeNode(t, &fakeLAN{}, "198.18.0.11", rt(true))
	lab.Eventually(t, 5*time.Second, func() bool { rr, other := rrThreads(t, 2); return rr > 1 && other == 0 },
		"not every thread runs SCHED_RR 2 with ProcessRealtime")
	if err := f.node.Reload(rt(false)); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() bool { rr, _ := rrThreads(t, 2); return rr == 1 },
		"after a reload without ProcessRealtime, not the VRRP thread alone at SCHED_RR 2")
	f.cancel()
	f.node.Wait()
	lab.Eventually(t, 5*time.Second, func() bool { rr, _ := rrThreads(t, 2); return rr == 0 },
		"a real-time thread is left after the node stopped")
}
