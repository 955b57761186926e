package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// udpService proxies a UDP service. Datagrams arrive on one socket bound
// to VIP:port (with IP_FREEBIND, so it may be bound before the VIP is
// local); each client address gets a flow with its own socket towards the
// destination, so replies are told apart by socket and leave from the
// VIP's socket, with the VIP as source. A flow lives until no datagram
// passed either way for the udp timeout, like an IPVS UDP entry.
//
// With one-packet scheduling (ops) every datagram is scheduled on its
// own; the client's flow socket is then unconnected and accepts replies
// from any destination of the service.
type udpService struct {
	svc   *service
	log   interface{ Warn(string, ...any) }
	conn  *net.UDPConn
	hdr   uint64 // IP and UDP header bytes charged per datagram
	flows map[netip.AddrPort]*udpFlow
	done  chan struct{}
}

type udpFlow struct {
	u          *udpService
	client     netip.AddrPort
	dest       *destination // nil with ops
	tmpl       *lvs.Template
	sock       *net.UDPConn
	rc         syscall.RawConn
	onReady    func(fd uintptr) bool
	lastActive atomic.Int64 // mono
	closed     bool         // svc.mu
}

var udpBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func startUDP(dp *Dataplane, s *service, inherited int) (*udpService, error) {
	a := s.key.Addr
	network, hdr := "udp4", uint64(20+8)
	if !a.Addr().Unmap().Is4() {
		network, hdr = "udp6", 40+8
	}
	if inherited >= 0 {
		uc, err := udpConnFrom(inherited)
		if err != nil {
			return nil, fmt.Errorf("inherited socket: %w", err)
		}
		u := &udpService{svc: s, log: dp.log, conn: uc, hdr: hdr, flows: map[netip.AddrPort]*udpFlow{}, done: make(chan struct{})}
		go u.readLoop()
		return u, nil
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = freebind(int(fd), network == "udp6") })
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, a.String())
	if err != nil {
		return nil, err
	}
	u := &udpService{svc: s, log: dp.log, conn: pc.(*net.UDPConn), hdr: hdr, flows: map[netip.AddrPort]*udpFlow{}, done: make(chan struct{})}
	go u.readLoop()
	return u, nil
}

func (u *udpService) readLoop() {
	defer close(u.done)
	buf := make([]byte, 64<<10)
	for {
		n, client, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.handle(buf[:n], netip.AddrPortFrom(client.Addr().Unmap(), client.Port()))
	}
}

func (u *udpService) handle(p []byte, client netip.AddrPort) {
	s := u.svc
	cfg := s.cfg.Load()
	now := time.Now()
	ops := cfg.svc.Flags&lvs.FlagOnePacket != 0
	s.mu.Lock()
	if s.removed {
		s.mu.Unlock()
		return
	}
	f := u.flows[client]
	var d *destination
	switch {
	case ops || f == nil:
		var t *lvs.Template
		d, t = s.pick(cfg, client, now, nil)
		if d == nil {
			s.noDest++
			s.mu.Unlock()
			return
		}
		s.bind(d, t, lvs.StateUDP, now)
		switch {
		case ops:
			// One-packet scheduling: the entry lives for this datagram
			// only.
			s.unbind(d, t, lvs.StateUDP)
			if f == nil {
				f = u.newFlow(client, nil, nil, now)
			}
		default:
			f = u.newFlow(client, d, t, now)
		}
	default:
		d = f.dest
	}
	s.mu.Unlock()
	if f == nil {
		return
	}
	f.lastActive.Store(mono(now))
	var err error
	if ops {
		_, err = f.sock.WriteToUDPAddrPort(p, d.Addr)
	} else {
		_, err = f.sock.Write(p)
	}
	if err == nil {
		s.addStats(d, 1, 0, uint64(len(p))+u.hdr, 0)
	}
}

