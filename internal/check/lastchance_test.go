package check

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// The starved-poller false timeout (issue 15, item 2): the server's
// answer is in the socket, then the checker's deadline fires before its
// goroutine has read it. Go's poller reports "i/o timeout" and, before
// lastchance.go, the checker took a healthy server out.

// TestPollerTimesOutWithTheAnswerThere shows the mechanism with no
// scheduling involved: a read on a socket whose deadline has passed
// fails without asking the kernel, though the answer is queued there.
// The last chance read takes it, then sees the server's close.
func TestPollerTimesOutWithTheAnswerThere(t *testing.T) {
	addr := serveTCP(t, func(c net.Conn) {
		_, _ = c.Write([]byte("answer"))
		_ = c.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Endpoint{Addr: addr}.dialTCP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitQueued(t, conn, len("answer"))

	_ = conn.SetReadDeadline(aLongTimeAgo)
	if _, err := conn.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("plain read past the deadline: %v, want i/o timeout (the premise of the test)", err)
	}
	lc := lastChance(conn)
	b := make([]byte, 64)
	n, err := lc.Read(b)
	if err != nil || string(b[:n]) != "answer" {
		t.Fatalf("last chance read: %q, %v; want the queued answer", b[:n], err)
	}
	if _, err := lc.Read(b); err != io.EOF {
		t.Fatalf("second read: %v, want EOF (the server closed)", err)
	}
}

// waitQueued waits until the kernel holds n bytes for conn.
func waitQueued(t *testing.T, conn net.Conn, n int) {
	t.Helper()
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		var q int
		_ = rc.Control(func(fd uintptr) { q, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if q >= n {
			return
		}
	}
	t.Fatalf("%d bytes never arrived", n)
}

// firedCtx is a checker's context whose deadline the test fires at the
// moment it chooses: right after the server has answered.
type firedCtx struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newFiredCtx() *firedCtx {
	return &firedCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *firedCtx) Done() <-chan struct{} { return c.done }

func (c *firedCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *firedCtx) fire() { c.once.Do(func() { close(c.done) }) }

// starve runs f with one P: a goroutine the server readies (the
// AfterFunc that moves the deadline) runs before the checker's
// goroutine, which waits for the poller to notice its socket. That is
// the order a saturated host produces by chance; here it is (nearly)
// every time.
func starve(t *testing.T, f func()) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
}

const starvedRounds = 20

// TestStarvedCheckersKeepAHealthyServer: for each checker that reads an
// answer, the server answers and then the checker's deadline fires at
// once. Every round must find the server up.
func TestStarvedCheckersKeepAHealthyServer(t *testing.T) {
	certFile, keyFile := selfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every server answers one connection or datagram per round, then
	// fires the round's context.
	tcpServer := func(t *testing.T, wrap func(net.Conn) net.Conn, serve func(c net.Conn, br *bufio.Reader) error) (netip.AddrPort, chan *firedCtx) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		rounds := make(chan *firedCtx, 1)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				ctx := <-rounds
				if wrap != nil {
					c = wrap(c)
				}
				if err := serve(c, bufio.NewReader(c)); err != nil {
					t.Errorf("server: %v", err)
				}
				_ = c.Close()
				ctx.fire()
			}
		}()
		return netip.MustParseAddrPort(ln.Addr().String()), rounds
	}
	httpServe := func(c net.Conn, br *bufio.Reader) error {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if l == "\r\n" {
				break
			}
		}
		_, err := c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		return err
	}
	udpAnswer := func(t *testing.T, answer func([]byte) []byte) (netip.AddrPort, chan *firedCtx) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		rounds := make(chan *firedCtx, 1)
		go func() {
			b := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(b)
				if err != nil {
					return
				}
				ctx := <-rounds
				_, _ = pc.WriteTo(answer(b[:n]), from)
				ctx.fire()
			}
		}()
		return netip.MustParseAddrPort(pc.LocalAddr().String()), rounds
	}

	type target struct {
		name  string
		setup func(t *testing.T) (Checker, chan *firedCtx)
	}
	targets := []target{
		{"HTTP_GET", func(t *testing.T) (Checker, chan *firedCtx) {
			addr, r := tcpServer(t, nil, httpServe)
			return &HTTP{Endpoint: Endpoint{Addr: addr, Timeout: 10 * time.Second}, URLs: []URL{{Path: "/"}}}, r
		}},
		{"SSL_GET", func(t *testing.T) (Checker, chan *firedCtx) {
			addr, r := tcpServer(t, func(c net.Conn) net.Conn {
				return tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			}, httpServe)
			return &HTTP{Endpoint: Endpoint{Addr: addr, Timeout: 10 * time.Second}, URLs: []URL{{Path: "/"}},
				TLS: &tls.Config{InsecureSkipVerify: true}}, r
		}},
		{"SMTP_CHECK", func(t *testing.T) (Checker, chan *firedCtx) {
			addr, r := tcpServer(t, nil, func(c net.Conn, br *bufio.Reader) error {
				if _, err := c.Write([]byte("220 mx ready\r\n")); err != nil {
					return err
				}
				if _, err := br.ReadString('\n'); err != nil {
					return err
				}
				_, err := c.Write([]byte("250 hello\r\n"))
				return err
			})
			return &SMTP{Endpoint: Endpoint{Addr: addr, Timeout: 10 * time.Second}, HeloName: "vipd"}, r
		}},
		{"UDP_CHECK require_reply", func(t *testing.T) (Checker, chan *firedCtx) {
			addr, r := udpAnswer(t, func(b []byte) []byte { return []byte("pong") })
			return &UDP{Endpoint: Endpoint{Addr: addr, Timeout: 10 * time.Second}, Payload: []byte("ping"), RequireReply: true}, r
		}},
		{"DNS_CHECK", func(t *testing.T) (Checker, chan *firedCtx) {
			addr, r := udpAnswer(t, func(b []byte) []byte {
				var m dnsmessage.Message
				if err := m.Unpack(b); err != nil {
					return nil
				}
				m.Response = true
				out, _ := m.Pack()
				return out
			})
			return &DNS{Endpoint: Endpoint{Addr: addr, Timeout: 10 * time.Second}}, r
		}},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c, rounds := tg.setup(t)
			var downs []string
			starve(t, func() {
				for range starvedRounds {
					ctx := newFiredCtx()
					rounds <- ctx
					if r := c.Check(ctx); !r.Up {
						downs = append(downs, r.Reason)
					}
					// The server fires only after its answer; a check
					// that failed before it must not leave it waiting.
					ctx.fire()
				}
			})
			if len(downs) > 0 {
				t.Errorf("healthy server down in %d of %d starved rounds: %s", len(downs), starvedRounds, strings.Join(downs, "; "))
			}
		})
	}
}

