package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// State is a VRRP instance state (RFC 5798 6.4, plus keepalived's FAULT
// and STOP).
type State uint8

// States.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStop
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStop:
		return "STOP"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// PriorityOwner is the priority of the router that owns the addresses.
const PriorityOwner = 255

// MachineConfig is what the state machine of one instance needs to know.
// The driver derives it from InstanceConfig.
type MachineConfig struct {
	Name     string // instance name, used in log lines: "(VI_1) ..."
	Version  int    // 2 or 3
	VRID     uint8
	Priority uint8 // configured (base) priority, 1..255
	// AdvertInt is our advertisement interval. VRRPv3 backups adopt the
	// master's (Master_Adver_Interval) and return to this one on leaving
	// BACKUP.
	AdvertInt time.Duration
	// InitMaster is keepalived's "state MASTER". Unless we own the
	// addresses (priority 255), the instance still starts in BACKUP and
	// listens for a master for the master down interval before claiming
	// the VIPs, as keepalived does: a restart never takes the VIPs from a
	// running higher-priority master. What it adds to BACKUP: while that
	// first listen lasts, an advert from a lower-priority master is
	// preempted at once rather than after the down timer.
	InitMaster   bool
	NoPreempt    bool
	PreemptDelay time.Duration
	// DownTimerAdverts is the number of advert intervals of the master
	// down timer (keepalived's down_timer_adverts; the RFCs say 3).
	DownTimerAdverts int
	// LowerPrioNoAdvert: a master receiving a lower priority advert does
	// not answer with an advert of its own (RFC behaviour; keepalived
	// answers by default, which is how a split brain heals).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert: a master receiving a higher priority advert
	// sends one more advert before stepping down.
	HigherPrioSendAdvert bool

	AuthType uint8   // AuthNone or AuthPass (VRRPv2)
	AuthPass [8]byte // password, zero padded, 8 bytes as on the wire

	// VIPs are the addresses carried in adverts (virtual_ipaddress, not
	// virtual_ipaddress_excluded), in configuration order.
	VIPs []netip.Addr
	// Unicast is set when adverts go to UnicastPeers rather than the
	// multicast group.
	Unicast         bool
	UnicastPeers    []netip.Addr
	CheckUnicastSrc bool
	// SkipCheckAdvAddr skips the address list check of adverts that come
	// from the master we already know (keepalived's skip_check_adv_addr).
	SkipCheckAdvAddr bool

	// Gratuitous ARP / unsolicited NA schedule (keepalived's defaults are
	// 5 at once and 5 more after 5 s; refresh off).
	GARPMasterRepeat        int
	GARPMasterDelay         time.Duration
	GARPMasterRefresh       time.Duration
	GARPMasterRefreshRepeat int
	// GARPExtraIf: while master, every GARPExtraIf an ActSendGARPExtra
	// (garp_extra_if all; 0: off).
	GARPExtraIf         time.Duration
	GARPLowerPrioRepeat int
	GARPLowerPrioDelay  time.Duration
}

// ActionKind says what an Action asks the driver to do.
type ActionKind uint8

// Actions.
const (
	// ActSendAdvert: send an advertisement with Priority.
	ActSendAdvert ActionKind = iota + 1
	// ActAddVIPs: configure every virtual address.
	ActAddVIPs
	// ActRemoveVIPs: remove every virtual address we hold. Stale is set at
	// start: remove them even if this process did not add them.
	ActRemoveVIPs
	// ActSendGARP: send Count gratuitous ARPs / unsolicited NAs per VIP.
	ActSendGARP
	// ActSendGARPExtra: one gratuitous ARP / NA on each interface, other
	// than the instance's, that holds one of its VIPs (garp_extra_if all).
	ActSendGARPExtra
	// ActStateChange: the instance went From -> To (notify scripts, SMTP,
	// data plane).
	ActStateChange
	// ActLog: log Msg (at info level). A non-empty Key marks a message
	// the driver may rate-limit (drops caused by other hosts' packets).
	ActLog
	// ActMasterRxLowerPrio: a master heard a lower priority advert
	// (keepalived's notify_master_rx_lower_pri).
	ActMasterRxLowerPrio
	// ActPriorityChange: the effective priority changed From -> To.
	ActPriorityChange
)

