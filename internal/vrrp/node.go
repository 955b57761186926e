package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/netif"
)

// Notification is a state change for notify scripts, SMTP alerts and the
// data plane: keepalived's notify arguments (TYPE NAME STATE PRIORITY).
type Notification struct {
	Time time.Time
	Type string // "INSTANCE" or "GROUP"
	Name string
	// State is MASTER, BACKUP, FAULT or STOP, or MASTER_RX_LOWER_PRI
	// (keepalived's notify_master_rx_lower_pri event, instances only).
	State    string
	Prev     string
	Priority int // effective priority
	// VIPs of the instance (for the data plane).
	VIPs []netip.Prefix
}

// Notifier receives notifications in the order they happen. Notify is
// called from the VRRP goroutine and must not block: queue the work.
type Notifier interface {
	Notify(Notification)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Notification)

// Notify calls f.
func (f NotifierFunc) Notify(n Notification) { f(n) }

// Deps are the node's collaborators.
type Deps struct {
	Logger   *slog.Logger // nil: slog.Default()
	Notifier Notifier     // nil: none
}

// Node runs a configuration's VRRP instances over real sockets and
// timers. All its state belongs to the goroutine of Run; the other
// methods send it requests.
type Node struct {
	log      *slog.Logger
	notifier Notifier
	cfg      Config
	inbox    chan func()   // work for Run's goroutine, with a wake-up on efd
	running  chan struct{} // closed when Run's loop runs
	done     chan struct{} // closed when Run returns
	efdMu    sync.Mutex
	efd      int // eventfd that wakes the loop; -1 once closed

	// Owned by Run's goroutine.
	insts    map[string]*instance
	order    []string
	groups   map[string]*Group
	grpState map[string]State
	socks    map[sockKey]*sock
	scripts  map[string]*scriptRunner
	files    map[string]*fileRunner
	links    map[string]netif.LinkState
	external map[string]bool
	addrs    *netif.Addrs
	ann      *netif.Announcer
	limiter  map[string]*limit
	ctx      context.Context
	readBuf  []byte
	stopping bool
}

type sockKey struct {
	iface string
	v6    bool
}

type sock struct {
	key         sockKey
	conn        *netif.VRRPConn
	joined      map[netip.Addr]bool
	users       int
	unknownVRID uint64
}

type instance struct {
	cfg     InstanceConfig
	m       *Machine
	s       *sock
	src     netip.Addr
	ownSrc  bool // src configured (not the interface's address)
	group   string
	vips    []VIP // VIPs and excluded VIPs, Dev filled in
	delta   int
	faults  []string
	sockErr string
}

type limit struct {
	last       time.Time
	suppressed int
}

