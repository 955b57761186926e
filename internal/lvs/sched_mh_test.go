package lvs

import (
	"hash/fnv"
	"testing"
)

// Expected values come from testdata/sched_reference.py (an independent
// model of ip_vs_mh with the kernel's keys). Destinations A, B, C are
// 198.18.1.1-3:80; their permutations start at offsets 303, 1852, 2630
// with skips 217, 1910, 2095. Clients 198.18.0.1..8 hash to slots 2895,
// 3824, 618, 4059, 842, 2672, 1419, 1862.

// mhTable renders the lookup table as a string of letters ("-" for an
// empty slot).
func mhTable(s Scheduler) string {
	m := s.(*mhScheduler)
	b := make([]byte, 0, mhTabSize)
	for _, x := range m.lookup {
		b = append(b, name(x)[0])
	}
	return string(b)
}

func fnv1a(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func TestMHTable(t *testing.T) {
	tests := []struct {
		name   string
		dests  []*Dest
		counts map[byte]int
		fnv    uint64 // FNV-1a 64 of the whole table
		prefix string // slots 0..11
		want   string // clients 198.18.0.1..8
	}{
		{"equal", []*Dest{d("A", 1), d("B", 1), d("C", 1)},
			map[byte]int{'A': 1365, 'B': 1364, 'C': 1364}, 0x7b788e67653c685e, "ACACAAAABABA", "B C C C A C A C"},
		// turns 1, 2, 3 (gcd 1, no shift).
		{"weighted 1:2:3", []*Dest{d("A", 1), d("B", 2), d("C", 3)},
			map[byte]int{'A': 683, 'B': 1364, 'C': 2046}, 0xf53232f310ba5932, "", "B C C C C C C C"},
		// Without B: only the slots B had, and 5 others, change owner.
		{"without B", []*Dest{d("A", 1), d("C", 1)},
			map[byte]int{'A': 2047, 'C': 2046}, 0xb911880e5fc73a3c, "", "A C C C A C C C"},
		// Weights 1 and 100: 100/1 needs 7 bits, shift 1: turns 1
		// (0, raised to 1) and 50.
		{"shifted", []*Dest{d("A", 1), d("B", 100)},
			map[byte]int{'A': 81, 'B': 4012}, 0x8debd51da6ea6dc0, "", ""},
		// A added with weight 0: no slots at all.
		{"zero at add", []*Dest{d("A", 0), d("B", 1)},
			map[byte]int{'B': 4093}, 0x474125ab30228305, "", "B B B B B B B B"},
		// List order matters: it decides who claims a contested slot.
		{"reversed", []*Dest{d("C", 1), d("B", 1), d("A", 1)},
			map[byte]int{'A': 1364, 'B': 1364, 'C': 1365}, 0, "", "B C C C A C C C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, "mh", 0, tt.dests)
			tab := mhTable(s)
			counts := map[byte]int{}
			for i := range len(tab) {
				counts[tab[i]]++
			}
			if len(counts) != len(tt.counts) {
				t.Errorf("slot counts %v, want %v", counts, tt.counts)
			}
			for k, v := range tt.counts {
				if counts[k] != v {
					t.Errorf("slots of %c = %d, want %d", k, counts[k], v)
				}
			}
			if tt.fnv != 0 && fnv1a(tab) != tt.fnv {
				t.Errorf("table FNV %#x, want %#x", fnv1a(tab), tt.fnv)
			}
			if tt.prefix != "" && tab[:len(tt.prefix)] != tt.prefix {
				t.Errorf("table starts %q, want %q", tab[:len(tt.prefix)], tt.prefix)
			}
			if tt.want != "" {
				if got := clients(s, tt.dests, shClients...); got != tt.want {
					t.Errorf("clients: got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// mh-port: 198.18.0.1 with ports 40000..40005 hashes to slots 2096, 759,
// 1939, 2301, 2732, 723. IPv6: 2001:db8::1 -> 3457, 2001:db8::2 -> 1523.
func TestMHPortAndIPv6(t *testing.T) {
	dests := []*Dest{d("A", 1), d("B", 1), d("C", 1)}
	s := newSched(t, "mh", FlagMHPort, dests)
	if got, want := clients(s, dests, hosts("198.18.0.1:4000", 0, 5)...), "B B A C C A"; got != want {
		t.Errorf("ports: got %q, want %q", got, want)
	}
	s = newSched(t, "mh", 0, dests)
	if got, want := clients(s, dests, hosts("198.18.0.1:4000", 0, 5)...), "B B B B B B"; got != want {
		t.Errorf("ports without mh-port: got %q, want %q", got, want)
	}
	if got, want := clients(s, dests, "2001:db8::1", "2001:db8::2"), "B B"; got != want {
		t.Errorf("ipv6: got %q, want %q", got, want)
	}
}

// Setting B's weight to 0 keeps the table (last_weight stays 1): clients
// of A and C are not remapped, B's clients (198.18.0.1 at slot 2895) get
// nothing, or with mh-fallback the first usable owner of the slots
// hash(offset) for offset 2895, 2896, ...: slot 61 (B), then slot 3231 (A).
func TestMHQuiesce(t *testing.T) {
	for _, flags := range []SchedFlags{0, FlagMHFallback} {
		A, B, C := d("A", 1), d("B", 1), d("C", 1)
		dests := []*Dest{A, B, C}
		s := newSched(t, "mh", flags, dests)
		before := mhTable(s)
		B.Weight = 0
		s.Update(dests)
		if mhTable(s) != before {
			t.Fatalf("flags %#x: table changed when B was quiesced", flags)
		}
		want := "- C C C A C A C"
		if flags != 0 {
			want = "A C C C A C A C"
		}
		if got := clients(s, dests, shClients...); got != want {
			t.Errorf("flags %#x: got %q, want %q", flags, got, want)
		}
		// Overloaded is handled the same way.
		B.Weight, B.Overloaded = 1, true
		s.Update(dests)
		if got := clients(s, dests, shClients...); got != want {
			t.Errorf("flags %#x overloaded: got %q, want %q", flags, got, want)
		}
		// Removing B rebuilds: its clients move (to A here).
		s.Update([]*Dest{A, C})
		if got, want := clients(s, []*Dest{A, C}, shClients...), "A C C C A C C C"; got != want {
			t.Errorf("flags %#x without B: got %q, want %q", flags, got, want)
		}
	}
}

// last_weight: a destination quiesced and then edited back keeps or takes
// its weight, one that leaves and comes back is new.
func TestMHLastWeight(t *testing.T) {
	A, B := d("A", 1), d("B", 3)
	s := newSched(t, "mh", 0, []*Dest{A, B})
	m := s.(*mhScheduler)
	steps := []struct {
		dests []*Dest
		bw    int
		want  int // B's last_weight
	}{
		{[]*Dest{A, B}, 0, 3},
		{[]*Dest{A, B}, 0, 3},
		{[]*Dest{A, B}, 2, 2},
		{[]*Dest{A}, 2, -1},
		{[]*Dest{A, B}, 0, 0}, // re-added with weight 0
	}
	for i, st := range steps {
		B.Weight = st.bw
		s.Update(st.dests)
		got, ok := m.lastWeight[B.Addr]
		if !ok {
			got = -1
		}
		if got != st.want {
			t.Errorf("step %d: last_weight %d, want %d", i, got, st.want)
		}
	}
	for _, x := range m.lookup {
		if x != A {
			t.Fatal("a destination added with weight 0 owns slots")
		}
	}
}

// A rebuild reuses no state of the previous table: building from scratch
// and building after other lists gives the same table.
func TestMHRebuildIndependent(t *testing.T) {
	dests := []*Dest{d("A", 1), d("B", 2), d("C", 3)}
	s := newSched(t, "mh", 0, []*Dest{d("D", 5), d("A", 1)})
	s.Update(dests)
	if got := fnv1a(mhTable(s)); got != 0xf53232f310ba5932 {
		t.Errorf("table FNV %#x after other lists", got)
	}
}
