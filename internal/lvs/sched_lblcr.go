package lvs

import "time"

// Locality-based least connection with replication (ip_vs_lblcr).
//
// Like lblc, but the cache maps a destination address to a set of
// destinations. A connection goes to the least loaded member of the set
// (overhead/weight, cross-multiplied, first in set order on ties, only
// members still in the service, with a positive weight and no overload
// flag). When that member is missing or overloaded in lblc's sense, wlc
// picks a destination among all and it joins the set (at its head). When
// the set has more than one member and has not changed for the expiration
// time (24 h), its most loaded member with a positive weight is dropped.
// Entries unused for the expiration time are collected (see localityTable).

func init() {
	RegisterScheduler("lblcr", func(SchedFlags) Scheduler {
		return &lblcrScheduler{locality{tbl: newLocalityTable()}}
	})
}

type lblcrScheduler struct{ locality }

func (s *lblcrScheduler) Name() string { return "lblcr" }

func (s *lblcrScheduler) Schedule(dests []*Dest, f Flow, now time.Time) *Dest {
	daddr, en := s.lookup(dests, f, now)
	if en == nil {
		d := leastWeighted(dests, connOverhead)
		if d == nil {
			return nil
		}
		if s.tbl.entries <= localityMaxSize {
			s.tbl.insert(&localityEntry{
				addr: daddr, lastuse: now, lastmod: now,
				set: []destRef{{addr: d.Addr, last: d}},
			})
		}
		return d
	}

	en.lastuse = now
	d := s.setMin(en)
	if len(en.set) > 1 && now.After(en.lastmod.Add(s.tbl.expiration)) {
		if m := s.setMax(en); m >= 0 {
			en.set = append(en.set[:m], en.set[m+1:]...)
			en.lastmod = now
		}
	}
	if d != nil && !localityOverloaded(d, dests) {
		return d
	}

	d = leastWeighted(dests, connOverhead)
	if d == nil {
		return nil
	}
	for _, r := range en.set {
		if r.addr == d.Addr {
			return d
		}
	}
	en.set = append([]destRef{{addr: d.Addr, last: d}}, en.set...)
	en.lastmod = now
	return d
}

// setMin is ip_vs_dest_set_min: the first member still in the service,
// with a positive weight and no overload flag, then any later
// non-overloaded member still in the service that is strictly less loaded.
func (s *lblcrScheduler) setMin(en *localityEntry) *Dest {
	var least *Dest
	var loh int64
	i := 0
	for ; i < len(en.set); i++ {
		d, avail := s.cur.resolve(&en.set[i])
		if d.Overloaded {
			continue
		}
		if d.Weight > 0 && avail {
			least, loh = d, connOverhead(d)
			break
		}
	}
	if least == nil {
		return nil
	}
	for i++; i < len(en.set); i++ {
		d, avail := s.cur.resolve(&en.set[i])
		if d.Overloaded {
			continue
		}
		doh := connOverhead(d)
		if loh*int64(d.Weight) > doh*int64(least.Weight) && avail {
			least, loh = d, doh
		}
	}
	return least
}

// setMax is ip_vs_dest_set_max: the index of the member with the highest
// overhead/weight among those with a positive weight (first on ties),
// whether or not still in the service or overloaded; -1 when none has a
// positive weight.
func (s *lblcrScheduler) setMax(en *localityEntry) int {
	most := -1
	var moh int64
	var mw int
	for i := range en.set {
		d, _ := s.cur.resolve(&en.set[i])
		if most < 0 {
			if d.Weight > 0 {
				most, moh, mw = i, connOverhead(d), d.Weight
			}
			continue
		}
		doh := connOverhead(d)
		if moh*int64(d.Weight) < doh*int64(mw) && d.Weight > 0 {
			most, moh, mw = i, doh, d.Weight
		}
	}
	return most
}
