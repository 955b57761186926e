package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The BGP topology (issue 14; ../shared/labs/bgp is the trial it follows):
//
//	client 198.18.1.2 ──veth── 198.18.1.1 router 198.18.0.1 ── lab bridge ──┬── d1 .11  vipd, VIP 198.18.100.1/32 on lo
//	                           (BIRD 2, ECMP, BFD)                           ├── d2 .12
//	                                                                         ├── d3 .13
//	                                                                         ├── rs1 .21 nginx
//	                                                                         └── rs2 .22 nginx
//
// The directors share one L2 segment with the router, as on a ToR VLAN, so
// a director's cut cable does not take the router's interface down: only
// BFD (or the hold timer) notices.
const (
	bgpVIP    = "198.18.100.1"
	bgpVRRPIP = "198.18.100.2" // a vrrp_instance's VIP, announced by its MASTER only
	bgpRouter = "198.18.0.1"
)

// birdConf: ECMP over equal eBGP paths (merge paths), BFD 100 ms × 3,
// hold 3 s, and RFC 8326: a path with GRACEFUL_SHUTDOWN gets local
// preference 0, which takes it out of the multipath set at once.
func birdConf(dirs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { scan time 10; }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths yes limit 16;
	learn off;
}
protocol bfd {
	interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
filter gshut {
	if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
	accept;
}
template bgp dir {
	local %s as 65000;
	hold time 3;
	keepalive time 1;
	connect retry time 2;
	error wait time 1, 2;     # BIRD refuses a director for up to 10 s after repeated BFD failures otherwise
	error forget time 10;
	bfd on;
	ipv4 { import filter gshut; export none; };
}
`, bgpRouter, bgpRouter)
	for i, a := range dirs {
		fmt.Fprintf(&b, "protocol bgp d%d from dir { neighbor %s as 65001; }\n", i+1, a)
	}
	return b.String()
}

// bgpSession is the bgp block of the director self (AS 65001): one
// session, with BFD, to the lab's router (AS 65000) at bgpRouter.
func bgpSession(self string) string {
	return fmt.Sprintf(`bgp {
    router_id %s
    local_as 65001
    neighbor %s {
        remote_as 65000
        hold_time 3
        bfd
    }
}
`, self, bgpRouter)
}

func bgpDirectorConf(self string) string {
	prio := map[string]int{"198.18.0.11": 150, "198.18.0.12": 100, "198.18.0.13": 50}[self]
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
static_ipaddress {
    %[2]s/32 dev lo
}
%[7]svirtual_server %[2]s 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    bgp_announce
%[6]s}
vrrp_instance VI_BGP {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[4]d
    bgp_announce
    virtual_ipaddress {
        %[5]s/32 dev lo
    }
}
`, self, bgpVIP, bgpRouter, prio, bgpVRRPIP, tcpCheckedServers("198.18.0.21", "198.18.0.22"), bgpSession(self))
}

// routeOf is the router's route to dst, "" when it has none.
func routeOf(t testing.TB, r *lab.Host, dst string) string {
	t.Helper()
	out, err := r.Run("ip", "route", "show", dst)
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	return strings.TrimSpace(out)
}

// nexthops counts the router's next hops for the VIP (0: no route).
func nexthops(t testing.TB, r *lab.Host) int {
	t.Helper()
	out, err := r.Run("ip", "route", "show", bgpVIP)
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, out)
	}
	if strings.TrimSpace(out) == "" {
		return 0
	}
	if n := strings.Count(out, "nexthop via"); n > 0 {
		return n // BIRD: a multipath route
	}
	// FRR: a kernel nexthop object, maybe a group ("id 20 group 10/15/21").
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "nhid" {
			nh, err := r.Run("ip", "nexthop", "show", "id", f[i+1])
			if err != nil {
				t.Fatalf("ip nexthop: %v: %s", err, nh)
			}
			g := strings.Fields(nh)
			for j := 0; j+1 < len(g); j++ {
				if g[j] == "group" {
					return strings.Count(g[j+1], "/") + 1
				}
			}
		}
	}
	return 1
}

// waitNexthops waits until the router has n next hops for the VIP and
// returns how long that took from since.
func waitNexthops(t testing.TB, r *lab.Host, n int, since time.Time, timeout time.Duration, what string) time.Duration {
	t.Helper()
	lab.Eventually(t, timeout, func() bool { return nexthops(t, r) == n }, "%s: router does not have %d next hops for %s: %q", what, n, bgpVIP, func() string { s, _ := r.Run("ip", "route", "show", bgpVIP); return s })
	return time.Since(since)
}

