package netif

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Rule is a policy routing rule as `ip rule add` takes it: keepalived's
// virtual_rules and static_rules lines, resolved. Zero values mean what
// ip(8) means when the option is left out.
type Rule struct {
	Inet6 bool // IPv6 even without an IPv6 from/to
	Not   bool // invert the selector
	// From and To select by source and destination; an invalid prefix or
	// a /0 is "all".
	From, To netip.Prefix
	// Priority is the preference; 0 lets the kernel choose (keepalived
	// assigns one instead: the caller should too).
	Priority uint32
	// Action is "" (lookup Table), goto, nop, blackhole, unreachable or
	// prohibit.
	Action string
	Table  uint32 // for lookup: 0 is main
	Goto   uint32 // for goto: the target preference
	TOS    uint8
	FWMark uint32
	FWMask uint32 // 0: none (the whole mark)
	Realms string // [FROM/]TO, numbers
	Iif    string
	Oif    string
	// SuppressPrefixLen and SuppressIfGroup are -1 when unset (a zero
	// Rule has them at 0: use NewRule or set them).
	SuppressPrefixLen int
	SuppressIfGroup   int
	UIDRange          *[2]uint32
	Protocol          string // name or number; "" is keepalived
	IPProto           string // name (tcp, udp, sctp, icmp, ipv6-icmp, ...) or number
	SPort, DPort      *PortRange
}

// PortRange is an inclusive port range of a rule.
type PortRange struct{ Min, Max uint16 }

// NewRule returns a rule with every option unset.
func NewRule() Rule { return Rule{SuppressPrefixLen: -1, SuppressIfGroup: -1} }

var ruleActions = map[string]uint8{
	"":            nl.FR_ACT_TO_TBL,
	"lookup":      nl.FR_ACT_TO_TBL,
	"table":       nl.FR_ACT_TO_TBL,
	"goto":        nl.FR_ACT_GOTO,
	"nop":         nl.FR_ACT_NOP,
	"blackhole":   nl.FR_ACT_BLACKHOLE,
	"unreachable": nl.FR_ACT_UNREACHABLE,
	"prohibit":    nl.FR_ACT_PROHIBIT,
}

var ipProtos = map[string]int{
	"icmp": unix.IPPROTO_ICMP, "igmp": unix.IPPROTO_IGMP, "tcp": unix.IPPROTO_TCP,
	"udp": unix.IPPROTO_UDP, "gre": unix.IPPROTO_GRE, "esp": unix.IPPROTO_ESP,
	"ah": unix.IPPROTO_AH, "ipv6-icmp": unix.IPPROTO_ICMPV6, "icmpv6": unix.IPPROTO_ICMPV6,
	"sctp": unix.IPPROTO_SCTP, "udplite": unix.IPPROTO_UDPLITE, "dccp": unix.IPPROTO_DCCP,
	"ipip": unix.IPPROTO_IPIP, "ipv6": unix.IPPROTO_IPV6,
}

// IPProtoValue maps an IP protocol name or number to its number.
func IPProtoValue(s string) (int, error) {
	if v, ok := ipProtos[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.ParseUint(s, 0, 8)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("ip_proto %q: want a number 1..255 or a name (tcp, udp, sctp, icmp, ipv6-icmp, ...)", s)
	}
	return int(v), nil
}

func (r Rule) is6() bool {
	return r.Inet6 || (r.From.IsValid() && r.From.Addr().Is6()) || (r.To.IsValid() && r.To.Addr().Is6())
}

func selector(p netip.Prefix) bool { return p.IsValid() && p.Bits() > 0 }

