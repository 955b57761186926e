// Package xdp is the XDP data plane: LVS direct routing (DR) and
// tunnelling (TUN: IPIP, GUE) done by a BPF program in the network driver,
// for kernels without IPVS.
//
// A packet for a virtual service keeps its flow's real server through an
// LRU flow table (or its client's persistence template); a new flow gets
// the real server of its slot in the service's Maglev table (maglev.go),
// which every director computes identically from the same destinations.
// DR rewrites the frame's MAC addresses, TUN puts an outer header in
// front, and the frame leaves on the wire again (XDP_TX); the real server,
// which holds the VIP (`vipctl realserver up`), answers the client
// directly. See bpf/xdplb.c for the packet path.
//
// Apply resolves each real server's MAC from the neighbour table, writes
// the destinations, builds a new Maglev table for each changed service
// and swaps it in whole (map in map), then attaches the program to every
// interface a real server is reached through (attach.go; natively,
// generic XDP only as a logged fallback). Maps and attachments are pinned
// on bpffs (mounted if needed) and adopted by the next process, so a
// restart keeps open flows on their servers and a crash leaves the
// program forwarding until vipd is back. Close detaches the program and
// leaves the maps' pins. Counters and the flow table are read back in
// status.go.
package xdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/netif"
)

// Options configure a Dataplane.
type Options struct {
	// NetNS is the network namespace of the interfaces and the neighbour
	// table: a path or an `ip netns` name. Empty: the process's own.
	NetNS string
	// PinPath is the bpffs directory of the pinned maps; default
	// /sys/fs/bpf/vipd. Where the parent is not a bpffs, bpffs is mounted
	// on it (/sys/fs/bpf) first.
	PinPath string
	// Interfaces get the program besides those real servers are reached
	// through.
	Interfaces []string
	// Unpin removes the pinned maps at Close (tests); the daemon keeps
	// them so that the next start adopts the flow table.
	Unpin bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// noAttach keeps the program off every interface (tests that run it
	// with BPF_PROG_TEST_RUN).
	noAttach bool
	// resolve replaces the neighbour lookup (tests that run the program
	// with BPF_PROG_TEST_RUN have no neighbours).
	resolve func(netip.Addr) (hop, error)
}

// hop is how frames reach a real server: out of ifindex, from smac to
// dmac (the server's MAC, or the gateway's when gw is set); src is the
// director's address towards it (TUN's outer source), mtu the
// interface's.
type hop struct {
	ifindex    int
	smac, dmac net.HardwareAddr
	src        netip.Addr
	mtu        int
	gw         bool
}

// Dataplane runs DR and TUN virtual services in XDP. It implements
// dataplane.Dataplane; its methods are safe for concurrent use.
type Dataplane struct {
	opts Options
	log  *slog.Logger
	nl   *neigh

	mu      sync.Mutex
	objs    xdplbObjects
	inner   *ebpf.MapSpec
	links   map[int]link.Link // ifindex -> attachment
	svcs    map[lvs.ServiceKey]*svcState
	svcIDs  idPool
	destIDs idPool
	adopted map[adoptKey]uint32 // destinations found in the pinned maps
	last    []lvs.Service
	pending bool // a destination is unresolved: the refresher retries
	closed  bool

	stop chan struct{}
	done chan struct{}
}

type adoptKey struct {
	svc  uint32
	addr netip.AddrPort
}

type svcState struct {
	svc     lvs.Service
	id      uint32
	dests   map[netip.AddrPort]*destState
	table   string // fingerprint of the installed Maglev table
	written svcVal
	est     lvs.Estimator
}

type destState struct {
	idx, gen uint32
	hop      hop
	ok       bool // hop resolved at least once
	est      lvs.Estimator
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// New loads the BPF program and adopts (or creates) the pinned maps.
// Nothing is attached until Apply has a service.
func New(opts Options) (*Dataplane, error) {
	if opts.PinPath == "" {
		opts.PinPath = "/sys/fs/bpf/vipd"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	opts.NetNS = netif.NetnsPath(opts.NetNS)
	if err := ensureBPFFS(filepath.Dir(opts.PinPath), log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.PinPath, 0o700); err != nil {
		return nil, fmt.Errorf("xdp: pin directory: %w", err)
	}
	spec, err := loadXdplb()
	if err != nil {
		return nil, fmt.Errorf("xdp: %w", err)
	}
	d := &Dataplane{opts: opts, log: log, links: map[int]link.Link{}, svcs: map[lvs.ServiceKey]*svcState{},
		svcIDs: newIDPool(maxServices), destIDs: newIDPool(maxDestSlot), adopted: map[adoptKey]uint32{},
		stop: make(chan struct{}), done: make(chan struct{})}
	d.inner = spec.Maps["maglev"].InnerMap.Copy()
	if err := spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			err = fmt.Errorf("%+v", ve)
		}
		return nil, fmt.Errorf("xdp: loading the BPF program (pins in %s; remove them after a vipd upgrade that changed the maps): %w", opts.PinPath, err)
	}
	if opts.resolve == nil {
		if d.nl, err = newNeigh(opts.NetNS); err != nil {
			d.objs.Close()
			return nil, err
		}
		opts.resolve = d.nl.resolve
		d.opts.resolve = opts.resolve
	}
	if err := d.adopt(); err != nil {
		d.objs.Close()
		return nil, err
	}
	go d.refresh()
	return d, nil
}

