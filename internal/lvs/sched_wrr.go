package lvs

import (
	"net/netip"
	"time"
)

// Weighted round robin (ip_vs_wrr).
//
// The kernel walks the list in passes with a falling "current weight" cw:
// in each pass it picks, one per connection, every usable destination whose
// weight is at least cw; at the end of the list cw drops by di, the gcd of
// the positive weights. cw starts at mw = max weight - (di - 1), so the
// last pass runs with cw = 1 and also catches a weight that fell below di
// while the passes were under way. With weights 1 and 5 (gcd 1) the passes
// are cw = 5, 4, 3, 2 (only the weight-5 destination) and cw = 1 (both):
// five connections to one, one to the other.
//
// Every add, delete or edit of a destination resets the position to the
// list head and recomputes di and mw; cw is kept when it is still in range
// (rounded onto the new di grid, plus one), else restarts at mw.

func init() {
	RegisterScheduler("wrr", func(SchedFlags) Scheduler {
		// The kernel's init_svc on an empty service: gcd 1, mw 0, cw 0.
		return &wrrScheduler{cl: -1, di: 1}
	})
}

type wrrScheduler struct {
	cl     int            // index of the current destination, -1 = list head
	clAddr netip.AddrPort // its address, to find it again
	cw     int            // current weight
	mw     int            // maximum weight - (di - 1)
	di     int            // gcd of the positive weights (1 when none)
	ready  bool           // Update was called
}

func (s *wrrScheduler) Name() string { return "wrr" }

func (s *wrrScheduler) Update(dests []*Dest) {
	s.ready = true
	s.cl = -1
	g, maxw := 0, 0
	for _, d := range dests {
		if d.Weight > 0 {
			if g > 0 {
				g = gcd(d.Weight, g)
			} else {
				g = d.Weight
			}
		}
		if d.Weight > maxw {
			maxw = d.Weight
		}
	}
	if g == 0 {
		g = 1
	}
	s.di = g
	s.mw = maxw - (s.di - 1)
	if s.cw > s.mw || s.cw == 0 {
		s.cw = s.mw
	} else if s.di > 1 {
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

func (s *wrrScheduler) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest {
	if !s.ready {
		s.Update(dests) // as the kernel's init_svc on a populated service
	}
	if s.mw == 0 {
		return nil
	}
	if s.cl >= 0 {
		s.cl = indexOf(dests, s.clAddr, s.cl)
	}
	i := s.cl
	last := s.cl
	stop := -2 // no stop until the last pass after a restart
	lastPass, restarted := false, false
	for {
		for i++; i < len(dests); i++ {
			d := dests[i]
			if !d.Overloaded && d.Weight >= s.cw {
				s.setCurrent(i, d)
				return d
			}
			if i == stop {
				s.setCurrent(i, d)
				return nil // all overloaded
			}
		}
		// Back at the list head: next pass with a lower cw.
		i = -1
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// Stop when a pass with weight >= 1 over every
			// destination found nothing: either the previous pass
			// was that pass from the start of the list, or we
			// started at the head so the first pass covered all.
			if lastPass || last == -1 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			// The first pass with weight >= 1 only covered the
			// destinations after last; cover the rest up to it.
			stop = last
		}
	}
}

func (s *wrrScheduler) setCurrent(i int, d *Dest) {
	s.cl, s.clAddr = i, d.Addr
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
