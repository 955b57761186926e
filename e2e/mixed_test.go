package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// keepalived starts Debian's keepalived (VRRP only: this kernel has no
// IPVS) on conf in h, with private pid files.
func keepalived(t testing.TB, h *lab.Host, conf string) *lab.Proc {
	t.Helper()
	return lab.StartKeepalived(t, h, conf, "-P")
}

// mixedVIP is the address the mixed-pair tests' configurations share.
const mixedVIP = "198.18.0.100"

// mixedPair is the starting point of every mixed-pair test: a lab with a
// host for vipd (dv) and one for keepalived (dk), keepalived started there
// on kconf, which makes it master, and holding mixedVIP, so vipd joins an
// established master.
func mixedPair(t *testing.T, kconf string) (l *lab.Lab, dv, dk *lab.Host, k *lab.Proc) {
	t.Helper()
	l = lab.New(t)
	dv, dk = l.Host("vipd"), l.Host("kad")
	k = keepalived(t, dk, kconf)
	lab.Eventually(t, 10*time.Second, func() bool { return hasAddr(dk, mixedVIP) }, "keepalived did not take the VIP")
	return l, dv, dk, k
}

// mixedConf is one keepalived.conf both daemons read unchanged: the point
// of a rolling migration.
func mixedConf(state string, prio string) string {
	return strings.NewReplacer("STATE", state, "PRIO", prio).Replace(`global_defs {
    router_id mixed
    vrrp_version 2
}
vrrp_instance VI_1 {
    state STATE
    interface eth0
    virtual_router_id 61
    priority PRIO
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`)
}

// TestMixedPairWithKeepalived: a vipd and a keepalived director share a
// VIP, each in turn master, with PASS authentication. Whoever is master,
// the other follows, and they never both hold the VIP once converged.
func TestMixedPairWithKeepalived(t *testing.T) {
	l, dv, dk, k := mixedPair(t, mixedConf("MASTER", "150"))
	client := l.Host("client")
	const vip = mixedVIP
	v := startVipd(t, dv, mixedConf("BACKUP", "100"))
	lab.Eventually(t, 5*time.Second, func() bool { return v.state("VI_1") == "BACKUP" }, "vipd not BACKUP behind keepalived: %s", v.state("VI_1"))
	// vipd hears keepalived's adverts and accepts them (no drops).
	lab.Eventually(t, 5*time.Second, func() bool {
		st := v.status().Instances[0]
		return st.Stats.AdvertRcvd >= 2 && st.MasterAddr.String() == dk.Addr.String()
	}, "vipd does not see keepalived as master")
	if d := v.status().Instances[0].Stats.Dropped; len(d) > 0 {
		t.Fatalf("vipd dropped keepalived's adverts: %v", d)
	}
	if hasAddr(dv, vip) {
		t.Fatal("both hold the VIP")
	}
	if _, err := client.Run("ping", "-c1", "-W2", vip); err != nil {
		t.Fatal(err)
	}

	// keepalived stops (priority 0): vipd takes over within skew time.
	stop(t, k)
	lab.Eventually(t, 3*time.Second, func() bool { return v.state("VI_1") == "MASTER" && hasAddr(dv, vip) }, "vipd did not take over from keepalived")
	if hasAddr(dk, vip) {
		t.Fatal("keepalived left the VIP behind")
	}
	if _, err := client.Run("ping", "-c1", "-W2", vip); err != nil {
		t.Fatal(err)
	}

	// keepalived comes back with the higher priority: it preempts vipd,
	// and vipd logs keepalived's lines while giving way.
	k = keepalived(t, dk, mixedConf("BACKUP", "150"))
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "BACKUP" && hasAddr(dk, vip) },
		"keepalived did not preempt vipd (vipd %s)", v.state("VI_1"))
	lab.Eventually(t, 3*time.Second, func() bool { return !hasAddr(dv, vip) }, "vipd kept the VIP after keepalived preempted")
	if !strings.Contains(k.Output(), "(VI_1) Entering MASTER STATE") {
		t.Errorf("keepalived did not log its MASTER transition:\n%s", k.Output())
	}

	// And the other way round: vipd stops; keepalived stays master; vipd
	// restarted at a higher priority preempts keepalived.
	stop(t, v.proc)
	v = startVipd(t, dv, mixedConf("BACKUP", "200"))
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "MASTER" && !hasAddr(dk, vip) },
		"vipd at priority 200 did not preempt keepalived (vipd %s)", v.state("VI_1"))
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), "Entering BACKUP STATE") }, "keepalived did not log BACKUP")
}
