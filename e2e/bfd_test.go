package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

// keepalivedFull starts Debian's keepalived with its VRRP and BFD
// processes (keepalived() runs VRRP only, which has no BFD).
func keepalivedFull(t testing.TB, h *lab.Host, conf string) *lab.Proc {
	t.Helper()
	p := lab.StartKeepalived(t, h, conf)
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	return p
}

// trackBFDConf is one director's side of TestTrackBFDWithKeepalived: a
// BFD session to peer at 50 ms x 5 (10 ms x 3 is for the benchmark: on
// this shared 2-core machine it flaps under load, keepalived's too), an instance that goes FAULT when it
// falls (vrid a) and one that loses 50 priority (vrid b). Both daemons
// read the same text, with their own names and VRIDs.
func trackBFDConf(self, peer, bfdName, inst string, vridA, vridB int) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
bfd_instance %[3]s {
    neighbor_ip %[2]s
    min_rx 50
    min_tx 50
    multiplier 5
}
vrrp_instance %[4]s_F {
    state MASTER
    interface eth0
    virtual_router_id %[5]d
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.18.0.%[5]d/24
    }
    track_bfd {
        %[3]s
    }
}
vrrp_instance %[4]s_W {
    state MASTER
    interface eth0
    virtual_router_id %[6]d
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.18.0.%[6]d/24
    }
    track_bfd {
        %[3]s weight -50
    }
}
`, self, peer, bfdName, inst, vridA, vridB)
}

func (d *director) instance(name string) api.Instance {
	for _, in := range d.status().Instances {
		if in.Name == name {
			return in
		}
	}
	d.t.Fatalf("no instance %s", name)
	return api.Instance{}
}

// TestTrackBFDWithKeepalived: vipd and keepalived 2.2.7 run a BFD session
// with each other, and each tracks it with track_bfd (weight 0: FAULT;
// weight -50: lower priority). When the path between them breaks (the
// cable stays up: the port leaves the bridge), both sides go through the
// same states and print the same lines.
func TestTrackBFDWithKeepalived(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	dv, dk := l.Host("vipd"), l.Host("kad")
	kp := keepalivedFull(t, dk, trackBFDConf("kad", dv.Addr.String(), "to_vipd", "VK", 81, 82))
	d := startVipd(t, dv, trackBFDConf("vipd", dk.Addr.String(), "to_kad", "VV", 71, 72))

	lab.Eventually(t, 20*time.Second, func() bool {
		return d.state("VV_F") == "MASTER" && d.instance("VV_W").EffectivePriority == 150
	}, "vipd's instances not MASTER at full priority once BFD is up: %+v\n%s", d.status().Instances, d.proc.Output())
	lab.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(kp.Output(), "(VK_F) Entering MASTER STATE")
	}, "keepalived's VK_F not MASTER:\n%s", kp.Output())
	st := d.status()
	if len(st.BFD) != 1 || st.BFD[0].State != "Up" || st.BFD[0].TxIntervalUS != 50000 || st.BFD[0].DetectUS != 250000 || st.BFD[0].RemoteDiscr == 0 {
		t.Errorf("vipctl status BFD: %+v", st.BFD)
	}

	dk.Blackhole()
	lab.Eventually(t, 10*time.Second, func() bool {
		return d.state("VV_F") == "FAULT" && d.instance("VV_W").EffectivePriority == 100
	}, "vipd did not follow the BFD session down: %+v\n%s", d.status().Instances, d.proc.Output())
	lab.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(kp.Output(), "(VK_F) Entering FAULT STATE")
	}, "keepalived did not go FAULT:\n%s", kp.Output())
	for _, want := range []string{
		"(to_kad) Expired after",
		"(to_kad) Entering Down state (Local diagnostic - Control Detection Time Expired",
		"VRRP_Instance(VV_F) Tracked BFD instance to_kad is DOWN",
		"VRRP_Instance(VV_W) Tracked BFD instance to_kad is DOWN",
		"(VV_F) Entering FAULT STATE",
	} {
		if !strings.Contains(d.proc.Output(), want) {
			t.Errorf("vipd did not log %q", want)
		}
	}
	for _, want := range []string{
		"(to_vipd) Expired after",
		"VRRP_Instance(VK_F) Tracked BFD instance to_vipd is DOWN",
	} {
		if !strings.Contains(kp.Output(), want) {
			t.Errorf("keepalived did not log %q (the reference for vipd's line)", want)
		}
	}
	if got := d.status().BFD[0].LastDown; got != "Control Detection Time Expired" {
		t.Errorf("last down reason %q", got)
	}

	dk.Unblackhole()
	lab.Eventually(t, 20*time.Second, func() bool {
		return d.state("VV_F") == "MASTER" && d.instance("VV_W").EffectivePriority == 150
	}, "vipd did not come back with BFD: %+v\n%s", d.status().Instances, d.proc.Output())
	if !strings.Contains(d.proc.Output(), "VRRP_Instance(VV_F) Tracked BFD instance to_kad is UP") {
		t.Errorf("vipd did not log the session back up")
	}

	// vipd stops: keepalived hears AdminDown at once.
	stop(t, d.proc)
	lab.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(kp.Output(), "(to_vipd) Entering Down state (Local diagnostic - Neighbor Signaled Session Down, Remote diagnostic - Administratively Down)")
	}, "keepalived did not hear vipd's AdminDown:\n%s", kp.Output())
	t.Logf("vipd:\n%s\nkeepalived:\n%s", d.proc.Output(), kp.Output())
}

// TestBFDCheckWithBIRD: a real server checked by BFD_CHECK, its BFD peer
// BIRD on the real server's host. The server leaves the pool when BIRD
// stops (nginx still serves: only BFD took it out) and returns with it.
func TestBFDCheckWithBIRD(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "bird", "birdc", "nginx")
	l := lab.New(t)
	dv, rs := l.Host("vipd"), l.Host("rs")
	nginx(t, rs, "rs")
	dir := t.TempDir()
	bconf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(bconf, []byte(fmt.Sprintf(`log stderr all;
