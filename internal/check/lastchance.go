package check

import (
	"context"
	"errors"
	"io"
	"net"
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
