// Package proxy is vipd's userspace data plane: an L4 proxy for TCP and
// UDP that behaves like IPVS in NAT mode as far as a user can see (the
// same schedulers, persistence templates, connection states and timeouts,
// active/inactive counts, thresholds and counters), and needs nothing from
// the kernel but sockets. It is what HAProxy `mode tcp` does in the
// "HAProxy + Keepalived" setups, with IPVS's semantics.
//
// TCP runs on one epoll event loop per core (see worker.go), with
// SO_REUSEPORT listeners and splice(2) for bulk data; UDP runs on the
// same loops, with a flow table per loop keyed by the client's address
// (see udp.go).
package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lvs"
)

// Options configure a proxy data plane.
type Options struct {
	// Workers is the number of TCP event loops (threads); 0 means one per
	// CPU the Go runtime uses (GOMAXPROCS). New raises GOMAXPROCS to
	// Workers+1 so that the loops, which block in epoll_wait, always leave
	// a P free.
	Workers int
	// Logger receives warnings and debug messages; nil means slog.Default.
	Logger *slog.Logger
}

// Dataplane is the userspace proxy. It implements dataplane.Dataplane.
type Dataplane struct {
	log     *slog.Logger
	workers []*worker

	mu       sync.Mutex // serialises Apply and Close; guards the maps
	services map[lvs.ServiceKey]*service
	draining []*service // removed, with connections still open
	closed   bool
	// inherited: listening sockets of the previous process, for the
	// services Apply starts (handover.go); handedOver: StopAccepting
	// was called.
	inherited  map[inheritKey][]int
	handedOver bool

	stop chan struct{}
	bg   sync.WaitGroup
}

var _ dataplane.Dataplane = (*Dataplane)(nil)

// New starts a proxy data plane with no services.
func New(opts Options) (*Dataplane, error) {
	dp := &Dataplane{log: opts.Logger, services: map[lvs.ServiceKey]*service{}, stop: make(chan struct{})}
	if dp.log == nil {
		dp.log = slog.Default()
	}
	dp.log = dp.log.With("dataplane", "proxy")
	n := opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	// One P more than event loops (see worker.go). This is process-wide
	// and ends the runtime's automatic GOMAXPROCS updates.
	if runtime.GOMAXPROCS(0) <= n {
		runtime.GOMAXPROCS(n + 1)
	}
	for i := range n {
		w, err := newWorker(dp, i)
		if err != nil {
			dp.Close()
			return nil, fmt.Errorf("proxy: worker %d: %w", i, err)
		}
		dp.workers = append(dp.workers, w)
		dp.bg.Add(1)
		go func() { defer dp.bg.Done(); w.run() }()
	}
	dp.bg.Add(1)
	go func() { defer dp.bg.Done(); dp.housekeeper() }()
	return dp, nil
}

