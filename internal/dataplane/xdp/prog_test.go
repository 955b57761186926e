package xdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
	"golang.org/x/sys/unix"
)

// These tests run the BPF program on crafted frames with
// BPF_PROG_TEST_RUN (root, no network): the verdict and the rewritten
// MACs show which real server a frame went to.

const (
	xdpPass = 2
	xdpTX   = 3
)

var (
	directorMAC = net.HardwareAddr{0x02, 0xd0, 0, 0, 0, 1}
	vip4        = netip.MustParseAddrPort("198.18.0.100:80")
	vip6        = netip.MustParseAddrPort("[2001:db8::100]:80")
)

// rsMAC is the fake MAC of real server i: 02:55:00:00:00:i.
func rsMAC(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x02, 0x55, 0, 0, b[14], b[15]}
}

// fakeResolve puts every real server on lo (ifindex 1), where the test
// runs the program, so a forwarded frame is XDP_TX.
func fakeResolve(a netip.Addr) (hop, error) {
	return hop{ifindex: 1, smac: directorMAC, dmac: rsMAC(a), src: directorAddr, mtu: fakeMTU}, nil
}

var (
	directorAddr = netip.MustParseAddr("198.18.0.1")
	fakeMTU      = 1500
)

// newTestDP loads the data plane with its pins on a bpffs of its own.
func newTestDP(t testing.TB, dir string) *Dataplane {
	t.Helper()
	d, err := New(Options{PinPath: filepath.Join(dir, "vipd"), resolve: fakeResolve, noAttach: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func bpffsDir(t testing.TB) string {
	t.Helper()
	lab.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "bpffs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mounting bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

type pkt struct {
	src, dst netip.AddrPort
	proto    uint8
	ihl      int  // IPv4 header words; 0 = 5
	frag     bool // set MF
	df       bool // set DF
	cut      int  // bytes to drop from the end
	ethType  uint16
	ack      bool // TCP: a packet of an open connection (ACK), not its SYN
}

func (p pkt) bytes() []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], p.src.Port())
	binary.BigEndian.PutUint16(l4[2:], p.dst.Port())
	if p.proto == unix.IPPROTO_TCP {
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		if p.ack {
			l4[13] = 0x10
		}
	} else if p.proto == unix.IPPROTO_UDP {
		l4 = l4[:8]
		binary.BigEndian.PutUint16(l4[4:], 8)
	}
	var ip []byte
	et := uint16(unix.ETH_P_IP)
	if p.src.Addr().Is4() {
		ihl := p.ihl
		if ihl == 0 {
			ihl = 5
		}
		ip = make([]byte, ihl*4)
		ip[0] = 0x40 | byte(ihl)
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(l4)))
		if p.frag {
			ip[6] = 0x20
		}
		if p.df {
			ip[6] |= 0x40
		}
		ip[8], ip[9] = 64, p.proto
		s, d := p.src.Addr().As4(), p.dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		for i := 20; i < len(ip); i++ {
			ip[i] = 1 // NOP options
		}
	} else {
		et = unix.ETH_P_IPV6
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = p.proto, 64
		s, d := p.src.Addr().As16(), p.dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	if p.ethType != 0 {
		et = p.ethType
	}
	frame := make([]byte, 14, 14+len(ip)+len(l4))
	copy(frame[0:], directorMAC)
	copy(frame[6:], []byte{0x02, 0xc1, 0, 0, 0, 9})
	binary.BigEndian.PutUint16(frame[12:], et)
	frame = append(append(frame, ip...), l4...)
	return frame[:len(frame)-p.cut]
}

// run returns the verdict and, for XDP_TX, the MAC the frame was sent to.
func run(t testing.TB, d *Dataplane, p pkt) (uint32, net.HardwareAddr) {
	t.Helper()
	in := p.bytes()
	ret, mac, _ := runOut(t, d, in)
	return ret, mac
}

// runOut runs the program on frame in and returns the verdict, the
// destination MAC and the frame it left with.
func runOut(t testing.TB, d *Dataplane, in []byte) (uint32, net.HardwareAddr, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := &ebpf.RunOptions{Data: in, DataOut: out} // ingress: lo
	ret, err := d.objs.XdpLb.Run(opts)
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	out = opts.DataOut
	return ret, net.HardwareAddr(out[:6]), out
}

