package bfd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// SessionConfig is one bfd_instance.
type SessionConfig struct {
	Name     string
	Peer     netip.Addr
	Source   netip.Addr // zero: the kernel picks the source address
	Multihop bool       // RFC 5883: UDP 4784, TTL check relaxed by MaxHops
	// TTL is the TTL (hop limit) sent and expected; 0 = keepalived's
	// default, 255 for IPv4 and 64 for IPv6.
	TTL uint8
	// MaxHops is how many hops a packet may have crossed: a packet is
	// dropped when its TTL + MaxHops < TTL (RFC 5881's GTSM check with
	// MaxHops 0); 255 turns the check off.
	MaxHops uint8
	Config
}

func (c SessionConfig) ttl() int {
	if c.TTL != 0 {
		return int(c.TTL)
	}
	if c.Peer.Is4() {
		return 255
	}
	return 64
}

func (c SessionConfig) port() int {
	if c.Multihop {
		return PortMultiHop
	}
	return PortSingleHop
}

// Event is a session state change, delivered to Options.OnChange.
type Event struct {
	Name string
	Peer netip.Addr
	At   time.Time
	Change
}

// Options configure a Server.
type Options struct {
	Log *slog.Logger
	// OnChange is called from the server's goroutine for each state
	// change; it must not block (hand the event to a channel).
	OnChange func(Event)
	// ListenAddr overrides the address the listeners bind (tests); the
	// zero value binds the unspecified address of each family.
	ListenAddr netip.Addr
	// Sockets, if set, wraps every socket creation (tests run it inside
	// a lab host's network namespace).
	Sockets func(open func() error) error
}

// SessionStatus is one session as vipctl status shows it.
type SessionStatus struct {
	Name     string     `json:"name"`
	Peer     netip.Addr `json:"peer"`
	Source   netip.Addr `json:"source,omitzero"`
	Multihop bool       `json:"multihop,omitempty"`
	State    string     `json:"state"`
	Remote   string     `json:"remote_state"`

	LocalDiscr  uint32 `json:"local_discriminator"`
	RemoteDiscr uint32 `json:"remote_discriminator"`
	// Negotiated intervals, in microseconds as on the wire.
	TxIntervalUS int64     `json:"tx_interval_us"`
	DetectUS     int64     `json:"detect_time_us"`
	RemoteMinRx  int64     `json:"remote_min_rx_us"`
	RemoteMinTx  int64     `json:"remote_min_tx_us"`
	RemoteMult   uint8     `json:"remote_multiplier"`
	LastDown     string    `json:"last_down_reason,omitempty"`
	Since        time.Time `json:"since"`
	SentPackets  uint64    `json:"tx_packets"`
	RecvPackets  uint64    `json:"rx_packets"`
}

// Counters are the server's packet counters.
type Counters struct {
	Received uint64
	Sent     uint64
	SendErrs uint64
	// Dropped counts invalid or unwanted packets by reason: a Field of
	// the packet, or "ttl", "no_session", "admin_down".
	Dropped map[string]uint64
}

// Drop reasons that are not packet fields.
const (
	DropTTL       = "ttl"
	DropNoSession = "no_session"
)

type driven struct {
	cfg     SessionConfig
	s       *Session
	conn    *net.UDPConn // connected to the peer, from a port in 49152-65535
	connErr error
	tx, rx  uint64
}

type rxPacket struct {
	multihop bool
	src, dst netip.Addr
	ttl      int
	b        []byte
}

// Server runs BFD sessions over UDP: one goroutine owns every session,
// listeners feed it packets, and it keeps one timer for the earliest
// session deadline. Configure adds and removes sessions while it runs.
type Server struct {
	opt  Options
	log  *slog.Logger
	rx   chan rxPacket
	reqs chan func()
	done chan struct{} // closed when Run ends: readers stop handing packets over

	// owned by the run goroutine
	sessions map[string]*driven
	byDiscr  map[uint32]*driven
	lns      map[lnKey]net.PacketConn

	mu       sync.Mutex // counters, read by Counters from any goroutine
	counters Counters
	wg       sync.WaitGroup
}

type lnKey struct {
	v6, multihop bool
}

