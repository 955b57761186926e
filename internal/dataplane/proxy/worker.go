package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// A worker is an event loop on its own OS thread, like an HAProxy thread:
// it owns an epoll instance, one SO_REUSEPORT listening socket per TCP
// service, and every connection accepted there. Nothing else touches its
// sockets, so the only locks on the data path are the per-service ones
// taken when a connection is scheduled or changes state. Other goroutines
// talk to it with commands (a queue and an eventfd to wake it).
//
// An idle connection costs a tcpConn (a few hundred bytes) and no
// goroutine, buffer or pipe: buffers and pipes are the worker's and are
// lent to a connection only while it has data in flight.
//
// Each loop runs on a locked OS thread and blocks in epoll_wait, so the
// kernel wakes it directly when something happens, as it wakes an HAProxy
// thread. New raises GOMAXPROCS to one more than the number of loops: with
// a P always free, the runtime's monitor leaves the Ps of loops waiting in
// epoll_wait alone instead of retaking them every 20 µs and starting
// threads (about a tenth of the CPU at high request rates, measured).
// Parking the loops in the runtime's poller instead avoids that too, but a
// wake-up then often takes two thread switches, which cost more
// throughput than it saved.

const (
	kindListener uint8 = iota + 1
	kindClient
	kindBackend
	kindWake
	kindUDP     // a UDP service's socket on VIP:port
	kindUDPFlow // a UDP flow's socket towards its destination

	tickEvery       = time.Second            // idle scan and counter sampling
	connectCheck    = 100 * time.Millisecond // connect timeout resolution
	readBufSize     = 16 << 10               // first read of a burst; a full one switches to splice
	pipeSize        = 64 << 10               // the kernel's default pipe capacity
	maxPipePool     = 256
	pumpBudget      = 64 // syscalls per connection per event before yielding to others
	acceptBatch     = 64
	listenerBackoff = 100 * time.Millisecond // after EMFILE and friends
)

type endpoint struct {
	fd       int
	gen      uint32
	kind     uint8
	readable bool
	writable bool
	hup      bool // the peer's FIN (or an error) arrived: read on until EOF or the error
	failed   bool // an error or hang-up was reported: the next call surfaces it
	c        *tcpConn
	ln       *listener
	uf       *udpFlow
}

// listener is a service's listening socket in one worker: a TCP
// listener, or a UDP service's socket with the flows through it.
type listener struct {
	svc    *service
	w      *worker
	ep     endpoint
	paused bool

	flows map[netip.AddrPort]*udpFlow // UDP: by client
	hdr   uint64                      // UDP: IP and UDP header bytes charged per datagram
}

type pipePair struct{ r, w int }

type worker struct {
	dp     *Dataplane
	log    *slog.Logger
	id     int
	epfd   int
	nready int
	wake   endpoint // eventfd

	mu     sync.Mutex
	cmds   []func()
	closed bool // the wake descriptor is closed: no more commands

	fds        []*endpoint // by file descriptor
	gen        uint32
	conns      []*tcpConn
	connecting []*tcpConn
	ready      []*tcpConn
	pipes      []pipePair
	paused     []*listener
	udp        []*listener // UDP services' sockets
	buf        []byte
	uin, uout  *udpVec // UDP datagrams in, and replies queued out; made on first use
	events     []unix.EpollEvent
	ev         unix.EpollEvent
	sa         unix.RawSockaddrAny
	ti         unix.TCPInfo
	now        time.Time
	nextTick   time.Time
	stopping   bool
	done       chan struct{}

	lastAcceptLog time.Time
	lastFlowLog   time.Time
}

func newWorker(dp *Dataplane, id int) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &worker{
		dp: dp, log: dp.log.With("worker", id), id: id, epfd: epfd,
		buf: make([]byte, readBufSize), events: make([]unix.EpollEvent, 256),
		done: make(chan struct{}), now: time.Now(),
	}
	w.wake = endpoint{fd: efd, kind: kindWake}
	if err := w.register(&w.wake, unix.EPOLLIN); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	w.nextTick = w.now.Add(tickEvery)
	return w, nil
}

// poll collects ready events without blocking.
func (w *worker) poll(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&w.events[0])), uintptr(len(w.events)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			w.log.Error("epoll_wait failed", "err", e)
			return false
		}
		w.nready = int(n)
		return n > 0
	}
}

