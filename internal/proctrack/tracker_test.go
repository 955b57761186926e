package proctrack

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func cmdline(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }

func TestMatch(t *testing.T) {
	sleep := Proc{PID: 10, Comm: "sleep", Cmdline: cmdline("sleep", "1000", "x")}
	abs := Proc{PID: 11, Comm: "sleep", Cmdline: cmdline("/usr/bin/sleep", "1000")}
	bare := Proc{PID: 12, Comm: "sleep", Cmdline: cmdline("sleep")}
	long := Proc{PID: 13, Comm: "haproxy-worker", Cmdline: cmdline("haproxy", "-f", "/etc/haproxy/haproxy.cfg")}
	for _, tc := range []struct {
		spec Spec
		proc Proc
		want bool
	}{
		// The process name, exactly (pgrep "^sleep$"), not the command line.
		{Spec{Process: "sleep"}, sleep, true},
		{Spec{Process: "slee"}, sleep, false},
		{Spec{Process: "sleep "}, sleep, false},
		{Spec{Process: "haproxy"}, long, false}, // its comm changed
		{Spec{Process: "haproxy-worker"}, long, true},
		// full_command: argv[0] as given at exec.
		{Spec{Process: "sleep", FullCommand: true}, sleep, true},
		{Spec{Process: "sleep", FullCommand: true}, abs, false},
		{Spec{Process: "/usr/bin/sleep", FullCommand: true}, abs, true},
		{Spec{Process: "haproxy", FullCommand: true}, long, true},
		// Parameters: exact unless param_match says otherwise.
		{Spec{Process: "sleep", Params: []string{"1000", "x"}}, sleep, true},
		{Spec{Process: "sleep", Params: []string{"1000"}}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"1000"}, ParamMatch: MatchExact}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"1000", "x"}, ParamMatch: MatchExact}, sleep, true},
		{Spec{Process: "sleep", ParamMatch: MatchExact}, bare, true}, // param_match alone: no parameters
		{Spec{Process: "sleep", ParamMatch: MatchExact}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"1000"}, ParamMatch: MatchPartial}, sleep, true},
		{Spec{Process: "sleep", Params: []string{"100"}, ParamMatch: MatchPartial}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"1000", "x", "y"}, ParamMatch: MatchPartial}, sleep, false},
		{Spec{Process: "sleep", ParamMatch: MatchPartial}, sleep, true},
		{Spec{Process: "sleep", Params: []string{"100"}, ParamMatch: MatchInitial}, sleep, true},
		{Spec{Process: "sleep", Params: []string{"1000", ""}, ParamMatch: MatchInitial}, sleep, true},
		{Spec{Process: "sleep", Params: []string{"10", "x"}, ParamMatch: MatchInitial}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"1000", "xy"}, ParamMatch: MatchInitial}, sleep, false},
		{Spec{Process: "sleep", Params: []string{"100"}, ParamMatch: MatchInitial}, bare, false},
		// Parameters are matched on the command line even without
		// full_command, as keepalived does.
		{Spec{Process: "sleep", Params: []string{"1000"}}, abs, false},
		{Spec{Process: "/usr/bin/sleep", Params: []string{"1000"}}, abs, true},
		// A process without a command line (kernel thread) has no argv[0].
		{Spec{Process: "kthreadd", FullCommand: true}, Proc{Comm: "kthreadd"}, false},
		{Spec{Process: "kthreadd"}, Proc{Comm: "kthreadd"}, true},
	} {
		if got := tc.spec.Match(tc.proc); got != tc.want {
			t.Errorf("%+v matches %q %q: %v, want %v", tc.spec, tc.proc.Comm, tc.proc.Cmdline, got, tc.want)
		}
	}
}

// run is a small script for a Tracker: each line is an event at a time
// (milliseconds) and the changes it must report.
type step struct {
	at   int // ms
	do   func(tr *Tracker, now time.Time) []Change
	want string
}

