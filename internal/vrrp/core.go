package vrrp

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proctrack"
)

// Core is every VRRP decision of one node, as a value (etcd raft's
// RawNode is the model): all instances and their machines, sync groups,
// tracked objects (links, vrrp_script results, track files, external
// objects), socket demultiplexing by VRID, and reload. Step feeds it one
// Input, which carries its time, and returns the Effects to carry out in
// order. It never blocks, reads a clock, opens a socket or touches an
// interface: Node is its driver over real sockets and netlink; the tests
// drive it over a simulated network.
//
// Some effects ask a question the driver answers with an Input: EffListen
// is answered by one InSocket (the socket opened and joined, or why not).
// An instance starts only once its socket is answered, so that a socket
// that cannot open puts it straight into FAULT.
type Core struct {
	cfg      Config
	insts    map[string]*coreInst
	order    []string
	groups   map[string]*Group
	grpState map[string]State
	socks    map[SockKey]*coreSock
	links    map[string]LinkFacts
	// pendingLinks are link changes held back by interface_up_down_delays
	// until their time.
	pendingLinks map[string]pendingLink
	external     map[string]bool
	scripts      map[string]*coreScript
	files        map[string]*coreFile
	procs        map[string]*coreProc
	limiter      logLimiter
	timer        time.Time // the deadline last reported by EffTimer
	stopped      bool
	// resume: instances to resume rather than start (Input.Resume),
	// until they start; resuming is set while one resumes.
	resume   map[string]Resume
	resuming bool
	out      []Effect
	now      time.Time // time of the Input being stepped
}

// SockKey names a VRRP socket: one per interface and address family.
type SockKey struct {
	Iface string
	V6    bool
}

func (k SockKey) String() string {
	if k.V6 {
		return k.Iface + "/v6"
	}
	return k.Iface
}

type coreSock struct {
	users       int
	unknownVRID uint64
}

type coreInst struct {
	cfg     InstanceConfig
	m       *Machine
	key     SockKey
	src     netip.Addr
	ownSrc  bool // src configured (not the interface's address)
	group   string
	vips    []VIP // VIPs and excluded VIPs, Dev filled in
	delta   int
	faults  []string
	sockErr string     // the socket could not be opened or joined
	waiting bool       // an EffListen is not answered yet
	joined  netip.Addr // the multicast group last asked for

	prioChanges uint64

	hmac hmacState // auth_hmac sequence and replay state
	// oldSum: unicast VRRPv3 IPv4 adverts are summed with the multicast
	// group as destination (old_unicast_checksum, or a peer heard using
	// that sum).
	oldSum bool
}

type coreScript struct {
	cfg     ScriptConfig
	tracker *ScriptTracker
	changed time.Time
}

type coreFile struct {
	cfg   TrackFileConfig
	value int
}

// LinkFacts is what the driver knows of an interface: its state and its
// primary addresses (IPv4, and IPv6 link-local), which become an
// instance's advert source unless one is configured.
type LinkFacts struct {
	Name  string
	Up    bool
	Gone  bool // deleted
	Addr4 netip.Addr
	Addr6 netip.Addr
	// Addrs are all the interface's addresses, for track_src_ip.
	Addrs []netip.Addr
}

// InputKind says what happened.
type InputKind uint8

// Inputs.
const (
	// InReload moves to Config (already validated; the first one starts
	// the node). Links are the facts of the interfaces the configuration
	// names (Interfaces); Files the values of its track files.
	InReload InputKind = iota + 1
	// InTick: time is Now; due timers fire.
	InTick
	// InAdvert: Packet arrived on socket Sock.
	InAdvert
	// InLink: an interface changed (Link).
	InLink
	// InSocket answers EffListen for Sock and Group: Err is empty when
	// the socket is open and joined.
	InSocket
	// InScript: vrrp_script Name ran; OK is its result, Detail why.
	InScript
	// InFile: track file Name now reads Value.
	InFile
	// InExternal: external tracked object Name is Up or not (SetTrack).
	InExternal
	// InProcess: the process monitor reports vrrp_track_process Name:
	// Value processes counted, its quorum Up.
	InProcess
	// InAddrs: the addresses of interface Link.Name are now Link.Addrs
	// (for track_src_ip; the driver need send it only for interfaces of
	// instances that track their source address).
	InAddrs
	// InStop: stop every instance (a master resigns with priority 0) and
	// remove every VIP.
	InStop
	// InDetach: stop without a word to the network (no priority 0, VIPs
	// kept): another process resumes the instances (vipctl upgrade).
	InDetach
)

