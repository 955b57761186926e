package check

import (
	"container/heap"
	"math"
	"slices"
	"time"
)

// Server is one real server with its checkers, as the Runner watches it.
type Server struct {
	// Name identifies the server in events and status, e.g.
	// "[198.18.0.12]:tcp:80" (keepalived's FMT_RS).
	Name string
	// Weight is the configured weight; dynamic weights apply to it.
	Weight int64
	// Checkers all have to be up for the server to be up. A server with
	// no checker is always up.
	Checkers []Spec
	// Suspended starts a new server with its checkers suspended (see
	// Scheduler.Suspend); a kept server keeps its own setting.
	Suspended bool
}

// Spec is one checker of a server with its resolved timing.
type Spec struct {
	// Name identifies the checker in status and logs, e.g.
	// "HTTP_GET [198.18.0.12]:80".
	Name    string
	Checker Checker
	Timing  Timing
	// LogAllFailures logs every failed attempt of the checker while it
	// is up at Info (keepalived's log_all_failures, or the global
	// checker_log_all_failures); otherwise they are logged at Debug. It
	// does not take part in SameSpec.
	LogAllFailures bool
}

// EventKind tells what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// ServerInitial reports a server's state when the Runner starts,
	// before any check ran (up unless a checker has alpha).
	ServerInitial EventKind = iota
	ServerUp
	ServerDown
	// WeightChanged reports a new effective weight of a server whose
	// up/down state did not change.
	WeightChanged
)

var eventNames = [...]string{"initial", "up", "down", "weight"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "event?"
}

// Event is a change of a real server's state or effective weight.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Server string
	Up     bool
	Weight int64 // effective weight (configured weight plus dynamic weights)
	// Checker and Reason name the checker whose result caused the event
	// and what it saw.
	Checker string
	Reason  string
}

// Status is the state of one checker, for `vipctl checks` and metrics.
type Status struct {
	Server     string
	Checker    string
	Up         bool
	Running    bool
	Last       Result        // last attempt's result
	LastCheck  time.Time     // when the last attempt ended (zero: never)
	LastChange time.Time     // when Up last changed (zero: never)
	Duration   time.Duration // how long the last attempt took
	Failures   int           // consecutive failed attempts counted toward retry
	Next       time.Time     // when the next attempt is due (zero while running)
	Checks     uint64        // attempts made
	Failed     uint64        // attempts that failed
	// Suspended: ha_suspend holds the checker (its server's virtual
	// address is not on this host).
	Suspended bool
}

// ServerStatus is a server's aggregate state.
type ServerStatus struct {
	Name   string
	Up     bool
	Weight int64
}

type checkState struct {
	id      int
	srv     *serverState
	spec    Spec
	up      bool
	running bool
	fails   int // consecutive failures while up (retry counter)
	due     time.Time
	index   int // heap index, -1 when not queued
	weight  Weight
	st      Status
}

type serverState struct {
	name      string
	suspended bool
	base      int64
	checks    []*checkState
	downs     int // checkers down
	weight    int64
}

// Scheduler is the pure core of the Runner: it decides when each checker
// runs and what its results mean, with keepalived's rules, and owns no
// goroutine, socket or clock. The driver asks Next for the earliest due
// time, Due for the checkers to start, and reports each attempt to Done,
// which returns the server events it causes. Update replaces the set of
// servers on a configuration reload, keeping the state of what did not
// change.
//
// The rules (keepalived.conf(5) and keepalived's checker behaviour):
//   - the first attempt comes after a random delay in [0, warmup);
//   - after a success the next attempt comes delay_loop later; a checker
//     that was down is up again after one success;
//   - after a failure of a checker that is up, up to `retry` more attempts
//     follow, each delay_before_retry after the previous one ends; when
//     they all fail the checker goes down and the next attempt is
//     delay_loop later;
//   - a checker that is down is retried every delay_loop, with no retries;
//   - a server is up when all its checkers are up.
//
// Checker ids are never reused: an attempt of a checker that Update
// removed reports to Done under an id the Scheduler no longer knows, and
// is ignored.
type Scheduler struct {
	checks  []*checkState // configuration order
	byID    map[int]*checkState
	servers []*serverState
	queue   dueQueue
	jitter  func(max time.Duration) time.Duration
	nextID  int
}

