package lvs

func init() { registerStateless("lc", leastConnection) }

// Least connection (ip_vs_lc).
//
// The destination with the smallest overhead (active<<8)+inactive wins;
// weights only matter in that weight 0 means quiesced. On a tie the first
// in list order (the newest) wins, because only a strictly smaller overhead
// replaces the candidate.
func leastConnection(dests []*Dest) *Dest {
	var least *Dest
	var loh int64
	for _, d := range dests {
		if d.Overloaded || d.Weight == 0 {
			continue
		}
		if doh := connOverhead(d); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
