package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// counters are IPVS's cumulative counters, updated without the service
// lock by the workers (bytes and packets) and under it (connections).
type counters struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
}

func (c *counters) load() lvs.Stats {
	return lvs.Stats{
		Conns:    c.conns.Load(),
		InPkts:   c.inPkts.Load(),
		OutPkts:  c.outPkts.Load(),
		InBytes:  c.inBytes.Load(),
		OutBytes: c.outBytes.Load(),
	}
}

// destination is a real server of a service. The embedded lvs.Dest is what
// the scheduler reads; it and the connection counts in it are guarded by
// the service lock.
type destination struct {
	lvs.Dest
	cfg     lvs.Destination
	sa      sockaddr // for connect(2)
	removed bool     // no longer in the service: drains
	stats   counters
	est     lvs.Estimator
}

func (d *destination) refs() int { return d.ActiveConns + d.InactiveConns + d.PersistConns }

// config is an immutable snapshot of a service's desired state; Apply
// swaps it, workers read it without locking.
type config struct {
	svc      lvs.Service
	timeouts lvs.Timeouts // with defaults filled in
	connect  time.Duration
}

// service is one running virtual service.
type service struct {
	key lvs.ServiceKey
	cfg atomic.Pointer[config]

	// Listening sockets (TCP) or VIP sockets (UDP), one per worker. Owned
	// by Apply (under Dataplane.mu).
	listeners []*listener

	mu       sync.Mutex // guards everything below and the lvs.Dest fields
	sched    lvs.Scheduler
	schedFor string // scheduler name and flags it was made for
	dests    []*destination
	view     []*lvs.Dest // dests as the scheduler sees them, same order
	trash    map[netip.AddrPort]*destination
	persist  *lvs.PersistTable
	linger   [2]lingerQueue // TIME_WAIT and CLOSE entries of closed connections
	removed  bool
	stats    counters
	est      lvs.Estimator
	noDest   uint64 // connections refused: no destination available
}

func newService(key lvs.ServiceKey) *service {
	return &service{key: key, trash: map[netip.AddrPort]*destination{}, persist: lvs.NewPersistTable()}
}

func schedKey(s lvs.Service) string { return fmt.Sprintf("%s/%d", s.Scheduler, s.Flags) }

// update reconciles the service to desired: scheduler, destinations
// (added at the head of the list as the kernel does, removed ones drain,
// re-added ones come back with their counters), weights and thresholds.
// The caller validated desired.
func (s *service) update(desired lvs.Service) error {
	cfg := &config{svc: desired, timeouts: desired.Timeouts.WithDefaults(), connect: desired.ConnectTimeout}
	if cfg.connect <= 0 {
		cfg.connect = 5 * time.Second
	}
	cfg.svc.Destinations = slices.Clone(desired.Destinations)
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := schedKey(desired); k != s.schedFor {
		sc, err := lvs.NewScheduler(desired.Scheduler, desired.Flags)
		if err != nil {
			return err
		}
		s.sched, s.schedFor = sc, k
		s.view = nil // force Update below
	}
	want := make(map[netip.AddrPort]lvs.Destination, len(desired.Destinations))
	for _, d := range desired.Destinations {
		want[d.Addr] = d
	}
	changed := s.view == nil
	kept := s.dests[:0:0]
	for _, d := range s.dests {
		if _, ok := want[d.cfg.Addr]; !ok {
			d.removed = true
			d.Index = -1
			s.trash[d.cfg.Addr] = d
			changed = true
			continue
		}
		kept = append(kept, d)
	}
	var added []*destination
	for _, w := range desired.Destinations {
		if i := slices.IndexFunc(kept, func(d *destination) bool { return d.cfg.Addr == w.Addr }); i >= 0 {
			d := kept[i]
			if d.cfg != w {
				changed = true
			}
			d.cfg = w
			d.Weight = w.Weight
			d.SetThresholds(w.UThreshold, w.LThreshold)
			continue
		}
		d := s.trash[w.Addr]
		if d != nil {
			delete(s.trash, w.Addr)
			d.removed = false
		} else {
			d = &destination{sa: makeSockaddr(w.Addr)}
			d.Addr = w.Addr
			d.est.Reset(lvs.Stats{})
		}
		d.cfg = w
		d.Weight = w.Weight
		d.SetThresholds(w.UThreshold, w.LThreshold)
		added = append(added, d)
		changed = true
	}
	// The kernel links each new destination at the head of the list, so
	// after adding A then B the list reads B, A.
	slices.Reverse(added)
	s.dests = append(added, kept...)
	s.view = make([]*lvs.Dest, len(s.dests))
	for i, d := range s.dests {
		d.Index = i
		s.view[i] = &d.Dest
	}
	if changed {
		s.sched.Update(s.view)
	}
	s.cfg.Store(cfg)
	return nil
}

// available says whether a persistence template may still send
// connections to d: it must still be part of the service.
func available(d *lvs.Dest) bool { return d.Index >= 0 }

func (s *service) destOf(d *lvs.Dest) *destination {
	if d == nil || d.Index < 0 || d.Index >= len(s.dests) {
		return nil
	}
	return s.dests[d.Index]
}

