package vmtest

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// drLab: one flat subnet 198.18.0.0/24 (the seeds' LVS-DR setup): a
// client, two directors, two real servers with the VIP on lo. Real
// servers answer HTTP on 80 and hold connections on 81 (DR and TUN keep
// the port).
type drLab struct {
	l      *lab.Lab
	client *lab.Host
	d1, d2 *lab.Host
	rs     []*lab.Host
}

const drVIP = "198.18.0.100"

func newDRLab(t *testing.T) *drLab {
	n := &drLab{l: lab.New(t)}
	n.client = n.l.Host("cli")
	n.d1 = n.l.Host("d1")
	n.d2 = n.l.Host("d2")
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("rs%d", i)
		h := n.l.Host(name)
		realServerUp(t, h, drVIP)
		serveHTTP(t, h, ":80", name)
		serveHold(t, h, ":81", name)
		n.rs = append(n.rs, h)
	}
	n.d1.MustRun("ip", "addr", "add", drVIP+"/32", "dev", "eth0")
	return n
}

func (n *drLab) service(port uint16, sched string, f func(i int, d *lvs.Destination)) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrPortFrom(netip.MustParseAddr(drVIP), port)}, Scheduler: sched}
	for i, h := range n.rs {
		d := lvs.Destination{Addr: netip.AddrPortFrom(h.Addr, port), Weight: 1, Forward: lvs.Route}
		if f != nil {
			f(i, &d)
		}
		s.Destinations = append(s.Destinations, d)
	}
	return s
}

func TestDirectRouting(t *testing.T) {
	requireIPVS(t)
	n := newDRLab(t)
	t.Run("dr", func(t *testing.T) { testDR(t, n) })
	t.Run("tun", func(t *testing.T) { testTUN(t, n) })
	t.Run("sync", func(t *testing.T) { testSync(t, n) })
}

// testDR: HTTP through a DR director, and proof that the replies bypass
// it: the director transmits a small fraction of the response bytes (the
// client's requests and ACKs it forwards), the real servers transmit all
// of them, and IPVS counts no outgoing packet.
func testDR(t *testing.T, n *drLab) {
	d := newDataplane(t, n.d1, ipvs.Options{})
	svc := n.service(80, "rr", nil)
	apply(t, d, svc)

	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		body, err := n.client.Get("http://" + drVIP + "/")
		if err != nil {
			t.Fatalf("GET through the DR VIP: %v", err)
		}
		seen[strings.TrimSpace(body)]++
	}
	if seen["rs1"] != 2 || seen["rs2"] != 2 {
		t.Errorf("rr over 2 DR real servers answered %v", seen)
	}

	const size, count = 300000, 3
	dirBefore := txBytes(t, n.d1, "eth0")
	var rsBefore int64
	for _, h := range n.rs {
		rsBefore += txBytes(t, h, "eth0")
	}
	for i := 0; i < count; i++ {
		if body, err := n.client.Get(fmt.Sprintf("http://%s/big?n=%d", drVIP, size)); err != nil || len(body) != size {
			t.Fatalf("GET /big: %d bytes, %v", len(body), err)
		}
	}
	dirSent := txBytes(t, n.d1, "eth0") - dirBefore
	var rsSent int64
	for _, h := range n.rs {
		rsSent += txBytes(t, h, "eth0")
	}
	rsSent -= rsBefore
	t.Logf("DR: %d response bytes; director transmitted %d bytes, real servers %d", size*count, dirSent, rsSent)
	if dirSent > size*count/4 {
		t.Errorf("the DR director transmitted %d bytes for %d response bytes: replies went through it", dirSent, size*count)
	}
	if rsSent < size*count {
		t.Errorf("the real servers transmitted %d bytes, less than the %d response bytes", rsSent, size*count)
	}
	lab.Eventually(t, 10*time.Second, func() bool {
		s := find(t, d, svc.Key)
		return s.Stats.Conns == 4+count && s.Stats.InPkts > 0
	}, "service counters never showed %d connections", 4+count)
	if s := find(t, d, svc.Key); s.Stats.OutPkts != 0 || s.Stats.OutBytes != 0 {
		t.Errorf("IPVS saw %d outgoing packets on a DR service: replies went through the director", s.Stats.OutPkts)
	}
}

