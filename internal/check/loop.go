package check

import (
	"container/heap"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// probeLoop runs the attempts of HTTP_GET (without TLS) and TCP_CHECK on
// the Runner's own goroutine, the way keepalived's checker does: raw
// non-blocking sockets on one edge-triggered epoll set, polled without
// waiting at each wake-up of the Runner, which comes at most every poll
// interval while attempts are in flight. So no goroutine, context,
// channel send or Go poller registration is spent per check, and one
// wake-up serves every socket that became ready meanwhile (at 10,000
// checkers at delay_loop 6, about 16 sockets per 10 ms poll).
//
// An attempt is the same as (*HTTP).Check or (*TCP).Check: a new
// connection per URL with keepalived's request, the response read until
// the server closes, judged by URL.judge; the same reasons, the same
// per-URL bound (connect_timeout) within the attempt's bound (Timing's
// Timeout), and the same last chance at a deadline (lastchance.go): the
// kernel is asked once more before a timeout is declared. The loop only
// ever polls (epoll_wait with a zero timeout), so it never blocks the
// Runner.
//
// The request is written as soon as connect returns: on a fast network
// (loopback, a LAN) the connection is often made by then, which saves
// one wake-up; otherwise the write fails with EAGAIN and waits for the
// socket to become writable. The response needs no final read to see
// the server's close when the poll reported it (EPOLLRDHUP) and the
// read returned less than the buffer: the kernel queues the FIN behind
// all the data.
type probeLoop struct {
	ep     int
	events []unix.EpollEvent
	slots  []*loopProbe // by slot number, the epoll data
	free   []*loopProbe // probes to reuse
	byID   map[int]*loopProbe
	dl     probeHeap // in flight, by deadline
	buf    []byte
	// done collects the attempts that ended, for the Runner.
	done []attemptDone
	now  func() time.Time // the Runner's clock, for attempt durations
}

type probeState uint8

const (
	connecting probeState = iota // connect in progress, request not sent
	writing                      // connected, request partly sent
	reading                      // request sent, reading the response
)

// loopProbe is one attempt in flight.
type loopProbe struct {
	id    int
	slot  int32
	gen   int32 // tells a stale epoll event from this attempt's
	fd    int
	tcp   *TCP
	http  *HTTP
	url   int
	state probeState
	req   []byte
	wrote int
	start time.Time // on the Runner's clock
	// attemptEnd bounds the whole attempt (Timing.Timeout); deadline
	// the current URL (connect_timeout within attemptEnd). Real time.
	attemptEnd time.Time
	deadline   time.Time
	hidx       int
	parser     respParser
}

// loopStarted counts the attempts started on a loop, for the tests.
var loopStarted atomic.Uint64

// loopable reports whether the loop runs c's attempts.
func loopable(c Checker) bool {
	switch c := c.(type) {
	case *HTTP:
		return c != nil && c.TLS == nil && len(c.URLs) > 0
	case *TCP:
		return c != nil
	}
	return false
}

func newProbeLoop(now func() time.Time) (*probeLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &probeLoop{ep: ep, events: make([]unix.EpollEvent, 256), byID: map[int]*loopProbe{}, buf: make([]byte, 16<<10), now: now}, nil
}

// inFlight is the number of attempts running on the loop.
func (l *probeLoop) inFlight() int { return len(l.byID) }

// close ends every attempt in flight without a result and frees the
// epoll set.
func (l *probeLoop) close() {
	for id := range l.byID {
		l.cancel(id)
	}
	unix.Close(l.ep)
}

// start begins an attempt of checker c (loopable) for checker id, bounded
// by timeout. An attempt that ends at once (a refused bind, say) is in
// l.done on return.
func (l *probeLoop) start(id int, c Checker, timeout time.Duration) {
	loopStarted.Add(1)
	p := l.get()
	p.id, p.start, p.url = id, l.now(), 0
	switch c := c.(type) {
	case *HTTP:
		p.http, p.tcp = c, nil
	case *TCP:
		p.tcp, p.http = c, nil
	}
	if timeout <= 0 {
		timeout = p.endpoint().timeout()
	}
	p.attemptEnd = time.Now().Add(timeout)
	l.byID[id] = p
	l.open(p)
}

func (p *loopProbe) endpoint() *Endpoint {
	if p.http != nil {
		return &p.http.Endpoint
	}
	return &p.tcp.Endpoint
}

func (l *probeLoop) get() *loopProbe {
	var p *loopProbe
	if n := len(l.free); n > 0 {
		p = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		p = &loopProbe{slot: int32(len(l.slots)), hidx: -1, fd: -1}
		l.slots = append(l.slots, p)
	}
	p.gen++
	return p
}

// open connects for the probe's current URL (or its TCP_CHECK).
func (l *probeLoop) open(p *loopProbe) {
	e := p.endpoint()
	p.deadline = time.Now().Add(e.timeout())
	if p.attemptEnd.Before(p.deadline) {
		p.deadline = p.attemptEnd
	}
	fd, inProgress, err := e.connectRaw(true)
	if err != nil {
		l.end(p, down("%s", reason("connect", err)))
		return
	}
	p.fd, p.state, p.wrote = fd, connecting, 0
	if p.tcp != nil && !inProgress {
		l.end(p, up("connected"))
		return
	}
	if p.http != nil {
		u := &p.http.URLs[p.url]
		host := p.http.host(u)
		p.req = httpRequest(u.Path, p.http.Protocol, host)
		p.parser.reset(p.http.maxBody(), u.Regex != nil)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: p.slot, Pad: p.gen}
	if p.http != nil {
		ev.Events |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if err := rawEpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.end(p, down("%s", reason("connect", os.NewSyscallError("epoll_ctl", err))))
		return
	}
	if p.hidx < 0 {
		heap.Push(&l.dl, p)
	} else {
		heap.Fix(&l.dl, p.hidx)
	}
	if p.http != nil {
		// Optimistic: the connection may be made already.
		l.write(p)
	}
}

// poll handles every socket that is ready, then the deadlines that have
// passed, without waiting.
func (l *probeLoop) poll() {
	for {
		n, err := rawEpollPoll(l.ep, l.events)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		for _, ev := range l.events[:n] {
			if int(ev.Fd) >= len(l.slots) {
				continue
			}
			p := l.slots[ev.Fd]
			if p.gen != ev.Pad || p.fd < 0 {
				continue // a socket already closed for an ended attempt
			}
			l.ready(p, ev.Events, false)
		}
		if n < len(l.events) {
			break
		}
	}
	now := time.Now()
	for len(l.dl) > 0 && !l.dl[0].deadline.After(now) {
		p := l.dl[0]
		// The last chance: ask the kernel once more, as if the socket
		// were ready, before the timeout stands.
		gen := p.gen
		l.ready(p, unix.EPOLLIN|unix.EPOLLOUT, true)
		if p.gen == gen { // neither ended nor moved on to its next URL
			op := [...]string{connecting: "connect", writing: "write", reading: "read"}[p.state]
			l.end(p, down("%s: timeout", op))
		}
	}
}

// ready advances a probe whose socket reported events (or whose deadline
// came: last).
func (l *probeLoop) ready(p *loopProbe, events uint32, last bool) {
	const failed = unix.EPOLLERR | unix.EPOLLHUP
	if p.tcp != nil {
		l.tcpReady(p, events, last)
		return
	}
	if p.state != reading {
		if events&(unix.EPOLLOUT|failed) == 0 {
			return
		}
		if !l.write(p) {
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|failed) != 0 {
		l.read(p, events&unix.EPOLLRDHUP != 0, last)
	}
}

// tcpReady ends a TCP_CHECK whose connect finished (or whose deadline
// came: it asks the kernel once more).
func (l *probeLoop) tcpReady(p *loopProbe, events uint32, last bool) {
	if !last && events&(unix.EPOLLERR|unix.EPOLLHUP) == 0 && events&unix.EPOLLOUT != 0 {
		// EPOLLOUT without an error: tcp_poll reports it only once
		// the connection is established.
		l.end(p, up("connected"))
		return
	}
	if _, err := unix.Getpeername(p.fd); err == nil {
		if last {
			lastChanceSaved.Add(1)
		}
		l.end(p, up("connected"))
		return
	}
	v, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		l.end(p, down("%s", reason("connect", os.NewSyscallError("getsockopt", err))))
	case v != 0 && unix.Errno(v) != unix.EINPROGRESS && unix.Errno(v) != unix.EALREADY:
		l.end(p, down("%s", reason("connect", os.NewSyscallError("connect", unix.Errno(v)))))
	}
}

// write sends what is left of the request; it reports false when the
// probe ended or must wait.
func (l *probeLoop) write(p *loopProbe) bool {
	for p.wrote < len(p.req) {
		n, err := rawWrite(p.fd, p.req[p.wrote:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil && p.state == connecting:
			// The connect failed: the socket's error comes back here.
			l.end(p, down("%s", reason("connect", os.NewSyscallError("connect", err))))
			return false
		case err != nil:
			l.end(p, down("%s", reason("write", &os.PathError{Op: "write", Err: err})))
			return false
		}
		p.wrote += n
		p.state = writing
	}
	p.state = reading
	return true
}

// read takes what the socket holds. rdhup says the poll saw the server's
// close (so a short read drained it all).
func (l *probeLoop) read(p *loopProbe, rdhup, last bool) {
	for {
		n, err := rawRead(p.fd, l.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			l.end(p, down("%s", reason("read", &os.PathError{Op: "read", Err: err})))
			return
		case n == 0:
			l.eof(p, last)
			return
		}
		if err := p.parser.feed(l.buf[:n]); err != nil {
			l.end(p, down("%s", reason("read", err)))
			return
		}
		if n < len(l.buf) && !last {
			if rdhup {
				l.eof(p, last)
			}
			// Otherwise the socket is drained: edge-triggered epoll
			// reports whatever arrives next. (The last chance reads
			// on, to EAGAIN or the server's close.)
			return
		}
	}
}

// eof ends a URL at the server's close: judge it, then the next URL or
// the end of the attempt.
func (l *probeLoop) eof(p *loopProbe, last bool) {
	if last {
		lastChanceSaved.Add(1)
	}
	rawClose(p.fd)
	p.fd = -1
	resp, err := p.parser.finish()
	var r Result
	if err != nil {
		r = down("%s", reason("read", err))
	} else {
		r = p.http.URLs[p.url].judge(resp)
	}
	if !r.Up {
		l.end(p, p.http.urlFailed(p.url, r))
		return
	}
	if p.url+1 < len(p.http.URLs) {
		p.url++
		p.gen++
		l.open(p)
		return
	}
	l.end(p, up("")) // as (*HTTP).Check says a success
}

// end finishes the attempt with r and recycles the probe.
func (l *probeLoop) end(p *loopProbe, r Result) {
	l.done = append(l.done, attemptDone{id: p.id, d: l.now().Sub(p.start), res: r})
	l.release(p)
}

// cancel ends checker id's attempt, if one runs, without a result.
func (l *probeLoop) cancel(id int) {
	if p := l.byID[id]; p != nil {
		l.release(p)
	}
}

func (l *probeLoop) release(p *loopProbe) {
	if p.fd >= 0 {
		rawClose(p.fd) // also leaves the epoll set
		p.fd = -1
	}
	if p.hidx >= 0 {
		heap.Remove(&l.dl, p.hidx)
	}
	delete(l.byID, p.id)
	p.gen++
	p.http, p.tcp, p.req = nil, nil, nil
	p.parser.resp.body = nil
	if cap(p.parser.hdr) > 64<<10 {
		p.parser.hdr = nil
	}
	l.free = append(l.free, p)
}

// probeHeap orders the probes in flight by deadline.
type probeHeap []*loopProbe

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *probeHeap) Push(x any) {
	p := x.(*loopProbe)
	p.hidx = len(*h)
	*h = append(*h, p)
}
func (h *probeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.hidx = -1
	*h = old[:len(old)-1]
	return p
}
