package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

const bgpConf = `bgp {
    router_id 198.18.1.11
    local_as 65001
    neighbor 198.18.1.1 {
        remote_as 65000
        hold_time 3
        bfd
    }
    neighbor 198.18.1.2 {
        remote_as 4200000000
        bfd {
            min_rx 50
            min_tx 60
            multiplier 4
        }
        passive
        port 1179
        multihop
        password secret
    }
}
virtual_server 198.18.0.100 80 {
    protocol TCP
    lvs_sched rr
    lvs_method NAT
    bgp_announce
    real_server 198.18.2.1 80 {
        TCP_CHECK {
        }
    }
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 1
    bgp_announce
    virtual_ipaddress {
        198.18.0.101
    }
}
`

func TestBGPBlock(t *testing.T) {
	cfg, diags := Parse("k.conf", []byte(bgpConf), Options{})
	for _, d := range diags {
		t.Errorf("unexpected diagnostic: %s", d)
	}
	g := cfg.BGP
	if g == nil || g.RouterID != netip.MustParseAddr("198.18.1.11") || g.LocalAS != 65001 || len(g.Neighbors) != 2 {
		t.Fatalf("bgp: %+v", g)
	}
	n1, n2 := g.Neighbors[0], g.Neighbors[1]
	if n1.RemoteAS != 65000 || n1.HoldTime != 3*time.Second || n1.BFD == nil ||
		*n1.BFD != (BGPBFD{MinRx: 100 * time.Millisecond, MinTx: 100 * time.Millisecond, Multiplier: 3}) || n1.Passive || n1.Port != 0 {
		t.Errorf("neighbor 1: %+v %+v", n1, n1.BFD)
	}
	if n2.RemoteAS != 4200000000 || n2.HoldTime != 0 || n2.BFD == nil ||
		*n2.BFD != (BGPBFD{MinRx: 50 * time.Millisecond, MinTx: 60 * time.Millisecond, Multiplier: 4}) ||
		!n2.Passive || n2.Port != 1179 || n2.Multihop != 255 || n2.Password != "secret" || n2.Pos.Line != 9 {
		t.Errorf("neighbor 2: %+v %+v", n2, n2.BFD)
	}
	if vs := cfg.VirtualServers[0]; vs.BGPAnnounce == nil || vs.BGPAnnounce.Line != 26 {
		t.Errorf("virtual_server bgp_announce: %v", vs.BGPAnnounce)
	}
	if in := cfg.Instances[0]; in.BGPAnnounce == nil || in.BGPAnnounce.Line != 35 {
		t.Errorf("vrrp_instance bgp_announce: %v", in.BGPAnnounce)
	}
}

func TestBGPErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // "line: substring"
		keepBGP   bool
	}{
		{"missing router_id and remote_as", "bgp {\n local_as 1\n neighbor 198.18.1.1 {\n }\n}\n",
			[]string{"k.conf:1: error: router_id: bgp: router_id missing", "k.conf:3: error: remote_as: bgp: neighbor 198.18.1.1 has no remote_as"}, false},
		{"no neighbor", "bgp {\n router_id 198.18.1.1\n local_as 1\n}\n", []string{"k.conf:1: error: neighbor: bgp: no neighbor"}, false},
		{"short hold time", "bgp {\n router_id 198.18.1.1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n  hold_time 2\n }\n}\n",
			[]string{"k.conf:6: error: hold_time: hold time 2 too short"}, true},
		{"bad bfd", "bgp {\n router_id 198.18.1.1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n  bfd {\n   min_rx 1\n   multiplier 0\n  }\n }\n}\n",
			[]string{"k.conf:7: error: min_rx: number '1' outside range", "k.conf:8: error: multiplier: number '0' outside range"}, true},
		{"ipv6 router_id", "bgp {\n router_id 2001:db8::1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n }\n}\n",
			[]string{"k.conf:2: error: router_id: router_id 2001:db8::1 is not IPv4", "k.conf:1: error: router_id: bgp: router_id missing"}, false},
		{"duplicate neighbor", "bgp {\n router_id 198.18.1.1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n }\n neighbor 198.18.1.2 {\n  remote_as 3\n }\n}\n",
			[]string{"k.conf:7: error: neighbor: neighbor 198.18.1.2 already defined at k.conf:4"}, true},
		{"two bgp blocks", "bgp {\n router_id 198.18.1.1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n }\n}\nbgp {\n}\n",
			[]string{"k.conf:8: error: bgp: bgp block already defined at k.conf:1"}, true},
		{"unknown keyword", "bgp {\n router_id 198.18.1.1\n local_as 1\n neighbor 198.18.1.2 {\n  remote_as 2\n  holdtime 3\n }\n}\n",
			[]string{"k.conf:6: error: holdtime: unknown keyword 'holdtime'"}, true},
		{"bgp_announce without bgp", "virtual_server 198.18.0.1 80 {\n protocol TCP\n bgp_announce\n real_server 198.18.2.1 80 {\n }\n}\nvrrp_instance V {\n interface lo\n virtual_router_id 1\n bgp_announce\n}\n",
			[]string{"k.conf:3: error: bgp_announce: bgp_announce without a bgp block", "k.conf:10: error: bgp_announce: (V) bgp_announce without a bgp block"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := Parse("k.conf", []byte(tc.src), Options{})
			var all []string
			for _, d := range diags {
				all = append(all, d.String())
			}
			for _, w := range tc.want {
				found := false
				for _, d := range all {
					if strings.HasPrefix(d, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no diagnostic %q in\n%s", w, strings.Join(all, "\n"))
				}
			}
			if (cfg.BGP != nil) != tc.keepBGP {
				t.Errorf("bgp kept: %v, want %v", cfg.BGP != nil, tc.keepBGP)
			}
		})
	}
}

