package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Clock is the time source of the Runner; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After is time.After: it delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tunes a Runner. The zero value works.
type Options struct {
	// Clock defaults to the real clock.
	Clock Clock
	// Jitter returns a random duration in [0, max) for warmup; defaults to
	// a uniform random one.
	Jitter func(max time.Duration) time.Duration
	// OnEvent receives every server event, in order, from the Runner's
	// goroutine; it must not block for long (hand off to a channel).
	OnEvent func(Event)
	// Logger logs checker failures and state changes; defaults to
	// slog.Default().
	Logger *slog.Logger
	// Resume are the checkers' verdicts handed over by the previous
	// process (Scheduler.Resume); nil at an ordinary start.
	Resume map[CheckerKey]bool
	// Coalesce starts, at each wake-up, the checkers due within this much
	// time, so 10,000 checkers spread over a delay_loop wake the process
	// about 100 times a second rather than 1,667; default 10 ms, negative
	// for none.
	Coalesce time.Duration
	// NoLoop runs HTTP_GET and TCP_CHECK attempts on goroutines like
	// every other checker, instead of on the Runner's event loop
	// (loop.go): the engine before issue 17, kept as the reference
	// bench/checks measures the loop against in the same run.
	NoLoop bool
}

// Runner runs the checkers of a set of real servers with keepalived's
// timing. One goroutine owns all state (a Scheduler); HTTP_GET (without
// TLS) and TCP_CHECK attempts run on that goroutine's event loop
// (probeLoop: raw non-blocking sockets on one epoll set), the others on a
// pool of goroutines that grows with the attempts in flight, so 10,000
// idle checkers cost a heap entry each, not a goroutine. Events reach
// OnEvent from a goroutine of their own, in order, so a slow consumer
// never holds up the checks, and a consumer that waits for the caller of
// Update cannot deadlock with it.
type Runner struct {
	opts    Options
	servers []Server
	status  chan chan snapshot
	updates chan update
	started chan struct{}
	done    chan struct{}

	evMu   sync.Mutex
	evQ    []Event
	evWake chan struct{}
}

type snapshot struct {
	checks  []Status
	servers []ServerStatus
}

type update struct {
	servers []Server
	done    chan struct{}
	// suspend, when not nil, is a Suspend instead of a reload; the
	// names that changed come back on changed (buffered).
	suspend map[string]bool
	changed chan []string
}

type attemptDone struct {
	id  int
	d   time.Duration
	res Result
}

// job is one attempt handed to a worker.
type job struct {
	id      int
	checker Checker
	ctx     context.Context
	cancel  context.CancelFunc
}

// ErrStopped is returned by Update once Run has returned.
var ErrStopped = errors.New("health checks stopped")

