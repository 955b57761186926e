package lvs

import "testing"

func TestFO(t *testing.T) {
	testPicks(t, "fo", []pick{
		{"highest weight", []*Dest{d("A", 1), d("B", 3), d("C", 2)}, "B B B"},
		// Equal weights: the first (newest).
		{"tie", []*Dest{d("A", 1), d("B", 3), d("C", 3)}, "B B B"},
		{"overloaded fails over", []*Dest{d("A", 1), d("B", 3, overloaded), d("C", 2)}, "C C C"},
		// Connections do not matter.
		{"busy", []*Dest{d("A", 1), d("B", 3, active(1000))}, "B B B"},
		{"quiesced", []*Dest{d("A", 0), d("B", 0), d("C", 1)}, "C C C"},
	})
}