// NewScheduler prepares the checkers of servers to start at now. jitter
// returns a random duration in [0, max) for warmup (nil: no delay); Update
// uses it too. Server names must be unique.
func NewScheduler(servers []Server, now time.Time, jitter func(max time.Duration) time.Duration) *Scheduler {
	s := &Scheduler{byID: map[int]*checkState{}, jitter: jitter}
	for _, srv := range servers {
		s.addServer(srv, now)
	}
	return s
}

// addServer starts a server as new: every checker up unless alpha.
func (s *Scheduler) addServer(srv Server, now time.Time) *serverState {
	ss := &serverState{name: srv.Name, base: srv.Weight, suspended: srv.Suspended}
	s.servers = append(s.servers, ss)
	for _, sp := range srv.Checkers {
		ss.checks = append(ss.checks, s.newCheck(ss, sp, now))
	}
	s.checks = append(s.checks, ss.checks...)
	ss.recount()
	return ss
}

// newCheck makes a checker as it starts: up unless alpha, first attempt
// after the warmup jitter.
func (s *Scheduler) newCheck(ss *serverState, sp Spec, now time.Time) *checkState {
	c := &checkState{id: s.nextID, srv: ss, spec: sp, up: !sp.Timing.Alpha, index: -1}
	s.nextID++
	c.due = now
	if sp.Timing.Warmup > 0 && s.jitter != nil {
		c.due = now.Add(s.jitter(sp.Timing.Warmup))
	}
	c.st = Status{Server: ss.name, Checker: sp.Name, Up: c.up}
	s.byID[c.id] = c
	heap.Push(&s.queue, c)
	return c
}

// CheckerKey names one checker of one server.
type CheckerKey struct{ Server, Checker string }

// Resume sets the checkers' verdicts another process reached (vipctl
// upgrade), before Initial: a server that was down stays down and one
// that was up stays up, with no event, while the checks carry on.
// Checkers not in up keep their initial state.
func (s *Scheduler) Resume(up map[CheckerKey]bool) {
	for _, ss := range s.servers {
		for _, c := range ss.checks {
			if v, ok := up[CheckerKey{ss.name, c.spec.Name}]; ok {
				c.up = v
				c.st.Up = v
			}
		}
		ss.recount()
	}
}

// recount recomputes a server's aggregate from its checkers.
func (ss *serverState) recount() {
	ss.downs = 0
	for _, c := range ss.checks {
		if !c.up {
			ss.downs++
		}
	}
	ss.weight = ss.effectiveWeight()
}

// Initial returns one ServerInitial event per server.
func (s *Scheduler) Initial(now time.Time) []Event {
	ev := make([]Event, 0, len(s.servers))
	for _, ss := range s.servers {
		ev = append(ev, Event{Kind: ServerInitial, Time: now, Server: ss.name, Up: ss.downs == 0, Weight: ss.weight})
	}
	return ev
}

// ReloadReason is the Reason of the events Update returns for servers
// whose state changed because their checkers or weight did.
const ReloadReason = "configuration reload"