router id %s;
protocol device { }
protocol bfd {
	interface "eth0" { min rx interval 50 ms; min tx interval 50 ms; multiplier 5; };
	neighbor %s dev "eth0";
}
`, rs.Addr, dv.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	startBird := func() *lab.Proc {
		p := rs.Start("bird", "-f", "-c", bconf, "-s", filepath.Join(dir, "bird.ctl"))
		t.Cleanup(func() { _ = p.Stop(5 * time.Second) })
		return p
	}
	bird := startBird()
	d := startVipd(t, dv, fmt.Sprintf(`bfd_instance rs1 {
    neighbor_ip %[1]s
    min_rx 50
    min_tx 50
    multiplier 5
}
virtual_server 198.18.0.100 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server %[1]s 80 {
        BFD_CHECK {
            name rs1
        }
    }
}
`, rs.Addr))
	dests := func() int {
		st := d.status()
		if len(st.Services) == 0 {
			return -1
		}
		n := 0
		for _, ds := range st.Services[0].Dests {
			if ds.Weight > 0 {
				n++
			}
		}
		return n
	}
	lab.Eventually(t, 15*time.Second, func() bool { return dests() == 1 }, "real server not in the pool with BFD up: %+v\n%s", d.status().Services, d.proc.Output())
	stop(t, bird)
	lab.Eventually(t, 10*time.Second, func() bool { return dests() == 0 }, "real server still in the pool after BIRD left: %+v\n%s", d.status().Services, d.proc.Output())
	if !strings.Contains(d.proc.Output(), "BFD_CHECK") {
		t.Errorf("no BFD_CHECK line in vipd's log")
	}
	if _, err := get(rs, rs.Addr.String(), 2*time.Second); err != nil {
		t.Fatalf("nginx itself should still serve: %v", err)
	}
	startBird()
	lab.Eventually(t, 15*time.Second, func() bool { return dests() == 1 }, "real server not back with BFD: %+v\n%s", d.status().Services, d.proc.Output())
	t.Logf("vipd:\n%s", d.proc.Output())
}
