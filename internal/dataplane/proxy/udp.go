package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// UDP runs on the same event loops as TCP. Each worker has its own socket
// bound to VIP:port (SO_REUSEPORT and IP_FREEBIND, so it may be bound
// before the VIP is local); the kernel hashes a datagram's addresses and
// ports to pick one of them, so every datagram of a client reaches the
// same worker, and that worker's flow table holds the client's flow.
// A flow has its own socket towards the destination, registered in the
// worker's epoll set: replies are told apart by socket and leave from the
// worker's VIP socket, with the VIP as source. A flow lives until no
// datagram passed either way for the udp timeout, like an IPVS UDP entry;
// the worker's tick (every second) expires it. No goroutine, lock or
// buffer belongs to a flow: a flow costs a udpFlow and a descriptor.
//
// With one-packet scheduling (ops) every datagram is scheduled on its
// own; the client's flow socket is then unconnected and accepts replies
// from any destination of the service.

// udpBufSize holds the largest datagram.
const udpBufSize = 64 << 10

// udpRcvBuf is the receive buffer asked for on a VIP socket.
const udpRcvBuf = 4 << 20

// udpBatch is how many datagrams one recvmmsg(2) takes from a VIP socket
// and one sendmmsg(2) sends from it. The sockets are level-triggered:
// what one call leaves is reported again, so no call is spent learning
// that a socket is empty.
const udpBatch = 32

// udpFlowBatch is how many replies one recvmmsg(2) takes from a flow's
// socket: a flow has one or a few replies waiting.
const udpFlowBatch = 4

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// udpVec is a vector of datagram slots for recvmmsg and sendmmsg, with
// their buffers and addresses; a worker has one for what it receives and
// one for the replies it has yet to send. A slot's buffer is the largest
// datagram; the memory is touched only as far as datagrams fill it.
type udpVec struct {
	hdrs  [udpBatch]mmsghdr
	iovs  [udpBatch]unix.Iovec
	names [udpBatch]unix.RawSockaddrAny
	bufs  [udpBatch][]byte
	dests [udpBatch]*destination // out: whose counters a sent reply adds to
	n     int                    // out: replies queued
	fd    int                    // out: the VIP socket they leave from
	ln    *listener              // out: its service
}

func newUDPVec() *udpVec {
	v := &udpVec{fd: -1}
	mem := make([]byte, udpBatch*udpBufSize)
	for i := range v.bufs {
		v.bufs[i] = mem[i*udpBufSize : (i+1)*udpBufSize : (i+1)*udpBufSize]
		v.iovs[i].Base = &v.bufs[i][0]
		v.iovs[i].SetLen(udpBufSize)
		v.hdrs[i].hdr.Iov = &v.iovs[i]
		v.hdrs[i].hdr.SetIovlen(1)
	}
	return v
}

// prepRecv readies slots from..to-1 for recvmmsg(2); the slots before
// from hold queued replies and keep their addresses and lengths.
func (v *udpVec) prepRecv(from, to int) {
	for i := from; i < to; i++ {
		v.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&v.names[i]))
		v.hdrs[i].hdr.Namelen = unix.SizeofSockaddrAny
		v.iovs[i].SetLen(udpBufSize)
	}
}

// udpFlow is one client's flow through a worker.
type udpFlow struct {
	ln         *listener
	ep         endpoint
	client     netip.AddrPort
	csa        sockaddr     // client, for sendto(2) on the VIP socket
	dest       *destination // nil with ops
	tmpl       *lvs.Template
	lastActive int64 // mono
}

// udpHdr is the IP and UDP header bytes charged per datagram.
func udpHdr(k lvs.ServiceKey) uint64 {
	if k.Addr.Addr().Unmap().Is4() {
		return 20 + 8
	}
	return 40 + 8
}

// startUDP opens a UDP service's socket in every worker.
func (dp *Dataplane) startUDP(s *service) error {
	return dp.openListeners(s, listenUDP, func(w *worker, fd int) (*listener, error) {
		ln := &listener{svc: s, w: w, ep: endpoint{fd: fd, kind: kindUDP}, flows: map[netip.AddrPort]*udpFlow{}, hdr: udpHdr(s.key)}
		ln.ep.ln = ln
		return ln, w.addUDP(ln)
	})
}

func (w *worker) addUDP(ln *listener) error {
	if err := w.register(&ln.ep, unix.EPOLLIN); err != nil {
		return err
	}
	w.udp = append(w.udp, ln)
	return nil
}