// Action is one thing the driver must do, in order.
type Action struct {
	Kind     ActionKind
	Instance string
	Priority uint8
	Count    int
	From, To State
	// PrioFrom and PrioTo are set by ActPriorityChange.
	PrioFrom, PrioTo int
	Stale            bool
	Msg              string
	Key              string
	// Resumed marks the ActStateChange of an instance resumed in the
	// state another process left it in: not a change for the network,
	// the scripts or the FIFOs.
	Resumed bool
}

// EventKind says what happened.
type EventKind uint8

// Events.
const (
	// EvStart leaves INIT.
	EvStart EventKind = iota + 1
	// EvTick: time is Now; timers that are due fire.
	EvTick
	// EvAdvert: Packet arrived from Src to Dst with TTL (-1 unknown).
	EvAdvert
	// EvTrack: tracking changed. Delta is the sum of the weights that
	// apply now; Faults lists why the instance must be in FAULT (empty:
	// no fault).
	EvTrack
	// EvShutdown: stop; a master resigns with a priority 0 advert.
	EvShutdown
	// EvResume leaves INIT into the state of Resume (another process
	// handed the instance over: vipctl upgrade).
	EvResume
)

// Event is one input to Machine.Step.
type Event struct {
	Kind   EventKind
	Now    time.Time
	Packet *Packet
	Src    netip.Addr
	Dst    netip.Addr
	TTL    int
	Delta  int
	Faults []string
	Resume Resume
}

// Stats are the counters of one instance, named after keepalived's.
type Stats struct {
	AdvertRcvd    uint64
	AdvertSent    uint64
	BecomeMaster  uint64
	ReleaseMaster uint64
	PriZeroRcvd   uint64
	PriZeroSent   uint64
	// Dropped counts dropped adverts by reason (the Drop* constants).
	Dropped map[string]uint64
}

// Machine is the VRRP state machine of one instance. It is a value: Step
// feeds it an event and returns what to do; it never blocks, reads a clock
// or touches the network. Deadline says when it next wants an EvTick.
type Machine struct {
	cfg   MachineConfig
	addr  netip.Addr // our advert source address: ties are broken on it
	state State

	base       int // configured priority, lowered to 254 on an owner conflict
	eff        int // effective priority
	trackDelta int
	faults     []string // own fault reasons
	syncFault  bool     // held in FAULT by the sync group
	group      *Group
	wantMaster bool // down timer expired, held back by the sync group
	// initListen: a state MASTER instance in its first BACKUP after
	// start, not yet having heard a master at least as good as itself.
	initListen  bool
	masterAdver time.Duration

	downAt, advertAt, garpAt, garpRefreshAt, lowerGarpAt, preemptAt time.Time
	garpExtraAt                                                     time.Time

	masterAddr netip.Addr
	masterPrio int
	// masterRxAt: when a backup last heard masterAddr (at masterPrio),
	// whether it accepted the advert or discarded it as lower.
	masterRxAt time.Time

	stats          Stats
	transitions    uint64
	lastTransition time.Time

	out []Action
}

// NewMachine returns a machine in INIT; EvStart starts it. addr is the
// source address of our adverts.
func NewMachine(cfg MachineConfig, addr netip.Addr) *Machine {
	m := &Machine{addr: addr, state: StateInit}
	m.setConfig(cfg)
	m.masterAdver = m.cfg.AdvertInt
	m.eff = m.computeEff()
	m.stats.Dropped = map[string]uint64{}
	return m
}

