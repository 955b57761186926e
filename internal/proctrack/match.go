package proctrack

import (
	"bytes"
	"slices"
	"time"
)

// ParamMatch says how a process's parameters must match the configured
// ones (keepalived's param_match).
type ParamMatch uint8

// Parameter matching modes.
const (
	// MatchNone: parameters are not looked at.
	MatchNone ParamMatch = iota
	// MatchExact: the parameters are exactly the configured ones (none
	// configured: the process has none). The default once parameters
	// are given, and param_match without a value.
	MatchExact
	// MatchPartial: the first parameters are the configured ones; more
	// may follow.
	MatchPartial
	// MatchInitial: as partial, but the last configured parameter need
	// only begin the process's parameter at that place.
	MatchInitial
)

func (m ParamMatch) String() string {
	switch m {
	case MatchExact:
		return "exact"
	case MatchPartial:
		return "partial"
	case MatchInitial:
		return "initial"
	}
	return "none"
}

// Spec is one vrrp_track_process: what to match and how many matching
// processes make a quorum.
type Spec struct {
	Name string `json:"name"`
	// Process is the process name (matched against /proc/PID/comm) or,
	// with FullCommand, argv[0] of /proc/PID/cmdline.
	Process string `json:"process"`
	// Params are matched against argv[1:] as ParamMatch says; giving
	// parameters or a ParamMatch implies FullCommand (as keepalived).
	Params      []string   `json:"params,omitempty"`
	ParamMatch  ParamMatch `json:"param_match,omitempty"`
	FullCommand bool       `json:"full_command,omitempty"`
	// Quorum..QuorumMax matching processes make the quorum; QuorumMax
	// below 0 is unlimited.
	Quorum    int `json:"quorum"`
	QuorumMax int `json:"quorum_max"`
	// ForkDelay holds back the quorum gained by a fork of a tracked
	// process; TerminateDelay the quorum lost by an exit.
	ForkDelay      time.Duration `json:"fork_delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty"`
}

// Equal reports whether two specs track the same thing the same way.
func (s Spec) Equal(o Spec) bool {
	return slices.Equal(s.Params, o.Params) && s.Name == o.Name && s.Process == o.Process && s.ParamMatch == o.ParamMatch &&
		s.FullCommand == o.FullCommand && s.Quorum == o.Quorum && s.QuorumMax == o.QuorumMax &&
		s.ForkDelay == o.ForkDelay && s.TerminateDelay == o.TerminateDelay
}

// fullCommand reports whether s matches the command line rather than the
// process name.
func (s Spec) fullCommand() bool {
	return s.FullCommand || len(s.Params) > 0 || s.ParamMatch != MatchNone
}

// inRange reports whether n processes make the quorum.
func (s Spec) inRange(n int) bool {
	return n >= s.Quorum && (s.QuorumMax < 0 || n <= s.QuorumMax)
}

// Proc is what the driver read of one process.
type Proc struct {
	PID  int
	Comm string // /proc/PID/comm, without the newline
	// Cmdline is /proc/PID/cmdline: arguments each ended by a NUL byte.
	// It is only read when some spec needs it.
	Cmdline []byte
}

// argv splits a cmdline into its arguments. A cmdline without the final
// NUL (a process that rewrote it) still yields its last argument.
func argv(cmdline []byte) []string {
	cmdline = bytes.TrimSuffix(cmdline, []byte{0})
	if len(cmdline) == 0 {
		return nil
	}
	parts := bytes.Split(cmdline, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// Match reports whether p is a process s tracks: its name (or argv[0]
// with full_command) is exactly Process (no pattern, unlike pgrep), and
// its parameters match as ParamMatch says.
func (s Spec) Match(p Proc) bool {
	if !s.fullCommand() {
		return p.Comm == s.Process
	}
	args := argv(p.Cmdline)
	if len(args) == 0 || args[0] != s.Process {
		return false
	}
	return s.paramsMatch(args[1:])
}

func (s Spec) paramsMatch(have []string) bool {
	want := s.Params
	switch s.ParamMatch {
	case MatchNone:
		if len(want) == 0 {
			return true
		}
		return slices.Equal(have, want) // parameters given: exact
	case MatchExact:
		return slices.Equal(have, want)
	case MatchPartial:
		return len(have) >= len(want) && slices.Equal(have[:len(want)], want)
	case MatchInitial:
		if len(want) == 0 {
			return true
		}
		n := len(want) - 1
		return len(have) >= len(want) && slices.Equal(have[:n], want[:n]) && len(have[n]) >= len(want[n]) && have[n][:len(want[n])] == want[n]
	}
	return false
}
