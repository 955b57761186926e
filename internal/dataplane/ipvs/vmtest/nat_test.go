package vmtest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// natLab: a client on 198.18.1.0/24, a director with a leg in both
// subnets (one bridge port, two subnets) holding the VIP, and four real
// servers on 198.18.2.0/24 whose default route is the director, as LVS-NAT
// needs. Each real server answers HTTP on 8080 and holds connections on
// 8081.
type natLab struct {
	l      *lab.Lab
	client *lab.Host
	dir    *lab.Host
	rs     []*lab.Host
	srcs   []netip.Addr // the client's addresses, for hashing schedulers
}

const natVIP = "198.18.1.100"

func rsAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 2, byte(21 + i)}) }

func newNATLab(t *testing.T) *natLab {
	n := &natLab{l: lab.New(t)}
	n.client = n.l.Host("cli", "198.18.1.2/24")
	n.srcs = append(n.srcs, netip.MustParseAddr("198.18.1.2"))
	for i := 3; i < 19; i++ {
		a := fmt.Sprintf("198.18.1.%d", i)
		n.client.MustRun("ip", "addr", "add", a+"/24", "dev", "eth0")
		n.srcs = append(n.srcs, netip.MustParseAddr(a))
	}
	n.dir = n.l.Host("dir", "198.18.1.1/24", "198.18.2.1/24")
	n.dir.MustRun("ip", "addr", "add", natVIP+"/32", "dev", "eth0")
	// Replies from the real servers leave by the interface they came in
	// on; an ICMP redirect would send the real servers around the
	// director and break NAT.
	sysctl(t, n.dir, "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
		"net.ipv4.conf.default.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("rs%d", i+1)
		h := n.l.Host(name, rsAddr(i).String()+"/24")
		h.MustRun("ip", "route", "add", "default", "via", "198.18.2.1")
		serveHTTP(t, h, ":8080", name)
		serveHold(t, h, ":8081", name)
		n.rs = append(n.rs, h)
	}
	return n
}

func natDest(i int, port uint16, w int) lvs.Destination {
	return lvs.Destination{Addr: netip.AddrPortFrom(rsAddr(i), port), Weight: w, Forward: lvs.Masq}
}

func vipKey(port uint16) lvs.ServiceKey {
	return lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrPortFrom(netip.MustParseAddr(natVIP), port)}
}

func TestNAT(t *testing.T) {
	requireIPVS(t)
	n := newNATLab(t)
	t.Run("traffic", func(t *testing.T) { testNATTraffic(t, n) })
	t.Run("schedulers", func(t *testing.T) { testSchedulers(t, n) })
	t.Run("ipvsadm", func(t *testing.T) { testIpvsadmListings(t, n) })
	t.Run("reload", func(t *testing.T) { testReload(t, n) })
	t.Run("forms", func(t *testing.T) { testForms(t, n) })
	t.Run("latency", func(t *testing.T) { testApplyLatency(t, n) })
}

// testNATTraffic: real HTTP through the VIP, balanced rr over two real
// servers, with the replies coming back through the director.
func testNATTraffic(t *testing.T, n *natLab) {
	d := newDataplane(t, n.dir, ipvs.Options{})
	key := vipKey(80)
	apply(t, d, lvs.Service{Key: key, Scheduler: "rr", Destinations: []lvs.Destination{natDest(0, 8080, 1), natDest(1, 8080, 1)}})

	var seq []string
	for i := 0; i < 6; i++ {
		body, err := n.client.Get("http://" + natVIP + "/")
		if err != nil {
			t.Fatalf("GET %d through the VIP: %v", i, err)
		}
		seq = append(seq, strings.TrimSpace(body))
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] || (seq[i] != "rs1" && seq[i] != "rs2") {
			t.Fatalf("rr over rs1, rs2 answered %v", seq)
		}
	}

	conns, err := d.ConnList()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range conns {
		if c.Virtual == key.Addr && c.Client.Addr() == n.srcs[0] && c.Proto == lvs.TCP {
			if c.Dest.Port() != 8080 || (c.Dest.Addr() != rsAddr(0) && c.Dest.Addr() != rsAddr(1)) {
				t.Errorf("connection entry to an unexpected destination: %+v", c)
			}
			seen++
		}
	}
	if seen != 6 {
		t.Errorf("%d connection entries for the 6 requests: %+v", seen, conns)
	}

	// NAT carries the replies: the director transmits the response bytes.
	before := txBytes(t, n.dir, "eth0")
	const size = 300000
	if body, err := n.client.Get(fmt.Sprintf("http://%s/big?n=%d", natVIP, size)); err != nil || len(body) != size {
		t.Fatalf("GET /big: %d bytes, %v", len(body), err)
	}
	if sent := txBytes(t, n.dir, "eth0") - before; sent < size {
		t.Errorf("NAT director transmitted %d bytes for a %d-byte response: replies did not pass through it", sent, size)
	}

	// Counters reach the kernel's estimator within its 2 s period.
	lab.Eventually(t, 10*time.Second, func() bool {
		s := find(t, d, key)
		return s.Stats.Conns == 7 && s.Stats.OutPkts > 0
	}, "service counters never showed the 7 connections")
	s := find(t, d, key)
	for _, ds := range s.Dests {
		if ds.Forward != lvs.Masq || ds.Weight != 1 {
			t.Errorf("destination read back as %+v", ds.Destination)
		}
	}
}
