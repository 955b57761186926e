// Package ipvs is the kernel data plane: it programs Linux IPVS over
// generic netlink the way ipvsadm and keepalived do (NAT, DR and TUN
// forwarding, every scheduler and its flags, persistence, fwmark services,
// thresholds, lvs_timeouts) and reads the kernel's table, counters and
// connection entries back for vipctl.
//
// Apply reconciles: it dumps the kernel's table, computes the minimal
// writes (plan.go, a pure function), applies them, and reads the table
// back to check that the kernel holds what was asked. Services vipd did
// not create are never touched (see state.go for ownership), and an
// unchanged configuration issues no write at all, so a reload or a
// restart after a crash leaves live connections alone.
//
// The connection-synchronisation daemon (keepalived's lvs_sync_daemon) is
// started and stopped with SyncMaster, SyncBackup and SyncStop, which the
// daemon calls on VRRP state changes.
//
// Services and destinations go through github.com/cloudflare/ipvs; the
// commands it lacks (sync daemon, timeouts) are encoded here (genl.go).
package ipvs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	cf "github.com/cloudflare/ipvs"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/netif"
)

// Options configure a Dataplane.
type Options struct {
	// NetNS is the network namespace whose IPVS table is driven: a path
	// (/proc/PID/ns/net) or an `ip netns` name. Empty: the process's own.
	NetNS string
	// StateFile records which services vipd owns, across restarts (see
	// state.go). The daemon uses /run/vipd/ipvs.json. Empty: ownership is
	// the desired set only.
	StateFile string
	// KeepOnClose leaves services, timeouts and sync daemons in the kernel
	// at Close, for a restart that must not disturb traffic.
	KeepOnClose bool
	// NoModprobe stops New from running `modprobe ip_vs` when the kernel
	// has no IPVS family yet.
	NoModprobe bool
	// Logger receives one line per kernel write; nil means slog.Default().
	Logger *slog.Logger
}

// Dataplane drives the kernel's IPVS table. It implements
// dataplane.Dataplane. Its methods are safe for concurrent use.
type Dataplane struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	client cf.Client
	closer io.Closer
	genl   *genetlink.Conn
	family genetlink.Family
	own    *owners
	syncs  map[SyncState]bool // sync daemons started by us
	closed bool

	writes atomic.Uint64
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// ErrUnavailable is returned (wrapped) by New when the kernel has no IPVS.
var ErrUnavailable = errors.New("kernel IPVS unavailable")

// New connects to the kernel's IPVS over generic netlink. It fails with
// ErrUnavailable when the kernel has no IPVS (no ip_vs module, or a
// container that cannot load it), after trying `modprobe ip_vs` unless
// opts.NoModprobe. It changes nothing in the kernel.
func New(opts Options) (*Dataplane, error) {
	d := &Dataplane{opts: opts, log: opts.Logger, syncs: map[SyncState]bool{}}
	if d.log == nil {
		d.log = slog.Default()
	}
	own, err := loadOwners(opts.StateFile)
	if err != nil {
		return nil, err
	}
	d.own = own
	ns := netif.NetnsPath(opts.NetNS)
	err = d.dial(ns)
	if err != nil && !opts.NoModprobe && errors.Is(err, ErrUnavailable) {
		if out, merr := exec.Command("modprobe", "ip_vs").CombinedOutput(); merr == nil {
			err = d.dial(ns)
		} else {
			d.log.Debug("modprobe ip_vs failed", "err", merr, "output", string(out))
		}
	}
	if err != nil {
		return nil, err
	}
	// Read back: a kernel that answers GET_INFO has a working IPVS.
	if _, err := d.client.Info(); err != nil {
		d.closeConns()
		return nil, fmt.Errorf("ipvs: GET_INFO: %w: %w", ErrUnavailable, err)
	}
	return d, nil
}

