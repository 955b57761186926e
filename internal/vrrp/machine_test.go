package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

var (
	me    = netip.MustParseAddr("198.18.0.11")
	peer  = netip.MustParseAddr("198.18.0.12") // higher address than me
	lower = netip.MustParseAddr("198.18.0.9")  // lower address than me
	vip   = netip.MustParseAddr("198.18.0.100")
)

func v2cfg() MachineConfig {
	return MachineConfig{Name: "VI_1", Version: 2, VRID: 51, Priority: 100, AdvertInt: time.Second,
		VIPs: []netip.Addr{vip}, GARPMasterRepeat: 5, GARPMasterDelay: 5 * time.Second,
		GARPLowerPrioRepeat: 5, GARPLowerPrioDelay: 5 * time.Second}
}

func v3cfg() MachineConfig {
	c := v2cfg()
	c.Version = 3
	c.AdvertInt = 100 * time.Millisecond
	return c
}

// harness drives one machine with a fake clock.
type harness struct {
	t   *testing.T
	m   *Machine
	now time.Time
	log []Action // every action so far
}

// modified returns c changed by mod (nil: unchanged).
func modified(c MachineConfig, mod func(*MachineConfig)) MachineConfig {
	if mod != nil {
		mod(&c)
	}
	return c
}

func newHarness(t *testing.T, cfg MachineConfig) *harness {
	return &harness{t: t, m: NewMachine(cfg, me), now: t0}
}

func (h *harness) step(ev Event) []Action {
	ev.Now = h.now
	a := h.m.Step(ev)
	h.log = append(h.log, a...)
	return a
}

func (h *harness) start() []Action { return h.step(Event{Kind: EvStart}) }

// advance moves the clock by d, firing every deadline on the way.
func (h *harness) advance(d time.Duration) []Action {
	end := h.now.Add(d)
	var out []Action
	for i := 0; i < 100000; i++ {
		dl := h.m.Deadline()
		if dl.IsZero() || dl.After(end) {
			break
		}
		if dl.After(h.now) {
			h.now = dl
		}
		out = append(out, h.step(Event{Kind: EvTick})...)
	}
	h.now = end
	return out
}

// until advances until the machine is in state s, at most max, and
// returns how long it took.
func (h *harness) until(s State, limit time.Duration) time.Duration {
	h.t.Helper()
	begin := h.now
	end := h.now.Add(limit)
	for h.m.State() != s {
		dl := h.m.Deadline()
		if dl.IsZero() || dl.After(end) {
			h.t.Fatalf("not %v within %v (state %v)", s, limit, h.m.State())
		}
		if dl.After(h.now) {
			h.now = dl
		}
		h.step(Event{Kind: EvTick})
	}
	return h.now.Sub(begin)
}

func (h *harness) advert(src netip.Addr, prio uint8, mod ...func(*Packet, *Event)) []Action {
	cfg := h.m.Config()
	iv, _ := IntervalField(cfg.Version, cfg.AdvertInt)
	p := &Packet{Version: cfg.Version, Type: 1, VRID: cfg.VRID, Priority: prio, AdvertInt: iv,
		AuthType: cfg.AuthType, AuthData: cfg.AuthPass, Addrs: slices.Clone(cfg.VIPs)}
	dst := MulticastGroup4
	if cfg.Unicast {
		dst = me
	}
	ev := Event{Kind: EvAdvert, Packet: p, Src: src, Dst: dst, TTL: 255}
	for _, f := range mod {
		f(p, &ev)
	}
	return h.step(ev)
}

