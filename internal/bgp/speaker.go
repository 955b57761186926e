package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// GracefulShutdown is the well-known GRACEFUL_SHUTDOWN community
// 65535:0 (RFC 8326): a router that honours it lowers the path's
// preference, so traffic leaves this director while the path still exists.
const GracefulShutdown uint32 = 0xFFFF0000

// BFD holds one peer's BFD timers (RFC 5880).
type BFD struct {
	MinRx      time.Duration // required minimum receive interval
	MinTx      time.Duration // desired minimum transmit interval
	Multiplier int
}

// DefaultBFD is what a bare `bfd` asks for: 100 ms × 3.
var DefaultBFD = BFD{MinRx: 100 * time.Millisecond, MinTx: 100 * time.Millisecond, Multiplier: 3}

// Peer is one neighbor.
type Peer struct {
	Addr     netip.Addr
	RemoteAS uint32
	// HoldTime 0 keeps GoBGP's default (90 s); the keepalive interval is
	// a third of it.
	HoldTime time.Duration
	Passive  bool   // wait for the router to connect
	Port     uint16 // remote TCP port (0 = 179)
	Multihop uint8  // eBGP multihop TTL (0 = directly connected)
	Password string // TCP MD5 (RFC 2385)
	BFD      *BFD   // nil = no BFD
}

// Config is the speaker's configuration.
type Config struct {
	RouterID netip.Addr
	LocalAS  uint32
	// ListenPort is the TCP port to accept sessions on; 0 means 179 when
	// a peer is passive and no listening otherwise (the director dials).
	ListenPort int32
	// ListenAddrs restricts listening (tests on one loopback); nil = all.
	ListenAddrs []string
	Peers       []Peer
}

// PeerStatus is one neighbor as vipctl bgp shows it.
type PeerStatus struct {
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	State    string     `json:"state"` // IDLE, CONNECT, ACTIVE, OPENSENT, OPENCONFIRM, ESTABLISHED
	// Since: when the session reached ESTABLISHED (zero when it is not).
	Since time.Time `json:"since,omitzero"`
	// BFD: "" without BFD, else DOWN, INIT, UP or ADMIN_DOWN.
	BFD      string `json:"bfd,omitempty"`
	HoldTime uint64 `json:"hold_time"` // negotiated, seconds
}

// Status is the speaker's state.
type Status struct {
	RouterID netip.Addr     `json:"router_id"`
	LocalAS  uint32         `json:"local_as"`
	Peers    []PeerStatus   `json:"peers"`
	Routes   []netip.Prefix `json:"routes"` // announced now
	Draining bool           `json:"draining"`
}

// Speaker is an embedded BGP speaker. Its state (the announced routes)
// is owned by one goroutine, Run's; the methods hand it requests.
type Speaker struct {
	cfg Config
	log *slog.Logger
	srv *server.BgpServer

	reqs chan func()
	done chan struct{}

	// Owned by Run's goroutine.
	routes   map[netip.Prefix]bool // value: announced with GSHUT
	draining bool
	bfdOn    map[netip.Addr]bool // BFD runs for the peer (only while ESTABLISHED)

	// sessionEv carries the address of a peer whose session changed, from
	// GoBGP's watcher to Run.
	sessionEv chan netip.Addr

	mu      sync.Mutex
	bfdSeen map[string]string // last BFD state logged per peer
}

// ErrStopped is returned by requests after Run has returned.
var ErrStopped = errors.New("bgp: speaker stopped")

// New checks cfg; nothing runs before Run.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.Default()
	}
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("bgp: router_id %v: must be an IPv4 address", cfg.RouterID)
	}
	if cfg.LocalAS == 0 {
		return nil, errors.New("bgp: local_as missing")
	}
	for _, p := range cfg.Peers {
		if !p.Addr.IsValid() || p.RemoteAS == 0 {
			return nil, fmt.Errorf("bgp: neighbor %v: address and remote_as are required", p.Addr)
		}
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			return nil, fmt.Errorf("bgp: neighbor %v: hold_time %v: 0 or at least 3 s (RFC 4271)", p.Addr, p.HoldTime)
		}
	}
	return &Speaker{cfg: cfg, log: log, reqs: make(chan func()), done: make(chan struct{}),
		routes: map[netip.Prefix]bool{}, bfdSeen: map[string]string{}, bfdOn: map[netip.Addr]bool{},
		sessionEv: make(chan netip.Addr, 64)}, nil
}