// Input is one event for Core.Step.
type Input struct {
	Kind   InputKind
	Now    time.Time
	Config Config
	Links  []LinkFacts
	Files  map[string]int
	Sock   SockKey
	Packet netif.Received
	Link   LinkFacts
	Group  netip.Addr
	Err    string
	Name   string
	OK     bool
	Detail string
	Value  int
	Up     bool
	// Resume, with the first InReload, are the states of instances
	// another process handed over (vipctl upgrade), by name: they
	// resume rather than start.
	Resume map[string]Resume
}

// EffectKind says what an Effect asks the driver to do.
type EffectKind uint8

// Effects.
const (
	// EffLog: log Msg at Level.
	EffLog EffectKind = iota + 1
	// EffSend: send Payload from Src to Dst with TTL on socket Sock.
	// Priority is the advert's (a failure of a priority 0 advert on a
	// link that is down is expected).
	EffSend
	// EffAddVIP: configure VIP.
	EffAddVIP
	// EffRemoveVIP: remove VIP; Stale: even if this process did not add
	// it (at start), logging when it was there.
	EffRemoveVIP
	// EffGARP: send Count gratuitous ARPs / unsolicited NAs for VIP.
	EffGARP
	// EffNotify: deliver Notification (scripts, SMTP, data plane).
	EffNotify
	// EffListen: open socket Sock if it is not, and join Group if valid;
	// answer with one InSocket.
	EffListen
	// EffUnlisten: close socket Sock.
	EffUnlisten
	// EffRunScript: (re)start running Script; its results come back as
	// InScript.
	EffRunScript
	// EffStopScript: stop running script Name.
	EffStopScript
	// EffWatchFile: watch File; changes come back as InFile.
	EffWatchFile
	// EffStopFile: stop watching file Name.
	EffStopFile
	// EffTrackProcesses: monitor exactly Processes (none: stop
	// monitoring); the first scan's quorums and later changes come back
	// as InProcess.
	EffTrackProcesses
	// EffTimer: step an InTick at At (zero: no timer). It replaces the
	// previous timer.
	EffTimer
	// EffAddVMAC: create (or take over) the macvlan VMAC and bring it up
	// (use_vmac); it stays up whatever the instance's state, as in
	// keepalived: only the VIPs move. It comes before the instance's
	// EffListen, which needs it.
	EffAddVMAC
	// EffRemoveVMAC: delete the macvlan Name, after the instance has
	// resigned and closed its socket on it.
	EffRemoveVMAC
)

// Effect is one thing the driver must do, in order.
type Effect struct {
	Kind         EffectKind
	Instance     string
	Level        slog.Level
	Msg          string
	Sock         SockKey
	Src, Dst     netip.Addr
	TTL          int
	Payload      []byte
	Priority     uint8
	VIP          VIP
	Stale        bool
	Count        int
	Notification Notification
	Group        netip.Addr
	Script       ScriptConfig
	File         TrackFileConfig
	Processes    []proctrack.Spec
	Name         string
	At           time.Time
	VMAC         netif.VMAC
}

// NewCore returns an empty core; its first InReload starts it.
func NewCore() *Core {
	return &Core{
		insts: map[string]*coreInst{}, groups: map[string]*Group{}, grpState: map[string]State{},
		socks: map[SockKey]*coreSock{}, links: map[string]LinkFacts{}, external: map[string]bool{},
		scripts: map[string]*coreScript{}, files: map[string]*coreFile{}, procs: map[string]*coreProc{}, limiter: logLimiter{},
	}
}

