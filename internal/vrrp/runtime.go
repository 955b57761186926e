package vrrp

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// SpareProcs is how many Ps (GOMAXPROCS) PrepareRuntime adds to the
// number of CPUs.
const SpareProcs = 2

// RuntimeGCPercent is the GOGC PrepareRuntime sets.
const RuntimeGCPercent = 400

// PrepareRuntime tunes the Go runtime of a process that runs a Node, for
// the VRRP thread's sake, unless the environment already says otherwise
// (GOMAXPROCS, GOGC). It returns what it changed, for the log.
//
// Spare Ps: the VRRP thread back from ppoll needs a P; with GOMAXPROCS
// equal to the CPUs, a busy host often leaves every P held by an
// ordinary thread it does not run, and the runtime also takes a P in a
// system call away sooner when none is idle. Two spare Ps cost nothing
// while idle. GOGC 400: fewer collections, so fewer stop-the-world
// pauses, which an ordinary thread starts and ends and which stop the
// VRRP thread too; the daemon's heap is small, so the memory cost is
// small too.
func PrepareRuntime() string {
	return prepareRuntime(os.Getenv, runtime.GOMAXPROCS, debug.SetGCPercent, runtime.NumCPU())
}

func prepareRuntime(getenv func(string) string, gomaxprocs func(int) int, setGC func(int) int, cpus int) string {
	var out string
	if getenv("GOMAXPROCS") == "" {
		n := cpus + SpareProcs
		gomaxprocs(n)
		out = fmt.Sprintf("GOMAXPROCS %d (%d CPUs + %d spare for the VRRP thread)", n, cpus, SpareProcs)
	}
	if getenv("GOGC") == "" {
		setGC(RuntimeGCPercent)
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("GOGC %d", RuntimeGCPercent)
	}
	return out
}
