package proctrack

import (
	"maps"
	"slices"
	"time"
)

// Change reports a tracked process's count and quorum. Quorum says
// whether Up changed (or, on the first scan, was first decided): only
// those changes move VRRP instances; the others update counts.
type Change struct {
	Name   string
	Up     bool
	Count  int
	Quorum bool
}

// Status is one tracked process's current state.
type Status struct {
	Name      string
	Up        bool
	Count     int
	Quorum    int
	QuorumMax int
}

type tracked struct {
	spec  Spec
	pids  map[int]bool
	up    bool
	fork  time.Time // quorum gained after a fork, effective at fork (zero: none)
	term  time.Time // quorum lost by an exit, effective at term (zero: none)
	dirty bool      // the count changed since the last report
	flip  bool      // up changed since the last report
}

// Tracker counts the processes each Spec matches and decides its quorum
// as keepalived does. It is a pure state machine: the driver feeds it
// what it read of /proc and the connector's events, with their time, and
// reports the Changes each call returns. It is not safe for concurrent
// use.
//
// keepalived's rules, kept here: a fork of a tracked process counts the
// child (after ForkDelay, if that makes the quorum); an exec or a comm
// change matches the process anew (at once); an exit uncounts it (after
// TerminateDelay, if that loses the quorum). A process that comes back
// within TerminateDelay, or dies within ForkDelay, cancels the pending
// change. Threads are not processes and are ignored by the driver.
type Tracker struct {
	procs []*tracked
	// owner lists, per counted pid, the tracked processes counting it.
	owner map[int][]*tracked
	ready bool // the first scan happened
}

// NewTracker returns a tracker for specs; its first Scan starts it.
func NewTracker(specs []Spec) *Tracker {
	t := &Tracker{owner: map[int][]*tracked{}}
	for _, s := range specs {
		t.procs = append(t.procs, &tracked{spec: s, pids: map[int]bool{}})
	}
	return t
}

// NeedCmdline reports whether some spec matches command lines, so the
// driver must read /proc/PID/cmdline (keepalived avoids it otherwise: it
// may swap a process's memory in).
func (t *Tracker) NeedCmdline() bool {
	return slices.ContainsFunc(t.procs, func(p *tracked) bool { return p.spec.fullCommand() })
}

// NeedComm reports whether some spec matches process names.
func (t *Tracker) NeedComm() bool {
	return slices.ContainsFunc(t.procs, func(p *tracked) bool { return !p.spec.fullCommand() })
}

// Scan counts the processes anew from a full read of /proc (zombies left
// out by the driver). The first scan decides every quorum at once; a later
// one (after lost events) changes a quorum as a fork or an exit would,
// with its delay.
func (t *Tracker) Scan(now time.Time, ps []Proc) []Change {
	first := !t.ready
	t.ready = true
	before := map[*tracked]int{}
	for _, p := range t.procs {
		before[p] = len(p.pids)
		p.pids = map[int]bool{}
		p.fork, p.term = time.Time{}, time.Time{}
	}
	t.owner = map[int][]*tracked{}
	for _, pr := range ps {
		for _, p := range t.procs {
			if p.spec.Match(pr) {
				t.count(pr.PID, p)
			}
		}
	}
	var out []Change
	for _, p := range t.procs {
		ok := p.spec.inRange(len(p.pids))
		switch {
		case first:
			p.up, p.dirty, p.flip = ok, false, false
			out = append(out, Change{Name: p.spec.Name, Up: ok, Count: len(p.pids), Quorum: true})
			continue
		case ok == p.up:
		case ok && p.spec.ForkDelay > 0:
			p.fork = now.Add(p.spec.ForkDelay)
		case !ok && p.spec.TerminateDelay > 0:
			p.term = now.Add(p.spec.TerminateDelay)
		default:
			p.up, p.flip = ok, true
		}
		if before[p] != len(p.pids) {
			p.dirty = true
		}
	}
	return append(out, t.report()...)
}

func (t *Tracker) count(pid int, p *tracked) bool {
	if p.pids[pid] {
		return false
	}
	p.pids[pid] = true
	t.owner[pid] = append(t.owner[pid], p)
	p.dirty = true
	return true
}

func (t *Tracker) uncount(pid int, p *tracked) {
	delete(p.pids, pid)
	t.owner[pid] = slices.DeleteFunc(t.owner[pid], func(q *tracked) bool { return q == p })
	if len(t.owner[pid]) == 0 {
		delete(t.owner, pid)
	}
	p.dirty = true
}

