package lvs

func init() { registerStateless("nq", neverQueue) }

// Never queue (ip_vs_nq).
//
// The first idle destination in list order (no active connection) gets the
// connection at once; when none is idle, sed's rule applies:
// (active + 1) / weight, cross-multiplied, ties to the first in list order.
func neverQueue(dests []*Dest) *Dest {
	var least *Dest
	var loh int64
	for _, d := range dests {
		if d.Overloaded || d.Weight == 0 {
			continue
		}
		doh := sedOverhead(d)
		if d.ActiveConns == 0 {
			return d
		}
		if least == nil || loh*int64(d.Weight) > doh*int64(least.Weight) {
			least, loh = d, doh
		}
	}
	return least
}