// Run starts GoBGP and the sessions and serves requests until ctx is done
// or Stop is called. On return the sessions are closed (CEASE) and every
// route is gone.
func (s *Speaker) Run(ctx context.Context) error {
	defer close(s.done)
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn) // GoBGP's own lines: warnings and errors only
	glog := slog.New(minLevel{s.log.Handler(), slog.LevelWarn}).With("component", "gobgp")
	s.srv = server.NewBgpServer(server.LoggerOption(glog, lvl))
	go s.srv.Serve()
	stopped := false
	defer func() {
		if !stopped {
			s.srv.Stop()
		}
	}()

	listen := s.cfg.ListenPort
	if listen == 0 {
		listen = -1
		for _, p := range s.cfg.Peers {
			if p.Passive {
				listen = 179
			}
		}
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.LocalAS, RouterId: s.cfg.RouterID.String(), ListenPort: listen, ListenAddresses: s.cfg.ListenAddrs,
	}}); err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	// Note: no global import policy. GoBGP applies it to locally
	// originated paths too, and a reject-all would keep every VIP out of
	// the RIB (labs/bgp pitfall 1). Routes the routers send are kept in
	// GoBGP's RIB and never installed.
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if err := s.srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			st := ev.Peer.State
			args := []any{"peer", st.NeighborAddress.String(), "state", fsmName(st.SessionState)}
			if st.DisconnectMessage != "" {
				args = append(args, "reason", st.DisconnectMessage)
			}
			s.log.Info("BGP session", args...)
			// Run turns BFD on or off to follow the session. The send
			// must not block GoBGP: when the buffer is full, a sync is
			// already pending and it reads the current state anyway.
			select {
			case s.sessionEv <- st.NeighborAddress:
			default:
			}
		},
	}, server.WatchPeer()); err != nil {
		return fmt.Errorf("bgp: watch: %w", err)
	}
	for _, p := range s.cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p, false)}); err != nil {
			return fmt.Errorf("bgp: neighbor %v: %w", p.Addr, err)
		}
		s.log.Info("BGP neighbor added", "peer", p.Addr.String(), "remote_as", p.RemoteAS, "hold_time", p.HoldTime, "bfd", p.BFD != nil)
	}

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopped = s.shutdown()
			return nil
		case f := <-s.reqs:
			if f == nil { // Stop
				stopped = s.shutdown()
				return nil
			}
			f()
		case a := <-s.sessionEv:
			s.syncBFD(ctx, a)
		case <-tick.C:
			// A dropped session event is caught here.
			for _, p := range s.cfg.Peers {
				if p.BFD != nil {
					s.syncBFD(ctx, p.Addr)
				}
			}
			s.logBFD()
		}
	}
}

// shutdown withdraws every route, lets the UPDATE leave, then closes the
// sessions with CEASE. It reports whether GoBGP stopped.
func (s *Speaker) shutdown() bool {
	for p := range s.routes {
		s.withdraw(p)
	}
	time.Sleep(100 * time.Millisecond) // the UPDATE(withdraw) goes before the CEASE
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.srv.StopBgp(ctx, &api.StopBgpRequest{})
	if err != nil {
		s.log.Warn("BGP stop", "err", err)
	}
	s.log.Info("BGP speaker stopped")
	return err == nil
}

// minLevel drops records below a level: GoBGP logs every UPDATE at info
// and debug, which would drown vipd's own lines (-D shows debug).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }

// syncBFD runs BFD for a peer exactly while its session is ESTABLISHED.
//
// GoBGP v4.8 starts BFD with the peer and keeps it across BGP resets, but
// a router (BIRD, FRR) creates its BFD session when the BGP session comes
// up, with a new discriminator. GoBGP, still Up with the old one, drops
// the new session's packets, expires, resets BGP, and the router starts
// over: a restarted director flapped for minutes in the e2e benchmark.
// Starting a fresh GoBGP BFD session at each establishment (UpdatePeer
// deletes and re-adds only the BFD peer) lets both sides meet.
func (s *Speaker) syncBFD(ctx context.Context, addr netip.Addr) {
	var cfg *Peer
	for i := range s.cfg.Peers {
		if s.cfg.Peers[i].Addr == addr.Unmap() || s.cfg.Peers[i].Addr == addr {
			cfg = &s.cfg.Peers[i]
		}
	}
	if cfg == nil || cfg.BFD == nil {
		return
	}
	established := false
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: cfg.Addr.String()}, func(p *api.Peer) {
		established = p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	})
	if s.bfdOn[cfg.Addr] == established {
		return
	}
	if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(*cfg, established)}); err != nil {
		s.log.Warn("BFD: updating the peer", "peer", cfg.Addr.String(), "err", err)
		return
	}
	s.bfdOn[cfg.Addr] = established
	s.mu.Lock()
	if !established {
		delete(s.bfdSeen, cfg.Addr.String())
	}
	s.mu.Unlock()
}

