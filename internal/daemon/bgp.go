package daemon

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/vrrp"
)

// bgpDriver connects the loop to the BGP speaker. The loop owns
// everything but the fields under mu (VRRP states arrive on the VRRP
// goroutine) and pending (read by the poller).
type bgpDriver struct {
	cfg     *config.BGP
	sp      *bgp.Speaker
	cancel  context.CancelFunc
	runDone chan struct{}
	want    chan []netip.Prefix // latest set for the pusher; capacity 1
	pushed  chan struct{}       // closed when the pusher has returned

	checked map[string]bool // servers whose every checker ran once
	// A virtual server coming back from "every real server down" waits,
	// as at start, until each of its servers' checkers has ended an
	// attempt after the first one came back: announcing on the first
	// server up would give this director a Maglev table with fewer
	// servers than the other directors', and the flows ECMP moves to it
	// would land on the wrong real server (TestBGPFlowsSurvive saw 7 of
	// 45 connections reset). allDown: virtual server -> every real server
	// down; recheck: server -> checks must end after this time.
	allDown   map[string]bool
	recheck   map[string]time.Time
	decisions []bgp.Decision
	// pending: some server is not yet checked; the poller looks.
	pending atomic.Bool
	// pause is the drain pause (drain_pause), which a reload changes
	// without restarting the speaker; read by API calls.
	pause atomic.Int64

	mu     sync.Mutex
	master map[string]bool // vrrp instance -> MASTER
	err    string          // the speaker stopped with an error
}

// startBGP starts the speaker of cfg.BGP (nothing without a bgp block).
// prev is the driver a reload replaces: its VRRP states and first-round
// results carry over.
func (d *Daemon) startBGP(prev *bgpDriver) {
	if d.gen.cfg.BGP == nil || d.opts.CheckOnly {
		return
	}
	c := d.gen.cfg.BGP
	sc := bgp.Config{RouterID: c.RouterID, LocalAS: c.LocalAS}
	for _, n := range c.Neighbors {
		p := bgp.Peer{Addr: n.Addr, RemoteAS: n.RemoteAS, HoldTime: n.HoldTime, Passive: n.Passive,
			Port: n.Port, Multihop: uint8(n.Multihop), Password: n.Password}
		if n.BFD != nil {
			p.BFD = &bgp.BFD{MinRx: n.BFD.MinRx, MinTx: n.BFD.MinTx, Multiplier: n.BFD.Multiplier}
		}
		sc.Peers = append(sc.Peers, p)
	}
	sp, err := bgp.New(sc, d.log)
	if err != nil {
		d.log.Error("BGP speaker not started", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bgpDriver{cfg: c, sp: sp, cancel: cancel, runDone: make(chan struct{}), want: make(chan []netip.Prefix, 1),
		pushed: make(chan struct{}), checked: map[string]bool{}, master: map[string]bool{},
		allDown: map[string]bool{}, recheck: map[string]time.Time{}}
	if prev != nil {
		b.checked, b.allDown, b.recheck = prev.checked, prev.allDown, prev.recheck
		prev.mu.Lock()
		for k, v := range prev.master {
			b.master[k] = v
		}
		prev.mu.Unlock()
	}
	b.pending.Store(true)
	b.pause.Store(int64(c.Pause()))
	d.bgp = b
	go func() {
		defer close(b.runDone)
		if err := sp.Run(ctx); err != nil {
			d.log.Error("BGP speaker stopped", "err", err)
			b.mu.Lock()
			b.err = err.Error()
			b.mu.Unlock()
		}
	}()
	// The pusher hands the latest wanted set to the speaker, so the loop
	// never waits on BGP.
	go func() {
		defer close(b.pushed)
		for {
			select {
			case <-ctx.Done():
				return
			case w := <-b.want:
				if err := sp.Set(ctx, w); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, bgp.ErrStopped) {
					d.log.Error("BGP", "err", err)
				}
			}
		}
	}()
	// The poller finds when the first round of checks is complete: the
	// runner reports changes, not "still up", so it is asked.
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !b.pending.Load() {
				continue
			}
			d.mu.Lock()
			runner := d.snap.runner
			d.mu.Unlock()
			if runner == nil {
				continue
			}
			sctx, scancel := context.WithTimeout(ctx, time.Second)
			checks, _ := runner.Status(sctx)
			scancel()
			if checks == nil {
				continue
			}
			done := map[string]bool{}
			for _, c := range checks {
				if _, seen := done[c.Server]; !seen {
					done[c.Server] = true
				}
				if c.Checks == 0 {
					done[c.Server] = false
				}
			}
			d.do(func() {
				if d.bgp != b {
					return
				}
				for s, ok := range done {
					if t, again := b.recheck[s]; again {
						ok = ok && roundSince(checks, s, t, d.health[s].up)
						if ok {
							delete(b.recheck, s)
						}
					}
					if ok {
						b.checked[s] = true
					}
				}
				d.bgpUpdate()
			})
		}
	}()
	d.bgpUpdate()
}

