package daemon

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
)

// routesOf parses one route line the way a static_routes block holds it.
func routeLine(t *testing.T, line string) config.Route {
	t.Helper()
	c := parse(t, "static_routes {\n"+line+"\n}\n")
	if len(c.StaticRoutes) != 1 {
		t.Fatalf("%q: %d routes", line, len(c.StaticRoutes))
	}
	return c.StaticRoutes[0]
}

func ruleLine(t *testing.T, line string) config.Rule {
	t.Helper()
	c, _ := config.Parse("test.conf", []byte("static_rules {\n"+line+"\n}\n"), config.Options{})
	if len(c.StaticRules) != 1 {
		t.Fatalf("%q: %d rules", line, len(c.StaticRules))
	}
	return c.StaticRules[0]
}

func TestRouteOf(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		line string
		want netif.Route
	}{
		{"198.19.5.0/24 via 198.18.0.1 dev eth0",
			netif.Route{Dst: p("198.19.5.0/24"), Via: a("198.18.0.1"), Dev: "eth0"}},
		{"src 198.18.0.100 to 198.19.9.0/24 via 198.18.0.254 dev eth1 scope link table 100 metric 7 protocol bird tos 0x04 onlink",
			netif.Route{Dst: p("198.19.9.0/24"), Src: a("198.18.0.100"), Via: a("198.18.0.254"), Dev: "eth1", Scope: "link",
				Table: 100, Metric: 7, Protocol: "12", TOS: 4, OnLink: true}},
		{"blackhole 198.19.14.0/24", netif.Route{Type: "blackhole", Dst: p("198.19.14.0/24")}},
		{"unicast 198.19.14.0/24 dev eth0", netif.Route{Dst: p("198.19.14.0/24"), Dev: "eth0"}},
		{"0.0.0.0/0 gw 198.18.0.1 table 100", netif.Route{Dst: p("0.0.0.0/0"), Via: a("198.18.0.1"), Table: 100}},
		{"default via 198.18.0.1 table main", netif.Route{Dst: p("0.0.0.0/0"), Via: a("198.18.0.1"), Table: 254}},
		{"inet6 default via fd00::1", netif.Route{Dst: p("::/0"), Via: a("fd00::1")}},
		{"fd00:5::/64 via fd00::1 append", netif.Route{Dst: p("fd00:5::/64"), Via: a("fd00::1"), Append: true}},
		{"198.19.13.0/24 via 198.18.0.254 or 198.18.0.253 dev eth1",
			netif.Route{Dst: p("198.19.13.0/24"), Nexthops: []netif.Nexthop{{Via: a("198.18.0.254"), Dev: "eth1"}, {Via: a("198.18.0.253"), Dev: "eth1"}}}},
		{"198.19.100.0/24 table 6909 nexthop via 198.18.101.1 dev wlan0 onlink weight 1 nexthop via 198.18.101.2 dev wlan0 onlink weight 2",
			netif.Route{Dst: p("198.19.100.0/24"), Table: 6909, Nexthops: []netif.Nexthop{
				{Via: a("198.18.101.1"), Dev: "wlan0", OnLink: true, Weight: 1}, {Via: a("198.18.101.2"), Dev: "wlan0", OnLink: true, Weight: 2}}}},
		{"198.19.200.0/24 dev eth0 mtu lock 1000 hoplimit 100 advmss 101 rtt 102 rttvar 103 reordering 104 window 105 cwnd 106 ssthresh 107 realms 30/20 rto_min lock 10ms initcwnd 109 initrwnd 110 features ecn quickack 1 fastopen_no_cookie 1 congctl reno",
			netif.Route{Dst: p("198.19.200.0/24"), Dev: "eth0", Realms: "30/20", Metrics: netif.Metrics{
				MTU: 1000, MTULock: true, Hoplimit: 100, AdvMSS: 101, RTT: 102, RTTVar: 103, Reordering: 104, Window: 105,
				Cwnd: 106, Ssthresh: 107, RTOMin: 10, RTOMinLock: true, InitCwnd: 109, InitRwnd: 110, Features: 1,
				QuickACK: true, FastOpenNoCookie: true, Congctl: "reno"}}},
		{"198.19.201.0/24 dev eth0 rtt 1s rttvar 250ms", netif.Route{Dst: p("198.19.201.0/24"), Dev: "eth0", Metrics: netif.Metrics{RTT: 8000, RTTVar: 1000}}},
		{"198.19.202.0/24 dev eth0 vrf blue", netif.Route{Dst: p("198.19.202.0/24"), Dev: "eth0", VRF: "blue"}},
	} {
		if got := routeOf(routeLine(t, tc.line)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
	// Bad options are judged when the configuration is read
	// (config.TestRouteRuleOptions).
}

func TestRuleOf(t *testing.T) {
	p := netip.MustParsePrefix
	rule := func(f func(*netif.Rule)) netif.Rule { r := netif.NewRule(); f(&r); return r }
	for _, tc := range []struct {
		line string
		want netif.Rule
	}{
		{"from 198.19.2.0/24 table 1 preference 100", rule(func(r *netif.Rule) { r.From, r.Table, r.Priority = p("198.19.2.0/24"), 1, 100 })},
		{"from all to 198.19.2.0/24 lookup 5 pref 7", rule(func(r *netif.Rule) { r.To, r.Table, r.Priority = p("198.19.2.0/24"), 5, 7 })},
		{"from 198.19.28.0/24 to 198.19.29.0/26 table 7 iif eth0 oif eth1 tos 22 fwmark 24/12 preference 39 realms 30/20",
			rule(func(r *netif.Rule) {
				r.From, r.To, r.Table, r.Iif, r.Oif, r.TOS, r.FWMark, r.FWMask, r.Priority, r.Realms =
					p("198.19.28.0/24"), p("198.19.29.0/26"), 7, "eth0", "eth1", 22, 24, 12, 39, "30/20"
			})},
		{"not from 198.19.3.0/24 goto 40 prio 9", rule(func(r *netif.Rule) {
			r.Not, r.From, r.Action, r.Goto, r.Priority = true, p("198.19.3.0/24"), "goto", 40, 9
		})},
		{"to fd00:1::/112 from fd00:2::/96 table 6908 uidrange 10000-19999 pref 3",
			rule(func(r *netif.Rule) {
				r.To, r.From, r.Table, r.UIDRange, r.Priority = p("fd00:1::/112"), p("fd00:2::/96"), 6908, &[2]uint32{10000, 19999}, 3
			})},
		{"inet6 from all blackhole pref 4", rule(func(r *netif.Rule) { r.Inet6, r.Action, r.Priority = true, "blackhole", 4 })},
		{"from all ip_proto UDP sport 10-20 dport 20 table 2 pref 5 protocol 12",
			rule(func(r *netif.Rule) {
				r.IPProto, r.SPort, r.DPort, r.Table, r.Priority, r.Protocol = "17", &netif.PortRange{Min: 10, Max: 20}, &netif.PortRange{Min: 20, Max: 20}, 2, 5, "12"
			})},
		{"from all lookup main suppress_prefixlength 0 suppress_ifgroup default pref 6",
			rule(func(r *netif.Rule) { r.Table, r.SuppressPrefixLen, r.SuppressIfGroup, r.Priority = 254, 0, 0, 6 })},
	} {
		if got := ruleOf(ruleLine(t, tc.line)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

func TestStaticAddr(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	for _, tc := range []struct {
		line  string
		want  netif.Addr
		warns int
	}{
		{"198.18.0.200/24", netif.Addr{Prefix: p("198.18.0.200/24"), Dev: "eth9", Scope: "global"}, 0},
		{"198.18.0.200/24 dev eth1 label eth1:s scope link", netif.Addr{Prefix: p("198.18.0.200/24"), Dev: "eth1", Label: "eth1:s", Scope: "link"}, 0},
		{"198.18.0.200/24 brd + dev eth1", netif.Addr{Prefix: p("198.18.0.200/24"), Dev: "eth1", Scope: "global", Broadcast: a("198.18.0.255")}, 0},
		{"198.18.0.200/24 brd - dev eth1", netif.Addr{Prefix: p("198.18.0.200/24"), Dev: "eth1", Scope: "global", Broadcast: a("198.18.0.0")}, 0},
		{"198.18.0.200/24 brd 198.18.0.201 dev eth1", netif.Addr{Prefix: p("198.18.0.200/24"), Dev: "eth1", Scope: "global", Broadcast: a("198.18.0.201")}, 0},
		{"198.18.0.200/32 peer 198.18.0.201/32 dev eth1 noprefixroute", netif.Addr{Prefix: p("198.18.0.200/32"), Dev: "eth1", Scope: "global"}, 2},
	} {
		c := parse(t, "global_defs {\n default_interface eth9\n}\nstatic_ipaddress {\n"+tc.line+"\n}\n")
		got, warns := staticAddr(c.StaticAddresses[0], c.Global.DefaultInterface)
		if got != tc.want || len(warns) != tc.warns {
			t.Errorf("%q: %+v %q, want %+v with %d warnings", tc.line, got, warns, tc.want, tc.warns)
		}
	}
}

const routingConf = `
static_ipaddress {
    198.18.0.200/24 dev eth0
}
static_routes {
    198.19.5.0/24 via 198.18.0.1 dev eth0
    198.19.6.0/24 encap mpls 200 dev eth0
}
static_rules {
    from 198.19.5.0/24 table 100
    from fd00:5::/64 table 100
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        198.18.0.100/24
    }
    virtual_routes {
        198.19.7.0/24 via 198.18.0.1 no_track
        blackhole 198.19.5.0/24
    }
    virtual_rules {
        to 198.19.7.0/24 table 100
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        198.18.0.101/24
    }
}
`

func TestPlanRouting(t *testing.T) {
	c, _ := config.Parse("r.conf", []byte(routingConf), config.Options{})
	plan, notes := planRouting(c)
	var got []string
	for _, it := range plan.static {
		got = append(got, it.pos.String()+" "+it.String())
	}
	want := []string{
		"r.conf:3 address 198.18.0.200/24 dev eth0",
		"r.conf:6 route 198.19.5.0/24 via 198.18.0.1 dev eth0",
		// No preference given: keepalived's, downwards from 16384 per family.
		"r.conf:10 rule from 198.19.5.0/24 pref 16384 lookup 100",
		"r.conf:11 rule from fd00:5::/64 pref 16384 lookup 100",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("static:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	for _, it := range plan.virtual["VI_1"] {
		got = append(got, it.pos.String()+" "+it.block+" "+it.String()+" no_track="+map[bool]string{true: "yes", false: "no"}[it.noTrack])
	}
	want = []string{
		"r.conf:20 virtual_routes (VI_1) route 198.19.7.0/24 via 198.18.0.1 no_track=yes",
		"r.conf:21 virtual_routes (VI_1) route blackhole 198.19.5.0/24 no_track=no",
		"r.conf:24 virtual_rules (VI_1) rule from all to 198.19.7.0/24 pref 16383 lookup 100 no_track=no",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("VI_1:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := plan.virtual["VI_2"]; ok {
		t.Error("VI_2 has no virtual routes or rules, but a plan")
	}
	if len(notes) != 0 {
		t.Errorf("notes %v: the configuration judged every route and rule already", notes)
	}
	// The encap route (r.conf:7) is left out of the model with a
	// diagnostic at its line: a notice for vipd -t, an error that stops
	// the daemon, which reads for a data plane.
	for _, dp := range []string{"", config.DataplaneProxy} {
		_, diags := config.Parse("r.conf", []byte(routingConf), config.Options{Dataplane: dp})
		found := false
		for _, d := range diags {
			if d.Pos.Line == 7 && strings.Contains(d.Msg, "encap") {
				found = true
				if blocks := d.Blocking(); blocks != (dp != "") {
					t.Errorf("dataplane %q: %s blocks = %v", dp, d, blocks)
				}
			}
		}
		if !found {
			t.Errorf("dataplane %q: no diagnostic for the encap route at r.conf:7: %v", dp, diags)
		}
	}
}

// TestDesired checks the order items are applied in and that an item two
// owners want is listed once.
func TestDesired(t *testing.T) {
	c, _ := config.Parse("r.conf", []byte(routingConf), config.Options{})
	plan, _ := planRouting(c)
	r := &routing{plan: plan, master: map[string]bool{}}
	kinds := func() (out []int) {
		for _, it := range r.desired() {
			out = append(out, it.kind)
		}
		return out
	}
	if got := kinds(); !reflect.DeepEqual(got, []int{kindAddr, kindRoute, kindRule, kindRule}) {
		t.Errorf("backup: kinds %v", got)
	}
	r.master["VI_1"] = true
	if got := kinds(); !reflect.DeepEqual(got, []int{kindAddr, kindRoute, kindRoute, kindRoute, kindRule, kindRule, kindRule}) {
		t.Errorf("master: kinds %v", got)
	}
	// The same route in static_routes and virtual_routes is one item.
	dup := plan.virtual["VI_1"][0]
	r.plan.static = append(r.plan.static, dup)
	if n := len(r.desired()); n != 7 {
		t.Errorf("%d items with a duplicate, want 7", n)
	}
}

func TestTracked(t *testing.T) {
	for _, tc := range []struct {
		line    string
		tracked bool
	}{
		{"198.19.5.0/24 via 198.18.0.1 dev eth0", true},
		{"198.19.5.0/24 via 198.18.0.1 dev eth0 no_track", false},
		{"198.19.5.0/24 via 198.18.0.1", false}, // keepalived: "cannot track route ... with no interface specified"
		{"blackhole 198.19.5.0/24", true},
		{"198.19.5.0/24 nexthop via 198.18.0.1 dev eth0 nexthop via 198.18.0.2 dev eth0", true},
		{"198.19.5.0/24 nexthop via 198.18.0.1 dev eth0 nexthop via 198.18.0.2", false},
		{"198.19.5.0/24 via 198.18.0.1 or 198.18.0.2 dev eth0", true},
	} {
		if got := tracked(routeLine(t, tc.line)); got != tc.tracked {
			t.Errorf("%q: tracked %v, want %v", tc.line, got, tc.tracked)
		}
	}
}