// Check is the proxy's dataplane.Check: every service valid (Validate)
// and no service listed twice. Apply refuses exactly these.
func Check(desired []lvs.Service) error {
	var errs []error
	seen := map[lvs.ServiceKey]bool{}
	for _, d := range desired {
		if err := admit(d, seen); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// admit says why the proxy cannot run d after the services whose keys
// are in seen (nil: it can), and adds d's key to seen.
func admit(d lvs.Service, seen map[lvs.ServiceKey]bool) error {
	if seen[d.Key] {
		return fmt.Errorf("proxy: service %s: listed twice", d.Key)
	}
	seen[d.Key] = true
	if err := Validate(d); err != nil {
		return fmt.Errorf("proxy: service %s: %w", d.Key, err)
	}
	return nil
}

var _ dataplane.Check = Check

// Validate reports why the proxy cannot run s, or nil. The daemon can call
// it when it checks a configuration, to name the offending line.
func Validate(s lvs.Service) error {
	switch {
	case s.Key.FWMark != 0:
		return fmt.Errorf("fwmark %d: firewall-mark services need the ipvs data plane", s.Key.FWMark)
	case s.Key.Proto != lvs.TCP && s.Key.Proto != lvs.UDP:
		return fmt.Errorf("protocol %s: the proxy data plane runs TCP and UDP only (use the ipvs data plane)", s.Key.Proto)
	case !s.Key.Addr.Addr().IsValid():
		return errors.New("virtual address missing")
	case s.Key.Addr.Port() == 0:
		return errors.New("port 0 (all ports) needs the ipvs data plane")
	case s.ProxyProtocol != 0 && s.ProxyProtocol != 1 && s.ProxyProtocol != 2:
		return fmt.Errorf("proxy_protocol %d: must be 1 or 2", s.ProxyProtocol)
	case s.ProxyProtocol != 0 && s.Key.Proto != lvs.TCP:
		return errors.New("proxy_protocol works on TCP services only")
	case s.Persistence < 0:
		return fmt.Errorf("persistence_timeout %v: negative", s.Persistence)
	}
	if _, err := lvs.NewScheduler(s.Scheduler, s.Flags); err != nil {
		return fmt.Errorf("lb_algo: %w", err)
	}
	seen := map[any]bool{}
	for _, d := range s.Destinations {
		switch {
		case d.Forward != lvs.Masq:
			return fmt.Errorf("real_server %s: lb_kind %s needs the ipvs data plane (the proxy does NAT only)", d.Addr, d.Forward.LBKind())
		case !d.Addr.Addr().IsValid() || d.Addr.Port() == 0:
			return fmt.Errorf("real_server %s: needs an address and a port", d.Addr)
		case d.Weight < 0:
			return fmt.Errorf("real_server %s: weight %d is negative", d.Addr, d.Weight)
		case seen[d.Addr]:
			return fmt.Errorf("real_server %s: listed twice", d.Addr)
		}
		seen[d.Addr] = true
	}
	return nil
}

// Apply reconciles the running services to desired. It is idempotent.
// An invalid service is reported and skipped, leaving its running version
// (if any) untouched; the others are applied. Removing a destination lets
// its connections drain; removing a service closes its listeners at once
// while its TCP connections drain as IPVS lets them (they keep running
// until they close or idle out); a UDP service's flows close with it, as
// replies could no longer leave from the VIP.
func (dp *Dataplane) Apply(ctx context.Context, desired []lvs.Service) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.closed {
		return errors.New("proxy: closed")
	}
	if dp.handedOver {
		return errors.New("proxy: handed over to the next process")
	}
	var errs []error
	keep := map[lvs.ServiceKey]bool{}
	for _, d := range desired {
		// The same refusals as Check; a refused service keeps its
		// running version (its key is kept).
		if err := admit(d, keep); err != nil {
			errs = append(errs, err)
			continue
		}
		s := dp.services[d.Key]
		if s != nil {
			if err := s.update(d); err != nil {
				errs = append(errs, fmt.Errorf("proxy: service %s: %w", d.Key, err))
			}
			continue
		}
		s = newService(d.Key)
		if err := s.update(d); err != nil {
			errs = append(errs, fmt.Errorf("proxy: service %s: %w", d.Key, err))
			continue
		}
		if err := dp.start(s); err != nil {
			errs = append(errs, fmt.Errorf("proxy: service %s: %w", d.Key, err))
			continue
		}
		dp.services[d.Key] = s
	}
	for k, s := range dp.services {
		if !keep[k] {
			dp.remove(s)
			delete(dp.services, k)
		}
	}
	return errors.Join(errs...)
}

// start opens a new service's sockets.
func (dp *Dataplane) start(s *service) error {
	if s.key.Proto == lvs.UDP {
		return dp.startUDP(s)
	}
	return dp.openListeners(s, listenTCP, func(w *worker, fd int) (*listener, error) {
		ln := &listener{svc: s, w: w, ep: endpoint{fd: fd, kind: kindListener}}
		ln.ep.ln = ln
		return ln, w.addListener(ln)
	})
}

// openListeners gives every event loop a socket of the service:
// inherited sockets first, every one of them (a socket left out would
// reset the connections in its accept queue when closed, or drop the
// datagrams in its queue), spread over the loops; then new ones from
// open for the loops left. add runs on the loop and registers the
// socket there. On an error every socket of the service is closed.
func (dp *Dataplane) openListeners(s *service, open func(netip.AddrPort) (int, error), add func(w *worker, fd int) (*listener, error)) error {
	inh := dp.takeInherited(s.key.Proto, s.key.Addr)
	for i := range max(len(dp.workers), len(inh)) {
		w := dp.workers[i%len(dp.workers)]
		var fd int
		var err error
		if i < len(inh) {
			fd = inh[i]
		} else {
			fd, err = open(s.key.Addr)
		}
		if err != nil {
			for _, rest := range inh[min(i+1, len(inh)):] {
				sysClose(rest)
			}
			dp.closeListeners(s)
			return err
		}
		var ln *listener
		var rerr error
		if !w.call(func() { ln, rerr = add(w, fd) }) {
			rerr = errors.New("worker stopped")
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

func (dp *Dataplane) closeListeners(s *service) {
	for _, ln := range s.listeners {
		if ln.ep.kind == kindUDP {
			ln.w.call(func() { ln.w.removeUDP(ln) })
		} else {
			ln.w.call(func() { ln.w.removeListener(ln) })
		}
	}
	s.listeners = nil
}

// remove stops a service's listeners; its connections drain.
func (dp *Dataplane) remove(s *service) {
	dp.closeListeners(s)
	s.mu.Lock()
	s.removed = true
	s.mu.Unlock()
	dp.draining = append(dp.draining, s)
}

// Services returns the running services, sorted by protocol, address and
// port, each with its destinations in list order (most recently added
// first, as the kernel lists them).
func (dp *Dataplane) Services() []lvs.ServiceStatus {
	svcs := dp.serviceList(false)
	slices.SortFunc(svcs, func(a, b *service) int { return compareKeys(a.key, b.key) })
	out := make([]lvs.ServiceStatus, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, s.status())
	}
	return out
}

func compareKeys(a, b lvs.ServiceKey) int {
	return cmp.Or(
		cmp.Compare(a.FWMark, b.FWMark),
		cmp.Compare(a.Proto, b.Proto),
		a.Addr.Addr().Compare(b.Addr.Addr()),
		cmp.Compare(a.Addr.Port(), b.Addr.Port()),
	)
}

// Conns returns the connection table: live connections, closed ones still
// lingering in TIME_WAIT or CLOSE, UDP flows and persistence templates.
func (dp *Dataplane) Conns() []lvs.ConnEntry {
	now := time.Now()
	var out []lvs.ConnEntry
	for _, w := range dp.workers {
		w.call(func() { out = w.entries(now, out) })
	}
	svcs := dp.serviceList(true)
	for _, s := range svcs {
		out = s.entries(now, out)
	}
	return out
}

// serviceList returns the running services, and the draining ones
// too when asked, for work done outside dp.mu.
func (dp *Dataplane) serviceList(draining bool) []*service {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	svcs := make([]*service, 0, len(dp.services)+len(dp.draining))
	for _, s := range dp.services {
		svcs = append(svcs, s)
	}
	if draining {
		svcs = append(svcs, dp.draining...)
	}
	return svcs
}

// Close stops the data plane: listeners, connections (reset), flows.
func (dp *Dataplane) Close() error {
	dp.mu.Lock()
	if dp.closed {
		dp.mu.Unlock()
		return nil
	}
	dp.closed = true
	dp.mu.Unlock()
	close(dp.stop)
	for _, w := range dp.workers {
		w.do(func() { w.stopping = true })
	}
	dp.bg.Wait()
	return nil
}

// housekeeper expires lingering entries and templates every
// second and feeds the rate estimators every 2 s.
func (dp *Dataplane) housekeeper() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	est := time.NewTicker(lvs.EstimatorInterval)
	defer est.Stop()
	for {
		select {
		case <-dp.stop:
			return
		case now := <-tick.C:
			svcs := dp.serviceList(true)
			for _, s := range svcs {
				s.mu.Lock()
				s.housekeep(now)
				s.mu.Unlock()
			}
			dp.mu.Lock()
			dp.draining = slices.DeleteFunc(dp.draining, func(s *service) bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.idle()
			})
			dp.mu.Unlock()
		case <-est.C:
			for _, s := range dp.serviceList(false) {
				s.estimate()
			}
		}
	}
}
