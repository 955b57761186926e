package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ProtoKeepalived is the routing protocol number (rt_protos "keepalived")
// vipd marks its routes and rules with unless told otherwise, as
// keepalived does: `ip route show proto keepalived` lists them, and
// scripts written for keepalived keep working.
const ProtoKeepalived = unix.RTPROT_KEEPALIVED

// Route is a route as `ip route add` takes it: keepalived's
// virtual_routes and static_routes lines, resolved. Zero values mean
// what ip(8) means when the option is left out.
type Route struct {
	// Type is unicast (""), blackhole, unreachable, prohibit, throw,
	// local, broadcast, anycast, multicast or nat.
	Type string
	Dst  netip.Prefix // 0.0.0.0/0 or ::/0 for the default route
	Src  netip.Addr   // preferred source (ip route ... src)
	Via  netip.Addr   // gateway
	Dev  string
	// Table is the routing table (0: main); VRF, when set, names a VRF
	// device whose table is used instead.
	Table    uint32
	VRF      string
	Metric   uint32
	Scope    string // "" lets vipd choose as ip(8) does
	Protocol string // name (rt_protos) or number; "" is keepalived
	TOS      uint8
	OnLink   bool
	// Realms is "[FROM/]TO" (numbers).
	Realms   string
	Nexthops []Nexthop // a multipath route
	Metrics  Metrics
	// Append adds the route after any matching one (ip route append);
	// by default it goes before (prepend), as keepalived does.
	Append bool
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Via    netip.Addr
	Dev    string
	Weight int // 1..256; 0 means 1
	OnLink bool
}

// Metrics are a route's RTA_METRICS; zero leaves a metric unset.
// RTT and RTTVar are in the kernel's units (1/8 and 1/4 ms), RTOMin in
// ms: ip(8)'s "raw" values.
type Metrics struct {
	MTU              uint32
	MTULock          bool
	AdvMSS           uint32
	Window           uint32
	RTT              uint32
	RTTVar           uint32
	Reordering       uint32
	Cwnd             uint32
	Ssthresh         uint32
	InitCwnd         uint32
	InitRwnd         uint32
	RTOMin           uint32
	RTOMinLock       bool
	Hoplimit         uint32
	Features         uint32 // 1: ecn
	QuickACK         bool
	FastOpenNoCookie bool
	Congctl          string
}

var routeTypes = map[string]int{
	"":            unix.RTN_UNICAST,
	"unicast":     unix.RTN_UNICAST,
	"local":       unix.RTN_LOCAL,
	"broadcast":   unix.RTN_BROADCAST,
	"anycast":     unix.RTN_ANYCAST,
	"multicast":   unix.RTN_MULTICAST,
	"blackhole":   unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE,
	"prohibit":    unix.RTN_PROHIBIT,
	"throw":       unix.RTN_THROW,
	"nat":         unix.RTN_NAT,
}

// protocols are the names of /etc/iproute2/rt_protos as shipped.
var protocols = map[string]int{
	"redirect": unix.RTPROT_REDIRECT, "kernel": unix.RTPROT_KERNEL, "boot": unix.RTPROT_BOOT,
	"static": unix.RTPROT_STATIC, "gated": unix.RTPROT_GATED, "ra": unix.RTPROT_RA,
	"mrt": unix.RTPROT_MRT, "zebra": unix.RTPROT_ZEBRA, "bird": unix.RTPROT_BIRD,
	"dnrouted": unix.RTPROT_DNROUTED, "xorp": unix.RTPROT_XORP, "ntk": unix.RTPROT_NTK,
	"dhcp": unix.RTPROT_DHCP, "mrouted": unix.RTPROT_MROUTED, "keepalived": unix.RTPROT_KEEPALIVED,
	"babel": unix.RTPROT_BABEL, "openr": unix.RTPROT_OPENR, "bgp": unix.RTPROT_BGP,
	"isis": unix.RTPROT_ISIS, "ospf": unix.RTPROT_OSPF, "rip": unix.RTPROT_RIP,
	"eigrp": unix.RTPROT_EIGRP,
}

