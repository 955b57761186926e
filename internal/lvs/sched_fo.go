package lvs

import "time"

// Weighted failover (ip_vs_fo).
//
// Every new connection goes to the non-overloaded destination with the
// highest weight; among equal weights the first in list order (the newest)
// wins. Weight 0 never wins.

func init() {
	RegisterScheduler("fo", func(SchedFlags) Scheduler { return foScheduler{} })
}

type foScheduler struct{}

func (foScheduler) Name() string     { return "fo" }
func (foScheduler) Update(_ []*Dest) {}

func (foScheduler) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest {
	var best *Dest
	hw := 0
	for _, d := range dests {
		if !d.Overloaded && d.Weight > hw {
			best, hw = d, d.Weight
		}
	}
	return best
}