func tcp4(client string) pkt {
	return pkt{src: netip.MustParseAddrPort(client), dst: vip4, proto: unix.IPPROTO_TCP}
}

func drService(key netip.AddrPort, weights ...int) lvsService {
	return newService(key, weights...)
}

func TestProgForwardsAsMaglevPredicts(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	s := drService(vip4, 1, 1, 1)
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	bs := backendsOf(s)
	tab, _ := Maglev(bs)
	hits := map[string]int{}
	for i := range 300 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)}), uint16(40000+i))
		ret, mac := run(t, d, pkt{src: c, dst: vip4, proto: unix.IPPROTO_TCP})
		want := rsMAC(bs[tab[ClientHash(c.Addr(), 0)%MaglevSize]].Addr.Addr())
		if ret != xdpTX || mac.String() != want.String() {
			t.Fatalf("client %s: verdict %d to %s, want XDP_TX to %s", c, ret, mac, want)
		}
		hits[mac.String()]++
	}
	if len(hits) != 3 {
		t.Fatalf("300 clients reached %d servers: %v", len(hits), hits)
	}
	r := d.Reasons()
	if r["tx"] != 300 || r["flow_new"] != 300 {
		t.Errorf("reasons %v, want 300 tx and 300 new flows", r)
	}
	st := d.Services()
	if len(st) != 1 || st[0].Stats.Conns != 300 || st[0].Stats.InPkts != 300 {
		t.Errorf("service counters %+v, want 300 conns and packets", st)
	}
	if n := len(d.Conns()); n != 300 {
		t.Errorf("%d flow entries, want 300", n)
	}
}

func TestProgIPv6(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	if err := d.Apply(context.Background(), []lvsService{drService(vip6, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	ret, mac := run(t, d, pkt{src: netip.MustParseAddrPort("[2001:db8:1::7]:1234"), dst: vip6, proto: unix.IPPROTO_UDP})
	if ret != xdpTX || mac[0] != 0x02 || mac[1] != 0x55 {
		t.Fatalf("IPv6 UDP: verdict %d to %s, want XDP_TX to a real server", ret, mac)
	}
}

// TestProgPassesWhatItMust: what is not a well-formed TCP/UDP packet to a
// service goes to the kernel untouched, counted by reason.
func TestProgPassesWhatItMust(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	if err := d.Apply(context.Background(), []lvsService{drService(vip4, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	c := "198.19.0.1:5555"
	for _, tc := range []struct {
		name    string
		p       pkt
		verdict uint32
		reason  string
	}{
		{"ARP", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, ethType: unix.ETH_P_ARP}, xdpPass, "not_ip"},
		{"VRRP", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 112}, xdpPass, "not_l4"},
		{"ICMP", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 1}, xdpPass, "not_l4"},
		{"other port", pkt{src: netip.MustParseAddrPort(c), dst: netip.MustParseAddrPort("198.18.0.100:81"), proto: 6}, xdpPass, "no_service"},
		{"UDP to a TCP service", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 17}, xdpPass, "no_service"},
		{"fragment", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, frag: true}, xdpPass, "fragment"},
		{"truncated TCP header", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, cut: 1}, xdpPass, "malformed"},
		{"truncated IP header", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, cut: 21}, xdpPass, "malformed"},
		{"IHL below 5", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, ihl: 4}, xdpPass, "malformed"},
		{"IP options", pkt{src: netip.MustParseAddrPort(c), dst: vip4, proto: 6, ihl: 15}, xdpTX, "tx"},
	} {
		before := d.Reasons()[tc.reason]
		in := tc.p.bytes()
		ret, mac := run(t, d, tc.p)
		if ret != tc.verdict {
			t.Errorf("%s: verdict %d, want %d", tc.name, ret, tc.verdict)
		}
		if ret == xdpPass && mac.String() != directorMAC.String() {
			t.Errorf("%s: passed frame was rewritten (to %s)", tc.name, mac)
		}
		if got := d.Reasons()[tc.reason]; got != before+1 {
			t.Errorf("%s: reason %s counted %d times, want 1", tc.name, tc.reason, got-before)
		}
		_ = in
	}
}

