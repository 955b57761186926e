package lvs

import (
	"net/netip"
	"time"
)

// Round robin (ip_vs_rr).
//
// The kernel keeps a pointer to the list node of the last destination it
// chose (initially the list head). A new connection goes to the first
// usable destination after that node, wrapping around the list and checking
// the remembered node itself last. When the remembered destination is
// deleted, the pointer moves to the node before it. Adding a destination
// (at the list head) or changing a weight does not move it.

func init() {
	RegisterScheduler("rr", func(SchedFlags) Scheduler { return &rrScheduler{} })
}

type rrScheduler struct {
	// cur is the destination chosen last; valid is false while the
	// pointer is at the list head.
	cur   netip.AddrPort
	valid bool
	hint  int // where cur was last seen in the list

	// prev is the address list of the last Update, to find the node
	// before a deleted one.
	prev []netip.AddrPort
}

func (s *rrScheduler) Name() string { return "rr" }

// Update moves the position to the nearest surviving predecessor when the
// remembered destination was removed. Removing several destinations at
// once gives the same position as removing them one by one. When removals
// and additions come in one Update, removals are taken to come first
// (keepalived's order on reload); the kernel would differ only if the
// position fell back to the list head and the additions came first.
func (s *rrScheduler) Update(dests []*Dest) {
	if s.valid && indexOf(dests, s.cur, -1) < 0 {
		s.valid = false
		if i := indexOfAddr(s.prev, s.cur); i >= 0 {
			for j := i - 1; j >= 0; j-- {
				if k := indexOf(dests, s.prev[j], -1); k >= 0 {
					s.cur, s.valid, s.hint = s.prev[j], true, k
					break
				}
			}
		}
	}
	s.prev = s.prev[:0]
	for _, d := range dests {
		s.prev = append(s.prev, d.Addr)
	}
}

func (s *rrScheduler) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest {
	n := len(dests)
	start := -1 // the list head
	if s.valid {
		start = indexOf(dests, s.cur, s.hint)
	}
	// Scan the nodes after start, wrap, and end with start itself; from
	// the head (start -1), one pass over the list.
	for k := 1; k <= n; k++ {
		i := (start + k) % n
		if d := dests[i]; usable(d) {
			s.cur, s.valid, s.hint = d.Addr, true, i
			return d
		}
	}
	return nil
}

func indexOfAddr(list []netip.AddrPort, a netip.AddrPort) int {
	for i, x := range list {
		if x == a {
			return i
		}
	}
	return -1
}
