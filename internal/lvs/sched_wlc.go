package lvs

func init() { registerStateless("wlc", weightedLeastConnection) }

// Weighted least connection (ip_vs_wlc).
//
// The destination with the smallest overhead/weight wins, overhead being
// (active<<8)+inactive. The kernel has no floating point, so it compares
// h1/w1 > h2/w2 as h1*w2 > h2*w1 (in 64 bits). The first usable destination
// in list order is the initial candidate; a later one replaces it only when
// strictly less loaded, so ties go to the newest destination. After the
// first candidate the kernel skips only overloaded destinations: a
// weight-0 one can never win the comparison (h*0 > x*w is false).
func weightedLeastConnection(dests []*Dest) *Dest {
	return leastWeighted(dests, connOverhead)
}

// leastWeighted is the shared loop of wlc, sed and the lblc/lblcr fallback:
// the first usable destination, then any later non-overloaded one whose
// overhead/weight is strictly smaller.
func leastWeighted(dests []*Dest, overhead func(*Dest) int64) *Dest {
	first := -1
	for i, d := range dests {
		if usable(d) {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	least := dests[first]
	loh := overhead(least)
	for _, d := range dests[first+1:] {
		if d.Overloaded {
			continue
		}
		doh := overhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