// kinds summarizes actions (logs left out) for compact comparisons.
func kinds(as []Action) string {
	var s []string
	for _, a := range as {
		switch a.Kind {
		case ActSendAdvert:
			s = append(s, fmt.Sprintf("advert(%d)", a.Priority))
		case ActAddVIPs:
			s = append(s, "add")
		case ActRemoveVIPs:
			if a.Stale {
				s = append(s, "remove(stale)")
			} else {
				s = append(s, "remove")
			}
		case ActSendGARP:
			s = append(s, fmt.Sprintf("garp(%d)", a.Count))
		case ActStateChange:
			s = append(s, fmt.Sprintf("%v->%v", a.From, a.To))
		case ActMasterRxLowerPrio:
			s = append(s, "rx_lower")
		case ActPriorityChange:
			s = append(s, fmt.Sprintf("prio(%d->%d)", a.PrioFrom, a.PrioTo))
		}
	}
	return strings.Join(s, " ")
}

func logs(as []Action) []string {
	var s []string
	for _, a := range as {
		if a.Kind == ActLog {
			s = append(s, a.Msg)
		}
	}
	return s
}

func hasLog(as []Action, msg string) bool { return slices.Contains(logs(as), msg) }

func TestSkewAndDownInterval(t *testing.T) {
	tests := []struct {
		version  int
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		// VRRPv2: skew in seconds whatever the interval (RFC 3768, keepalived).
		{2, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{2, 100, 3 * time.Second, 609375 * time.Microsecond, 9609375 * time.Microsecond},
		{2, 254, time.Second, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{2, 1, time.Second, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		// VRRPv3: skew scaled by the master's interval (RFC 5798).
		{3, 100, 100 * time.Millisecond, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
		{3, 100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{3, 200, 50 * time.Millisecond, 10937500 * time.Nanosecond, 160937500 * time.Nanosecond},
		{3, 90, 20 * time.Millisecond, 12968750 * time.Nanosecond, 72968750 * time.Nanosecond},
	}
	for _, tt := range tests {
		c := v3cfg()
		c.Version, c.Priority, c.AdvertInt = tt.version, tt.prio, tt.interval
		m := NewMachine(c, me)
		if m.Skew() != tt.skew || m.MasterDownInterval() != tt.down {
			t.Errorf("v%d prio %d int %v: skew %v down %v, want %v %v", tt.version, tt.prio, tt.interval,
				m.Skew(), m.MasterDownInterval(), tt.skew, tt.down)
		}
	}
}

func TestStartup(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func() MachineConfig
		startAct string
		toMaster time.Duration // 0: at once
		logs     []string
	}{
		{"v2 backup waits the down interval", v2cfg, "remove(stale) INIT->BACKUP", 3609375 * time.Microsecond,
			[]string{"(VI_1) removing VIPs.", "(VI_1) Entering BACKUP STATE (init)"}},
		{"v3 backup waits the down interval", v3cfg, "remove(stale) INIT->BACKUP", 360937500 * time.Nanosecond, nil},
		{"state MASTER listens for the down interval", func() MachineConfig { c := v2cfg(); c.InitMaster = true; return c }, "remove(stale) INIT->BACKUP", 3609375 * time.Microsecond,
			[]string{"(VI_1) Entering BACKUP STATE (init)", "(VI_1) state MASTER: listening for a master for 3.609375s before taking over"}},
		{"address owner takes over at once", func() MachineConfig { c := v2cfg(); c.Priority = 255; return c }, "remove(stale)", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg())
			a := h.start()
			if got := kinds(a); got != tt.startAct {
				t.Fatalf("start actions %q, want %q", got, tt.startAct)
			}
			for _, l := range tt.logs {
				if !hasLog(a, l) {
					t.Errorf("missing log %q in %q", l, logs(a))
				}
			}
			if d := h.until(StateMaster, 10*time.Second); d != tt.toMaster {
				t.Fatalf("master after %v, want %v", d, tt.toMaster)
			}
		})
	}
}

func TestBecomeMasterActionsAndGARPSchedule(t *testing.T) {
	c := v2cfg()
	c.GARPMasterRefresh = 60 * time.Second
	c.GARPMasterRefreshRepeat = 2
	h := newHarness(t, c)
	h.start()
	a := h.advance(3609375 * time.Microsecond)
	// keepalived's order: the advert first, so that an old master drops
	// the VIPs before our GARPs go out; MASTER is reported once the VIPs
	// are in place.
	if got, want := kinds(a), "advert(100) add garp(5) BACKUP->MASTER"; got != want {
		t.Fatalf("actions %q, want %q", got, want)
	}
	for _, l := range []string{"(VI_1) Receive advertisement timeout", "(VI_1) Entering MASTER STATE", "(VI_1) setting VIPs."} {
		if !hasLog(a, l) {
			t.Errorf("missing log %q", l)
		}
	}
	// Adverts every second; the second GARP burst 5 s later.
	a = h.advance(5 * time.Second)
	if got, want := kinds(a), "advert(100) advert(100) advert(100) advert(100) advert(100) garp(5)"; got != want {
		t.Fatalf("next 5 s: %q, want %q", got, want)
	}
	// Refresh every 60 s, 2 at a time; no more delayed bursts.
	a = h.advance(55 * time.Second)
	if n := strings.Count(kinds(a), "garp(2)"); n != 1 || strings.Contains(kinds(a), "garp(5)") {
		t.Fatalf("refresh: %q", kinds(a))
	}
}

func TestBackupTimers(t *testing.T) {
	t.Run("adverts keep a backup a backup", func(t *testing.T) {
		h := newHarness(t, v2cfg())
		h.start()
		for i := 0; i < 20; i++ {
			h.advance(time.Second)
			h.advert(peer, 150)
		}
		if h.m.State() != StateBackup {
			t.Fatal("backup took over while hearing a master")
		}
		if a, p := h.m.Master(); a != peer || p != 150 {
			t.Fatalf("master %v/%d", a, p)
		}
		if d := h.until(StateMaster, 10*time.Second); d != 3609375*time.Microsecond {
			t.Fatalf("took over %v after the last advert", d)
		}
	})
	t.Run("priority 0 advert: take over after skew time", func(t *testing.T) {
		h := newHarness(t, v3cfg())
		h.start()
		h.advance(50 * time.Millisecond)
		h.advert(peer, 150)
		h.advance(50 * time.Millisecond)
		a := h.advert(peer, 0)
		if !hasLog(a, "(VI_1) Backup received priority 0 advertisement") {
			t.Errorf("logs %q", logs(a))
		}
		if d := h.until(StateMaster, time.Second); d != 60937500*time.Nanosecond {
			t.Fatalf("took over %v after priority 0, want the skew 60.9375ms", d)
		}
		if s := h.m.Stats(); s.PriZeroRcvd != 1 {
			t.Errorf("PriZeroRcvd %d", s.PriZeroRcvd)
		}
	})
	t.Run("v3 backup learns the master's interval", func(t *testing.T) {
		h := newHarness(t, v3cfg())
		h.start()
		h.advert(peer, 150, func(p *Packet, _ *Event) { p.AdvertInt = 100 }) // 1 s
		if h.m.MasterAdverInt() != time.Second {
			t.Fatalf("master adver int %v", h.m.MasterAdverInt())
		}
		if d := h.until(StateMaster, 10*time.Second); d != 3609375*time.Microsecond {
			t.Fatalf("down after %v, want 3 x 1 s + skew", d)
		}
		// As master it advertises its own interval again.
		if h.m.MasterAdverInt() != 100*time.Millisecond {
			t.Fatalf("master uses %v", h.m.MasterAdverInt())
		}
	})
	t.Run("v2 interval mismatch is dropped", func(t *testing.T) {
		h := newHarness(t, v2cfg())
		h.start()
		h.advance(3 * time.Second)
		a := h.advert(peer, 150, func(p *Packet, _ *Event) { p.AdvertInt = 2 })
		if !hasLog(a, "(VI_1) advertisement interval mismatch mine=1 sec rcv'd=2 sec") {
			t.Errorf("logs %q", logs(a))
		}
		if d := h.until(StateMaster, 10*time.Second); d != 609375*time.Microsecond {
			t.Fatalf("the dropped advert reset the timer (%v)", d)
		}
		if h.m.Stats().Dropped[DropInterval] != 1 {
			t.Fatalf("not counted: %v", h.m.Stats().Dropped)
		}
	})
}

func TestPreemption(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*MachineConfig)
		prio     uint8 // of the other master
		toMaster time.Duration
		logLine  string
	}{
		{"preempt: lower master's adverts are discarded", func(*MachineConfig) {}, 90, 3609375 * time.Microsecond,
			"(VI_1) received lower priority (90) advert from 198.18.0.12 - discarding"},
		{"nopreempt: lower master's adverts are accepted", func(c *MachineConfig) { c.NoPreempt = true }, 90, -1, ""},
		{"equal priority does not preempt", func(*MachineConfig) {}, 100, -1, ""},
		{"higher priority master stays", func(*MachineConfig) {}, 150, -1, ""},
		// The adverts of the first 10 s are accepted (the last at 9 s), the
		// down timer runs out 3.609 s after that one.
		{"preempt_delay 10 s: accepted for 10 s, then the down interval", func(c *MachineConfig) { c.PreemptDelay = 10 * time.Second }, 90,
			9*time.Second + 3609375*time.Microsecond, "(VI_1) start preempt delay (10.000000)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := v2cfg()
			tt.mod(&c)
			h := newHarness(t, c)
			h.start()
			var all []Action
			// The other master advertises every second for 30 s; we
			// measure from its first advert.
			begin := h.now
			became := time.Duration(-1)
			for i := 0; i < 30; i++ {
				all = append(all, h.advert(peer, tt.prio)...)
				all = append(all, h.advance(time.Second)...)
				if became < 0 && h.m.State() == StateMaster {
					became = h.m.lastTransition.Sub(begin)
				}
			}
			if became != tt.toMaster {
				t.Fatalf("became master after %v, want %v", became, tt.toMaster)
			}
			if tt.logLine != "" && !hasLog(all, tt.logLine) {
				t.Errorf("missing %q in %q", tt.logLine, logs(all)[:min(8, len(logs(all)))])
			}
		})
	}
}

