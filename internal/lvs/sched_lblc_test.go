package lvs

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Worked example, weights 1 and 1, one virtual address, connections stay
// open: no entry -> wlc picks A (tie, first); A has 1 active, not above
// its weight -> A; A has 2 > 1 while B has 0 < 1/2 -> wlc picks B and the
// entry moves to B; B then stays: from 2 active on, no destination has
// fewer than half its weight, so B is never "overloaded".
func TestLBLCSequence(t *testing.T) {
	s := testConns(t, "lblc", []*Dest{d("A", 1), d("B", 1)}, "A A B B B B")
	// The kernel's counter drifted by the replacement; one live entry.
	tbl := &s.(*lblcScheduler).tbl
	if tbl.entries != 2 || tbl.live != 1 {
		t.Errorf("entries %d live %d, want 2 and 1", tbl.entries, tbl.live)
	}
}

func vipFlow(vip string) Flow { return flow("198.18.0.1", vip) }

// Locality: each virtual (destination) address keeps its destination even
// when another is less loaded.
func TestLBLCLocality(t *testing.T) {
	A, B := d("A", 1), d("B", 1)
	dests := []*Dest{A, B}
	s := newSched(t, "lblc", 0, dests)
	sched := func(vip string) string { return name(s.Schedule(dests, vipFlow(vip), t0)) }

	if got := sched("198.18.2.1"); got != "A" {
		t.Fatalf("vip1: %s, want A", got)
	}
	A.ActiveConns = 1
	if got := sched("198.18.2.2"); got != "B" {
		t.Fatalf("vip2: %s, want B (wlc)", got)
	}
	if got := sched("198.18.2.1"); got != "A" {
		t.Errorf("vip1 again: %s, want A (cached)", got)
	}
	// The cached destination's overload flag is not consulted.
	A.Overloaded = true
	if got := sched("198.18.2.1"); got != "A" {
		t.Errorf("vip1 overloaded: %s, want A (the kernel ignores the flag here)", got)
	}
	// But a weight of 0 is.
	A.Overloaded, A.Weight = false, 0
	if got := sched("198.18.2.1"); got != "B" {
		t.Errorf("vip1 quiesced: %s, want B", got)
	}
	A.Weight = 1
	if got := sched("198.18.2.1"); got != "B" {
		t.Errorf("vip1 after: %s, want B (entry moved)", got)
	}
}

// A deleted destination fails the availability test; re-added with the
// same address (even as a new *Dest) it is the kernel's resurrected
// object and the entry is valid again.
func TestLBLCDeleteReadd(t *testing.T) {
	A, B := d("A", 1), d("B", 1)
	s := newSched(t, "lblc", 0, []*Dest{A, B})
	f := vipFlow("198.18.2.1")
	if got := name(s.Schedule([]*Dest{A, B}, f, t0)); got != "A" {
		t.Fatalf("got %s, want A", got)
	}
	// Deleted and re-added before any schedule: still A.
	s.Update([]*Dest{B})
	A2 := d("A", 1)
	s.Update([]*Dest{A2, B})
	if got := s.Schedule([]*Dest{A2, B}, f, t0); got != A2 {
		t.Errorf("after re-add: got %s (%p), want the new A", name(got), got)
	}
	// Deleted: B.
	s.Update([]*Dest{B})
	if got := name(s.Schedule([]*Dest{B}, f, t0)); got != "B" {
		t.Errorf("after delete: got %s, want B", got)
	}
}

// Entries expire after 24 h without use, at the full check of the 60 s
// timer (every 30 ticks: T+30 min, T+60 min, ..., T+24 h).
func TestLBLCExpiry(t *testing.T) {
	for _, sched := range []string{"lblc", "lblcr"} {
		t.Run(sched, func(t *testing.T) {
			dests := []*Dest{d("A", 1), d("B", 1)}
			s := newSched(t, sched, 0, dests)
			tbl := localityOf(s)
			s.Schedule(dests, vipFlow("198.18.2.1"), t0) // starts the timer
			s.Schedule(dests, vipFlow("198.18.2.2"), t0.Add(24*time.Hour-time.Second))
			if tbl.get(netip.MustParseAddr("198.18.2.1")) == nil {
				t.Fatal("entry gone before 24 h")
			}
			s.Schedule(dests, vipFlow("198.18.2.2"), t0.Add(24*time.Hour))
			if tbl.get(netip.MustParseAddr("198.18.2.1")) != nil {
				t.Error("entry kept at the full check at 24 h")
			}
			if tbl.live != 1 || tbl.entries != 1 {
				t.Errorf("live %d entries %d, want 1 and 1", tbl.live, tbl.entries)
			}
		})
	}
}

func localityOf(s Scheduler) *localityTable {
	switch x := s.(type) {
	case *lblcScheduler:
		return &x.tbl
	case *lblcrScheduler:
		return &x.tbl
	}
	panic("not a locality scheduler")
}

