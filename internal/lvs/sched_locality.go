package lvs

import (
	"net/netip"
	"time"
)

// The cache shared by the locality-based schedulers lblc and lblcr: a hash
// table from a packet's destination address to a destination (lblc) or a
// set of destinations (lblcr), and the kernel's periodic garbage collector
// for it.
//
// The kernel runs the collector from a timer every 60 s. We own no clock,
// so the table replays the timer ticks that fell due before each Schedule
// call (the first call starts the timer); the result is the same as long
// as the callers pass non-decreasing times. At a tick:
//
//   - every 30th counted tick is a full check: entries unused for the
//     expiration time (sysctl lblc_expiration / lblcr_expiration, 24 h by
//     default) are deleted;
//   - otherwise, if the table holds at most 16 * 1024 entries, the tick
//     is only counted;
//   - otherwise entries unused for 6 minutes are deleted, whole buckets at
//     a time starting after a rover, until (entries - max) * 4/3 (at most
//     max/2) were deleted. Such a tick is not counted, so a table that
//     stays full never gets a full check.
//
// The destination address is hashed with hash_32(fold(addr), 10) into 1024
// buckets; which bucket an entry is in only matters for the order in which
// a partial collection visits them, and that order is the kernel's.

const (
	localityTabBits       = 10
	localityTabSize       = 1 << localityTabBits
	localityTabMask       = localityTabSize - 1
	localityMaxSize       = localityTabSize * 16
	localityCheckInterval = 60 * time.Second
	localityEntryTimeout  = 6 * time.Minute
	localityFullCount     = 30
	// DefaultLocalityExpiration is the kernel's default lblc_expiration
	// and lblcr_expiration: a full check deletes entries unused for a day.
	DefaultLocalityExpiration = 24 * time.Hour
)

// destRef is a reference from the cache to a destination. The kernel holds
// the destination object itself; a deleted destination stays in the
// kernel's trash while referenced, is "not available" there, and comes back
// as the same object when re-added with the same address. We keep the
// address and the last *Dest seen, and resolve the address against the
// current list: found means available (and the fresh pointer), not found
// means the last values of a deleted destination.
type destRef struct {
	addr netip.AddrPort
	last *Dest
}

type localityEntry struct {
	addr    netip.Addr // destination address of the packets
	lastuse time.Time

	dest destRef // lblc

	set     []destRef // lblcr, newest first (the kernel adds at the head)
	lastmod time.Time // lblcr: last change of set
}

type localityTable struct {
	buckets [localityTabSize][]*localityEntry

	// entries is the kernel's counter, which lblc lets drift upwards
	// (see lblcScheduler.Schedule); live is the true number of entries.
	entries, live int

	expiration time.Duration
	started    bool
	next       time.Time // next timer tick
	counter    int
	rover      int
}

func newLocalityTable() localityTable {
	return localityTable{expiration: DefaultLocalityExpiration, counter: 1}
}

func localityHash(a netip.Addr) uint32 {
	return hash32(addrFold(a), localityTabBits)
}

func (t *localityTable) get(a netip.Addr) *localityEntry {
	for _, e := range t.buckets[localityHash(a)] {
		if e.addr == a {
			return e
		}
	}
	return nil
}

// insert adds e and counts it.
func (t *localityTable) insert(e *localityEntry) {
	h := localityHash(e.addr)
	t.buckets[h] = append(t.buckets[h], e)
	t.entries++
	t.live++
}

// unlink removes e without touching the kernel's counter.
func (t *localityTable) unlink(e *localityEntry) {
	b := t.buckets[localityHash(e.addr)]
	for i, x := range b {
		if x == e {
			b[i] = b[len(b)-1]
			b[len(b)-1] = nil
			t.buckets[localityHash(e.addr)] = b[:len(b)-1]
			t.live--
			return
		}
	}
}

// sweep deletes the entries of bucket j unused for age at time tick
// (lastuse + age <= tick) and returns how many it deleted.
func (t *localityTable) sweep(j int, tick time.Time, age time.Duration) int {
	b := t.buckets[j]
	kept := b[:0]
	n := 0
	for _, e := range b {
		if tick.Before(e.lastuse.Add(age)) {
			kept = append(kept, e)
			continue
		}
		n++
	}
	clear(b[len(kept):])
	t.buckets[j] = kept
	t.entries -= n
	t.live -= n
	return n
}