// adopt reads the pinned maps a previous process left: service ids and
// destination slots stay what they were, so flows in the flow table keep
// pointing at their servers.
func (d *Dataplane) adopt() error {
	var k svcKey
	var v svcVal
	it := d.objs.Services.Iterate()
	n := 0
	for it.Next(&k, &v) {
		d.svcIDs.take(v.ID)
		n++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("xdp: reading pinned services: %w", err)
	}
	var dv destVal
	for i := uint32(0); i < maxDestSlot; i++ {
		if err := d.objs.Dests.Lookup(i, &dv); err != nil {
			return fmt.Errorf("xdp: reading pinned destinations: %w", err)
		}
		if dv.Live != 0 {
			d.destIDs.take(i)
			d.adopted[adoptKey{dv.Svc, addrPortOf(dv.Addr, dv.Port)}] = i
		}
	}
	if n > 0 {
		d.log.Info("xdp: adopted pinned maps", "services", n, "destinations", len(d.adopted), "pins", d.opts.PinPath)
	}
	return nil
}

// Check reports, without touching anything, what Apply would refuse in
// desired (dataplane.Check): the daemon and vipd -t run it on every
// virtual server.
func Check(desired []lvs.Service) error {
	var errs []error
	seen := map[lvs.ServiceKey]bool{}
	for _, s := range desired {
		if seen[s.Key] {
			errs = append(errs, fmt.Errorf("xdp: service %s: listed twice", s.Key))
			continue
		}
		seen[s.Key] = true
		if err := Validate(s); err != nil {
			errs = append(errs, fmt.Errorf("xdp: %w", err))
		}
	}
	if len(seen) > maxServices {
		errs = append(errs, fmt.Errorf("xdp: %d services, at most %d", len(seen), maxServices))
	}
	return errors.Join(errs...)
}

var _ dataplane.Check = Check

// Validate reports what the XDP data plane cannot run in s. Nothing is
// mapped silently onto something else (docs/dataplanes.md says why):
// NAT needs the replies back through the director, and only mh describes
// per-packet scheduling that every director shares.
func Validate(s lvs.Service) error {
	if s.Key.FWMark != 0 {
		return errors.New("fwmark services are not supported by the xdp data plane")
	}
	if s.Scheduler != "mh" {
		return fmt.Errorf("lvs_sched %s is not supported by the xdp data plane: it schedules each new flow from a Maglev table every director shares, which only mh describes (use lvs_sched mh, with mh-port to spread one client's connections)", s.Scheduler)
	}
	if s.ProxyProtocol != 0 {
		return errors.New("proxy_protocol needs the proxy data plane")
	}
	if s.Key.Proto != lvs.TCP && s.Key.Proto != lvs.UDP {
		return fmt.Errorf("protocol %s is not supported by the xdp data plane (TCP and UDP are)", s.Key.Proto)
	}
	if len(s.Destinations) > MaxDests {
		return fmt.Errorf("%d real servers; the xdp data plane takes at most %d per virtual server", len(s.Destinations), MaxDests)
	}
	for _, dst := range s.Destinations {
		switch {
		case dst.Forward == lvs.Route:
		case dst.Forward == lvs.Tunnel && dst.Tunnel == lvs.TunnelIPIP && dst.Addr.Addr().Is4():
		case dst.Forward == lvs.Tunnel && dst.Tunnel == lvs.TunnelGUE && dst.Addr.Addr().Is4() && dst.TunnelPort != 0 && dst.TunnelCsum == 0:
		case dst.Forward == lvs.Tunnel:
			return fmt.Errorf("real server %s: the xdp data plane tunnels IPv4 in IPIP, or in GUE with a port and without checksum options (not GRE, not IPv6); use the ipvs data plane", dst.Addr)
		default:
			return fmt.Errorf("real server %s: lvs_method %s is not supported by the xdp data plane (it forwards DR and TUN: the real servers answer the clients directly); run NAT with --dataplane proxy (userspace) or --dataplane ipvs (kernel)", dst.Addr, dst.Forward.LBKind())
		}
		if dst.Addr.Addr().Is4() != s.Key.Addr.Addr().Is4() {
			return fmt.Errorf("real server %s: DR needs the same address family as the virtual server", dst.Addr)
		}
		if dst.Addr.Port() != 0 && dst.Addr.Port() != s.Key.Addr.Port() {
			return fmt.Errorf("real server %s: DR and TUN cannot change the port (%d to %d): give the real server the virtual server's port (IPVS ignores it silently; xdp refuses)", dst.Addr, s.Key.Addr.Port(), dst.Addr.Port())
		}
	}
	return nil
}