// Step processes one input and returns the effects, in order.
func (c *Core) Step(in Input) []Effect {
	c.out = nil
	c.now = in.Now
	if h := handlers[in.Kind]; h != nil && !c.stopped {
		h(c, in)
	}
	if dl := c.Deadline(); !dl.Equal(c.timer) {
		c.timer = dl
		c.emit(Effect{Kind: EffTimer, At: dl})
	}
	out := c.out
	c.out = nil
	return out
}

// handlers are Step's, one per kind of input.
var handlers = map[InputKind]func(*Core, Input){
	InReload:   (*Core).reload,
	InTick:     func(c *Core, _ Input) { c.tick() },
	InAdvert:   func(c *Core, in Input) { c.receive(in.Sock, in.Packet) },
	InLink:     func(c *Core, in Input) { c.linkChanged(in.Link) },
	InSocket:   (*Core).socketAnswer,
	InScript:   func(c *Core, in Input) { c.scriptResult(in.Name, in.OK, in.Detail) },
	InFile:     func(c *Core, in Input) { c.fileValue(in.Name, in.Value) },
	InExternal: (*Core).setExternal,
	InProcess:  func(c *Core, in Input) { c.processChanged(in.Name, in.Up, in.Value) },
	InAddrs:    func(c *Core, in Input) { c.addrsChanged(in.Link) },
	InStop:     func(c *Core, _ Input) { c.stop() },
	InDetach:   func(c *Core, _ Input) { c.detach() },
}

// Deadline returns when the core next needs an InTick (zero: never).
func (c *Core) Deadline() time.Time {
	var next time.Time
	for _, in := range c.insts {
		if dl := in.m.Deadline(); !dl.IsZero() && (next.IsZero() || dl.Before(next)) {
			next = dl
		}
	}
	for _, p := range c.pendingLinks {
		if next.IsZero() || p.at.Before(next) {
			next = p.at
		}
	}
	return next
}

