package lvs

import "testing"

// Worked example, weights 1 and 3, connections stay open: A is idle -> A;
// B is idle -> B; then sed: 2/1 vs 2/3 -> B; 2/1 vs 3/3 -> B; 2/1 vs 4/3
// -> B; 2/1 vs 5/3 -> B; 2/1 vs 6/3 tie -> A.
func TestNQSequence(t *testing.T) {
	testConns(t, "nq", []*Dest{d("A", 1), d("B", 3)}, "A B B B B B A")
}

func TestNQ(t *testing.T) {
	testPicks(t, "nq", []pick{
		// The first idle destination wins regardless of weights.
		{"idle first", []*Dest{d("A", 9, active(1)), d("B", 1), d("C", 9)}, "B"},
		// Inactive connections do not make a destination busy.
		{"inactive idle", []*Dest{d("A", 9, active(1)), d("B", 1, inactive(7))}, "B"},
		{"quiesced idle", []*Dest{d("A", 0), d("B", 1, active(3))}, "B"},
		{"overloaded idle", []*Dest{d("A", 1, overloaded), d("B", 1, active(3))}, "B"},
		// No idle one: (3+1)/2 = 2 vs (1+1)/1 = 2: tie, first.
		{"tie", []*Dest{d("A", 2, active(3)), d("B", 1, active(1))}, "A"},
	})
}