// ProtocolValue maps a routing protocol name or number to its number; ""
// is keepalived's.
func ProtocolValue(s string) (uint8, error) {
	if s == "" {
		return ProtoKeepalived, nil
	}
	if v, ok := protocols[strings.ToLower(s)]; ok {
		return uint8(v), nil
	}
	v, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("protocol %q: want a number 0..255 or a name of rt_protos", s)
	}
	return uint8(v), nil
}

// RealmsValue parses "[FROM/]TO" into RTA_FLOW's encoding.
func RealmsValue(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	from, to, ok := strings.Cut(s, "/")
	if !ok {
		from, to = "0", s
	}
	f, err1 := strconv.ParseUint(from, 0, 16)
	t, err2 := strconv.ParseUint(to, 0, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("realms %q: want [FROM/]TO with numbers 0..65535", s)
	}
	return uint32(f)<<16 | uint32(t), nil
}

func (r Route) is6() bool { return r.Dst.Addr().Is6() }

// String renders the route in ip-route syntax. It names every field, so
// two routes with the same string are the same route.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" && r.Type != "unicast" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Via.IsValid() {
		b.WriteString(" via " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	if r.VRF != "" {
		b.WriteString(" vrf " + r.VRF)
	} else if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Scope != "" {
		b.WriteString(" scope " + r.Scope)
	}
	if r.Protocol != "" {
		b.WriteString(" proto " + r.Protocol)
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%02x", r.TOS)
	}
	if r.Realms != "" {
		b.WriteString(" realms " + r.Realms)
	}
	for _, nh := range r.Nexthops {
		b.WriteString(" nexthop")
		if nh.Via.IsValid() {
			b.WriteString(" via " + nh.Via.String())
		}
		if nh.Dev != "" {
			b.WriteString(" dev " + nh.Dev)
		}
		if nh.Weight > 1 {
			fmt.Fprintf(&b, " weight %d", nh.Weight)
		}
		if nh.OnLink {
			b.WriteString(" onlink")
		}
	}
	m := r.Metrics
	num := func(name string, v uint32, lock bool) {
		if v == 0 {
			return
		}
		if lock {
			fmt.Fprintf(&b, " %s lock %d", name, v)
		} else {
			fmt.Fprintf(&b, " %s %d", name, v)
		}
	}
	num("mtu", m.MTU, m.MTULock)
	num("advmss", m.AdvMSS, false)
	num("window", m.Window, false)
	num("rtt", m.RTT, false)
	num("rttvar", m.RTTVar, false)
	num("reordering", m.Reordering, false)
	num("cwnd", m.Cwnd, false)
	num("ssthresh", m.Ssthresh, false)
	num("initcwnd", m.InitCwnd, false)
	num("initrwnd", m.InitRwnd, false)
	num("rto_min", m.RTOMin, m.RTOMinLock)
	num("hoplimit", m.Hoplimit, false)
	num("features", m.Features, false)
	if m.QuickACK {
		b.WriteString(" quickack 1")
	}
	if m.FastOpenNoCookie {
		b.WriteString(" fastopen_no_cookie 1")
	}
	if m.Congctl != "" {
		b.WriteString(" congctl " + m.Congctl)
	}
	if r.Append {
		b.WriteString(" append")
	}
	return b.String()
}

// defaultScope is the scope ip(8) gives a route added without one.
func (r Route) defaultScope() netlink.Scope {
	if r.is6() {
		return netlink.SCOPE_UNIVERSE
	}
	switch routeTypes[r.Type] {
	case unix.RTN_LOCAL, unix.RTN_NAT:
		return netlink.SCOPE_HOST
	case unix.RTN_BROADCAST, unix.RTN_MULTICAST, unix.RTN_ANYCAST:
		return netlink.SCOPE_LINK
	case unix.RTN_UNICAST:
		if r.Via.IsValid() {
			return netlink.SCOPE_UNIVERSE
		}
		for _, nh := range r.Nexthops {
			if nh.Via.IsValid() {
				return netlink.SCOPE_UNIVERSE
			}
		}
		return netlink.SCOPE_LINK
	}
	return netlink.SCOPE_UNIVERSE
}

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: ipOf(p.Addr()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func linkIndex(dev string) (int, error) {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", dev, err)
	}
	return l.Attrs().Index, nil
}