func masterHarness(t *testing.T, cfg MachineConfig) *harness {
	h := newHarness(t, cfg)
	h.start()
	h.until(StateMaster, time.Minute)
	return h
}

func TestMasterReceives(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*MachineConfig)
		src   netip.Addr
		prio  uint8
		acts  string
		state State
		log   string
	}{
		{"higher priority: step down", nil, peer, 150, "remove MASTER->BACKUP", StateBackup,
			"(VI_1) Master received advert from 198.18.0.12 with higher priority 150, ours 100"},
		{"higher priority with higher_prio_send_advert", func(c *MachineConfig) { c.HigherPrioSendAdvert = true }, peer, 150,
			"advert(100) remove MASTER->BACKUP", StateBackup, ""},
		{"lower priority: re-advertise and GARP (split brain heals)", nil, peer, 90, "advert(100) garp(5) rx_lower", StateMaster,
			"(VI_1) Received advert from 198.18.0.12 with lower priority 90, ours 100, forcing new election"},
		{"lower priority with lower_prio_no_advert", func(c *MachineConfig) { c.LowerPrioNoAdvert = true }, peer, 90, "garp(5) rx_lower", StateMaster,
			"(VI_1) Received advert from 198.18.0.12 with lower priority 90, ours 100"},
		{"lower priority, no lower-prio GARP", func(c *MachineConfig) { c.GARPLowerPrioRepeat = 0 }, peer, 90, "advert(100) rx_lower", StateMaster, ""},
		{"equal priority, higher address: step down", nil, peer, 100, "remove MASTER->BACKUP", StateBackup,
			"(VI_1) Master received advert from 198.18.0.12 with same priority 100 but higher IP address than ours"},
		{"equal priority, lower address: stay", nil, lower, 100, "advert(100) garp(5) rx_lower", StateMaster, ""},
		{"equal priority, our own address", nil, me, 100, "", StateMaster,
			"(VI_1) WARNING - equal priority advert received from remote host with our IP address."},
		{"priority 0: answer with an advert at once", nil, peer, 0, "advert(100)", StateMaster, "(VI_1) Master received priority 0 message"},
		{"owner conflict: lower ourselves to 254 and step down", func(c *MachineConfig) { c.Priority = 255 }, peer, 255, "remove MASTER->BACKUP", StateBackup,
			"(VI_1) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority"},
		{"owner conflict, lower address: stay at 254", func(c *MachineConfig) { c.Priority = 255 }, lower, 255, "remove MASTER->BACKUP", StateBackup, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := modified(v2cfg(), tt.mod)
			h := masterHarness(t, c)
			a := h.advert(tt.src, tt.prio)
			if got := kinds(a); got != tt.acts {
				t.Fatalf("actions %q, want %q (logs %q)", got, tt.acts, logs(a))
			}
			if h.m.State() != tt.state {
				t.Fatalf("state %v, want %v", h.m.State(), tt.state)
			}
			if tt.log != "" && !hasLog(a, tt.log) {
				t.Errorf("missing %q in %q", tt.log, logs(a))
			}
		})
	}
}