func (m *Machine) setConfig(cfg MachineConfig) {
	if cfg.DownTimerAdverts <= 0 {
		cfg.DownTimerAdverts = 3
	}
	if cfg.AdvertInt <= 0 {
		cfg.AdvertInt = time.Second
	}
	if cfg.Priority == PriorityOwner {
		cfg.NoPreempt = false // the owner always preempts
	}
	m.cfg = cfg
	m.base = int(cfg.Priority)
}

// Name returns the instance name.
func (m *Machine) Name() string { return m.cfg.Name }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Config returns the machine's configuration.
func (m *Machine) Config() MachineConfig { return m.cfg }

// EffectivePriority is the priority after tracking weights.
func (m *Machine) EffectivePriority() int { return m.eff }

// Addr returns our advert source address.
func (m *Machine) Addr() netip.Addr { return m.addr }

// SetAddr changes our advert source address (the interface's primary
// address changed).
func (m *Machine) SetAddr(a netip.Addr) { m.addr = a }

// Master returns the master as last heard (ourselves when master) and its
// priority.
func (m *Machine) Master() (netip.Addr, int) {
	if m.state == StateMaster {
		return m.addr, m.eff
	}
	return m.masterAddr, m.masterPrio
}

// MasterAdverInt is the advertisement interval the down timer is based
// on: ours, or the master's for a VRRPv3 backup.
func (m *Machine) MasterAdverInt() time.Duration { return m.masterAdver }

// Stats returns a copy of the counters.
func (m *Machine) Stats() Stats {
	s := m.stats
	s.Dropped = make(map[string]uint64, len(m.stats.Dropped))
	for k, v := range m.stats.Dropped {
		s.Dropped[k] = v
	}
	return s
}

// Transitions counts state changes; LastTransition is when the last was.
func (m *Machine) Transitions() (uint64, time.Time) { return m.transitions, m.lastTransition }

// Faults returns why the instance is in FAULT.
func (m *Machine) Faults() []string {
	f := slices.Clone(m.faults)
	if m.syncFault {
		f = append(f, "sync group member in fault")
	}
	return f
}

// Skew is the skew time of RFC 5798 6.1 from the effective priority:
// VRRPv3 scales it by the master's interval, VRRPv2 uses seconds (RFC
// 3768), as keepalived does.
func (m *Machine) Skew() time.Duration {
	p := time.Duration(256 - m.eff)
	if m.cfg.Version == 2 {
		return p * time.Second / 256
	}
	return p * m.masterAdver / 256
}

// MasterDownInterval is down_timer_adverts x Master_Adver_Interval + skew.
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.cfg.DownTimerAdverts)*m.masterAdver + m.Skew()
}

// Deadline returns when the machine next needs an EvTick (zero: never).
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.downAt, m.advertAt, m.garpAt, m.garpRefreshAt, m.lowerGarpAt, m.garpExtraAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Step processes one event and returns the actions to take, in order.
func (m *Machine) Step(ev Event) []Action {
	m.out = nil
	prev := m.state
	m.step(ev)
	if m.group != nil {
		m.group.sync(m, prev, ev.Now)
	}
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) step(ev Event) {
	switch ev.Kind {
	case EvStart:
		m.start(ev.Now)
	case EvTick:
		m.tick(ev.Now)
	case EvAdvert:
		m.advert(ev)
	case EvTrack:
		m.track(ev.Now, ev.Delta, ev.Faults)
	case EvShutdown:
		m.shutdown(ev.Now)
	case EvResume:
		m.resume(ev.Now, ev.Resume)
	}
}

func (m *Machine) emit(a Action) {
	a.Instance = m.cfg.Name
	m.out = append(m.out, a)
}

func (m *Machine) logf(format string, args ...any) {
	m.emit(Action{Kind: ActLog, Msg: fmt.Sprintf("(%s) ", m.cfg.Name) + fmt.Sprintf(format, args...)})
}

