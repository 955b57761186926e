package lvs

import (
	"strings"
	"testing"
)

// dh hashes the packet's destination address. Buckets (from
// testdata/sched_reference.py, hash_32(fold(addr), 8)) of 198.18.2.1..6:
// 77, 175, 17, 115, 212, 54; the table holds the destinations one bucket
// each in list order, so with three destinations it is bucket % 3.
func TestDH(t *testing.T) {
	tests := []struct {
		name  string
		dests []*Dest
		want  string
	}{
		{"three", []*Dest{d("A", 1), d("B", 1), d("C", 1)}, "C B C B C A"},
		// Weights do not shape the table.
		{"weights ignored", []*Dest{d("A", 1), d("B", 1), d("C", 7)}, "C B C B C A"},
		{"quiesced", []*Dest{d("A", 1), d("B", 0), d("C", 1)}, "C - C - C A"},
		{"overloaded", []*Dest{d("A", 1), d("B", 1), d("C", 1, overloaded)}, "- B - B - A"},
		// Two: bucket % 2.
		{"two", []*Dest{d("A", 1), d("B", 1)}, "B B B B A A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "dh", 0, tt.dests)
			var got []string
			for _, vip := range hosts("198.18.2.", 1, 6) {
				// The client does not matter.
				for _, c := range []string{"198.18.0.1", "198.18.0.99:1234"} {
					got = append(got, name(s.Schedule(tt.dests, flow(c, vip), t0)))
				}
			}
			want := strings.Join(doubleEach(strings.Fields(tt.want)), " ")
			if g := strings.Join(got, " "); g != want {
				t.Errorf("got %q, want %q", g, want)
			}
		})
	}
}

func doubleEach(xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x, x)
	}
	return out
}