// NewServer returns a server; Run starts it.
func NewServer(opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Sockets == nil {
		opt.Sockets = func(open func() error) error { return open() }
	}
	if opt.OnChange == nil {
		opt.OnChange = func(Event) {}
	}
	c := Counters{Dropped: map[string]uint64{}}
	for _, f := range Fields {
		c.Dropped[string(f)] = 0
	}
	c.Dropped[DropTTL], c.Dropped[DropNoSession] = 0, 0
	return &Server{opt: opt, log: opt.Log, rx: make(chan rxPacket, 256), reqs: make(chan func()), done: make(chan struct{}),
		sessions: map[string]*driven{}, byDiscr: map[uint32]*driven{}, lns: map[lnKey]net.PacketConn{}, counters: c}
}

// Run serves until ctx ends; then every session goes AdminDown, telling
// its peer (RFC 5880 6.8.16), and the sockets close.
func (s *Server) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	defer s.closeAll()
	for {
		now := time.Now()
		for _, d := range s.sessions {
			if dl := d.s.Deadline(); !dl.IsZero() && !dl.After(now) {
				s.apply(d, now, d.s.Tick(now))
			}
		}
		next := now.Add(time.Hour)
		for _, d := range s.sessions {
			if dl := d.s.Deadline(); !dl.IsZero() && dl.Before(next) {
				next = dl
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case p := <-s.rx:
			s.receive(p)
		case f := <-s.reqs:
			f()
		}
	}
}

// do runs f on the server's goroutine.
func (s *Server) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.reqs <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Configure makes the running sessions those of cfgs: a session whose
// configuration did not change keeps running (and its state), a removed
// one goes AdminDown, a new one starts Down. It returns the errors of
// sessions that could not start (their listeners), the others run.
func (s *Server) Configure(ctx context.Context, cfgs []SessionConfig) error {
	var err error
	if e := s.do(ctx, func() { err = s.configure(cfgs) }); e != nil {
		return e
	}
	return err
}

func (s *Server) configure(cfgs []SessionConfig) error {
	now := time.Now()
	want := map[string]SessionConfig{}
	for _, c := range cfgs {
		want[c.Name] = c
	}
	for name, d := range s.sessions {
		if c, ok := want[name]; !ok || c != d.cfg {
			s.apply(d, now, d.s.Shutdown(now))
			s.drop(d)
		}
	}
	var errs []error
	for _, c := range cfgs {
		if _, ok := s.sessions[c.Name]; ok {
			continue
		}
		if err := s.listen(c); err != nil {
			errs = append(errs, fmt.Errorf("bfd_instance %s: %w", c.Name, err))
			continue
		}
		discr := s.newDiscr()
		d := &driven{cfg: c, s: NewSession(c.Config, discr, rand.Uint64(), now)}
		s.sessions[c.Name] = d
		s.byDiscr[discr] = d
		s.log.Info(fmt.Sprintf("(%s) BFD session to %s started", c.Name, c.Peer), "discriminator", discr)
	}
	return errors.Join(errs...)
}

func (s *Server) newDiscr() uint32 {
	for {
		if v := rand.Uint32(); v != 0 && s.byDiscr[v] == nil {
			return v
		}
	}
}

func (s *Server) drop(d *driven) {
	if d.conn != nil {
		d.conn.Close()
	}
	delete(s.sessions, d.cfg.Name)
	delete(s.byDiscr, d.s.LocalDiscr())
}

func (s *Server) closeAll() {
	now := time.Now()
	for _, d := range s.sessions {
		s.apply(d, now, d.s.Shutdown(now))
		s.drop(d)
	}
	close(s.done)
	for k, l := range s.lns {
		l.Close()
		delete(s.lns, k)
	}
	s.wg.Wait()
}

// listen opens the listener a session needs, once per family and port.
func (s *Server) listen(c SessionConfig) error {
	k := lnKey{v6: c.Peer.Is6(), multihop: c.Multihop}
	if s.lns[k] != nil {
		return nil
	}
	addr := netip.IPv4Unspecified()
	network := "udp4"
	if k.v6 {
		addr, network = netip.IPv6Unspecified(), "udp6"
	}
	if s.opt.ListenAddr.IsValid() {
		addr = s.opt.ListenAddr
	}
	var pc net.PacketConn
	err := s.opt.Sockets(func() (err error) {
		pc, err = net.ListenPacket(network, netip.AddrPortFrom(addr, uint16(c.port())).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("listening on UDP %d: %w", c.port(), err)
	}
	if k.v6 {
		p := ipv6.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
			pc.Close()
			return fmt.Errorf("asking for the hop limit: %w", err)
		}
		s.wg.Add(1)
		go s.read6(p, k.multihop)
	} else {
		p := ipv4.NewPacketConn(pc)
		if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true); err != nil {
			pc.Close()
			return fmt.Errorf("asking for the TTL: %w", err)
		}
		s.wg.Add(1)
		go s.read4(p, k.multihop)
	}
	s.lns[k] = pc
	return nil
}

