package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// This file is the pure core of Apply: it turns the kernel's table and the
// desired services into the list of netlink writes that reconciles them.
// It does no I/O, so the reconciliation rules are table-tested on any
// host; the driver (dataplane.go) executes the ops and reads back.

// opKind is one kind of netlink write.
type opKind uint8

const (
	opDelService opKind = iota + 1
	opNewService
	opSetService
	opDelDest
	opSetDest
	opNewDest
)

var opNames = map[opKind]string{
	opDelService: "delete service",
	opNewService: "add service",
	opSetService: "edit service",
	opDelDest:    "delete destination",
	opSetDest:    "edit destination",
	opNewDest:    "add destination",
}

// op is one netlink write. For destination ops, svc identifies the
// service (only its key matters).
type op struct {
	kind opKind
	svc  lvs.Service
	dest lvs.Destination
	why  string // what differed, for logs and errors
}

func (o op) String() string {
	s := opNames[o.kind] + " " + keyString(o.svc.Key)
	switch o.kind {
	case opNewService, opSetService:
		s += " " + o.svc.Scheduler
	case opDelDest, opSetDest, opNewDest:
		s += " -> " + o.dest.Addr.String()
	}
	if o.why != "" {
		s += " (" + o.why + ")"
	}
	return s
}

// svcKey is the identity of a service as the kernel keys it: a fwmark and
// family, or a protocol, address and port. The kernel stores fwmark
// services with protocol TCP whatever was asked, so the protocol is not
// part of a fwmark key.
type svcKey struct {
	fwmark uint32
	ipv6   bool
	proto  lvs.Protocol
	addr   netip.AddrPort
}

func keyOf(k lvs.ServiceKey) svcKey {
	if k.FWMark != 0 {
		return svcKey{fwmark: k.FWMark, ipv6: k.IPv6}
	}
	a := netip.AddrPortFrom(k.Addr.Addr().Unmap(), k.Addr.Port())
	return svcKey{proto: k.Proto, addr: a, ipv6: a.Addr().Is6()}
}

func (k svcKey) serviceKey() lvs.ServiceKey {
	if k.fwmark != 0 {
		return lvs.ServiceKey{FWMark: k.fwmark, IPv6: k.ipv6}
	}
	return lvs.ServiceKey{Proto: k.proto, Addr: k.addr, IPv6: k.ipv6}
}

