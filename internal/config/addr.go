package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vipd/vipd/internal/netif"
)

// parsePrefix parses "IP[/MASK]" where MASK is a prefix length; without a
// mask the prefix is the full address (/32, /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		a, err := netip.ParseAddr(s[:i])
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid IP address '%s'", s[:i])
		}
		bits, err := strconv.Atoi(s[i+1:])
		if err != nil || bits < 0 || bits > a.BitLen() {
			// keepalived also accepts a dotted netmask after '/'
			if m, err2 := netip.ParseAddr(s[i+1:]); err2 == nil && m.Is4() && a.Is4() {
				if b, ok := maskBits(m); ok {
					return netip.PrefixFrom(a, b), nil
				}
			}
			return netip.Prefix{}, fmt.Errorf("invalid prefix length '%s' for %s", s[i+1:], s[:i])
		}
		return netip.PrefixFrom(a, bits), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address '%s'", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// maskBits converts a dotted IPv4 netmask to a prefix length.
func maskBits(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

func parseScope(s string) (Scope, bool) {
	switch s {
	case "global", "site", "link", "host", "nowhere":
		return Scope(s), true
	}
	if v, err := strconv.Atoi(s); err == nil && v >= 0 && v <= 255 {
		switch v {
		case 0:
			return ScopeGlobal, true
		case 200:
			return ScopeSite, true
		case 253:
			return ScopeLink, true
		case 254:
			return ScopeHost, true
		case 255:
			return ScopeNowhere, true
		}
	}
	return "", false
}

// parseVIP parses one line of virtual_ipaddress / static_ipaddress.
// vipValued are the address options followed by a value, with what the
// value is (for the error when it is missing).
var vipValued = map[string]string{
	"brd": "an address, + or -", "broadcast": "an address, + or -", "dev": "an interface name",
	"scope": "a scope", "label": "a label", "peer": "an address",
	"track_group": "a track_group name", "preferred_lft": "a number of seconds or forever",
}

func parseVIP(words []string, static bool) (VIP, error) {
	v := VIP{Scope: ScopeGlobal}
	p, err := parsePrefix(words[0])
	if err != nil {
		return v, err
	}
	v.Prefix = p
	need := func(i int, what string) (string, error) {
		if i+1 >= len(words) {
			return "", fmt.Errorf("'%s' needs %s", words[i], what)
		}
		return words[i+1], nil
	}
	for i := 1; i < len(words); i++ {
		w := words[i]
		// The options that take a value get it here; their cases read s.
		var s string
		if what, ok := vipValued[w]; ok {
			v2, err := need(i, what)
			if err != nil {
				return v, err
			}
			s = v2
			i++
		}
		switch w {
		case "brd", "broadcast":
			switch s {
			case "+":
				v.BrdSet = true
			case "-":
				v.BrdClear = true
			default:
				a, err := netip.ParseAddr(s)
				if err != nil || !a.Is4() || !p.Addr().Is4() {
					return v, fmt.Errorf("invalid broadcast address '%s'", s)
				}
				v.Brd = a
			}
		case "dev":
			v.Dev = s
		case "scope":
			sc, ok := parseScope(s)
			if !ok {
				return v, fmt.Errorf("invalid scope '%s' (use global, site, link, host or nowhere)", s)
			}
			v.Scope = sc
		case "label":
			if len(s) >= 16 {
				return v, fmt.Errorf("label '%s' longer than 15 characters", s)
			}
			v.Label = s
		case "peer":
			pp, err := parsePrefix(s)
			if err != nil {
				return v, fmt.Errorf("invalid peer: %v", err)
			}
			v.Peer = pp
		case "home":
			v.Home = true
		case "-nodad", "nodad":
			v.NoDAD = true
		case "mngtmpaddr":
			v.MngTmpAddr = true
		case "noprefixroute":
			v.NoPrefixRoute = true
		case "autojoin":
			v.AutoJoin = true
		case "no_track":
			v.NoTrack = true
		case "use_vmac":
			if static {
				return v, fmt.Errorf("use_vmac is not valid for static addresses")
			}
			v.UseVMAC = true
		case "track_group":
			v.TrackGroup = s
		case "preferred_lft":
			if s == "forever" {
				f := -1
				v.PreferredLft = &f
			} else {
				n, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return v, fmt.Errorf("invalid preferred_lft '%s'", s)
				}
				x := int(n)
				v.PreferredLft = &x
			}
		default:
			return v, fmt.Errorf("unknown address option '%s'", w)
		}
	}
	return v, nil
}