func TestProgDrainAndRemove(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	s := drService(vip4, 1, 1, 1)
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	clients := make([]pkt, 300)
	before := make([]string, len(clients))
	for i := range clients {
		clients[i] = tcp4(fmt.Sprintf("198.19.1.%d:%d", 1+i%250, 30000+i))
		clients[i].src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(1 + i/250), byte(1 + i%250)}), uint16(30000+i))
		_, mac := run(t, d, clients[i])
		before[i] = mac.String()
	}
	drained := rsMAC(s.Destinations[1].Addr.Addr()).String()

	// Weight 0: open flows stay, new ones go elsewhere.
	s.Destinations[1].Weight = 0
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	reused := 0
	for i, c := range clients {
		c.ack = true
		if _, mac := run(t, d, c); mac.String() != before[i] {
			t.Fatalf("draining moved open flow %s from %s to %s", c.src, before[i], mac)
		}
		// The client reuses the port of a flow to the drained server for
		// a new connection: its SYN is scheduled afresh, not sent after
		// the old entry (IPVS's conn_reuse_mode does the same).
		// (One such flow is enough; the others stay for the removal below.)
		if before[i] == drained && reused == 0 {
			reused++
			syn := c
			syn.ack = false
			if _, mac := run(t, d, syn); mac.String() == drained {
				t.Fatalf("a new connection (SYN) reusing %s followed the old flow to the drained server", c.src)
			}
			if _, mac := run(t, d, c); mac.String() == drained {
				t.Fatalf("the connection %s opened after the drain went back to the drained server", c.src)
			}
			clients[i].ack = true
			_, mac := run(t, d, clients[i])
			before[i] = mac.String() // the new connection's server
		}
		n := c
		n.ack = false
		n.src = netip.AddrPortFrom(c.src.Addr(), c.src.Port()+1000) // a new flow of the same client
		if _, mac := run(t, d, n); mac.String() == drained {
			t.Fatalf("new flow %s went to the drained server", n.src)
		}
	}

	if reused == 0 {
		t.Fatal("no flow went to the drained server: the port-reuse case was not tried")
	}

	// Removed (a failed check): only its flows move.
	s.Destinations = append(s.Destinations[:1], s.Destinations[2:]...)
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	moved, own := 0, 0
	for i, c := range clients {
		c.ack = true
		_, mac := run(t, d, c)
		if before[i] == drained {
			own++
			if mac.String() == drained {
				t.Fatalf("flow %s still goes to the removed server", c.src)
			}
		} else if mac.String() != before[i] {
			moved++
		}
	}
	t.Logf("removed server had %d of %d flows; other flows moved: %d", own, len(clients), moved)
	if moved != 0 || own == 0 {
		t.Fatalf("%d flows of other servers moved (want 0); removed server had %d", moved, own)
	}
}

// TestAdoptPinnedMaps: a new process adopts the pinned flow table, so a
// restart keeps open flows on their servers even when the Maglev table
// would now send them elsewhere.
func TestAdoptPinnedMaps(t *testing.T) {
	dir := bpffsDir(t)
	d := newTestDP(t, dir)
	s := drService(vip4, 1, 1, 1)
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	var clients []pkt
	var before []string
	for i := range 100 {
		c := tcp4(fmt.Sprintf("198.19.2.%d:4000", i+1))
		clients = append(clients, c)
		_, mac := run(t, d, c)
		before = append(before, mac.String())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d2 := newTestDP(t, dir)
	defer func() { d2.opts.Unpin = true; d2.Close() }()
	// Restart with one server drained: without the adopted flow table its
	// flows would move.
	s.Destinations[0].Weight = 0
	if err := d2.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		c.ack = true
		if _, mac := run(t, d2, c); mac.String() != before[i] {
			t.Fatalf("after restart flow %s went to %s, was %s", c.src, mac, before[i])
		}
	}
	if st := d2.Services(); len(st) != 1 || st[0].Stats.Conns != 100 {
		t.Fatalf("counters not adopted: %+v", st)
	}
}

