package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

const vipAddr = "127.0.0.100"

func vip(t *testing.T) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(vipAddr), freePort(t, vipAddr))
}

func TestRoundRobin(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	rs2 := startServer(t, "rs2", "127.0.0.1:0")
	_, v, _ := serveRR(t, rs1, rs2)
	var got []string
	for range 6 {
		c := dial(t, v, "")
		c.echo(t, "hello")
		got = append(got, c.name)
		c.Close()
	}
	for i := 2; i < len(got); i++ {
		if got[i] != got[i-2] || got[i] == got[i-1] {
			t.Fatalf("rr sequence %v does not alternate", got)
		}
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	rs2 := startServer(t, "rs2", "127.0.0.1:0")
	_, v, _ := serve(t, "wrr", func(s *lvs.Service) {
		s.Destinations[1].Weight = 5
	}, rs1, rs2)
	n := map[string]int{}
	for range 12 {
		c := dial(t, v, "")
		n[c.name]++
		c.Close()
	}
	if n["rs1"] != 2 || n["rs2"] != 10 {
		t.Fatalf("wrr 1:5 over 12 connections gave %v", n)
	}
}

func TestStatesAndCounts(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, s := serveRR(t, rs1)

	c := dial(t, v, "")
	c.echo(t, "ping")
	eventually(t, 5*time.Second, func() bool {
		d := destStatus(t, dp, s.Key, rs1.addr)
		return d.ActiveConns == 1 && d.InactiveConns == 0
	}, "one established connection not counted active")
	es := connsOf(dp, "ESTABLISHED")
	if len(es) != 1 || es[0].Client.String() != c.LocalAddr().String() || es[0].Virtual != v || es[0].Dest != rs1.addr {
		t.Fatalf("ESTABLISHED entries %+v", es)
	}
	if es[0].Expire <= 890*time.Second || es[0].Expire > 900*time.Second {
		t.Fatalf("expire %v, want about 900s", es[0].Expire)
	}

	// The client half-closes: CLOSE_WAIT, inactive; the real server still
	// answers, then closes: TIME_WAIT.
	c.Conn.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(c.r)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
	eventually(t, 5*time.Second, func() bool { return len(connsOf(dp, "TIME_WAIT")) == 1 }, "no TIME_WAIT entry after both FINs: %+v", dp.Conns())
	d := destStatus(t, dp, s.Key, rs1.addr)
	if d.ActiveConns != 0 || d.InactiveConns != 1 || d.Stats.Conns != 1 {
		t.Fatalf("after close: active %d inactive %d conns %d, want 0 1 1", d.ActiveConns, d.InactiveConns, d.Stats.Conns)
	}
	tw := connsOf(dp, "TIME_WAIT")[0]
	if tw.Expire <= 110*time.Second || tw.Expire > 120*time.Second {
		t.Fatalf("TIME_WAIT expire %v, want about 120s", tw.Expire)
	}
}

func TestServerClosesFirst(t *testing.T) {
	// A server that says bye and closes: FIN_WAIT until the client closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "bye\n")
			c.(*net.TCPConn).CloseWrite()
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	dp := newDP(t)
	v := vip(t)
	apply(t, dp, lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v}, Scheduler: "rr",
		Timeouts:     lvs.Timeouts{TCPFin: 30 * time.Second},
		Destinations: []lvs.Destination{{Addr: ln.Addr().(*net.TCPAddr).AddrPort(), Weight: 1}}})
	c := dial(t, v, "")
	if c.name != "bye" {
		t.Fatalf("greeting %q", c.name)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("want EOF after the server's FIN, got %v", err)
	}
	eventually(t, 5*time.Second, func() bool {
		fw := connsOf(dp, "FIN_WAIT")
		return len(fw) == 1 && fw[0].Expire > 25*time.Second && fw[0].Expire <= 30*time.Second
	}, "no FIN_WAIT entry with the tcpfin timeout: %+v", dp.Conns())
	// The client can still send after the server's FIN (half-close).
	if _, err := c.Write([]byte("late data")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	eventually(t, 5*time.Second, func() bool { return len(connsOf(dp, "TIME_WAIT")) == 1 }, "no TIME_WAIT after the client's FIN: %+v", dp.Conns())
}

