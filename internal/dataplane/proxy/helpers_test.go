package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// realServer is a TCP server on loopback that greets each connection with
// its name and a newline, then echoes what it reads until EOF and closes.
type realServer struct {
	name string
	ln   net.Listener
	addr netip.AddrPort
	mu   sync.Mutex
	open []net.Conn
}

func startServer(t *testing.T, name, addr string) *realServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rs := &realServer{name: name, ln: ln, addr: ln.Addr().(*net.TCPAddr).AddrPort()}
	t.Cleanup(rs.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rs.mu.Lock()
			rs.open = append(rs.open, c)
			rs.mu.Unlock()
			go func() {
				defer c.Close()
				io.WriteString(c, rs.name+"\n")
				io.Copy(c, c)
			}()
		}
	}()
	return rs
}

func (rs *realServer) stop() {
	rs.ln.Close()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, c := range rs.open {
		c.Close()
	}
}

// freePort returns a TCP and UDP port free on addr at the time of the
// call.
func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		uc, err := net.ListenPacket("udp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		uc.Close()
		return uint16(p)
	}
	t.Fatal("no free port")
	return 0
}

func newDP(t *testing.T) *Dataplane {
	t.Helper()
	dp, err := New(Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

func apply(t *testing.T, dp *Dataplane, svcs ...lvs.Service) {
	t.Helper()
	if err := dp.Apply(context.Background(), svcs); err != nil {
		t.Fatal(err)
	}
}

func tcpService(vip netip.AddrPort, sched string, dests ...*realServer) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: vip}, Scheduler: sched}
	for _, d := range dests {
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: d.addr, Weight: 1})
	}
	return s
}

// client is a connection through the proxy that has read the greeting.
type client struct {
	net.Conn
	r    *bufio.Reader
	name string
}

// dial connects to vip from the local address from (empty: any) and reads
// the real server's greeting.
func dial(t *testing.T, vip netip.AddrPort, from string) *client {
	t.Helper()
	c, err := dialErr(vip, from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialErr(vip netip.AddrPort, from string) (*client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", vip.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return &client{Conn: c, r: r, name: strings.TrimSpace(line)}, nil
}

// echo sends msg and reads it back.
func (c *client) echo(t *testing.T, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func destStatus(t *testing.T, dp *Dataplane, key lvs.ServiceKey, addr netip.AddrPort) lvs.DestStatus {
	t.Helper()
	for _, s := range dp.Services() {
		if s.Key != key {
			continue
		}
		for _, d := range s.Dests {
			if d.Addr == addr {
				return d
			}
		}
		t.Fatalf("destination %s not in service %s", addr, key)
	}
	t.Fatalf("service %s not running", key)
	return lvs.DestStatus{}
}

// connsOf returns the connection entries of client (by address) in state
// (empty: any).
func connsOf(dp *Dataplane, state string) []lvs.ConnEntry {
	var out []lvs.ConnEntry
	for _, e := range dp.Conns() {
		if state == "" || e.State == state {
			out = append(out, e)
		}
	}
	return out
}

// isReset reports whether err is what a reset connection gives.
func isReset(err error) bool {
	return err != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// serveRR is how most tests start: a data plane running one rr TCP
// service over servers on a fresh loopback VIP. It returns the data
// plane, the VIP and the service as applied.
func serveRR(t *testing.T, servers ...*realServer) (*Dataplane, netip.AddrPort, lvs.Service) {
	t.Helper()
	return serve(t, "rr", nil, servers...)
}

// serve is serveRR with the scheduler sched and the settings set makes
// to the service (nil: none) before it is applied.
func serve(t *testing.T, sched string, set func(*lvs.Service), servers ...*realServer) (*Dataplane, netip.AddrPort, lvs.Service) {
	t.Helper()
	return serveService(t, func(v netip.AddrPort) lvs.Service { return tcpService(v, sched, servers...) }, set)
}

// serveUDP is serve for a UDP service over the datagram servers dests.
func serveUDP(t *testing.T, sched string, set func(*lvs.Service), dests ...netip.AddrPort) (*Dataplane, netip.AddrPort, lvs.Service) {
	t.Helper()
	return serveService(t, func(v netip.AddrPort) lvs.Service { return udpSvc(v, sched, dests...) }, set)
}

// serveService starts a data plane running the service mk builds for a
// fresh loopback VIP, once set (nil: nothing) has adjusted it.
func serveService(t *testing.T, mk func(v netip.AddrPort) lvs.Service, set func(*lvs.Service)) (*Dataplane, netip.AddrPort, lvs.Service) {
	t.Helper()
	dp := newDP(t)
	v := vip(t)
	s := mk(v)
	if set != nil {
		set(&s)
	}
	apply(t, dp, s)
	return dp, v, s
}
