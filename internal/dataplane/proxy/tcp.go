package proxy

import (
	"net"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// maxAttempts is how many destinations a new connection tries when
// connecting fails (IPVS cannot retry: the client's SYN went to one real
// server). Each failed attempt stays in the table in CLOSE on its
// destination, as the kernel's entry would after the server's reset.
const maxAttempts = 3

// flow is one direction of a proxied connection.
type flow struct {
	pr, pw int  // pipe lent by the worker while data is in it, else -1
	inPipe int  // bytes in the pipe
	eof    bool // the source sent FIN
	shut   bool // FIN passed on (shutdown(SHUT_WR) of the destination side)
	bulk   bool // the last read filled the buffer: splice until the source is drained
}

// tcpConn is a proxied TCP connection: the client's socket, the socket to
// the destination and IPVS's view of it (state, destination, template).
type tcpConn struct {
	svc  *service
	dest *destination
	tmpl *lvs.Template

	cl, be   endpoint
	up, down flow // client to destination, destination to client

	client     netip.AddrPort
	state      lvs.ConnState // written by the worker under svc.mu
	lastActive int64         // mono; refreshed whenever data moves
	deadline   int64         // mono; while connecting
	pp         []byte        // PROXY protocol header still to send

	connecting, closed, queued, dirty bool
	widx, cidx                        int // positions in the worker's lists
	triedBuf                          [maxAttempts]*destination
	tried                             []*destination

	// Last TCP_INFO sample of the client socket, for counter deltas.
	segsIn, segsOut   uint32
	bytesIn, bytesOut uint64
}

func (w *worker) newConn(s *service, fd int, client netip.AddrPort) {
	cfg := s.cfg.Load()
	s.mu.Lock()
	var d *destination
	var t *lvs.Template
	if !s.removed {
		d, t = s.pick(cfg, client, w.now, nil)
	}
	if d == nil {
		s.noDest++
		s.mu.Unlock()
		setRST(fd)
		sysClose(fd)
		return
	}
	s.bind(d, t, lvs.StateSynRecv, w.now)
	s.mu.Unlock()

	c := &tcpConn{svc: s, dest: d, tmpl: t, client: client, state: lvs.StateSynRecv, lastActive: mono(w.now)}
	c.tried = c.triedBuf[:0]
	c.up.pr, c.up.pw, c.down.pr, c.down.pw = -1, -1, -1, -1
	c.cl = endpoint{fd: fd, kind: kindClient, c: c}
	c.be = endpoint{fd: -1, kind: kindBackend, c: c}
	c.widx = len(w.conns)
	w.conns = append(w.conns, c)
	if err := w.register(&c.cl, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET); err != nil {
		w.finish(c, true)
		return
	}
	w.dial(c)
}

// dial starts a non-blocking connect to c.dest.
func (w *worker) dial(c *tcpConn) {
	fd, err := sysSocket(c.dest.sa.af)
	if err != nil {
		w.dialFailed(c, err)
		return
	}
	setInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c.be.fd, c.be.readable, c.be.writable, c.be.hup, c.be.failed = fd, false, false, false, false
	err = sysConnect(fd, &c.dest.sa)
	if err != nil && err != unix.EINPROGRESS {
		w.closeEP(&c.be)
		w.dialFailed(c, err)
		return
	}
	if err := w.register(&c.be, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP|unix.EPOLLET); err != nil {
		w.closeEP(&c.be)
		w.dialFailed(c, err)
		return
	}
	c.deadline = mono(w.now) + int64(c.svc.cfg.Load().connect)
	if !c.connecting {
		c.connecting = true
		c.cidx = len(w.connecting)
		w.connecting = append(w.connecting, c)
	}
}

func (w *worker) stopConnecting(c *tcpConn) {
	if !c.connecting {
		return
	}
	c.connecting = false
	last := len(w.connecting) - 1
	w.connecting[c.cidx] = w.connecting[last]
	w.connecting[c.cidx].cidx = c.cidx
	w.connecting[last] = nil
	w.connecting = w.connecting[:last]
}

// connectDone handles the first writability of the destination socket:
// the connect finished. Without an error or hang-up in the event it
// succeeded (the kernel reports a failed connect with EPOLLERR), so only a
// failure costs a getsockopt to learn why.
func (w *worker) connectDone(c *tcpConn) {
	if c.be.failed {
		soerr, err := getInt(c.be.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil {
			err = unix.Errno(soerr)
			if soerr == 0 {
				err = unix.ECONNRESET
			}
		}
		w.dialFailed(c, err)
		return
	}
	w.established(c)
}

// dialFailed records the failed attempt and tries another destination.
func (w *worker) dialFailed(c *tcpConn, cause error) {
	w.closeEP(&c.be)
	s := c.svc
	cfg := s.cfg.Load()
	failed := c.dest
	s.mu.Lock()
	failed.MoveConn(c.state, lvs.StateClose)
	s.linger[lingerClose].push(newLingerRec(c.client, lvs.StateClose, w.now.Add(cfg.timeouts.Timeout(lvs.TCP, lvs.StateClose)), failed, c.tmpl), s)
	c.tried = append(c.tried, failed)
	var d *destination
	var t *lvs.Template
	if len(c.tried) < maxAttempts && !s.removed {
		d, t = s.pick(cfg, c.client, w.now, c.tried)
		if d != nil {
			s.bind(d, t, lvs.StateSynRecv, w.now)
		}
	}
	s.mu.Unlock()
	w.log.Debug("connect failed", "service", s.key.String(), "client", c.client, "dest", failed.Addr, "err", cause, "retry", d != nil)
	c.dest, c.tmpl = d, t
	if d == nil {
		w.stopConnecting(c)
		c.dest = nil
		w.finish(c, true)
		return
	}
	w.dial(c)
}

func (w *worker) established(c *tcpConn) {
	w.stopConnecting(c)
	s := c.svc
	s.mu.Lock()
	c.dest.MoveConn(c.state, lvs.StateEstablished)
	c.state = c.state.Next(lvs.EvEstablished)
	s.mu.Unlock()
	c.lastActive = mono(w.now)
	if v := s.cfg.Load().svc.ProxyProtocol; v != 0 {
		c.pp = proxyHeader(v, c.client, s.key.Addr)
	}
	w.pumpBoth(c)
}

// proxyHeader builds the PROXY protocol header announcing the client to
// the destination.
func proxyHeader(version int, client, vip netip.AddrPort) []byte {
	h := proxyproto.HeaderProxyFromAddrs(byte(version), net.TCPAddrFromAddrPort(client), net.TCPAddrFromAddrPort(vip))
	b, err := h.Format()
	if err != nil {
		return nil
	}
	return b
}

func (w *worker) pumpBoth(c *tcpConn) {
	w.pump(c, &c.up, &c.cl, &c.be, lvs.EvClientFin)
	if c.closed {
		return
	}
	w.pump(c, &c.down, &c.be, &c.cl, lvs.EvServerFin)
	if !c.closed && c.up.shut && c.down.shut {
		w.finish(c, false)
	}
}

// pump moves data from src to dst until src is drained or dst is full.
// Small reads go through the worker's buffer (read+write: one system call
// each way and an empty socket is known without a further read); a read
// that fills the buffer switches to splice(2) through a pipe, so bulk data
// never enters user space. Whatever dst cannot take waits in the pipe.
func (w *worker) pump(c *tcpConn, f *flow, src, dst *endpoint, fin lvs.ConnEvent) {
	if len(c.pp) > 0 && f == &c.up {
		if !dst.writable {
			return
		}
		n, err := sysWrite(dst.fd, c.pp)
		if err != nil && err != unix.EAGAIN {
			w.finish(c, true)
			return
		}
		c.pp = c.pp[n:]
		if len(c.pp) > 0 {
			dst.writable = false
			return
		}
		c.pp = nil
	}
	// When the source's FIN already arrived, what is read now is the end:
	// hold it back (MSG_MORE) so the FIN passed on next rides on the same
	// segment instead of costing one of its own.
	more, smore := 0, 0
	if src.hup {
		more, smore = unix.MSG_MORE, unix.SPLICE_F_MORE
	}
	for range pumpBudget {
		if f.inPipe > 0 {
			if !dst.writable {
				return
			}
			n, err := sysSplice(f.pr, dst.fd, f.inPipe, smore)
			if err == unix.EAGAIN {
				dst.writable = false
				return
			}
			if err != nil {
				w.finish(c, true)
				return
			}
			f.inPipe -= n
			c.lastActive, c.dirty = mono(w.now), true
			if f.inPipe > 0 {
				continue
			}
			w.putPipe(f)
		}
		if f.eof {
			if !f.shut {
				f.shut = true
				// When the other way is done too the connection closes
				// now, and close(2) sends the FIN: skip the shutdown.
				if (f == &c.up && !c.down.shut) || (f == &c.down && !c.up.shut) {
					sysShutdownWrite(dst.fd)
				}
				w.transition(c, fin)
			}
			return
		}
		if !src.readable {
			return
		}
		if !f.bulk || !w.getPipe(f) {
			n, err := sysRead(src.fd, w.buf)
			switch {
			case err == unix.EAGAIN:
				src.readable = false
				return
			case err != nil:
				w.finish(c, true)
				return
			case n == 0:
				f.eof = true
				continue
			}
			c.lastActive, c.dirty = mono(w.now), true
			m := 0
			if dst.writable {
				m, err = sysSend(dst.fd, w.buf[:n], more)
				if err == unix.EAGAIN {
					m = 0
				} else if err != nil {
					w.finish(c, true)
					return
				}
			}
			if m < n {
				// Park the rest in a pipe (it is empty here and holds
				// more than the buffer) until dst is writable again.
				if !w.getPipe(f) {
					w.finish(c, true)
					return
				}
				k, err := sysWrite(f.pw, w.buf[m:n])
				if err != nil || k != n-m {
					w.finish(c, true)
					return
				}
				f.inPipe = k
				dst.writable = false
				return
			}
			if n < len(w.buf) {
				// A short read took everything queued: the socket is
				// drained and edge-triggered epoll reports new data. A
				// FIN that came with the data spent its edge already: it
				// is the end of the stream (no further read needed for
				// the EOF). An error that came with it is read next.
				switch {
				case src.failed:
					continue
				case src.hup:
					f.eof = true
					continue
				}
				src.readable = false
				return
			}
			f.bulk = true
			continue
		}
		n, err := sysSplice(src.fd, f.pw, pipeSize, 0)
		switch {
		case err == unix.EAGAIN:
			src.readable = false
			f.bulk = false
			w.putPipe(f)
			return
		case err != nil:
			w.finish(c, true)
			return
		case n == 0:
			w.putPipe(f)
			f.eof = true
			continue
		}
		f.inPipe = n
		c.lastActive, c.dirty = mono(w.now), true
	}
	// Budget spent: let the other connections of this worker run first.
	if !c.queued {
		c.queued = true
		w.ready = append(w.ready, c)
	}
}

// transition applies a FIN to the connection's state and its
// destination's active/inactive counts.
func (w *worker) transition(c *tcpConn, ev lvs.ConnEvent) {
	s := c.svc
	s.mu.Lock()
	to := c.state.Next(ev)
	c.dest.MoveConn(c.state, to)
	c.state = to
	s.mu.Unlock()
}

// finish closes a connection, normally (both FINs passed on) or with a
// reset, and leaves its entry lingering in TIME_WAIT or CLOSE as IPVS
// does.
func (w *worker) finish(c *tcpConn, reset bool) {
	if c.closed {
		return
	}
	w.release(c, reset)
	if c.dest == nil {
		return
	}
	s := c.svc
	to := lvs.StateTimeWait
	q := lingerTimeWait
	if reset {
		to, q = lvs.StateClose, lingerClose
	}
	timeout := s.cfg.Load().timeouts.Timeout(lvs.TCP, to)
	s.mu.Lock()
	c.dest.MoveConn(c.state, to)
	c.state = to
	s.linger[q].push(newLingerRec(c.client, to, w.now.Add(timeout), c.dest, c.tmpl), s)
	s.mu.Unlock()
}

// expire drops a connection whose entry timed out: the kernel forgets the
// entry and the client's next segment meets a reset; the proxy resets
// both sides at once.
func (w *worker) expire(c *tcpConn) {
	w.release(c, true)
	s := c.svc
	s.mu.Lock()
	s.unbind(c.dest, c.tmpl, c.state)
	s.mu.Unlock()
}

// release closes the sockets and pipes of c and forgets it.
func (w *worker) release(c *tcpConn, reset bool) {
	c.closed = true
	if c.dest != nil && c.cl.fd >= 0 {
		w.sample(c, true)
	}
	if reset {
		if c.cl.fd >= 0 {
			setRST(c.cl.fd)
		}
		if c.be.fd >= 0 {
			setRST(c.be.fd)
		}
	}
	w.closeEP(&c.cl)
	w.closeEP(&c.be)
	w.putPipe(&c.up)
	w.putPipe(&c.down)
	w.stopConnecting(c)
	last := len(w.conns) - 1
	w.conns[c.widx] = w.conns[last]
	w.conns[c.widx].widx = c.widx
	w.conns[last] = nil
	w.conns = w.conns[:last]
}

// sample adds what the client's socket saw since the last sample to the
// counters. IPVS counts IP packets and their full length on the VIP side;
// TCP_INFO gives the kernel's own segment and payload counts for the
// client's connection, and each segment is charged its IP and TCP header
// (with the timestamp option when negotiated). The final sample, taken
// just before the socket is closed, also charges what is still queued
// unsent: the kernel sends it after the close, where TCP_INFO cannot see.
func (w *worker) sample(c *tcpConn, final bool) {
	c.dirty = false
	if getTCPInfo(c.cl.fd, &w.ti) != nil {
		return
	}
	ti := &w.ti
	hdr := uint64(20 + 20)
	if !c.client.Addr().Is4() {
		hdr = 40 + 20
	}
	if ti.Options&1 != 0 { // TCPI_OPT_TIMESTAMPS
		hdr += 12
	}
	sent := ti.Bytes_sent
	if sent == 0 {
		sent = ti.Bytes_acked
	}
	dIn := uint64(ti.Segs_in - c.segsIn)
	dOut := uint64(ti.Segs_out - c.segsOut)
	dbIn := ti.Bytes_received - c.bytesIn
	dbOut := sent - c.bytesOut
	c.segsIn, c.segsOut, c.bytesIn, c.bytesOut = ti.Segs_in, ti.Segs_out, ti.Bytes_received, sent
	if final && ti.Notsent_bytes > 0 {
		mss := uint64(max(ti.Snd_mss, 536))
		dbOut += uint64(ti.Notsent_bytes)
		dOut += (uint64(ti.Notsent_bytes) + mss - 1) / mss
	}
	c.svc.addStats(c.dest, dIn, dOut, dbIn+dIn*hdr, dbOut+dOut*hdr)
}