func (m *Machine) drop(reason string, format string, args ...any) {
	m.stats.Dropped[reason]++
	m.emit(Action{Kind: ActLog, Key: "drop:" + reason, Msg: fmt.Sprintf("(%s) ", m.cfg.Name) + fmt.Sprintf(format, args...)})
}

// CountDrop counts an advert the driver dropped before it reached the
// machine (undecodable, bad checksum).
func (m *Machine) CountDrop(reason string) { m.stats.Dropped[reason]++ }

func (m *Machine) setState(now time.Time, s State) {
	from := m.state
	m.state = s
	m.transitions++
	m.lastTransition = now
	m.emit(Action{Kind: ActStateChange, From: from, To: s})
}

func (m *Machine) computeEff() int {
	if m.base == PriorityOwner {
		return PriorityOwner // tracking weights do not apply to the owner
	}
	e := m.base + m.trackDelta
	if e < 1 {
		e = 1
	}
	if e > PriorityOwner-1 {
		e = PriorityOwner - 1
	}
	return e
}

func (m *Machine) updateEff() {
	e := m.computeEff()
	if e != m.eff {
		m.logf("Changing effective priority from %d to %d", m.eff, e)
		m.emit(Action{Kind: ActPriorityChange, PrioFrom: m.eff, PrioTo: e})
		m.eff = e
	}
}

func (m *Machine) faulted() bool { return len(m.faults) > 0 || m.syncFault }

func (m *Machine) start(now time.Time) {
	if m.state != StateInit {
		return
	}
	m.logf("removing VIPs.")
	m.emit(Action{Kind: ActRemoveVIPs, Stale: true})
	if m.faulted() {
		for _, f := range m.Faults() {
			// keepalived names each tracked process that keeps an
			// instance from starting.
			if strings.HasPrefix(f, "tracked process ") {
				m.logf("entering FAULT state (%s)", f)
			}
		}
		m.logf("Entering FAULT STATE")
		m.setState(now, StateFault)
		return
	}
	if m.base == PriorityOwner {
		// The address owner cannot lose an election (keepalived: "the
		// simplest way to become master is to time out from the backup
		// state very quickly").
		m.state = StateBackup
		m.downAt = now
		return
	}
	m.logf("Entering BACKUP STATE (init)")
	m.setState(now, StateBackup)
	m.downAt = now.Add(m.MasterDownInterval())
	if m.cfg.InitMaster {
		// Listen before claiming: another node may be master, and a
		// higher-priority one must keep the VIPs through our restart.
		m.initListen = true
		m.logf("state MASTER: listening for a master for %v before taking over", m.MasterDownInterval())
	}
}

func (m *Machine) tick(now time.Time) {
	switch m.state {
	case StateBackup:
		if !m.downAt.IsZero() && !now.Before(m.downAt) {
			m.downAt = time.Time{}
			m.initListen = false
			m.logf("Receive advertisement timeout")
			m.wantMaster = true
			if m.group == nil || m.group.canGoMaster(m) {
				m.becomeMaster(now)
			}
		}
	case StateMaster:
		if !m.advertAt.IsZero() && !now.Before(m.advertAt) {
			m.sendAdvert(uint8(m.eff))
			next := m.advertAt.Add(m.cfg.AdvertInt)
			if !next.After(now) {
				next = now.Add(m.cfg.AdvertInt) // we were late: do not burst
			}
			m.advertAt = next
		}
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			m.garpAt = time.Time{}
			m.emit(Action{Kind: ActSendGARP, Count: m.cfg.GARPMasterRepeat})
		}
		if !m.lowerGarpAt.IsZero() && !now.Before(m.lowerGarpAt) {
			m.lowerGarpAt = time.Time{}
			m.emit(Action{Kind: ActSendGARP, Count: m.cfg.GARPLowerPrioRepeat})
		}
		if !m.garpRefreshAt.IsZero() && !now.Before(m.garpRefreshAt) {
			m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
			m.emit(Action{Kind: ActSendGARP, Count: max(1, m.cfg.GARPMasterRefreshRepeat)})
		}
		if !m.garpExtraAt.IsZero() && !now.Before(m.garpExtraAt) {
			m.garpExtraAt = now.Add(m.cfg.GARPExtraIf)
			m.emit(Action{Kind: ActSendGARPExtra})
		}
	}
}