// removeUDP closes a UDP service's socket in this worker and every flow
// through it: replies could no longer leave from the VIP.
func (w *worker) removeUDP(ln *listener) {
	if w.uout != nil && w.uout.ln == ln {
		clear(w.uout.dests[:w.uout.n])
		w.uout.n, w.uout.fd, w.uout.ln = 0, -1, nil
	}
	for _, f := range ln.flows {
		w.dropFlow(f)
	}
	// Out of the epoll set before the close (see removeListener).
	if ln.ep.fd >= 0 {
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, ln.ep.fd, nil)
	}
	w.closeEP(&ln.ep)
	w.udp = slices.DeleteFunc(w.udp, func(l *listener) bool { return l == ln })
}

// udpVecs makes the worker's datagram vectors on first use.
func (w *worker) udpVecs() {
	if w.uin == nil {
		w.uin, w.uout = newUDPVec(), newUDPVec()
	}
}

// udpIn passes datagrams from clients on to their flows' destinations.
func (w *worker) udpIn(ln *listener) {
	w.udpVecs()
	v := w.uin
	v.prepRecv(0, udpBatch)
	k, err := sysRecvmmsg(ln.ep.fd, &v.hdrs[0], udpBatch)
	if err != nil {
		return // EAGAIN, or an ICMP error for an earlier reply: epoll says when to read on
	}
	for i := range k {
		w.udpForward(ln, v.bufs[i][:v.hdrs[i].n], addrFromRaw(&v.names[i]))
	}
}

func (w *worker) udpForward(ln *listener, p []byte, client netip.AddrPort) {
	s := ln.svc
	cfg := s.cfg.Load()
	ops := cfg.svc.Flags&lvs.FlagOnePacket != 0
	f := ln.flows[client]
	d := (*destination)(nil)
	if f != nil {
		d = f.dest
	}
	if ops || f == nil {
		s.mu.Lock()
		if s.removed {
			s.mu.Unlock()
			return
		}
		var t *lvs.Template
		d, t = s.pick(cfg, client, w.now, nil)
		if d == nil {
			s.noDest++
			s.mu.Unlock()
			return
		}
		s.bind(d, t, lvs.StateUDP, w.now)
		if ops {
			// One-packet scheduling: the entry lives for this datagram
			// only.
			s.unbind(d, t, lvs.StateUDP)
			if f == nil {
				f = w.newFlow(ln, client, nil, nil)
			}
		} else {
			f = w.newFlow(ln, client, d, t)
		}
		s.mu.Unlock()
		if f == nil {
			return
		}
	}
	f.lastActive = mono(w.now)
	var err error
	if ops {
		_, err = sysSendto(f.ep.fd, p, &d.sa)
	} else {
		_, err = sysWrite(f.ep.fd, p)
	}
	if err == nil {
		s.addStats(d, 1, 0, uint64(len(p))+ln.hdr, 0)
	}
}

// newFlow opens the flow's socket towards the destination (under s.mu).
// On failure the entry is uncounted and nil returned.
func (w *worker) newFlow(ln *listener, client netip.AddrPort, d *destination, t *lvs.Template) *udpFlow {
	s := ln.svc
	f := &udpFlow{ln: ln, client: client, csa: makeSockaddr(client), dest: d, tmpl: t, lastActive: mono(w.now)}
	f.ep = endpoint{fd: -1, kind: kindUDPFlow, uf: f}
	fd, err := sysSocketType(f.csa.af, unix.SOCK_DGRAM)
	if err == nil {
		f.ep.fd = fd
		if d != nil {
			err = sysConnect(fd, &d.sa)
		}
	}
	if err == nil {
		err = w.register(&f.ep, unix.EPOLLIN)
	}
	if err != nil {
		if f.ep.fd >= 0 {
			sysClose(f.ep.fd)
		}
		if d != nil {
			s.unbind(d, t, lvs.StateUDP)
		}
		if w.now.Sub(w.lastFlowLog) > 10*time.Second {
			w.lastFlowLog = w.now
			w.log.Warn("udp flow: cannot open a socket", "service", s.key.String(), "client", client, "err", err)
		}
		return nil
	}
	ln.flows[client] = f
	return f
}