// TestProgTunnelIPIP: a TUN destination gets the packet inside an outer
// IPv4 header from the director to the real server, with a valid
// checksum; a packet too big for the MTU once encapsulated is dropped and
// counted.
func TestProgTunnelIPIP(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	s := drService(vip4, 1)
	s.Destinations[0].Forward = lvs.Tunnel
	s.Destinations[0].Tunnel = lvs.TunnelIPIP
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	in := tcp4("198.19.3.3:3333").bytes()
	ret, mac, out := runOut(t, d, in)
	if ret != xdpTX || mac.String() != rsMAC(s.Destinations[0].Addr.Addr()).String() {
		t.Fatalf("verdict %d to %s, want XDP_TX to the real server", ret, mac)
	}
	if len(out) != len(in)+20 || binary.BigEndian.Uint16(out[12:]) != unix.ETH_P_IP {
		t.Fatalf("frame of %d bytes (in %d), ethertype %#x", len(out), len(in), binary.BigEndian.Uint16(out[12:]))
	}
	outer := out[14:34]
	src, dst := netip.AddrFrom4([4]byte(outer[12:16])), netip.AddrFrom4([4]byte(outer[16:20]))
	if outer[0] != 0x45 || outer[9] != unix.IPPROTO_IPIP || src != directorAddr || dst != s.Destinations[0].Addr.Addr() ||
		int(binary.BigEndian.Uint16(outer[2:])) != len(in)-14+20 {
		t.Fatalf("outer header % x: want IPIP %s -> %s, length %d", outer, directorAddr, dst, len(in)-14+20)
	}
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(outer[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("outer header checksum does not verify (sum %#x)", sum)
	}
	if string(out[34:]) != string(in[14:]) {
		t.Errorf("inner packet changed")
	}

	fakeMTU = 40 + 20 // the inner SYN is 40 bytes: 60 fits exactly, 59 not
	defer func() { fakeMTU = 1500 }()
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	if ret, _, _ := runOut(t, d, tcp4("198.19.3.4:3333").bytes()); ret != xdpTX {
		t.Errorf("a packet that fits the MTU exactly: verdict %d", ret)
	}
	fakeMTU = 59
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	before := d.Reasons()["too_big"]
	if ret, _, _ := runOut(t, d, tcp4("198.19.3.5:3333").bytes()); ret != 1 /* XDP_DROP */ || d.Reasons()["too_big"] != before+1 {
		t.Errorf("too big once encapsulated, DF clear: verdict %d, too_big %d→%d; want XDP_DROP counted", ret, before, d.Reasons()["too_big"])
	}

	// DF set: an ICMP "fragmentation needed" goes back to the client, from
	// the VIP, with the size that fits (MTU - 20) and the original header.
	p := tcp4("198.19.3.6:3333")
	p.df = true
	in = p.bytes()
	ret, mac, out = runOut(t, d, in)
	if ret != xdpTX || mac.String() != "02:c1:00:00:00:09" || len(out) != 14+20+8+28 {
		t.Fatalf("too big with DF: verdict %d to %s, %d bytes; want XDP_TX of a 70-byte ICMP error to the sender", ret, mac, len(out))
	}
	ip, icmp := out[14:34], out[34:]
	if ip[9] != unix.IPPROTO_ICMP || netip.AddrFrom4([4]byte(ip[12:16])) != vip4.Addr() || netip.AddrFrom4([4]byte(ip[16:20])) != netip.MustParseAddr("198.19.3.6") {
		t.Fatalf("ICMP error's IP header % x: want ICMP from the VIP to the client", ip)
	}
	if icmp[0] != 3 || icmp[1] != 4 || binary.BigEndian.Uint16(icmp[6:]) != 59-20 || string(icmp[8:]) != string(in[14:14+28]) {
		t.Fatalf("ICMP % x: want type 3 code 4, MTU %d, the original header and 8 bytes", icmp, 59-20)
	}
	for _, h := range [][]byte{ip, icmp} {
		var sum uint32
		for i := 0; i < len(h); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(h[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		if sum != 0xffff {
			t.Errorf("checksum of % x does not verify", h)
		}
	}
}

// TestProgPersistence: with persistence_timeout a client's new flows
// follow its first one, even under mh-port (which would spread them); a
// granularity mask groups a network; a removed server releases its
// clients.
func TestProgPersistence(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	s := drService(vip4, 1, 1, 1)
	s.Flags = lvs.FlagMHPort
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	spread := map[string]bool{}
	for p := range 30 {
		_, mac := run(t, d, tcp4(fmt.Sprintf("198.19.5.1:%d", 1000+p)))
		spread[mac.String()] = true
	}
	if len(spread) < 2 {
		t.Fatalf("mh-port without persistence: 30 flows of one client reached %d servers, want several", len(spread))
	}

	s.Persistence, s.PersistMask = 300*time.Second, 24
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	_, first := run(t, d, tcp4("198.19.6.1:2000"))
	for p := range 30 {
		for _, c := range []string{"198.19.6.1", "198.19.6.77"} { // same /24
			if _, mac := run(t, d, tcp4(fmt.Sprintf("%s:%d", c, 2001+p))); mac.String() != first.String() {
				t.Fatalf("persistent flow %s:%d went to %s, the client's network is on %s", c, 2001+p, mac, first)
			}
		}
	}
	var tmpl int
	for _, e := range d.Conns() {
		if e.State == "NONE" && e.Client.Addr() == netip.MustParseAddr("198.19.6.0") {
			tmpl++
		}
	}
	if tmpl != 1 {
		t.Errorf("%d templates for 198.19.6.0/24, want 1: %v", tmpl, d.Conns())
	}

	// The template's server leaves: the network's next flows go elsewhere.
	var keep []lvs.Destination
	for _, dst := range s.Destinations {
		if rsMAC(dst.Addr.Addr()).String() != first.String() {
			keep = append(keep, dst)
		}
	}
	s.Destinations = keep
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	if ret, mac := run(t, d, tcp4("198.19.6.1:3000")); ret != xdpTX || mac.String() == first.String() {
		t.Fatalf("after its server left, the client went to %s (verdict %d)", mac, ret)
	}
}

// TestProgTunnelGUE: GUE puts UDP to the tunnel port and a 4-byte GUE
// header (IPIP inside) between the outer header and the packet; the UDP
// source port follows the flow, so the real server's RSS spreads flows.
func TestProgTunnelGUE(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	s := drService(vip4, 1)
	s.Destinations[0].Forward, s.Destinations[0].Tunnel, s.Destinations[0].TunnelPort = lvs.Tunnel, lvs.TunnelGUE, 6080
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	sports := map[uint16]bool{}
	for i := range 50 {
		in := tcp4(fmt.Sprintf("198.19.7.%d:%d", 1+i%5, 5000+i)).bytes()
		ret, _, out := runOut(t, d, in)
		if ret != xdpTX || len(out) != len(in)+32 {
			t.Fatalf("verdict %d, %d bytes (in %d); want XDP_TX with 32 more bytes", ret, len(out), len(in))
		}
		outer, udp, gue := out[14:34], out[34:42], out[42:46]
		if outer[9] != unix.IPPROTO_UDP || int(binary.BigEndian.Uint16(outer[2:])) != len(in)-14+32 ||
			binary.BigEndian.Uint16(udp[2:]) != 6080 || int(binary.BigEndian.Uint16(udp[4:])) != len(in)-14+12 {
			t.Fatalf("outer % x udp % x: want UDP to port 6080 with the right lengths", outer, udp)
		}
		if string(gue) != "\x00\x04\x00\x00" || string(out[46:]) != string(in[14:]) {
			t.Fatalf("GUE header % x (want 00 04 00 00) or inner packet changed", gue)
		}
		sp := binary.BigEndian.Uint16(udp[0:])
		if sp < 32768 || sp >= 61000 {
			t.Fatalf("UDP source port %d outside 32768-60999", sp)
		}
		sports[sp] = true
	}
	if len(sports) < 40 {
		t.Errorf("50 flows used %d UDP source ports: RSS on the real server would not spread them", len(sports))
	}
}

// TestProgRedirect: a real server behind another interface than the one
// the packet came in on is reached with bpf_redirect (XDP_REDIRECT).
func TestProgRedirect(t *testing.T) {
	dir := bpffsDir(t)
	d, err := New(Options{PinPath: filepath.Join(dir, "vipd"), noAttach: true, resolve: func(a netip.Addr) (hop, error) {
		h, err := fakeResolve(a)
		h.ifindex = 2 // not lo, where the test run's packets come in
		return h, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Apply(context.Background(), []lvsService{drService(vip4, 1)}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d, tcp4("198.19.8.1:1000")); ret != 4 /* XDP_REDIRECT */ || d.Reasons()["redirect"] != 1 {
		t.Fatalf("verdict %d, reasons %v; want XDP_REDIRECT counted", ret, d.Reasons())
	}
}

// TestRefreshFollowsNeighbours: a real server unresolved at Apply gets
// traffic once its neighbour entry appears, and a changed MAC is followed,
// both without another Apply.
func TestRefreshFollowsNeighbours(t *testing.T) {
	recheckTicks = 1
	defer func() { recheckTicks = 5 }()
	var mu sync.Mutex
	macs := map[netip.Addr]net.HardwareAddr{}
	dir := bpffsDir(t)
	d, err := New(Options{PinPath: filepath.Join(dir, "vipd"), noAttach: true, resolve: func(a netip.Addr) (hop, error) {
		mu.Lock()
		defer mu.Unlock()
		h, _ := fakeResolve(a)
		if macs[a] == nil {
			return hop{}, fmt.Errorf("no neighbour entry for %s", a)
		}
		h.dmac = macs[a]
		return h, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := drService(vip4, 1)
	rs := s.Destinations[0].Addr.Addr()
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d, tcp4("198.19.10.1:1")); ret != xdpPass {
		t.Fatalf("unresolved real server: verdict %d, want XDP_PASS", ret)
	}
	mu.Lock()
	macs[rs] = net.HardwareAddr{0x02, 0x55, 0, 0, 0, 0x77}
	mu.Unlock()
	port := uint16(2)
	lab.Eventually(t, 6*time.Second, func() bool {
		port++
		_, mac := run(t, d, tcp4(fmt.Sprintf("198.19.10.1:%d", port)))
		return mac.String() == "02:55:00:00:00:77"
	}, "the real server resolved later never got traffic")
	mu.Lock()
	macs[rs] = net.HardwareAddr{0x02, 0x55, 0, 0, 0, 0x78}
	mu.Unlock()
	lab.Eventually(t, 6*time.Second, func() bool {
		_, mac := run(t, d, tcp4("198.19.10.1:3")) // an open flow follows too
		return mac.String() == "02:55:00:00:00:78"
	}, "the real server's new MAC was not followed")
}

// TestProgOnlyOwnFrames: with the interface's MAC recorded (attach does
// it), a frame for another MAC (a bridge flooding, another director's
// traffic) or a group address is passed, not forwarded.
func TestProgOnlyOwnFrames(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	if err := d.Apply(context.Background(), []lvsService{drService(vip4, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.Ifmacs.Put(uint32(1), [6]byte(directorMAC)); err != nil { // lo: where test runs come in
		t.Fatal(err)
	}
	in := tcp4("198.19.11.1:1").bytes()
	if ret, _, _ := runOut(t, d, in); ret != xdpTX {
		t.Fatalf("frame for the director's MAC: verdict %d, want XDP_TX", ret)
	}
	for _, dst := range []net.HardwareAddr{{0x02, 0xd0, 0, 0, 0, 2}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0, 0x5e, 0, 0, 0x12}} {
		f := slices.Clone(in)
		copy(f, dst)
		before := d.Reasons()["not_ours"]
		if ret, _, out := runOut(t, d, f); ret != xdpPass || !bytes.Equal(out, f) || d.Reasons()["not_ours"] != before+1 {
			t.Errorf("frame for %s: verdict %d; want XDP_PASS untouched, counted not_ours", dst, ret)
		}
	}
}

// TestProgCountsIPBytes: byte counters count IP packets, as IPVS's do
// (ipvsadm --stats), not Ethernet frames.
func TestProgCountsIPBytes(t *testing.T) {
	d := newTestDP(t, bpffsDir(t))
	defer d.Close()
	if err := d.Apply(context.Background(), []lvsService{drService(vip4, 1)}); err != nil {
		t.Fatal(err)
	}
	in := tcp4("198.19.12.1:1").bytes()
	run(t, d, tcp4("198.19.12.1:1"))
	st := d.Services()
	if len(st) != 1 || st[0].Stats.InBytes != uint64(len(in)-14) || st[0].Dests[0].Stats.InBytes != uint64(len(in)-14) {
		t.Fatalf("InBytes %+v, want %d (the IP packet)", st, len(in)-14)
	}
}
