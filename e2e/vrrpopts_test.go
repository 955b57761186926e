package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestPromoteSecondaries runs vipd with promote_secondaries in a
// namespace: the kernel's net.ipv4.conf.eth0.promote_secondaries is on
// while the instance runs and back off after vipd stops (it was off).
func TestPromoteSecondaries(t *testing.T) {
	l := lab.New(t)
	d1 := l.Host("d1")
	read := func() string {
		out, err := d1.Run("cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries")
		if err != nil {
			t.Fatalf("promote_secondaries: %v: %s", err, out)
		}
		return strings.TrimSpace(out)
	}
	d1.MustRun("sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=0")
	m := startVipd(t, d1, soloMasterConf("    promote_secondaries\n"))
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "MASTER" }, "d1 not MASTER")
	if v := read(); v != "1" {
		t.Fatalf("promote_secondaries = %s while the instance runs, want 1", v)
	}
	stop(t, m.proc)
	if v := read(); v != "0" {
		t.Fatalf("promote_secondaries = %s after vipd stopped, want 0 as before", v)
	}
}

// soloMasterConf is VI_1 alone as a fast VRRPv3 master of 198.18.0.100
// on eth0, with extra (whole lines) added to the instance.
func soloMasterConf(extra string) string {
	return `
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.2
` + extra + `    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`
}

// mcastConf is a VRRPv3 instance on the multicast group 224.0.0.200
// (mcast_dst_ip), read unchanged by keepalived and vipd.
func mcastConf(state, prio string) string {
	return strings.NewReplacer("STATE", state, "PRIO", prio).Replace(`global_defs {
    router_id mcast
}
vrrp_instance VI_1 {
    state STATE
    interface eth0
    virtual_router_id 62
    version 3
    priority PRIO
    advert_int 0.5
    mcast_dst_ip 224.0.0.200
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`)
}

// TestMcastDstIPWithKeepalived: vipd and keepalived on the group
// 224.0.0.200 hear each other both ways: vipd follows keepalived as
// backup (and counts its adverts, none dropped), then, at a higher
// priority, preempts it, which keepalived logs as an advert with higher
// priority from vipd's address.
func TestMcastDstIPWithKeepalived(t *testing.T) {
	_, dv, dk, k := mixedPair(t, mcastConf("MASTER", "150"))
	const vip = mixedVIP
	v := startVipd(t, dv, mcastConf("BACKUP", "100"))
	lab.Eventually(t, 5*time.Second, func() bool {
		st := v.status().Instances[0]
		return st.State == "BACKUP" && st.Stats.AdvertRcvd >= 2 && st.MasterAddr.String() == dk.Addr.String()
	}, "vipd does not follow keepalived on 224.0.0.200: %+v", v.status().Instances)
	if d := v.status().Instances[0].Stats.Dropped; len(d) > 0 {
		t.Fatalf("vipd dropped keepalived's adverts: %v", d)
	}
	if hasAddr(dv, vip) {
		t.Fatal("both hold the VIP")
	}

	stop(t, v.proc)
	v = startVipd(t, dv, mcastConf("BACKUP", "200"))
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) && !hasAddr(dk, vip) },
		"vipd at priority 200 did not preempt keepalived (vipd %s)", v.state("VI_1"))
	higher := fmt.Sprintf("(VI_1) Master received advert from %s with higher priority 200, ours 150", dv.Addr)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), higher) },
		"keepalived did not log vipd's advert on 224.0.0.200:\n%s", k.Output())
}

// TestStartupDelayWithKeepalived: vipd with vrrp_startup_delay 2 and the
// higher priority stays silent while keepalived is master, then
// preempts it once the delay is over (keepalived logs vipd's advert).
func TestStartupDelayWithKeepalived(t *testing.T) {
	_, dv, dk, k := mixedPair(t, mcastConf("MASTER", "150"))
	const vip = mixedVIP
	conf := strings.Replace(mcastConf("BACKUP", "200"), "router_id mcast", "router_id mcast\n    vrrp_startup_delay 2", 1)
	v := startVipd(t, dv, conf)
	// From ready: without the delay vipd would take over after one master
	// down interval (3 x 0.5 s + skew); with it, 2 s later still.
	start := time.Now()
	// The line may follow the control socket's readiness by a moment.
	lab.Eventually(t, time.Second, func() bool { return strings.Contains(v.proc.Output(), "Delaying startup for 2 seconds") },
		"vipd did not log keepalived's line for the delay:\n%s", v.proc.Output)
	if hasAddr(dv, vip) || !hasAddr(dk, vip) || strings.Contains(k.Output(), "higher priority 200") {
		if time.Since(start) < time.Second {
			t.Fatalf("vipd acted during its startup delay")
		}
	}
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) && !hasAddr(dk, vip) },
		"vipd did not preempt keepalived after its delay")
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("vipd preempted %v after it was ready: its 2 s delay was not kept", took)
	}
	higher := fmt.Sprintf("(VI_1) Master received advert from %s with higher priority 200, ours 150", dv.Addr)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), higher) }, "keepalived did not log vipd's advert:\n%s", k.Output())
}

// TestTrackGroupFaults: a static address in a track_group that cannot be
// reinstated (its interface was deleted) puts the group's instance in
// FAULT, and the instance comes back once the address is in place again.
func TestTrackGroupFaults(t *testing.T) {
	l := lab.New(t)
	d1 := l.Host("d1")
	d1.MustRun("ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1") // no dummy module here
	d1.MustRun("ip", "link", "set", "dum0", "up")
	m := startVipd(t, d1, `
track_group TG {
    group { VI_1 }
}
static_ipaddress {
    198.18.5.1/24 dev dum0 track_group TG
}
`+soloMasterConf(""))
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "MASTER" && hasAddr(d1, "198.18.5.1") }, "not MASTER with the static address")
	d1.MustRun("ip", "link", "del", "dum0")
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "FAULT" && !hasAddr(d1, "198.18.0.100") },
		"VI_1 not in FAULT after its track_group's address could not be reinstated: %s", m.state("VI_1"))
	d1.MustRun("ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1") // no dummy module here
	d1.MustRun("ip", "link", "set", "dum0", "up")
	lab.Eventually(t, 10*time.Second, func() bool { return hasAddr(d1, "198.18.5.1") && m.state("VI_1") == "MASTER" },
		"VI_1 not back to MASTER once dum0 is back: %s", m.state("VI_1"))
	if out := m.proc.Output(); !strings.Contains(out, "track_group TG") {
		t.Errorf("no log line names the track_group:\n%s", out)
	}
}