func TestBulkTransfer(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, s := serveRR(t, rs1)
	c := dial(t, v, "")
	data := make([]byte, 16<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	go func() {
		c.Write(data)
		c.Conn.(*net.TCPConn).CloseWrite()
	}()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, c.r)
	if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echoed %d bytes (err %v), checksum match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
	}
	// Counters: every payload byte went in and out, plus headers; at
	// least one segment per 64 KiB.
	eventually(t, 5*time.Second, func() bool {
		st := dp.Services()[0].Stats
		return st.InBytes > uint64(len(data)) && st.OutBytes > uint64(len(data)) && st.InPkts > uint64(len(data)>>16) && st.OutPkts > uint64(len(data)>>16)
	}, "counters %+v after 16 MiB each way", dp.Services()[0].Stats)
	st := dp.Services()[0].Stats
	d := destStatus(t, dp, s.Key, rs1.addr).Stats
	if st != d {
		t.Fatalf("service counters %+v differ from its only destination's %+v", st, d)
	}
	// Header overhead stays plausible: at most 100 bytes a segment.
	if st.InBytes-uint64(len(data)) > 100*st.InPkts {
		t.Fatalf("in bytes %d for %d payload and %d packets", st.InBytes, len(data), st.InPkts)
	}
}

func TestConnectRetry(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dead := startServer(t, "dead", "127.0.0.1:0")
	dead.stop() // refuses connections from now on
	dp, v, s := serveRR(t, dead, rs1)
	for range 4 {
		c := dial(t, v, "")
		if c.name != "rs1" {
			t.Fatalf("got %q", c.name)
		}
		c.Close()
	}
	d := destStatus(t, dp, s.Key, dead.addr)
	if d.Stats.Conns == 0 || d.InactiveConns != int(d.Stats.Conns) {
		t.Fatalf("refused attempts: conns %d inactive %d, want them counted and lingering", d.Stats.Conns, d.InactiveConns)
	}
	if n := len(connsOf(dp, "CLOSE")); n != int(d.Stats.Conns) {
		t.Fatalf("%d CLOSE entries for %d refused attempts", n, d.Stats.Conns)
	}
}

func TestNoDestination(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, _ := serve(t, "rr", func(s *lvs.Service) {
		s.Destinations[0].Weight = 0
	}, rs1)
	if c, err := dialErr(v, ""); err == nil {
		c.Close()
		t.Fatalf("connected to %s through a service whose only destination has weight 0", c.name)
	}
	// Sorry server: the daemon replaces the destinations by one.
	sorry := startServer(t, "sorry", "127.0.0.1:0")
	apply(t, dp, tcpService(v, "rr", sorry))
	if c := dial(t, v, ""); c.name != "sorry" {
		t.Fatalf("got %q, want the sorry server", c.name)
	}
}

func TestDrain(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	rs2 := startServer(t, "rs2", "127.0.0.1:0")
	dp, v, s := serveRR(t, rs1, rs2)
	var on1 *client
	for on1 == nil {
		c := dial(t, v, "")
		if c.name == "rs1" {
			on1 = c
		}
	}
	// Weight 0: no new connections, the open one keeps working.
	s.Destinations[0].Weight = 0
	apply(t, dp, s)
	for range 4 {
		if c := dial(t, v, ""); c.name != "rs2" {
			t.Fatalf("new connection to %s after its weight became 0", c.name)
		}
	}
	on1.echo(t, "still here")
	// Removed: the same, and it disappears from the listing.
	s.Destinations = s.Destinations[1:]
	apply(t, dp, s)
	on1.echo(t, "still here after removal")
	if got := dp.Services()[0].Dests; len(got) != 1 || got[0].Addr != rs2.addr {
		t.Fatalf("destinations listed after removal: %+v", got)
	}
	found := false
	for _, e := range connsOf(dp, "ESTABLISHED") {
		found = found || (e.Dest == rs1.addr && e.Client.String() == on1.LocalAddr().String())
	}
	if !found {
		t.Fatalf("draining connection not in the table: %+v", dp.Conns())
	}
	// Re-added: it comes back with its counters.
	s.Destinations = append(s.Destinations, lvs.Destination{Addr: rs1.addr, Weight: 1})
	apply(t, dp, s)
	if d := destStatus(t, dp, s.Key, rs1.addr); d.ActiveConns != 1 || d.Stats.Conns == 0 {
		t.Fatalf("re-added destination lost its counts: %+v", d)
	}
}

func TestRemoveServiceDrains(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, _ := serveRR(t, rs1)
	c := dial(t, v, "")
	apply(t, dp)
	if len(dp.Services()) != 0 {
		t.Fatal("service still listed")
	}
	if _, err := net.DialTimeout("tcp", v.String(), time.Second); err == nil {
		t.Fatal("listener still open after the service was removed")
	}
	c.echo(t, "open connections drain")
	if len(connsOf(dp, "ESTABLISHED")) != 1 {
		t.Fatalf("draining connection not listed: %+v", dp.Conns())
	}
}

