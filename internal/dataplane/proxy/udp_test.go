package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// udpServer answers each datagram with "name:payload".
func udpServer(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func udpSvc(v netip.AddrPort, sched string, dests ...netip.AddrPort) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: v}, Scheduler: sched}
	for _, d := range dests {
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: d, Weight: 1})
	}
	return s
}

// ask sends msg from c to v and returns the answer, checking that it came
// from the VIP.
func ask(t *testing.T, c *net.UDPConn, v netip.AddrPort, msg string) string {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), v); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from != v {
		t.Fatalf("reply from %v, want it from the VIP %v", from, v)
	}
	name, payload, _ := strings.Cut(string(buf[:n]), ":")
	if payload != msg {
		t.Fatalf("reply %q to %q", buf[:n], msg)
	}
	return name
}

func udpClient(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPFlows(t *testing.T) {
	a, b := udpServer(t, "a"), udpServer(t, "b")
	dp, v, _ := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Timeouts.UDP = 2 * time.Second
	}, a, b)
	c1, c2 := udpClient(t), udpClient(t)
	n1 := ask(t, c1, v, "hello")
	n2 := ask(t, c2, v, "hello")
	if n1 == n2 {
		t.Fatalf("rr put both clients on %s", n1)
	}
	// A client's flow sticks to its destination.
	for range 5 {
		if n := ask(t, c1, v, "again"); n != n1 {
			t.Fatalf("client moved from %s to %s", n1, n)
		}
	}
	udp := connsOf(dp, "UDP")
	if len(udp) != 2 {
		t.Fatalf("UDP entries %+v", udp)
	}
	for _, e := range udp {
		if e.Expire <= time.Second || e.Expire > 2*time.Second || e.Virtual != v {
			t.Fatalf("entry %+v", e)
		}
	}
	// The reply counters follow the send, which the client may see first.
	eventually(t, 5*time.Second, func() bool { return dp.Services()[0].Stats.OutPkts >= 7 }, "replies not counted")
	st := dp.Services()[0]
	var conns, inact uint64
	for _, d := range st.Dests {
		conns += d.Stats.Conns
		inact += uint64(d.InactiveConns)
		if d.ActiveConns != 0 {
			t.Fatalf("UDP entries counted active: %+v", d)
		}
	}
	if conns != 2 || inact != 2 || st.Stats.InPkts != 7 || st.Stats.OutPkts != 7 {
		t.Fatalf("conns %d inactive %d stats %+v, want 2 2 and 7 packets each way", conns, inact, st.Stats)
	}
	// 5+5+5*5 payload bytes plus 28 bytes of headers per datagram in;
	// out adds the 2-byte "a:" prefix.
	if want := uint64(5+5+25) + 7*28; st.Stats.InBytes != want {
		t.Fatalf("in bytes %d, want %d", st.Stats.InBytes, want)
	}
	if want := uint64(5+5+25) + 7*2 + 7*28; st.Stats.OutBytes != want {
		t.Fatalf("out bytes %d, want %d", st.Stats.OutBytes, want)
	}
	// Idle flows expire after the udp timeout and stop counting.
	eventually(t, 10*time.Second, func() bool { return len(connsOf(dp, "UDP")) == 0 }, "flows did not expire")
	for _, d := range dp.Services()[0].Dests {
		if d.InactiveConns != 0 {
			t.Fatalf("expired flow still counted: %+v", d)
		}
	}
}

func TestUDPOnePacket(t *testing.T) {
	a, b := udpServer(t, "a"), udpServer(t, "b")
	dp, v, _ := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Flags = lvs.FlagOnePacket
	}, a, b)
	c := udpClient(t)
	var got []string
	for range 6 {
		got = append(got, ask(t, c, v, "q"))
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("ops: datagrams of one client not spread: %v", got)
		}
	}
	if e := connsOf(dp, "UDP"); len(e) != 0 {
		t.Fatalf("ops left entries: %+v", e)
	}
	if st := dp.Services()[0].Stats; st.Conns != 6 {
		t.Fatalf("ops counts one connection per datagram: %+v", st)
	}
}

func TestUDPPersistence(t *testing.T) {
	a, b := udpServer(t, "a"), udpServer(t, "b")
	dp, v, _ := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Flags = lvs.FlagOnePacket
		s.Persistence = time.Minute
	}, a, b)
	c := udpClient(t)
	first := ask(t, c, v, "q")
	for range 4 {
		if n := ask(t, c, v, "q"); n != first {
			t.Fatalf("persistent client moved from %s to %s", first, n)
		}
	}
	if n := len(connsOf(dp, "NONE")); n != 1 {
		t.Fatalf("%d templates", n)
	}
}