// netlink builds the library's route, resolving interfaces and the VRF.
func (r Route) netlink() (*netlink.Route, error) {
	if !r.Dst.IsValid() {
		return nil, errors.New("no destination")
	}
	typ, ok := routeTypes[r.Type]
	if !ok {
		return nil, fmt.Errorf("type %q: want unicast, blackhole, unreachable, prohibit, throw, local, broadcast, anycast, multicast or nat", r.Type)
	}
	family := netlink.FAMILY_V4
	if r.is6() {
		family = netlink.FAMILY_V6
	}
	sameFamily := func(what string, a netip.Addr) error {
		if a.IsValid() && a.Is6() != r.is6() {
			return fmt.Errorf("%s %v and destination %v are of different families", what, a, r.Dst)
		}
		return nil
	}
	if err := errors.Join(sameFamily("src", r.Src), sameFamily("via", r.Via)); err != nil {
		return nil, err
	}
	nr := &netlink.Route{
		Dst:      ipNet(r.Dst.Masked()),
		Family:   family,
		Type:     typ,
		Priority: int(r.Metric),
		Tos:      int(r.TOS),
		Table:    unix.RT_TABLE_MAIN,
	}
	if r.Table != 0 {
		nr.Table = int(r.Table)
	}
	if r.VRF != "" {
		l, err := netlink.LinkByName(r.VRF)
		if err != nil {
			return nil, fmt.Errorf("vrf %s: %w", r.VRF, err)
		}
		vrf, ok := l.(*netlink.Vrf)
		if !ok {
			return nil, fmt.Errorf("vrf %s: interface is a %s, not a vrf", r.VRF, l.Type())
		}
		nr.Table = int(vrf.Table)
	}
	if r.Src.IsValid() {
		nr.Src = ipOf(r.Src)
	}
	if r.Via.IsValid() {
		nr.Gw = ipOf(r.Via)
	}
	if r.Dev != "" {
		i, err := linkIndex(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = i
	}
	if r.OnLink {
		nr.Flags |= unix.RTNH_F_ONLINK
	}
	scope := r.defaultScope()
	if r.Scope != "" {
		s, err := ScopeValue(r.Scope)
		if err != nil {
			return nil, err
		}
		scope = netlink.Scope(s)
	}
	nr.Scope = scope
	proto, err := ProtocolValue(r.Protocol)
	if err != nil {
		return nil, err
	}
	nr.Protocol = netlink.RouteProtocol(proto)
	realm, err := RealmsValue(r.Realms)
	if err != nil {
		return nil, err
	}
	nr.Realm = int(realm)
	for i, nh := range r.Nexthops {
		if err := sameFamily(fmt.Sprintf("nexthop %d via", i+1), nh.Via); err != nil {
			return nil, err
		}
		if nh.Weight < 0 || nh.Weight > 256 {
			return nil, fmt.Errorf("nexthop %d: weight %d: want 1..256", i+1, nh.Weight)
		}
		ni := &netlink.NexthopInfo{}
		if nh.Weight > 0 {
			ni.Hops = nh.Weight - 1
		}
		if nh.Via.IsValid() {
			ni.Gw = ipOf(nh.Via)
		}
		if nh.Dev != "" {
			if ni.LinkIndex, err = linkIndex(nh.Dev); err != nil {
				return nil, err
			}
		}
		if nh.OnLink {
			ni.Flags |= unix.RTNH_F_ONLINK
		}
		nr.MultiPath = append(nr.MultiPath, ni)
	}
	m := r.Metrics
	if m.MTULock && m.RTOMinLock {
		// The library would send two RTAX_LOCK attributes, of which the
		// kernel keeps the last.
		return nil, errors.New("lock on both mtu and rto_min is not supported")
	}
	nr.MTU, nr.MTULock = int(m.MTU), m.MTULock
	nr.AdvMSS = int(m.AdvMSS)
	nr.Window = int(m.Window)
	nr.Rtt = int(m.RTT)
	nr.RttVar = int(m.RTTVar)
	nr.Reordering = int(m.Reordering)
	nr.Cwnd = int(m.Cwnd)
	nr.Ssthresh = int(m.Ssthresh)
	nr.InitCwnd = int(m.InitCwnd)
	nr.InitRwnd = int(m.InitRwnd)
	nr.RtoMin, nr.RtoMinLock = int(m.RTOMin), m.RTOMinLock
	nr.Hoplimit = int(m.Hoplimit)
	nr.Features = int(m.Features)
	if m.QuickACK {
		nr.QuickACK = 1
	}
	if m.FastOpenNoCookie {
		nr.FastOpenNoCookie = 1
	}
	nr.Congctl = m.Congctl
	return nr, nil
}

// Routes adds and removes routes and remembers which ones it added, so
// that removing them all removes exactly those. Adding a route that is
// already there (the kernel reports an identical route) counts as added:
// a daemon killed before it could clean up left it, and it is ours to
// remove. Removing a route that is not there is not an error.
type Routes struct{ ledger ledger[Route] }

// NewRoutes returns an empty manager.
func NewRoutes() *Routes { return &Routes{} }

// Add installs the route (idempotent) and remembers it.
func (m *Routes) Add(r Route) error {
	nr, err := r.netlink()
	if err != nil {
		return fmt.Errorf("route %v: %w", r, err)
	}
	if r.Append {
		err = netlink.RouteAppend(nr)
	} else {
		// NLM_F_CREATE without NLM_F_EXCL: ip route prepend. The
		// kernel still refuses an identical route with EEXIST.
		err = netlink.RouteAddEcmp(nr)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add route %v: %w", r, err)
	}
	m.ledger.remember(r)
	return nil
}

// Remove deletes the route if present (idempotent) and forgets it. Only
// the route as described goes: one to the same destination with another
// gateway, metric or protocol stays.
func (m *Routes) Remove(r Route) error {
	m.ledger.forget(r)
	nr, err := r.netlink()
	if err != nil {
		var lnf netlink.LinkNotFoundError
		if errors.As(err, &lnf) {
			return nil // the interface went, and its routes with it
		}
		return fmt.Errorf("route %v: %w", r, err)
	}
	if err := netlink.RouteDel(nr); err != nil && !gone(err) {
		return fmt.Errorf("remove route %v: %w", r, err)
	}
	return nil
}

// Added returns the routes added and not removed since, in a stable
// order.
func (m *Routes) Added() []Route {
	return m.ledger.list()
}

// RemoveAll removes every route this manager added.
func (m *Routes) RemoveAll() error {
	return removeEach(m.Added(), m.Remove)
}

// RoutePresent reports whether the route is in the kernel's table: same
// destination, table, type, metric, TOS, protocol, gateway(s), interface
// and preferred source.
func RoutePresent(r Route) (bool, error) {
	ok, err := RoutesPresent([]Route{r})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// RoutesPresent is RoutePresent for several routes, listing each table
// once (a host may carry a large table: one dump per pass, not per
// route). A route that cannot be resolved (its interface is gone) is
// reported absent.
func RoutesPresent(rs []Route) ([]bool, error) {
	type group struct{ family, table int }
	wants := make([]*netlink.Route, len(rs))
	tables := map[group][]netlink.Route{}
	for i, r := range rs {
		nr, err := r.netlink()
		if err != nil {
			continue
		}
		wants[i] = nr
		g := group{nr.Family, nr.Table}
		if _, ok := tables[g]; ok {
			continue
		}
		list, err := netlink.RouteListFiltered(g.family, &netlink.Route{Table: g.table}, netlink.RT_FILTER_TABLE)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list routes of table %d: %w", g.table, err)
		}
		tables[g] = list
	}
	out := make([]bool, len(rs))
	for i, want := range wants {
		if want == nil {
			continue
		}
		list := tables[group{want.Family, want.Table}]
		for j := range list {
			if routeMatches(want, &list[j]) {
				out[i] = true
				break
			}
		}
	}
	return out, nil
}

func routeMatches(want, x *netlink.Route) bool {
	dst := x.Dst
	if dst == nil {
		dst = ipNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		if want.Family == netlink.FAMILY_V6 {
			dst = ipNet(netip.PrefixFrom(netip.IPv6Unspecified(), 0))
		}
	}
	if dst.String() != want.Dst.String() || x.Type != want.Type || x.Priority != want.Priority ||
		x.Tos != want.Tos || x.Protocol != want.Protocol || !x.Gw.Equal(want.Gw) {
		return false
	}
	if want.LinkIndex != 0 && x.LinkIndex != want.LinkIndex {
		return false
	}
	if want.Src != nil && !x.Src.Equal(want.Src) {
		return false
	}
	if len(want.MultiPath) != len(x.MultiPath) {
		return false
	}
	for i, nh := range want.MultiPath {
		if !nh.Gw.Equal(x.MultiPath[i].Gw) || (nh.LinkIndex != 0 && nh.LinkIndex != x.MultiPath[i].LinkIndex) {
			return false
		}
	}
	return true
}

// WatchRouting reports changes that may have removed a route, a rule or
// an address vipd installed, or made one installable again: routes and
// rules deleted (only those whose protocol ours accepts, when ours is
// not nil: vipd marks its own), addresses added or deleted, interfaces
// changed. A burst of changes leaves one token in the returned channel
// (capacity one), so a slow reader sees that something changed, not every
// change. Watching stops, and the channel is closed, when ctx ends.
func WatchRouting(ctx context.Context, ours func(proto uint8) bool) (<-chan struct{}, error) {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE,
		unix.RTNLGRP_LINK,
		unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR,
		unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
		unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_IPV6_RULE)
	if err != nil {
		return nil, fmt.Errorf("subscribe to routing changes: %w", err)
	}
	if ours == nil {
		ours = func(uint8) bool { return true }
	}
	out := make(chan struct{}, 1)
	poke := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		s.Close() // wakes Receive (the socket is in the poller)
	}()
	go func() {
		defer close(out)
		defer close(stop)
		for {
			msgs, _, err := s.Receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, unix.ENOBUFS) {
					// Messages were lost: anything may have changed.
					poke()
					continue
				}
				return
			}
			for _, msg := range msgs {
				switch msg.Header.Type {
				case unix.RTM_DELROUTE:
					if p, ok := routeProtocol(msg.Data); ok && ours(p) {
						poke()
					}
				case unix.RTM_DELRULE:
					if p, ok := ruleProtocol(msg.Data); ok && ours(p) {
						poke()
					}
				case unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWLINK, unix.RTM_DELLINK:
					poke()
				}
			}
		}
	}()
	return out, nil
}

// routeProtocol reads rtm_protocol of a route message.
func routeProtocol(b []byte) (uint8, bool) {
	if len(b) < unix.SizeofRtMsg {
		return 0, false
	}
	return b[5], true // family, dst_len, src_len, tos, table, protocol
}

// ruleProtocol reads FRA_PROTOCOL of a rule message (0 when absent).
func ruleProtocol(b []byte) (uint8, bool) {
	const hdr = 12 // struct fib_rule_hdr
	if len(b) < hdr {
		return 0, false
	}
	attrs, err := nl.ParseRouteAttr(b[hdr:])
	if err != nil {
		return 0, false
	}
	for _, a := range attrs {
		if a.Attr.Type == nl.FRA_PROTOCOL && len(a.Value) >= 1 {
			return a.Value[0], true
		}
	}
	return 0, true
}