// Update replaces the servers at now, as a configuration reload does, and
// returns the events it causes and the ids of the removed checkers that
// are running, whose attempts the driver should cancel (their results are
// ignored anyway). Server names must be unique.
//
//   - A server is the same server when its Name is; a checker is the same
//     checker when it belongs to the same server and its Name, Timing and
//     Checker configuration are equal (SameSpec). Same checkers keep all
//     their state: up or down, retry count, next due time, counters, last
//     result, dynamic weight, and an attempt in flight, whose result still
//     counts. They take the new Spec (a new Checker value that compares
//     equal, such as an SSL_GET with reloaded certificates, is used from
//     the next attempt on).
//   - Other checkers start as new (up unless alpha, first attempt after the
//     warmup jitter); checkers no longer configured stop.
//   - A new server gets a ServerInitial event. A kept server whose
//     aggregate (up/down or effective weight, which follows its new
//     configured Weight) changed gets one ServerUp, ServerDown or
//     WeightChanged event with Reason ReloadReason; a removed server gets
//     none.
func (s *Scheduler) Update(now time.Time, servers []Server) (events []Event, stopped []int) {
	old := make(map[string]*serverState, len(s.servers))
	for _, ss := range s.servers {
		old[ss.name] = ss
	}
	s.servers = s.servers[:0:0]
	s.checks = s.checks[:0:0]
	for _, srv := range servers {
		ss, ok := old[srv.Name]
		if !ok {
			ss = s.addServer(srv, now)
			events = append(events, Event{Kind: ServerInitial, Time: now, Server: ss.name, Up: ss.downs == 0, Weight: ss.weight})
			continue
		}
		delete(old, srv.Name)
		wasUp, oldWeight := ss.downs == 0, ss.weight
		prev := ss.checks
		ss.checks = make([]*checkState, 0, len(srv.Checkers))
		for _, sp := range srv.Checkers {
			var c *checkState
			for i, p := range prev {
				if p != nil && SameSpec(p.spec, sp) {
					c, prev[i] = p, nil
					c.spec = sp
					break
				}
			}
			if c == nil {
				c = s.newCheck(ss, sp, now)
			}
			ss.checks = append(ss.checks, c)
		}
		for _, p := range prev {
			if p != nil && s.removeCheck(p) {
				stopped = append(stopped, p.id)
			}
		}
		ss.base = srv.Weight
		ss.recount()
		s.servers = append(s.servers, ss)
		s.checks = append(s.checks, ss.checks...)
		if e, ok := ss.change(now, wasUp, oldWeight); ok {
			e.Reason = ReloadReason
			events = append(events, e)
		}
	}
	for _, ss := range old {
		for _, c := range ss.checks {
			if s.removeCheck(c) {
				stopped = append(stopped, c.id)
			}
		}
	}
	slices.Sort(stopped)
	return events, stopped
}

// removeCheck forgets a checker and reports whether it was running.
func (s *Scheduler) removeCheck(c *checkState) bool {
	if c.index >= 0 {
		heap.Remove(&s.queue, c.index)
	}
	delete(s.byID, c.id)
	return c.running
}

// change returns the event for a server whose aggregate was wasUp with
// oldWeight, if it changed.
func (ss *serverState) change(now time.Time, wasUp bool, oldWeight int64) (Event, bool) {
	isUp := ss.downs == 0
	ev := Event{Time: now, Server: ss.name, Up: isUp, Weight: ss.weight}
	switch {
	case isUp && !wasUp:
		ev.Kind = ServerUp
	case !isUp && wasUp:
		ev.Kind = ServerDown
	case ss.weight != oldWeight:
		ev.Kind = WeightChanged
	default:
		return ev, false
	}
	return ev, true
}

// Next returns when the earliest idle checker is due; false when every
// checker is running (or there is none).
func (s *Scheduler) Next() (time.Time, bool) {
	if len(s.queue) == 0 {
		return time.Time{}, false
	}
	return s.queue[0].due, true
}

// Due marks the checkers due at or before now as running and returns their
// ids, for the driver to start. A checker of a suspended server is not
// started: it comes due again delay_loop later, as keepalived's disabled
// checker threads do.
func (s *Scheduler) Due(now time.Time) []int {
	var ids []int
	var held []*checkState
	for len(s.queue) > 0 && !s.queue[0].due.After(now) {
		c := heap.Pop(&s.queue).(*checkState)
		if c.srv.suspended {
			c.due = now.Add(max(c.spec.Timing.DelayLoop, time.Second))
			held = append(held, c)
			continue
		}
		c.running = true
		ids = append(ids, c.id)
	}
	for _, c := range held {
		heap.Push(&s.queue, c)
	}
	return ids
}