func TestUDPRemove(t *testing.T) {
	a := udpServer(t, "a")
	dp, v, _ := serveUDP(t, "rr", nil, a)
	c := udpClient(t)
	ask(t, c, v, "q")
	apply(t, dp)
	if n := len(dp.Conns()); n != 0 {
		t.Fatalf("%d entries after the UDP service was removed", n)
	}
	// The port is free again.
	pc, err := net.ListenPacket("udp", v.String())
	if err != nil {
		t.Fatalf("port still bound: %v", err)
	}
	pc.Close()
}

// workerFlows returns the flows each worker holds, read on the workers.
func workerFlows(dp *Dataplane) [][]*udpFlow {
	out := make([][]*udpFlow, len(dp.workers))
	for i, w := range dp.workers {
		w.call(func() {
			for _, ln := range w.udp {
				for _, f := range ln.flows {
					if f.ep.fd < 0 || w.fds[f.ep.fd] != &f.ep {
						panic("flow socket not in its worker's epoll set")
					}
					out[i] = append(out[i], f)
				}
			}
		})
	}
	return out
}

// TestUDPManyFlows runs hundreds of flows through the event loops: each
// client keeps its destination, the flows spread over both workers (the
// kernel's SO_REUSEPORT hash), each flow's socket is in its worker's
// epoll set, and all of them expire and close after the udp timeout.
func TestUDPManyFlows(t *testing.T) {
	t.Parallel()
	a, b := udpServer(t, "a"), udpServer(t, "b")
	// A long timeout while the flows are set up and counted (on a loaded
	// machine that takes seconds), a short one to watch them expire.
	dp, v, svc := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Timeouts.UDP = time.Minute
	}, a, b)
	const n = 300
	clients := make([]*net.UDPConn, n)
	names := map[string]int{}
	for i := range clients {
		clients[i] = udpClient(t)
		names[ask(t, clients[i], v, "one")]++
	}
	if names["a"] != n/2 || names["b"] != n/2 {
		t.Fatalf("rr over %d clients: %v", n, names)
	}
	per := workerFlows(dp)
	total := 0
	for i, fl := range per {
		if len(fl) == 0 {
			t.Fatalf("worker %d holds no flow of %d: the flows are not spread over the loops", i, n)
		}
		total += len(fl)
	}
	if total != n {
		t.Fatalf("workers hold %d flows, want %d", total, n)
	}
	if e := connsOf(dp, "UDP"); len(e) != n {
		t.Fatalf("%d UDP entries, want %d", len(e), n)
	}
	var inact int
	for _, d := range dp.Services()[0].Dests {
		inact += d.InactiveConns
	}
	if inact != n {
		t.Fatalf("%d inactive entries counted, want %d", inact, n)
	}
	svc.Timeouts.UDP = time.Second
	apply(t, dp, svc)
	eventually(t, 10*time.Second, func() bool { return len(connsOf(dp, "UDP")) == 0 }, "flows did not expire")
	for _, fl := range per {
		for _, f := range fl {
			if f.ep.fd >= 0 {
				t.Fatalf("expired flow of %v kept its socket", f.client)
			}
		}
	}
	for _, d := range dp.Services()[0].Dests {
		if d.InactiveConns != 0 {
			t.Fatalf("expired flows still counted: %+v", d)
		}
	}
}

// TestUDPIdleExpiry: a flow that keeps passing datagrams outlives the udp
// timeout; an idle one beside it expires, and the busy one expires once it
// stops.
func TestUDPIdleExpiry(t *testing.T) {
	t.Parallel()
	a := udpServer(t, "a")
	dp, v, _ := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Timeouts.UDP = 3 * time.Second
	}, a)
	busy, idle := udpClient(t), udpClient(t)
	ask(t, busy, v, "q")
	ask(t, idle, v, "q")
	busyAddr := busy.LocalAddr().(*net.UDPAddr).AddrPort()
	start := time.Now()
	idleGone := false
	for time.Since(start) < 7*time.Second {
		ask(t, busy, v, "q")
		e := connsOf(dp, "UDP")
		if len(e) == 0 || e[0].Client != busyAddr && len(e) == 1 {
			t.Fatalf("after %v the busy flow is gone: %+v", time.Since(start), e)
		}
		if len(e) == 1 {
			idleGone = true
		}
		time.Sleep(100 * time.Millisecond) // the pace of the busy flow
	}
	if !idleGone {
		t.Fatalf("the idle flow outlived twice its 3 s timeout: %+v", connsOf(dp, "UDP"))
	}
	eventually(t, 10*time.Second, func() bool { return len(connsOf(dp, "UDP")) == 0 }, "the busy flow did not expire after it stopped")
	if d := dp.Services()[0].Dests[0]; d.InactiveConns != 0 {
		t.Fatalf("expired flows still counted: %+v", d)
	}
}

