package lvs

import (
	"strings"
	"testing"
	"time"
)

// Worked example, weights 1 and 1, one virtual address, connections stay
// open (overheads in units of 256):
//
//  1. no entry: wlc picks A; set {A}                      A=1
//  2. least in set A (1), not above its weight            A=2
//  3. A: 2 > 1 while B has 0 < 1/2: wlc picks B; set {B A}  B=1
//  4. set min: B (1) vs A (2) -> B                        B=2
//  5. B (2) vs A (2) tie -> B; nobody below half weight   B=3
//  6. B (3) vs A (2) -> A                                 A=3
//  7. B (3) vs A (3) tie -> B                             B=4
//  8. B (4) vs A (3) -> A
func TestLBLCRSequence(t *testing.T) {
	s := testConns(t, "lblcr", []*Dest{d("A", 1), d("B", 1)}, "A A B B B A B A")
	if got := setOf(s, "198.18.2.1"); got != "B A" {
		t.Errorf("set %q, want \"B A\"", got)
	}
}

func setOf(s Scheduler, vip string) string {
	e := localityOf(s).get(vipFlow(vip).Virtual.Addr())
	if e == nil {
		return "<none>"
	}
	var out []string
	for _, r := range e.set {
		out = append(out, name(r.last))
	}
	return strings.Join(out, " ")
}

// A set that has not changed for the expiration time loses its most
// loaded member (per weight), after the least loaded was chosen.
func TestLBLCRPrune(t *testing.T) {
	A, B := d("A", 1), d("B", 1)
	dests := []*Dest{A, B}
	s := newSched(t, "lblcr", 0, dests)
	f := vipFlow("198.18.2.1")
	// Build the set {B A} at t0 as in TestLBLCRSequence.
	runConns(s, dests, 3)
	A.ActiveConns, B.ActiveConns = 1, 3
	// Used at +12 h (keeps the entry from expiring), unchanged.
	if got := name(s.Schedule(dests, f, t0.Add(12*time.Hour))); got != "A" {
		t.Fatalf("+12h: %s, want A", got)
	}
	if got := setOf(s, "198.18.2.1"); got != "B A" {
		t.Fatalf("+12h set %q", got)
	}
	// Exactly 24 h after the last change: not yet (strictly after).
	s.Schedule(dests, f, t0.Add(24*time.Hour))
	if got := setOf(s, "198.18.2.1"); got != "B A" {
		t.Fatalf("+24h set %q, want unchanged", got)
	}
	// Later: B (768/1) is the most loaded and goes; A is chosen.
	if got := name(s.Schedule(dests, f, t0.Add(24*time.Hour+time.Second))); got != "A" {
		t.Errorf("+24h1s: %s, want A", got)
	}
	if got := setOf(s, "198.18.2.1"); got != "A" {
		t.Errorf("set %q, want \"A\"", got)
	}
}

// Members that left the service, are overloaded or quiesced are not
// chosen from the set; when none is left, wlc picks one and it joins.
func TestLBLCRMembers(t *testing.T) {
	A, B, C := d("A", 1), d("B", 1), d("C", 1)
	all := []*Dest{A, B, C}
	s := newSched(t, "lblcr", 0, all)
	runConns(s, all, 3) // A A B: set {B A}
	A.ActiveConns, B.ActiveConns, C.ActiveConns = 1, 0, 5
	f := vipFlow("198.18.2.1")
	sched := func(dests []*Dest) string { return name(s.Schedule(dests, f, t0)) }

	if got := sched(all); got != "B" {
		t.Errorf("set min: %s, want B", got)
	}
	B.Overloaded = true
	if got := sched(all); got != "A" {
		t.Errorf("B overloaded: %s, want A", got)
	}
	B.Overloaded = false
	s.Update([]*Dest{A, C})
	if got := sched([]*Dest{A, C}); got != "A" {
		t.Errorf("B deleted: %s, want A", got)
	}
	// A quiesced too: nothing usable in the set, wlc over {A C} picks C
	// (A has weight 0), and C joins the set at its head.
	A.Weight = 0
	if got := sched([]*Dest{A, C}); got != "C" {
		t.Errorf("A quiesced: %s, want C", got)
	}
	if got := setOf(s, "198.18.2.1"); got != "C B A" {
		t.Errorf("set %q, want \"C B A\"", got)
	}
	// B comes back (same address): available again, and the least
	// loaded member.
	A.Weight = 1
	s.Update([]*Dest{B, A, C})
	if got := sched([]*Dest{B, A, C}); got != "B" {
		t.Errorf("B re-added: %s, want B", got)
	}
}
