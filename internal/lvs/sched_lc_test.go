package lvs

import "testing"

func TestLC(t *testing.T) {
	testPicks(t, "lc", []pick{
		// Overhead = active*256 + inactive.
		{"fewest active", []*Dest{d("A", 1, active(2)), d("B", 1, active(1)), d("C", 1, active(3))}, "B"},
		{"inactive counts 1/256", []*Dest{d("A", 1, active(1)), d("B", 1, inactive(255))}, "B"},
		{"256 inactive = 1 active", []*Dest{d("A", 1, active(1)), d("B", 1, inactive(256))}, "A"},
		// Ties go to the first (newest) destination.
		{"tie", []*Dest{d("A", 1, active(1)), d("B", 1, active(1))}, "A"},
		// Weights do not matter except 0.
		{"weight ignored", []*Dest{d("A", 1, active(1)), d("B", 100, active(2))}, "A"},
		{"quiesced", []*Dest{d("A", 0), d("B", 1, active(9))}, "B"},
		{"overloaded", []*Dest{d("A", 1, overloaded), d("B", 1, active(9))}, "B"},
	})
}

// With connections that stay open, lc spreads them evenly in list order.
func TestLCSequence(t *testing.T) {
	testConns(t, "lc", []*Dest{d("A", 1), d("B", 3), d("C", 1)}, "A B C A B C A")
}
