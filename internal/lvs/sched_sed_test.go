package lvs

import "testing"

// Worked example, weights 1 and 3, connections stay open; the expected
// delay is (active+1)/weight: 1/1 vs 1/3 -> B; 1/1 vs 2/3 -> B;
// 1/1 vs 3/3 tie -> A; 2/1 vs 3/3 -> B; 2/1 vs 4/3 -> B; 2/1 vs 5/3 -> B;
// 2/1 vs 6/3 tie -> A. Unlike wlc, the idle weight-1 destination does not
// get the first connection.
func TestSEDSequence(t *testing.T) {
	dests := []*Dest{d("A", 1), d("B", 3)}
	s := newSched(t, "sed", 0, dests)
	if got, want := runConns(s, dests, 7), "B B A B B B A"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSED(t *testing.T) {
	tests := []struct {
		name  string
		dests []*Dest
		want  string
	}{
		// Inactive connections do not count: A (0+1)/1 vs B (0+1)/1.
		{"inactive ignored", []*Dest{d("A", 1, inactive(100)), d("B", 1)}, "A"},
		{"quiesced", []*Dest{d("A", 0), d("B", 1, active(9))}, "B"},
		{"overloaded", []*Dest{d("A", 5, overloaded), d("B", 1, active(9))}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "sed", 0, tt.dests)
			if got := run(s, tt.dests, 1); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