// bgpClient makes a client namespace behind the router: its own veth
// into the router's namespace, 198.18.1.0/24.
func bgpClient(t testing.TB, l *lab.Lab, r *lab.Host) *lab.Host {
	t.Helper()
	ns := l.Prefix + "-cli"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "cli0", "netns", r.NS)
	run("ip", "-n", ns, "addr", "add", "198.18.1.2/24", "dev", "eth0")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "route", "add", "default", "via", "198.18.1.1")
	run("ip", "-n", r.NS, "addr", "add", "198.18.1.1/24", "dev", "cli0")
	run("ip", "-n", r.NS, "link", "set", "cli0", "up")
	return &lab.Host{Name: "client", NS: ns, Iface: "eth0"}
}

// frrConfs are FRR 8's per-daemon configurations for the router: ECMP
// (maximum-paths), BFD 100 ms × 3, hold 3 s. update-source is needed with
// GoBGP's BFD (labs/bgp pitfall 2: without it every session flaps).
func frrConfs(dirs []string) (zebra, bfdd, bgpd string) {
	zebra = "hostname r\nlog stdout\n"
	bfdd = "hostname r\nlog stdout\nbfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n  detect-multiplier 3\n"
	var b strings.Builder
	fmt.Fprintf(&b, `hostname r
log stdout
router bgp 65000
 bgp router-id %[1]s
 no bgp ebgp-requires-policy
 timers bgp 1 3
 neighbor DIR peer-group
 neighbor DIR remote-as 65001
 neighbor DIR timers connect 2
 neighbor DIR update-source %[1]s
 neighbor DIR bfd profile fast
`, bgpRouter)
	for _, a := range dirs {
		fmt.Fprintf(&b, " neighbor %s peer-group DIR\n", a)
	}
	b.WriteString(" address-family ipv4 unicast\n  maximum-paths 16\n exit-address-family\n")
	return zebra, bfdd, b.String()
}

// startFRR runs zebra, bfdd and bgpd in the router's namespace as the frr
// user (they refuse to run as root without the frrvty group).
func startFRR(tb testing.TB, r *lab.Host, dirs []string) {
	tb.Helper()
	lab.RequireCommand(tb, "/usr/lib/frr/zebra", "/usr/lib/frr/bfdd", "/usr/lib/frr/bgpd")
	u, err := user.Lookup("frr")
	if err != nil {
		tb.Fatalf("user frr (package frr): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The daemons run as frr: t.TempDir's parent is private.
	zebra, bfdd, bgpd := frrConfs(dirs)
	dir := lab.PublicDir(tb, map[string]string{"zebra.conf": zebra, "bfdd.conf": bfdd, "bgpd.conf": bgpd})
	if err := os.Chown(dir, uid, gid); err != nil {
		tb.Fatal(err)
	}
	common := []string{"-u", "frr", "-g", "frr", "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"), "-P", "0"}
	start := func(name string, extra ...string) *lab.Proc {
		args := append(append([]string{}, common...), "-f", filepath.Join(dir, name+".conf"), "-i", filepath.Join(dir, name+".pid"))
		return r.Start("/usr/lib/frr/"+name, append(args, extra...)...)
	}
	z := start("zebra")
	lab.Eventually(tb, 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(dir, "zserv.api")); return err == nil }, "zebra did not start:\n%s", z.Output())
	start("bfdd", "--bfdctl", filepath.Join(dir, "bfdd.sock"))
	start("bgpd")
}

// bgpLab is the topology above, running: BIRD has a 3-way route.
type bgpLab struct {
	l      *lab.Lab
	r      *lab.Host   // router
	client *lab.Host   // behind the router
	dh     []*lab.Host // directors' hosts
	rs     []*lab.Host // real servers
	ng     []*lab.Proc // nginx on rs
	ds     []*director
	addrs  []string // directors' addresses
	bsock  string   // BIRD's control socket
}

func (b *bgpLab) birdc(args ...string) string {
	out, _ := b.r.Run("birdc", append([]string{"-s", b.bsock}, args...)...)
	return out
}