// pick chooses the destination of a new connection from client, under
// s.mu, honouring persistence. exclude lists destinations that already
// refused this connection (a vipd retry): they are hidden from the
// scheduler by marking them overloaded for the call, so schedulers that
// have a fallback rule (sh-fallback, mh-fallback) apply it.
func (s *service) pick(cfg *config, client netip.AddrPort, now time.Time, exclude []*destination) (*destination, *lvs.Template) {
	var key lvs.PersistKey
	persistent := cfg.svc.Persistence > 0
	if persistent {
		key = lvs.MakePersistKey(s.key, client.Addr(), cfg.svc.PersistMask)
		if t := s.persist.Lookup(key, available); t != nil {
			if d := s.destOf(t.Dest); d != nil && !slices.Contains(exclude, d) {
				return d, t
			}
		}
	}
	var saved [8]bool
	for i, d := range exclude {
		if i < len(saved) {
			saved[i] = d.Overloaded
		}
		d.Overloaded = true
	}
	chosen := s.sched.Schedule(s.view, lvs.Flow{Proto: s.key.Proto, Client: client, Virtual: s.key.Addr}, now)
	for i, d := range exclude {
		if i < len(saved) {
			d.Overloaded = saved[i]
		}
	}
	d := s.destOf(chosen)
	if d == nil || slices.Contains(exclude, d) {
		return nil, nil
	}
	if !persistent {
		return d, nil
	}
	return d, s.persist.Create(key, &d.Dest, cfg.svc.Persistence, now)
}

// bind counts a new connection entry on d (ipvsadm's Conns counter and
// the active/inactive counts) and attaches it to its template.
func (s *service) bind(d *destination, t *lvs.Template, st lvs.ConnState, now time.Time) {
	d.BindConn(st)
	d.stats.conns.Add(1)
	s.stats.conns.Add(1)
	if t != nil {
		s.persist.Attach(t, now)
	}
}

// unbind uncounts an entry that expired.
func (s *service) unbind(d *destination, t *lvs.Template, st lvs.ConnState) {
	d.UnbindConn(st)
	if t != nil {
		s.persist.Detach(t)
	}
}

// housekeep expires lingering entries and templates and drops drained
// destinations, under s.mu.
func (s *service) housekeep(now time.Time) {
	for i := range s.linger {
		s.linger[i].expire(now, s)
	}
	s.persist.Expire(now)
	for a, d := range s.trash {
		if d.refs() == 0 {
			delete(s.trash, a)
		}
	}
}

// idle reports whether a removed service has nothing left to drain.
func (s *service) idle() bool {
	if s.persist.Len() > 0 || s.linger[0].len() > 0 || s.linger[1].len() > 0 {
		return false
	}
	for _, d := range s.dests {
		if d.refs() > 0 {
			return false
		}
	}
	for _, d := range s.trash {
		if d.refs() > 0 {
			return false
		}
	}
	return true
}

func (s *service) addStats(d *destination, inPkts, outPkts, inBytes, outBytes uint64) {
	d.stats.inPkts.Add(inPkts)
	d.stats.outPkts.Add(outPkts)
	d.stats.inBytes.Add(inBytes)
	d.stats.outBytes.Add(outBytes)
	s.stats.inPkts.Add(inPkts)
	s.stats.outPkts.Add(outPkts)
	s.stats.inBytes.Add(inBytes)
	s.stats.outBytes.Add(outBytes)
}

// estimate folds the counters into the rate estimators (every 2 s).
func (s *service) estimate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.est.Update(s.stats.load())
	for _, d := range s.dests {
		d.est.Update(d.stats.load())
	}
	for _, d := range s.trash {
		d.est.Update(d.stats.load())
	}
}

func (s *service) status() lvs.ServiceStatus {
	cfg := s.cfg.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := lvs.ServiceStatus{Service: cfg.svc, Stats: s.stats.load(), Rates: s.est.Rates()}
	st.Service.Destinations = nil
	for _, d := range s.dests {
		st.Service.Destinations = append(st.Service.Destinations, d.cfg)
		st.Dests = append(st.Dests, lvs.DestStatus{
			Destination:   d.cfg,
			ActiveConns:   d.ActiveConns,
			InactiveConns: d.InactiveConns,
			PersistConns:  d.PersistConns,
			Stats:         d.stats.load(),
			Rates:         d.est.Rates(),
		})
	}
	return st
}

// entries appends the service's lingering entries and templates to out.
func (s *service) entries(now time.Time, out []lvs.ConnEntry) []lvs.ConnEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.linger {
		out = s.linger[i].entries(now, s.key, out)
	}
	s.persist.Each(func(t *lvs.Template) {
		e := lvs.ConnEntry{
			Proto:   s.key.Proto,
			Expire:  t.Expires(now),
			State:   lvs.StateNone.String(),
			Client:  netip.AddrPortFrom(t.Key.Client, 0),
			Virtual: s.key.Addr,
			Dest:    t.Dest.Addr,
			FWMark:  s.key.FWMark,
		}
		if !t.Valid() {
			// The kernel re-hashes an invalidated template with ports
			// 65535 and shows it so.
			e.Virtual = netip.AddrPortFrom(e.Virtual.Addr(), 0xffff)
			e.Dest = netip.AddrPortFrom(e.Dest.Addr(), 0xffff)
		}
		out = append(out, e)
	})
	return out
}
