package netif

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"golang.org/x/sys/unix"
)

func TestRouteString(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		r    Route
		want string
	}{
		{Route{Dst: p("198.19.5.0/24"), Via: a("198.18.0.1"), Dev: "eth0"}, "198.19.5.0/24 via 198.18.0.1 dev eth0"},
		{Route{Type: "blackhole", Dst: p("198.19.6.0/24"), Table: 100, Metric: 5}, "blackhole 198.19.6.0/24 table 100 metric 5"},
		{Route{Dst: p("0.0.0.0/0"), Via: a("198.18.0.1"), Table: 254}, "0.0.0.0/0 via 198.18.0.1"},
		{Route{Dst: p("198.19.7.0/24"), Dev: "eth0", Src: a("198.18.0.11"), Scope: "link", Protocol: "static", TOS: 4,
			Metrics: Metrics{MTU: 1400, MTULock: true, AdvMSS: 1300, QuickACK: true, Congctl: "reno"}},
			"198.19.7.0/24 src 198.18.0.11 dev eth0 scope link proto static tos 0x04 mtu lock 1400 advmss 1300 quickack 1 congctl reno"},
		{Route{Dst: p("198.19.8.0/24"), Nexthops: []Nexthop{{Via: a("198.18.0.2"), Weight: 2}, {Via: a("198.18.0.3"), Dev: "eth0", OnLink: true}}, Append: true},
			"198.19.8.0/24 nexthop via 198.18.0.2 weight 2 nexthop via 198.18.0.3 dev eth0 onlink append"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestRouteScopeAndRefusals(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		r     Route
		scope uint8
	}{
		{Route{Dst: p("198.19.5.0/24"), Via: a("198.18.0.1")}, unix.RT_SCOPE_UNIVERSE},
		{Route{Dst: p("198.19.5.0/24")}, unix.RT_SCOPE_LINK}, // dev only: on the link
		{Route{Dst: p("198.19.5.0/24"), Nexthops: []Nexthop{{Via: a("198.18.0.1")}}}, unix.RT_SCOPE_UNIVERSE},
		{Route{Type: "local", Dst: p("198.19.5.1/32")}, unix.RT_SCOPE_HOST},
		{Route{Type: "broadcast", Dst: p("198.19.5.255/32")}, unix.RT_SCOPE_LINK},
		{Route{Type: "blackhole", Dst: p("198.19.5.0/24")}, unix.RT_SCOPE_UNIVERSE},
		{Route{Dst: p("fd00:5::/64")}, unix.RT_SCOPE_UNIVERSE},
		{Route{Dst: p("198.19.5.0/24"), Scope: "host"}, unix.RT_SCOPE_HOST},
	} {
		nr, err := tc.r.netlink()
		if err != nil {
			t.Errorf("%v: %v", tc.r, err)
			continue
		}
		if uint8(nr.Scope) != tc.scope {
			t.Errorf("%v: scope %d, want %d", tc.r, nr.Scope, tc.scope)
		}
		if nr.Protocol != ProtoKeepalived {
			t.Errorf("%v: protocol %d, want keepalived's", tc.r, nr.Protocol)
		}
	}
	for _, r := range []Route{
		{Type: "bogus", Dst: p("198.19.5.0/24")},
		{Dst: p("198.19.5.0/24"), Via: a("fd00::1")},
		{Dst: p("198.19.5.0/24"), Src: a("fd00::1")},
		{Dst: p("198.19.5.0/24"), Scope: "galaxy"},
		{Dst: p("198.19.5.0/24"), Protocol: "nosuch"},
		{Dst: p("198.19.5.0/24"), Realms: "a/b"},
		{Dst: p("198.19.5.0/24"), Nexthops: []Nexthop{{Weight: 300}}},
		{Dst: p("198.19.5.0/24"), Metrics: Metrics{MTU: 1, MTULock: true, RTOMin: 1, RTOMinLock: true}},
		{},
	} {
		if _, err := r.netlink(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

// containsAll fails t for every one of wants that out lacks, showing out.
func containsAll(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func countLines(out, sub string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

func TestRoutesInNamespace(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1", "198.18.0.11/24", "fd00::11/64")
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	gw := Route{Dst: p("198.19.5.0/24"), Via: a("198.18.0.1"), Dev: "eth0"}
	bh := Route{Type: "blackhole", Dst: p("198.19.6.0/24"), Table: 100, Metric: 5}
	link := Route{Dst: p("198.19.7.0/24"), Dev: "eth0", Src: a("198.18.0.11"), Metrics: Metrics{MTU: 1400, MTULock: true, AdvMSS: 1300}}
	mp := Route{Dst: p("198.19.8.0/24"), Nexthops: []Nexthop{{Via: a("198.18.0.2"), Dev: "eth0", Weight: 2}, {Via: a("198.18.0.3"), Dev: "eth0"}}}
	v6 := Route{Dst: p("fd00:5::/64"), Via: a("fd00::1"), Dev: "eth0", Metric: 50}
	def := Route{Dst: p("0.0.0.0/0"), Via: a("198.18.0.1"), Table: 200, Protocol: "static"}
	all := []Route{gw, bh, link, mp, v6, def}
	m := NewRoutes()
	do(t, h, func() error {
		for _, r := range all {
			for i := 0; i < 2; i++ { // the second Add is a no-op
				if err := m.Add(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	show := func(args ...string) string {
		return h.MustRun("ip", append([]string{"-d"}, args...)...)
	}
	v4 := show("route", "show", "table", "all")
	containsAll(t, v4,
		"unicast 198.19.5.0/24 via 198.18.0.1 dev eth0 table main proto keepalived scope global",
		"blackhole 198.19.6.0/24 table 100 proto keepalived scope global metric 5",
		"unicast 198.19.7.0/24 dev eth0 table main proto keepalived scope link src 198.18.0.11",
		"mtu lock 1400 advmss 1300",
		"unicast 198.19.8.0/24 table main proto keepalived scope global",
		"nexthop via 198.18.0.2 dev eth0 weight 2",
		"nexthop via 198.18.0.3 dev eth0 weight 1",
		"unicast default via 198.18.0.1 dev eth0 table 200 proto static scope global",
	)
	for _, dst := range []string{"198.19.5.0/24", "198.19.6.0/24", "198.19.7.0/24", "198.19.8.0/24"} {
		if n := countLines(v4, dst); n != 1 {
			t.Errorf("%s appears %d times after adding it twice:\n%s", dst, n, v4)
		}
	}
	if out := show("-6", "route", "show"); !strings.Contains(out, "fd00:5::/64 via fd00::1 dev eth0 proto keepalived scope global metric 50") {
		t.Errorf("IPv6 route missing:\n%s", out)
	}

	// Someone else's route to the same destination, another gateway and
	// metric, and someone else's identical route: Remove takes only ours.
	h.MustRun("ip", "route", "add", "198.19.5.0/24", "via", "198.18.0.2", "metric", "10")
	do(t, h, func() error {
		for _, r := range all {
			if ok, err := RoutePresent(r); err != nil || !ok {
				return fmt.Errorf("RoutePresent(%v) = %v, %v", r, ok, err)
			}
		}
		other := gw
		other.Via = a("198.18.0.9")
		if ok, err := RoutePresent(other); err != nil || ok {
			return fmt.Errorf("RoutePresent(%v) = %v, %v for an absent route", other, ok, err)
		}
		if err := m.Remove(gw); err != nil {
			return err
		}
		if err := m.Remove(gw); err != nil { // absent: not an error
			return err
		}
		if ok, _ := RoutePresent(gw); ok {
			return errors.New("route still present after Remove")
		}
		if len(m.Added()) != len(all)-1 {
			return fmt.Errorf("Added() has %d routes, want %d", len(m.Added()), len(all)-1)
		}
		return nil
	})
	if out := show("route", "show", "198.19.5.0/24"); !strings.Contains(out, "via 198.18.0.2 dev eth0 proto boot scope global metric 10") || strings.Contains(out, "198.18.0.1") {
		t.Errorf("Remove took the wrong route:\n%s", out)
	}

	// A route left behind by a killed daemon is adopted: Add succeeds and
	// RemoveAll takes it.
	h.MustRun("ip", "route", "add", "198.19.9.0/24", "via", "198.18.0.1", "dev", "eth0", "proto", "keepalived")
	left := Route{Dst: p("198.19.9.0/24"), Via: a("198.18.0.1"), Dev: "eth0"}
	do(t, h, func() error {
		if err := m.Add(left); err != nil {
			return err
		}
		// The kernel refuses; the error says what and why.
		err := m.Add(Route{Dst: p("198.19.10.0/24"), Via: a("198.20.0.1")})
		if err == nil || !errors.Is(err, unix.ENETUNREACH) || !strings.Contains(err.Error(), "198.19.10.0/24 via 198.20.0.1") {
			return fmt.Errorf("unreachable gateway: %v", err)
		}
		if err := m.Add(Route{Dst: p("198.19.10.0/24"), Dev: "nope0"}); err == nil || !strings.Contains(err.Error(), "nope0") {
			return fmt.Errorf("missing interface: %v", err)
		}
		return m.RemoveAll()
	})
	v4 = show("route", "show", "table", "all")
	for _, g := range []string{"198.19.6.0", "198.19.7.0", "198.19.8.0", "198.19.9.0", "default via 198.18.0.1"} {
		if strings.Contains(v4, g) {
			t.Errorf("%s still there after RemoveAll:\n%s", g, v4)
		}
	}
	if !strings.Contains(v4, "198.18.0.0/24 dev eth0") || !strings.Contains(v4, "198.19.5.0/24 via 198.18.0.2") {
		t.Errorf("RemoveAll took routes it did not add:\n%s", v4)
	}
	if out := show("-6", "route", "show"); strings.Contains(out, "fd00:5::") {
		t.Errorf("IPv6 route still there:\n%s", out)
	}
}

func TestRulesInNamespace(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1", "198.18.0.11/24", "fd00::11/64")
	p := netip.MustParsePrefix
	rule := func(f func(*Rule)) Rule { r := NewRule(); f(&r); return r }
	from := rule(func(r *Rule) { r.From, r.Table, r.Priority = p("198.19.5.0/24"), 100, 100 })
	bh := rule(func(r *Rule) {
		r.To, r.FWMark, r.FWMask, r.Iif, r.Priority, r.Action = p("198.19.6.0/24"), 0x10, 0xff, "eth0", 101, "blackhole"
	})
	v6 := rule(func(r *Rule) { r.From, r.Table, r.Priority = p("fd00:5::/64"), 200, 102 })
	ports := rule(func(r *Rule) {
		r.IPProto, r.DPort, r.SPort, r.Table, r.Priority = "tcp", &PortRange{80, 90}, &PortRange{1000, 2000}, 100, 103
	})
	uid := rule(func(r *Rule) { r.UIDRange, r.Table, r.Priority, r.Inet6 = &[2]uint32{1000, 2000}, 300, 104, true })
	not := rule(func(r *Rule) {
		r.Not, r.From, r.Action, r.Goto, r.Priority = true, p("198.19.7.0/24"), "goto", 200, 105
	})
	supp := rule(func(r *Rule) { r.Priority, r.SuppressPrefixLen = 106, 0 })
	all := []Rule{from, bh, v6, ports, uid, not, supp}
	m := NewRules()
	do(t, h, func() error {
		for _, r := range all {
			for i := 0; i < 2; i++ {
				if err := m.Add(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
	v4 := h.MustRun("ip", "rule", "show")
	v6out := h.MustRun("ip", "-6", "rule", "show")
	containsAll(t, v4,
		"100:\tfrom 198.19.5.0/24 lookup 100 proto keepalived",
		"101:\tfrom all to 198.19.6.0/24 fwmark 0x10/0xff iif eth0 blackhole proto keepalived",
		"103:\tfrom all ipproto tcp sport 1000-2000 dport 80-90 lookup 100 proto keepalived",
		"105:\tnot from 198.19.7.0/24 goto 200 [unresolved] proto keepalived",
		"106:\tfrom all lookup main suppress_prefixlength 0 proto keepalived",
	)
	containsAll(t, v6out,
		"102:\tfrom fd00:5::/64 lookup 200 proto keepalived",
		"104:\tfrom all uidrange 1000-2000 lookup 300 proto keepalived",
	)
	for _, pref := range []string{"100:", "101:", "103:", "105:", "106:"} {
		if n := countLines(v4, pref); n != 1 {
			t.Errorf("rule %s appears %d times after adding it twice:\n%s", pref, n, v4)
		}
	}
	// Someone else's rule with the same selector at another preference.
	h.MustRun("ip", "rule", "add", "from", "198.19.5.0/24", "lookup", "100", "pref", "200")
	do(t, h, func() error {
		for _, r := range all {
			if ok, err := RulePresent(r); err != nil || !ok {
				return fmt.Errorf("RulePresent(%v) = %v, %v", r, ok, err)
			}
		}
		if err := m.Remove(from); err != nil {
			return err
		}
		if err := m.Remove(from); err != nil {
			return err
		}
		if ok, _ := RulePresent(from); ok {
			return errors.New("rule present after Remove")
		}
		return m.RemoveAll()
	})
	v4 = h.MustRun("ip", "rule", "show")
	v6out = h.MustRun("ip", "-6", "rule", "show")
	if !strings.Contains(v4, "200:\tfrom 198.19.5.0/24 lookup 100") {
		t.Errorf("someone else's rule went:\n%s", v4)
	}
	for _, g := range []string{"100:", "101:", "103:", "105:", "106:"} {
		if strings.Contains(v4, g) {
			t.Errorf("rule %s still there:\n%s", g, v4)
		}
	}
	if strings.Contains(v6out, "102:") || strings.Contains(v6out, "104:") {
		t.Errorf("IPv6 rules still there:\n%s", v6out)
	}
	for _, bad := range []Rule{
		rule(func(r *Rule) { r.Action = "jump" }),
		rule(func(r *Rule) { r.Action = "goto" }),
		rule(func(r *Rule) { r.From, r.To = p("198.19.5.0/24"), p("fd00::/64") }),
		rule(func(r *Rule) { r.IPProto = "nosuch" }),
		rule(func(r *Rule) { r.Table, r.SuppressPrefixLen = 1000, 0 }),
	} {
		if _, err := bad.netlink(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestWatchRouting(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan struct{}
	do(t, h, func() (err error) {
		ch, err = WatchRouting(ctx, func(p uint8) bool { return p == ProtoKeepalived })
		return
	})
	drain := func() {
		for {
			select {
			case <-ch:
			case <-time.After(100 * time.Millisecond):
				return
			}
		}
	}
	expect := func(what string, cmd ...string) {
		t.Helper()
		drain()
		h.MustRun("ip", cmd...)
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no token after %s", what)
		}
	}
	quiet := func(what string, cmd ...string) {
		t.Helper()
		drain()
		h.MustRun("ip", cmd...)
		select {
		case <-ch:
			t.Fatalf("a token after %s", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	h.MustRun("ip", "route", "add", "198.19.5.0/24", "via", "198.18.0.1", "proto", "keepalived")
	h.MustRun("ip", "route", "add", "198.19.6.0/24", "via", "198.18.0.1")
	h.MustRun("ip", "rule", "add", "from", "198.19.5.0/24", "lookup", "100", "pref", "100", "proto", "keepalived")
	h.MustRun("ip", "rule", "add", "from", "198.19.6.0/24", "lookup", "100", "pref", "101")
	quiet("someone else's route deleted", "route", "del", "198.19.6.0/24")
	quiet("someone else's rule deleted", "rule", "del", "pref", "101")
	quiet("a route added", "route", "add", "198.19.7.0/24", "via", "198.18.0.1", "proto", "keepalived")
	expect("a route deleted", "route", "del", "198.19.5.0/24")
	expect("a rule deleted", "rule", "del", "pref", "100")
	expect("an address added", "addr", "add", "198.18.0.200/24", "dev", "eth0")
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}