func TestPersistence(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	rs2 := startServer(t, "rs2", "127.0.0.1:0")
	dp, v, s := serve(t, "rr", func(s *lvs.Service) {
		s.Persistence = 50 * time.Second
	}, rs1, rs2)
	first := dial(t, v, "127.0.0.2")
	for range 4 {
		if c := dial(t, v, "127.0.0.2"); c.name != first.name {
			t.Fatalf("persistent client moved from %s to %s", first.name, c.name)
		}
	}
	// Another client is scheduled by rr: it lands on the other server.
	if c := dial(t, v, "127.0.0.3"); c.name == first.name {
		t.Fatalf("second client also on %s", c.name)
	}
	var tmpl []lvs.ConnEntry
	for _, e := range connsOf(dp, "NONE") {
		if e.Client.Addr().String() == "127.0.0.2" {
			tmpl = append(tmpl, e)
		}
	}
	if len(tmpl) != 1 || tmpl[0].Client.Port() != 0 || tmpl[0].Expire <= 45*time.Second || tmpl[0].Expire > 50*time.Second {
		t.Fatalf("template entries %+v", tmpl)
	}
	first.Close()
	// Granularity /24: both clients share one template.
	s.PersistMask = 24
	apply(t, dp, s)
	a := dial(t, v, "127.0.1.2")
	for range 3 {
		if c := dial(t, v, "127.0.1.3"); c.name != a.name {
			t.Fatalf("client of the same /24 went to %s, not %s", c.name, a.name)
		}
	}
	if d := destStatus(t, dp, s.Key, first.addrOf(rs1, rs2)); d.PersistConns == 0 {
		t.Fatalf("PersistConns not counted: %+v", d)
	}
}

func (c *client) addrOf(rs ...*realServer) netip.AddrPort {
	for _, r := range rs {
		if r.name == c.name {
			return r.addr
		}
	}
	return netip.AddrPort{}
}

func TestUpperThreshold(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	rs2 := startServer(t, "rs2", "127.0.0.1:0")
	dp, v, s := serve(t, "rr", func(s *lvs.Service) {
		s.Destinations[0].UThreshold = 1
		s.Destinations[1].UThreshold = 1
	}, rs1, rs2)
	a := dial(t, v, "")
	b := dial(t, v, "")
	if a.name == b.name {
		t.Fatalf("both on %s", a.name)
	}
	// Each destination holds one connection and has u_threshold 1: both
	// overloaded, no destination for a third.
	if c, err := dialErr(v, ""); err == nil {
		t.Fatalf("third connection went to overloaded %s", c.name)
	}
	for _, d := range dp.Services()[0].Dests {
		if d.ActiveConns != 1 {
			t.Fatalf("%+v", d)
		}
	}
	// Raising the threshold clears the flag at once.
	s.Destinations[0].UThreshold = 5
	apply(t, dp, s)
	if c := dial(t, v, ""); c.name != "rs1" {
		t.Fatalf("got %s, want rs1 whose threshold was raised", c.name)
	}
}

func TestIdleTimeout(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, s := serve(t, "rr", func(s *lvs.Service) {
		s.Timeouts.TCP = time.Second
	}, rs1)
	c := dial(t, v, "")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.r.ReadByte()
	if !isReset(err) {
		t.Fatalf("idle connection: read gave %v, want a reset", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("expired after %v, before the 1s timeout", el)
	}
	eventually(t, 5*time.Second, func() bool {
		d := destStatus(t, dp, s.Key, rs1.addr)
		return d.ActiveConns == 0 && d.InactiveConns == 0
	}, "expired entry still counted")
}

func TestProxyProtocol(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(string(rune('0'+version)), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan *proxyproto.Header, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				h, err := proxyproto.Read(r)
				if err != nil {
					got <- nil
					return
				}
				got <- h
				io.WriteString(c, "ok\n")
				io.Copy(c, r)
			}()
			dp := newDP(t)
			v := vip(t)
			s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v}, Scheduler: "rr", ProxyProtocol: version,
				Destinations: []lvs.Destination{{Addr: ln.Addr().(*net.TCPAddr).AddrPort(), Weight: 1}}}
			apply(t, dp, s)
			c := dial(t, v, "127.0.0.5")
			c.echo(t, "payload after the header")
			h := <-got
			if h == nil {
				t.Fatal("no PROXY header")
			}
			src, dst, ok := h.TCPAddrs()
			if !ok || int(h.Version) != version || src.AddrPort().String() != c.LocalAddr().String() ||
				dst.AddrPort() != v {
				t.Fatalf("PROXY header v%d %v -> %v, want v%d %v -> %v", h.Version, src, dst, version, c.LocalAddr(), v)
			}
		})
	}
}

