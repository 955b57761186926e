package xdp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"os/exec"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// drLab is a client, a director and DR real servers on the lab bridge,
// set up with the lab facts of docs/dataplanes.md:
//   - the director's peer veth (its bridge port) runs an XDP program, or
//     the frames the director sends with XDP_TX never leave its veth;
//   - the client's veth has tx checksum offload off: a client on the same
//     kernel sends segments with partial checksums, which the real servers
//     would drop once XDP forwarded them as they are.
type drLab struct {
	l        *lab.Lab
	client   *lab.Host
	director *lab.Host
	rs       []*lab.Host
	dp       *Dataplane
	vip      netip.AddrPort
}

func newDRLab(t *testing.T, servers int) *drLab {
	t.Helper()
	lab.RequireCommand(t, "nginx", "ethtool")
	bpffs := bpffsDir(t)
	l := lab.New(t)
	x := &drLab{l: l, vip: netip.MustParseAddrPort("198.18.0.100:80")}
	x.client = l.Host("client")
	x.director = l.Host("dir")
	x.director.MustRun("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0")
	vipctl := lab.Binary(t, "./cmd/vipctl")
	for i := range servers {
		h := l.Host(fmt.Sprintf("rs%d", i+1))
		out := h.MustRun(vipctl, "realserver", "up", "--vip", x.vip.Addr().String(), "--state", filepath.Join(t.TempDir(), "rs.json"))
		if !strings.Contains(out, x.vip.Addr().String()) {
			t.Fatalf("vipctl realserver up on %s:\n%s", h.Name, out)
		}
		startNginx(t, h)
		x.rs = append(x.rs, h)
	}
	x.client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	pass, err := AttachPass(l.Bridge, x.director.Port)
	if err != nil {
		t.Fatalf("XDP on the director's peer veth: %v", err)
	}
	t.Cleanup(func() { pass.Close() })
	x.dp, err = New(Options{NetNS: x.director.NS, PinPath: filepath.Join(bpffs, "vipd"), Unpin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.dp.Close() })
	return x
}

func (x *drLab) service(hosts ...*lab.Host) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: x.vip}, Scheduler: "mh", Flags: lvs.FlagMHPort}
	for _, h := range hosts {
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: netip.AddrPortFrom(h.Addr, 80), Weight: 1, Forward: lvs.Route})
	}
	return s
}

// get fetches path from the VIP from the client, from source port sport
// (0: any), and returns the body. The request is written by hand on a
// connection dialled in this goroutine: http.Transport dials on goroutines
// of its own, which would leave the client's namespace.
func (x *drLab) get(sport int, path string) (string, error) {
	var body []byte
	err := x.client.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: x.client.Addr.AsSlice(), Port: sport}}
		c, err := d.Dial("tcp4", x.vip.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: vip\r\n\r\n", path); err != nil {
			return err
		}
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		body, err = io.ReadAll(r.Body)
		if err == nil && r.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %s: %s", r.Status, body)
		}
		return err
	})
	return strings.TrimSpace(string(body)), err
}

