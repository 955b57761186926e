package daemon

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/lvs"
)

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	c, diags := config.Parse("test.conf", []byte(src), config.Options{})
	for _, d := range diags {
		if d.Severity >= config.Error {
			t.Fatalf("config: %s", d)
		}
	}
	return c
}

const twoRS = `
virtual_server 198.18.0.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 2
    hysteresis 0
    sorry_server 198.18.0.99 8080
    real_server 198.18.0.21 80 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 198.18.0.22 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK { connect_timeout 1 }
    }
}
`

func dests(svcs []lvs.Service) map[string]int {
	m := map[string]int{}
	for _, s := range svcs {
		for _, d := range s.Destinations {
			m[d.Addr.String()] = d.Weight
		}
	}
	return m
}

func TestDesiredServices(t *testing.T) {
	c := parse(t, twoRS)
	plans, err := planServices(c)
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	rs1, rs2 := p.rss[0].check, p.rss[1].check
	if rs1 != "[198.18.0.21]:tcp:80" {
		t.Fatalf("real server named %q, want keepalived's [198.18.0.21]:tcp:80", rs1)
	}
	cases := []struct {
		name   string
		h      map[string]health
		quorum bool
		want   map[string]int
	}{
		{"both up", map[string]health{rs1: {true, 1}, rs2: {true, 1}}, true,
			map[string]int{"198.18.0.21:80": 1, "198.18.0.22:80": 1}},
		{"rs1 down is removed", map[string]health{rs1: {false, 1}, rs2: {true, 1}}, true,
			map[string]int{"198.18.0.22:80": 1}},
		{"rs2 down is inhibited (weight 0)", map[string]health{rs1: {true, 1}, rs2: {false, 1}}, true,
			map[string]int{"198.18.0.21:80": 1, "198.18.0.22:80": 0}},
		{"dynamic weight", map[string]health{rs1: {true, 7}, rs2: {true, 1}}, true,
			map[string]int{"198.18.0.21:80": 7, "198.18.0.22:80": 1}},
		{"quorum lost: sorry server only, inhibited rs at 0", map[string]health{rs1: {true, 1}, rs2: {false, 1}}, false,
			map[string]int{"198.18.0.99:8080": 1, "198.18.0.22:80": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := dests(desiredServices(c, plans, tc.h, map[string]bool{p.name: tc.quorum}))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQuorumHysteresis(t *testing.T) {
	p := &vsPlan{cfg: &config.VirtualServer{Quorum: 3, Hysteresis: 1}}
	steps := []struct {
		sum  int64
		want bool
	}{
		{4, true}, {3, true}, {2, true}, // lost only below quorum-hysteresis = 2
		{1, false},
		{3, false}, // gained only at quorum+hysteresis = 4
		{4, true},
		{0, false},
	}
	up := true
	for i, s := range steps {
		up = nextQuorum(p, up, s.sum)
		if up != s.want {
			t.Fatalf("step %d (sum %d): quorum %v, want %v", i, s.sum, up, s.want)
		}
	}
}

func TestServiceFields(t *testing.T) {
	c := parse(t, `
global_defs { lvs_timeouts tcp 100 tcpfin 10 udp 20 }
virtual_server 198.18.0.100 443 {
    lb_algo sh
    sh-port
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    real_server 198.18.0.21 8443 {
        weight 5
        uthreshold 100
    }
}
`)
	plans, err := planServices(c)
	if err != nil {
		t.Fatal(err)
	}
	svcs := desiredServices(c, plans, map[string]health{plans[0].rss[0].check: {true, 5}}, nil)
	if len(svcs) != 1 {
		t.Fatalf("got %d services", len(svcs))
	}
	s := svcs[0]
	if s.Key.Addr != netip.MustParseAddrPort("198.18.0.100:443") || s.Scheduler != "sh" || s.Flags&lvs.FlagSHPort == 0 || s.Flags&lvs.FlagPersistent == 0 {
		t.Errorf("service %+v", s)
	}
	if s.Persistence.Seconds() != 300 || s.PersistMask != 24 {
		t.Errorf("persistence %v mask %d", s.Persistence, s.PersistMask)
	}
	if s.Timeouts.TCP.Seconds() != 100 || s.Timeouts.TCPFin.Seconds() != 10 || s.Timeouts.UDP.Seconds() != 20 {
		t.Errorf("timeouts %+v", s.Timeouts)
	}
	d := s.Destinations[0]
	if d.Addr.String() != "198.18.0.21:8443" || d.Weight != 5 || d.UThreshold != 100 {
		t.Errorf("destination %+v", d)
	}
}

func TestVSGroupExpansion(t *testing.T) {
	c := parse(t, `
virtual_server_group G {
    198.18.0.100-102 80
    fwmark 7
}
virtual_server group G {
    protocol TCP
    lb_algo wrr
    lb_kind DR
    real_server 198.18.0.21 80 { weight 2 }
}
`)
	plans, err := planServices(c)
	if err != nil {
		t.Fatal(err)
	}
	svcs := desiredServices(c, plans, map[string]health{plans[0].rss[0].check: {true, 2}}, nil)
	var keys []string
	for _, s := range svcs {
		keys = append(keys, s.Key.String())
	}
	want := []string{"TCP 198.18.0.100:80", "TCP 198.18.0.101:80", "TCP 198.18.0.102:80", "FWM 7"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("services %v, want %v", keys, want)
	}
}

func TestDefaultScheduler(t *testing.T) {
	c := parse(t, `virtual_server 198.18.0.100 80 { real_server 198.18.0.21 80 { } }`)
	plans, _ := planServices(c)
	svcs := desiredServices(c, plans, map[string]health{plans[0].rss[0].check: {true, 1}}, nil)
	if svcs[0].Scheduler != "wlc" {
		t.Fatalf("scheduler %q, want IPVS's default wlc", svcs[0].Scheduler)
	}
}

func TestValidateServicesNamesTheLine(t *testing.T) {
	c := parse(t, `virtual_server 198.18.0.100 0 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    persistence_timeout 60
    real_server 198.18.0.21 80 { }
}
`)
	plans, err := planServices(c)
	if err != nil {
		t.Fatal(err)
	}
	errs := validateServices(c, plans, func(ss []lvs.Service) error {
		for _, s := range ss {
			if s.Key.Addr.Port() == 0 {
				return fmt.Errorf("port 0 (all ports) needs the ipvs data plane")
			}
		}
		return nil
	}, "")
	if len(errs) != 1 || !strings.HasPrefix(errs[0].String(), "test.conf:1: error: virtual_server: virtual server [198.18.0.100]:tcp:0: port 0") {
		t.Fatalf("got %q", errs)
	}
}
