package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lab"
)

// fullListener returns the address of a loopback listener whose accept
// queue is full, so the kernel drops further SYNs: a connect to it waits
// until its deadline, as to a blackholed server.
func fullListener(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue (backlog 0 holds one connection, then SYNs drop).
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr.String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestDialTCP(t *testing.T) {
	ln4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	open4 := netip.MustParseAddrPort(ln4.Addr().String())
	var open6 netip.AddrPort
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer ln6.Close()
		open6 = netip.MustParseAddrPort(ln6.Addr().String())
	}
	full := fullListener(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ep     Endpoint
		ctx    context.Context
		reason string // "" for connected
	}{
		{"IPv4", Endpoint{Addr: open4}, nil, ""},
		{"IPv4-mapped IPv6", Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom16(open4.Addr().As16()), open4.Port())}, nil, ""},
		{"IPv6", Endpoint{Addr: open6}, nil, ""},
		{"refused", Endpoint{Addr: freeAddr(t, "tcp")}, nil, "connect: connection refused"},
		{"SYN dropped: timeout", Endpoint{Addr: full, Timeout: 200 * time.Millisecond}, nil, "connect: timeout"},
		{"canceled", Endpoint{Addr: full, Timeout: time.Second}, canceled, "connect: canceled"},
		{"bindto", Endpoint{Addr: open4, BindTo: netip.MustParseAddr("127.0.0.3")}, nil, ""},
		{"bindto of another family", Endpoint{Addr: open4, BindTo: netip.MustParseAddr("::1")}, nil, "bind"},
		{"unknown zone", Endpoint{Addr: netip.MustParseAddrPort("[fe80::1%nosuch0]:80")}, nil, "zone nosuch0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ep.Addr.IsValid() {
				lab.Skip(t, "no IPv6 loopback")
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, cancel := tt.ep.attemptContext(ctx)
			defer cancel()
			start := time.Now()
			c, err := tt.ep.dialTCP(ctx)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if got := c.RemoteAddr().String(); got != net.TCPAddrFromAddrPort(tt.ep.Addr).String() {
					t.Errorf("RemoteAddr %s", got)
				}
				local := c.LocalAddr().(*net.TCPAddr)
				if local.Port == 0 || (tt.ep.BindTo.IsValid() && !local.IP.Equal(tt.ep.BindTo.AsSlice())) {
					t.Errorf("LocalAddr %s", local)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if got := reason("connect", err); !strings.Contains(got, tt.reason) && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %v (%q), want %q", err, got, tt.reason)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("took %v", el)
			}
			if tt.name == "SYN dropped: timeout" && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("error %v is not a deadline", err)
			}
		})
	}
}