var routeTypes = map[string]bool{
	"unicast": true, "blackhole": true, "unreachable": true, "prohibit": true, "throw": true,
	"local": true, "broadcast": true, "anycast": true, "multicast": true, "nat": true,
}

var routeMetrics = map[string]bool{
	"mtu": true, "advmss": true, "rtt": true, "rttvar": true, "reordering": true, "window": true,
	"cwnd": true, "ssthresh": true, "realms": true, "rto_min": true, "initcwnd": true, "initrwnd": true,
	"quickack": true, "congctl": true, "features": true, "hoplimit": true, "pref": true,
	"fastopen_no_cookie": true, "ttl-propagate": true, "expires": true,
}

// routeWarnings are keepalived's deprecation warnings for route syntax.
type routeWarning struct{ msg, hint string }

// parseRoute parses one line of virtual_routes / static_routes.
// routeValued are the ip-route options followed by a value.
var routeValued = map[string]bool{"src": true, "to": true, "dev": true, "oif": true, "weight": true, "table": true, "metric": true, "priority": true, "preference": true, "scope": true, "protocol": true, "proto": true, "tos": true, "dsfield": true, "vrf": true, "track_group": true}

// An option keepalived takes and vipd cannot program (encap, pref, ...)
// is returned in unsupported, apart from errors: keepalived's verdict on
// the line stands, and the caller decides.
func parseRoute(words []string) (r Route, warns []routeWarning, unsupported []string, err error) {
	r.Protocol = netif.ProtoKeepalived
	haveDst := false
	var nh *Nexthop
	need := func(i int) (string, error) {
		if i+1 >= len(words) {
			return "", fmt.Errorf("'%s' needs a value", words[i])
		}
		return words[i+1], nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if routeTypes[w] && !haveDst && r.Type == "" {
			r.Type = w
			continue
		}
		if routeMetrics[w] {
			s, err := need(i)
			if err != nil {
				return r, warns, unsupported, err
			}
			i++
			lock := false
			if s == "lock" {
				lock = true
				if s, err = need(i); err != nil {
					return r, warns, unsupported, err
				}
				i++
			}
			if err := setRouteMetric(&r, w, s, lock); errors.Is(err, errUnsupported) {
				unsupported = append(unsupported, err.Error())
			} else if err != nil {
				return r, warns, unsupported, err
			}
			continue
		}
		// The options that take a value get it here; their cases read s.
		var s string
		if routeValued[w] {
			v, err := need(i)
			if err != nil {
				return r, warns, unsupported, err
			}
			s = v
			i++
		}
		switch w {
		case "inet6":
			r.Inet6 = true
		case "src":
			a, err := netip.ParseAddr(s)
			if err != nil {
				return r, warns, unsupported, fmt.Errorf("invalid route src '%s'", s)
			}
			r.Src = a
		case "to":
			p, err := parsePrefix(s)
			if err != nil {
				return r, warns, unsupported, err
			}
			r.Dst, haveDst = p.Masked(), true
		case "via", "gw":
			if w == "gw" {
				warns = append(warns, routeWarning{`"gw" for routes is deprecated`, `use "via"`})
			}
			s, err := need(i)
			if err != nil {
				return r, warns, unsupported, err
			}
			i++
			if s == "inet" || s == "inet6" {
				if s, err = need(i); err != nil {
					return r, warns, unsupported, err
				}
				i++
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return r, warns, unsupported, fmt.Errorf("invalid gateway '%s'", s)
			}
			if nh != nil {
				nh.Via = a
			} else {
				r.Via = a
			}
		case "or":
			warns = append(warns, routeWarning{`"or" for routes is deprecated`, `use "nexthop"`})
			s, err := need(i)
			if err != nil {
				return r, warns, unsupported, err
			}
			i++
			a, err := netip.ParseAddr(s)
			if err != nil {
				return r, warns, unsupported, fmt.Errorf("invalid gateway '%s'", s)
			}
			if len(r.Nexthops) == 0 && r.Via.IsValid() {
				r.Nexthops = append(r.Nexthops, Nexthop{Via: r.Via, Dev: r.Dev})
				r.Via = netip.Addr{}
			}
			r.Nexthops = append(r.Nexthops, Nexthop{Via: a, Dev: r.Dev})
		case "dev", "oif":
			if nh != nil {
				nh.Dev = s
			} else {
				r.Dev = s
			}
		case "nexthop":
			r.Nexthops = append(r.Nexthops, Nexthop{})
			nh = &r.Nexthops[len(r.Nexthops)-1]
		case "weight":
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 || v > 256 || nh == nil {
				return r, warns, unsupported, fmt.Errorf("invalid nexthop weight '%s'", s)
			}
			nh.Weight = v
		case "onlink":
			if nh != nil {
				nh.OnLink = true
			} else {
				r.OnLink = true
			}
		case "table":
			t, err := parseTable(s)
			if err != nil {
				return r, warns, unsupported, err
			}
			r.Table = t
		case "metric", "priority", "preference":
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return r, warns, unsupported, fmt.Errorf("invalid metric '%s'", s)
			}
			r.Metric = uint32(v)
		case "scope":
			sc, ok := parseScope(s)
			if !ok {
				return r, warns, unsupported, fmt.Errorf("invalid scope '%s'", s)
			}
			r.Scope = sc
		case "protocol", "proto":
			v, err := protocolValue(s)
			if err != nil {
				return r, warns, unsupported, err
			}
			r.Protocol = v
		case "tos", "dsfield":
			v, err := strconv.ParseUint(s, 0, 8)
			if err != nil {
				return r, warns, unsupported, fmt.Errorf("invalid tos '%s'", s)
			}
			r.TOS = uint8(v)
		case "vrf":
			r.VRF = s
		case "encap":
			if i+1 >= len(words) {
				return r, warns, unsupported, fmt.Errorf("'encap' needs a type")
			}
			unsupported = append(unsupported, "encap "+strings.Join(words[i+1:], " ")+": "+errUnsupported.Error())
			i = len(words)
		case "append":
			r.Append = true
		case "prepend":
			r.Append = false
		case "no_track":
			r.NoTrack = true
		case "track_group":
			r.TrackGroup = s
		default:
			if haveDst {
				return r, warns, unsupported, fmt.Errorf("unknown route option '%s'", w)
			}
			if w == "default" {
				r.Dst, haveDst = netip.MustParsePrefix("0.0.0.0/0"), true
				continue
			}
			p, err := parsePrefix(w)
			if err != nil {
				return r, warns, unsupported, err
			}
			r.Dst, haveDst = p.Masked(), true
		}
	}
	if !haveDst {
		return r, warns, unsupported, fmt.Errorf("route has no destination")
	}
	if r.Inet6 && r.Dst == netip.PrefixFrom(netip.IPv4Unspecified(), 0) {
		r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0) // "inet6 default"
	}
	if r.Inet6 && r.Dst.Addr().Is4() {
		return r, warns, unsupported, fmt.Errorf("inet6 with the IPv4 destination %v", r.Dst)
	}
	return r, warns, unsupported, nil
}