// TestStarvedConnect: the kernel completed the connection (a listening
// socket on loopback answers the SYN itself), but the checker's
// goroutine only runs once its deadline has passed. The connection
// counts.
func TestStarvedConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := &TCP{Endpoint{Addr: netip.MustParseAddrPort(ln.Addr().String()), Timeout: 10 * time.Second}}
	for range starvedRounds {
		ctx := newFiredCtx()
		ctx.fire()
		if r := c.Check(ctx); !r.Up {
			t.Fatalf("connected server down: %s", r.Reason)
		}
	}
	// A refused connection is still down, and says why.
	closed := freeAddr(t, "tcp")
	ctx := newFiredCtx()
	ctx.fire()
	if r := (&TCP{Endpoint{Addr: closed, Timeout: time.Second}}).Check(ctx); r.Up {
		t.Fatalf("refused connection up: %s", r.Reason)
	}
}

// TestStarvedPing: PING_CHECK's goroutine runs only once its deadline
// has passed; the echo request still goes out (non-blocking) and the
// loopback's reply, queued by the kernel at once, counts.
func TestStarvedPing(t *testing.T) {
	if os.Geteuid() != 0 {
		b, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		var lo, hi int
		_, _ = fmt.Sscan(string(b), &lo, &hi)
		if gid := os.Getegid(); gid < lo || gid > hi {
			lab.Skip(t, "neither root nor in ping_group_range")
		}
	}
	for _, a := range []string{"127.0.0.1", "::1"} {
		for range starvedRounds {
			ctx := newFiredCtx()
			ctx.fire()
			r := (&Ping{Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: time.Second}}).Check(ctx)
			if !r.Up {
				t.Fatalf("ping %s: %+v", a, r)
			}
		}
	}
}