// keyString names a service as ipvsadm's command line would ("TCP
// 198.18.0.100:80", "FWM 1", "FWM 1 IPv6").
func keyString(k lvs.ServiceKey) string {
	if k.FWMark != 0 {
		if k.IPv6 {
			return fmt.Sprintf("FWM %d IPv6", k.FWMark)
		}
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return fmt.Sprintf("%s %s", k.Proto, k.Addr)
}

// defaultScheduler is what ipvsadm and keepalived use when none is named.
const defaultScheduler = "wlc"

// normalize validates a desired service and puts it in the form the
// kernel reports back, so that comparing with a readback is plain
// equality: defaults filled, flags the kernel manages stripped, fields
// IPVS does not store cleared. Errors name the service and the field.
func normalize(s lvs.Service) (lvs.Service, error) {
	k := keyOf(s.Key)
	name := keyString(s.Key)
	if k.fwmark == 0 {
		if !k.addr.Addr().IsValid() {
			return s, fmt.Errorf("service %s: no address and no fwmark", name)
		}
		switch k.proto {
		case lvs.TCP, lvs.UDP, lvs.SCTP:
		default:
			return s, fmt.Errorf("service %s: protocol %d is not TCP, UDP or SCTP", name, k.proto)
		}
	}
	n := lvs.Service{Key: k.serviceKey(), Scheduler: s.Scheduler, Flags: s.Flags &^ lvs.FlagHashed}
	if n.Scheduler == "" {
		n.Scheduler = defaultScheduler
	}
	if len(n.Scheduler) >= 16 { // IP_VS_SCHEDNAME_MAXLEN
		return s, fmt.Errorf("service %s: scheduler name %q too long", name, n.Scheduler)
	}
	if s.Persistence < 0 {
		return s, fmt.Errorf("service %s: negative persistence_timeout %v", name, s.Persistence)
	}
	if s.Persistence > 0 {
		// The kernel keeps whole seconds; a sub-second persistence
		// would silently become 0 and disable it, so round up.
		secs := (s.Persistence + time.Second - 1) / time.Second
		if secs > 1<<31/1000 { // the kernel multiplies by HZ in an int
			return s, fmt.Errorf("service %s: persistence_timeout %v too large", name, s.Persistence)
		}
		n.Persistence = secs * time.Second
		n.Flags |= lvs.FlagPersistent
	} else {
		n.Flags &^= lvs.FlagPersistent
	}
	bits := 32
	if k.ipv6 {
		bits = 128
	}
	switch {
	case s.PersistMask == 0:
		n.PersistMask = bits
	case s.PersistMask < 1 || s.PersistMask > bits:
		return s, fmt.Errorf("service %s: persistence_granularity /%d out of range 1..%d", name, s.PersistMask, bits)
	default:
		n.PersistMask = s.PersistMask
	}
	seen := map[netip.AddrPort]bool{}
	for _, d := range s.Destinations {
		nd, err := normalizeDest(d)
		if err != nil {
			return s, fmt.Errorf("service %s: %w", name, err)
		}
		if seen[nd.Addr] {
			return s, fmt.Errorf("service %s: real server %s listed twice", name, nd.Addr)
		}
		seen[nd.Addr] = true
		n.Destinations = append(n.Destinations, nd)
	}
	return n, nil
}

func normalizeDest(d lvs.Destination) (lvs.Destination, error) {
	a := netip.AddrPortFrom(d.Addr.Addr().Unmap(), d.Addr.Port())
	if !a.Addr().IsValid() {
		return d, errors.New("real server without an address")
	}
	n := lvs.Destination{Addr: a, Weight: d.Weight, Forward: d.Forward, UThreshold: d.UThreshold, LThreshold: d.LThreshold}
	if d.Weight < 0 || int64(d.Weight) > 1<<31-1 {
		return d, fmt.Errorf("real server %s: weight %d out of range 0..2147483647", a, d.Weight)
	}
	if d.UThreshold < 0 || d.LThreshold < 0 || int64(d.UThreshold) > 1<<32-1 || int64(d.LThreshold) > 1<<32-1 {
		return d, fmt.Errorf("real server %s: thresholds %d/%d out of range", a, d.UThreshold, d.LThreshold)
	}
	switch d.Forward {
	case lvs.Masq, lvs.Route, lvs.Local, lvs.Bypass:
	case lvs.Tunnel:
		n.Tunnel, n.TunnelPort, n.TunnelCsum = d.Tunnel, d.TunnelPort, d.TunnelCsum
		switch d.Tunnel {
		case lvs.TunnelIPIP:
			// The kernel ignores port and checksum flags for IPIP but
			// stores them; keep them zero so readbacks compare.
			n.TunnelPort, n.TunnelCsum = 0, 0
		case lvs.TunnelGUE:
			if d.TunnelPort == 0 {
				return d, fmt.Errorf("real server %s: GUE tunnel needs a port", a)
			}
		case lvs.TunnelGRE:
			n.TunnelPort = 0
		default:
			return d, fmt.Errorf("real server %s: unknown tunnel type %d", a, d.Tunnel)
		}
		if d.TunnelCsum > 2 {
			return d, fmt.Errorf("real server %s: unknown tunnel checksum mode %d", a, d.TunnelCsum)
		}
	default:
		return d, fmt.Errorf("real server %s: unknown forwarding method %d", a, d.Forward)
	}
	return n, nil
}

// normalizeAll normalizes the desired set and rejects duplicate keys.
func normalizeAll(desired []lvs.Service) ([]lvs.Service, error) {
	out := make([]lvs.Service, 0, len(desired))
	seen := map[svcKey]bool{}
	var errs []error
	for _, s := range desired {
		n, err := normalize(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		k := keyOf(n.Key)
		if seen[k] {
			errs = append(errs, fmt.Errorf("service %s: defined twice", keyString(n.Key)))
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out, errors.Join(errs...)
}

// serviceDiff says which service attributes differ ("" when none).
func serviceDiff(have, want lvs.Service) string {
	var d []string
	if have.Scheduler != want.Scheduler {
		d = append(d, fmt.Sprintf("scheduler %s->%s", have.Scheduler, want.Scheduler))
	}
	if hf, wf := have.Flags&^lvs.FlagHashed, want.Flags&^lvs.FlagHashed; hf != wf {
		d = append(d, fmt.Sprintf("flags %#x->%#x", uint32(hf), uint32(wf)))
	}
	if have.Persistence != want.Persistence {
		d = append(d, fmt.Sprintf("persistence %v->%v", have.Persistence, want.Persistence))
	}
	if have.PersistMask != want.PersistMask {
		d = append(d, fmt.Sprintf("mask /%d->/%d", have.PersistMask, want.PersistMask))
	}
	return strings.Join(d, ", ")
}

// destDiff says which destination attributes differ ("" when none).
func destDiff(have, want lvs.Destination) string {
	var d []string
	if have.Weight != want.Weight {
		d = append(d, fmt.Sprintf("weight %d->%d", have.Weight, want.Weight))
	}
	if have.Forward != want.Forward {
		d = append(d, fmt.Sprintf("forward %s->%s", have.Forward, want.Forward))
	}
	if have.Tunnel != want.Tunnel || have.TunnelPort != want.TunnelPort || have.TunnelCsum != want.TunnelCsum {
		d = append(d, fmt.Sprintf("tunnel %d:%d:%d->%d:%d:%d", have.Tunnel, have.TunnelPort, have.TunnelCsum, want.Tunnel, want.TunnelPort, want.TunnelCsum))
	}
	if have.UThreshold != want.UThreshold || have.LThreshold != want.LThreshold {
		d = append(d, fmt.Sprintf("thresholds %d/%d->%d/%d", have.UThreshold, have.LThreshold, want.UThreshold, want.LThreshold))
	}
	return strings.Join(d, ", ")
}

// plan returns the netlink writes that turn the kernel table current into
// desired (already normalized). Services that are neither desired nor
// owned are not touched: they belong to someone else (ipvsadm by hand,
// another daemon). Owned services that are no longer desired are
// deleted. Destinations of a desired service are ours entirely.
//
// The order: deletions of services first (freeing addresses a new
// service might reuse), then per desired service in the given order:
// create or edit it, delete its stale destinations, edit the changed
// ones, add the new ones in configuration order (the kernel lists the
// most recently added first, as it does for keepalived and ipvsadm).
func plan(current []lvs.ServiceStatus, desired []lvs.Service, owned func(svcKey) bool) []op {
	have := make(map[svcKey]*lvs.ServiceStatus, len(current))
	for i := range current {
		have[keyOf(current[i].Key)] = &current[i]
	}
	want := make(map[svcKey]bool, len(desired))
	for _, s := range desired {
		want[keyOf(s.Key)] = true
	}
	var ops []op
	for i := range current {
		k := keyOf(current[i].Key)
		if !want[k] && owned(k) {
			ops = append(ops, op{kind: opDelService, svc: current[i].Service})
		}
	}
	for _, s := range desired {
		cur, ok := have[keyOf(s.Key)]
		if !ok {
			ops = append(ops, op{kind: opNewService, svc: s})
			for _, d := range s.Destinations {
				ops = append(ops, op{kind: opNewDest, svc: s, dest: d})
			}
			continue
		}
		if why := serviceDiff(cur.Service, s); why != "" {
			ops = append(ops, op{kind: opSetService, svc: s, why: why})
		}
		wantDest := make(map[netip.AddrPort]bool, len(s.Destinations))
		for _, d := range s.Destinations {
			wantDest[d.Addr] = true
		}
		haveDest := make(map[netip.AddrPort]*lvs.DestStatus, len(cur.Dests))
		for i := range cur.Dests {
			d := &cur.Dests[i]
			haveDest[d.Addr] = d
			if !wantDest[d.Addr] {
				ops = append(ops, op{kind: opDelDest, svc: s, dest: d.Destination})
			}
		}
		for _, d := range s.Destinations {
			if hd, ok := haveDest[d.Addr]; ok {
				if why := destDiff(hd.Destination, d); why != "" {
					ops = append(ops, op{kind: opSetDest, svc: s, dest: d, why: why})
				}
			}
		}
		for _, d := range s.Destinations {
			if _, ok := haveDest[d.Addr]; !ok {
				ops = append(ops, op{kind: opNewDest, svc: s, dest: d})
			}
		}
	}
	return ops
}

// desiredTimeouts merges the services' lvs_timeouts (a global setting in
// IPVS, carried per service in the model): the non-zero fields, which
// must agree between services.
func desiredTimeouts(desired []lvs.Service) (lvs.Timeouts, error) {
	var t lvs.Timeouts
	merge := func(dst *time.Duration, v time.Duration, what string, k lvs.ServiceKey) error {
		if v < 0 {
			return fmt.Errorf("service %s: negative lvs_timeouts %s %v", keyString(k), what, v)
		}
		if v == 0 {
			return nil
		}
		v = (v + time.Second - 1) / time.Second * time.Second
		if *dst != 0 && *dst != v {
			return fmt.Errorf("service %s: lvs_timeouts %s %v conflicts with %v of another service (IPVS timeouts are global)", keyString(k), what, v, *dst)
		}
		*dst = v
		return nil
	}
	for _, s := range desired {
		if err := errors.Join(
			merge(&t.TCP, s.Timeouts.TCP, "tcp", s.Key),
			merge(&t.TCPFin, s.Timeouts.TCPFin, "tcpfin", s.Key),
			merge(&t.UDP, s.Timeouts.UDP, "udp", s.Key),
		); err != nil {
			return t, err
		}
	}
	return t, nil
}

// planTimeouts decides the SET_CONFIG to send, if any: the kernel's
// current timeouts with the desired non-zero fields applied. Fields left
// zero keep their kernel value, as keepalived leaves them; when vipd
// changed them earlier and the configuration no longer sets them, the
// values from before vipd's change come back (orig, recorded in the
// state file). It returns the new values and whether to write.
func planTimeouts(kernel, want lvs.Timeouts, orig *lvs.Timeouts) (lvs.Timeouts, bool) {
	target := kernel
	pick := func(dst *time.Duration, w, o time.Duration, haveOrig bool) {
		switch {
		case w != 0:
			*dst = w
		case haveOrig:
			*dst = o
		}
	}
	var o lvs.Timeouts
	if orig != nil {
		o = *orig
	}
	pick(&target.TCP, want.TCP, o.TCP, orig != nil)
	pick(&target.TCPFin, want.TCPFin, o.TCPFin, orig != nil)
	pick(&target.UDP, want.UDP, o.UDP, orig != nil)
	return target, target != kernel
}