// apiPeer is the GoBGP form of p, with its BFD when bfd is set.
func apiPeer(p Peer, bfd bool) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Addr.String(), PeerAsn: p.RemoteAS, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: 2,
			// GoBGP waits 30 s after a reset (a BFD failure) before it
			// dials again; a director whose cable is back should return
			// within seconds.
			IdleHoldTimeAfterReset: 1,
			HoldTime:               uint64(p.HoldTime / time.Second),
			KeepaliveInterval:      uint64(p.HoldTime / time.Second / 3),
		}},
		Transport: &api.Transport{PassiveMode: p.Passive, RemotePort: uint32(p.Port)},
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Addr.Is6() && !p.Addr.Is4In6() {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	ap.AfiSafis = []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}}
	if p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if b := p.BFD; b != nil && bfd {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(b.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.MinRx / time.Microsecond),
			DetectionMultiplier:      uint32(b.Multiplier),
		}
	}
	return ap
}

// call runs f on Run's goroutine and waits for it.
func (s *Speaker) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.reqs <- func() { f(); close(done) }:
	case <-s.done:
		return ErrStopped
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

// Announce announces p with next-hop self. Announcing an announced
// prefix does nothing; during a drain it is refused.
func (s *Speaker) Announce(ctx context.Context, p netip.Prefix) error {
	var err error
	if cerr := s.call(ctx, func() { err = s.announce(p, false) }); cerr != nil {
		return cerr
	}
	return err
}

// Withdraw withdraws p; withdrawing what is not announced does nothing.
func (s *Speaker) Withdraw(ctx context.Context, p netip.Prefix) error {
	var err error
	if cerr := s.call(ctx, func() { err = s.withdraw(p) }); cerr != nil {
		return cerr
	}
	return err
}

// Set makes the announced routes exactly want (the daemon's policy
// output): it withdraws what is not wanted and announces the rest.
func (s *Speaker) Set(ctx context.Context, want []netip.Prefix) error {
	var errs []error
	cerr := s.call(ctx, func() {
		w := map[netip.Prefix]bool{}
		for _, p := range want {
			w[p.Masked()] = true
		}
		for p := range s.routes {
			if !w[p] {
				errs = append(errs, s.withdraw(p))
			}
		}
		if s.draining {
			return
		}
		for p := range w {
			errs = append(errs, s.announce(p, false))
		}
	})
	if cerr != nil {
		return cerr
	}
	return errors.Join(errs...)
}