// The kernel's lblc counter drifts up by one per replaced entry; once it
// exceeds 16 * 1024 no new address is cached, and the minute ticks turn
// into partial collections that delete entries unused for 6 minutes.
func TestLBLCDriftFillsTable(t *testing.T) {
	A, B := d("A", 1), d("B", 0)
	dests := []*Dest{A, B}
	s := newSched(t, "lblc", 0, dests)
	tbl := localityOf(s)
	f := vipFlow("198.18.2.1")
	// Each schedule finds the cached destination quiesced and replaces
	// the entry: 1 creation + 16384 replacements.
	for i := range localityMaxSize + 1 {
		A.Weight, B.Weight = B.Weight, A.Weight
		if x := s.Schedule(dests, f, t0); x == nil || x.Weight == 0 {
			t.Fatalf("schedule %d: %v", i, x)
		}
	}
	if tbl.entries != localityMaxSize+1 || tbl.live != 1 {
		t.Fatalf("entries %d live %d, want %d and 1", tbl.entries, tbl.live, localityMaxSize+1)
	}
	// Full: a new address is served but not cached.
	if x := s.Schedule(dests, vipFlow("198.18.2.2"), t0); x == nil {
		t.Fatal("no destination")
	}
	if tbl.live != 1 {
		t.Errorf("live %d, want 1: the table should be full", tbl.live)
	}
	// Ticks at +1..+5 min are partial collections with nothing old
	// enough: nothing deleted and the counter does not move.
	s.Schedule(dests, vipFlow("198.18.2.2"), t0.Add(5*time.Minute+30*time.Second))
	if tbl.live != 1 || tbl.counter != 1 {
		t.Errorf("at 5.5 min: live %d counter %d, want 1 and 1", tbl.live, tbl.counter)
	}
	// At +6 min the entry, unused since t0, is collected; the counter
	// drops to 16384 and addresses are cached again.
	s.Schedule(dests, vipFlow("198.18.2.2"), t0.Add(6*time.Minute))
	if tbl.get(netip.MustParseAddr("198.18.2.1")) != nil {
		t.Error("entry not collected at 6 min")
	}
	if tbl.get(netip.MustParseAddr("198.18.2.2")) == nil {
		t.Error("new address not cached after the collection")
	}
	if tbl.entries != localityMaxSize+1 || tbl.live != 1 {
		t.Errorf("entries %d live %d, want %d and 1", tbl.entries, tbl.live, localityMaxSize+1)
	}
}

// A partial collection deletes whole buckets after the rover until the
// goal ((entries - max) * 4/3) is met.
func TestLocalityPartialCollection(t *testing.T) {
	dests := []*Dest{d("A", 1)}
	s := newSched(t, "lblcr", 0, dests)
	tbl := localityOf(s)
	n := 0
	for i := 0; n < localityMaxSize+1; i++ {
		vip := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		s.Schedule(dests, Flow{Proto: TCP, Client: defaultFlow.Client, Virtual: netip.AddrPortFrom(vip, 80)}, t0)
		n++
	}
	if tbl.live != localityMaxSize+1 {
		t.Fatalf("live %d", tbl.live)
	}
	// Refuses a 16386th entry.
	s.Schedule(dests, vipFlow("198.18.2.1"), t0)
	if tbl.live != localityMaxSize+1 {
		t.Fatalf("live %d after a full insert", tbl.live)
	}
	first := -1
	for j := 1; j < localityTabSize; j++ {
		if len(tbl.buckets[j]) > 0 {
			first = j
			break
		}
	}
	size := len(tbl.buckets[first])
	// Goal (1 * 4/3 = 1) is met by the first non-empty bucket after the
	// rover (0), which is deleted whole at the 6-minute tick.
	s.Schedule(dests, vipFlow("198.18.2.1"), t0.Add(6*time.Minute))
	if want := localityMaxSize + 1 - size; tbl.live != want+1 { // +1: 198.18.2.1 cached again
		t.Errorf("live %d, want %d (bucket %d of %d entries deleted)", tbl.live, want+1, first, size)
	}
	if tbl.rover != first {
		t.Errorf("rover %d, want %d", tbl.rover, first)
	}
	if tbl.counter != 1 {
		t.Errorf("counter %d, want 1 (partial ticks are not counted)", tbl.counter)
	}
}

// The collector's shortcut over idle stretches (skipTicks) must give the
// same table as replaying every tick like the kernel's timer.
func TestLocalitySkipMatchesTicks(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		fast, slow := newLocalityTable(), newLocalityTable()
		fast.expiration = time.Duration(1+r.IntN(120)) * time.Minute
		slow.expiration = fast.expiration
		now := t0
		for step := range 200 {
			now = now.Add(time.Duration(r.Int64N(int64(90 * time.Minute))))
			fast.advance(now)
			naiveAdvance(&slow, now)
			if err := sameTables(&fast, &slow); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			// Touch or add a few addresses.
			for range r.IntN(4) {
				a := netip.AddrFrom4([4]byte{198, 18, 2, byte(r.IntN(40))})
				for _, tbl := range []*localityTable{&fast, &slow} {
					if e := tbl.get(a); e != nil {
						e.lastuse = now
					} else {
						tbl.insert(&localityEntry{addr: a, lastuse: now})
					}
				}
			}
		}
	}
}

// naiveAdvance replays every due tick, as the kernel's timer would.
func naiveAdvance(t *localityTable, now time.Time) {
	if !t.started {
		t.started = true
		t.next = now.Add(localityCheckInterval)
		return
	}
	for !now.Before(t.next) {
		t.tick(t.next)
		t.next = t.next.Add(localityCheckInterval)
	}
}

func sameTables(a, b *localityTable) error {
	if a.entries != b.entries || a.live != b.live || a.counter != b.counter || a.rover != b.rover || !a.next.Equal(b.next) {
		return fmt.Errorf("state %d/%d/%d/%d/%v vs %d/%d/%d/%d/%v", a.entries, a.live, a.counter, a.rover, a.next,
			b.entries, b.live, b.counter, b.rover, b.next)
	}
	addrs := func(t *localityTable) []netip.Addr {
		var out []netip.Addr
		for _, bk := range t.buckets {
			for _, e := range bk {
				out = append(out, e.addr)
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	if x, y := addrs(a), addrs(b); !slices.Equal(x, y) {
		return fmt.Errorf("entries %v vs %v", x, y)
	}
	return nil
}