// NewRunner returns a Runner for servers; Run starts it.
func NewRunner(servers []Server, opts Options) *Runner {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Jitter == nil {
		opts.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Coalesce == 0 {
		opts.Coalesce = 10 * time.Millisecond
	}
	if opts.Coalesce < 0 {
		opts.Coalesce = 0
	}
	return &Runner{
		opts: opts, servers: servers,
		status: make(chan chan snapshot), updates: make(chan update),
		started: make(chan struct{}), done: make(chan struct{}),
		evWake: make(chan struct{}, 1),
	}
}

// Validate refuses what the Scheduler cannot run: two servers of one
// name (they would share state across a reload) and a spec without a
// Checker.
func Validate(servers []Server) error {
	seen := make(map[string]bool, len(servers))
	for _, srv := range servers {
		if seen[srv.Name] {
			return fmt.Errorf("health checks: two real servers named %s", srv.Name)
		}
		seen[srv.Name] = true
		for _, sp := range srv.Checkers {
			if sp.Checker == nil {
				return fmt.Errorf("health checks: %s: checker %q has no Checker", srv.Name, sp.Name)
			}
		}
	}
	return nil
}

// Run checks until ctx is canceled, then cancels the attempts in flight,
// waits for them and returns; events not yet handed to OnEvent are
// dropped. It emits one ServerInitial event per server first. Run may be
// called once.
func (r *Runner) Run(ctx context.Context) error {
	defer close(r.done)
	if err := Validate(r.servers); err != nil {
		return err
	}
	clk := r.opts.Clock
	s := NewScheduler(r.servers, clk.Now(), r.opts.Jitter)
	if r.opts.Resume != nil {
		s.Resume(r.opts.Resume)
	}
	r.servers = nil // the Scheduler has them; Update replaces them
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.deliver(actx)
	}()
	for _, e := range s.Initial(clk.Now()) {
		r.emit(e)
	}
	close(r.started)
	results := make(chan attemptDone)
	// Attempts run on a pool of goroutines that outlive one attempt: a
	// fresh goroutine per attempt would grow its stack again every time
	// (the dial and TLS paths are deep), which showed as the largest
	// Go-side cost at 10,000 checkers. The pool grows on demand, so a
	// thousand blackholed servers waiting out connect_timeout never
	// delay the others, and shrinks back to maxIdle.
	jobs := make(chan job)
	idle := 0
	const maxIdle = 64
	worker := func(j job) {
		defer wg.Done()
		for {
			start := clk.Now()
			res := j.checker.Check(j.ctx)
			j.cancel()
			select {
			case results <- attemptDone{id: j.id, d: clk.Now().Sub(start), res: res}:
			case <-actx.Done():
				return
			}
			select {
			case j = <-jobs:
				if j.checker == nil {
					return
				}
			case <-actx.Done():
				return
			}
		}
	}
	// inflight cancels the attempts of checkers that Update removes.
	inflight := map[int]context.CancelFunc{}
	var lp *probeLoop
	if !r.opts.NoLoop {
		var err error
		if lp, err = newProbeLoop(clk.Now); err != nil {
			r.opts.Logger.Warn("health checks: no event loop, every attempt runs on a goroutine", "err", err)
			lp = nil
		} else {
			defer lp.close()
		}
	}
	// While attempts run on the loop, the Runner polls it this often:
	// a socket that becomes ready waits at most that long, and one poll
	// serves all the sockets that became ready meanwhile.
	pollEvery := max(r.opts.Coalesce, time.Millisecond)
	pollT := time.NewTimer(time.Hour)
	pollT.Stop()
	pollArmed := false
	_, realTime := clk.(realClock)
	finished := func(d attemptDone) {
		delete(inflight, d.id)
		before, known := s.Check(d.id)
		sp, _ := s.Spec(d.id)
		evs := s.Done(clk.Now(), d.id, d.d, d.res)
		if known {
			after, _ := s.Check(d.id)
			r.logAttempt(sp, before, after, d.res)
		}
		for _, e := range evs {
			r.emit(e)
		}
	}
	loopDone := func() {
		for i, d := range lp.done {
			finished(d)
			lp.done[i] = attemptDone{}
		}
		lp.done = lp.done[:0]
	}
	var timer <-chan time.Time
	var timerAt time.Time
	for {
		if lp != nil && lp.inFlight() > 0 {
			lp.poll()
			loopDone()
		}
		now := clk.Now()
		for _, id := range s.Due(now.Add(r.opts.Coalesce)) {
			sp, _ := s.Spec(id)
			if lp != nil && loopable(sp.Checker) {
				lp.start(id, sp.Checker, sp.Timing.Timeout)
				continue
			}
			j := job{id: id, checker: sp.Checker}
			j.ctx, j.cancel = context.WithTimeout(actx, sp.Timing.Timeout)
			inflight[id] = j.cancel
			select {
			case jobs <- j:
				idle--
			default:
				wg.Add(1)
				go worker(j)
			}
		}
		// One timer at a time, replaced only when an earlier one is
		// needed: results arrive 1,667 times a second at scale and
		// most do not move the next wake-up.
		if lp != nil {
			loopDone() // attempts that ended as they started
		}
		if next, ok := s.Next(); ok && (timer == nil || next.Before(timerAt)) {
			timer, timerAt = clk.After(next.Sub(now)), next
		}
		if lp != nil {
			// A wake-up for the next due checker polls the loop too:
			// no separate poll when one comes within pollEvery (on
			// the real clock only: a test's clock may never move).
			if lp.inFlight() > 0 && !pollArmed && (!realTime || timer == nil || timerAt.After(now.Add(pollEvery))) {
				pollT.Reset(pollEvery)
				pollArmed = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
			timer = nil
		case <-pollT.C:
			pollArmed = false
		case d := <-results:
			finished(d)
			idle++
			if idle > maxIdle {
				// Let an idle worker go: it exits on an empty job.
				select {
				case jobs <- job{}:
					idle--
				default:
				}
			}
		case u := <-r.updates:
			if u.suspend != nil {
				u.changed <- s.Suspend(u.suspend)
			} else {
				r.update(s, u.servers, inflight, lp)
			}
			close(u.done)
		case q := <-r.status:
			q <- snapshot{checks: s.Status(), servers: s.Servers()}
		}
	}
}

// update applies a reload on the Run goroutine.
func (r *Runner) update(s *Scheduler, servers []Server, inflight map[int]context.CancelFunc, lp *probeLoop) {
	keep := make(map[string]bool, len(servers))
	for _, srv := range servers {
		keep[srv.Name] = true
	}
	removed := map[string]bool{}
	for _, ss := range s.Servers() {
		if !keep[ss.Name] {
			removed[ss.Name] = true
		}
	}
	events, stopped := s.Update(r.opts.Clock.Now(), servers)
	for _, id := range stopped {
		if c := inflight[id]; c != nil {
			c()
			delete(inflight, id)
		}
		if lp != nil {
			lp.cancel(id)
		}
	}
	if len(removed) > 0 {
		// Events of removed servers that OnEvent has not seen yet are
		// stale: the caller of Update has forgotten those servers.
		r.evMu.Lock()
		r.evQ = slices.DeleteFunc(r.evQ, func(e Event) bool { return removed[e.Server] })
		r.evMu.Unlock()
	}
	added := 0
	for _, e := range events {
		if e.Kind == ServerInitial {
			added++
		}
	}
	r.opts.Logger.Info("health checks reloaded", "servers", len(servers), "new", added, "removed", len(removed), "attempts_canceled", len(stopped))
	for _, e := range events {
		r.emit(e)
	}
}

// Update replaces the servers being checked, as a configuration reload
// does (see Scheduler.Update for what keeps its state). It returns once
// the Runner has applied the change: from then on no event of a removed
// server reaches OnEvent (except one OnEvent call already in progress),
// attempts of removed checkers are canceled, and the events the change
// causes (ServerInitial for new servers; ServerUp, ServerDown or
// WeightChanged for kept servers whose aggregate changed) are queued for
// OnEvent. Update waits for Run to have started; it returns ErrStopped
// once Run has returned, ctx's error if ctx ends first (the change is
// then applied or not), and a validation error (duplicate server names,
// a spec without a Checker) without changing anything.
//
// Update does not wait for OnEvent, so the caller may hold a lock or
// a loop that OnEvent waits for.
func (r *Runner) Update(ctx context.Context, servers []Server) error {
	if err := Validate(servers); err != nil {
		return err
	}
	select {
	case <-r.started:
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	u := update{servers: servers, done: make(chan struct{})}
	select {
	case r.updates <- u:
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	// The Run goroutine applies it at once and never blocks meanwhile.
	<-u.done
	return nil
}

// Suspend sets which servers have their checkers suspended (ha_suspend:
// see Scheduler.Suspend) and returns those whose setting changed. Like
// Update it waits for Run to have started.
func (r *Runner) Suspend(ctx context.Context, suspended map[string]bool) ([]string, error) {
	if suspended == nil {
		suspended = map[string]bool{}
	}
	select {
	case <-r.started:
	case <-r.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u := update{suspend: suspended, changed: make(chan []string, 1), done: make(chan struct{})}
	select {
	case r.updates <- u:
	case <-r.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-u.done
	return <-u.changed, nil
}

// emit logs a server event and queues it for OnEvent.
func (r *Runner) emit(e Event) {
	switch e.Kind {
	case ServerUp:
		r.opts.Logger.Info("real server up", "server", e.Server, "checker", e.Checker, "weight", e.Weight)
	case ServerDown:
		r.opts.Logger.Info("real server down", "server", e.Server, "checker", e.Checker, "reason", e.Reason)
	case WeightChanged:
		r.opts.Logger.Info("real server weight", "server", e.Server, "checker", e.Checker, "weight", e.Weight)
	}
	if r.opts.OnEvent == nil {
		return
	}
	r.evMu.Lock()
	r.evQ = append(r.evQ, e)
	r.evMu.Unlock()
	select {
	case r.evWake <- struct{}{}:
	default:
	}
}

// deliver hands queued events to OnEvent, in order, until ctx ends.
func (r *Runner) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.evWake:
		}
		for {
			r.evMu.Lock()
			if len(r.evQ) == 0 || ctx.Err() != nil {
				r.evMu.Unlock()
				break
			}
			e := r.evQ[0]
			r.evQ[0] = Event{}
			r.evQ = r.evQ[1:]
			r.evMu.Unlock()
			r.opts.OnEvent(e)
		}
	}
}

// Status returns every checker's status and every server's state; it
// waits for Run to have started and returns nils once Run has returned or
// ctx is done.
func (r *Runner) Status(ctx context.Context) ([]Status, []ServerStatus) {
	select {
	case <-r.started:
	case <-r.done:
		return nil, nil
	case <-ctx.Done():
		return nil, nil
	}
	q := make(chan snapshot, 1)
	select {
	case r.status <- q:
	case <-r.done:
		return nil, nil
	case <-ctx.Done():
		return nil, nil
	}
	select {
	case s := <-q:
		return s.checks, s.servers
	case <-ctx.Done():
		return nil, nil
	}
}