// roundSince reports whether every checker of server s ended an attempt
// after since, and the loop's verdict (loopUp) is what they found: a
// success the runner reported but the loop has not handled yet does not
// count, or the announcement would go out with the old set of servers.
func roundSince(checks []check.Status, s string, since time.Time, loopUp bool) bool {
	seen, up := false, true
	for _, c := range checks {
		if c.Server != s {
			continue
		}
		seen = true
		if !c.LastCheck.After(since) {
			return false
		}
		up = up && c.Up
	}
	return seen && up == loopUp
}

// stopBGP drains (GRACEFUL_SHUTDOWN, a pause, withdrawal) and closes the
// sessions; the data plane still forwards meanwhile.
func (d *Daemon) stopBGP(drain bool) {
	b := d.bgp
	if b == nil {
		return
	}
	d.bgp = nil
	pause := time.Duration(b.pause.Load())
	ctx, cancel := context.WithTimeout(context.Background(), pause+5*time.Second)
	defer cancel()
	if drain {
		st, _ := b.sp.Status(ctx)
		if len(st.Routes) > 0 {
			d.log.Info("BGP: draining before stop", "routes", len(st.Routes), "pause", pause)
			if err := b.sp.Drain(ctx, pause); err != nil {
				d.log.Warn("BGP drain", "err", err)
			}
		}
	}
	if err := b.sp.Stop(ctx); err != nil {
		d.log.Warn("BGP stop", "err", err)
	}
	b.cancel()
	<-b.runDone
	<-b.pushed
	d.publishBGP(nil)
}

// reloadBGP restarts the speaker when the bgp block changed, and
// recomputes the policy for the new virtual servers either way.
func (d *Daemon) reloadBGP(cfg *config.Config) {
	var old *config.BGP
	if d.bgp != nil {
		old = d.bgp.cfg
	}
	if !sameBGP(old, cfg.BGP) {
		d.log.Info("BGP: the bgp block changed; restarting the speaker")
		prev := d.bgp
		d.stopBGP(false)
		d.startBGP(prev)
		return
	}
	if d.bgp != nil {
		if p := cfg.BGP.Pause(); time.Duration(d.bgp.pause.Swap(int64(p))) != p {
			d.log.Info("BGP: drain pause changed", "pause", p)
		}
		d.bgp.pending.Store(true)
		d.bgpUpdate()
	}
}

