package lvs

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Dest is a destination as a scheduler sees it: the fields of the kernel's
// ip_vs_dest that schedulers read. The data plane owns these values and
// keeps them current (connection counts, overload flag from thresholds).
type Dest struct {
	Addr          netip.AddrPort
	Weight        int
	ActiveConns   int
	InactiveConns int
	PersistConns  int
	UThreshold    int
	LThreshold    int
	Overloaded    bool // IP_VS_DEST_F_OVERLOAD, set when ActiveConns+InactiveConns reach UThreshold

	// Index is the data plane's handle for the destination; schedulers
	// ignore it.
	Index int
}

// Flow is what a hashing scheduler (sh, dh, mh, lblc, lblcr) hashes: the
// first packet of a new connection.
type Flow struct {
	Proto   Protocol
	Client  netip.AddrPort
	Virtual netip.AddrPort
}

// Scheduler picks the destination of a new connection, with the kernel's
// exact rules for its algorithm.
//
// A scheduler keeps the state its kernel counterpart keeps (rr's position,
// wrr's current weight, lblc's table, mh's lookup table) but owns no clock,
// socket or goroutine: time comes in as an argument. It is not safe for
// concurrent use; the data plane serialises calls per service.
//
// dests is the service's destination list in the data plane's list order,
// which is the kernel's: the most recently added destination first (the
// kernel adds to the head of svc->destinations).
type Scheduler interface {
	// Name is the ipvsadm name (rr, wrr, ...).
	Name() string
	// Update is called whenever a destination is added or removed or a
	// weight changes, like the kernel's add_dest/del_dest/upd_dest hooks.
	Update(dests []*Dest)
	// Schedule returns the destination for a new connection, or nil when
	// none is available (all quiesced, overloaded or absent).
	Schedule(dests []*Dest, f Flow, now time.Time) *Dest
}

// SchedulerFactory makes a scheduler for a service with the given flags.
type SchedulerFactory func(flags SchedFlags) Scheduler

var (
	schedMu    sync.RWMutex
	schedulers = map[string]SchedulerFactory{}
)

// RegisterScheduler makes a scheduler available by name. Each scheduler's
// file registers itself in an init function.
func RegisterScheduler(name string, f SchedulerFactory) {
	schedMu.Lock()
	defer schedMu.Unlock()
	schedulers[name] = f
}

// NewScheduler returns a new scheduler by its ipvsadm name.
func NewScheduler(name string, flags SchedFlags) (Scheduler, error) {
	schedMu.RLock()
	f, ok := schedulers[name]
	schedMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown scheduler %q (known: %v)", name, SchedulerNames())
	}
	return f(flags), nil
}

// SchedulerNames lists the registered schedulers, sorted.
func SchedulerNames() []string {
	schedMu.RLock()
	defer schedMu.RUnlock()
	names := make([]string, 0, len(schedulers))
	for n := range schedulers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// stateless is a scheduler whose choice depends on the destinations'
// weights and counters only, never on what it chose before (lc, wlc, sed,
// nq, fo, ovf): it has nothing to update and ignores the flow.
type stateless struct {
	name string
	pick func(dests []*Dest) *Dest
}

func (s stateless) Name() string                                      { return s.name }
func (stateless) Update([]*Dest)                                      {}
func (s stateless) Schedule(dests []*Dest, _ Flow, _ time.Time) *Dest { return s.pick(dests) }

// registerStateless registers the stateless scheduler name that picks
// with pick.
func registerStateless(name string, pick func(dests []*Dest) *Dest) {
	RegisterScheduler(name, func(SchedFlags) Scheduler { return stateless{name, pick} })
}
