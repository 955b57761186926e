package vrrp

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The VRRP thread alone at real-time priority is not enough in a Go
// program: back from ppoll it needs a P, and the scheduler's lock and Ps
// are held by the runtime's other threads, which a saturated host does
// not run for tens of milliseconds (priority inversion; perf sched
// showed the VRRP thread woken by another vipd thread 27 ms after its
// timer). keepalived's vrrp_rt_priority makes its whole VRRP process
// real-time; ProcessRealtime does the same for the process the Node runs
// in: every thread SCHED_RR at the same priority. Threads the runtime
// starts later begin under the normal scheduler (reset on fork, so that
// no script inherits real time) and are raised by the next scan, at most
// rtScanEvery later.
const rtScanEvery = time.Second

// threadIDs lists the process's threads.
func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out, nil
}

// schedAttr is the scheduling of a thread: SCHED_RR at prio, or the
// normal scheduler when prio is 0; always reset on fork.
func schedAttr(prio int) *unix.SchedAttr {
	if prio <= 0 {
		return &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 0} // SCHED_OTHER
	}
	return &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Priority: uint32(prio)}
}

// setProcessPriority gives every thread of the process the scheduling of
// schedAttr(prio), skipping those that already have it; it returns how
// many it changed and the first error.
func setProcessPriority(prio int) (int, error) {
	tids, err := threadIDs()
	if err != nil {
		return 0, err
	}
	want := schedAttr(prio)
	changed := 0
	var first error
	for _, tid := range tids {
		if cur, err := unix.SchedGetAttr(tid, 0); err == nil && cur.Policy == want.Policy && cur.Priority == want.Priority {
			continue
		}
		if err := unix.SchedSetAttr(tid, want, 0); err != nil {
			if first == nil && err != unix.ESRCH { // a thread that just ended
				first = err
			}
			continue
		}
		changed++
	}
	return changed, first
}