func parseTable(s string) (uint32, error) {
	switch s {
	case "main":
		return 254, nil
	case "local":
		return 255, nil
	case "default":
		return 253, nil
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid table '%s' (a number, main, local or default)", s)
	}
	return uint32(v), nil
}

func parsePortRange(s string) (*PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port '%s'", s)
	}
	b := a
	if ok {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, fmt.Errorf("invalid port range '%s'", s)
		}
	}
	return &PortRange{Min: uint16(a), Max: uint16(b)}, nil
}

// parseRule parses one line of virtual_rules / static_rules.
//
// Options keepalived takes and vipd cannot program (l3mdev) are returned
// in unsupported, as parseRoute does.
func parseRule(words []string) (r Rule, unsupported []string, err error) {
	r = Rule{SuppressPrefixLen: -1, SuppressIfGroup: -1, Protocol: netif.ProtoKeepalived}
	need := func(i int) (string, error) {
		if i+1 >= len(words) {
			return "", fmt.Errorf("'%s' needs a value", words[i])
		}
		return words[i+1], nil
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		var s string
		var err error
		switch w {
		case "not":
			r.Not = true
			continue
		case "inet6":
			r.Inet6 = true
			continue
		case "l3mdev":
			unsupported = append(unsupported, "l3mdev: "+errUnsupported.Error())
			continue
		case "no_track":
			r.NoTrack = true
			continue
		case "blackhole", "unreachable", "prohibit", "nop":
			r.Action = w
			continue
		}
		if s, err = need(i); err != nil {
			return r, unsupported, err
		}
		i++
		switch w {
		case "from", "to":
			p := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if s != "all" {
				if p, err = parsePrefix(s); err != nil {
					return r, unsupported, fmt.Errorf("invalid rule %s address %s", w, s)
				}
			}
			if w == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "table", "lookup":
			if r.Table, err = parseTable(s); err != nil {
				return r, unsupported, err
			}
		case "preference", "priority", "pref", "prio":
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return r, unsupported, fmt.Errorf("invalid rule preference '%s'", s)
			}
			r.Priority = uint32(v)
		case "goto":
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return r, unsupported, fmt.Errorf("invalid goto target '%s'", s)
			}
			r.Action, r.Goto = "goto", uint32(v)
		case "tos", "dsfield":
			v, err := strconv.ParseUint(s, 0, 8)
			if err != nil {
				return r, unsupported, fmt.Errorf("invalid tos '%s'", s)
			}
			r.TOS = uint8(v)
		case "fwmark":
			m, mask, hasMask := strings.Cut(s, "/")
			v, err := strconv.ParseUint(m, 0, 32)
			if err != nil {
				return r, unsupported, fmt.Errorf("invalid fwmark '%s'", s)
			}
			r.FWMark = uint32(v)
			if hasMask {
				mv, err := strconv.ParseUint(mask, 0, 32)
				if err != nil {
					return r, unsupported, fmt.Errorf("invalid fwmark mask '%s'", s)
				}
				r.FWMask = uint32(mv)
			}
		case "realms":
			if r.Realms, err = realmsValue(s); err != nil {
				return r, unsupported, err
			}
		case "iif", "dev":
			r.Iif = s
		case "oif":
			r.Oif = s
		case "suppress_prefixlength":
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 || v > 128 {
				return r, unsupported, fmt.Errorf("invalid suppress_prefixlength '%s'", s)
			}
			r.SuppressPrefixLen = v
		case "suppress_ifgroup":
			if r.SuppressIfGroup, err = ifGroupValue(s); err != nil {
				return r, unsupported, err
			}
		case "uidrange":
			lo, hi, ok := strings.Cut(s, "-")
			a, err1 := strconv.ParseUint(lo, 10, 32)
			b, err2 := strconv.ParseUint(hi, 10, 32)
			if !ok || err1 != nil || err2 != nil || b < a {
				return r, unsupported, fmt.Errorf("invalid uidrange '%s'", s)
			}
			r.UIDRange = &[2]uint32{uint32(a), uint32(b)}
		case "protocol":
			if r.Protocol, err = protocolValue(s); err != nil {
				return r, unsupported, err
			}
		case "ip_proto", "ipproto":
			v, err := netif.IPProtoValue(s)
			if err != nil {
				return r, unsupported, fmt.Errorf("invalid ip_proto '%s': want a number 1..255 or a name (tcp, udp, sctp, icmp, ipv6-icmp, ...)", s)
			}
			r.IPProto = uint8(v)
		case "sport":
			if r.SPort, err = parsePortRange(s); err != nil {
				return r, unsupported, err
			}
		case "dport":
			if r.DPort, err = parsePortRange(s); err != nil {
				return r, unsupported, err
			}
		case "track_group":
			r.TrackGroup = s
		default:
			return r, unsupported, fmt.Errorf("unknown rule option '%s'", w)
		}
	}
	// "from all" with inet6 is ::/0; both mean no selector.
	for _, p := range []*netip.Prefix{&r.From, &r.To} {
		if p.IsValid() && p.Bits() == 0 {
			*p = netip.Prefix{}
		}
		if r.Inet6 && p.IsValid() && p.Addr().Is4() {
			return r, unsupported, fmt.Errorf("inet6 with an IPv4 address %v", *p)
		}
	}
	return r, unsupported, nil
}