func TestFreebind(t *testing.T) {
	// 198.18.0.100 is not an address of this host: the listener binds
	// anyway, as a backup director's must before VRRP gives it the VIP.
	// No traffic is sent to it.
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp := newDP(t)
	v := netip.MustParseAddrPort("198.18.0.100:18080")
	apply(t, dp, tcpService(v, "rr", rs1), lvs.Service{
		Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: v}, Scheduler: "rr",
		Destinations: []lvs.Destination{{Addr: rs1.addr, Weight: 1}}})
	if n := len(dp.Services()); n != 2 {
		t.Fatalf("%d services running", n)
	}
}

func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		lab.Skipf(t, "no IPv6 loopback: %v", err)
	}
	ln.Close()
	rs1 := startServer(t, "rs1", "[::1]:0")
	rs4 := startServer(t, "rs4", "127.0.0.1:0")
	dp := newDP(t)
	v := netip.AddrPortFrom(netip.IPv6Loopback(), freePort(t, "::1"))
	apply(t, dp, tcpService(v, "rr", rs1, rs4))
	names := map[string]bool{}
	for range 2 {
		c := dial(t, v, "")
		c.echo(t, "v6")
		names[c.name] = true
	}
	if !names["rs1"] || !names["rs4"] {
		t.Fatalf("IPv6 VIP to IPv6 and IPv4 destinations: %v", names)
	}
}

func TestApplyIdempotentAndErrors(t *testing.T) {
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp, v, s := serveRR(t, rs1)
	c := dial(t, v, "")
	before := dp.Services()
	apply(t, dp, s)
	apply(t, dp, s)
	after := dp.Services()
	if len(after) != 1 || after[0].Dests[0].Stats.Conns != before[0].Dests[0].Stats.Conns || after[0].Dests[0].ActiveConns != 1 {
		t.Fatalf("re-applying changed the service: %+v -> %+v", before, after)
	}
	c.echo(t, "untouched")

	v2 := vip(t)
	bad := []struct {
		svc  lvs.Service
		want string
	}{
		{lvs.Service{Key: lvs.ServiceKey{FWMark: 1}, Scheduler: "rr"}, "ipvs data plane"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.SCTP, Addr: v2}, Scheduler: "rr"}, "TCP and UDP only"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.AddrPortFrom(v2.Addr(), 0)}, Scheduler: "rr"}, "port 0"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v2}, Scheduler: "nope"}, "lb_algo"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v2}, Scheduler: "rr", ProxyProtocol: 3}, "proxy_protocol 3"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: v2}, Scheduler: "rr", ProxyProtocol: 2}, "TCP services only"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v2}, Scheduler: "rr",
			Destinations: []lvs.Destination{{Addr: rs1.addr, Weight: 1, Forward: lvs.Route}}}, "lb_kind DR needs the ipvs data plane"},
		{lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: v2}, Scheduler: "rr",
			Destinations: []lvs.Destination{{Addr: rs1.addr, Weight: 1}, {Addr: rs1.addr, Weight: 2}}}, "listed twice"},
	}
	for _, b := range bad {
		err := dp.Apply(t.Context(), []lvs.Service{s, b.svc})
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want it to mention %q", b.svc.Key, err, b.want)
		}
	}
	// An invalid version of a running service leaves it running.
	broken := s
	broken.Scheduler = "nope"
	if err := dp.Apply(t.Context(), []lvs.Service{broken}); err == nil {
		t.Fatal("no error")
	}
	if got := dp.Services(); len(got) != 1 || got[0].Scheduler != "rr" {
		t.Fatalf("running service changed by an invalid one: %+v", got)
	}
	c.echo(t, "still untouched")
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", vipAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rs1 := startServer(t, "rs1", "127.0.0.1:0")
	dp := newDP(t)
	err = dp.Apply(t.Context(), []lvs.Service{tcpService(ln.Addr().(*net.TCPAddr).AddrPort(), "rr", rs1)})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("binding a port in use: %v", err)
	}
	if len(dp.Services()) != 0 {
		t.Fatal("failed service listed")
	}
}