func runSteps(t *testing.T, spec Spec, initial []Proc, first string, steps []step) {
	t.Helper()
	t0 := time.Unix(1000, 0)
	spec.Name = "P"
	tr := NewTracker([]Spec{spec})
	if got := fmt.Sprint(tr.Scan(t0, initial)); got != first {
		t.Fatalf("first scan: %s, want %s", got, first)
	}
	for i, s := range steps {
		now := t0.Add(time.Duration(s.at) * time.Millisecond)
		if got := fmt.Sprint(s.do(tr, now)); got != s.want {
			t.Fatalf("step %d (at %dms): %s, want %s", i, s.at, got, s.want)
		}
	}
}

func fork(parent, child int) func(*Tracker, time.Time) []Change {
	return func(tr *Tracker, now time.Time) []Change { return tr.Fork(now, parent, child) }
}
func execp(pid int, comm string) func(*Tracker, time.Time) []Change {
	return func(tr *Tracker, now time.Time) []Change {
		return tr.Exec(now, Proc{PID: pid, Comm: comm, Cmdline: cmdline(comm)})
	}
}
func exit(pid int) func(*Tracker, time.Time) []Change {
	return func(tr *Tracker, now time.Time) []Change { return tr.Exit(now, pid) }
}
func comm(pid int, name string) func(*Tracker, time.Time) []Change {
	return func(tr *Tracker, now time.Time) []Change { return tr.Comm(now, pid, name) }
}
func tick(tr *Tracker, now time.Time) []Change { return tr.Tick(now) }

func procs(comm string, pids ...int) []Proc {
	var out []Proc
	for _, p := range pids {
		out = append(out, Proc{PID: p, Comm: comm, Cmdline: cmdline(comm)})
	}
	return out
}

func TestTrackerQuorum(t *testing.T) {
	// quorum 2..3: the count crossing either bound flips the quorum.
	runSteps(t, Spec{Process: "nginx", Quorum: 2, QuorumMax: 3}, procs("nginx", 10), "[{P false 1 true}]", []step{
		{0, execp(11, "nginx"), "[{P true 2 true}]"},
		{1, execp(11, "nginx"), "[]"}, // the same process again counts once
		{2, execp(12, "nginx"), "[{P true 3 false}]"},
		{3, fork(12, 13), "[{P false 4 true}]"}, // above quorum_max
		{4, exit(13), "[{P true 3 true}]"},
		{5, exit(99), "[]"},                          // untracked
		{6, execp(12, "bash"), "[{P true 2 false}]"}, // exec'd into something else
		{7, exit(12), "[]"},                          // no longer counted
		{8, exit(11), "[{P false 1 true}]"},
	})
}

func TestTrackerQuorumMaxZero(t *testing.T) {
	// quorum_max 0 (quorum 0): up while no such process runs.
	runSteps(t, Spec{Process: "rogue", Quorum: 0, QuorumMax: 0}, nil, "[{P true 0 true}]", []step{
		{0, execp(5, "rogue"), "[{P false 1 true}]"},
		{1, exit(5), "[{P true 0 true}]"},
	})
}

func TestTrackerTerminateDelay(t *testing.T) {
	spec := Spec{Process: "haproxy", Quorum: 1, QuorumMax: -1, TerminateDelay: 500 * time.Millisecond}
	runSteps(t, spec, procs("haproxy", 10), "[{P true 1 true}]", []step{
		// A restart within the delay: no change of quorum at all.
		{0, exit(10), "[{P true 0 false}]"},
		{100, execp(11, "haproxy"), "[{P true 1 false}]"},
		{700, tick, "[]"},
		// An exit that lasts: quorum lost when the delay ends.
		{1000, exit(11), "[{P true 0 false}]"},
		{1499, tick, "[]"},
		{1500, tick, "[{P false 0 true}]"},
		// Coming back is immediate (no fork: an exec).
		{1600, execp(12, "haproxy"), "[{P true 1 true}]"},
	})
}

