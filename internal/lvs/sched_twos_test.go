package lvs

import "testing"

// scripted returns a random source that yields vals in turn and records
// the bounds it was asked for.
func scripted(vals ...uint32) (func(uint32) uint32, *[]uint32) {
	var bounds []uint32
	return func(n uint32) uint32 {
		bounds = append(bounds, n)
		v := vals[0]
		vals = vals[1:]
		return v
	}, &bounds
}

// With weights A 1, B 2, C 1 (total 4) the kernel draws r in [0, 4] and
// subtracts the weights in list order: r = 0, 1 -> A; 2, 3 -> B; 4 -> C.
// The second draw wins if its overhead/weight is strictly lower.
func TestTwos(t *testing.T) {
	tests := []struct {
		name   string
		r1, r2 uint32
		conns  [3]int // active connections of A, B, C
		want   string
	}{
		{"idle tie keeps first", 0, 2, [3]int{0, 0, 0}, "A"},
		{"r = weight boundary", 1, 3, [3]int{0, 0, 0}, "A"},
		// A 256/1 vs B 256/2: B lighter.
		{"second lighter", 0, 2, [3]int{1, 1, 0}, "B"},
		{"last", 4, 3, [3]int{0, 0, 0}, "C"},
		// C 256/1 vs A 0/1.
		{"second idle", 4, 1, [3]int{0, 0, 1}, "A"},
		{"same twice", 2, 3, [3]int{5, 0, 0}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dests := []*Dest{d("A", 1, active(tt.conns[0])), d("B", 2, active(tt.conns[1])), d("C", 1, active(tt.conns[2]))}
			src, bounds := scripted(tt.r1, tt.r2)
			s := NewTwos(src)
			s.Update(dests)
			if got := run(s, dests, 1); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(*bounds) != 2 || (*bounds)[0] != 5 || (*bounds)[1] != 5 {
				t.Errorf("random bounds %v, want [5 5] (total weight + 1)", *bounds)
			}
		})
	}
}

// Quiesced and overloaded destinations neither count in the total nor get
// picked: with B out, A 1 + C 1 gives draws in [0, 2]: 0, 1 -> A; 2 -> C.
func TestTwosSkips(t *testing.T) {
	for _, b := range []*Dest{d("B", 0), d("B", 2, overloaded)} {
		dests := []*Dest{d("A", 1), b, d("C", 1, active(1))}
		src, bounds := scripted(2, 1)
		s := NewTwos(src)
		if got := run(s, dests, 1); got != "A" {
			t.Errorf("got %q, want A (C drawn first but busier)", got)
		}
		if (*bounds)[0] != 3 {
			t.Errorf("bound %d, want 3", (*bounds)[0])
		}
	}
}

// The default source is random but always picks a usable destination.
func TestTwosRandom(t *testing.T) {
	dests := []*Dest{d("A", 1), d("B", 0), d("C", 3, overloaded), d("D", 2)}
	s := newSched(t, "twos", 0, dests)
	seen := map[string]int{}
	for range 1000 {
		seen[name(s.Schedule(dests, defaultFlow, t0))]++
	}
	if seen["A"] == 0 || seen["D"] == 0 || len(seen) != 2 {
		t.Errorf("choices %v, want only and both of A and D", seen)
	}
}