// udpOut takes the replies waiting on a flow's socket and queues them to
// leave from the VIP socket; flushUDP sends the queue with one
// sendmmsg(2) when it is full and at the end of the worker's turn.
func (w *worker) udpOut(f *udpFlow) {
	w.udpVecs()
	ln := f.ln
	v := w.uout
	if v.n > 0 && v.fd != ln.ep.fd {
		w.flushUDP()
	}
	if v.n+udpFlowBatch > udpBatch {
		w.flushUDP()
	}
	// Read straight into the free slots of the queue: their addresses
	// are overwritten by the client's below.
	first := v.n
	v.prepRecv(first, first+udpFlowBatch)
	k, err := sysRecvmmsg(f.ep.fd, &v.hdrs[first], udpFlowBatch)
	if err != nil {
		// EAGAIN, or an ICMP error (ECONNREFUSED and friends) for an
		// earlier datagram: epoll reports what is left.
		return
	}
	for i := first; i < first+k; i++ {
		d := f.dest
		if d == nil {
			if d = ln.svc.destByAddr(addrFromRaw(&v.names[i])); d == nil {
				continue // not from a destination of the service
			}
		}
		j := v.n
		if j != i {
			v.bufs[i], v.bufs[j] = v.bufs[j], v.bufs[i]
			v.iovs[j].Base = &v.bufs[j][0]
			v.iovs[i].Base = &v.bufs[i][0]
		}
		v.iovs[j].SetLen(int(v.hdrs[i].n))
		v.hdrs[j].hdr.Name = (*byte)(unsafe.Pointer(&f.csa.raw[0]))
		v.hdrs[j].hdr.Namelen = f.csa.len
		v.dests[j] = d
		v.n++
	}
	v.fd, v.ln = ln.ep.fd, ln
	f.lastActive = mono(w.now)
}

// flushUDP sends the queued replies from their VIP socket. What the
// socket does not take now (its buffer is full) is dropped, as the
// kernel drops a datagram it cannot queue.
func (w *worker) flushUDP() {
	v := w.uout
	sent := 0
	for sent < v.n {
		k, err := sysSendmmsg(v.fd, &v.hdrs[sent], v.n-sent)
		if err != nil {
			break
		}
		for i := sent; i < sent+k; i++ {
			v.ln.svc.addStats(v.dests[i], 0, 1, 0, uint64(v.hdrs[i].n)+v.ln.hdr)
		}
		sent += k
	}
	clear(v.dests[:v.n])
	v.n, v.fd, v.ln = 0, -1, nil
}

func (s *service) destByAddr(ap netip.AddrPort) *destination {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.dests, func(d *destination) bool { return d.Addr == ap })
	if i < 0 {
		return nil
	}
	return s.dests[i]
}

// expireFlows closes flows idle for longer than the udp timeout.
func (w *worker) expireFlows(now int64) {
	for _, ln := range w.udp {
		timeout := ln.svc.cfg.Load().timeouts.UDP
		for _, f := range ln.flows {
			if time.Duration(now-f.lastActive) >= timeout {
				w.dropFlow(f)
			}
		}
	}
}

// dropFlow closes a flow and uncounts its entry.
func (w *worker) dropFlow(f *udpFlow) {
	ln := f.ln
	delete(ln.flows, f.client)
	w.closeEP(&f.ep)
	if f.dest != nil {
		s := ln.svc
		s.mu.Lock()
		s.unbind(f.dest, f.tmpl, lvs.StateUDP)
		s.mu.Unlock()
	}
}

// udpEntries lists the worker's flows; one-packet flows have no entry.
func (w *worker) udpEntries(now int64, out []lvs.ConnEntry) []lvs.ConnEntry {
	for _, ln := range w.udp {
		timeout := ln.svc.cfg.Load().timeouts.UDP
		for _, f := range ln.flows {
			if f.dest == nil {
				continue
			}
			left := max(timeout-time.Duration(now-f.lastActive), 0)
			out = append(out, lvs.ConnEntry{
				Proto: lvs.UDP, Expire: min(left, timeout), State: lvs.StateUDP.String(),
				Client: f.client, Virtual: ln.svc.key.Addr, Dest: f.dest.Addr,
			})
		}
	}
	return out
}

func sysRecvmmsg(fd int, h *mmsghdr, n int) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(h)), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

func sysSendmmsg(fd int, h *mmsghdr, n int) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(h)), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

func sysSendto(fd int, p []byte, sa *sockaddr) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

func sysSocketType(af, typ int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(af), uintptr(typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC), 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// listenUDP opens a non-blocking datagram socket on ap with IP_FREEBIND
// and SO_REUSEPORT: one per worker, and the kernel keeps each client on
// one of them.
func listenUDP(ap netip.AddrPort) (int, error) {
	v6 := !ap.Addr().Unmap().Is4()
	af := unix.AF_INET
	if v6 {
		af = unix.AF_INET6
	}
	fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("setsockopt SO_REUSEPORT", err)
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := freebind(fd, v6); err != nil {
		return fail("setsockopt IP_FREEBIND", err)
	}
	// Every client's datagrams queue on this socket: a burst from many
	// clients overflows the default buffer (about 200 KiB, some 270
	// datagrams). The kernel caps the size at net.core.rmem_max.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpRcvBuf)
	if err := unix.Bind(fd, toSockaddr(ap)); err != nil {
		return fail(fmt.Sprintf("bind %s", ap), err)
	}
	return fd, nil
}
