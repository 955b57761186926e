package lvs

func init() { registerStateless("fo", weightedFailover) }

// Weighted failover (ip_vs_fo).
//
// Every new connection goes to the non-overloaded destination with the
// highest weight; among equal weights the first in list order (the newest)
// wins. Weight 0 never wins.
func weightedFailover(dests []*Dest) *Dest {
	var best *Dest
	hw := 0
	for _, d := range dests {
		if !d.Overloaded && d.Weight > hw {
			best, hw = d, d.Weight
		}
	}
	return best
}
