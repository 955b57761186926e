package lvs

import "testing"

// Worked example, weights 2 and 1, connections stay open: A takes
// connections while its active count is not above its weight (0, 1, 2:
// three connections), then B while not above 1 (0, 1: two), then none.
func TestOVFSequence(t *testing.T) {
	testConns(t, "ovf", []*Dest{d("A", 2), d("B", 1)}, "A A A B B -")
}

func TestOVF(t *testing.T) {
	testPicks(t, "ovf", []pick{
		{"tie first", []*Dest{d("A", 1), d("B", 3), d("C", 3)}, "B"},
		// Inactive connections do not count.
		{"inactive", []*Dest{d("A", 1), d("B", 3, inactive(100))}, "B"},
		{"overflow", []*Dest{d("A", 1), d("B", 3, active(4))}, "A"},
		{"overloaded", []*Dest{d("A", 1), d("B", 3, overloaded)}, "A"},
		{"quiesced", []*Dest{d("A", 0), d("B", 1)}, "B"},
	})
}
