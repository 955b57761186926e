package main

import (
	"bytes"
	"container/heap"
	"crypto/md5"
	"fmt"
	"hash"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawLoop is the second reference: the same HTTP_GET checks (a new
// connection per check, the request, the body read to EOF and hashed,
// digest compared) at the same rate, run by one locked thread on
// non-blocking sockets and edge-triggered epoll, with a due-time heap and
// no goroutine, channel, context or Go poller involved. It is what a
// checker engine written like keepalived's (one event loop) costs in this
// process on this machine; it handles no timeout other than counting
// checks that take longer than timeout as failed, which loopback never
// triggers.
//
// It returns the checks completed and the process CPU spent during the
// window that follows one warmup delay_loop.
func rawLoop(addrs []netip.AddrPort, delay, window, timeout time.Duration, digest [md5.Size]byte) (checks, failed int, cpu time.Duration, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Close(ep)

	type probe struct {
		addr    unix.SockaddrInet4
		req     []byte
		fd      int
		started time.Time
		due     time.Time
		writing bool
		got     int
		sum     md5Hash
	}
	probes := make([]*probe, len(addrs))
	q := &probeQueue{}
	start := time.Now()
	for i, a := range addrs {
		p := &probe{addr: unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}, fd: -1}
		p.req = []byte("GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + a.String() + "\r\n\r\n")
		p.due = start.Add(time.Duration(int64(delay) * int64(i) / int64(len(addrs))))
		probes[i] = p
		heap.Push(q, probeDue{i, p.due})
	}
	finish := func(i int, ok bool, now time.Time) {
		p := probes[i]
		unix.Close(p.fd) // also leaves the epoll set
		p.fd = -1
		if ok && now.Sub(p.started) > timeout {
			ok = false
		}
		checks++
		if !ok {
			failed++
		}
		heap.Push(q, probeDue{i, now.Add(delay)})
	}
	buf := make([]byte, 4096)
	events := make([]unix.EpollEvent, 256)
	measureFrom := start.Add(delay)
	end := measureFrom.Add(window)
	var cpu0 time.Duration
	measuring := false
	checks0, failed0 := 0, 0
	for {
		now := time.Now()
		if !measuring && now.After(measureFrom) {
			measuring, cpu0, checks0, failed0 = true, cpuTime(), checks, failed
		}
		if now.After(end) {
			break
		}
		// Start what is due within the same 10 ms the Runner coalesces.
		for q.Len() > 0 && (*q)[0].due.Before(now.Add(10*time.Millisecond)) {
			d := heap.Pop(q).(probeDue)
			p := probes[d.i]
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("socket: %w", err)
			}
			p.fd, p.started, p.writing, p.got, p.sum = fd, now, true, 0, newMD5()
			if err := unix.Connect(fd, &p.addr); err != nil && err != unix.EINPROGRESS {
				finish(d.i, false, now)
				continue
			}
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(d.i)}
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
				return 0, 0, 0, fmt.Errorf("epoll_ctl: %w", err)
			}
		}
		wait := 100
		if q.Len() > 0 {
			wait = int(time.Until((*q)[0].due) / time.Millisecond)
			wait = max(0, min(wait, 100))
		}
		n, err := epollWait(ep, events, wait)
		if err != nil && err != unix.EINTR {
			return 0, 0, 0, fmt.Errorf("epoll_wait: %w", err)
		}
		now = time.Now()
		for _, ev := range events[:max(n, 0)] {
			i := int(ev.Fd)
			p := probes[i]
			if p.fd < 0 {
				continue
			}
			if p.writing {
				if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
					continue
				}
				if v, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != 0 {
					finish(i, false, now)
					continue
				}
				if _, err := unix.Write(p.fd, p.req); err != nil {
					finish(i, false, now)
					continue
				}
				p.writing = false
			}
			// Edge-triggered: read until EAGAIN or EOF.
			for {
				m, err := unix.Read(p.fd, buf)
				if err == unix.EAGAIN {
					break
				}
				if err != nil {
					finish(i, false, now)
					break
				}
				if m == 0 {
					finish(i, p.got > 0 && p.sum.bodySum() == digest, now)
					break
				}
				p.sum.write(buf[:m])
				p.got += m
			}
		}
	}
	for _, p := range probes {
		if p.fd >= 0 {
			unix.Close(p.fd)
		}
	}
	return checks - checks0, failed - failed0, cpuTime() - cpu0, nil
}

type probeDue struct {
	i   int
	due time.Time
}

type probeQueue []probeDue

func (q probeQueue) Len() int           { return len(q) }
func (q probeQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q probeQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *probeQueue) Push(x any)        { *q = append(*q, x.(probeDue)) }
func (q *probeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// md5Hash hashes what follows the header's blank line, as check.HTTP does.
type md5Hash struct {
	h    hash.Hash
	head []byte
	body bool
}

func newMD5() md5Hash { return md5Hash{h: md5.New()} }

func (m *md5Hash) write(b []byte) {
	if m.body {
		m.h.Write(b)
		return
	}
	m.head = append(m.head, b...)
	if i := bytes.Index(m.head, []byte("\r\n\r\n")); i >= 0 {
		m.body = true
		m.h.Write(m.head[i+4:])
	}
}

func (m *md5Hash) bodySum() (s [md5.Size]byte) {
	copy(s[:], m.h.Sum(nil))
	return s
}

// epollWait is epoll_wait as a raw system call: the loop's thread is
// locked and only waits here, so the Go scheduler need not hand its P to
// another thread each time (which unix.EpollWait would make it do, and
// which a C event loop does not pay).
func epollWait(ep int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
