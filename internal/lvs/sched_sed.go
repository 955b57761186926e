package lvs

func init() { registerStateless("sed", shortestExpectedDelay) }

// Shortest expected delay (ip_vs_sed).
//
// The expected delay of a new connection on a destination is
// (active + 1) / weight: inactive connections do not count and the new
// connection itself does. Otherwise it is wlc: cross-multiplied comparison,
// ties to the first in list order.
func shortestExpectedDelay(dests []*Dest) *Dest {
	return leastWeighted(dests, sedOverhead)
}

// sedOverhead is the overhead of sed and nq: active connections plus the
// new one.
func sedOverhead(d *Dest) int64 { return int64(d.ActiveConns) + 1 }