// rxFrom reads one datagram into b: its length, the TTL or hop limit
// it arrived with (-1 when unknown) and its destination and source.
type rxFrom func(b []byte) (n, ttl int, dst, src netip.Addr, err error)

func (s *Server) read4(p *ipv4.PacketConn, multihop bool) {
	s.read(multihop, func(b []byte) (int, int, netip.Addr, netip.Addr, error) {
		n, cm, src, err := p.ReadFrom(b)
		ttl, dst := -1, netip.Addr{}
		if cm != nil {
			ttl = cm.TTL
			dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return n, ttl, dst.Unmap(), udpSource(src).Unmap(), err
	})
}

func (s *Server) read6(p *ipv6.PacketConn, multihop bool) {
	s.read(multihop, func(b []byte) (int, int, netip.Addr, netip.Addr, error) {
		n, cm, src, err := p.ReadFrom(b)
		ttl, dst := -1, netip.Addr{}
		if cm != nil {
			ttl = cm.HopLimit
			dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return n, ttl, dst, udpSource(src), err
	})
}

func udpSource(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort().Addr()
	}
	return netip.Addr{}
}

// read hands the datagrams of one socket to the server's goroutine until
// the socket is closed.
func (s *Server) read(multihop bool, from rxFrom) {
	defer s.wg.Done()
	for {
		b := make([]byte, 128)
		n, ttl, dst, src, err := from(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case s.rx <- rxPacket{multihop: multihop, ttl: ttl, b: b[:n], src: src, dst: dst}:
		case <-s.done:
			return
		}
	}
}

func (s *Server) count(reason string) {
	s.mu.Lock()
	s.counters.Dropped[reason]++
	s.mu.Unlock()
}

// receive finds a packet's session (RFC 5880 6.8.6), checks its TTL
// and hands it over. Drops are counted by reason, never logged per
// packet: a flood must not become a log flood.
func (s *Server) receive(r rxPacket) {
	s.mu.Lock()
	s.counters.Received++
	s.mu.Unlock()
	p, err := Decode(r.b)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			s.count(string(de.Field))
		}
		return
	}
	var d *driven
	if p.YourDiscr != 0 {
		d = s.byDiscr[p.YourDiscr]
	} else {
		for _, c := range s.sessions {
			if c.cfg.Peer == r.src && c.cfg.Multihop == r.multihop && (!c.cfg.Source.IsValid() || !r.dst.IsValid() || c.cfg.Source == r.dst) {
				d = c
				break
			}
		}
	}
	if d == nil || d.cfg.Peer != r.src || d.cfg.Multihop != r.multihop {
		s.count(DropNoSession)
		return
	}
	if d.cfg.MaxHops != 255 && r.ttl >= 0 && r.ttl+int(d.cfg.MaxHops) < d.cfg.ttl() {
		s.count(DropTTL)
		return
	}
	d.rx++
	now := time.Now()
	s.apply(d, now, d.s.Receive(now, p))
}

// apply sends a session's packets and reports its state change.
func (s *Server) apply(d *driven, now time.Time, out Output) {
	if c := out.Change; c != nil {
		s.logChange(d, c)
		s.opt.OnChange(Event{Name: d.cfg.Name, Peer: d.cfg.Peer, At: now, Change: *c})
	}
	for _, p := range out.Send {
		s.send(d, p)
	}
}