// newFlow opens the flow's socket towards the destination (under s.mu).
// On failure the entry is uncounted and nil returned.
func (u *udpService) newFlow(client netip.AddrPort, d *destination, t *lvs.Template, now time.Time) *udpFlow {
	f := &udpFlow{u: u, client: client, dest: d, tmpl: t}
	var err error
	if d != nil {
		f.sock, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(d.Addr))
	} else {
		network := "udp4"
		if !u.svc.key.Addr.Addr().Unmap().Is4() {
			network = "udp6"
		}
		f.sock, err = net.ListenUDP(network, nil)
	}
	if err == nil {
		f.rc, err = f.sock.SyscallConn()
	}
	if err != nil {
		if f.sock != nil {
			f.sock.Close()
		}
		if d != nil {
			u.svc.unbind(d, t, lvs.StateUDP)
		}
		u.log.Warn("udp flow: cannot open a socket", "service", u.svc.key.String(), "client", client, "err", err)
		return nil
	}
	f.lastActive.Store(mono(now))
	f.onReady = f.relay
	u.flows[client] = f
	go f.replyLoop()
	return f
}

// replyLoop waits for replies without holding a buffer: RawConn.Read calls
// relay when the socket is readable, relay borrows a buffer from the pool
// for as long as there are datagrams to pass on.
func (f *udpFlow) replyLoop() {
	for {
		if err := f.rc.Read(f.onReady); err != nil {
			return
		}
		if f.isClosed() {
			return
		}
	}
}

func (f *udpFlow) isClosed() bool {
	f.u.svc.mu.Lock()
	defer f.u.svc.mu.Unlock()
	return f.closed
}

func (f *udpFlow) relay(fd uintptr) bool {
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	buf := *bp
	for {
		var n int
		var err error
		var from unix.Sockaddr
		if f.dest != nil {
			n, err = unix.Read(int(fd), buf)
		} else {
			n, from, err = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		}
		switch {
		case err == unix.EAGAIN:
			return false
		case err == unix.ECONNREFUSED || err == unix.EHOSTUNREACH || err == unix.ENETUNREACH:
			continue // an ICMP error for an earlier datagram
		case err != nil:
			return true
		}
		d := f.dest
		if d == nil {
			if d = f.u.destByAddr(from); d == nil {
				continue // not from a destination of the service
			}
		}
		if _, err := f.u.conn.WriteToUDPAddrPort(buf[:n], f.client); err != nil {
			continue
		}
		f.lastActive.Store(mono(time.Now()))
		f.u.svc.addStats(d, 0, 1, 0, uint64(n)+f.u.hdr)
	}
}

func (u *udpService) destByAddr(sa unix.Sockaddr) *destination {
	var ap netip.AddrPort
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	default:
		return nil
	}
	s := u.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.dests, func(d *destination) bool { return d.Addr == ap })
	if i < 0 {
		return nil
	}
	return s.dests[i]
}

// expire closes flows idle for longer than the udp timeout.
func (u *udpService) expire(now time.Time) {
	s := u.svc
	timeout := s.cfg.Load().timeouts.UDP
	m := mono(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range u.flows {
		if time.Duration(m-f.lastActive.Load()) >= timeout {
			u.drop(k, f)
		}
	}
}

func (u *udpService) drop(k netip.AddrPort, f *udpFlow) {
	delete(u.flows, k)
	f.closed = true
	f.sock.Close()
	if f.dest != nil {
		u.svc.unbind(f.dest, f.tmpl, lvs.StateUDP)
	}
}

// close stops the service: its socket and every flow.
func (u *udpService) close() {
	u.conn.Close()
	<-u.done
	s := u.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range u.flows {
		u.drop(k, f)
	}
}

// entries lists the flows (under s.mu); one-packet flows have no entry.
func (u *udpService) entries(now time.Time, out []lvs.ConnEntry) []lvs.ConnEntry {
	timeout := u.svc.cfg.Load().timeouts.UDP
	m := mono(now)
	for _, f := range u.flows {
		if f.dest == nil {
			continue
		}
		// A packet may arrive after now was read (lastActive is updated
		// by the flow's goroutine without s.mu): such a flow has its
		// whole timeout left, not more.
		idle := max(time.Duration(m-f.lastActive.Load()), 0)
		left := max(timeout-idle, 0)
		out = append(out, lvs.ConnEntry{
			Proto: lvs.UDP, Expire: left, State: lvs.StateUDP.String(),
			Client: f.client, Virtual: u.svc.key.Addr, Dest: f.dest.Addr,
		})
	}
	return out
}