// newBGPLab builds the topology, starts the router (bird or frr), the real
// servers and the three directors, and waits for the router's 3-way route.
func newBGPLab(tb testing.TB, router string) *bgpLab {
	tb.Helper()
	lab.RequireRoot(tb)
	lab.RequireCommand(tb, "nginx")
	b := &bgpLab{l: lab.New(tb), addrs: []string{"198.18.0.11", "198.18.0.12", "198.18.0.13"}}
	b.r = b.l.Host("r", bgpRouter+"/24")
	for i, a := range b.addrs {
		b.dh = append(b.dh, b.l.Host(fmt.Sprintf("d%d", i+1), a+"/24"))
	}
	b.rs = []*lab.Host{b.l.Host("rs1", "198.18.0.21/24"), b.l.Host("rs2", "198.18.0.22/24")}
	b.client = bgpClient(tb, b.l, b.r)
	for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"} {
		b.r.MustRun("sysctl", "-qw", k)
	}
	for _, h := range b.dh {
		h.MustRun("ip", "route", "add", "default", "via", bgpRouter)
	}
	b.ng = []*lab.Proc{nginx(tb, b.rs[0], "rs1"), nginx(tb, b.rs[1], "rs2")}

	if router == "frr" {
		startFRR(tb, b.r, b.addrs)
	} else {
		lab.RequireCommand(tb, "bird", "birdc")
		dir := tb.TempDir()
		bconf := filepath.Join(dir, "bird.conf")
		b.bsock = filepath.Join(dir, "bird.ctl")
		if err := os.WriteFile(bconf, []byte(birdConf(b.addrs)), 0o644); err != nil {
			tb.Fatal(err)
		}
		bird := b.r.Start("bird", "-f", "-c", bconf, "-s", b.bsock)
		lab.Eventually(tb, 10*time.Second, func() bool { _, err := os.Stat(b.bsock); return err == nil }, "bird did not start:\n%s", bird.Output())
	}

	lab.Binary(tb, "./cmd/vipd") // built before the clock starts
	start := time.Now()
	for i, h := range b.dh {
		b.ds = append(b.ds, startVipd(tb, h, bgpDirectorConf(b.addrs[i]), "--dataplane", "proxy"))
	}
	took := waitNexthops(tb, b.r, 3, start, 30*time.Second, "three directors announce")
	tb.Logf("directors started -> router has 3 next hops: %v", took.Round(time.Millisecond))
	return b
}

