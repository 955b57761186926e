package lvs

import "time"

// Destination hashing (ip_vs_dh).
//
// A 256-bucket table (IP_VS_DH_TAB_BITS = 8) holds the destinations in list
// order, one bucket each, cycling through the list; weights play no part
// in it. A connection goes to bucket hash_32(fold(destination address), 8)
// of the packet's destination address (the virtual address for a normal
// service; dh is meant for transparent caches behind a fwmark service,
// where it varies). If that destination has weight 0 or is overloaded there
// is no destination. Deterministic: no key, no randomness.

const (
	dhTabBits = 8
	dhTabSize = 1 << dhTabBits
)

func init() {
	RegisterScheduler("dh", func(SchedFlags) Scheduler { return &dhScheduler{} })
}

type dhScheduler struct {
	buckets [dhTabSize]*Dest
	ready   bool // Update was called
}

func (s *dhScheduler) Name() string { return "dh" }

// Update rebuilds the table. The kernel rebuilds it on add and delete only;
// an edit cannot change it since weights do not matter.
func (s *dhScheduler) Update(dests []*Dest) {
	s.ready = true
	for i := range s.buckets {
		if len(dests) == 0 {
			s.buckets[i] = nil
		} else {
			s.buckets[i] = dests[i%len(dests)]
		}
	}
}

func (s *dhScheduler) Schedule(dests []*Dest, f Flow, _ time.Time) *Dest {
	if !s.ready {
		s.Update(dests)
	}
	d := s.buckets[hash32(addrFold(f.Virtual.Addr()), dhTabBits)]
	if d == nil || !usable(d) {
		return nil
	}
	return d
}
