package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// srcIPConf is a unicast VRRPv3 instance advertising from src (an extra
// address on eth0, unicast_src_ip) to peer, with track_src_ip: both
// daemons read it unchanged.
func srcIPConf(state, prio string, src, peer netip.Addr) string {
	return strings.NewReplacer("STATE", state, "PRIO", prio, "SRC", src.String(), "PEER", peer.String()).Replace(`global_defs {
    router_id srcip
}
vrrp_instance VI_1 {
    state STATE
    interface eth0
    virtual_router_id 63
    version 3
    priority PRIO
    advert_int 0.5
    unicast_src_ip SRC
    track_src_ip
    unicast_peer {
        PEER
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`)
}

// TestTrackSrcIPWithKeepalived: vipd is master with unicast_src_ip and
// track_src_ip, keepalived 2.2.7 its backup. Deleting vipd's source
// address puts its instance in FAULT and keepalived takes over; adding
// it back brings vipd back, and it preempts. Then keepalived's own
// source address (its interface's only IPv4 address, the one case
// keepalived acts on) goes and comes back, for its log lines beside
// vipd's.
func TestTrackSrcIPWithKeepalived(t *testing.T) {
	lab.RequireRoot(t)
	for _, peer := range keepalivedPeers {
		t.Run(peer.Name, func(t *testing.T) {
			t.Parallel()
			testTrackSrcIP(t, peer.binary(t))
		})
	}
}

func testTrackSrcIP(t *testing.T, bin string) {
	l := lab.New(t)
	at := func(last byte) netip.Addr {
		a := l.Subnet.Addr().As4()
		a[3] = last
		return netip.AddrFrom4(a)
	}
	vsrc, ksrc := at(241), at(242)
	bits := l.Subnet.Bits()
	// vipd's source is a second address on eth0; keepalived's is its
	// only IPv4 address: keepalived acts on the removal of an
	// interface's last IPv4 address only (keepalived_netlink.c), not of
	// a secondary one.
	dv := l.Host("vipd")
	dk := l.Host("kad", fmt.Sprintf("%s/%d", ksrc, bits))
	dv.MustRun("ip", "addr", "add", fmt.Sprintf("%s/%d", vsrc, bits), "dev", "eth0")
	const vip = mixedVIP

	v := startVipd(t, dv, srcIPConf("MASTER", "150", vsrc, ksrc))
	lab.Eventually(t, 5*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) }, "vipd not MASTER")
	k := keepalivedBin(t, dk, bin, srcIPConf("BACKUP", "100", ksrc, vsrc))
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), "(VI_1) Entering BACKUP STATE") }, "keepalived not BACKUP:\n%s", k.Output())
	lab.Eventually(t, 5*time.Second, func() bool { return v.status().Instances[0].Stats.AdvertSent >= 4 && !hasAddr(dk, vip) },
		"keepalived holds the VIP while vipd is master")

	// vipd's source address goes: FAULT, and keepalived takes over.
	dv.MustRun("ip", "addr", "del", fmt.Sprintf("%s/%d", vsrc, bits), "dev", "eth0")
	reason := fmt.Sprintf("source address %s is not on interface eth0", vsrc)
	lab.Eventually(t, 5*time.Second, func() bool {
		st := v.status().Instances[0]
		return st.State == "FAULT" && strings.Contains(strings.Join(st.FaultReasons, ";"), reason) && !hasAddr(dv, vip)
	}, "vipd not in FAULT once its source address is gone: %+v", v.status().Instances)
	lab.Eventually(t, 5*time.Second, func() bool { return hasAddr(dk, vip) }, "keepalived did not take over:\n%s", k.Output())
	if out := v.proc.Output(); !strings.Contains(out, "(VI_1) entering FAULT state ("+reason+")") {
		t.Errorf("vipd did not log the fault's reason:\n%s", out)
	}

	// Back: vipd leaves FAULT and, at priority 150, preempts.
	dv.MustRun("ip", "addr", "add", fmt.Sprintf("%s/%d", vsrc, bits), "dev", "eth0")
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) && !hasAddr(dk, vip) },
		"vipd not MASTER again once its source address is back (%s)", v.state("VI_1"))

	// keepalived's own source address (as BACKUP). keepalived 2.2.7 and
	// 2.4.3 see it go (with -D they log the address changes) but do not
	// enter FAULT: the check in keepalived_netlink.c compares the
	// address with the start of a sockaddr, so it never matches
	// (acassen/keepalived#1847, open). Its receive socket is bound to the
	// address, so it stops hearing vipd and becomes MASTER beside it: the
	// split brain track_src_ip is meant to prevent, and vipd does not
	// copy. Pinned here so that a fixed keepalived shows up.
	dk.MustRun("ip", "addr", "del", fmt.Sprintf("%s/%d", ksrc, bits), "dev", "eth0")
	gone := fmt.Sprintf("Deassigned address %s from interface eth0", ksrc)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), gone) },
		"keepalived did not see its source address go:\n%s", k.Output())
	lab.Eventually(t, 5*time.Second, func() bool {
		_, after, _ := strings.Cut(k.Output(), gone)
		return strings.Contains(after, "(VI_1) Entering MASTER STATE")
	}, "keepalived did not become MASTER without its source address (as 2.2.7 and 2.4.3 do):\n%s", k.Output())
	if _, after, _ := strings.Cut(k.Output(), gone); strings.Contains(after, "FAULT") {
		t.Logf("keepalived entered FAULT without its source address: acassen/keepalived#1847 fixed? Revise this test:\n%s", after)
	}
	dk.MustRun("ip", "addr", "add", fmt.Sprintf("%s/%d", ksrc, bits), "dev", "eth0")
	back := fmt.Sprintf("Assigned address %s for interface eth0", ksrc)
	lab.Eventually(t, 5*time.Second, func() bool {
		_, after, _ := strings.Cut(k.Output(), back+"\n")
		_, after, _ = strings.Cut(after, back) // the second one: back
		return strings.Contains(after, "(VI_1) Entering BACKUP STATE")
	}, "keepalived did not follow vipd again once its source address was back:\n%s", k.Output())
	lab.Eventually(t, 5*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) && !hasAddr(dk, vip) },
		"vipd not the only master once keepalived hears it again")
	t.Logf("vipd:\n%s\nkeepalived:\n%s", grepLines(v.proc.Output(), "VI_1"), grepLines(k.Output(), "VI_1"))
}

// keepalivedBin starts keepalived binary bin on conf in h (keepalived
// with the Debian one).
func keepalivedBin(t testing.TB, h *lab.Host, bin, conf string) *lab.Proc {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return h.Start(bin, "-n", "-l", "-D", "-P", "-f", cf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"), "-b", filepath.Join(dir, "b.pid"))
}

// grepLines keeps the lines of out that contain s.
func grepLines(out, s string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}