// do queues fn to run on the worker's goroutine.
func (w *worker) do(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.cmds = append(w.cmds, fn)
	one := uint64(1)
	sysWrite(w.wake.fd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// call runs fn on the worker and waits for it; it returns false when the
// worker has stopped.
func (w *worker) call(fn func()) bool {
	done := make(chan struct{})
	w.do(func() { fn(); close(done) })
	select {
	case <-done:
		return true
	case <-w.done:
		return false
	}
}

func (w *worker) runCmds() {
	var b [8]byte
	sysRead(w.wake.fd, b[:])
	w.mu.Lock()
	cmds := w.cmds
	w.cmds = nil
	w.mu.Unlock()
	for _, fn := range cmds {
		fn()
	}
}

func (w *worker) register(ep *endpoint, events uint32) error {
	w.gen++
	ep.gen = w.gen
	if ep.fd >= len(w.fds) {
		n := max(ep.fd+1, 2*len(w.fds), 1024)
		nf := make([]*endpoint, n)
		copy(nf, w.fds)
		w.fds = nf
	}
	w.fds[ep.fd] = ep
	w.ev = unix.EpollEvent{Events: events, Fd: int32(ep.fd), Pad: int32(ep.gen)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(w.epfd), unix.EPOLL_CTL_ADD, uintptr(ep.fd), uintptr(unsafe.Pointer(&w.ev)), 0, 0)
	if e != 0 {
		w.fds[ep.fd] = nil
		return fmt.Errorf("epoll_ctl add: %w", e)
	}
	return nil
}

func (w *worker) modify(ep *endpoint, events uint32) {
	w.ev = unix.EpollEvent{Events: events, Fd: int32(ep.fd), Pad: int32(ep.gen)}
	unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(w.epfd), unix.EPOLL_CTL_MOD, uintptr(ep.fd), uintptr(unsafe.Pointer(&w.ev)), 0, 0)
}

// closeEP forgets and closes an endpoint's descriptor; close(2) also
// removes it from the epoll set.
func (w *worker) closeEP(ep *endpoint) {
	if ep.fd < 0 {
		return
	}
	if ep.fd < len(w.fds) && w.fds[ep.fd] == ep {
		w.fds[ep.fd] = nil
	}
	sysClose(ep.fd)
	ep.fd = -1
}

func (w *worker) run() {
	runtime.LockOSThread()
	defer close(w.done)
	busy := false
	for !w.stopping {
		w.nready = 0
		// After a busy turn, look once more without sleeping: under load
		// events arrived meanwhile, and a poll costs less than a sleep
		// and a wake-up.
		if len(w.ready) > 0 || busy {
			w.poll(uintptr(w.epfd))
		}
		if w.nready == 0 && len(w.ready) == 0 {
			ms := int((time.Until(w.wakeAt()) + time.Millisecond - 1) / time.Millisecond)
			n, err := unix.EpollWait(w.epfd, w.events, max(ms, 0))
			switch {
			case err == nil:
				w.nready = n
			case !errors.Is(err, unix.EINTR):
				w.log.Error("epoll_wait failed", "err", err)
				time.Sleep(10 * time.Millisecond)
			}
		}
		busy = w.nready > 0
		w.now = time.Now()
		for i := 0; i < w.nready; i++ {
			w.dispatch(&w.events[i])
		}
		w.runReady()
		if w.uout != nil && w.uout.n > 0 {
			w.flushUDP()
		}
		if len(w.connecting) > 0 {
			w.checkConnecting()
		}
		if !w.now.Before(w.nextTick) {
			w.tick()
			w.nextTick = w.now.Add(tickEvery)
		}
	}
	w.shutdown()
}

// wakeAt is when the worker must wake without events: the next tick, or
// sooner to enforce connect timeouts.
func (w *worker) wakeAt() time.Time {
	t := w.nextTick
	if len(w.connecting) > 0 {
		if c := w.now.Add(connectCheck); c.Before(t) {
			t = c
		}
	}
	return t
}

func (w *worker) dispatch(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd >= len(w.fds) {
		return
	}
	ep := w.fds[fd]
	if ep == nil || ep.gen != uint32(ev.Pad) {
		return // closed (and maybe reused) since the event was queued
	}
	switch ep.kind {
	case kindWake:
		w.runCmds()
	case kindListener:
		w.accept(ep.ln)
	case kindUDP:
		w.udpIn(ep.ln)
	case kindUDPFlow:
		w.udpOut(ep.uf)
	default:
		e := ev.Events
		if e&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ep.readable = true
		}
		if e&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ep.writable = true
		}
		if e&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ep.hup = true
		}
		if e&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			ep.failed = true
		}
		c := ep.c
		if c.connecting {
			if ep.kind == kindBackend && ep.writable {
				w.connectDone(c)
			}
			return
		}
		w.pumpBoth(c)
	}
}

func (w *worker) runReady() {
	for len(w.ready) > 0 {
		r := w.ready
		w.ready = nil
		for _, c := range r {
			c.queued = false
			if !c.closed {
				w.pumpBoth(c)
			}
		}
		if len(w.ready) > 0 {
			return // more next turn, after polling for other events
		}
	}
}