func TestOwnerConflictLowerAddressStays(t *testing.T) {
	// 255 vs 255 from a lower address: we drop to 254, which is lower
	// than the other's 255, so we step down: the other stays owner.
	c := v2cfg()
	c.Priority = 255
	h := masterHarness(t, c)
	h.advert(lower, 255)
	if h.m.EffectivePriority() != 254 || h.m.State() != StateBackup {
		t.Fatalf("eff %d state %v", h.m.EffectivePriority(), h.m.State())
	}
}

func TestLowerPrioGARPDelay(t *testing.T) {
	h := masterHarness(t, v2cfg())
	h.advance(6 * time.Second) // past the master's second burst
	h.advert(peer, 90)
	a := h.advance(5 * time.Second)
	if n := strings.Count(kinds(a), "garp(5)"); n != 1 {
		t.Fatalf("want the lower-prio GARP burst again after 5 s: %q", kinds(a))
	}
}

func TestDrops(t *testing.T) {
	pass := func(s string) (b [8]byte) { copy(b[:], s); return }
	tests := []struct {
		name   string
		mod    func(*MachineConfig)
		pkt    func(*Packet, *Event)
		reason string
		log    string
	}{
		{"TTL 64", nil, func(_ *Packet, e *Event) { e.TTL = 64 }, DropTTL, "(VI_1) invalid TTL/HL. Received 64 and expect 255"},
		{"version 3 on a v2 instance", nil, func(p *Packet, _ *Event) { p.Version = 3 }, DropVersion, "(VI_1) wrong version. Received 3 and expect 2"},
		{"auth type 7", nil, func(p *Packet, _ *Event) { p.AuthType = 7 }, DropAuthType, "(VI_1) Invalid auth type: 7"},
		{"PASS to a no-auth instance", nil, func(p *Packet, _ *Event) { p.AuthType = AuthPass }, DropAuthType, "(VI_1) received a 1 auth, expecting 0!"},
		{"wrong password", func(c *MachineConfig) { c.AuthType, c.AuthPass = AuthPass, pass("secret12") },
			func(p *Packet, _ *Event) { p.AuthData = pass("secret13") }, DropAuth, "(VI_1) received an invalid passwd!"},
		{"no auth to a PASS instance", func(c *MachineConfig) { c.AuthType, c.AuthPass = AuthPass, pass("secret12") },
			func(p *Packet, _ *Event) { p.AuthType, p.AuthData = 0, [8]byte{} }, DropAuthType, ""},
		{"address count", nil, func(p *Packet, _ *Event) { p.Addrs = append(p.Addrs, peer) }, DropAddrList,
			"(VI_1) received an unexpected ip number count 2, expected 1!"},
		{"address list", nil, func(p *Packet, _ *Event) { p.Addrs = []netip.Addr{peer} }, DropAddrList,
			"(VI_1) ip address associated with VRID 51 not present in MASTER advert : 198.18.0.100"},
		{"unicast while multicasting", nil, func(_ *Packet, e *Event) { e.Dst = me }, DropMulticast,
			"(VI_1) Expected multicast packet but received unicast packet"},
		{"multicast while unicasting", func(c *MachineConfig) { c.Unicast, c.UnicastPeers = true, []netip.Addr{peer} },
			func(_ *Packet, e *Event) { e.Dst = MulticastGroup4 }, DropMulticast, ""},
		{"unicast source not a peer", func(c *MachineConfig) {
			c.Unicast, c.UnicastPeers, c.CheckUnicastSrc = true, []netip.Addr{lower}, true
		}, nil, DropPeer, "(VI_1) unicast source address 198.18.0.12 not a unicast peer"},
	}
	for _, tt := range tests {
		for _, st := range []State{StateBackup, StateMaster} {
			t.Run(fmt.Sprintf("%s/%v", tt.name, st), func(t *testing.T) {
				c := v2cfg()
				if tt.mod != nil {
					tt.mod(&c)
				}
				h := newHarness(t, c)
				h.start()
				if st == StateMaster {
					h.until(StateMaster, time.Minute)
				} else {
					h.advance(3 * time.Second)
				}
				mods := []func(*Packet, *Event){}
				if tt.pkt != nil {
					mods = append(mods, tt.pkt)
				}
				a := h.advert(peer, 150, mods...)
				if h.m.State() != st {
					t.Fatalf("a dropped advert changed the state to %v", h.m.State())
				}
				if kinds(a) != "" {
					t.Fatalf("a dropped advert caused %q", kinds(a))
				}
				if got := h.m.Stats().Dropped[tt.reason]; got != 1 {
					t.Fatalf("Dropped[%s] = %d (%v)", tt.reason, got, h.m.Stats().Dropped)
				}
				if tt.log != "" && !hasLog(a, tt.log) {
					t.Errorf("missing %q in %q", tt.log, logs(a))
				}
				for _, x := range a {
					if x.Kind == ActLog && x.Key == "" {
						t.Errorf("drop log %q has no rate-limit key", x.Msg)
					}
				}
				if st == StateBackup {
					// The timer was not reset: take over 0.609 s later.
					if d := h.until(StateMaster, time.Minute); d != 609375*time.Microsecond {
						t.Errorf("timer reset by a dropped advert: master after %v", d)
					}
				}
			})
		}
	}
}