// Drain takes this director out gracefully (RFC 8326): every route is
// re-announced with the GRACEFUL_SHUTDOWN community, so routers that
// honour it move traffic away while the path still exists; after pause
// the routes are withdrawn. The sessions stay up; announcements stay
// refused until Resume.
func (s *Speaker) Drain(ctx context.Context, pause time.Duration) error {
	var errs []error
	if cerr := s.call(ctx, func() {
		s.draining = true
		for p := range s.routes {
			errs = append(errs, s.announce(p, true))
		}
		if len(s.routes) > 0 {
			s.log.Info("BGP drain: routes marked GRACEFUL_SHUTDOWN", "pause", pause)
		}
	}); cerr != nil {
		return cerr
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	// Withdraw even when ctx ended: a drain that stops half way would
	// leave GSHUT paths behind.
	return s.call(context.Background(), func() {
		for p := range s.routes {
			errs = append(errs, s.withdraw(p))
		}
	})
}

// Resume ends a drain; the next Set announces again.
func (s *Speaker) Resume(ctx context.Context) error {
	return s.call(ctx, func() { s.draining = false })
}

// Stop withdraws every route, closes the sessions and ends Run.
func (s *Speaker) Stop(ctx context.Context) error {
	select {
	case s.reqs <- nil:
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when Run has returned.
func (s *Speaker) Done() <-chan struct{} { return s.done }

func (s *Speaker) path(p netip.Prefix, withdraw, gshut bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return nil, err
	}
	fam := bgp.RF_IPv4_UC
	nh := netip.IPv4Unspecified() // next-hop self
	if p.Addr().Is6() {
		fam, nh = bgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if fam == bgp.RF_IPv4_UC {
		nhAttr, err := bgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nhAttr)
	} else {
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if gshut {
		attrs = append(attrs, bgp.NewPathAttributeCommunities([]uint32{GracefulShutdown}))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

func (s *Speaker) announce(p netip.Prefix, gshut bool) error {
	p = p.Masked()
	if s.draining && !gshut {
		return nil
	}
	if g, ok := s.routes[p]; ok && g == gshut {
		return nil
	}
	path, err := s.path(p, false, gshut)
	if err != nil {
		return fmt.Errorf("bgp: announce %v: %w", p, err)
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: announce %v: %w", p, err)
	}
	s.routes[p] = gshut
	if gshut {
		s.log.Info("BGP route marked GRACEFUL_SHUTDOWN", "prefix", p.String())
	} else {
		s.log.Info("BGP route announced", "prefix", p.String())
	}
	return nil
}

func (s *Speaker) withdraw(p netip.Prefix) error {
	p = p.Masked()
	if _, ok := s.routes[p]; !ok {
		return nil
	}
	path, err := s.path(p, true, false)
	if err != nil {
		return fmt.Errorf("bgp: withdraw %v: %w", p, err)
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("bgp: withdraw %v: %w", p, err)
	}
	delete(s.routes, p)
	s.log.Info("BGP route withdrawn", "prefix", p.String())
	return nil
}

// Status returns the sessions and the announced routes.
func (s *Speaker) Status(ctx context.Context) (Status, error) {
	st := Status{RouterID: s.cfg.RouterID, LocalAS: s.cfg.LocalAS}
	err := s.call(ctx, func() {
		for p := range s.routes {
			st.Routes = append(st.Routes, p)
		}
		st.Draining = s.draining
		_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: false}, func(p *api.Peer) {
			ps := peerStatus(p)
			for _, c := range s.cfg.Peers {
				if c.Addr == ps.Addr && c.BFD != nil && ps.BFD == "" {
					ps.BFD = "DOWN" // configured; runs only while ESTABLISHED
				}
			}
			st.Peers = append(st.Peers, ps)
		})
	})
	sort.Slice(st.Routes, func(i, j int) bool { return st.Routes[i].Addr().Less(st.Routes[j].Addr()) })
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Addr.Less(st.Peers[j].Addr) })
	return st, err
}

func peerStatus(p *api.Peer) PeerStatus {
	ps := PeerStatus{}
	if c := p.GetConf(); c != nil {
		ps.Addr, _ = netip.ParseAddr(c.NeighborAddress)
		ps.RemoteAS = c.PeerAsn
	}
	if st := p.GetState(); st != nil {
		ps.State = strings.TrimPrefix(st.SessionState.String(), "SESSION_STATE_")
		if b := st.GetBfdState(); b != nil && p.GetBfd().GetEnabled() {
			ps.BFD = bfdName(b.SessionState)
		}
	}
	if ts := p.GetTimers().GetState(); ts != nil {
		ps.HoldTime = ts.NegotiatedHoldTime
		if ps.State == "ESTABLISHED" && ts.Uptime != nil {
			ps.Since = ts.Uptime.AsTime()
		}
	}
	return ps
}

func bfdName(s api.BfdSessionState) string {
	return strings.TrimPrefix(s.String(), "BFD_SESSION_STATE_")
}

func fsmName(s bgp.FSMState) string {
	return strings.ToUpper(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// logBFD logs BFD session state changes (GoBGP reports them only through
// its peer state).
func (s *Speaker) logBFD() {
	s.srv.ListBfdPeer(context.Background(), func(addr string, st *api.BfdPeerState) {
		name := bfdName(st.SessionState)
		s.mu.Lock()
		prev := s.bfdSeen[addr]
		s.bfdSeen[addr] = name
		s.mu.Unlock()
		if prev != name {
			s.log.Info("BFD session", "peer", addr, "state", name, "remote_state", bfdName(st.RemoteSessionState))
		}
	})
}