// portBytes returns the bytes the bridge received from (rx) and sent to
// (tx) h's port: what h sent and what it was sent.
func (x *drLab) portBytes(t *testing.T, h *lab.Host) (rx, tx uint64) {
	t.Helper()
	out, err := runCmd("ip", "-n", x.l.Bridge, "-s", "-j", "link", "show", h.Port)
	if err != nil {
		t.Fatal(err)
	}
	var ls []struct {
		Stats64 struct {
			Rx struct{ Bytes uint64 } `json:"rx"`
			Tx struct{ Bytes uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip -s -j link: %v: %s", err, out)
	}
	return ls[0].Stats64.Rx.Bytes, ls[0].Stats64.Tx.Bytes
}

// TestDRThroughXDP: curl through the VIP reaches every real server as the
// Maglev table predicts, the replies bypass the director, and a server
// taken out moves only its own flows.
func TestDRThroughXDP(t *testing.T) {
	x := newDRLab(t, 3)
	ctx := context.Background()
	s := x.service(x.rs...)
	if err := x.dp.Apply(ctx, []lvs.Service{s}); err != nil {
		t.Fatal(err)
	}
	tab, _ := Maglev(backendsOf(s))
	owner := func(tab []int, bs []Backend, port int) string {
		a := bs[tab[ClientHash(x.client.Addr, uint16(port))%MaglevSize]].Addr.Addr()
		for _, h := range x.rs {
			if h.Addr == a {
				return h.Name
			}
		}
		return ""
	}

	// Every flow lands where the Go table says (mh-port: the client's
	// port is hashed, so one client reaches all servers).
	seen := map[string]int{}
	for i := range 30 {
		port := 20000 + i
		var body string
		var err error
		body, err = x.get(port, "/")
		if err != nil {
			t.Fatalf("GET from port %d: %v (reasons %v)", port, err, x.dp.Reasons())
		}
		if want := owner(tab, backendsOf(s), port); body != want {
			t.Fatalf("port %d reached %q, Maglev says %q (reasons %v)", port, body, want, x.dp.Reasons())
		}
		seen[body]++
		// the next attempt for this port would hit TIME_WAIT: ports are not reused
	}
	if len(seen) != 3 {
		t.Fatalf("30 flows reached %v, want all 3 servers", seen)
	}

	// Replies bypass the director: a 2 MB body reaches the client while
	// the director's cable carries a small fraction of it.
	drx0, dtx0 := x.portBytes(t, x.director)
	_, ctx0 := x.portBytes(t, x.client)
	body, err := x.get(0, "/big")
	if err != nil || len(body) < 2<<20-1 {
		t.Fatalf("GET /big: %d bytes, %v", len(body), err)
	}
	drx1, dtx1 := x.portBytes(t, x.director)
	_, ctx1 := x.portBytes(t, x.client)
	dirSent, dirGot, clientGot := drx1-drx0, dtx1-dtx0, ctx1-ctx0
	t.Logf("2 MB download: director sent %d bytes, received %d; client received %d", dirSent, dirGot, clientGot)
	if dirSent > 200<<10 || dirGot > 200<<10 {
		t.Fatalf("the director carried %d/%d bytes of a 2 MB reply: replies do not bypass it", dirSent, dirGot)
	}

	// A checker takes rs3 out: flows of rs1 and rs2 stay where they were.
	gone := x.rs[2].Name
	s2 := x.service(x.rs[0], x.rs[1])
	if err := x.dp.Apply(ctx, []lvs.Service{s2}); err != nil {
		t.Fatal(err)
	}
	moved, own := 0, 0
	for i := range 30 {
		port := 21000 + i
		was := owner(tab, backendsOf(s), port)
		body, err := x.get(port, "/")
		if err != nil {
			t.Fatalf("GET from port %d after removal: %v", port, err)
		}
		if body == gone {
			t.Fatalf("port %d still reached the removed %s", port, gone)
		}
		if was == gone {
			own++
		} else if body != was {
			moved++
		}
	}
	t.Logf("after removing %s: %d of 30 flows were its, %d others moved", gone, own, moved)
	if moved != 0 {
		t.Fatalf("%d flows of the remaining servers moved", moved)
	}
	// rs3 comes back: the table rebuilt from the same destinations is the
	// first one again, so new flows land where they first would have.
	if err := x.dp.Apply(ctx, []lvs.Service{s}); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		port := 22000 + i
		body, err := x.get(port, "/")
		if err != nil {
			t.Fatalf("GET from port %d after rs3 came back: %v", port, err)
		}
		if want := owner(tab, backendsOf(s), port); body != want {
			t.Fatalf("port %d reached %q after the rebuild, the first table says %q", port, body, want)
		}
	}
	st := x.dp.Services()
	if len(st) != 1 || st[0].Stats.Conns < 61 || st[0].Stats.InPkts == 0 {
		t.Fatalf("counters: %+v", st)
	}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// startNginx serves a page naming the host at / and 2 MB at /big.
func startNginx(t *testing.T, h *lab.Host) {
	t.Helper()
	files := map[string]string{"index.html": h.Name + "\n", "big": strings.Repeat("x", 2<<20)}
	lab.StartNginx(t, h, files, func(dir string) string {
		return fmt.Sprintf("    server { listen 80; root %s; }", dir)
	})
	lab.Eventually(t, 10*time.Second, func() bool {
		_, err := h.Run("curl", "-sf", "-o", "/dev/null", "http://"+h.Addr.String()+"/")
		return err == nil
	}, "nginx on %s not serving", h.Name)
}

// TestTUNThroughXDP: a UDP datagram to a TUN service leaves the director
// inside an IPIP header from the director to the real server. This
// machine's kernel has no IPIP (no tunl0, `ip link add type ipip` fails),
// so no real server here can decapsulate: the real server's side is a raw
// socket for protocol 4 that checks the outer and inner headers of what
// arrives on the wire.
func TestTUNThroughXDP(t *testing.T) {
	lab.RequireCommand(t, "ethtool")
	bpffs := bpffsDir(t)
	l := lab.New(t)
	client := l.Host("client")
	dir := l.Host("dir")
	dir.MustRun("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0")
	rs := l.Host("rs1")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	pass, err := AttachPass(l.Bridge, dir.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()
	dp, err := New(Options{NetNS: dir.NS, PinPath: filepath.Join(bpffs, "vipd"), Unpin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	vip := netip.MustParseAddrPort("198.18.0.100:9000")
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: vip}, Scheduler: "mh",
		Destinations: []lvs.Destination{{Addr: netip.AddrPortFrom(rs.Addr, 9000), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelIPIP}}}
	if err := dp.Apply(context.Background(), []lvs.Service{s}); err != nil {
		t.Fatal(err)
	}

	var raw net.PacketConn
	if err := rs.Do(func() (err error) { raw, err = net.ListenPacket("ip4:4", "0.0.0.0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// send is the client's datagram to the VIP.
	send := func() {
		t.Helper()
		if err := client.Do(func() error {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(vip))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("through the tunnel"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := raw.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no IPIP packet reached the real server: %v (reasons %v)", err, dp.Reasons())
	}
	inner := buf[:n]
	if from.String() != dir.Addr.String() {
		t.Errorf("outer source %s, want the director %s", from, dir.Addr)
	}
	checkInner := func(inner []byte) {
		t.Helper()
		if len(inner) < 28 || inner[0]>>4 != 4 || inner[9] != 17 ||
			netip.AddrFrom4([4]byte(inner[12:16])) != client.Addr || netip.AddrFrom4([4]byte(inner[16:20])) != vip.Addr() ||
			string(inner[28:]) != "through the tunnel" {
			t.Fatalf("inner packet % x: want UDP %s -> %s with the payload", inner, client.Addr, vip)
		}
	}
	checkInner(inner)

	// GUE to port 6080: the real server's UDP socket gets the GUE header
	// and the packet.
	var gue net.PacketConn
	if err := rs.Do(func() (err error) { gue, err = net.ListenPacket("udp4", ":6080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer gue.Close()
	s.Destinations[0].Tunnel, s.Destinations[0].TunnelPort = lvs.TunnelGUE, 6080
	if err := dp.Apply(context.Background(), []lvs.Service{s}); err != nil {
		t.Fatal(err)
	}
	send()
	_ = gue.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err = gue.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no GUE datagram reached the real server: %v (reasons %v)", err, dp.Reasons())
	}
	if ua := from.(*net.UDPAddr); ua.IP.String() != dir.Addr.String() || ua.Port < 32768 {
		t.Errorf("GUE datagram from %s, want the director from a flow-hashed port", from)
	}
	if n < 4 || string(buf[:4]) != "\x00\x04\x00\x00" {
		t.Fatalf("GUE header % x, want 00 04 00 00", buf[:min(n, 4)])
	}
	checkInner(buf[4:n])
}