func TestValidAdvertsAccepted(t *testing.T) {
	pass := [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', '2'}
	tests := []struct {
		name string
		mod  func(*MachineConfig)
		pkt  func(*Packet, *Event)
	}{
		{"plain", nil, nil},
		{"PASS", func(c *MachineConfig) { c.AuthType, c.AuthPass = AuthPass, pass }, nil},
		{"unknown TTL (socket without the header)", nil, func(_ *Packet, e *Event) { e.TTL = -1 }},
		{"unicast with any TTL", func(c *MachineConfig) { c.Unicast, c.UnicastPeers = true, []netip.Addr{peer} },
			func(_ *Packet, e *Event) { e.TTL = 62 }},
		{"addresses in another order", func(c *MachineConfig) { c.VIPs = []netip.Addr{vip, lower} },
			func(p *Packet, _ *Event) { p.Addrs = []netip.Addr{lower, vip} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := modified(v2cfg(), tt.mod)
			h := newHarness(t, c)
			h.start()
			h.advance(3 * time.Second)
			mods := []func(*Packet, *Event){}
			if tt.pkt != nil {
				mods = append(mods, tt.pkt)
			}
			h.advert(peer, 150, mods...)
			if d := h.until(StateMaster, time.Minute); d != 3609375*time.Microsecond {
				t.Fatalf("advert not accepted: master %v later", d)
			}
			if s := h.m.Stats(); s.AdvertRcvd != 1 || len(s.Dropped) != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestSkipCheckAdvAddr(t *testing.T) {
	c := v2cfg()
	c.SkipCheckAdvAddr = true
	h := newHarness(t, c)
	h.start()
	h.advert(peer, 150)
	// From the known master, the address list is not checked again...
	h.advert(peer, 150, func(p *Packet, _ *Event) { p.Addrs = nil })
	if len(h.m.Stats().Dropped) != 0 {
		t.Fatalf("checked: %v", h.m.Stats().Dropped)
	}
	// ...from another router it is.
	h.advert(lower, 150, func(p *Packet, _ *Event) { p.Addrs = nil })
	if h.m.Stats().Dropped[DropAddrList] != 1 {
		t.Fatalf("not checked: %v", h.m.Stats().Dropped)
	}
}

func TestTrackingPriority(t *testing.T) {
	tests := []struct {
		base  uint8
		delta int
		eff   int
	}{
		{100, 0, 100}, {100, 20, 120}, {100, -30, 70}, {100, 200, 254}, {100, -200, 1},
		{255, -50, 255}, {255, 10, 255}, {254, 1, 254}, {1, -1, 1},
	}
	for _, tt := range tests {
		c := v2cfg()
		c.Priority = tt.base
		h := newHarness(t, c)
		h.start()
		h.step(Event{Kind: EvTrack, Delta: tt.delta})
		if h.m.EffectivePriority() != tt.eff {
			t.Errorf("base %d delta %d: eff %d, want %d", tt.base, tt.delta, h.m.EffectivePriority(), tt.eff)
		}
	}
	h := newHarness(t, v2cfg())
	h.start()
	a := h.step(Event{Kind: EvTrack, Delta: 2})
	if !hasLog(a, "(VI_1) Changing effective priority from 100 to 102") || kinds(a) != "prio(100->102)" {
		t.Fatalf("%q %q", kinds(a), logs(a))
	}
	// The skew follows the effective priority.
	if h.m.Skew() != (256-102)*time.Second/256 {
		t.Fatalf("skew %v", h.m.Skew())
	}
	// A master advertises its new priority.
	h.until(StateMaster, time.Minute)
	h.step(Event{Kind: EvTrack, Delta: -30})
	a = h.advance(time.Second)
	if kinds(a) != "advert(70)" {
		t.Fatalf("%q", kinds(a))
	}
}

func TestFault(t *testing.T) {
	t.Run("master to fault and back", func(t *testing.T) {
		h := masterHarness(t, v2cfg())
		a := h.step(Event{Kind: EvTrack, Faults: []string{"interface eth0 down"}})
		if got, want := kinds(a), "advert(0) remove MASTER->FAULT"; got != want {
			t.Fatalf("%q, want %q", got, want)
		}
		if !hasLog(a, "(VI_1) Entering FAULT STATE") {
			t.Errorf("%q", logs(a))
		}
		if a := h.advance(10 * time.Second); len(kinds(a)) != 0 {
			t.Fatalf("FAULT acted: %q", kinds(a))
		}
		// Adverts are ignored in FAULT.
		h.advert(peer, 50)
		if h.m.State() != StateFault {
			t.Fatal("left FAULT on an advert")
		}
		a = h.step(Event{Kind: EvTrack})
		if got := kinds(a); got != "FAULT->BACKUP" || !hasLog(a, "(VI_1) Entering BACKUP STATE") {
			t.Fatalf("%q %q", got, logs(a))
		}
		if d := h.until(StateMaster, time.Minute); d != 3609375*time.Microsecond {
			t.Fatalf("master %v after leaving FAULT", d)
		}
	})
	t.Run("backup to fault", func(t *testing.T) {
		h := newHarness(t, v2cfg())
		h.start()
		a := h.step(Event{Kind: EvTrack, Faults: []string{"script chk down"}})
		if kinds(a) != "BACKUP->FAULT" {
			t.Fatalf("%q", kinds(a))
		}
		if !h.m.Deadline().IsZero() {
			t.Fatal("FAULT keeps a timer")
		}
	})
	t.Run("start in fault", func(t *testing.T) {
		h := newHarness(t, v2cfg())
		h.step(Event{Kind: EvTrack, Faults: []string{"interface eth0 down"}})
		a := h.start()
		if kinds(a) != "remove(stale) INIT->FAULT" {
			t.Fatalf("%q", kinds(a))
		}
	})
}

func TestShutdown(t *testing.T) {
	h := masterHarness(t, v3cfg())
	a := h.step(Event{Kind: EvShutdown})
	if got, want := kinds(a), "advert(0) remove MASTER->STOP"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	for _, l := range []string{"(VI_1) sent 0 priority", "(VI_1) removing VIPs."} {
		if !hasLog(a, l) {
			t.Errorf("missing %q", l)
		}
	}
	if s := h.m.Stats(); s.PriZeroSent != 1 || s.ReleaseMaster != 1 || s.BecomeMaster != 1 {
		t.Errorf("stats %+v", s)
	}
	if !h.m.Deadline().IsZero() {
		t.Error("stopped machine keeps a timer")
	}
	b := newHarness(t, v3cfg())
	b.start()
	if got := kinds(b.step(Event{Kind: EvShutdown})); got != "BACKUP->STOP" {
		t.Fatalf("backup shutdown %q", got)
	}
}

func TestMasterLateTimerDoesNotBurst(t *testing.T) {
	h := masterHarness(t, v3cfg())
	h.now = h.now.Add(time.Second) // the process was stopped for 1 s
	a := h.step(Event{Kind: EvTick})
	if kinds(a) != "advert(100)" {
		t.Fatalf("%q", kinds(a))
	}
	if h.m.Deadline() != h.now.Add(100*time.Millisecond) {
		t.Fatalf("next advert at %v", h.m.Deadline().Sub(h.now))
	}
}

func TestReconfigureKeepsState(t *testing.T) {
	h := masterHarness(t, v3cfg())
	c := v3cfg()
	c.Priority = 120
	c.AdvertInt = 200 * time.Millisecond
	a := h.m.Reconfigure(h.now, c)
	if kinds(a) != "prio(100->120)" || h.m.State() != StateMaster {
		t.Fatalf("%q state %v", kinds(a), h.m.State())
	}
	a = h.advance(time.Second)
	if got := kinds(a); got != "advert(120) advert(120) advert(120) advert(120) advert(120)" {
		t.Fatalf("after reload %q", got)
	}
	// A backup keeps the master's learned interval.
	b := newHarness(t, v3cfg())
	b.start()
	b.advert(peer, 150, func(p *Packet, _ *Event) { p.AdvertInt = 100 })
	b.m.Reconfigure(b.now, c)
	if b.m.MasterAdverInt() != time.Second || b.m.State() != StateBackup {
		t.Fatalf("backup %v %v", b.m.MasterAdverInt(), b.m.State())
	}
}

func TestTransitionsCounted(t *testing.T) {
	h := masterHarness(t, v2cfg())
	h.advert(peer, 150)
	n, at := h.m.Transitions()
	if n != 3 || at != h.now { // INIT->BACKUP, BACKUP->MASTER, MASTER->BACKUP
		t.Fatalf("transitions %d at %v", n, at)
	}
}
