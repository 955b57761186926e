package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// groupHarness drives a sync group of machines with one fake clock.
type groupHarness struct {
	t   *testing.T
	ms  []*Machine
	g   *Group
	now time.Time
}

func newGroupHarness(t *testing.T, n int) *groupHarness {
	h := &groupHarness{t: t, now: t0}
	for i := 0; i < n; i++ {
		c := v3cfg()
		c.Name = "VI_" + string(rune('A'+i))
		c.VRID = uint8(51 + i)
		c.VIPs = []netip.Addr{netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)})}
		h.ms = append(h.ms, NewMachine(c, me))
	}
	g, err := NewGroup("G1", h.ms...)
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	for _, m := range h.ms {
		m.Step(Event{Kind: EvStart, Now: h.now})
	}
	return h
}

func (h *groupHarness) advance(d time.Duration) []Action {
	end := h.now.Add(d)
	var out []Action
	for {
		var next *Machine
		for _, m := range h.ms {
			if dl := m.Deadline(); !dl.IsZero() && !dl.After(end) && (next == nil || dl.Before(next.Deadline())) {
				next = m
			}
		}
		if next == nil {
			break
		}
		if dl := next.Deadline(); dl.After(h.now) {
			h.now = dl
		}
		out = append(out, next.Step(Event{Kind: EvTick, Now: h.now})...)
	}
	h.now = end
	return out
}

func (h *groupHarness) advert(i int, prio uint8) []Action {
	c := h.ms[i].Config()
	p := &Packet{Version: 3, Type: 1, VRID: c.VRID, Priority: prio, AdvertInt: 10, Addrs: c.VIPs}
	return h.ms[i].Step(Event{Kind: EvAdvert, Now: h.now, Packet: p, Src: peer, Dst: MulticastGroup4, TTL: 255})
}

func (h *groupHarness) states() string {
	var s []string
	for _, m := range h.ms {
		s = append(s, m.State().String())
	}
	return strings.Join(s, " ")
}

func TestGroupWaitsForEveryMember(t *testing.T) {
	h := newGroupHarness(t, 2)
	// Member B keeps hearing a master; A's timer runs out but A waits.
	for i := 0; i < 10; i++ {
		h.advance(100 * time.Millisecond)
		h.advert(1, 150)
	}
	if got := h.states(); got != "BACKUP BACKUP" {
		t.Fatalf("states %s: A went master alone", got)
	}
	// B's master goes silent: both go master together.
	a := h.advance(time.Second)
	if got := h.states(); got != "MASTER MASTER" {
		t.Fatalf("states %s", got)
	}
	if h.g.State() != StateMaster {
		t.Fatalf("group %v", h.g.State())
	}
	insts := map[string]int{}
	for _, x := range a {
		if x.Kind == ActAddVIPs {
			insts[x.Instance]++
		}
	}
	if insts["VI_A"] != 1 || insts["VI_B"] != 1 {
		t.Fatalf("AddVIPs per instance %v", insts)
	}
}

func TestGroupMovesTogether(t *testing.T) {
	h := newGroupHarness(t, 3)
	h.advance(time.Second)
	if got := h.states(); got != "MASTER MASTER MASTER" {
		t.Fatalf("states %s", got)
	}
	// One member hears a higher priority master: all step down.
	a := h.advert(1, 200)
	if got := h.states(); got != "BACKUP BACKUP BACKUP" {
		t.Fatalf("after higher advert: %s", got)
	}
	if !hasLog(a, "VRRP_Group(G1) Syncing instances to BACKUP state") {
		t.Errorf("logs %q", logs(a))
	}
	// One member faults: all fault; it recovers: all back to BACKUP.
	a = h.ms[2].Step(Event{Kind: EvTrack, Now: h.now, Faults: []string{"interface eth1 down"}})
	if got := h.states(); got != "FAULT FAULT FAULT" {
		t.Fatalf("after fault: %s", got)
	}
	if !hasLog(a, "VRRP_Group(G1) Syncing instances to FAULT state") {
		t.Errorf("logs %q", logs(a))
	}
	h.ms[2].Step(Event{Kind: EvTrack, Now: h.now})
	if got := h.states(); got != "BACKUP BACKUP BACKUP" {
		t.Fatalf("after recovery: %s", got)
	}
	h.advance(time.Second)
	if got := h.states(); got != "MASTER MASTER MASTER" {
		t.Fatalf("finally: %s", got)
	}
	// A fault on a master member takes the whole group out of MASTER.
	a = h.ms[0].Step(Event{Kind: EvTrack, Now: h.now, Faults: []string{"script x down"}})
	if got := h.states(); got != "FAULT FAULT FAULT" {
		t.Fatalf("master fault: %s", got)
	}
	removes := 0
	for _, x := range a {
		if x.Kind == ActRemoveVIPs {
			removes++
		}
	}
	if removes != 3 {
		t.Fatalf("%d RemoveVIPs", removes)
	}
}

func TestGroupMembership(t *testing.T) {
	a := NewMachine(v3cfg(), me)
	if _, err := NewGroup("G1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := NewGroup("G2", a); err == nil {
		t.Fatal("a machine joined two groups")
	}
}
