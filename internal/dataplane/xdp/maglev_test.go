package xdp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func backends(n int, weight int) []Backend {
	var bs []Backend
	for i := range n {
		bs = append(bs, Backend{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(1 + i/200), byte(10 + i%200)}), 80), Weight: weight})
	}
	return bs
}

// owners turns a table of indexes into a table of addresses, so tables
// built from differently ordered inputs compare.
func owners(t *testing.T, bs []Backend) []netip.AddrPort {
	t.Helper()
	tab, err := Maglev(bs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]netip.AddrPort, len(tab))
	for i, k := range tab {
		out[i] = bs[k].Addr
	}
	return out
}

func TestMaglevOrderIndependent(t *testing.T) {
	bs := backends(7, 1)
	bs[2].Weight, bs[5].Weight = 3, 2
	want := owners(t, bs)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		s := slices.Clone(bs)
		r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		if got := owners(t, s); !slices.Equal(got, want) {
			t.Fatalf("shuffled destinations gave another table")
		}
	}
}

// TestMaglevGolden pins the table to fixed values: a change to the hash
// or the fill would make directors of different versions disagree.
func TestMaglevGolden(t *testing.T) {
	o := owners(t, backends(3, 1))
	got := fmt.Sprint(o[0], o[1], o[2], o[65536])
	const want = "198.18.1.11:80 198.18.1.11:80 198.18.1.12:80 198.18.1.12:80"
	if got != want {
		t.Fatalf("table changed: %s, want %s", got, want)
	}
}

func share(o []netip.AddrPort) map[netip.AddrPort]int {
	m := map[netip.AddrPort]int{}
	for _, a := range o {
		m[a]++
	}
	return m
}

func TestMaglevWeights(t *testing.T) {
	for _, tc := range []struct {
		weights []int
	}{
		{[]int{1, 1, 1, 1}},
		{[]int{1, 2, 3}},
		{[]int{100, 50, 50}},
		{[]int{1000, 1}},
		{[]int{5, 0, 5}},
	} {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			var bs []Backend
			sum := 0
			for i, w := range tc.weights {
				bs = append(bs, Backend{Addr: netip.MustParseAddrPort(fmt.Sprintf("[2001:db8::%d]:443", i+1)), Weight: w})
				sum += w
			}
			sh := share(owners(t, bs))
			for _, b := range bs {
				got := float64(sh[b.Addr]) / MaglevSize
				want := float64(b.Weight) / float64(sum)
				if b.Weight > 0 && want*maxTurns < 1 {
					want = 1.0 / (maxTurns + 1) // scaled down, at least one turn
				}
				if d := got - want; d > 0.02 || d < -0.02 {
					t.Errorf("%s weight %d: share %.3f, want %.3f", b.Addr, b.Weight, got, want)
				}
			}
		})
	}
}

func TestMaglevEmpty(t *testing.T) {
	for _, bs := range [][]Backend{nil, backends(3, 0)} {
		if tab, err := Maglev(bs); err != nil || tab != nil {
			t.Fatalf("Maglev(%v) = %d slots, %v; want none", bs, len(tab), err)
		}
	}
}

func TestMaglevRefuses(t *testing.T) {
	dup := append(backends(2, 1), backends(1, 1)...)
	for name, bs := range map[string][]Backend{
		"too many":  backends(MaxDests+1, 1),
		"duplicate": dup,
		"negative":  {{Addr: netip.MustParseAddrPort("198.18.1.1:80"), Weight: -1}},
	} {
		if _, err := Maglev(bs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMaglevDisruption measures what Maglev promises: removing one of N
// servers moves its own flows and few others; adding it back restores the
// table exactly.
func TestMaglevDisruption(t *testing.T) {
	for _, n := range []int{3, 5, 10, 50} {
		bs := backends(n, 1)
		before := owners(t, bs)
		gone := bs[n/2].Addr
		after := owners(t, slices.Delete(slices.Clone(bs), n/2, n/2+1))
		moved, own := 0, 0
		for i := range before {
			if before[i] == gone {
				own++
				continue
			}
			if before[i] != after[i] {
				moved++
			}
		}
		frac := float64(moved) / float64(MaglevSize-own)
		t.Logf("n=%d: removed server owned %.3f of slots (1/N=%.3f); other slots moved: %.4f", n, float64(own)/MaglevSize, 1/float64(n), frac)
		if frac > 0.02 {
			t.Errorf("n=%d: %.3f of the other servers' slots moved, want ≤ 0.02", n, frac)
		}
		if d := float64(own)/MaglevSize - 1/float64(n); d > 0.01 || d < -0.01 {
			t.Errorf("n=%d: removed server owned %.3f, want ~%.3f", n, float64(own)/MaglevSize, 1/float64(n))
		}
		if again := owners(t, bs); !slices.Equal(again, before) {
			t.Errorf("n=%d: same destinations, another table", n)
		}
	}
}
