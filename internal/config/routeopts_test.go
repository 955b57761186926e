package config

import (
	"strings"
	"testing"
)

// TestRouteRuleOptions: route and rule options are judged when the
// configuration is read, naming the line: `vipd -t` fails on a bad value
// (which the daemon once found only when programming the route), and
// options keepalived takes but vipd cannot program are a notice for
// `vipd -t` and an error that stops the daemon.
func TestRouteRuleOptions(t *testing.T) {
	// refused: keepalived takes the option, vipd cannot program it (a
	// notice for vipd -t, an error that stops the daemon); otherwise the
	// value is wrong (an error for both).
	for _, tc := range []struct {
		block, line, msg string
		refused          bool
	}{
		{"static_routes", "198.19.5.0/24 dev eth0 mtu x", "invalid mtu 'x'", false},
		{"static_routes", "198.19.5.0/24 dev eth0 rtt 5min", "unknown unit", false},
		{"static_routes", "198.19.5.0/24 dev eth0 protocol nosuch", "invalid protocol 'nosuch'", false},
		{"static_routes", "198.19.5.0/24 dev eth0 realms a/b", "invalid realms 'a/b'", false},
		{"static_routes", "inet6 198.19.5.0/24 dev eth0", "inet6 with the IPv4 destination", false},
		{"static_rules", "from all table 1 ip_proto nosuch pref 1", "invalid ip_proto 'nosuch'", false},
		{"static_rules", "from all table 1 suppress_ifgroup admins pref 1", "invalid suppress_ifgroup 'admins'", false},
		{"static_rules", "from all table 1 protocol nosuch pref 1", "invalid protocol 'nosuch'", false},
		{"static_rules", "from all table 1 realms 1/x pref 1", "invalid realms", false},
		{"static_rules", "inet6 from 198.19.2.0/24 table 1 pref 1", "inet6 with an IPv4 address", false},
		{"static_routes", "198.19.5.0/24 encap mpls 200 dev eth0", "encap mpls 200 dev eth0: not supported by vipd", true},
		{"static_routes", "198.19.5.0/24 dev eth0 pref high", "pref high: not supported by vipd", true},
		{"static_routes", "198.19.5.0/24 dev eth0 advmss lock 100", "advmss lock: not supported by vipd", true},
		{"static_rules", "from all l3mdev pref 1", "l3mdev: not supported by vipd", true},
	} {
		src := tc.block + " {\n    " + tc.line + "\n}\n"
		for _, dp := range []string{"", DataplaneProxy} {
			c, diags := Parse("t.conf", []byte(src), Options{Dataplane: dp})
			want, exit := Error, 0
			switch {
			case tc.refused && dp == "":
				want = Notice
			case tc.refused:
				exit = ExitConfig
			}
			if d := diagAt(diags, 2, tc.msg); d == nil || d.Severity != want || d.Exit != exit {
				t.Errorf("dataplane %q: %q: want a %v (exit %d) at t.conf:2 saying %q: %v", dp, tc.line, want, exit, tc.msg, diags)
			}
			if len(c.StaticRoutes)+len(c.StaticRules) != 0 {
				t.Errorf("%q: the line is in the model", tc.line)
			}
		}
	}

	// Typed in the model.
	c, diags := Parse("t.conf", []byte("static_routes {\n    198.19.5.0/24 dev eth0 proto bird mtu lock 1400 realms 3/4 rtt 1s\n}\nstatic_rules {\n    from all table 1 ip_proto udp protocol static suppress_ifgroup 7 pref 1\n}\n"), Options{})
	for _, d := range diags {
		if d.Severity >= Error {
			t.Fatal(d)
		}
	}
	r, u := c.StaticRoutes[0], c.StaticRules[0]
	if r.Protocol != 12 || r.Metrics.MTU != 1400 || !r.Metrics.MTULock || r.Realms != 3<<16|4 || r.Metrics.RTT != 8000 {
		t.Errorf("route %+v", r)
	}
	if u.IPProto != 17 || u.Protocol != 4 || u.SuppressIfGroup != 7 {
		t.Errorf("rule %+v", u)
	}
}

// diagAt returns the first diagnostic at line that says msg, or nil.
func diagAt(diags Diagnostics, line int, msg string) *Diagnostic {
	for i := range diags {
		if diags[i].Pos.Line == line && strings.Contains(diags[i].Msg, msg) {
			return &diags[i]
		}
	}
	return nil
}
