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

// udpBudget is how many datagrams a socket passes on per event before the
// worker looks at its other sockets (level-triggered: the rest is
// reported again).
const udpBudget = 32

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
	for _, w := range dp.workers {
		fd, err := listenUDP(s.key.Addr)
		if err != nil {
			dp.closeListeners(s)
			return err
		}
		ln := &listener{svc: s, w: w, ep: endpoint{fd: fd, kind: kindUDP}, flows: map[netip.AddrPort]*udpFlow{}, hdr: udpHdr(s.key)}
		ln.ep.ln = ln
		var rerr error
		if !w.call(func() { rerr = w.addUDP(ln) }) {
			rerr = fmt.Errorf("worker stopped")
		}
		if rerr != nil {
			sysClose(fd)
			dp.closeListeners(s)
			return rerr
		}
		s.listeners = append(s.listeners, ln)
	}
	return nil
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
	for _, f := range ln.flows {
		w.dropFlow(f)
	}
	w.closeEP(&ln.ep)
	w.udp = slices.DeleteFunc(w.udp, func(l *listener) bool { return l == ln })
}

func (w *worker) udpBuf() []byte {
	if w.ubuf == nil {
		w.ubuf = make([]byte, udpBufSize)
	}
	return w.ubuf
}

// udpIn passes datagrams from clients on to their flows' destinations.
func (w *worker) udpIn(ln *listener) {
	buf := w.udpBuf()
	for range udpBudget {
		n, err := sysRecvfrom(ln.ep.fd, buf, &w.sa)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			continue // an ICMP error for an earlier reply; read on
		}
		w.udpForward(ln, buf[:n], addrFromRaw(&w.sa))
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

// udpOut passes replies of a flow's destination on to its client, from
// the VIP.
func (w *worker) udpOut(f *udpFlow) {
	buf := w.udpBuf()
	ln := f.ln
	for range udpBudget {
		var n int
		var err error
		if f.dest != nil {
			n, err = sysRead(f.ep.fd, buf)
		} else {
			n, err = sysRecvfrom(f.ep.fd, buf, &w.sa)
		}
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.ECONNREFUSED || err == unix.EHOSTUNREACH || err == unix.ENETUNREACH:
			continue // an ICMP error for an earlier datagram
		case err != nil:
			return
		}
		d := f.dest
		if d == nil {
			if d = ln.svc.destByAddr(addrFromRaw(&w.sa)); d == nil {
				continue // not from a destination of the service
			}
		}
		if _, err := sysSendto(ln.ep.fd, buf[:n], &f.csa); err != nil {
			continue
		}
		f.lastActive = mono(w.now)
		ln.svc.addStats(d, 0, 1, 0, uint64(n)+ln.hdr)
	}
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

func sysRecvfrom(fd int, p []byte, sa *unix.RawSockaddrAny) (int, error) {
	for {
		l := uint32(unix.SizeofSockaddrAny)
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&l)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
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
	if err := unix.Bind(fd, toSockaddr(ap)); err != nil {
		return fail(fmt.Sprintf("bind %s", ap), err)
	}
	return fd, nil
}