// String renders the rule in ip-rule syntax. It names every field, so two
// rules with the same string are the same rule.
func (r Rule) String() string {
	var b strings.Builder
	if r.Inet6 {
		b.WriteString("inet6 ")
	}
	if r.Not {
		b.WriteString("not ")
	}
	b.WriteString("from ")
	if selector(r.From) {
		b.WriteString(r.From.String())
	} else {
		b.WriteString("all")
	}
	if selector(r.To) {
		b.WriteString(" to " + r.To.String())
	}
	if r.Priority != 0 {
		fmt.Fprintf(&b, " pref %d", r.Priority)
	}
	if r.TOS != 0 {
		fmt.Fprintf(&b, " tos 0x%02x", r.TOS)
	}
	if r.FWMark != 0 || r.FWMask != 0 {
		fmt.Fprintf(&b, " fwmark %#x", r.FWMark)
		if r.FWMask != 0 {
			fmt.Fprintf(&b, "/%#x", r.FWMask)
		}
	}
	if r.Iif != "" {
		b.WriteString(" iif " + r.Iif)
	}
	if r.Oif != "" {
		b.WriteString(" oif " + r.Oif)
	}
	if r.UIDRange != nil {
		fmt.Fprintf(&b, " uidrange %d-%d", r.UIDRange[0], r.UIDRange[1])
	}
	if r.IPProto != "" {
		b.WriteString(" ipproto " + r.IPProto)
	}
	if r.SPort != nil {
		fmt.Fprintf(&b, " sport %d-%d", r.SPort.Min, r.SPort.Max)
	}
	if r.DPort != nil {
		fmt.Fprintf(&b, " dport %d-%d", r.DPort.Min, r.DPort.Max)
	}
	if r.Realms != "" {
		b.WriteString(" realms " + r.Realms)
	}
	switch r.Action {
	case "", "lookup", "table":
		t := r.Table
		if t == 0 {
			t = unix.RT_TABLE_MAIN
		}
		fmt.Fprintf(&b, " lookup %d", t)
	case "goto":
		fmt.Fprintf(&b, " goto %d", r.Goto)
	default:
		b.WriteString(" " + r.Action)
	}
	if r.SuppressPrefixLen >= 0 {
		fmt.Fprintf(&b, " suppress_prefixlength %d", r.SuppressPrefixLen)
	}
	if r.SuppressIfGroup >= 0 {
		fmt.Fprintf(&b, " suppress_ifgroup %d", r.SuppressIfGroup)
	}
	if r.Protocol != "" {
		b.WriteString(" proto " + r.Protocol)
	}
	return b.String()
}

// netlink builds the library's rule.
func (r Rule) netlink() (*netlink.Rule, error) {
	act, ok := ruleActions[r.Action]
	if !ok {
		return nil, fmt.Errorf("action %q: want lookup, goto, nop, blackhole, unreachable or prohibit", r.Action)
	}
	v6 := r.is6()
	for _, p := range []netip.Prefix{r.From, r.To} {
		if selector(p) && p.Addr().Is6() != v6 {
			return nil, fmt.Errorf("from %v and to %v are of different families", r.From, r.To)
		}
	}
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if v6 {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Invert = r.Not
	if selector(r.From) {
		nr.Src = ipNet(r.From.Masked())
	}
	if selector(r.To) {
		nr.Dst = ipNet(r.To.Masked())
	}
	if r.Priority != 0 {
		nr.Priority = int(r.Priority)
	}
	nr.Type = act
	nr.Table = 0
	switch act {
	case nl.FR_ACT_TO_TBL:
		nr.Table = unix.RT_TABLE_MAIN
		if r.Table != 0 {
			nr.Table = int(r.Table)
		}
	case nl.FR_ACT_GOTO:
		if r.Goto == 0 {
			return nil, errors.New("goto needs a target preference")
		}
		nr.Goto = int(r.Goto)
	}
	nr.Tos = uint(r.TOS)
	nr.Mark = r.FWMark
	if r.FWMask != 0 {
		m := r.FWMask
		nr.Mask = &m
	}
	realm, err := RealmsValue(r.Realms)
	if err != nil {
		return nil, err
	}
	if realm != 0 {
		nr.Flow = int(realm)
	}
	nr.IifName, nr.OifName = r.Iif, r.Oif
	if r.SuppressPrefixLen >= 0 || r.SuppressIfGroup >= 0 {
		// The library sends them only with a table below 256.
		if act != nl.FR_ACT_TO_TBL || nr.Table >= 256 {
			return nil, errors.New("suppress_prefixlength and suppress_ifgroup need a lookup of a table below 256")
		}
		nr.SuppressPrefixlen, nr.SuppressIfgroup = r.SuppressPrefixLen, r.SuppressIfGroup
	}
	if r.UIDRange != nil {
		nr.UIDRange = netlink.NewRuleUIDRange(r.UIDRange[0], r.UIDRange[1])
	}
	if r.IPProto != "" {
		if nr.IPProto, err = IPProtoValue(r.IPProto); err != nil {
			return nil, err
		}
	}
	if r.SPort != nil {
		nr.Sport = netlink.NewRulePortRange(r.SPort.Min, r.SPort.Max)
	}
	if r.DPort != nil {
		nr.Dport = netlink.NewRulePortRange(r.DPort.Min, r.DPort.Max)
	}
	if nr.Protocol, err = ProtocolValue(r.Protocol); err != nil {
		return nil, err
	}
	return nr, nil
}

// Rules adds and removes policy routing rules and remembers which ones it
// added, so that removing them all removes exactly those. Adding a rule
// that is already there counts as added (see Routes); removing one that
// is not there is not an error.
type Rules struct{ ledger ledger[Rule] }

// NewRules returns an empty manager.
func NewRules() *Rules { return &Rules{} }

// Add installs the rule (idempotent) and remembers it.
func (m *Rules) Add(r Rule) error {
	nr, err := r.netlink()
	if err != nil {
		return fmt.Errorf("rule %v: %w", r, err)
	}
	// RuleAdd sets NLM_F_EXCL: an identical rule is refused with EEXIST
	// instead of added twice.
	if err := netlink.RuleAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add rule %v: %w", r, err)
	}
	m.ledger.remember(r)
	return nil
}