func (w *worker) accept(ln *listener) {
	for range acceptBatch {
		fd, err := sysAccept(ln.ep.fd, &w.sa)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR:
			case unix.ECONNABORTED:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors or memory: stop accepting for a
				// moment rather than spin on a level-triggered listener.
				if !ln.paused {
					ln.paused = true
					w.paused = append(w.paused, ln)
					w.modify(&ln.ep, 0)
				}
				if w.now.Sub(w.lastAcceptLog) > 10*time.Second {
					w.lastAcceptLog = w.now
					w.log.Warn("accept failed; pausing the listener", "service", ln.svc.key.String(), "err", err)
				}
			default:
				w.log.Warn("accept failed", "service", ln.svc.key.String(), "err", err)
			}
			return
		}
		w.newConn(ln.svc, fd, addrFromRaw(&w.sa))
	}
}

func (w *worker) addListener(ln *listener) error {
	return w.register(&ln.ep, unix.EPOLLIN)
}

func (w *worker) removeListener(ln *listener) {
	// Out of the epoll set first: close(2) only drops the registration
	// when no other descriptor shares the socket, and after an upgrade
	// passed it on, another process's does (the stale registration
	// would keep waking this loop for connections it must not take).
	if ln.ep.fd >= 0 {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, ln.ep.fd, nil)
	}
	w.closeEP(&ln.ep)
}

func (w *worker) getPipe(f *flow) bool {
	if f.pr >= 0 {
		return true
	}
	if n := len(w.pipes); n > 0 {
		p := w.pipes[n-1]
		w.pipes = w.pipes[:n-1]
		f.pr, f.pw = p.r, p.w
		return true
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return false
	}
	f.pr, f.pw = p[0], p[1]
	return true
}

// putPipe takes an empty pipe back; one with data in it is closed.
func (w *worker) putPipe(f *flow) {
	if f.pr < 0 {
		return
	}
	if f.inPipe == 0 && len(w.pipes) < maxPipePool {
		w.pipes = append(w.pipes, pipePair{f.pr, f.pw})
	} else {
		sysClose(f.pr)
		sysClose(f.pw)
	}
	f.pr, f.pw, f.inPipe = -1, -1, 0
}

// tick expires idle connections, samples counters of busy ones and
// resumes paused listeners.
func (w *worker) tick() {
	now := mono(w.now)
	for i := len(w.conns) - 1; i >= 0; i-- {
		if i >= len(w.conns) {
			continue
		}
		c := w.conns[i]
		if c.connecting {
			continue
		}
		cfg := c.svc.cfg.Load()
		if time.Duration(now-c.lastActive) >= cfg.timeouts.Timeout(lvs.TCP, c.state) {
			w.expire(c)
			continue
		}
		if c.dirty {
			w.sample(c, false)
		}
	}
	w.expireFlows(now)
	for _, ln := range w.paused {
		if ln.ep.fd >= 0 {
			ln.paused = false
			w.modify(&ln.ep, unix.EPOLLIN)
		}
	}
	w.paused = w.paused[:0]
	if len(w.pipes) > maxPipePool/4 {
		// Return idle pipes to the kernel slowly after a burst.
		p := w.pipes[len(w.pipes)-1]
		w.pipes = w.pipes[:len(w.pipes)-1]
		sysClose(p.r)
		sysClose(p.w)
	}
}

func (w *worker) checkConnecting() {
	now := mono(w.now)
	for i := len(w.connecting) - 1; i >= 0; i-- {
		if i >= len(w.connecting) {
			continue
		}
		c := w.connecting[i]
		if now >= c.deadline {
			w.dialFailed(c, unix.ETIMEDOUT)
		}
	}
}

// entries lists the worker's live connections.
func (w *worker) entries(now time.Time, out []lvs.ConnEntry) []lvs.ConnEntry {
	m := mono(now)
	for _, c := range w.conns {
		cfg := c.svc.cfg.Load()
		left := cfg.timeouts.Timeout(lvs.TCP, c.state) - time.Duration(m-c.lastActive)
		if c.connecting {
			left = time.Duration(c.deadline - m)
		}
		if left < 0 {
			left = 0
		}
		out = append(out, lvs.ConnEntry{
			Proto: lvs.TCP, Expire: left, State: c.state.String(),
			Client: c.client, Virtual: c.svc.key.Addr, Dest: c.dest.Addr,
		})
	}
	return w.udpEntries(m, out)
}

// shutdown closes everything the worker owns when the data plane closes.
func (w *worker) shutdown() {
	for len(w.conns) > 0 {
		w.finish(w.conns[len(w.conns)-1], true)
	}
	for len(w.udp) > 0 {
		w.removeUDP(w.udp[0])
	}
	for _, ep := range w.fds {
		if ep != nil && ep.kind == kindListener {
			w.closeEP(ep)
		}
	}
	for _, p := range w.pipes {
		sysClose(p.r)
		sysClose(p.w)
	}
	w.pipes = nil
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.closeEP(&w.wake)
	unix.Close(w.epfd)
}