// sameBGP compares two bgp blocks without their positions.
func sameBGP(a, b *config.BGP) bool {
	if a == nil || b == nil {
		return a == b
	}
	strip := func(g *config.BGP) config.BGP {
		c := *g
		c.Pos = config.Pos{}
		c.DrainPause, c.NoDrainPause = 0, false // applied without a restart
		c.Neighbors = nil
		for _, n := range g.Neighbors {
			nn := *n
			nn.Pos = config.Pos{}
			c.Neighbors = append(c.Neighbors, &nn)
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// bgpVRRP records a VRRP instance's state (on the VRRP goroutine).
func (d *Daemon) bgpVRRP(n vrrp.Notification) {
	if n.Type == "GROUP" {
		return
	}
	d.mu.Lock()
	b := d.snap.bgp
	d.mu.Unlock()
	if b == nil {
		return
	}
	b.mu.Lock()
	changed := b.master[n.Name] != (n.State == "MASTER")
	b.master[n.Name] = n.State == "MASTER"
	b.mu.Unlock()
	if changed {
		d.do(d.bgpUpdate) // the inbox never blocks
	}
}

// bgpUpdate runs the policy on the loop's state and hands the result to
// the speaker.
func (d *Daemon) bgpUpdate() {
	b := d.bgp
	if b == nil {
		return
	}
	in := bgp.Input{}
	served := map[string]bool{}
	if d.dp != nil {
		for _, s := range d.dp.Services() {
			served[s.Key.String()] = true
		}
	}
	// A server without checkers has nothing to wait for.
	checkers := map[string]bool{}
	for _, s := range d.gen.servers {
		checkers[s.Name] = len(s.Checkers) > 0
	}
	pending := false
	for _, p := range d.gen.plans {
		if p.cfg.BGPAnnounce == nil || p.cfg.Kind != config.VSAddr {
			continue
		}
		s := bgp.Service{Name: p.name, VIP: p.cfg.Addr.Addr(), Checked: true, QuorumUp: d.quorum[p.name]}
		for _, rs := range p.rss {
			if checkers[rs.check] && !b.checked[rs.check] {
				s.Checked = false
				pending = true
			}
			if h, ok := d.health[rs.check]; ok && h.up {
				s.Alive++
			}
		}
		s.Served = len(p.keys) > 0 && served[p.keys[0].key.String()]
		if s.Checked && s.Alive == 0 {
			b.allDown[p.name] = true
		} else if s.Alive > 0 && b.allDown[p.name] {
			delete(b.allDown, p.name)
			now := time.Now()
			for _, rs := range p.rss {
				if checkers[rs.check] {
					b.checked[rs.check] = false
					b.recheck[rs.check] = now
				}
			}
			s.Checked = false
			pending = true
		}
		in.Services = append(in.Services, s)
	}
	b.pending.Store(pending)
	b.mu.Lock()
	for _, inst := range d.gen.cfg.Instances {
		if inst.BGPAnnounce == nil {
			continue
		}
		bi := bgp.Instance{Name: inst.Name, Master: b.master[inst.Name]}
		for _, v := range inst.VIPs {
			bi.VIPs = append(bi.VIPs, v.Prefix.Addr())
		}
		in.Instances = append(in.Instances, bi)
	}
	b.mu.Unlock()

	decisions := bgp.Decide(in)
	prev := map[netip.Prefix]bgp.Decision{}
	for _, dc := range b.decisions {
		prev[dc.Prefix] = dc
	}
	var want []netip.Prefix
	for _, dc := range decisions {
		if p, ok := prev[dc.Prefix]; !ok || p.Announce != dc.Announce || p.Reason != dc.Reason {
			d.log.Info("BGP policy", "prefix", dc.Prefix.String(), "announce", dc.Announce, "reason", dc.Reason)
		}
		if dc.Announce {
			want = append(want, dc.Prefix)
		}
	}
	b.decisions = decisions
	select { // replace what the pusher has not taken yet
	case <-b.want:
	default:
	}
	b.want <- want
	d.publishBGP(b)
}

// publishBGP makes the driver visible to API readers and the VRRP
// goroutine.
func (d *Daemon) publishBGP(b *bgpDriver) {
	d.mu.Lock()
	d.snap.bgp = b
	if b != nil {
		d.snap.bgpDecisions = b.decisions
	} else {
		d.snap.bgpDecisions = nil
	}
	d.mu.Unlock()
}

// bgpStatus is vipctl bgp's view (nil without a bgp block).
func (d *Daemon) bgpStatus() *api.BGP {
	d.mu.Lock()
	b, decisions := d.snap.bgp, d.snap.bgpDecisions
	d.mu.Unlock()
	if b == nil {
		return nil
	}
	out := &api.BGP{RouterID: b.cfg.RouterID, LocalAS: b.cfg.LocalAS, Peers: []api.BGPPeer{}, Routes: []string{}, Decisions: []api.BGPDecision{}}
	b.mu.Lock()
	out.Error = b.err
	b.mu.Unlock()
	for _, dc := range decisions {
		out.Decisions = append(out.Decisions, api.BGPDecision{Prefix: dc.Prefix.String(), Announce: dc.Announce, Reason: dc.Reason})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := b.sp.Status(ctx)
	if err != nil {
		if out.Error == "" {
			out.Error = err.Error()
		}
		return out
	}
	out.Draining = st.Draining
	for _, r := range st.Routes {
		out.Routes = append(out.Routes, r.String())
	}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, api.BGPPeer{Addr: p.Addr, RemoteAS: p.RemoteAS, State: p.State, Since: p.Since, BFD: p.BFD, HoldTime: p.HoldTime})
	}
	return out
}

// BGPDrain implements api.BGPControl: GRACEFUL_SHUTDOWN, the drain pause,
// withdrawal; routes stay withdrawn until BGPResume.
func (s *source) BGPDrain(ctx context.Context) error {
	b, err := s.d().bgpDriverNow(ctx)
	if err != nil {
		return err
	}
	pause := time.Duration(b.pause.Load())
	s.d().log.Info("BGP: drain requested", "pause", pause)
	return b.sp.Drain(ctx, pause)
}

// BGPResume implements api.BGPControl.
func (s *source) BGPResume(ctx context.Context) error {
	d := s.d()
	b, err := d.bgpDriverNow(ctx)
	if err != nil {
		return err
	}
	if err := b.sp.Resume(ctx); err != nil {
		return err
	}
	d.log.Info("BGP: resumed")
	return d.call(ctx, func() {
		if d.bgp == b {
			b.decisions = nil // log the policy's verdicts again
			d.bgpUpdate()
		}
	})
}

func (d *Daemon) bgpDriverNow(ctx context.Context) (*bgpDriver, error) {
	var b *bgpDriver
	if err := d.call(ctx, func() { b = d.bgp }); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("no bgp block: BGP is off")
	}
	return b, nil
}
