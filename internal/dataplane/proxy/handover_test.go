package proxy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// dupSockets copies dp's listening sockets, as an upgrade passes them.
func dupSockets(t *testing.T, dp *Dataplane) map[lvs.Protocol]map[netip.AddrPort][]int {
	t.Helper()
	out := map[lvs.Protocol]map[netip.AddrPort][]int{}
	for proto, m := range dp.Sockets() {
		out[proto] = map[netip.AddrPort][]int{}
		for ap, fds := range m {
			for _, fd := range fds {
				nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				out[proto][ap] = append(out[proto][ap], nfd)
			}
		}
	}
	return out
}

// TestHandoverSockets: a second data plane adopts the first one's
// listening sockets; the first stops accepting while its open
// connection carries on and Active counts it; new connections go to
// the second; ResumeAccepting takes the sockets back.
func TestHandoverSockets(t *testing.T) {
	rs := startServer(t, "rs1", "127.0.0.1:0")
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1"))
	svc := tcpService(vip, "rr", rs)
	old := newDP(t)
	apply(t, old, svc)
	held := dial(t, vip, "")
	held.echo(t, "before")

	socks := dupSockets(t, old)
	if n := len(socks[lvs.TCP][vip]); n != 2 {
		t.Fatalf("%d sockets for %s, want one per event loop (2)", n, vip)
	}
	next := newDP(t)
	if err := next.Inherit(lvs.TCP, vip, socks[lvs.TCP][vip]); err != nil {
		t.Fatal(err)
	}
	if err := next.Inherit(lvs.TCP, netip.MustParseAddrPort("127.0.0.1:1"), []int{socks[lvs.TCP][vip][0]}); err == nil {
		t.Fatal("Inherit took a socket bound elsewhere")
	}
	apply(t, next, svc)
	if n := next.ReleaseInherited(); n != 0 {
		t.Fatalf("%d inherited sockets left over", n)
	}
	old.StopAccepting()
	if err := old.Apply(t.Context(), []lvs.Service{svc}); err == nil {
		t.Fatal("Apply ran after StopAccepting")
	}
	for range 20 {
		c := dial(t, vip, "")
		c.echo(t, "new")
		c.Close()
	}
	held.echo(t, "after")
	if n := old.Active(); n != 1 {
		t.Fatalf("old data plane: %d active connections, want the held one", n)
	}
	conns := func(dp *Dataplane) uint64 { return dp.Services()[0].Stats.Conns }
	if o, n := conns(old), conns(next); o != 1 || n != 20 {
		t.Fatalf("connections: old %d (want 1), next %d (want 20)", o, n)
	}
	held.Close()
	eventually(t, 5*time.Second, func() bool { return old.Active() == 0 }, "the closed connection is still active")

	// The other way: the old one takes copies back.
	back := dupSockets(t, next)
	next.StopAccepting()
	if err := old.Inherit(lvs.TCP, vip, back[lvs.TCP][vip]); err != nil {
		t.Fatal(err)
	}
	if err := old.ResumeAccepting(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, vip, "")
	c.echo(t, "back")
	if o := conns(old); o != 2 {
		t.Fatalf("after ResumeAccepting the old data plane took %d connections in all, want 2", o)
	}
}

// TestHandoverUDPSockets: a UDP service's sockets (one per loop) move
// to the next data plane, which answers from the VIP; the old one no
// longer reads them.
func TestHandoverUDPSockets(t *testing.T) {
	rs := udpServer(t, "rs1")
	old, v, svc := serveUDP(t, "rr", nil, rs)
	c := udpClient(t)
	if got := ask(t, c, v, "before"); got != "rs1" {
		t.Fatalf("answer from %q", got)
	}
	socks := dupSockets(t, old)
	if n := len(socks[lvs.UDP][v]); n != 2 {
		t.Fatalf("%d UDP sockets for %s, want one per event loop (2)", n, v)
	}
	next := newDP(t)
	if err := next.Inherit(lvs.UDP, v, socks[lvs.UDP][v]); err != nil {
		t.Fatal(err)
	}
	if err := next.Inherit(lvs.TCP, v, socks[lvs.UDP][v][:1]); err == nil {
		t.Fatal("a UDP socket passed for TCP")
	}
	apply(t, next, svc)
	old.StopAccepting()
	for i := range 10 {
		if got := ask(t, udpClient(t), v, fmt.Sprint("after ", i)); got != "rs1" {
			t.Fatalf("answer from %q", got)
		}
	}
	if n := next.Services()[0].Stats.InPkts; n < 10 {
		t.Fatalf("the next data plane forwarded %d datagrams, want the 10 sent after the handover", n)
	}
}