func (m *Machine) sendAdvert(prio uint8) {
	m.stats.AdvertSent++
	if prio == 0 {
		m.stats.PriZeroSent++
	}
	m.emit(Action{Kind: ActSendAdvert, Priority: prio})
}

func (m *Machine) becomeMaster(now time.Time) {
	m.wantMaster = false
	m.initListen = false
	m.downAt = time.Time{}
	m.preemptAt = time.Time{}
	m.masterAdver = m.cfg.AdvertInt
	// The advert goes first so that the old master, if any, drops the
	// addresses before our gratuitous ARPs (keepalived's order).
	m.sendAdvert(uint8(m.eff))
	m.logf("Entering MASTER STATE")
	m.stats.BecomeMaster++
	m.logf("setting VIPs.")
	m.emit(Action{Kind: ActAddVIPs})
	if m.cfg.GARPMasterRepeat > 0 {
		m.emit(Action{Kind: ActSendGARP, Count: m.cfg.GARPMasterRepeat})
		if m.cfg.GARPMasterDelay > 0 {
			m.garpAt = now.Add(m.cfg.GARPMasterDelay)
		}
	}
	// MASTER is reported once the VIPs are in place (keepalived's
	// order): whoever acts on it (virtual routes, the data plane, notify
	// scripts) finds the addresses there.
	m.setState(now, StateMaster)
	if m.cfg.GARPMasterRefresh > 0 {
		m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
	}
	if m.cfg.GARPExtraIf > 0 {
		m.garpExtraAt = now.Add(m.cfg.GARPExtraIf)
	}
	m.advertAt = now.Add(m.cfg.AdvertInt)
	m.masterAddr, m.masterPrio, m.masterRxAt = m.addr, m.eff, time.Time{}
}

// leaveMaster goes from MASTER to BACKUP or FAULT.
func (m *Machine) leaveMaster(now time.Time, to State, prio0 bool) {
	m.advertAt, m.garpAt, m.garpRefreshAt, m.lowerGarpAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	m.garpExtraAt = time.Time{}
	if to == StateFault {
		m.logf("Entering FAULT STATE")
	} else {
		m.logf("Entering BACKUP STATE")
	}
	if prio0 {
		m.sendAdvert(0)
	}
	m.logf("removing VIPs.")
	m.emit(Action{Kind: ActRemoveVIPs})
	m.stats.ReleaseMaster++
	m.setState(now, to)
	m.preemptAt = time.Time{}
	if to == StateBackup {
		m.downAt = now.Add(m.MasterDownInterval())
	}
}

// addrCmp compares the sender's address with ours: >0 when theirs is
// higher (they win a tie).
func (m *Machine) addrCmp(src netip.Addr) int {
	return src.Unmap().Compare(m.addr.Unmap())
}

