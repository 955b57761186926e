package lvs

import "testing"

func TestRR(t *testing.T) {
	testPicks(t, "rr", []pick{
		{"equal", []*Dest{d("A", 1), d("B", 1), d("C", 1)}, "A B C A B C A"},
		// Weights do not matter, except 0.
		{"weights ignored", []*Dest{d("A", 1), d("B", 5)}, "A B A B"},
		{"quiesced skipped", []*Dest{d("A", 1), d("B", 0), d("C", 1)}, "A C A C"},
		{"overloaded skipped", []*Dest{d("A", 1), d("B", 1, overloaded), d("C", 1)}, "A C A C"},
		{"single", []*Dest{d("A", 0), d("B", 2)}, "B B B"},
		{"none", []*Dest{d("A", 0), d("B", 0)}, "- -"},
	})
}

// TestRRListChanges follows the kernel's position pointer through list
// changes: it stays on the last chosen destination when others come and
// go, and moves to the node before it when that destination is deleted.
// Each step gives the scheduler a new list (Update) and schedules n
// connections.
func TestRRListChanges(t *testing.T) {
	A, B, C, D := d("A", 1), d("B", 1), d("C", 1), d("D", 1)
	type step struct {
		dests []*Dest
		n     int
		want  string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		// Position B deleted: it moves to A, so C is next.
		{"delete current", []step{{[]*Dest{A, B, C}, 2, "A B"}, {[]*Dest{A, C}, 3, "C A C"}}},
		// Position A (first) deleted: back to the list head.
		{"delete first", []step{{[]*Dest{A, B, C}, 1, "A"}, {[]*Dest{B, C}, 3, "B C B"}}},
		// Position C; B and C deleted at once: the nearest survivor
		// before C is A, as if deleted one by one.
		{"delete two", []step{{[]*Dest{A, B, C, D}, 3, "A B C"}, {[]*Dest{A, D}, 2, "D A"}}},
		// A destination added at the head does not move the position:
		// after A comes B, and D only after the wrap.
		{"add at head", []step{{[]*Dest{A, B, C}, 1, "A"}, {[]*Dest{D, A, B, C}, 4, "B C D A"}}},
		// Another destination deleted: position unchanged.
		{"delete other", []step{{[]*Dest{A, B, C}, 2, "A B"}, {[]*Dest{B, C}, 3, "C B C"}}},
		// B deleted (position to A), then re-added at the head: after
		// A the scan wraps to B.
		{"delete and re-add", []step{{[]*Dest{A, B}, 2, "A B"}, {[]*Dest{A}, 1, "A"}, {[]*Dest{B, A}, 3, "B A B"}}},
		// A weight change does not move the position (rr has no edit
		// hook).
		{"edit", []step{{[]*Dest{A, B, C}, 1, "A"}, {[]*Dest{A, B, C}, 2, "B C"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := NewScheduler("rr", 0)
			for i, st := range tt.steps {
				s.Update(st.dests)
				if got := run(s, st.dests, st.n); got != st.want {
					t.Fatalf("step %d: got %q, want %q", i, got, st.want)
				}
			}
		})
	}
}