func (s *Server) logChange(d *driven, c *Change) {
	name := d.cfg.Name
	switch c.To {
	case Up:
		s.log.Info(fmt.Sprintf("(%s) Entering Up state", name))
	case Init:
		s.log.Debug(fmt.Sprintf("(%s) Entering Init state", name))
	case AdminDown:
		s.log.Warn(fmt.Sprintf("(%s) Entering AdminDown state", name))
	case Down:
		if c.Diag == DiagTimeExpired {
			s.log.Warn(fmt.Sprintf("(%s) Expired after %d ms (%d usec overdue)", name, c.DeadTime.Milliseconds(), c.Overdue.Microseconds()))
		}
		if c.From == Up {
			s.log.Warn(fmt.Sprintf("(%s) Entering Down state (Local diagnostic - %s, Remote diagnostic - %s)", name, c.Diag, c.RemoteDiag))
		} else {
			s.log.Debug(fmt.Sprintf("(%s) Entering Down state (Local diagnostic - %s, Remote diagnostic - %s)", name, c.Diag, c.RemoteDiag))
		}
	}
}

func (s *Server) send(d *driven, p Packet) {
	if d.conn == nil {
		if err := s.dial(d); err != nil {
			if d.connErr == nil || d.connErr.Error() != err.Error() {
				s.log.Warn(fmt.Sprintf("(%s) Error sending packet", d.cfg.Name), "err", err)
			}
			d.connErr = err
			s.mu.Lock()
			s.counters.SendErrs++
			s.mu.Unlock()
			return
		}
		d.connErr = nil
	}
	var buf [Len]byte
	b := p.Append(buf[:0])
	_, err := d.conn.Write(b)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// The error is an ICMP port unreachable for an earlier packet
		// (the peer's BFD not listening yet), reported on this write:
		// this packet was not sent.
		_, err = d.conn.Write(b)
	}
	if err != nil {
		s.mu.Lock()
		s.counters.SendErrs++
		s.mu.Unlock()
		return
	}
	d.tx++
	s.mu.Lock()
	s.counters.Sent++
	s.mu.Unlock()
}

// dial opens a session's sending socket: bound to its source address
// and a port in 49152-65535 (RFC 5881 section 4), used for the whole
// session, with the TTL set (255 single hop, RFC 5881 section 5).
func (s *Server) dial(d *driven) error {
	network := "udp4"
	src := netip.IPv4Unspecified()
	if d.cfg.Peer.Is6() {
		network, src = "udp6", netip.IPv6Unspecified()
	}
	if d.cfg.Source.IsValid() {
		src = d.cfg.Source
	}
	raddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.cfg.Peer, uint16(d.cfg.port())))
	var last error
	for range 16 {
		port := SrcPortMin + rand.IntN(SrcPortMax-SrcPortMin+1)
		var c *net.UDPConn
		err := s.opt.Sockets(func() (err error) {
			c, err = net.DialUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(port))), raddr)
			return err
		})
		if err != nil {
			last = err
			continue
		}
		if d.cfg.Peer.Is6() {
			err = ipv6.NewConn(c).SetHopLimit(d.cfg.ttl())
		} else {
			err = ipv4.NewConn(c).SetTTL(d.cfg.ttl())
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("setting the TTL: %w", err)
		}
		d.conn = c
		return nil
	}
	return fmt.Errorf("binding a source port: %w", last)
}

// Status lists the sessions, sorted by name.
func (s *Server) Status(ctx context.Context) ([]SessionStatus, error) {
	var out []SessionStatus
	err := s.do(ctx, func() {
		for _, d := range s.sessions {
			st := d.s.Status()
			ss := SessionStatus{
				Name: d.cfg.Name, Peer: d.cfg.Peer, Source: d.cfg.Source, Multihop: d.cfg.Multihop,
				State: st.State.String(), Remote: st.RemoteState.String(),
				LocalDiscr: st.LocalDiscr, RemoteDiscr: st.RemoteDiscr,
				TxIntervalUS: st.TxInterval.Microseconds(), DetectUS: st.DetectTime.Microseconds(),
				RemoteMinRx: st.RemoteMinRx.Microseconds(), RemoteMinTx: st.RemoteMinTx.Microseconds(), RemoteMult: st.RemoteMult,
				Since: st.LastChange, SentPackets: d.tx, RecvPackets: d.rx,
			}
			if st.LastDown != DiagNone {
				ss.LastDown = st.LastDown.String()
			}
			out = append(out, ss)
		}
	})
	slices.SortFunc(out, func(a, b SessionStatus) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, err
}

// Counters returns a copy of the packet counters.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	c.Dropped = make(map[string]uint64, len(s.counters.Dropped))
	for k, v := range s.counters.Dropped {
		c.Dropped[k] = v
	}
	return c
}