func TestTrackerForkDelay(t *testing.T) {
	spec := Spec{Process: "worker", Quorum: 2, QuorumMax: -1, ForkDelay: 300 * time.Millisecond}
	runSteps(t, spec, procs("worker", 10), "[{P false 1 true}]", []step{
		// A fork that makes the quorum counts after fork_delay.
		{0, fork(10, 11), "[{P false 2 false}]"},
		{200, tick, "[]"},
		{300, tick, "[{P true 2 true}]"},
		// A child that dies within fork_delay never makes the quorum.
		{400, exit(11), "[{P false 1 true}]"},
		{500, fork(10, 12), "[{P false 2 false}]"},
		{600, exit(12), "[{P false 1 false}]"},
		{900, tick, "[]"},
		// A fork of an untracked process is not counted.
		{1000, fork(99, 13), "[]"},
		// An exec is counted at once, even when fork_delay is set.
		{1100, execp(14, "worker"), "[{P true 2 true}]"},
	})
}

func TestTrackerComm(t *testing.T) {
	runSteps(t, Spec{Process: "web", Quorum: 1, QuorumMax: -1}, procs("web", 10), "[{P true 1 true}]", []step{
		{0, comm(10, "web"), "[]"}, // same name
		{1, comm(10, "Web Content"), "[{P false 0 true}]"},
		{2, comm(10, "web"), "[{P true 1 true}]"},
	})
	// A comm change leaves command-line matches alone.
	runSteps(t, Spec{Process: "web", FullCommand: true, Quorum: 1, QuorumMax: -1}, procs("web", 10), "[{P true 1 true}]", []step{
		{0, comm(10, "other"), "[]"},
	})
}

// TestTrackerRescan: after lost events the count is taken again, and a
// quorum it changes follows the delays.
func TestTrackerRescan(t *testing.T) {
	spec := Spec{Process: "db", Quorum: 1, QuorumMax: -1, TerminateDelay: time.Second}
	t0 := time.Unix(1000, 0)
	spec.Name = "P"
	tr := NewTracker([]Spec{spec})
	tr.Scan(t0, procs("db", 1))
	if got := fmt.Sprint(tr.Scan(t0.Add(time.Second), nil)); got != "[{P true 0 false}]" {
		t.Fatalf("rescan: %s", got)
	}
	if dl := tr.Deadline(); !dl.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("deadline %v", dl)
	}
	if got := fmt.Sprint(tr.Tick(t0.Add(2 * time.Second))); got != "[{P false 0 true}]" {
		t.Fatalf("after the delay: %s", got)
	}
	if got := fmt.Sprint(tr.Scan(t0.Add(3*time.Second), procs("db", 2, 3))); got != "[{P true 2 true}]" {
		t.Fatalf("rescan up: %s", got)
	}
	if pids := tr.PIDs("P"); fmt.Sprint(pids) != "[2 3]" {
		t.Fatalf("pids %v", pids)
	}
}

// TestTrackerSeveral: one process counted by two specs, each with its
// own quorum.
func TestTrackerSeveral(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := NewTracker([]Spec{
		{Name: "any", Process: "sleep", Quorum: 1, QuorumMax: -1},
		{Name: "one", Process: "sleep", Params: []string{"9"}, ParamMatch: MatchPartial, Quorum: 1, QuorumMax: 1},
	})
	if !tr.NeedCmdline() || !tr.NeedComm() {
		t.Fatal("both comm and cmdline are needed")
	}
	p := func(pid int, args ...string) Proc {
		return Proc{PID: pid, Comm: "sleep", Cmdline: cmdline(append([]string{"sleep"}, args...)...)}
	}
	tr.Scan(t0, nil)
	if got := fmt.Sprint(tr.Exec(t0, p(1, "9", "x"))); got != "[{any true 1 true} {one true 1 true}]" {
		t.Fatal(got)
	}
	if got := fmt.Sprint(tr.Fork(t0, 1, 2)); got != "[{any true 2 false} {one false 2 true}]" {
		t.Fatal(got)
	}
	if got := fmt.Sprint(tr.Exec(t0, p(2, "1"))); got != "[{one true 1 true}]" {
		t.Fatal(got)
	}
	st := tr.Status()
	if fmt.Sprint(st) != "[{any true 2 1 -1} {one true 1 1 1}]" {
		t.Fatal(st)
	}
}
