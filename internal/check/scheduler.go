package check

import (
	"container/heap"
	"math"
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
}

// Spec is one checker of a server with its resolved timing.
type Spec struct {
	// Name identifies the checker in status and logs, e.g.
	// "HTTP_GET [198.18.0.12]:80".
	Name    string
	Checker Checker
	Timing  Timing
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
	name   string
	base   int64
	checks []*checkState
	downs  int // checkers down
	weight int64
}

// Scheduler is the pure core of the Runner: it decides when each checker
// runs and what its results mean, with keepalived's rules, and owns no
// goroutine, socket or clock. The driver asks Next for the earliest due
// time, Due for the checkers to start, and reports each attempt to Done,
// which returns the server events it causes.
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
type Scheduler struct {
	checks  []*checkState
	servers []*serverState
	queue   dueQueue
}

// NewScheduler prepares the checkers of servers to start at now. jitter
// returns a random duration in [0, max) for warmup (nil: no delay).
func NewScheduler(servers []Server, now time.Time, jitter func(max time.Duration) time.Duration) *Scheduler {
	s := &Scheduler{}
	for _, srv := range servers {
		ss := &serverState{name: srv.Name, base: srv.Weight}
		s.servers = append(s.servers, ss)
		for _, sp := range srv.Checkers {
			c := &checkState{id: len(s.checks), srv: ss, spec: sp, up: !sp.Timing.Alpha, index: -1}
			c.due = now
			if sp.Timing.Warmup > 0 && jitter != nil {
				c.due = now.Add(jitter(sp.Timing.Warmup))
			}
			c.st = Status{Server: ss.name, Checker: sp.Name, Up: c.up}
			if !c.up {
				ss.downs++
			}
			ss.checks = append(ss.checks, c)
			s.checks = append(s.checks, c)
			heap.Push(&s.queue, c)
		}
		ss.weight = ss.effectiveWeight()
	}
	return s
}

// Initial returns one ServerInitial event per server.
func (s *Scheduler) Initial(now time.Time) []Event {
	ev := make([]Event, 0, len(s.servers))
	for _, ss := range s.servers {
		ev = append(ev, Event{Kind: ServerInitial, Time: now, Server: ss.name, Up: ss.downs == 0, Weight: ss.weight})
	}
	return ev
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
// ids, for the driver to start.
func (s *Scheduler) Due(now time.Time) []int {
	var ids []int
	for len(s.queue) > 0 && !s.queue[0].due.After(now) {
		c := heap.Pop(&s.queue).(*checkState)
		c.running = true
		ids = append(ids, c.id)
	}
	return ids
}

// Spec returns the spec of checker id.
func (s *Scheduler) Spec(id int) Spec { return s.checks[id].spec }

// Done records the result of an attempt of checker id that took d and
// ended at now, schedules the next attempt, and returns the server events
// it causes.
func (s *Scheduler) Done(now time.Time, id int, d time.Duration, res Result) []Event {
	c := s.checks[id]
	if !c.running {
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
	isUp := ss.downs == 0
	ev := Event{Time: now, Server: ss.name, Up: isUp, Weight: ss.weight, Checker: c.spec.Name, Reason: res.Reason}
	switch {
	case isUp && !wasUp:
		ev.Kind = ServerUp
	case !isUp && wasUp:
		ev.Kind = ServerDown
	case ss.weight != oldWeight:
		ev.Kind = WeightChanged
	default:
		return nil
	}
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
		out[i] = c.st
		out[i].Running = c.running
		if !c.running {
			out[i].Next = c.due
		}
	}
	return out
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