// check validates an advert against our configuration (RFC 5798 7.1 and
// keepalived's vrrp_check_packet) and counts it. It returns false when the
// advert must be dropped.
func (m *Machine) check(ev Event, checkAddrs bool) bool {
	p := ev.Packet
	if !m.cfg.Unicast && ev.TTL >= 0 && ev.TTL != 255 {
		m.drop(DropTTL, "invalid TTL/HL. Received %d and expect 255", ev.TTL)
		return false
	}
	if p.Version != m.cfg.Version {
		m.drop(DropVersion, "wrong version. Received %d and expect %d", p.Version, m.cfg.Version)
		return false
	}
	if p.Version == 2 {
		if p.AuthType > AuthAH {
			m.drop(DropAuthType, "Invalid auth type: %d", p.AuthType)
			return false
		}
		if p.AuthType != m.cfg.AuthType {
			m.drop(DropAuthType, "received a %d auth, expecting %d!", p.AuthType, m.cfg.AuthType)
			return false
		}
		if p.AuthType == AuthPass && p.AuthData != m.cfg.AuthPass {
			m.drop(DropAuth, "received an invalid passwd!")
			return false
		}
		if p.Interval() != m.cfg.AdvertInt {
			m.drop(DropInterval, "advertisement interval mismatch mine=%d sec rcv'd=%d sec", m.cfg.AdvertInt/time.Second, p.AdvertInt)
			return false
		}
	}
	if ev.Dst.IsValid() && ev.Dst.IsMulticast() == m.cfg.Unicast {
		exp, got := "mult", "un"
		if m.cfg.Unicast {
			exp, got = "un", "mult"
		}
		m.drop(DropMulticast, "Expected %sicast packet but received %sicast packet", exp, got)
		return false
	}
	m.stats.AdvertRcvd++
	if checkAddrs {
		if len(p.Addrs) != len(m.cfg.VIPs) {
			m.drop(DropAddrList, "received an unexpected ip number count %d, expected %d!", len(p.Addrs), len(m.cfg.VIPs))
			return false
		}
		for _, v := range m.cfg.VIPs {
			if !slices.Contains(p.Addrs, v) {
				m.drop(DropAddrList, "ip address associated with VRID %d not present in MASTER advert : %s", m.cfg.VRID, v)
				return false
			}
		}
		if m.cfg.Unicast && m.cfg.CheckUnicastSrc && !slices.Contains(m.cfg.UnicastPeers, ev.Src) {
			m.drop(DropPeer, "unicast source address %s not a unicast peer", ev.Src)
			return false
		}
	}
	if p.Priority == 0 {
		m.stats.PriZeroRcvd++
	}
	return true
}

func (m *Machine) advert(ev Event) {
	if ev.Packet == nil {
		return
	}
	switch m.state {
	case StateBackup:
		m.backupRx(ev)
	case StateMaster:
		m.masterRx(ev)
	default:
		// INIT, FAULT and STOP ignore adverts (still counting bad ones
		// would need a socket we may not have).
	}
}

func (m *Machine) backupRx(ev Event) {
	p, now := ev.Packet, ev.Now
	checkAddrs := !m.cfg.SkipCheckAdvAddr || ev.Src != m.masterAddr
	if !m.check(ev, checkAddrs) {
		return
	}
	prio := int(p.Priority)
	switch {
	case prio == 0:
		m.logf("Backup received priority 0 advertisement")
		if !m.wantMaster {
			m.downAt = now.Add(m.Skew())
		}
	case m.cfg.NoPreempt || prio >= m.eff ||
		(m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))):
		if m.cfg.Version == 3 && p.Interval() > 0 && p.Interval() != m.masterAdver {
			m.masterAdver = p.Interval()
		}
		m.wantMaster = false
		m.initListen = false
		m.downAt = now.Add(m.MasterDownInterval())
		m.masterAddr, m.masterPrio, m.masterRxAt = ev.Src, prio, now
		if m.cfg.PreemptDelay > 0 {
			if prio >= m.eff {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.logf("start preempt delay (%.6f)", m.cfg.PreemptDelay.Seconds())
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
			}
		}
	case m.initListen && !m.wantMaster:
		// state MASTER at start, and the master is worse than us: no need
		// to wait out the down timer to preempt it.
		m.logf("received lower priority (%d) advert from %s - preempting at once (state MASTER)", prio, ev.Src)
		m.initListen = false
		m.downAt = time.Time{}
		m.masterAddr = ev.Src
		m.wantMaster = true
		if m.group == nil || m.group.canGoMaster(m) {
			m.becomeMaster(now)
		}
	default:
		// Preempting: let the down timer run out.
		m.logf("received lower priority (%d) advert from %s - discarding", prio, ev.Src)
		m.masterAddr, m.masterPrio, m.masterRxAt = ev.Src, prio, now
	}
}

