package config

import (
	"net/netip"
	"testing"
	"time"
)

const bfdConf = `bfd_instance b1 {
    neighbor_ip 198.18.0.12
    source_ip 198.18.0.11
    min_rx 20.5
    min_tx 15
    idle_tx 2000
    multiplier 3
    passive
    ttl 250
    max_hops 5
    weight -20 reverse
}
bfd_instance b2 {
    neighbour_ip 2001:db8::2
    multihop
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
    track_bfd {
        b1
        b2 weight 10
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        198.18.0.101/24
    }
}
vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
    track_bfd {
        b2
    }
}
virtual_server 198.18.0.100 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.0.12 80 {
        BFD_CHECK {
            name b1
        }
    }
}
`

func TestBFDInstance(t *testing.T) {
	cfg, diags := Parse("k.conf", []byte(bfdConf), Options{KeepalivedVersion: "2.4"}) // multihop is 2.3+
	for _, d := range diags {
		if d.Severity >= Warning {
			t.Errorf("unexpected diagnostic: %s", d)
		}
	}
	if len(cfg.BFDInstances) != 2 {
		t.Fatalf("bfd instances: %+v", cfg.BFDInstances)
	}
	b1, b2 := *cfg.BFDInstances[0], *cfg.BFDInstances[1]
	b1.Pos = Pos{}
	want1 := BFDInstance{Name: "b1", Neighbor: netip.MustParseAddr("198.18.0.12"), Source: netip.MustParseAddr("198.18.0.11"),
		MinRx: 20500 * time.Microsecond, MinTx: 15 * time.Millisecond, IdleTx: 2 * time.Second, Multiplier: 3, Passive: true,
		TTL: 250, MaxHops: 5, Weight: -20, Reverse: true}
	if b1 != want1 {
		t.Errorf("b1:\n got %+v\nwant %+v", b1, want1)
	}
	if b2.Neighbor != netip.MustParseAddr("2001:db8::2") || !b2.Multihop || b2.MinRx != 10*time.Millisecond || b2.Multiplier != 5 || b2.IdleTx != time.Second {
		t.Errorf("b2 defaults: %+v", b2)
	}
	tr := cfg.Instances[0].Track.BFDs
	if len(tr) != 2 || tr[0].Weight != -20 || !tr[0].Reverse || tr[1].Weight != 10 || tr[1].Reverse {
		t.Errorf("track_bfd weights (b1 inherits its instance's): %+v", tr)
	}
	if sg := cfg.SyncGroups[0].Track.BFDs; len(sg) != 1 || sg[0].Name != "b2" || sg[0].Weight != 0 {
		t.Errorf("sync group track_bfd: %+v", sg)
	}
	if ck := cfg.VirtualServers[0].RealServers[0].Checkers; len(ck) != 1 || ck[0].Type != CheckBFD || ck[0].BFD != "b1" {
		t.Errorf("BFD_CHECK: %+v", ck)
	}
}