// testTUN: the same over IP-in-IP, GRE and GUE encapsulation. The real
// servers decapsulate on their fallback tunnel devices (tunl0, gre0; GUE
// via a fou port delivering to tunl0) and answer the client directly.
func testTUN(t *testing.T, n *drLab) {
	for _, m := range []string{"ipip", "ip_gre", "fou"} {
		if out, err := exec.Command("modprobe", m).CombinedOutput(); err != nil {
			t.Fatalf("modprobe %s: %v: %s", m, err, out)
		}
	}
	for _, h := range n.rs {
		for _, dev := range []string{"tunl0", "gre0"} {
			h.MustRun("ip", "link", "set", dev, "up")
			sysctl(t, h, "net.ipv4.conf."+dev+".rp_filter=0")
		}
		h.MustRun("ip", "fou", "add", "port", "6080", "gue")
	}
	d := newDataplane(t, n.d1, ipvs.Options{})
	for _, tc := range []struct {
		name   string
		tunnel lvs.TunnelType
		port   uint16
	}{
		{"ipip", lvs.TunnelIPIP, 0},
		{"gre", lvs.TunnelGRE, 0},
		{"gue", lvs.TunnelGUE, 6080},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := n.service(80, "rr", func(_ int, d *lvs.Destination) {
				d.Forward, d.Tunnel, d.TunnelPort = lvs.Tunnel, tc.tunnel, tc.port
			})
			w := d.Writes()
			apply(t, d, svc)
			if w > 0 && d.Writes()-w != 2 {
				t.Errorf("switching the tunnel type of 2 destinations took %d writes", d.Writes()-w)
			}
			before := find(t, d, svc.Key).Stats.Conns
			seen := map[string]int{}
			for i := 0; i < 4; i++ {
				body, err := n.client.Get("http://" + drVIP + "/")
				if err != nil {
					t.Fatalf("GET through a %s tunnel: %v", tc.name, err)
				}
				seen[strings.TrimSpace(body)]++
			}
			if seen["rs1"] != 2 || seen["rs2"] != 2 {
				t.Errorf("rr over 2 %s real servers answered %v", tc.name, seen)
			}
			lab.Eventually(t, 10*time.Second, func() bool { return find(t, d, svc.Key).Stats.Conns >= before+4 }, "connections not counted")
			if s := find(t, d, svc.Key); s.Stats.OutPkts != 0 {
				t.Errorf("IPVS saw %d outgoing packets on a TUN service", s.Stats.OutPkts)
			}
		})
	}
}

// testSync: two directors with the sync daemon. Connections established
// through the master are synchronised to the backup; after a failover
// (the VIP moves, roles swap as VRRP would make them) they continue
// through the new master to the same real server. A connection opened
// before the sync daemons started is the control: it is not known to the
// new master and gets reset.
func testSync(t *testing.T, n *drLab) {
	d1 := newDataplane(t, n.d1, ipvs.Options{})
	d2 := newDataplane(t, n.d2, ipvs.Options{})
	svc := n.service(81, "rr", nil)
	apply(t, d1, svc)
	apply(t, d2, svc)
	// Control first: conn B is established before any sync daemon runs,
	// so it is never synchronised (the master syncs a connection on
	// state changes and every 50th packet, and B stays idle).
	clientIP := n.client.Addr
	b, err := dialHold(n.client, clientIP, 41002, drVIP+":81")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.echo("b1"); err != nil {
		t.Fatal(err)
	}

	cfg := ipvs.SyncConfig{Interface: "eth0", SyncID: 7}
	if err := d2.SyncBackup(cfg); err != nil {
		t.Fatal(err)
	}
	if err := d1.SyncMaster(cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    *ipvs.Dataplane
		want ipvs.SyncState
	}{{d1, ipvs.SyncMaster}, {d2, ipvs.SyncBackup}} {
		ds, err := tc.d.SyncDaemons()
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].State != tc.want || ds[0].Interface != "eth0" || ds[0].SyncID != 7 {
			t.Fatalf("sync daemons read back as %+v, want one %s on eth0 id 7", ds, tc.want)
		}
	}
	w := d1.Writes()
	if err := d1.SyncMaster(cfg); err != nil || d1.Writes() != w {
		t.Errorf("SyncMaster again: %v, %d writes; want idempotent", err, d1.Writes()-w)
	}

	a, err := dialHold(n.client, clientIP, 41001, drVIP+":81")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.echo("a1"); err != nil {
		t.Fatal(err)
	}
	var synced lvs.ConnEntry
	lab.Eventually(t, 15*time.Second, func() bool {
		conns, err := d2.ConnList()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			if c.Client == netip.AddrPortFrom(clientIP, 41001) {
				synced = c
				return true
			}
		}
		return false
	}, "connection A never reached the backup director")
	t.Logf("backup holds %+v (A answered by %s, B by %s)", synced, a.server, b.server)
	wantDest := n.rs[0].Addr
	if a.server == "rs2" {
		wantDest = n.rs[1].Addr
	}
	if synced.State != "ESTABLISHED" || synced.Dest.Addr() != wantDest {
		t.Errorf("synchronised entry %+v does not match A, answered by %s", synced, a.server)
	}

	// Failover: the VIP moves to d2 (the client re-resolves it), roles
	// swap.
	n.d1.MustRun("ip", "addr", "del", drVIP+"/32", "dev", "eth0")
	n.d2.MustRun("ip", "addr", "add", drVIP+"/32", "dev", "eth0")
	n.client.MustRun("ip", "neigh", "flush", "to", drVIP)
	if err := d2.SyncMaster(cfg); err != nil {
		t.Fatal(err)
	}
	if err := d1.SyncBackup(cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.echo("a2 after failover"); err != nil {
		t.Errorf("synchronised connection broken by the failover: %v", err)
	}
	if err := b.echo("b2 after failover"); err == nil {
		t.Errorf("the unsynchronised control connection survived the failover: the test cannot tell sync from luck")
	} else {
		t.Logf("control connection failed as expected: %v", err)
	}
	// New connections go through the new master.
	if _, err := dialHold(n.client, clientIP, 41003, drVIP+":81"); err != nil {
		t.Errorf("new connection through the new master: %v", err)
	}
	if err := d2.SyncStop(); err != nil {
		t.Fatal(err)
	}
	if err := d1.SyncStop(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*ipvs.Dataplane{d1, d2} {
		if ds, err := d.SyncDaemons(); err != nil || len(ds) != 0 {
			t.Errorf("after SyncStop: %+v, %v", ds, err)
		}
	}
}
