package lvs

import "time"

// Overflow connection (ip_vs_ovf).
//
// Like fo, the highest weight wins (the first in list order among equals),
// but a destination whose active connections exceed its weight is skipped,
// so connections overflow to the next weight once the best one holds more
// than "weight" active connections. Inactive connections do not count.

func init() {
	RegisterScheduler("ovf", func(SchedFlags) Scheduler { return ovfScheduler{} })
}

type ovfScheduler struct{}

func (ovfScheduler) Name() string     { return "ovf" }
func (ovfScheduler) Update(_ []*Dest) {}

func (ovfScheduler) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest {
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
