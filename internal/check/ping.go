package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Ping is PING_CHECK: one ICMP (or ICMPv6) echo request; up when the
// matching echo reply comes back within connect_timeout.
//
// It uses an unprivileged ICMP datagram socket where
// net.ipv4.ping_group_range allows it (the kernel then filters replies by
// socket), and a raw socket (root or CAP_NET_RAW) otherwise. keepalived
// instead widens ping_group_range to include root; vipd leaves the sysctl
// alone.
type Ping struct {
	Endpoint
}

var pingSeq atomic.Uint32

// Check sends one echo request.
func (c *Ping) Check(ctx context.Context) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	v6 := c.Addr.Addr().Is6() && !c.Addr.Addr().Is4In6()
	// ping_group_range is per network namespace and may change, so the
	// datagram socket is tried every time (a refused socket() is cheap).
	conn, raw, err := c.open(v6, false)
	if err != nil && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EPROTONOSUPPORT)) {
		conn, raw, err = c.open(v6, true)
	}
	if err != nil {
		return down("%s", reason("ICMP socket", err))
	}
	defer conn.Close()
	conn, stop := guardPacket(ctx, conn, raw && !v6) // lastchance.go
	defer stop()

	var id [2]byte
	_, _ = rand.Read(id[:])
	echo := &icmp.Echo{ID: int(binary.BigEndian.Uint16(id[:])), Seq: int(pingSeq.Add(1) & 0xffff), Data: make([]byte, 16)}
	_, _ = rand.Read(echo.Data)
	var typ icmp.Type = ipv4.ICMPTypeEcho
	var reply icmp.Type = ipv4.ICMPTypeEchoReply
	proto := 1
	if v6 {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg, err := (&icmp.Message{Type: typ, Body: echo}).Marshal(nil)
	if err != nil {
		return down("%s", reason("ICMP marshal", err))
	}
	dst := &net.IPAddr{IP: c.Addr.Addr().AsSlice()}
	if _, err := conn.WriteTo(msg, sockaddrFor(dst, raw)); err != nil {
		return down("%s", reason("send", ctxErr(ctx, err)))
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return down("%s", reason("no echo reply", ctxErr(ctx, err)))
		}
		// net.IPConn strips the IPv4 header raw sockets deliver, so b
		// is the ICMP message for every socket kind.
		b := buf[:n]
		if !sameIP(from, c.Addr.Addr().AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(proto, b)
		if err != nil || m.Type != reply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		// A datagram socket's id is the kernel's, not ours.
		if !ok || e.Seq != echo.Seq || (raw && e.ID != echo.ID) || !bytes.Equal(e.Data, echo.Data) {
			continue
		}
		return up("echo reply")
	}
}

func sockaddrFor(dst *net.IPAddr, raw bool) net.Addr {
	if raw {
		return dst
	}
	return &net.UDPAddr{IP: dst.IP}
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch x := a.(type) {
	case *net.IPAddr:
		return x.IP.Equal(ip)
	case *net.UDPAddr:
		return x.IP.Equal(ip)
	}
	return false
}

// open makes an ICMP socket: datagram (unprivileged) or raw, bound and
// marked as configured.
func (c *Ping) open(v6, raw bool) (net.PacketConn, bool, error) {
	domain, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		domain, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	typ := unix.SOCK_DGRAM
	if raw {
		typ = unix.SOCK_RAW
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, raw, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	if c.Fwmark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(c.Fwmark)); err != nil {
			return nil, raw, fmt.Errorf("fwmark %d: %w", c.Fwmark, err)
		}
	}
	if c.BindIf != "" {
		if err := unix.BindToDevice(fd, c.BindIf); err != nil {
			return nil, raw, fmt.Errorf("bind_if %s: %w", c.BindIf, err)
		}
	}
	if c.BindTo.IsValid() {
		var sa unix.Sockaddr
		if v6 {
			sa = &unix.SockaddrInet6{Addr: c.BindTo.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: c.BindTo.Unmap().As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return nil, raw, fmt.Errorf("bindto %s: %w", c.BindTo, err)
		}
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, raw, err
	}
	return pc, raw, nil
}