// advance replays the timer ticks due at now.
func (t *localityTable) advance(now time.Time) {
	if !t.started {
		t.started = true
		t.next = now.Add(localityCheckInterval)
		return
	}
	for !now.Before(t.next) {
		if t.entries <= localityMaxSize || t.live == 0 {
			t.skipTicks(now)
			return
		}
		t.tick(t.next)
		t.next = t.next.Add(localityCheckInterval)
	}
}

// skipTicks replays all due ticks at once when no partial collection can
// happen during them: entries only decrease, so the table stays at most
// full, every tick is counted, and of the full checks only the last one
// matters (a later full check deletes a superset of what an earlier one
// would, and a full check leaves the rover where it was). With an empty
// table whose drifted counter says full, every tick is a no-op.
func (t *localityTable) skipTicks(now time.Time) {
	k := int(now.Sub(t.next)/localityCheckInterval) + 1 // ticks due
	if t.entries > localityMaxSize {                    // empty, drifted
		if t.counter%localityFullCount == 0 {
			t.fullCheck(t.next)
			t.counter = 1
		}
		t.next = t.next.Add(time.Duration(k) * localityCheckInterval)
		return
	}
	first := localityFullCount - t.counter%localityFullCount + 1 // first full tick
	if t.counter%localityFullCount == 0 {
		first = 1
	}
	if k < first {
		t.counter += k
	} else {
		lastFull := first + (k-first)/localityFullCount*localityFullCount
		t.fullCheck(t.next.Add(time.Duration(lastFull-1) * localityCheckInterval))
		t.counter = 1 + k - lastFull
	}
	t.next = t.next.Add(time.Duration(k) * localityCheckInterval)
}

// tick is one run of the kernel's check_expire timer function.
func (t *localityTable) tick(now time.Time) {
	if t.counter%localityFullCount == 0 {
		t.fullCheck(now)
		t.counter = 1
		return
	}
	if t.entries <= localityMaxSize {
		t.counter++
		return
	}
	goal := (t.entries - localityMaxSize) * 4 / 3
	if goal > localityMaxSize/2 {
		goal = localityMaxSize / 2
	}
	j := t.rover
	for i := 0; i < localityTabSize; i++ {
		j = (j + 1) & localityTabMask
		goal -= t.sweep(j, now, localityEntryTimeout)
		if goal <= 0 {
			break
		}
	}
	t.rover = j
}

// fullCheck deletes the entries unused for the expiration time. It visits
// every bucket once, starting after the rover, and leaves the rover as it
// was.
func (t *localityTable) fullCheck(now time.Time) {
	for j := range t.buckets {
		t.sweep(j, now, t.expiration)
	}
}

// current maps the addresses of the service's destinations to their
// current *Dest, for resolving destRefs.
type current map[netip.AddrPort]*Dest

func (c *current) update(dests []*Dest) {
	m := make(current, len(dests))
	for _, d := range dests {
		m[d.Addr] = d
	}
	*c = m
}

// resolve returns the destination r refers to and whether it is still in
// the service (IP_VS_DEST_F_AVAILABLE), refreshing r.last.
func (c current) resolve(r *destRef) (*Dest, bool) {
	if d, ok := c[r.addr]; ok {
		r.last = d
		return d, true
	}
	return r.last, false
}

// localityOverloaded is the lblc/lblcr test for leaving a cached
// destination: it has more active connections than its weight while some
// destination of the service has fewer than half its weight.
func localityOverloaded(d *Dest, dests []*Dest) bool {
	if d.ActiveConns <= d.Weight {
		return false
	}
	for _, o := range dests {
		if o.ActiveConns*2 < o.Weight {
			return true
		}
	}
	return false
}

// locality is the state lblc and lblcr share: the cache and the service's
// current destinations, which cached references are resolved against.
type locality struct {
	tbl localityTable
	cur current
}

// Update only records the current destinations: the kernel's lblc and
// lblcr have no add/delete/edit hooks; cache entries of a deleted
// destination stay and fail the availability test.
func (s *locality) Update(dests []*Dest) { s.cur.update(dests) }

// lookup is how both start on a new connection: the collector's ticks due
// by now run, and the cache entry for the flow's destination address is
// looked up. It returns that address and its entry (nil when none).
func (s *locality) lookup(dests []*Dest, f Flow, now time.Time) (netip.Addr, *localityEntry) {
	if s.cur == nil {
		s.cur.update(dests)
	}
	s.tbl.advance(now)
	daddr := f.Virtual.Addr().Unmap()
	return daddr, s.tbl.get(daddr)
}