// TestBGPActiveActive runs three vipd directors announcing one VIP by BGP
// to a BIRD 2 router with ECMP and BFD: the router learns it from all
// three; a cut cable drops that director within BFD time; every real
// server down withdraws the VIP and one back announces it again; SIGTERM
// takes the director out gracefully (GRACEFUL_SHUTDOWN before the
// withdrawal, while it still forwards).
func TestBGPActiveActive(t *testing.T) {
	lab.RequireRoot(t)
	t.Parallel()
	b := newBGPLab(t, "bird")
	r, client, dh, ds, rs1 := b.r, b.client, b.dh, b.ds, b.rs[0]
	ng1, ng2 := b.ng[0], b.ng[1]
	birdc := b.birdc

	// Every director's own view: session up, BFD up, VIP announced.
	lab.Eventually(t, 10*time.Second, func() bool {
		for _, d := range ds {
			b := d.status().BGP
			if b == nil || len(b.Peers) != 1 || b.Peers[0].State != "ESTABLISHED" || b.Peers[0].BFD != "UP" ||
				len(b.Routes) == 0 || b.Routes[0] != bgpVIP+"/32" {
				return false
			}
		}
		return true
	}, "vipctl bgp state: %+v", ds[0].status().BGP)
	if out, err := dh[0].Run(lab.Binary(t, "./cmd/vipctl"), "--socket", ds[0].sock, "bgp"); err != nil || !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, bgpVIP+"/32  yes") {
		t.Errorf("vipctl bgp: %v\n%s", err, out)
	} else {
		t.Logf("vipctl bgp on d1:\n%s", out)
	}
	// The vrrp_instance's VIP comes from its MASTER alone (d1, priority 150).
	lab.Eventually(t, 20*time.Second, func() bool {
		rt := routeOf(t, r, bgpVRRPIP)
		return strings.Contains(rt, "via 198.18.0.11 ") && !strings.Contains(rt, "nexthop")
	}, "router's route to the vrrp_instance's VIP is not via d1 alone: %q", routeOf(t, r, bgpVRRPIP))
	// Announced only after the first full round of checks.
	for _, d := range ds {
		o := d.proc.Output()
		pend := strings.Index(o, "first round of health checks not complete")
		ann := strings.Index(o, "BGP route announced prefix=")
		if pend < 0 || ann < 0 || pend > ann {
			t.Errorf("%s: announcement not preceded by the pending first round (pending at %d, announced at %d)", d.host.Name, pend, ann)
		}
	}
	// Clients behind the router reach the VIP through any director.
	lab.Eventually(t, 10*time.Second, func() bool {
		b, err := get(client, bgpVIP, 2*time.Second)
		return err == nil && (b == "rs1" || b == "rs2")
	}, "client cannot fetch the VIP through the router")

	t.Run("link cut", func(t *testing.T) {
		t0 := time.Now()
		dh[2].Cut()
		took := waitNexthops(t, r, 2, t0, 10*time.Second, "d3's cable cut")
		t.Logf("d3 cable cut -> router has 2 next hops: %v (BFD 100 ms x 3)", took.Round(time.Millisecond))
		if out := birdc("show", "protocols", "all", "d3"); !strings.Contains(out, "BFD session down") {
			t.Errorf("BIRD did not drop d3 for BFD:\n%s", out)
		}
		// The VIP still answers through the survivors.
		if _, err := get(client, bgpVIP, 3*time.Second); err != nil {
			t.Errorf("VIP after the cut: %v", err)
		}
		t0 = time.Now()
		dh[2].Restore()
		took = waitNexthops(t, r, 3, t0, 30*time.Second, "d3's cable back")
		t.Logf("d3 cable back -> router has 3 next hops: %v", took.Round(time.Millisecond))
	})

	parent := t
	t.Run("every real server down", func(t *testing.T) {
		t0 := time.Now()
		stop(t, ng1)
		stop(t, ng2)
		took := waitNexthops(t, r, 0, t0, 15*time.Second, "every real server down")
		t.Logf("both real servers stopped -> route withdrawn: %v", took.Round(time.Millisecond))
		for _, d := range ds {
			lab.Eventually(t, 5*time.Second, func() bool {
				b := d.status().BGP
				for _, r := range b.Routes {
					if r == bgpVIP+"/32" {
						return false
					}
				}
				for _, dc := range b.Decisions {
					if dc.Prefix == bgpVIP+"/32" {
						return !dc.Announce && strings.Contains(dc.Reason, "every real server is down")
					}
				}
				return false
			}, "%s: %+v", d.host.Name, d.status().BGP)
		}
		t0 = time.Now()
		nginx(parent, rs1, "rs1")
		took = waitNexthops(t, r, 3, t0, 15*time.Second, "one real server back")
		t.Logf("rs1 back -> 3 next hops again: %v", took.Round(time.Millisecond))
		lab.Eventually(t, 10*time.Second, func() bool {
			b, err := get(client, bgpVIP, 2*time.Second)
			return err == nil && b == "rs1"
		}, "client cannot fetch the VIP after rs1 came back")
	})

	t.Run("vipctl bgp drain and resume", func(t *testing.T) {
		vipctl := lab.Binary(t, "./cmd/vipctl")
		t0 := time.Now()
		out, err := dh[1].Run(vipctl, "--socket", ds[1].sock, "bgp", "drain")
		if err != nil || !strings.Contains(out, "0 routes announced (draining)") {
			t.Fatalf("vipctl bgp drain: %v\n%s", err, out)
		}
		t.Logf("vipctl bgp drain (GRACEFUL_SHUTDOWN, 1 s, withdrawal) returned after %v", time.Since(t0).Round(time.Millisecond))
		// The withdrawal is sent before drain returns; BIRD then updates
		// the kernel's route (once in CI that came after the first look).
		t1 := time.Now()
		took := waitNexthops(t, r, 2, t1, 5*time.Second, "after drain")
		t.Logf("drain returned -> 2 next hops: %v", took.Round(time.Millisecond))
		// A health change while drained announces nothing.
		// A reload runs the policy again: still nothing announced.
		reloads := ds[1].status().Reloads
		if err := ds[1].proc.Signal(1); err != nil {
			t.Fatal(err)
		}
		lab.Eventually(t, 10*time.Second, func() bool { return ds[1].status().Reloads > reloads }, "d2 did not reload")
		if b := ds[1].status().BGP; !b.Draining || len(b.Routes) != 0 || nexthops(t, r) != 2 {
			t.Errorf("drained director announced again after a reload: %+v, %d next hops", b, nexthops(t, r))
		}
		out, err = dh[1].Run(vipctl, "--socket", ds[1].sock, "bgp", "resume")
		if err != nil {
			t.Fatalf("vipctl bgp resume: %v\n%s", err, out)
		}
		waitNexthops(t, r, 3, time.Now(), 10*time.Second, "resume")
	})

	t.Run("SIGTERM drains first", func(t *testing.T) {
		t0 := time.Now()
		if err := ds[0].proc.Signal(15); err != nil {
			t.Fatal(err)
		}
		// GRACEFUL_SHUTDOWN takes d1 out of the multipath set while vipd
		// still runs (and forwards); the withdrawal and exit follow.
		// Out of the ECMP set by GRACEFUL_SHUTDOWN first, not by the
		// withdrawal: BIRD holds d1's path with local preference 0 during
		// the drain pause (1 s; under CI load a look after the multipath
		// change came after the withdrawal once, so BIRD is watched).
		var path string
		lab.Eventually(t, 5*time.Second, func() bool {
			path = birdc("show", "route", bgpVIP+"/32", "all", "protocol", "d1")
			return strings.Contains(path, "BGP.local_pref: 0") && strings.Contains(path, "(65535,0)")
		}, "d1's path at the router never marked GRACEFUL_SHUTDOWN:\n%s", func() string { return path })
		lab.Eventually(t, 5*time.Second, func() bool { return nexthops(t, r) == 2 }, "d1 not drained")
		took := time.Since(t0)
		select {
		case <-ds[0].proc.Done():
			t.Errorf("d1 exited before the router moved traffic away")
		default:
		}
		t.Logf("SIGTERM d1 -> router has 2 next hops: %v (vipd still running)", took.Round(time.Millisecond))
		select {
		case <-ds[0].proc.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("d1 did not stop")
		}
		o := ds[0].proc.Output()
		o = o[strings.Index(o, "Stopping"):]
		g := strings.Index(o, "BGP route marked GRACEFUL_SHUTDOWN")
		w := strings.Index(o, "BGP route withdrawn prefix=")
		s := strings.Index(o, "BGP speaker stopped")
		if g < 0 || w < 0 || s < 0 || g > w || w > s {
			t.Errorf("d1: want GRACEFUL_SHUTDOWN, then withdrawal, then stop; at %d, %d, %d", g, w, s)
		}
		if got := nexthops(t, r); got != 2 {
			t.Errorf("after d1 stopped: %d next hops, want 2", got)
		}
		if _, err := get(client, bgpVIP, 3*time.Second); err != nil {
			t.Errorf("VIP after d1 stopped: %v", err)
		}
		// d2 is VRRP MASTER now and announces the instance's VIP.
		lab.Eventually(t, 10*time.Second, func() bool {
			return strings.Contains(routeOf(t, r, bgpVRRPIP), "via 198.18.0.12 ")
		}, "the vrrp_instance's VIP did not move to d2: %q", routeOf(t, r, bgpVRRPIP))
		t.Logf("vrrp_instance VIP now via d2: %q", routeOf(t, r, bgpVRRPIP))
	})
}