// Interfaces returns the interfaces cfg names (instances' and tracked
// ones): the driver gives their facts with InReload.
func Interfaces(cfg Config) []string {
	var out []string
	add := func(name string) {
		if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, in := range cfg.Instances {
		add(in.Interface)
		for _, r := range in.TrackInterfaces {
			add(r.Name)
		}
	}
	for _, g := range cfg.Groups {
		for _, r := range g.TrackInterfaces {
			add(r.Name)
		}
	}
	return out
}

// Uses says whether the running configuration names the interface.
func (c *Core) Uses(iface string) bool { return slices.Contains(Interfaces(c.cfg), iface) }

func (c *Core) emit(e Effect) { c.out = append(c.out, e) }

func (c *Core) logf(format string, args ...any) {
	c.emit(Effect{Kind: EffLog, Level: slog.LevelInfo, Msg: fmt.Sprintf(format, args...)})
}

func (c *Core) errorf(format string, args ...any) {
	c.emit(Effect{Kind: EffLog, Level: slog.LevelError, Msg: fmt.Sprintf(format, args...)})
}

// logLimited logs msg unless a message with the same key was logged in
// the last 10 s (messages caused by other hosts' packets: a flood must
// not fill the disk); the next one logged says how many were suppressed.
func (c *Core) logLimited(key, msg string) {
	if msg, ok := c.limiter.pass(key, msg, c.now); ok {
		c.logf("%s", msg)
	}
}

// logLimiter lets one message per key through every 10 s.
type logLimiter map[string]*limit

type limit struct {
	last       time.Time
	suppressed int
}

func (l logLimiter) pass(key, msg string, now time.Time) (string, bool) {
	x := l[key]
	if x != nil && now.Sub(x.last) < 10*time.Second {
		x.suppressed++
		return "", false
	}
	if x == nil {
		x = &limit{}
		l[key] = x
	}
	if x.suppressed > 0 {
		msg = fmt.Sprintf("%s (%d similar suppressed)", msg, x.suppressed)
	}
	x.last, x.suppressed = now, 0
	return msg, true
}

// reload moves from the running configuration to in.Config without
// disturbing what did not change: an instance with the same name,
// interface, VRID, version, family and unicast/multicast mode keeps its
// state (no VIP flap, no extra GARP); its other settings change in place.
func (c *Core) reload(in Input) {
	cfg := in.Config
	if in.Resume != nil {
		c.resume = maps.Clone(in.Resume)
	}
	// The link watch is the authority on states it reported (with its
	// log lines); the facts fill in the rest and the addresses.
	for _, l := range in.Links {
		if old, ok := c.links[l.Name]; ok {
			old.Addr4, old.Addr6, old.Addrs = l.Addr4, l.Addr6, l.Addrs
			l = old
		}
		c.links[l.Name] = l
	}
	newInst := map[string]InstanceConfig{}
	for _, ic := range cfg.Instances {
		newInst[ic.Name] = ic
	}
	// fifo_write_vrrp_states_on_reload: what keeps its state through
	// the reload repeats it (below); what changes notifies as usual.
	type kept struct {
		ci *coreInst
		st State
	}
	var before map[string]kept
	var grpBefore map[string]State
	if cfg.FIFOStatesOnReload {
		before = map[string]kept{}
		for name, ci := range c.insts {
			before[name] = kept{ci, ci.m.State()}
		}
		grpBefore = maps.Clone(c.grpState)
	}
	// Removed or replaced instances stop first, releasing their VIPs.
	for _, name := range slices.Clone(c.order) {
		ci := c.insts[name]
		ic, ok := newInst[name]
		if !ok || ic.identity() != ci.cfg.identity() {
			c.removeInstance(ci)
		}
	}
	c.cfg = cfg
	// Groups are rebuilt over the machines (bookkeeping, no state change).
	for _, ci := range c.insts {
		ci.m.group = nil
		ci.group = ""
	}
	for _, name := range c.order {
		if ic, ok := newInst[name]; ok {
			c.updateInstance(c.insts[name], ic)
		}
	}
	for _, ic := range cfg.Instances {
		if _, ok := c.insts[ic.Name]; !ok {
			c.addInstance(ic)
		}
	}
	c.order = c.order[:0]
	for _, ic := range cfg.Instances {
		c.order = append(c.order, ic.Name)
	}
	c.groups = map[string]*Group{}
	for _, gc := range cfg.Groups {
		var ms []*Machine
		for _, name := range gc.Instances {
			if ci := c.insts[name]; ci != nil {
				ms = append(ms, ci.m)
				ci.group = gc.Name
			}
		}
		g, err := NewGroup(gc.Name, ms...)
		if err != nil {
			c.errorf("%v", err)
			continue
		}
		c.groups[gc.Name] = g
		if _, ok := c.grpState[gc.Name]; !ok {
			c.grpState[gc.Name] = g.State()
		}
	}
	for name := range c.grpState {
		if c.groups[name] == nil {
			delete(c.grpState, name)
		}
	}
	for _, name := range c.order {
		c.exec(c.insts[name].m.Regroup(c.now))
	}
	c.syncTracked(cfg, in.Files)
	c.syncProcesses(cfg)
	// Start new instances now that groups and tracking exist.
	for _, name := range c.order {
		c.ready(c.insts[name])
	}
	if !cfg.FIFOStatesOnReload {
		return
	}
	for _, gc := range cfg.Groups {
		st, ok := c.grpState[gc.Name]
		if old, had := grpBefore[gc.Name]; ok && had && old == st && st != StateInit {
			c.emit(Effect{Kind: EffNotify, Notification: Notification{Time: c.now, Type: "GROUP", Name: gc.Name,
				State: st.String(), Prev: st.String(), Reload: true}})
		}
	}
	for _, name := range c.order {
		ci := c.insts[name]
		if b, ok := before[name]; ok && b.ci == ci && b.st == ci.m.State() && b.st != StateInit {
			n := c.notification(ci, b.st.String(), b.st.String())
			n.Reload = true
			c.emit(Effect{Kind: EffNotify, Instance: name, Notification: n})
		}
	}
}

// ready retracks an instance whose socket is answered and starts it if
// it is new.
func (c *Core) ready(ci *coreInst) {
	if ci.waiting {
		return
	}
	c.retrack(ci)
	if ci.m.State() != StateInit {
		return
	}
	if r, ok := c.resume[ci.cfg.Name]; ok {
		delete(c.resume, ci.cfg.Name)
		c.resuming = true
		c.step(ci, Event{Kind: EvResume, Resume: r})
		c.resuming = false
		return
	}
	c.step(ci, Event{Kind: EvStart})
}

func (c *Core) addInstance(ic InstanceConfig) {
	ci := &coreInst{cfg: ic, vips: instanceVIPs(ic), key: SockKey{ic.sockIface(), ic.family6()}}
	if ic.VMAC != nil {
		c.emit(Effect{Kind: EffAddVMAC, Instance: ic.Name, VMAC: ic.vmacLink()})
	}
	switch {
	case ic.UnicastSrcIP.IsValid():
		ci.src, ci.ownSrc = ic.UnicastSrcIP, true
	case ic.McastSrcIP.IsValid():
		ci.src, ci.ownSrc = ic.McastSrcIP, true
	default:
		ci.src = c.links[ic.Interface].addr(ci.key.V6)
	}
	ci.m = NewMachine(ic.machineConfig(), ci.src)
	c.insts[ic.Name] = ci
	c.order = append(c.order, ic.Name)
	s := c.socks[ci.key]
	if s == nil {
		s = &coreSock{}
		c.socks[ci.key] = s
	}
	s.users++
	c.listen(ci)
}

// listen asks the driver for the instance's socket (and its multicast
// group); the instance waits for the answer.
func (c *Core) listen(ci *coreInst) {
	ci.waiting = true
	ci.joined = c.joinGroup(ci)
	c.emit(Effect{Kind: EffListen, Instance: ci.cfg.Name, Sock: ci.key, Group: ci.joined})
}

// joinGroup is the multicast group the instance's socket must join
// (invalid for unicast instances).
func (c *Core) joinGroup(ci *coreInst) netip.Addr {
	if len(ci.cfg.UnicastPeers) > 0 {
		return netip.Addr{}
	}
	return c.instGroup(ci)
}

// instGroup is the multicast group a multicast instance advertises to
// and listens on: its mcast_dst_ip, else vrrp_mcast_group4/6.
func (c *Core) instGroup(ci *coreInst) netip.Addr {
	if g := ci.cfg.McastDstIP; g.IsValid() {
		return g
	}
	return c.mcastGroup(ci.key.V6)
}

func (c *Core) mcastGroup(v6 bool) netip.Addr {
	if v6 {
		if c.cfg.McastGroup6.IsValid() {
			return c.cfg.McastGroup6
		}
		return MulticastGroup6
	}
	if c.cfg.McastGroup4.IsValid() {
		return c.cfg.McastGroup4
	}
	return MulticastGroup4
}

func (c *Core) socketAnswer(in Input) {
	for _, name := range c.order {
		ci := c.insts[name]
		if !ci.waiting || ci.key != in.Sock || ci.joined != in.Group {
			continue
		}
		ci.waiting = false
		ci.sockErr = in.Err
		c.ready(ci)
	}
}

func instanceVIPs(ic InstanceConfig) []VIP {
	var out []VIP
	for _, v := range append(slices.Clone(ic.VIPs), ic.ExcludedVIPs...) {
		if v.Dev == "" {
			v.Dev = ic.vipDev()
		}
		out = append(out, v)
	}
	return out
}

func (c *Core) removeInstance(ci *coreInst) {
	if ci.m.State() != StateStop && ci.m.State() != StateInit {
		c.step(ci, Event{Kind: EvShutdown}) // a master removes its VIPs
	}
	if s := c.socks[ci.key]; s != nil {
		s.users--
		if s.users <= 0 {
			delete(c.socks, ci.key)
			c.emit(Effect{Kind: EffUnlisten, Sock: ci.key})
		}
	}
	if ci.cfg.VMAC != nil {
		c.emit(Effect{Kind: EffRemoveVMAC, Instance: ci.cfg.Name, Name: ci.cfg.VMAC.Name})
	}
	delete(c.insts, ci.cfg.Name)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == ci.cfg.Name })
}

