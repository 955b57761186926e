package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// dialTCP opens a new TCP connection to the endpoint within ctx, as
// keepalived does for every attempt: a non-blocking socket of its own,
// the socket options the endpoint asks for, bind only for bindto or
// bind_port, connect, and the socket handed to Go's poller through
// os.NewFile.
//
// It does not use net.Dialer, which at 10,000 checkers cost a quarter of
// the CPU for what a probe does not need: it binds every socket to
// 0.0.0.0:0 when given a zero local address (and a bind to port 0 before
// connect takes a port from the bind-time range, which grows slow as
// TIME_WAIT sockets pile up: 40,000 TCP_CHECK probes on loopback took
// 102 s with the bind, 9.7 s without), and adds getsockname,
// getpeername, TCP_NODELAY and address strings to every connection.
func (e Endpoint) dialTCP(ctx context.Context) (net.Conn, error) {
	fd, inProgress, err := e.connectRaw(false)
	if err != nil {
		return nil, err
	}
	// os.NewFile sees the non-blocking flag and registers the socket
	// with the poller, so reads, writes and deadlines park goroutines
	// rather than threads.
	f := os.NewFile(uintptr(fd), "tcp "+e.String())
	c := &sockConn{File: f, raddr: e.Addr}
	if !inProgress {
		return c, nil
	}
	if err := c.waitConnected(ctx); err != nil {
		_ = f.Close()
		return nil, err
	}
	return c, nil
}

// connectRaw opens a non-blocking socket with the endpoint's options and
// starts connecting it: the first half of dialTCP, shared with the
// Runner's event loop (loop.go). inProgress says the connect goes on in
// the background (EINPROGRESS); the caller owns fd. raw makes the socket
// and connect calls with RawSyscall (rawsys.go), for the event loop.
func (e Endpoint) connectRaw(raw bool) (fd int, inProgress bool, err error) {
	raddr, err := e.sockaddr()
	if err != nil {
		return -1, false, err
	}
	family := unix.AF_INET
	if _, ok := raddr.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	if raw {
		fd, err = rawSocket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	} else {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	}
	if err != nil {
		return -1, false, os.NewSyscallError("socket", err)
	}
	if err := e.setsockopts(fd); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	if local := e.localAddrPort(); local.IsValid() {
		la, err := sockaddr(local)
		if err == nil {
			err = unix.Bind(fd, la)
		}
		if err != nil {
			unix.Close(fd)
			return -1, false, fmt.Errorf("bind %s: %w", local, err)
		}
	}
	done := false
	if raw {
		done, err = rawConnect(fd, e.Addr)
	}
	if !done {
		err = unix.Connect(fd, raddr)
	}
	if err == unix.EINTR {
		// A non-blocking connect interrupted by a signal goes on in
		// the background; wait for it like EINPROGRESS.
		err = unix.EINPROGRESS
	}
	switch err {
	case nil:
		return fd, false, nil
	case unix.EINPROGRESS:
		return fd, true, nil
	}
	unix.Close(fd)
	return -1, false, os.NewSyscallError("connect", err)
}

// sockaddr is the endpoint's address for connect.
func (e Endpoint) sockaddr() (unix.Sockaddr, error) { return sockaddr(e.Addr) }

// waitConnected waits until a non-blocking connect ends, or ctx does.
func (c *sockConn) waitConnected(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(aLongTimeAgo) })
	defer stop()
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var connErr error
	err = rc.Write(func(fd uintptr) bool {
		// Called once before any wait (the poller's readiness is
		// reset first, so asking is the only way to know), then on
		// each wake-up, which can be spurious (as net's connect
		// knows): a peer address proves the connection, SO_ERROR
		// tells a failure from a connect still in progress.
		if _, err := unix.Getpeername(int(fd)); err == nil {
			return true
		}
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			connErr = os.NewSyscallError("getsockopt", err)
		case v == 0, unix.Errno(v) == unix.EINPROGRESS || unix.Errno(v) == unix.EALREADY || unix.Errno(v) == unix.EINTR:
			return false
		default:
			connErr = os.NewSyscallError("connect", unix.Errno(v))
		}
		return true
	})
	if err == nil && connErr != nil {
		return connErr
	}
	if err != nil || ctx.Err() != nil {
		// The deadline (or a cancel) woke us, or the connection was
		// made but we ran only after the deadline: a starved
		// goroutine. A connection the kernel made in time counts
		// (lastchance.go); getpeername and SO_ERROR ask it once more.
		var connected bool
		_ = rc.Control(func(fd uintptr) {
			if _, gerr := unix.Getpeername(int(fd)); gerr == nil {
				connected = true
			} else if v, gerr := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && v != 0 &&
				unix.Errno(v) != unix.EINPROGRESS && unix.Errno(v) != unix.EALREADY {
				connErr = os.NewSyscallError("connect", unix.Errno(v))
			}
		})
		switch {
		case connected:
			lastChanceSaved.Add(1)
		case connErr != nil:
			return connErr
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return err
		}
	}
	return c.SetWriteDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// sockConn is a TCP connection on an os.File, for crypto/tls and the
// checkers that read and write through net.Conn.
type sockConn struct {
	*os.File
	raddr netip.AddrPort
}

// LocalAddr asks the kernel, only when someone wants it.
func (c *sockConn) LocalAddr() net.Addr {
	rc, err := c.SyscallConn()
	if err != nil {
		return &net.TCPAddr{}
	}
	var sa unix.Sockaddr
	_ = rc.Control(func(fd uintptr) { sa, _ = unix.Getsockname(int(fd)) })
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	}
	return &net.TCPAddr{}
}

func (c *sockConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.raddr) }

// setsockopts applies SO_REUSEADDR (with bind_port), fwmark and bind_if.
func (e Endpoint) setsockopts(fd int) error {
	if e.BindPort != 0 {
		// Probes from a fixed source port follow each other quickly;
		// without SO_REUSEADDR the old connection in TIME_WAIT would
		// block the next bind.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
	}
	if e.Fwmark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(e.Fwmark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", e.Fwmark, err)
		}
	}
	if e.BindIf != "" {
		if err := unix.BindToDevice(fd, e.BindIf); err != nil {
			return fmt.Errorf("bind_if %s: %w", e.BindIf, err)
		}
	}
	return nil
}

// sockaddr converts an address for the socket calls; an IPv4-mapped IPv6
// address becomes IPv4, as net.Dial does, and a zone names an interface.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return nil, errors.New("no address")
	}
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