// TestBGPFRR is the same topology with FRR 8 (zebra, bfdd, bgpd) as the
// router, the implementation most ToRs run (Cumulus, SONiC): 3 next hops
// (a kernel nexthop group), a cut cable drops the director by BFD and it
// returns with the cable, SIGTERM withdraws.
func TestBGPFRR(t *testing.T) {
	lab.RequireRoot(t)
	t.Parallel()
	b := newBGPLab(t, "frr")
	lab.Eventually(t, 15*time.Second, func() bool {
		for _, d := range b.ds {
			st := d.status().BGP
			if st == nil || len(st.Peers) != 1 || st.Peers[0].BFD != "UP" {
				return false
			}
		}
		return true
	}, "BFD with FRR not UP on every director: %+v", b.ds[2].status().BGP)
	t0 := time.Now()
	b.dh[2].Cut()
	took := waitNexthops(t, b.r, 2, t0, 10*time.Second, "d3's cable cut")
	t.Logf("FRR: d3 cable cut -> 2 next hops: %v", took.Round(time.Millisecond))
	t0 = time.Now()
	b.dh[2].Restore()
	took = waitNexthops(t, b.r, 3, t0, 30*time.Second, "d3's cable back")
	t.Logf("FRR: d3 cable back -> 3 next hops: %v", took.Round(time.Millisecond))
	if _, err := get(b.client, bgpVIP, 3*time.Second); err != nil {
		t.Errorf("VIP through FRR: %v", err)
	}
	t0 = time.Now()
	stop(t, b.ds[0].proc)
	took = waitNexthops(t, b.r, 2, t0, 10*time.Second, "d1 stopped")
	t.Logf("FRR: SIGTERM d1 -> 2 next hops: %v", took.Round(time.Millisecond))
}