// New checks the configuration and returns a node ready to Run.
func New(cfg Config, deps Deps) (*Node, error) {
	cfg = cfg.clone()
	warnings, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	n := &Node{
		log: deps.Logger, notifier: deps.Notifier, cfg: cfg,
		inbox: make(chan func(), 1024), running: make(chan struct{}), done: make(chan struct{}), efd: -1,
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	for _, w := range warnings {
		n.log.Warn(w)
	}
	return n, nil
}

// Reload applies a changed configuration without disturbing what did not
// change: an instance with the same name, interface, VRID, version,
// family and unicast/multicast mode keeps its state (no VIP flap, no
// extra GARP); its other settings change in place. An invalid
// configuration is refused and the running one kept.
func (n *Node) Reload(cfg Config) error {
	cfg = cfg.clone()
	warnings, err := cfg.Validate()
	if err != nil {
		return err
	}
	return n.call(func() {
		for _, w := range warnings {
			n.log.Warn(w)
		}
		old := n.cfg
		n.cfg = cfg
		n.apply(old, cfg)
	})
}

// SetTrack reports the state of an object instances list in
// track_external (e.g. a virtual server's quorum): up or down.
func (n *Node) SetTrack(name string, up bool) error {
	return n.call(func() {
		if old, ok := n.external[name]; ok && old == up {
			return
		}
		n.external[name] = up
		n.retrackAll()
	})
}

// apply moves from configuration old to cfg.
func (n *Node) apply(old, cfg Config) {
	n.ann.Interval = cfg.GARPInterval
	now := time.Now()
	newInst := map[string]InstanceConfig{}
	for _, ic := range cfg.Instances {
		newInst[ic.Name] = ic
	}
	// Removed or replaced instances stop first, releasing their VIPs.
	for _, name := range slices.Clone(n.order) {
		in := n.insts[name]
		ic, ok := newInst[name]
		if !ok || ic.identity() != in.cfg.identity() {
			n.removeInstance(in, now)
		}
	}
	// Groups are rebuilt over the machines (bookkeeping, no state change).
	for _, in := range n.insts {
		in.m.group = nil
		in.group = ""
	}
	for _, name := range n.order {
		if ic, ok := newInst[name]; ok {
			n.updateInstance(n.insts[name], ic, now)
		}
	}
	for _, ic := range cfg.Instances {
		if _, ok := n.insts[ic.Name]; !ok {
			n.addInstance(ic)
		}
	}
	n.order = n.order[:0]
	for _, ic := range cfg.Instances {
		n.order = append(n.order, ic.Name)
	}
	n.groups = map[string]*Group{}
	for _, gc := range cfg.Groups {
		var ms []*Machine
		for _, name := range gc.Instances {
			if in := n.insts[name]; in != nil {
				ms = append(ms, in.m)
				in.group = gc.Name
			}
		}
		g, err := NewGroup(gc.Name, ms...)
		if err != nil {
			n.log.Error(err.Error())
			continue
		}
		n.groups[gc.Name] = g
		if _, ok := n.grpState[gc.Name]; !ok {
			n.grpState[gc.Name] = g.State()
		}
	}
	n.syncRunners(cfg)
	// Start new instances now that groups and tracking exist.
	for _, name := range n.order {
		in := n.insts[name]
		n.retrack(in, now)
		if in.m.State() == StateInit {
			n.step(in, Event{Kind: EvStart, Now: now})
		}
	}
}

func (n *Node) addInstance(ic InstanceConfig) {
	in := &instance{cfg: ic}
	in.vips = instanceVIPs(ic)
	v6 := ic.family6()
	switch {
	case ic.UnicastSrcIP.IsValid():
		in.src, in.ownSrc = ic.UnicastSrcIP, true
	case ic.McastSrcIP.IsValid():
		in.src, in.ownSrc = ic.McastSrcIP, true
	default:
		in.src, _ = netif.PrimaryAddr(ic.Interface, v6)
	}
	in.m = NewMachine(ic.machineConfig(), in.src)
	n.insts[ic.Name] = in
	n.order = append(n.order, ic.Name)
	if st, err := netif.LinkUp(ic.Interface); err == nil {
		n.links[ic.Interface] = st
	}
	n.openSock(in)
}

func instanceVIPs(ic InstanceConfig) []VIP {
	var out []VIP
	for _, v := range append(slices.Clone(ic.VIPs), ic.ExcludedVIPs...) {
		if v.Dev == "" {
			v.Dev = ic.Interface
		}
		out = append(out, v)
	}
	return out
}

// openSock attaches the instance to the socket of its interface and
// family, opening it if needed.
func (n *Node) openSock(in *instance) {
	key := sockKey{in.cfg.Interface, in.cfg.family6()}
	s := n.socks[key]
	if s == nil {
		conn, err := netif.ListenVRRP(key.iface, key.v6)
		if err != nil {
			in.sockErr = err.Error()
			return
		}
		s = &sock{key: key, conn: conn, joined: map[netip.Addr]bool{}}
		n.socks[key] = s
	}
	if len(in.cfg.UnicastPeers) == 0 {
		g := n.mcastGroup(key.v6)
		if !s.joined[g] {
			if err := s.conn.Join(g); err != nil {
				in.sockErr = err.Error()
				if s.users == 0 {
					s.conn.Close()
					delete(n.socks, key)
				}
				return
			}
			s.joined[g] = true
		}
	}
	in.sockErr = ""
	in.s = s
	s.users++
}

func (n *Node) mcastGroup(v6 bool) netip.Addr {
	if v6 {
		if n.cfg.McastGroup6.IsValid() {
			return n.cfg.McastGroup6
		}
		return MulticastGroup6
	}
	if n.cfg.McastGroup4.IsValid() {
		return n.cfg.McastGroup4
	}
	return MulticastGroup4
}

func (n *Node) releaseSock(in *instance) {
	s := in.s
	in.s = nil
	if s == nil {
		return
	}
	s.users--
	if s.users <= 0 {
		s.conn.Close()
		delete(n.socks, s.key)
	}
}

func (n *Node) removeInstance(in *instance, now time.Time) {
	if in.m.State() != StateStop && in.m.State() != StateInit {
		n.step(in, Event{Kind: EvShutdown, Now: now})
	}
	for _, v := range in.vips {
		if err := n.addrs.Remove(v); err != nil {
			n.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		}
	}
	n.releaseSock(in)
	delete(n.insts, in.cfg.Name)
	n.order = slices.DeleteFunc(n.order, func(s string) bool { return s == in.cfg.Name })
}

// updateInstance applies a new configuration to an instance of the same
// identity.
func (n *Node) updateInstance(in *instance, ic InstanceConfig, now time.Time) {
	oldVIPs := in.vips
	in.cfg = ic
	in.vips = instanceVIPs(ic)
	if !in.ownSrc || (!ic.UnicastSrcIP.IsValid() && !ic.McastSrcIP.IsValid()) {
		in.ownSrc = false
		if ic.McastSrcIP.IsValid() {
			in.src, in.ownSrc = ic.McastSrcIP, true
		}
	} else if ic.McastSrcIP.IsValid() {
		in.src = ic.McastSrcIP
	}
	in.m.SetAddr(in.src)
	n.exec(in.m.Reconfigure(now, ic.machineConfig()))
	if in.m.State() != StateMaster {
		return
	}
	// A master moves to the new address set: only the difference.
	key := func(v VIP) string { return v.Prefix.Addr().String() + "%" + v.Dev }
	newSet := map[string]bool{}
	for _, v := range in.vips {
		newSet[key(v)] = true
	}
	oldSet := map[string]bool{}
	for _, v := range oldVIPs {
		oldSet[key(v)] = true
		if !newSet[key(v)] {
			if err := n.addrs.Remove(v); err != nil {
				n.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			}
		}
	}
	for _, v := range in.vips {
		if !oldSet[key(v)] {
			if err := n.addrs.Add(v); err != nil {
				n.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
				continue
			}
			n.announce(in, v, in.m.Config().GARPMasterRepeat)
		}
	}
}

// step feeds an event to an instance and carries out the actions.
func (n *Node) step(in *instance, ev Event) {
	n.exec(in.m.Step(ev))
}

func (n *Node) exec(actions []Action) {
	touched := map[string]bool{}
	for _, a := range actions {
		in := n.insts[a.Instance]
		if in == nil {
			continue
		}
		if in.group != "" {
			touched[in.group] = true
		}
		switch a.Kind {
		case ActLog:
			n.logMsg(a.Key, a.Msg)
		case ActSendAdvert:
			n.sendAdvert(in, a.Priority)
		case ActAddVIPs:
			for _, v := range in.vips {
				if err := n.addrs.Add(v); err != nil {
					n.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
				}
			}
		case ActRemoveVIPs:
			for _, v := range in.vips {
				var err error
				if a.Stale {
					var removed bool
					removed, err = n.addrs.RemoveStale(v)
					if removed {
						n.log.Info(fmt.Sprintf("(%s) removed stale VIP %v from %s", in.cfg.Name, v.Prefix.Addr(), v.Dev))
					}
				} else {
					err = n.addrs.Remove(v)
				}
				if err != nil {
					n.log.Error(fmt.Sprintf("(%s) %v", in.cfg.Name, err))
				}
			}
		case ActSendGARP:
			for _, v := range in.vips {
				n.announce(in, v, a.Count)
			}
		case ActStateChange:
			n.notify(Notification{Time: time.Now(), Type: "INSTANCE", Name: in.cfg.Name, State: a.To.String(),
				Prev: a.From.String(), Priority: in.m.EffectivePriority(), VIPs: vipPrefixes(in.vips)})
		case ActMasterRxLowerPrio:
			n.notify(Notification{Time: time.Now(), Type: "INSTANCE", Name: in.cfg.Name, State: "MASTER_RX_LOWER_PRI",
				Prev: "MASTER", Priority: in.m.EffectivePriority(), VIPs: vipPrefixes(in.vips)})
		case ActPriorityChange:
		}
	}
	for name := range touched {
		g := n.groups[name]
		if g == nil {
			continue
		}
		if st := g.State(); st != n.grpState[name] {
			prev := n.grpState[name]
			n.grpState[name] = st
			if st != StateInit {
				n.notify(Notification{Time: time.Now(), Type: "GROUP", Name: name, State: st.String(), Prev: prev.String()})
			}
		}
	}
}

func vipPrefixes(vs []VIP) []netip.Prefix {
	out := make([]netip.Prefix, len(vs))
	for i, v := range vs {
		out[i] = v.Prefix
	}
	return out
}

func (n *Node) notify(x Notification) {
	if n.notifier != nil {
		n.notifier.Notify(x)
	}
}

func (n *Node) announce(in *instance, v VIP, count int) {
	if count <= 0 {
		return
	}
	kind := "gratuitous ARPs"
	if v.Prefix.Addr().Is6() {
		kind = "Unsolicited Neighbour Adverts"
	}
	n.log.Info(fmt.Sprintf("(%s) Sending/queueing %s on %s for %s", in.cfg.Name, kind, v.Dev, v.Prefix.Addr()))
	if err := n.ann.Announce(v.Dev, v.Prefix.Addr(), count); err != nil {
		n.logMsg("garp:"+in.cfg.Name, fmt.Sprintf("(%s) %v", in.cfg.Name, err))
	}
}

func (n *Node) sendAdvert(in *instance, prio uint8) {
	if in.s == nil || !in.src.IsValid() {
		return
	}
	mc := in.m.Config()
	iv, err := IntervalField(mc.Version, mc.AdvertInt)
	if err != nil {
		n.logMsg("send:"+in.cfg.Name, fmt.Sprintf("(%s) %v", in.cfg.Name, err))
		return
	}
	p := Packet{Version: mc.Version, Type: TypeAdvertisement, VRID: mc.VRID, Priority: prio, AdvertInt: iv,
		AuthType: mc.AuthType, AuthData: mc.AuthPass, Addrs: mc.VIPs}
	dsts := in.cfg.UnicastPeers
	ttl := 255
	if len(dsts) == 0 {
		dsts = []netip.Addr{n.mcastGroup(in.cfg.family6())}
	} else if in.cfg.UnicastTTL > 0 {
		ttl = in.cfg.UnicastTTL
	}
	for _, dst := range dsts {
		b, err := p.Marshal(in.src, dst, EncodeOptions{V3ChecksumAsV2: in.cfg.V3ChecksumAsV2})
		if err != nil {
			n.logMsg("send:"+in.cfg.Name, fmt.Sprintf("(%s) %v", in.cfg.Name, err))
			return
		}
		if err := in.s.conn.Write(b, in.src, dst, ttl); err != nil {
			// A priority 0 advert on a link that is down is expected to fail.
			if prio != 0 {
				n.logMsg("send:"+in.cfg.Name, fmt.Sprintf("(%s): send advert error %v", in.cfg.Name, err))
			}
		}
	}
}

// receive decodes an advert and hands it to the instance with its VRID.
func (n *Node) receive(s *sock, r netif.Received) {
	if len(r.Payload) < 2 {
		s.unknownVRID++
		return
	}
	vrid := int(r.Payload[1])
	found := false
	for _, name := range n.order {
		in := n.insts[name]
		if in.s != s || in.cfg.VRID != vrid {
			continue
		}
		found = true
		if r.Src == in.src {
			in.m.CountDrop(DropOwnPacket)
			continue
		}
		opt := DecodeOptions{V3ChecksumAsV2: in.cfg.V3ChecksumAsV2, SkipChecksum: s.key.v6}
		p, err := Decode(r.Payload, r.Src, r.Dst, opt)
		if err != nil && len(in.cfg.UnicastPeers) > 0 && !s.key.v6 {
			// keepalived before 1.3.6 summed unicast VRRPv3 adverts with
			// the multicast group as destination; accept those too.
			if p2, err2 := Decode(r.Payload, r.Src, n.mcastGroup(false), opt); err2 == nil {
				p, err = p2, nil
			}
		}
		if err != nil {
			reason := DropLength
			var de *DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			in.m.CountDrop(reason)
			n.logMsg("drop:"+reason, fmt.Sprintf("(%s) dropping advert from %v: %v", in.cfg.Name, r.Src, err))
			continue
		}
		at := r.At
		if at.IsZero() || at.After(time.Now()) {
			at = time.Now()
		}
		n.step(in, Event{Kind: EvAdvert, Now: at, Packet: p, Src: r.Src, Dst: r.Dst, TTL: r.TTL})
	}
	if !found {
		s.unknownVRID++
		n.logMsg(fmt.Sprintf("vrid:%s:%d", s.key.iface, vrid),
			fmt.Sprintf("(%s) Unknown VRID(%d) received from %v. ignoring...", s.key.iface, vrid, r.Src))
	}
}

// logMsg logs at info level; messages with a key (caused by other hosts'
// packets) are logged at most once per 10 s per key, with a count of
// what was suppressed.
func (n *Node) logMsg(key, msg string) {
	if key == "" {
		n.log.Info(msg)
		return
	}
	l := n.limiter[key]
	now := time.Now()
	if l != nil && now.Sub(l.last) < 10*time.Second {
		l.suppressed++
		return
	}
	if l == nil {
		l = &limit{}
		n.limiter[key] = l
	}
	if l.suppressed > 0 {
		msg = fmt.Sprintf("%s (%d similar suppressed)", msg, l.suppressed)
	}
	l.last, l.suppressed = now, 0
	n.log.Info(msg)
}

func (n *Node) linkChanged(st netif.LinkState) {
	old, known := n.links[st.Name]
	n.links[st.Name] = st
	if known && old.Up == st.Up && old.Gone == st.Gone {
		return
	}
	used := false
	for _, in := range n.insts {
		if in.cfg.Interface == st.Name || slices.ContainsFunc(in.cfg.TrackInterfaces, func(r TrackRef) bool { return r.Name == st.Name }) {
			used = true
		}
	}
	if !used {
		for _, g := range n.cfg.Groups {
			if slices.ContainsFunc(g.TrackInterfaces, func(r TrackRef) bool { return r.Name == st.Name }) {
				used = true
			}
		}
	}
	if !used {
		return
	}
	if st.Up {
		n.log.Info(fmt.Sprintf("Netlink reports %s up", st.Name))
	} else {
		n.log.Info(fmt.Sprintf("Netlink reports %s down", st.Name))
	}
	now := time.Now()
	for _, name := range n.order {
		in := n.insts[name]
		if in.cfg.Interface == st.Name {
			if st.Up && !in.ownSrc {
				if a, err := netif.PrimaryAddr(in.cfg.Interface, in.cfg.family6()); err == nil && a != in.src {
					in.src = a
					in.m.SetAddr(a)
				}
			}
			if in.s == nil && !st.Gone {
				n.openSock(in)
			}
		}
	}
	for _, name := range n.order {
		n.retrack(n.insts[name], now)
	}
}

func (n *Node) retrackAll() {
	now := time.Now()
	for _, name := range n.order {
		n.retrack(n.insts[name], now)
	}
}

// retrack recomputes an instance's tracking and steps it if it changed.
func (n *Node) retrack(in *instance, now time.Time) {
	var items []Tracked
	linkUp := func(name string) bool {
		st, ok := n.links[name]
		return ok && st.Up && !st.Gone
	}
	if !in.cfg.DontTrackPrimary {
		items = append(items, Tracked{Kind: TrackInterface, Name: in.cfg.Interface, Known: true, Up: linkUp(in.cfg.Interface)})
	}
	addRefs := func(refs []TrackRef, kind TrackKind) {
		for _, r := range refs {
			t := Tracked{Kind: kind, Name: r.Name, Reverse: r.Reverse}
			switch kind {
			case TrackInterface:
				t.Known, t.Up = true, linkUp(r.Name)
				t.Weight = orDefault(r.Weight, 0)
			case TrackScript:
				sr := n.scripts[r.Name]
				if sr == nil {
					continue
				}
				t.Weight = orDefault(r.Weight, sr.cfg.Weight)
				if r.Weight == nil {
					t.Reverse = sr.cfg.Reverse
				}
				st := sr.tracker.State()
				t.Known, t.Up = st != ScriptInit, st == ScriptGood
			case TrackFile:
				fr := n.files[r.Name]
				if fr == nil {
					continue
				}
				t.Weight = orDefault(r.Weight, orDefault(fr.cfg.Weight, 1))
				if r.Weight == nil {
					t.Reverse = fr.cfg.Reverse
				}
				t.Known, t.Value = true, fr.value
			case TrackProcess:
				up, ok := n.external[r.Name]
				t.Weight = orDefault(r.Weight, 0)
				t.Known, t.Up = ok, up
			}
			items = append(items, t)
		}
	}
	addRefs(in.cfg.TrackInterfaces, TrackInterface)
	addRefs(in.cfg.TrackScripts, TrackScript)
	addRefs(in.cfg.TrackFiles, TrackFile)
	addRefs(in.cfg.TrackExternal, TrackProcess)
	for _, g := range n.cfg.Groups {
		if g.Name == in.group {
			addRefs(g.TrackInterfaces, TrackInterface)
			addRefs(g.TrackScripts, TrackScript)
			addRefs(g.TrackFiles, TrackFile)
		}
	}
	delta, faults := Evaluate(items)
	if in.sockErr != "" {
		faults = append(faults, in.sockErr)
	}
	if !in.src.IsValid() {
		fam := "IPv4"
		if in.cfg.family6() {
			fam = "IPv6 link-local"
		}
		faults = append(faults, fmt.Sprintf("no %s address for interface %s", fam, in.cfg.Interface))
	}
	if delta == in.delta && slices.Equal(faults, in.faults) && in.m.State() != StateInit {
		return
	}
	in.delta, in.faults = delta, faults
	n.step(in, Event{Kind: EvTrack, Now: now, Delta: delta, Faults: faults})
}

func (n *Node) shutdown() {
	now := time.Now()
	for _, name := range n.order {
		in := n.insts[name]
		if in.m.State() != StateStop && in.m.State() != StateInit {
			n.step(in, Event{Kind: EvShutdown, Now: now})
		}
	}
	if err := n.addrs.RemoveAll(); err != nil {
		n.log.Error(fmt.Sprintf("vrrp: %v", err))
	}
	for _, s := range n.socks {
		s.conn.Close()
	}
	for _, sr := range n.scripts {
		sr.stop()
	}
	for _, fr := range n.files {
		fr.stop()
	}
	n.ann.Close()
}

// Status is a snapshot of everything VRRP.
type Status struct {
	Instances []InstanceStatus `json:"instances"`
	Groups    []GroupStatus    `json:"groups,omitempty"`
	Scripts   []ScriptStatus   `json:"scripts,omitempty"`
	// UnknownVRID counts adverts with a VRID no instance has, per
	// interface (IPv6 sockets as "eth0/v6").
	UnknownVRID map[string]uint64 `json:"unknown_vrid,omitempty"`
}

// InstanceStatus is one instance's state and counters (the fields of
// api.Instance).
type InstanceStatus struct {
	Name              string        `json:"name"`
	Interface         string        `json:"interface"`
	VRID              int           `json:"vrid"`
	Version           int           `json:"version"`
	Family            string        `json:"family"`
	State             string        `json:"state"`
	Priority          int           `json:"priority"`
	EffectivePriority int           `json:"effective_priority"`
	AdvertInterval    time.Duration `json:"advert_interval"`
	MasterAddr        netip.Addr    `json:"master_addr"`
	MasterPriority    int           `json:"master_priority"`
	VIPs              []string      `json:"vips"`
	SyncGroup         string        `json:"sync_group,omitempty"`
	Transitions       uint64        `json:"transitions"`
	LastTransition    time.Time     `json:"last_transition"`
	FaultReasons      []string      `json:"fault_reasons,omitempty"`
	Stats             Stats         `json:"stats"`
}

// GroupStatus is a sync group's state.
type GroupStatus struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Instances []string `json:"instances"`
}

