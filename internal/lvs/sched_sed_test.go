package lvs

import "testing"

// Worked example, weights 1 and 3, connections stay open; the expected
// delay is (active+1)/weight: 1/1 vs 1/3 -> B; 1/1 vs 2/3 -> B;
// 1/1 vs 3/3 tie -> A; 2/1 vs 3/3 -> B; 2/1 vs 4/3 -> B; 2/1 vs 5/3 -> B;
// 2/1 vs 6/3 tie -> A. Unlike wlc, the idle weight-1 destination does not
// get the first connection.
func TestSEDSequence(t *testing.T) {
	testConns(t, "sed", []*Dest{d("A", 1), d("B", 3)}, "B B A B B B A")
}

func TestSED(t *testing.T) {
	testPicks(t, "sed", []pick{
		// Inactive connections do not count: A (0+1)/1 vs B (0+1)/1.
		{"inactive ignored", []*Dest{d("A", 1, inactive(100)), d("B", 1)}, "A"},
		{"quiesced", []*Dest{d("A", 0), d("B", 1, active(9))}, "B"},
		{"overloaded", []*Dest{d("A", 5, overloaded), d("B", 1, active(9))}, "B"},
	})
}