func (d *Dataplane) dial(ns string) error {
	return netif.InNetns(ns, func() error {
		c, err := cf.New()
		if err != nil {
			return fmt.Errorf("ipvs: %w: no generic netlink family IPVS (ip_vs module not loaded or not available): %w", ErrUnavailable, err)
		}
		g, err := genetlink.Dial(nil)
		if err != nil {
			if cl, ok := c.(io.Closer); ok {
				cl.Close()
			}
			return fmt.Errorf("ipvs: generic netlink: %w", err)
		}
		fam, err := g.GetFamily(genlFamily)
		if err != nil {
			g.Close()
			if cl, ok := c.(io.Closer); ok {
				cl.Close()
			}
			return fmt.Errorf("ipvs: %w: no generic netlink family IPVS (ip_vs module not loaded or not available): %w", ErrUnavailable, err)
		}
		d.client, d.genl, d.family = c, g, fam
		d.closer, _ = c.(io.Closer)
		return nil
	})
}

func (d *Dataplane) closeConns() {
	if d.closer != nil {
		d.closer.Close()
	}
	if d.genl != nil {
		d.genl.Close()
	}
}

// Writes returns how many netlink writes (service, destination, timeout
// and sync-daemon commands) this data plane has issued: a reload with an
// unchanged configuration must not increase it.
func (d *Dataplane) Writes() uint64 { return d.writes.Load() }

// Info is what `ipvsadm -L`'s first line shows.
type Info struct {
	Version     string // "1.2.1"
	ConnTabSize int
}

// Info reads the kernel's IPVS version and connection table size.
func (d *Dataplane) Info() (Info, error) {
	i, err := d.client.Info()
	if err != nil {
		return Info{}, fmt.Errorf("ipvs: GET_INFO: %w", err)
	}
	return infoOf(i), nil
}

// infoOf converts the kernel's answer to GET_INFO (IPVS_INFO_ATTR_VERSION,
// decoded as major, minor, patch; IPVS_INFO_ATTR_CONN_TAB_SIZE) into what
// ipvsadm prints: "1.2.1" and the number of hash buckets.
func infoOf(i cf.Info) Info {
	return Info{Version: fmt.Sprintf("%d.%d.%d", i.Version[0], i.Version[1], i.Version[2]), ConnTabSize: int(i.ConnectionTableSize)}
}

// Check is the ipvs data plane's dataplane.Check: what Apply refuses
// before its first netlink write (a service or destination the kernel
// cannot hold, a key twice, conflicting lvs_timeouts).
func Check(desired []lvs.Service) error {
	if _, err := normalizeAll(desired); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	if _, err := desiredTimeouts(desired); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	return nil
}

var _ dataplane.Check = Check

// Apply reconciles the kernel's table with desired: creates, edits and
// deletes services and destinations with the fewest netlink writes,
// leaves services it does not own alone, sets lvs_timeouts, then reads
// the table back and fails if the kernel does not hold what was asked.
// An invalid desired set is rejected before anything is written. Errors
// of single writes do not stop the others; all are returned, joined.
func (d *Dataplane) Apply(ctx context.Context, desired []lvs.Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("ipvs: apply after close")
	}
	want, err := normalizeAll(desired)
	if err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	wantT, err := desiredTimeouts(desired)
	if err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	var errs []error
	if err := d.applyTimeouts(wantT); err != nil {
		errs = append(errs, err)
	}

	current, err := d.dump()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	ops := plan(current, want, d.own.owned)
	if len(ops) == 0 {
		// Adopt what we found (first start after keepalived or a crash)
		// so that dropping it later from the configuration deletes it.
		for _, s := range want {
			d.own.add(keyOf(s.Key))
		}
		return errors.Join(append(errs, d.own.save())...)
	}
	// Record ownership before creating, so a crash cannot leave a service
	// that the next run would not know it owns.
	for _, s := range want {
		d.own.add(keyOf(s.Key))
	}
	if err := d.own.save(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	failed := map[svcKey]bool{}
	for _, o := range ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: apply interrupted: %w", err))
			break
		}
		k := keyOf(o.svc.Key)
		if failed[k] && o.kind != opDelService {
			continue // the service could not be created: skip its destinations
		}
		if err := d.exec(o); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: %s: %w", o, err))
			if o.kind == opNewService {
				failed[k] = true
			}
			continue
		}
		d.log.Info("ipvs: "+o.String(), "netns", d.opts.NetNS)
		if o.kind == opDelService {
			d.own.remove(k)
		}
	}
	if err := d.own.save(); err != nil {
		errs = append(errs, err)
	}

	// Read back and compare: the kernel must now hold the desired set.
	after, err := d.dump()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("ipvs: read back: %w", err))...)
	}
	if rest := plan(after, want, d.own.owned); len(rest) > 0 && len(errs) == 0 {
		for _, o := range rest {
			errs = append(errs, fmt.Errorf("ipvs: read back: kernel still needs %s", o))
		}
	}
	return errors.Join(errs...)
}