// TestUDPRealServerRemoved: a real server removed (as a failed check
// removes it) gets no new flow; its existing flow drains until it idles
// out, as TCP connections drain, and the client's next datagram is then
// scheduled on a remaining server.
func TestUDPRealServerRemoved(t *testing.T) {
	t.Parallel()
	a, b := udpServer(t, "a"), udpServer(t, "b")
	dp, v, svc := serveUDP(t, "rr", func(s *lvs.Service) {
		s.Timeouts.UDP = time.Minute
	}, a, b)
	c1, c2 := udpClient(t), udpClient(t)
	n1, n2 := ask(t, c1, v, "q"), ask(t, c2, v, "q")
	onB := c1
	if n2 == "b" {
		onB = c2
	} else if n1 != "b" {
		t.Fatalf("rr put both clients on %s", n1)
	}
	without := svc
	without.Destinations = slices.DeleteFunc(slices.Clone(svc.Destinations), func(d lvs.Destination) bool { return d.Addr == b })
	apply(t, dp, without)
	for range 5 {
		if n := ask(t, udpClient(t), v, "new"); n != "a" {
			t.Fatalf("new flow went to %s, the removed server", n)
		}
	}
	if n := ask(t, onB, v, "q"); n != "b" {
		t.Fatalf("the removed server's flow moved to %s before idling out", n)
	}
	without.Timeouts.UDP = time.Second
	apply(t, dp, without)
	eventually(t, 10*time.Second, func() bool {
		for _, e := range connsOf(dp, "UDP") {
			if e.Dest == b {
				return false
			}
		}
		return true
	}, "the removed server's flow did not expire")
	if n := ask(t, onB, v, "q"); n != "a" {
		t.Fatalf("after its flow expired the client went to %s", n)
	}
	if ds := dp.Services()[0].Dests; len(ds) != 1 || ds[0].Addr != a {
		t.Fatalf("destinations %+v", ds)
	}
}

// TestUDPBurstAndLarge: a burst of datagrams from one client (more than
// one recvmmsg and one sendmmsg batch) all come back, and a datagram near
// the largest size passes whole.
func TestUDPBurstAndLarge(t *testing.T) {
	t.Parallel()
	a := udpServer(t, "a")
	dp, v, _ := serveUDP(t, "rr", nil, a)
	c := udpClient(t)
	const n = 3 * udpBatch
	for i := range n {
		if _, err := c.WriteToUDPAddrPort(fmt.Appendf(nil, "m%d", i), v); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	buf := make([]byte, 64<<10)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < n {
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%d of %d replies: %v", len(got), n, err)
		}
		if from != v {
			t.Fatalf("reply from %v, want the VIP %v", from, v)
		}
		got[string(buf[:k])] = true
	}
	for i := range n {
		if !got[fmt.Sprintf("a:m%d", i)] {
			t.Fatalf("reply to m%d missing", i)
		}
	}
	big := strings.Repeat("x", 60000)
	ask(t, c, v, big)
	// The counters follow the send, which the client may see first.
	eventually(t, 5*time.Second, func() bool {
		st := dp.Services()[0].Stats
		return st.InPkts == n+1 && st.OutPkts == n+1
	}, "stats %+v, want %d datagrams each way", dp.Services()[0].Stats, n+1)
}

// TestUDPManyClientsAtOnce: replies of many flows waiting at once leave
// in shared sendmmsg batches, each to its own client.
func TestUDPManyClientsAtOnce(t *testing.T) {
	t.Parallel()
	a, b := udpServer(t, "a"), udpServer(t, "b")
	_, v, _ := serveUDP(t, "rr", nil, a, b)
	clients := make([]*net.UDPConn, 2*udpBatch)
	for i := range clients {
		clients[i] = udpClient(t)
	}
	for round := range 3 {
		for i, c := range clients {
			if _, err := c.WriteToUDPAddrPort(fmt.Appendf(nil, "r%dc%d", round, i), v); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 1024)
		for i, c := range clients {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("round %d client %d: %v", round, i, err)
			}
			_, payload, _ := strings.Cut(string(buf[:k]), ":")
			if from != v || payload != fmt.Sprintf("r%dc%d", round, i) {
				t.Fatalf("round %d client %d: %q from %v", round, i, buf[:k], from)
			}
		}
	}
}