// Suspend sets which servers have their checkers suspended (keepalived's
// ha_suspend: the virtual server's address is not on this host); the
// others run. A suspended server keeps its state and weight, and an
// attempt in flight still counts. It returns the servers whose setting
// changed, in configuration order.
func (s *Scheduler) Suspend(suspended map[string]bool) (changed []string) {
	for _, ss := range s.servers {
		if ss.suspended != suspended[ss.name] {
			ss.suspended = suspended[ss.name]
			changed = append(changed, ss.name)
		}
	}
	return changed
}

// Spec returns the spec of checker id; false when Update removed it.
func (s *Scheduler) Spec(id int) (Spec, bool) {
	c, ok := s.byID[id]
	if !ok {
		return Spec{}, false
	}
	return c.spec, true
}

// Check returns the status of checker id; false when Update removed it.
func (s *Scheduler) Check(id int) (Status, bool) {
	c, ok := s.byID[id]
	if !ok {
		return Status{}, false
	}
	return c.status(), true
}

// Done records the result of an attempt of checker id that took d and
// ended at now, schedules the next attempt, and returns the server events
// it causes.
func (s *Scheduler) Done(now time.Time, id int, d time.Duration, res Result) []Event {
	c, ok := s.byID[id]
	if !ok || !c.running {
		return nil
	}
	c.running = false
	t := c.spec.Timing
	c.st.Last, c.st.LastCheck, c.st.Duration = res, now, d
	c.st.Checks++
	ss := c.srv
	wasUp := ss.downs == 0
	oldWeight := ss.weight
	var changed bool
	if res.Up {
		c.fails = 0
		c.due = now.Add(t.DelayLoop)
		if !c.up {
			c.up, changed = true, true
			ss.downs--
		}
		c.weight = res.Weight
	} else {
		c.st.Failed++
		switch {
		case c.up && c.fails < t.Retry:
			c.fails++
			c.due = now.Add(t.DelayBeforeRetry)
		case c.up:
			c.up, changed = false, true
			c.fails = 0
			ss.downs++
			c.due = now.Add(t.DelayLoop)
		default:
			c.due = now.Add(t.DelayLoop)
		}
	}
	if changed {
		c.st.LastChange = now
	}
	c.st.Up, c.st.Failures = c.up, c.fails
	heap.Push(&s.queue, c)

	ss.weight = ss.effectiveWeight()
	ev, ok := ss.change(now, wasUp, oldWeight)
	if !ok {
		return nil
	}
	ev.Checker, ev.Reason = c.spec.Name, res.Reason
	return []Event{ev}
}

// effectiveWeight is the configured weight changed by the dynamic weights
// of the checkers that are up, kept within what IPVS accepts.
func (ss *serverState) effectiveWeight() int64 {
	w := ss.base
	for _, c := range ss.checks {
		if !c.up {
			continue
		}
		switch c.weight.Kind {
		case WeightSet:
			w += c.weight.Value - ss.base
		case WeightAdd:
			w += c.weight.Value
		}
	}
	return min(max(w, 0), math.MaxInt32)
}

// Status returns the status of every checker, in configuration order.
func (s *Scheduler) Status() []Status {
	out := make([]Status, len(s.checks))
	for i, c := range s.checks {
		out[i] = c.status()
	}
	return out
}

func (c *checkState) status() Status {
	st := c.st
	st.Running = c.running
	st.Suspended = c.srv.suspended
	if !c.running {
		st.Next = c.due
	}
	return st
}

// Servers returns every server's aggregate state, in configuration order.
func (s *Scheduler) Servers() []ServerStatus {
	out := make([]ServerStatus, len(s.servers))
	for i, ss := range s.servers {
		out[i] = ServerStatus{Name: ss.name, Up: ss.downs == 0, Weight: ss.weight}
	}
	return out
}

// dueQueue is a min-heap of idle checkers by due time.
type dueQueue []*checkState

func (q dueQueue) Len() int { return len(q) }
func (q dueQueue) Less(i, j int) bool {
	if d := q[i].due.Compare(q[j].due); d != 0 {
		return d < 0
	}
	return q[i].id < q[j].id
}
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueQueue) Push(x any) {
	c := x.(*checkState)
	c.index = len(*q)
	*q = append(*q, c)
}
func (q *dueQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*q = old[:len(old)-1]
	return c
}