// applyTimeouts sets the global timeouts when they differ (SET_CONFIG),
// remembering the kernel's values from before vipd's first change.
func (d *Dataplane) applyTimeouts(want lvs.Timeouts) error {
	if want == (lvs.Timeouts{}) && d.own.orig == nil {
		return nil // lvs_timeouts not configured and never set by us
	}
	kernel, err := d.Timeouts()
	if err != nil {
		return err
	}
	target, write := planTimeouts(kernel, want, d.own.orig)
	if !write {
		if want == (lvs.Timeouts{}) && d.own.orig != nil {
			d.own.setOrig(nil)
			return d.own.save()
		}
		return nil
	}
	if d.own.orig == nil {
		k := kernel
		d.own.setOrig(&k)
		if err := d.own.save(); err != nil {
			return err
		}
	}
	if err := d.setTimeouts(target); err != nil {
		return err
	}
	d.log.Info("ipvs: set timeouts", "tcp", target.TCP, "tcpfin", target.TCPFin, "udp", target.UDP, "netns", d.opts.NetNS)
	if want == (lvs.Timeouts{}) {
		d.own.setOrig(nil)
	}
	return d.own.save()
}

// Timeouts reads the kernel's connection timeouts (ipvsadm -L --timeout).
func (d *Dataplane) Timeouts() (lvs.Timeouts, error) {
	msgs, err := d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdGetConfig, Version: genlVersion}}, d.family.ID, netlink.Request)
	if err != nil {
		return lvs.Timeouts{}, fmt.Errorf("ipvs: GET_CONFIG: %w", err)
	}
	if len(msgs) != 1 {
		return lvs.Timeouts{}, fmt.Errorf("ipvs: GET_CONFIG: %d replies", len(msgs))
	}
	return decodeTimeouts(msgs[0].Data)
}

func (d *Dataplane) setTimeouts(t lvs.Timeouts) error {
	b, err := encodeTimeouts(t)
	if err != nil {
		return err
	}
	d.writes.Add(1)
	if _, err := d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdSetConfig, Version: genlVersion}, Data: b}, d.family.ID, netlink.Request|netlink.Acknowledge); err != nil {
		return fmt.Errorf("ipvs: SET_CONFIG %+v: %w", t, err)
	}
	return nil
}

// exec issues one write.
func (d *Dataplane) exec(o op) error {
	d.writes.Add(1)
	ks := toKernelService(o.svc)
	switch o.kind {
	case opDelService:
		return d.client.RemoveService(ks)
	case opNewService:
		return d.client.CreateService(ks)
	case opSetService:
		return d.client.UpdateService(ks)
	case opDelDest:
		return d.client.RemoveDestination(ks, toKernelDest(o.dest))
	case opSetDest:
		return d.client.UpdateDestination(ks, toKernelDest(o.dest))
	case opNewDest:
		return d.client.CreateDestination(ks, toKernelDest(o.dest))
	}
	return fmt.Errorf("unknown op %d", o.kind)
}

// dump reads the whole table: every service with its destinations, in
// the kernel's order.
func (d *Dataplane) dump() ([]lvs.ServiceStatus, error) {
	svcs, err := d.client.Services()
	if errors.Is(err, os.ErrNotExist) { // cloudflare/ipvs: empty dump
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: GET_SERVICE dump: %w", err)
	}
	out := make([]lvs.ServiceStatus, 0, len(svcs))
	for _, ks := range svcs {
		st, err := fromKernelService(ks)
		if err != nil {
			return nil, fmt.Errorf("ipvs: GET_SERVICE dump: %w", err)
		}
		dests, err := d.client.Destinations(ks.Service)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ipvs: GET_DEST %s: %w", keyString(st.Key), err)
		}
		for _, kd := range dests {
			ds := fromKernelDest(kd)
			st.Dests = append(st.Dests, ds)
			st.Destinations = append(st.Destinations, ds.Destination)
		}
		out = append(out, st)
	}
	return out, nil
}