// Remove deletes the rule if present (idempotent) and forgets it. The
// kernel deletes the first rule matching every attribute given, so a rule
// with the same selector but another table or preference stays.
func (m *Rules) Remove(r Rule) error {
	m.ledger.forget(r)
	nr, err := r.netlink()
	if err != nil {
		return fmt.Errorf("rule %v: %w", r, err)
	}
	if err := netlink.RuleDel(nr); err != nil && !gone(err) {
		return fmt.Errorf("remove rule %v: %w", r, err)
	}
	return nil
}

// Added returns the rules added and not removed since, in a stable order.
func (m *Rules) Added() []Rule {
	return m.ledger.list()
}

// RemoveAll removes every rule this manager added.
func (m *Rules) RemoveAll() error {
	return removeEach(m.Added(), m.Remove)
}

// RulePresent reports whether the rule is in the kernel's rule list.
func RulePresent(r Rule) (bool, error) {
	want, err := r.netlink()
	if err != nil {
		return false, fmt.Errorf("rule %v: %w", r, err)
	}
	list, err := netlink.RuleList(want.Family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list rules: %w", err)
	}
	for _, x := range list {
		if ruleMatches(want, &x) {
			return true, nil
		}
	}
	return false, nil
}

func ruleMatches(want, x *netlink.Rule) bool {
	netEq := func(a, b interface{ String() string }) bool { return a.String() == b.String() }
	if (want.Src == nil) != (x.Src == nil) || (want.Src != nil && !netEq(want.Src, x.Src)) {
		return false
	}
	if (want.Dst == nil) != (x.Dst == nil) || (want.Dst != nil && !netEq(want.Dst, x.Dst)) {
		return false
	}
	if want.Priority >= 0 && x.Priority != want.Priority {
		return false
	}
	if x.Invert != want.Invert || x.Table != want.Table || x.Tos != want.Tos || x.Mark != want.Mark ||
		x.IifName != want.IifName || x.OifName != want.OifName || x.IPProto != want.IPProto {
		return false
	}
	// The library does not report the action of a listed rule: a
	// blackhole and an unreachable rule with the same selector look alike.
	if want.Goto >= 0 && x.Goto != want.Goto {
		return false
	}
	if want.Mask != nil && (x.Mask == nil || *x.Mask != *want.Mask) {
		return false
	}
	if (want.Sport == nil) != (x.Sport == nil) || (want.Sport != nil && *want.Sport != *x.Sport) {
		return false
	}
	if (want.Dport == nil) != (x.Dport == nil) || (want.Dport != nil && *want.Dport != *x.Dport) {
		return false
	}
	if (want.UIDRange == nil) != (x.UIDRange == nil) || (want.UIDRange != nil && *want.UIDRange != *x.UIDRange) {
		return false
	}
	return true
}