// updateInstance applies a new configuration to an instance of the same
// identity.
func (c *Core) updateInstance(ci *coreInst, ic InstanceConfig) {
	oldVIPs := ci.vips
	ci.cfg = ic
	ci.vips = instanceVIPs(ic)
	if !ci.ownSrc || (!ic.UnicastSrcIP.IsValid() && !ic.McastSrcIP.IsValid()) {
		ci.ownSrc = false
		if ic.McastSrcIP.IsValid() {
			ci.src, ci.ownSrc = ic.McastSrcIP, true
		} else if a := c.links[ic.Interface].addr(ci.key.V6); a.IsValid() {
			ci.src = a
		}
	} else if ic.McastSrcIP.IsValid() {
		ci.src = ic.McastSrcIP
	}
	ci.m.SetAddr(ci.src)
	c.exec(ci.m.Reconfigure(c.now, ic.machineConfig()))
	if c.joinGroup(ci) != ci.joined {
		c.listen(ci) // vrrp_mcast_group changed
	}
	if ci.m.State() != StateMaster {
		return
	}
	// A master moves to the new address set: only the difference.
	key := func(v VIP) string { return v.Prefix.Addr().String() + "%" + v.Dev }
	newSet := map[string]bool{}
	for _, v := range ci.vips {
		newSet[key(v)] = true
	}
	oldSet := map[string]bool{}
	for _, v := range oldVIPs {
		oldSet[key(v)] = true
		if !newSet[key(v)] {
			c.emit(Effect{Kind: EffRemoveVIP, Instance: ci.cfg.Name, VIP: v})
		}
	}
	for _, v := range ci.vips {
		if !oldSet[key(v)] {
			c.emit(Effect{Kind: EffAddVIP, Instance: ci.cfg.Name, VIP: v})
			c.announce(ci, v, ci.m.Config().GARPMasterRepeat)
		}
	}
}

