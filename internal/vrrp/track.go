package vrrp

import (
	"fmt"
	"strings"
)

// ScriptState is the state of a vrrp_script (or any tracked check with
// rise/fall): INIT until the first result, then GOOD or BAD.
type ScriptState uint8

// Script states.
const (
	ScriptInit ScriptState = iota
	ScriptGood
	ScriptBad
)

func (s ScriptState) String() string {
	switch s {
	case ScriptGood:
		return "GOOD"
	case ScriptBad:
		return "BAD"
	}
	return "INIT"
}

// ScriptTracker applies keepalived's rise/fall rules to a stream of check
// results. Without init_fail the first result decides at once (keepalived
// logs "VRRP_Script(x) succeeded" after the first run); afterwards GOOD
// needs fall consecutive failures to become BAD and BAD needs rise
// consecutive successes to become GOOD. With init_fail it starts BAD.
type ScriptTracker struct {
	rise, fall int
	state      ScriptState
	run        int // consecutive results against the current state
}

// NewScriptTracker returns a tracker; rise and fall below 1 count as 1.
func NewScriptTracker(rise, fall int, initFail bool) *ScriptTracker {
	s := &ScriptTracker{rise: max(rise, 1), fall: max(fall, 1)}
	if initFail {
		s.state = ScriptBad
	}
	return s
}

// State returns the current state.
func (s *ScriptTracker) State() ScriptState { return s.state }

// Result records one check result and reports whether the state changed.
func (s *ScriptTracker) Result(ok bool) bool {
	switch {
	case s.state == ScriptInit:
		s.state = ScriptBad
		if ok {
			s.state = ScriptGood
		}
		s.run = 0
		return true
	case ok == (s.state == ScriptGood):
		s.run = 0 // confirms the current state
		return false
	}
	s.run++
	need := s.fall
	if s.state == ScriptBad {
		need = s.rise
	}
	if s.run < need {
		return false
	}
	s.run = 0
	if s.state == ScriptGood {
		s.state = ScriptBad
	} else {
		s.state = ScriptGood
	}
	return true
}

// TrackKind says what a tracked object is.
type TrackKind uint8

// Tracked object kinds.
const (
	TrackScript TrackKind = iota + 1
	TrackInterface
	TrackFile
	// TrackExternal is an object the daemon reports (Node.SetTrack),
	// such as a track_group; its fault reason reads "process NAME down".
	TrackExternal
	// TrackProcess is a vrrp_track_process: Up while its quorum holds.
	TrackProcess
	// TrackBFD is a track_bfd entry: Up while the bfd_instance's
	// session is (the daemon reports it under BFDRef).
	TrackBFD
)

func (k TrackKind) String() string {
	switch k {
	case TrackScript:
		return "script"
	case TrackInterface:
		return "interface"
	case TrackFile:
		return "file"
	case TrackExternal:
		return "process"
	case TrackBFD:
		return "bfd"
	case TrackProcess:
		return "track_process"
	}
	return "track"
}

// Tracked is the current state of one object an instance tracks, with
// the weight the instance gives it.
type Tracked struct {
	Kind    TrackKind
	Name    string
	Weight  int
	Reverse bool
	// Known is false while a script has not run yet: it then neither adds
	// weight nor causes a fault.
	Known bool
	Up    bool // script, interface, process
	Value int  // file: the number read from it
}

// Evaluate computes keepalived's effect of tracked objects on an
// instance: the sum of weights to add to its priority, and the reasons it
// must be in FAULT.
//
// Weight 0 (unweighted) means FAULT while the object is down (with
// reverse: while up). A positive weight is added while the object is up,
// a negative weight added (so subtracted) while it is down; reverse
// negates the weight. A track_file value is multiplied by the weight
// (weight 0: any non-zero value is a fault), and a product below -253 is
// a fault.
func Evaluate(items []Tracked) (delta int, faults []string) {
	for _, it := range items {
		if !it.Known {
			continue
		}
		mult := 1
		if it.Reverse {
			mult = -1
		}
		if it.Kind == TrackFile {
			if it.Weight == 0 {
				bad := it.Value != 0
				if it.Reverse {
					bad = !bad
				}
				if bad {
					faults = append(faults, fmt.Sprintf("track_file %s value %d", it.Name, it.Value))
				}
				continue
			}
			v := it.Value * it.Weight * mult
			if v < -253 {
				faults = append(faults, fmt.Sprintf("track_file %s value %d", it.Name, it.Value))
				continue
			}
			delta += v
			continue
		}
		switch {
		case it.Weight == 0 && it.Kind == TrackProcess:
			if it.Up == it.Reverse {
				faults = append(faults, fmt.Sprintf("tracked process %s quorum %s", it.Name, map[bool]string{true: "held (reverse)", false: "not achieved"}[it.Up]))
			}
		case it.Weight == 0:
			if it.Up == it.Reverse {
				faults = append(faults, fmt.Sprintf("%s %s %s", it.Kind, it.Name, upDown(it.Up)))
			}
		case it.Weight > 0 && it.Up:
			delta += it.Weight * mult
		case it.Weight < 0 && !it.Up:
			delta += it.Weight * mult
		}
	}
	return delta, faults
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// FaultString joins fault reasons for a log line.
func FaultString(f []string) string { return strings.Join(f, ", ") }