// gained is called after p's count went up by one. byFork: the new
// process is a fork of a tracked one (ForkDelay applies).
func (p *tracked) gained(now time.Time, byFork bool) {
	n := len(p.pids)
	if n != p.spec.Quorum && !(p.spec.QuorumMax >= 0 && n == p.spec.QuorumMax+1) {
		return // no boundary crossed
	}
	switch {
	case !p.term.IsZero():
		p.term = time.Time{} // back within terminate_delay
	case byFork && p.spec.ForkDelay > 0:
		p.fork = now.Add(p.spec.ForkDelay)
		return
	}
	p.set(p.spec.inRange(n))
}

// lost is called after p's count went down by one. byExit: the process
// ended (TerminateDelay applies); otherwise it no longer matches.
func (p *tracked) lost(now time.Time, byExit bool) {
	n := len(p.pids)
	if n+1 != p.spec.Quorum && !(p.spec.QuorumMax >= 0 && n == p.spec.QuorumMax) {
		return
	}
	switch {
	case !p.fork.IsZero():
		p.fork = time.Time{} // died within fork_delay
	case byExit && p.spec.TerminateDelay > 0:
		p.term = now.Add(p.spec.TerminateDelay)
		return
	}
	p.set(p.spec.inRange(n))
}

func (p *tracked) set(up bool) {
	if up != p.up {
		p.up, p.flip = up, true
	}
}

// Fork: process parent forked child (a process, not a thread).
func (t *Tracker) Fork(now time.Time, parent, child int) []Change {
	for _, p := range slices.Clone(t.owner[parent]) {
		if t.count(child, p) {
			p.gained(now, true)
		}
	}
	return t.report()
}

// Exec: process pr replaced its program (or its name changed, from
// Comm); it is matched anew against every spec.
func (t *Tracker) Exec(now time.Time, pr Proc) []Change {
	t.match(now, pr, false)
	return t.report()
}

func (t *Tracker) match(now time.Time, pr Proc, commOnly bool) {
	for _, p := range t.procs {
		if commOnly && p.spec.fullCommand() {
			continue // a comm change leaves the command line as it was
		}
		had := p.pids[pr.PID]
		switch m := p.spec.Match(pr); {
		case m && !had:
			t.count(pr.PID, p)
			p.gained(now, false)
		case !m && had:
			t.uncount(pr.PID, p)
			p.lost(now, false)
		}
	}
}

// Comm: process pid's name is now comm (prctl PR_SET_NAME, or a write to
// /proc/PID/comm).
func (t *Tracker) Comm(now time.Time, pid int, comm string) []Change {
	t.match(now, Proc{PID: pid, Comm: comm}, true)
	return t.report()
}

// Exit: process pid ended.
func (t *Tracker) Exit(now time.Time, pid int) []Change {
	for _, p := range slices.Clone(t.owner[pid]) {
		t.uncount(pid, p)
		p.lost(now, true)
	}
	return t.report()
}

// Tick applies the delays that are due at now.
func (t *Tracker) Tick(now time.Time) []Change {
	for _, p := range t.procs {
		if !p.fork.IsZero() && !p.fork.After(now) {
			p.fork = time.Time{}
			p.set(p.spec.inRange(len(p.pids)))
		}
		if !p.term.IsZero() && !p.term.After(now) {
			p.term = time.Time{}
			p.set(p.spec.inRange(len(p.pids)))
		}
	}
	return t.report()
}

// Deadline is when Tick is next needed (zero: never).
func (t *Tracker) Deadline() time.Time {
	var next time.Time
	for _, p := range t.procs {
		for _, at := range []time.Time{p.fork, p.term} {
			if !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return next
}

// Status returns every tracked process's state, in configuration order.
func (t *Tracker) Status() []Status {
	out := make([]Status, 0, len(t.procs))
	for _, p := range t.procs {
		out = append(out, Status{Name: p.spec.Name, Up: p.up, Count: len(p.pids), Quorum: p.spec.Quorum, QuorumMax: p.spec.QuorumMax})
	}
	return out
}

// PIDs returns the processes counted for the tracked process name, in
// order (for tests and status).
func (t *Tracker) PIDs(name string) []int {
	for _, p := range t.procs {
		if p.spec.Name == name {
			return slices.Sorted(maps.Keys(p.pids))
		}
	}
	return nil
}

func (t *Tracker) report() []Change {
	var out []Change
	for _, p := range t.procs {
		if p.dirty || p.flip {
			out = append(out, Change{Name: p.spec.Name, Up: p.up, Count: len(p.pids), Quorum: p.flip})
			p.dirty, p.flip = false, false
		}
	}
	return out
}