// ScriptStatus is a vrrp_script's state.
type ScriptStatus struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Weight     int       `json:"weight"`
	LastChange time.Time `json:"last_change"`
}

// Status returns a snapshot (empty when the node is not running).
func (n *Node) Status() Status {
	var st Status
	_ = n.call(func() {
		for _, name := range n.order {
			in := n.insts[name]
			m := in.m
			ma, mp := m.Master()
			tr, last := m.Transitions()
			fam := "inet"
			if in.cfg.family6() {
				fam = "inet6"
			}
			var vips []string
			for _, v := range in.vips {
				vips = append(vips, v.Prefix.String())
			}
			st.Instances = append(st.Instances, InstanceStatus{
				Name: name, Interface: in.cfg.Interface, VRID: in.cfg.VRID, Version: m.Config().Version, Family: fam,
				State: m.State().String(), Priority: int(m.Config().Priority), EffectivePriority: m.EffectivePriority(),
				AdvertInterval: m.Config().AdvertInt, MasterAddr: ma, MasterPriority: mp, VIPs: vips, SyncGroup: in.group,
				Transitions: tr, LastTransition: last, FaultReasons: m.Faults(), Stats: m.Stats(),
			})
		}
		for _, gc := range n.cfg.Groups {
			if g := n.groups[gc.Name]; g != nil {
				st.Groups = append(st.Groups, GroupStatus{Name: gc.Name, State: g.State().String(), Instances: slices.Clone(gc.Instances)})
			}
		}
		for _, sc := range n.cfg.Scripts {
			if sr := n.scripts[sc.Name]; sr != nil {
				st.Scripts = append(st.Scripts, ScriptStatus{Name: sc.Name, State: sr.tracker.State().String(), Weight: sc.Weight, LastChange: sr.changed})
			}
		}
		for k, s := range n.socks {
			if s.unknownVRID > 0 {
				if st.UnknownVRID == nil {
					st.UnknownVRID = map[string]uint64{}
				}
				name := k.iface
				if k.v6 {
					name += "/v6"
				}
				st.UnknownVRID[name] = s.unknownVRID
			}
		}
	})
	return st
}

// Wait blocks until Run has returned.
func (n *Node) Wait() { <-n.done }