// Apply reconciles the BPF maps to desired. Services it cannot run are
// left out and reported in the error; the others are applied.
func (d *Dataplane) Apply(ctx context.Context, desired []lvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("xdp: data plane closed")
	}
	d.last = slices.Clone(desired)
	return d.apply(ctx, desired)
}

func (d *Dataplane) apply(ctx context.Context, desired []lvs.Service) error {
	var errs []error
	want := map[lvs.ServiceKey]bool{}
	d.pending = false
	for _, s := range desired {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := Validate(s); err != nil {
			errs = append(errs, fmt.Errorf("xdp: %s: %w", s.Key, err))
			continue
		}
		want[s.Key] = true
		if err := d.applyService(s); err != nil {
			errs = append(errs, fmt.Errorf("xdp: %s: %w", s.Key, err))
		}
	}
	for k, st := range d.svcs {
		if !want[k] {
			d.removeService(st)
		}
	}
	// Services a previous process pinned and nobody wants any more.
	var k svcKey
	var v svcVal
	var stale []svcKey
	it := d.objs.Services.Iterate()
	for it.Next(&k, &v) {
		if !d.ownsID(v.ID) {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		var v svcVal
		if d.objs.Services.Lookup(&k, &v) == nil {
			_ = d.objs.Services.Delete(&k)
			_ = d.objs.Maglev.Delete(v.ID)
			d.svcIDs.free(v.ID)
		}
	}
	for a, idx := range d.adopted {
		if !d.ownsDest(idx) {
			d.killDest(idx)
			d.destIDs.free(idx)
		}
		delete(d.adopted, a)
	}
	if err := d.attach(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (d *Dataplane) ownsID(id uint32) bool {
	for _, st := range d.svcs {
		if st.id == id {
			return true
		}
	}
	return false
}

func (d *Dataplane) ownsDest(idx uint32) bool {
	for _, st := range d.svcs {
		for _, ds := range st.dests {
			if ds.idx == idx {
				return true
			}
		}
	}
	return false
}

func svcKeyOf(k lvs.ServiceKey) svcKey {
	return svcKey{Addr: k.Addr.Addr().As16(), Port: port16(k.Addr.Port()), Proto: uint8(k.Proto)}
}

func (d *Dataplane) applyService(s lvs.Service) error {
	st := d.svcs[s.Key]
	if st == nil {
		key := svcKeyOf(s.Key)
		var old svcVal
		id, ok := uint32(0), false
		if d.objs.Services.Lookup(&key, &old) == nil {
			id, ok = old.ID, true // adopted from the pins
		} else if id, ok = d.svcIDs.get(); ok {
			if err := d.zeroStats(d.objs.SvcStats, id); err != nil {
				d.svcIDs.free(id)
				return err
			}
		}
		if !ok {
			return fmt.Errorf("no free service slot (at most %d)", maxServices)
		}
		st = &svcState{id: id, dests: map[netip.AddrPort]*destState{}}
		st.est.Reset(d.sum(d.objs.SvcStats, id))
		d.svcs[s.Key] = st
	}
	st.svc = s

	// Destinations: keep slots of those that stay, free the others (their
	// flows are rescheduled), give new ones a slot with a new generation.
	keep := map[netip.AddrPort]bool{}
	for _, dst := range s.Destinations {
		a := realAddr(s, dst)
		keep[a] = true
		ds := st.dests[a]
		if ds == nil {
			ds = &destState{}
			if idx, ok := d.adopted[adoptKey{st.id, a}]; ok {
				var dv destVal
				if err := d.objs.Dests.Lookup(idx, &dv); err == nil {
					ds.idx, ds.gen = idx, dv.Gen
					src := netip.AddrFrom16(dv.SAddr).Unmap()
					ds.hop, ds.ok = hop{ifindex: int(dv.Ifindex), smac: dv.SMAC[:], dmac: dv.DMAC[:], src: src, mtu: int(dv.MTU)}, true
				}
				delete(d.adopted, adoptKey{st.id, a})
			} else {
				idx, ok := d.destIDs.get()
				if !ok {
					return fmt.Errorf("no free destination slot (at most %d)", maxDestSlot)
				}
				var dv destVal
				_ = d.objs.Dests.Lookup(idx, &dv)
				ds.idx, ds.gen = idx, dv.Gen+1
				if err := d.zeroStats(d.objs.DestStats, idx); err != nil {
					d.destIDs.free(idx)
					return err
				}
			}
			ds.est.Reset(d.sum(d.objs.DestStats, ds.idx))
			st.dests[a] = ds
		}
		h, err := d.opts.resolve(a.Addr())
		if err == nil && h.gw && dst.Forward == lvs.Route {
			err = fmt.Errorf("%s is reached through a gateway: DR needs real servers on a directly connected network (TUN does not)", a)
		}
		if err == nil && dst.Forward == lvs.Tunnel && !h.src.Is4() {
			err = fmt.Errorf("no IPv4 address of this director towards %s for the tunnel's outer source", a)
		}
		switch {
		case err == nil:
			if !ds.ok || !sameHop(h, ds.hop) {
				d.log.Info("xdp: real server reached", "rs", a, "ifindex", h.ifindex, "mac", h.dmac.String())
			}
			ds.hop, ds.ok = h, true
		case ds.ok:
			d.log.Warn("xdp: real server's neighbour entry lost; using its last MAC", "rs", a, "err", err)
		default:
			d.pending = true
			d.log.Warn("xdp: real server not resolved yet; it gets no traffic until it is", "rs", a, "err", err)
		}
		if ds.ok {
			dv := destVal{Ifindex: uint32(ds.hop.ifindex), Gen: ds.gen, Svc: st.id, Addr: a.Addr().As16(), Port: port16(a.Port()), Live: 1}
			if dst.Forward == lvs.Tunnel {
				dv.Tun, dv.SAddr, dv.MTU = tunIPIP, ds.hop.src.As16(), uint16(min(ds.hop.mtu, 65535))
				if dst.Tunnel == lvs.TunnelGUE {
					dv.Tun, dv.GUEPort = tunGUE, port16(dst.TunnelPort)
				}
			}
			copy(dv.DMAC[:], ds.hop.dmac)
			copy(dv.SMAC[:], ds.hop.smac)
			if err := d.objs.Dests.Put(ds.idx, &dv); err != nil {
				return fmt.Errorf("writing destination %s: %w", a, err)
			}
		}
	}
	for a, ds := range st.dests {
		if !keep[a] {
			d.killDest(ds.idx)
			d.destIDs.free(ds.idx)
			delete(st.dests, a)
		}
	}

	// The Maglev table, built from the resolved destinations with weight.
	var bs []Backend
	var idxs []uint32
	for _, dst := range s.Destinations {
		a := realAddr(s, dst)
		ds := st.dests[a]
		if ds.ok && dst.Weight > 0 {
			bs = append(bs, Backend{Addr: a, Weight: dst.Weight})
			idxs = append(idxs, ds.idx)
		}
	}
	fp := fmt.Sprint(bs, idxs)
	if fp != st.table {
		if err := d.installTable(st.id, bs, idxs); err != nil {
			return err
		}
		st.table = fp
		d.log.Info("xdp: maglev table installed", "service", s.Key.String(), "destinations", len(bs))
	}

	to := s.Timeouts.WithDefaults()
	val := svcVal{ID: st.id, TCPTimeout: uint32(to.TCP / time.Second), UDPTimeout: uint32(to.UDP / time.Second)}
	if s.Persistence > 0 {
		val.Persist = uint32(max(s.Persistence/time.Second, 1))
		val.Mask = persistMask(s.Key.Addr.Addr().Is4(), s.PersistMask)
	}
	if s.Flags&lvs.FlagMHPort != 0 {
		val.Flags |= svcFlagHashPort
	}
	if val != st.written {
		key := svcKeyOf(s.Key)
		if err := d.objs.Services.Put(&key, &val); err != nil {
			return fmt.Errorf("writing service: %w", err)
		}
		st.written = val
	}
	return nil
}

// realAddr is the destination as the flow reaches it: DR keeps the
// virtual port.
func realAddr(s lvs.Service, dst lvs.Destination) netip.AddrPort {
	return netip.AddrPortFrom(dst.Addr.Addr(), s.Key.Addr.Port())
}

func sameHop(a, b hop) bool {
	return a.ifindex == b.ifindex && a.smac.String() == b.smac.String() && a.dmac.String() == b.dmac.String() && a.src == b.src && a.mtu == b.mtu && a.gw == b.gw
}

// installTable builds a new inner map holding the Maglev table (slot 0:
// its size, slot i+1: table[i]) and swaps it into the outer map in one
// update: a packet sees the old table or the new one, never a mix.
func (d *Dataplane) installTable(id uint32, bs []Backend, idxs []uint32) error {
	tab, err := Maglev(bs)
	if err != nil {
		return err
	}
	m, err := ebpf.NewMap(d.inner)
	if err != nil {
		return fmt.Errorf("maglev table: %w", err)
	}
	defer m.Close()
	keys := make([]uint32, MaglevSize+1)
	vals := make([]uint32, MaglevSize+1)
	for i := range keys {
		keys[i] = uint32(i)
	}
	if tab != nil {
		vals[0] = MaglevSize
		for i, k := range tab {
			vals[i+1] = idxs[k]
		}
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("maglev table: %w", err)
	}
	if err := d.objs.Maglev.Put(id, m); err != nil {
		return fmt.Errorf("maglev table swap: %w", err)
	}
	return nil
}

func (d *Dataplane) removeService(st *svcState) {
	key := svcKeyOf(st.svc.Key)
	_ = d.objs.Services.Delete(&key)
	_ = d.objs.Maglev.Delete(st.id)
	for _, ds := range st.dests {
		d.killDest(ds.idx)
		d.destIDs.free(ds.idx)
	}
	d.svcIDs.free(st.id)
	delete(d.svcs, st.svc.Key)
	d.log.Info("xdp: service removed", "service", st.svc.Key.String())
}

// killDest marks a destination slot free: flows pointing at it are
// scheduled again (the generation check makes that safe when the slot is
// reused).
func (d *Dataplane) killDest(idx uint32) {
	var dv destVal
	if d.objs.Dests.Lookup(idx, &dv) == nil && dv.Live != 0 {
		dv.Live = 0
		_ = d.objs.Dests.Put(idx, &dv)
	}
}

func (d *Dataplane) zeroStats(m *ebpf.Map, idx uint32) error {
	zero := make([]counters, m.MaxEntries()) // over-long is fine: only NumCPU are used
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	if err := m.Put(idx, zero[:n]); err != nil {
		return fmt.Errorf("clearing counters: %w", err)
	}
	return nil
}

// recheckTicks: every this many refresh ticks (2 s) the destinations are
// resolved again, so a real server's new MAC (a replaced machine, a moved
// address) is followed without waiting for a configuration change.
var recheckTicks = 5

// refresh feeds the rate estimators every two seconds
// (lvs.EstimatorInterval), retries destinations whose neighbour was
// unresolved at the same pace, and re-resolves all every recheckTicks.
func (d *Dataplane) refresh() {
	defer close(d.done)
	t := time.NewTicker(lvs.EstimatorInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		if !d.closed {
			for _, st := range d.svcs {
				st.est.Update(d.sum(d.objs.SvcStats, st.id))
				for _, ds := range st.dests {
					ds.est.Update(d.sum(d.objs.DestStats, ds.idx))
				}
			}
		}
		if !d.closed && (d.pending || n%recheckTicks == 0) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := d.apply(ctx, d.last); err != nil {
				d.log.Warn("xdp: refresh", "err", err)
			}
			cancel()
		}
		d.mu.Unlock()
	}
}

// Close detaches the program. The pinned maps stay (unless
// Options.Unpin) for the next start to adopt.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for ifx, l := range d.links {
		_ = l.Unpin()
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("xdp: detaching ifindex %d: %w", ifx, err))
		}
	}
	if d.opts.Unpin {
		for _, m := range []*ebpf.Map{d.objs.Services, d.objs.Maglev, d.objs.Dests, d.objs.Flows, d.objs.Persist, d.objs.Ifmacs, d.objs.SvcStats, d.objs.DestStats, d.objs.Reasons} {
			if err := m.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	if d.nl != nil {
		d.nl.close()
	}
	d.log.Info("xdp: detached and stopped", "pins", d.opts.PinPath, "unpinned", d.opts.Unpin)
	return errors.Join(errs...)
}
