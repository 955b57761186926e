package vrrp

import (
	"slices"
	"strings"
	"testing"
)

func TestScriptTracker(t *testing.T) {
	tests := []struct {
		name     string
		rise     int
		fall     int
		initFail bool
		results  string // 1 = success, 0 = failure
		states   string // state after each result: I G B
	}{
		{"first success decides", 2, 2, false, "1", "G"},
		{"first failure decides", 2, 2, false, "0", "B"},
		{"fall 2", 1, 2, false, "10100", "GGGGB"},
		{"fall 3 interrupted", 1, 3, false, "1001000", "GGGGGGB"},
		{"rise 3", 3, 1, false, "0110111", "BBBBBBG"},
		{"init_fail needs rise successes", 2, 1, true, "11", "BG"},
		{"init_fail, failures stay bad", 2, 1, true, "0010", "BBBB"},
		{"flapping with rise 2 fall 2", 2, 2, false, "1010101", "GGGGGGG"},
		{"rise/fall 0 act as 1", 0, 0, false, "1010", "GBGB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScriptTracker(tt.rise, tt.fall, tt.initFail)
			var got strings.Builder
			for _, r := range tt.results {
				s.Result(r == '1')
				got.WriteByte(s.State().String()[0])
			}
			if got.String() != tt.states {
				t.Fatalf("states %s, want %s", got.String(), tt.states)
			}
		})
	}
	s := NewScriptTracker(1, 1, false)
	if !s.Result(true) || s.Result(true) || !s.Result(false) {
		t.Fatal("Result must report changes only")
	}
}

func TestEvaluate(t *testing.T) {
	sc := func(w int, rev, up bool) Tracked {
		return Tracked{Kind: TrackScript, Name: "chk", Weight: w, Reverse: rev, Known: true, Up: up}
	}
	file := func(w int, rev bool, v int) Tracked {
		return Tracked{Kind: TrackFile, Name: "f", Weight: w, Reverse: rev, Known: true, Value: v}
	}
	tests := []struct {
		name   string
		items  []Tracked
		delta  int
		faults []string
	}{
		{"nothing", nil, 0, nil},
		{"unweighted up", []Tracked{sc(0, false, true)}, 0, nil},
		{"unweighted down is a fault", []Tracked{sc(0, false, false)}, 0, []string{"script chk down"}},
		{"unweighted reverse: up is a fault", []Tracked{sc(0, true, true)}, 0, []string{"script chk up"}},
		{"positive weight added while up", []Tracked{sc(20, false, true)}, 20, nil},
		{"positive weight nothing while down", []Tracked{sc(20, false, false)}, 0, nil},
		{"negative weight subtracted while down", []Tracked{sc(-30, false, false)}, -30, nil},
		{"negative weight nothing while up", []Tracked{sc(-30, false, true)}, 0, nil},
		{"positive weight reversed: subtracted while up", []Tracked{sc(20, true, true)}, -20, nil},
		{"negative weight reversed: added while down", []Tracked{sc(-30, true, false)}, 30, nil},
		{"unknown script counts for nothing", []Tracked{{Kind: TrackScript, Name: "x", Weight: 0}}, 0, nil},
		{"interface down unweighted", []Tracked{{Kind: TrackInterface, Name: "eth1", Known: true}}, 0, []string{"interface eth1 down"}},
		{"sum of several", []Tracked{sc(20, false, true), sc(-30, false, false), sc(5, false, true)}, -5, nil},
		{"file weight 0, value 0 ok", []Tracked{file(0, false, 0)}, 0, nil},
		{"file weight 0, non-zero is a fault", []Tracked{file(0, false, 3)}, 0, []string{"track_file f value 3"}},
		{"file value x weight", []Tracked{file(2, false, -10)}, -20, nil},
		{"file reversed", []Tracked{file(2, true, 10)}, -20, nil},
		{"file below -253 is a fault", []Tracked{file(1, false, -254)}, 0, []string{"track_file f value -254"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f := Evaluate(tt.items)
			if d != tt.delta || !slices.Equal(f, tt.faults) {
				t.Fatalf("Evaluate = %d %q, want %d %q", d, f, tt.delta, tt.faults)
			}
		})
	}
}