// TestBGPDrainPause: drain_pause in milliseconds, 0 withdraws at once,
// absent keeps the default; out of range is an error at its line.
func TestBGPDrainPause(t *testing.T) {
	conf := func(line string) string {
		return "bgp {\n    router_id 198.18.1.11\n    local_as 65001\n" + line +
			"    neighbor 198.18.1.1 {\n        remote_as 65000\n    }\n}\n"
	}
	for _, c := range []struct {
		line string
		want time.Duration
		diag string
	}{
		{"", DefaultDrainPause, ""},
		{"    drain_pause 2500\n", 2500 * time.Millisecond, ""},
		{"    drain_pause 0\n", 0, ""},
		{"    drain_pause 600001\n", DefaultDrainPause, "k.conf:4"},
		{"    drain_pause soon\n", DefaultDrainPause, "k.conf:4"},
	} {
		cfg, diags := Parse("k.conf", []byte(conf(c.line)), Options{})
		var got []string
		for _, d := range diags {
			got = append(got, d.String())
		}
		if c.diag == "" && len(got) > 0 || c.diag != "" && (len(got) == 0 || !strings.Contains(got[0], c.diag)) {
			t.Errorf("%q: diagnostics %q, want one at %q", c.line, got, c.diag)
		}
		if cfg.BGP == nil {
			t.Fatalf("%q: no bgp block", c.line)
		}
		if p := cfg.BGP.Pause(); p != c.want {
			t.Errorf("%q: pause %v, want %v", c.line, p, c.want)
		}
	}
}

// TestBGPBFDPortClash: GoBGP's BFD for a neighbor and a single-hop
// bfd_instance both need UDP 3784: an error at the bfd_instance; a
// multihop one (4784) is fine.
func TestBGPBFDPortClash(t *testing.T) {
	conf := func(multihop string) string {
		return "bgp {\n    router_id 198.18.1.11\n    local_as 65001\n    neighbor 198.18.1.1 {\n        remote_as 65000\n        bfd\n    }\n}\n" +
			"bfd_instance B1 {\n    neighbor_ip 198.18.1.2\n" + multihop + "}\n"
	}
	_, diags := Parse("k.conf", []byte(conf("")), Options{KeepalivedVersion: "2.4"})
	found := false
	for _, d := range diags {
		if strings.Contains(d.String(), "k.conf:9") && strings.Contains(d.String(), "3784") {
			found = true
		}
	}
	if !found {
		t.Errorf("no error at k.conf:9 naming port 3784: %q", diags)
	}
	_, diags = Parse("k.conf", []byte(conf("    multihop\n")), Options{KeepalivedVersion: "2.4"})
	for _, d := range diags {
		if strings.Contains(d.String(), "3784") {
			t.Errorf("multihop bfd_instance: %s", d)
		}
	}
}
