package lvs

import "time"

// Locality-based least connection (ip_vs_lblc).
//
// A cache maps the packets' destination address (the virtual address, or
// the original destination behind a fwmark service of transparent caches)
// to the destination chosen for it. A cached destination is used while it
// is still in the service, has a positive weight and is not "overloaded"
// in lblc's own sense: more active connections than its weight while
// another destination has fewer than half its weight. Note that the
// kernel does not look at the overload flag (upper threshold) of a cached
// destination. Otherwise wlc picks a destination among all (skipping
// overloaded ones), and the cache entry is replaced.
//
// The cache forgets an address after a day without use (see
// localityTable), and at 16 * 1024 entries the kernel stops adding new
// ones. The kernel's entry counter is not decremented when an entry is
// replaced, so it drifts upward with every replacement until the table
// counts as full; we keep the same counter so the cache stops growing at
// the same moment.

func init() {
	RegisterScheduler("lblc", func(SchedFlags) Scheduler {
		return &lblcScheduler{locality{tbl: newLocalityTable()}}
	})
}

type lblcScheduler struct{ locality }

func (s *lblcScheduler) Name() string { return "lblc" }

func (s *lblcScheduler) Schedule(dests []*Dest, f Flow, now time.Time) *Dest {
	daddr, en := s.lookup(dests, f, now)
	if en != nil {
		en.lastuse = now
		d, avail := s.cur.resolve(&en.dest)
		if avail && d.Weight > 0 && !localityOverloaded(d, dests) {
			return d
		}
	}

	d := leastWeighted(dests, connOverhead)
	if d == nil {
		return nil
	}
	if en != nil {
		if en.dest.addr == d.Addr {
			return d
		}
		s.tbl.unlink(en) // the kernel does not decrement its counter here
	}
	if s.tbl.entries > localityMaxSize {
		return d // cache full: use the destination without caching it
	}
	s.tbl.insert(&localityEntry{addr: daddr, lastuse: now, dest: destRef{addr: d.Addr, last: d}})
	return d
}
