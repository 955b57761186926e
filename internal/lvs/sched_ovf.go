package lvs

func init() { registerStateless("ovf", overflow) }

// Overflow connection (ip_vs_ovf).
//
// Like fo, the highest weight wins (the first in list order among equals),
// but a destination whose active connections exceed its weight is skipped,
// so connections overflow to the next weight once the best one holds more
// than "weight" active connections. Inactive connections do not count.
func overflow(dests []*Dest) *Dest {
	var best *Dest
	hw := 0
	for _, d := range dests {
		w := d.Weight
		if d.Overloaded || d.ActiveConns > w || w == 0 {
			continue
		}
		if best == nil || w > hw {
			best, hw = d, w
		}
	}
	return best
}