// step feeds an event to an instance's machine and turns its actions
// into effects.
func (c *Core) step(ci *coreInst, ev Event) {
	ev.Now = c.now
	c.exec(ci.m.Step(ev))
}

// exec turns a machine's actions (its own and, through its sync group,
// the other members') into effects, then notifies the groups whose state
// changed.
func (c *Core) exec(actions []Action) {
	var touched []string
	for _, a := range actions {
		ci := c.insts[a.Instance]
		if ci == nil {
			continue
		}
		if ci.group != "" && !slices.Contains(touched, ci.group) {
			touched = append(touched, ci.group)
		}
		name := ci.cfg.Name
		switch a.Kind {
		case ActLog:
			if a.Key != "" {
				c.logLimited(a.Key, a.Msg)
			} else {
				c.logf("%s", a.Msg)
			}
		case ActSendAdvert:
			c.sendAdvert(ci, a.Priority)
		case ActAddVIPs:
			for _, v := range ci.vips {
				c.emit(Effect{Kind: EffAddVIP, Instance: name, VIP: v})
			}
		case ActRemoveVIPs:
			for _, v := range ci.vips {
				c.emit(Effect{Kind: EffRemoveVIP, Instance: name, VIP: v, Stale: a.Stale})
			}
		case ActSendGARP:
			for _, v := range ci.vips {
				c.announce(ci, v, a.Count)
			}
		case ActSendGARPExtra:
			// Not on the interface the adverts go out on (keepalived:
			// with vmac_xmit_base, the VMAC gets them too).
			done := map[string]bool{ci.cfg.sockIface(): true}
			if vm := ci.cfg.VMAC; vm != nil && vm.XmitBase {
				done = map[string]bool{}
			}
			for _, v := range ci.vips {
				if !done[v.Dev] {
					done[v.Dev] = true
					c.announce(ci, v, 1)
				}
			}
		case ActStateChange:
			n := c.notification(ci, a.To.String(), a.From.String())
			n.Resumed = a.Resumed
			c.emit(Effect{Kind: EffNotify, Instance: name, Notification: n})
		case ActMasterRxLowerPrio:
			c.notify(ci, "MASTER_RX_LOWER_PRI", "MASTER")
		case ActPriorityChange:
			// keepalived's notify_priority_changes: a FIFO event
			// MASTER_PRIORITY or BACKUP_PRIORITY with the new priority.
			ci.prioChanges++
			if ci.cfg.NotifyPriorityChanges {
				ev := "BACKUP_PRIORITY"
				if ci.m.State() == StateMaster {
					ev = "MASTER_PRIORITY"
				}
				n := c.notification(ci, ev, ci.m.State().String())
				n.Priority = a.PrioTo
				c.emit(Effect{Kind: EffNotify, Instance: name, Notification: n})
			}
		}
	}
	for _, name := range touched {
		g := c.groups[name]
		if g == nil {
			continue
		}
		if st := g.State(); st != c.grpState[name] {
			prev := c.grpState[name]
			c.grpState[name] = st
			if st != StateInit {
				c.emit(Effect{Kind: EffNotify, Notification: Notification{Time: c.now, Type: "GROUP", Name: name, State: st.String(), Prev: prev.String(), Resumed: c.resuming}})
			}
		}
	}
}

