package lvs

import "testing"

// The expected wrr sequences are worked out by hand from the kernel's
// algorithm: cw starts at mw = max - (gcd - 1), each pass picks the
// destinations with weight >= cw in list order, and cw drops by gcd at the
// end of the list, restarting at mw after the pass with cw <= 0.
func TestWRR(t *testing.T) {
	testPicks(t, "wrr", []pick{
		// gcd 1, mw 5: passes cw=5,4,3,2 pick B; cw=1 picks A then B.
		{"1:5", []*Dest{d("A", 1), d("B", 5)}, "B B B B A B B B B B A B"},
		// gcd 2, mw = 4 - 1 = 3: cw=3 picks A; cw=1 picks A, B, C;
		// then back to cw=3.
		{"4:2:2 gcd 2", []*Dest{d("A", 4), d("B", 2), d("C", 2)}, "A A B C A A B C"},
		// Equal weights: plain round robin.
		{"equal", []*Dest{d("A", 3), d("B", 3), d("C", 3)}, "A B C A B C"},
		// Weight 0 is never picked (cw >= 1); gcd of the positive
		// weights only: gcd 2, mw 1.
		{"quiesced", []*Dest{d("A", 0), d("B", 2)}, "B B B"},
		{"overloaded", []*Dest{d("A", 1), d("B", 5, overloaded)}, "A A A"},
		// All overloaded: the pass from the head with cw down to 1
		// finds nothing.
		{"all overloaded", []*Dest{d("A", 1, overloaded), d("B", 1, overloaded)}, "- -"},
		{"all quiesced", []*Dest{d("A", 0), d("B", 0)}, "- -"},
	})
}

// TestWRRUpdates checks the kernel's dest_changed rules: the position goes
// back to the list head, and cw is kept if still in range.
func TestWRRUpdates(t *testing.T) {
	type step struct {
		dests []*Dest
		n     int
		want  string
	}
	A1, B1, C1 := d("A", 1), d("B", 1), d("C", 1)
	B2 := d("B", 2)
	A, B := d("A", 1), d("B", 5)
	tests := []struct {
		name  string
		steps []step
	}{
		// After A B, B's weight becomes 2: position back to the head,
		// cw stays 1 (<= mw 2): A B C with cw=1, then cw restarts at 2
		// (only B), then cw=1 again: A B C.
		{"edit resets position", []step{
			{[]*Dest{A1, B1, C1}, 2, "A B"},
			{[]*Dest{A1, B2, C1}, 8, "A B C B A B C B"},
		}},
		// Adding destinations one by one, as keepalived does: after A
		// (weight 1) cw is 1; adding B (weight 5) keeps cw = 1, so the
		// first pass picks B and A before the cw=5..1 passes. A batch
		// with both starts at cw = 5 instead (see TestWRR "1:5").
		{"incremental adds", []step{
			{[]*Dest{A}, 0, ""},
			{[]*Dest{B, A}, 8, "B A B B B B B A"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := NewScheduler("wrr", 0)
			for i, st := range tt.steps {
				s.Update(st.dests)
				if got := run(s, st.dests, st.n); got != st.want {
					t.Fatalf("step %d: got %q, want %q", i, got, st.want)
				}
			}
		})
	}
}

// TestWRRStopAfterLastPass: when the destinations after the position are
// all overloaded at cw = 1 and the ones before it too, the kernel gives up
// after checking every destination once with weight >= 1, and the
// position is where the search stopped.
func TestWRRStopAfterLastPass(t *testing.T) {
	A, B, C := d("A", 2), d("B", 1), d("C", 1)
	dests := []*Dest{A, B, C}
	s := newSched(t, "wrr", 0, dests)
	// gcd 1, mw 2: cw=2 picks A; cw=1 picks A, B, C.
	if got := run(s, dests, 4); got != "A A B C" {
		t.Fatalf("got %q", got)
	}
	// Position C. Everything overloaded: nothing.
	A.Overloaded, B.Overloaded, C.Overloaded = true, true, true
	if got := run(s, dests, 1); got != "-" {
		t.Fatalf("all overloaded: got %q", got)
	}
	// The search stopped at C (the stop node), so the next search
	// starts after C, from the head with cw = mw = 2: A.
	A.Overloaded, B.Overloaded, C.Overloaded = false, false, false
	if got := run(s, dests, 4); got != "A A B C" {
		t.Errorf("recovered: got %q", got)
	}
}