func (m *Machine) masterRx(ev Event) {
	p, now := ev.Packet, ev.Now
	if !m.check(ev, true) {
		return
	}
	prio := int(p.Priority)
	cmp := m.addrCmp(ev.Src)
	higher := prio > m.eff || (prio == m.eff && cmp > 0)
	if prio == 0 || (m.cfg.HigherPrioSendAdvert && higher) {
		m.sendAdvert(uint8(m.eff))
		if prio == 0 {
			m.logf("Master received priority 0 message")
			return
		}
	}
	if prio == m.eff {
		if cmp == 0 {
			m.logf("WARNING - equal priority advert received from remote host with our IP address.")
		} else if m.eff == PriorityOwner {
			m.logf("CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority")
			m.base = PriorityOwner - 1
			m.eff = PriorityOwner - 1
			higher = cmp > 0 || prio > m.eff
		}
	}
	lower := prio < m.eff || (prio == m.eff && cmp < 0)
	switch {
	case lower:
		suffix := ", forcing new election"
		if m.cfg.LowerPrioNoAdvert {
			suffix = ""
		}
		m.logf("Received advert from %s with lower priority %d, ours %d%s", ev.Src, prio, m.eff, suffix)
		if !m.cfg.LowerPrioNoAdvert {
			m.sendAdvert(uint8(m.eff))
		}
		if m.cfg.GARPLowerPrioRepeat > 0 {
			m.emit(Action{Kind: ActSendGARP, Count: m.cfg.GARPLowerPrioRepeat})
			if m.cfg.GARPLowerPrioDelay > 0 {
				m.lowerGarpAt = now.Add(m.cfg.GARPLowerPrioDelay)
			}
		}
		m.emit(Action{Kind: ActMasterRxLowerPrio})
	case higher:
		if prio > m.eff {
			m.logf("Master received advert from %s with higher priority %d, ours %d", ev.Src, prio, m.eff)
		} else {
			m.logf("Master received advert from %s with same priority %d but higher IP address than ours", ev.Src, prio)
		}
		if m.cfg.Version == 3 && p.Interval() > 0 {
			m.masterAdver = p.Interval()
		}
		m.masterAddr, m.masterPrio, m.masterRxAt = ev.Src, prio, now
		m.leaveMaster(now, StateBackup, false)
	}
}

func (m *Machine) track(now time.Time, delta int, faults []string) {
	m.trackDelta = delta
	m.faults = slices.Clone(faults)
	m.updateEff()
	m.keepBackup()
	m.evalFault(now)
}

// keepBackup re-arms the down timer of a backup that was preempting a
// lower-priority master and whose own priority has now fallen to that
// master's or below: the master is alive (heard at masterRxAt) and now
// the better one, so the timer runs as if its last advert had been
// accepted. Without it the timer armed while we were better fires and
// we take the VIPs from a live, better master, only to hand them back
// at its next advert (keepalived 2.2.7 does exactly that).
func (m *Machine) keepBackup() {
	if m.state != StateBackup || m.wantMaster || m.downAt.IsZero() || m.masterRxAt.IsZero() || m.masterPrio < m.eff {
		return
	}
	m.initListen = false
	if at := m.masterRxAt.Add(m.MasterDownInterval()); at.After(m.downAt) {
		m.downAt = at
	}
}

