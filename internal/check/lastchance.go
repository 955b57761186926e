package check

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// A starved host must not take a healthy server out. When the CPU is
// saturated, a checker's goroutine can stay runnable past its deadline
// while the server's answer already sits in the socket: Go's poller
// then wakes it with "i/o timeout" (the deadline timer fires before the
// readiness is seen, and a read or write on a socket whose deadline has
// passed fails before even asking the kernel). Each checker therefore
// gives the kernel a last chance before it declares a timeout: one
// non-blocking recv (or send) on the socket, outside the poller, and an
// answer already there counts. For a connect, the same last look is
// getpeername/SO_ERROR (waitConnected).
//
// To keep that last chance possible the socket must still be open when
// the deadline fires: a checker's context ending moves the socket's
// deadline into the past (guard) instead of closing it.

// lastChanceConn is a connection whose Read and Write, on a timeout,
// try the kernel once without waiting.
// lastChanceSaved counts the answers a last chance found: each one a
// healthy server a starved checker would have taken out.
var lastChanceSaved atomic.Uint64

type lastChanceConn struct {
	net.Conn
	rc syscall.RawConn
}

// guard bounds conn by ctx for one attempt: ctx's deadline on the socket,
// and ctx's end (deadline or cancel) interrupts a blocked read or write
// by moving the deadline into the past, leaving the socket open. It
// returns the connection to use, with the last chance on timeouts, and
// the function that undoes the AfterFunc.
func guard(ctx context.Context, conn net.Conn) (net.Conn, func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	return lastChance(conn), stop
}

// connectGuarded opens a connection with dial and guards it by ctx for
// one attempt (see guard); release undoes the guard, then closes the
// connection. The error is dial's.
func connectGuarded[C net.Conn](ctx context.Context, dial func(context.Context) (C, error)) (conn net.Conn, release func(), err error) {
	raw, err := dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn, stop := guard(ctx, raw)
	return conn, func() {
		stop()
		_ = raw.Close()
	}, nil
}

// lastChanceOff turns the last chance of reads and writes off, for the
// tests that measure what it saves under load in the same run.
var lastChanceOff bool

// lastChance wraps conn when it has a file descriptor to ask.
func lastChance(conn net.Conn) net.Conn {
	sc, ok := conn.(syscall.Conn)
	if !ok || lastChanceOff {
		return conn
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return conn
	}
	return &lastChanceConn{Conn: conn, rc: rc}
}

func timedOut(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Read reads; on a timeout it takes what the kernel already holds.
func (c *lastChanceConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == nil || n > 0 || len(b) == 0 || !timedOut(err) {
		return n, err
	}
	m, tried, rerr := c.recvNow(b)
	switch {
	case !tried || rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK || rerr == unix.EINTR:
		return n, err // nothing there: the timeout stands
	case rerr != nil:
		return 0, os.NewSyscallError("recvfrom", rerr)
	case m == 0 && c.stream():
		lastChanceSaved.Add(1)
		return 0, io.EOF // the server had already closed: the answer is complete
	}
	lastChanceSaved.Add(1)
	return m, nil
}

// Write writes; on a timeout it tries once more without waiting.
func (c *lastChanceConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil || n == len(b) || !timedOut(err) {
		return n, err
	}
	var m int
	var werr error
	if cerr := c.rc.Control(func(fd uintptr) {
		m, werr = unix.SendmsgN(int(fd), b[n:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	}); cerr != nil || werr != nil || n+m < len(b) {
		return n + max(m, 0), err
	}
	lastChanceSaved.Add(1)
	return len(b), nil
}

// recvNow is one non-blocking recv, outside the poller.
func (c *lastChanceConn) recvNow(b []byte) (n int, tried bool, err error) {
	cerr := c.rc.Control(func(fd uintptr) {
		n, _, err = unix.Recvfrom(int(fd), b, unix.MSG_DONTWAIT)
	})
	return n, cerr == nil, err
}

// stream reports whether the socket is a byte stream (0 bytes is EOF
// there, an empty datagram elsewhere).
func (c *lastChanceConn) stream() bool {
	var typ int
	_ = c.rc.Control(func(fd uintptr) { typ, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE) })
	return typ == unix.SOCK_STREAM
}

// lastChancePacket is lastChanceConn for an unconnected datagram socket
// (PING_CHECK's ICMP socket): ReadFrom and WriteTo get the same last
// chance.
type lastChancePacket struct {
	net.PacketConn
	rc syscall.RawConn
	// stripIPv4: the socket is raw IPv4, whose reads carry the IP
	// header; net.IPConn strips it, the last chance must too.
	stripIPv4 bool
}

// guardPacket is guard for an unconnected datagram socket.
func guardPacket(ctx context.Context, pc net.PacketConn, stripIPv4 bool) (net.PacketConn, func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = pc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(aLongTimeAgo) })
	sc, ok := pc.(syscall.Conn)
	if !ok || lastChanceOff {
		return pc, stop
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return pc, stop
	}
	return &lastChancePacket{PacketConn: pc, rc: rc, stripIPv4: stripIPv4}, stop
}

// ReadFrom reads; on a timeout it takes a datagram already queued.
func (c *lastChancePacket) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err == nil || !timedOut(err) {
		return n, from, err
	}
	var m int
	var sa unix.Sockaddr
	var rerr error
	if cerr := c.rc.Control(func(fd uintptr) { m, sa, rerr = unix.Recvfrom(int(fd), b, unix.MSG_DONTWAIT) }); cerr != nil ||
		rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK || rerr == unix.EINTR {
		return n, from, err
	}
	if rerr != nil {
		return 0, nil, os.NewSyscallError("recvfrom", rerr)
	}
	if c.stripIPv4 && m > 0 {
		if h := int(b[0]&0x0f) * 4; h <= m {
			m = copy(b, b[h:m])
		}
	}
	lastChanceSaved.Add(1)
	return m, sockaddrToAddr(sa, c.PacketConn.LocalAddr()), nil
}

// WriteTo writes; on a timeout it tries once more without waiting.
func (c *lastChancePacket) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil || !timedOut(err) {
		return n, err
	}
	var ip net.IP
	var port int
	switch a := addr.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip, port = a.IP, a.Port
	default:
		return n, err
	}
	ap, ok := netip.AddrFromSlice(ip)
	if !ok {
		return n, err
	}
	sa, serr := sockaddr(netip.AddrPortFrom(ap.Unmap(), uint16(port)))
	if serr != nil {
		return n, err
	}
	var werr error
	if cerr := c.rc.Control(func(fd uintptr) { werr = unix.Sendto(int(fd), b, unix.MSG_DONTWAIT, sa) }); cerr != nil || werr != nil {
		return n, err
	}
	lastChanceSaved.Add(1)
	return len(b), nil
}

// sockaddrToAddr gives the sender in the type the socket's own reads
// use (net.IPAddr for raw sockets, net.UDPAddr for ICMP datagram ones).
func sockaddrToAddr(sa unix.Sockaddr, local net.Addr) net.Addr {
	var ip net.IP
	var port int
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = net.IP(a.Addr[:]).To16(), a.Port
	case *unix.SockaddrInet6:
		ip, port = net.IP(a.Addr[:]), a.Port
	}
	if _, ok := local.(*net.UDPAddr); ok {
		return &net.UDPAddr{IP: ip, Port: port}
	}
	return &net.IPAddr{IP: ip}
}
