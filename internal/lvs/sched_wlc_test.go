package lvs

import "testing"

func TestWLC(t *testing.T) {
	testPicks(t, "wlc", []pick{
		// A: 512/1 > B: 768/2 = 384.
		{"per weight", []*Dest{d("A", 1, active(2)), d("B", 2, active(3))}, "B"},
		// A: 512/2 = B: 256/1: tie, first wins.
		{"tie", []*Dest{d("A", 2, active(2)), d("B", 1, active(1))}, "A"},
		// Inactive connections: A 0*256+10 = 10 vs B 5.
		{"inactive", []*Dest{d("A", 1, inactive(10)), d("B", 1, inactive(5))}, "B"},
		// Weight 0 is never chosen even when idle.
		{"quiesced", []*Dest{d("A", 1, active(50)), d("B", 0)}, "A"},
		{"quiesced first", []*Dest{d("A", 0), d("B", 1, active(50))}, "B"},
		{"overloaded", []*Dest{d("A", 1, overloaded), d("B", 1, active(50))}, "B"},
	})
}

// Worked example, weights 1 and 3, connections stay open (overheads in
// units of 256): 0/1 vs 0/3 tie -> A; 1/1 vs 0/3 -> B; 1/1 vs 1/3 -> B;
// 1/1 vs 2/3 -> B; 1/1 vs 3/3 tie -> A; then B three times, then A.
func TestWLCSequence(t *testing.T) {
	testConns(t, "wlc", []*Dest{d("A", 1), d("B", 3)}, "A B B B A B B B A")
}
