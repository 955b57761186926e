package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	vip2 := netip.MustParseAddr("198.18.0.101")
	up := Service{Name: "a:80", VIP: vip, Checked: true, Served: true, QuorumUp: true, Alive: 2}
	with := func(s Service, f func(*Service)) Service { f(&s); return s }
	type want struct {
		announce bool
		reason   string // a substring
	}
	for _, tc := range []struct {
		name string
		in   Input
		want map[string]want
	}{
		{"up", Input{Services: []Service{up}}, map[string]want{"198.18.0.100/32": {true, "up"}}},
		{"first round pending", Input{Services: []Service{with(up, func(s *Service) { s.Checked = false })}},
			map[string]want{"198.18.0.100/32": {false, "first round"}}},
		{"not served", Input{Services: []Service{with(up, func(s *Service) { s.Served = false })}},
			map[string]want{"198.18.0.100/32": {false, "data plane"}}},
		{"every real server down", Input{Services: []Service{with(up, func(s *Service) { s.Alive, s.QuorumUp = 0, false })}},
			map[string]want{"198.18.0.100/32": {false, "every real server is down"}}},
		{"quorum 0 still withdraws with none alive", Input{Services: []Service{with(up, func(s *Service) { s.Alive = 0 })}},
			map[string]want{"198.18.0.100/32": {false, "every real server is down"}}},
		{"quorum down", Input{Services: []Service{with(up, func(s *Service) { s.QuorumUp = false })}},
			map[string]want{"198.18.0.100/32": {false, "quorum"}}},
		{"shared VIP: one port up is enough", Input{Services: []Service{
			with(up, func(s *Service) { s.Name, s.Alive, s.QuorumUp = "a:443", 0, false }), up}},
			map[string]want{"198.18.0.100/32": {true, "up"}}},
		{"shared VIP: one port still pending holds it back", Input{Services: []Service{
			with(up, func(s *Service) { s.Name, s.Checked = "a:443", false }), up}},
			map[string]want{"198.18.0.100/32": {false, "a:443: first round"}}},
		{"vrrp master", Input{Instances: []Instance{{Name: "VI_1", Master: true, VIPs: []netip.Addr{vip2}}}},
			map[string]want{"198.18.0.101/32": {true, "MASTER"}}},
		{"vrrp backup", Input{Instances: []Instance{{Name: "VI_1", VIPs: []netip.Addr{vip2}}}},
			map[string]want{"198.18.0.101/32": {false, "not MASTER"}}},
		{"vrrp master announces a VIP whose service is down", Input{
			Services:  []Service{with(up, func(s *Service) { s.Alive, s.QuorumUp = 0, false })},
			Instances: []Instance{{Name: "VI_1", Master: true, VIPs: []netip.Addr{vip}}}},
			map[string]want{"198.18.0.100/32": {true, "MASTER"}}},
		{"ipv6 host route", Input{Services: []Service{with(up, func(s *Service) { s.VIP = netip.MustParseAddr("2001:db8::1") })}},
			map[string]want{"2001:db8::1/128": {true, "up"}}},
		{"nothing", Input{}, map[string]want{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]want{}
			for _, d := range Decide(tc.in) {
				got[d.Prefix.String()] = want{d.Announce, d.Reason}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for p, w := range tc.want {
				g, ok := got[p]
				if !ok || g.announce != w.announce || !strings.Contains(g.reason, w.reason) {
					t.Errorf("%s: got %+v, want %+v", p, g, w)
				}
			}
		})
	}
}

func TestDecideSorted(t *testing.T) {
	in := Input{Services: []Service{
		{Name: "b", VIP: netip.MustParseAddr("198.18.0.2"), Checked: true, Served: true, QuorumUp: true, Alive: 1},
		{Name: "a", VIP: netip.MustParseAddr("198.18.0.1"), Checked: true, Served: true, QuorumUp: true, Alive: 1},
	}}
	var got []string
	for _, d := range Decide(in) {
		got = append(got, d.Prefix.String())
	}
	if want := []string{"198.18.0.1/32", "198.18.0.2/32"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
