package lvs

import "testing"

// Worked example, weights 2 and 1, connections stay open: A takes
// connections while its active count is not above its weight (0, 1, 2:
// three connections), then B while not above 1 (0, 1: two), then none.
func TestOVFSequence(t *testing.T) {
	dests := []*Dest{d("A", 2), d("B", 1)}
	s := newSched(t, "ovf", 0, dests)
	if got, want := runConns(s, dests, 6), "A A A B B -"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOVF(t *testing.T) {
	tests := []struct {
		name  string
		dests []*Dest
		want  string
	}{
		{"tie first", []*Dest{d("A", 1), d("B", 3), d("C", 3)}, "B"},
		// Inactive connections do not count.
		{"inactive", []*Dest{d("A", 1), d("B", 3, inactive(100))}, "B"},
		{"overflow", []*Dest{d("A", 1), d("B", 3, active(4))}, "A"},
		{"overloaded", []*Dest{d("A", 1), d("B", 3, overloaded)}, "A"},
		{"quiesced", []*Dest{d("A", 0), d("B", 1)}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "ovf", 0, tt.dests)
			if got := run(s, tt.dests, 1); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