func (c *Core) notification(ci *coreInst, state, prev string) Notification {
	return Notification{Time: c.now, Type: "INSTANCE", Name: ci.cfg.Name, State: state, Prev: prev,
		Priority: ci.m.EffectivePriority(), VIPs: vipPrefixes(ci.vips)}
}

func (c *Core) notify(ci *coreInst, state, prev string) {
	c.emit(Effect{Kind: EffNotify, Instance: ci.cfg.Name, Notification: c.notification(ci, state, prev)})
}

func vipPrefixes(vs []VIP) []netip.Prefix {
	out := make([]netip.Prefix, len(vs))
	for i, v := range vs {
		out[i] = v.Prefix
	}
	return out
}

func (c *Core) tick() {
	for _, name := range sortedKeys(c.pendingLinks) {
		if p := c.pendingLinks[name]; !p.at.After(c.now) {
			delete(c.pendingLinks, name)
			c.applyLink(p.facts)
		}
	}
	for _, name := range c.order {
		ci := c.insts[name]
		if dl := ci.m.Deadline(); !dl.IsZero() && !dl.After(c.now) {
			c.step(ci, Event{Kind: EvTick})
		}
	}
}

// stop stops every instance (a master sends priority 0 and removes its
// VIPs), scripts, file watches and sockets.
func (c *Core) stop() {
	for _, name := range c.order {
		ci := c.insts[name]
		if ci.m.State() != StateStop && ci.m.State() != StateInit {
			c.step(ci, Event{Kind: EvShutdown})
		}
	}
	for _, name := range sortedKeys(c.scripts) {
		c.emit(Effect{Kind: EffStopScript, Name: name})
	}
	for _, name := range sortedKeys(c.files) {
		c.emit(Effect{Kind: EffStopFile, Name: name})
	}
	if len(c.procs) > 0 {
		c.emit(Effect{Kind: EffTrackProcesses})
	}
	keys := slices.Collect(maps.Keys(c.socks))
	slices.SortFunc(keys, func(a, b SockKey) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		c.emit(Effect{Kind: EffUnlisten, Sock: k})
	}
	for _, name := range c.order {
		if ci := c.insts[name]; ci.cfg.VMAC != nil {
			c.emit(Effect{Kind: EffRemoveVMAC, Instance: name, Name: ci.cfg.VMAC.Name})
		}
	}
	c.stopped = true
}

// sortedKeys returns a map's keys in order, for effects in a stable
// order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