// evalFault moves in or out of FAULT after a change of fault reasons.
func (m *Machine) evalFault(now time.Time) {
	switch {
	case m.faulted() && (m.state == StateBackup || m.state == StateMaster):
		reason := strings.Join(m.Faults(), ", ")
		if m.state == StateMaster {
			m.logf("entering FAULT state (%s)", reason)
			m.leaveMaster(now, StateFault, true)
		} else {
			m.logf("entering FAULT state (%s)", reason)
			m.logf("Entering FAULT STATE")
			m.downAt = time.Time{}
			m.wantMaster = false
			m.initListen = false
			m.setState(now, StateFault)
		}
	case !m.faulted() && m.state == StateFault:
		m.masterAdver = m.cfg.AdvertInt
		m.preemptAt = time.Time{}
		m.masterAddr, m.masterPrio, m.masterRxAt = netip.Addr{}, 0, time.Time{}
		m.logf("Entering BACKUP STATE")
		m.setState(now, StateBackup)
		if m.base == PriorityOwner {
			m.downAt = now
		} else {
			m.downAt = now.Add(m.MasterDownInterval())
		}
	}
}

func (m *Machine) shutdown(now time.Time) {
	if m.state == StateStop {
		return
	}
	if m.state == StateMaster {
		m.sendAdvert(0)
		m.logf("sent 0 priority")
		m.logf("removing VIPs.")
		m.emit(Action{Kind: ActRemoveVIPs})
		m.stats.ReleaseMaster++
	}
	m.downAt, m.advertAt, m.garpAt, m.garpRefreshAt, m.lowerGarpAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	m.garpExtraAt = time.Time{}
	m.setState(now, StateStop)
}

// Regroup re-evaluates what the sync group holds the machine to after
// the groups were rebuilt (a reload): a member that left its group is no
// longer held in FAULT by the others, nor held back from MASTER, and a
// member that joined one is held as the group requires.
func (m *Machine) Regroup(now time.Time) []Action {
	m.out = nil
	prev := m.state
	if m.group == nil && m.syncFault {
		m.syncFault = false
		m.evalFault(now)
	}
	if m.state == StateBackup && m.wantMaster && (m.group == nil || m.group.canGoMaster(m)) {
		m.becomeMaster(now)
	}
	// A reload that puts a master into a group beside a backup (one that
	// hears a better master, so it will not take over) would leave the
	// group split for good: the master follows the backup, as a member
	// going to BACKUP takes its group along.
	if m.group != nil && m.state == StateMaster && m.group.heldBackup(m) {
		m.logf("VRRP_Group(%s) a member is BACKUP: leaving MASTER to keep the group together", m.group.name)
		m.leaveMaster(now, StateBackup, false)
	}
	if m.group != nil {
		m.group.sync(m, prev, now)
	}
	out := m.out
	m.out = nil
	return out
}

// Reconfigure applies a changed configuration to a running machine
// without a state change (hot reload). The VRID, version and interface
// must be unchanged: those make a different instance. A master keeps its
// role (at its new priority, a better backup preempts as usual); the
// advert timer keeps its phase.
func (m *Machine) Reconfigure(now time.Time, cfg MachineConfig) []Action {
	m.out = nil
	oldInt := m.cfg.AdvertInt
	m.setConfig(cfg)
	if m.masterAdver == oldInt || m.state != StateBackup || m.cfg.Version == 2 {
		m.masterAdver = m.cfg.AdvertInt
	}
	if m.state == StateMaster && oldInt != m.cfg.AdvertInt {
		m.advertAt = now.Add(m.cfg.AdvertInt)
	}
	if m.state == StateMaster && m.cfg.GARPMasterRefresh == 0 {
		m.garpRefreshAt = time.Time{}
	} else if m.state == StateMaster && m.garpRefreshAt.IsZero() {
		m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
	}
	if m.state == StateMaster && m.cfg.GARPExtraIf == 0 {
		m.garpExtraAt = time.Time{}
	} else if m.state == StateMaster && m.garpExtraAt.IsZero() {
		m.garpExtraAt = now.Add(m.cfg.GARPExtraIf)
	}
	m.updateEff()
	m.keepBackup()
	out := m.out
	m.out = nil
	return out
}