// List returns every service in the kernel (not only vipd's: ipvsadm -L
// shows them all) with destinations, counters and rates. Services are
// sorted by family, fwmark, protocol, address and port; destinations are
// in the kernel's order (most recently added first), which is what the
// schedulers walk.
func (d *Dataplane) List() ([]lvs.ServiceStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	svcs, err := d.dump()
	if err != nil {
		return nil, err
	}
	sort.SliceStable(svcs, func(i, j int) bool { return lessKey(keyOf(svcs[i].Key), keyOf(svcs[j].Key)) })
	return svcs, nil
}

func lessKey(a, b svcKey) bool {
	if (a.fwmark != 0) != (b.fwmark != 0) {
		return a.fwmark == 0
	}
	if a.ipv6 != b.ipv6 {
		return !a.ipv6
	}
	if a.fwmark != b.fwmark {
		return a.fwmark < b.fwmark
	}
	if a.proto != b.proto {
		return a.proto < b.proto
	}
	if c := a.addr.Addr().Compare(b.addr.Addr()); c != 0 {
		return c < 0
	}
	return a.addr.Port() < b.addr.Port()
}

// Services implements dataplane.Dataplane: List without the error, which
// is logged.
func (d *Dataplane) Services() []lvs.ServiceStatus {
	s, err := d.List()
	if err != nil {
		d.log.Warn("ipvs: listing services", "err", err)
	}
	return s
}

// ConnList reads the kernel's connection table (/proc/net/ip_vs_conn of
// the data plane's namespace), templates included, in the kernel's order.
func (d *Dataplane) ConnList() ([]lvs.ConnEntry, error) {
	var out []lvs.ConnEntry
	ns := netif.NetnsPath(d.opts.NetNS)
	path := "/proc/net/ip_vs_conn"
	if ns != "" {
		path = "/proc/thread-self/net/ip_vs_conn"
	}
	err := netif.InNetns(ns, func() error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("ipvs: connections: %w", err)
		}
		defer f.Close()
		out, err = parseConns(f)
		return err
	})
	return out, err
}

// Conns implements dataplane.Dataplane: ConnList without the error, which
// is logged.
func (d *Dataplane) Conns() []lvs.ConnEntry {
	c, err := d.ConnList()
	if err != nil {
		d.log.Warn("ipvs: listing connections", "err", err)
	}
	return c
}

// Release makes Close leave the services, timeouts and sync daemons in
// the kernel, as KeepOnClose does: another process adopted them (vipctl
// upgrade).
func (d *Dataplane) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.KeepOnClose = true
}

// Close removes the services vipd owns, restores the timeouts it changed
// and stops the sync daemons it started (all unless Options.KeepOnClose),
// then closes the netlink sockets. Connections through deleted services
// are not cut by the kernel: they continue until they expire.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if !d.opts.KeepOnClose {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		current, err := d.dump()
		if err != nil {
			errs = append(errs, err)
		}
		for _, o := range plan(current, nil, d.own.owned) {
			if ctx.Err() != nil {
				break
			}
			if err := d.exec(o); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: %s: %w", o, err))
				continue
			}
			d.log.Info("ipvs: "+o.String(), "netns", d.opts.NetNS)
			d.own.remove(keyOf(o.svc.Key))
		}
		if d.own.orig != nil {
			if err := d.applyTimeouts(lvs.Timeouts{}); err != nil {
				errs = append(errs, err)
			}
		}
		for _, st := range []SyncState{SyncMaster, SyncBackup} {
			if d.syncs[st] {
				if err := d.stopSync(st); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := d.own.save(); err != nil {
			errs = append(errs, err)
		}
	}
	d.closeConns()
	return errors.Join(errs...)
}
