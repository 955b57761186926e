package lvs

import (
	"math/rand/v2"
	"time"
)

// Power of two choices (ip_vs_twos, Linux 6.2 and later).
//
// Two destinations are drawn at random, each with probability proportional
// to its weight, and the one with the smaller overhead/weight wins (the
// first draw on a tie). The kernel draws r1 and r2 uniformly from
// [0, total weight] (inclusive: it adds one before get_random_u32_below),
// then walks the usable destinations subtracting each weight from both;
// a draw picks the destination at which it drops to zero or below. So r = 0
// and r = w1 both pick the first destination, which is therefore slightly
// favoured; we keep that.
//
// The kernel's randomness cannot be reproduced; tests inject the random
// source (NewTwos).

func init() {
	RegisterScheduler("twos", func(SchedFlags) Scheduler { return NewTwos(nil) })
}

// NewTwos returns a twos scheduler drawing its random numbers from below,
// which must return a uniform value in [0, n) for n > 0. A nil below uses
// math/rand/v2. Tests pass a fixed sequence to make choices deterministic.
func NewTwos(below func(n uint32) uint32) Scheduler {
	if below == nil {
		below = rand.Uint32N
	}
	return &twosScheduler{below: below}
}

type twosScheduler struct {
	below func(n uint32) uint32
}

func (*twosScheduler) Name() string     { return "twos" }
func (*twosScheduler) Update(_ []*Dest) {}

func (s *twosScheduler) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest {
	total := int64(0)
	for _, d := range dests {
		if usable(d) {
			total += int64(d.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	// The kernel's int arithmetic; weights are at most 65535 in
	// practice, so the total fits.
	n := uint32(total + 1)
	r1 := int64(s.below(n) % n) // % n: a bad source cannot pick nothing
	r2 := int64(s.below(n) % n)

	var c1, c2 *Dest
	var oh1, oh2 int64
	for _, d := range dests {
		if !usable(d) {
			continue
		}
		w := int64(d.Weight)
		r1 -= w
		r2 -= w
		if r1 <= 0 && c1 == nil {
			c1, oh1 = d, connOverhead(d)
		}
		if r2 <= 0 && c2 == nil {
			c2, oh2 = d, connOverhead(d)
		}
		if c1 != nil && c2 != nil {
			break
		}
	}
	if int64(c2.Weight)*oh1 > int64(c1.Weight)*oh2 {
		return c2
	}
	return c1
}
