package check

import (
	"context"
	"log/slog"
	"math/rand/v2"
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
	// Coalesce starts, at each wake-up, the checkers due within this much
	// time, so 10,000 checkers spread over a delay_loop wake the process
	// about 100 times a second rather than 1,667; default 10 ms, negative
	// for none.
	Coalesce time.Duration
}

// Runner runs the checkers of a set of real servers with keepalived's
// timing. One goroutine owns all state (a Scheduler); each attempt runs in
// a goroutine of its own that lives only for the attempt, so 10,000 idle
// checkers cost a heap entry each, not a goroutine.
type Runner struct {
	opts    Options
	servers []Server
	status  chan chan snapshot
	started chan struct{}
}

type snapshot struct {
	checks  []Status
	servers []ServerStatus
}

type attemptDone struct {
	id  int
	d   time.Duration
	res Result
}

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
	return &Runner{opts: opts, servers: servers, status: make(chan chan snapshot), started: make(chan struct{})}
}

// Run checks until ctx is canceled, then cancels the attempts in flight,
// waits for them and returns. It emits one ServerInitial event per server
// first.
func (r *Runner) Run(ctx context.Context) error {
	clk := r.opts.Clock
	s := NewScheduler(r.servers, clk.Now(), r.opts.Jitter)
	for _, e := range s.Initial(clk.Now()) {
		r.emit(e)
	}
	close(r.started)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	results := make(chan attemptDone)
	// Attempts run on a pool of goroutines that outlive one attempt: a
	// fresh goroutine per attempt would grow its stack again every time
	// (the dial and TLS paths are deep), which showed as the largest
	// Go-side cost at 10,000 checkers. The pool grows on demand, so a
	// thousand blackholed servers waiting out connect_timeout never
	// delay the others, and shrinks back to maxIdle.
	jobs := make(chan int)
	idle := 0
	const maxIdle = 64
	worker := func(id int) {
		defer wg.Done()
		for {
			sp := s.Spec(id)
			start := clk.Now()
			cctx, ccancel := context.WithTimeout(actx, sp.Timing.Timeout)
			res := sp.Checker.Check(cctx)
			ccancel()
			select {
			case results <- attemptDone{id: id, d: clk.Now().Sub(start), res: res}:
			case <-actx.Done():
				return
			}
			select {
			case id = <-jobs:
				if id < 0 {
					return
				}
			case <-actx.Done():
				return
			}
		}
	}
	var timer <-chan time.Time
	var timerAt time.Time
	for {
		now := clk.Now()
		for _, id := range s.Due(now.Add(r.opts.Coalesce)) {
			select {
			case jobs <- id:
				idle--
			default:
				wg.Add(1)
				go worker(id)
			}
		}
		// One timer at a time, replaced only when an earlier one is
		// needed: results arrive 1,667 times a second at scale and
		// most do not move the next wake-up.
		if next, ok := s.Next(); ok && (timer == nil || next.Before(timerAt)) {
			timer, timerAt = clk.After(next.Sub(now)), next
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer:
			timer = nil
		case d := <-results:
			r.logResult(s, d)
			for _, e := range s.Done(clk.Now(), d.id, d.d, d.res) {
				r.emit(e)
			}
			idle++
			if idle > maxIdle {
				// Let an idle worker go: it exits when it gets -1.
				select {
				case jobs <- -1:
					idle--
				default:
				}
			}
		case q := <-r.status:
			q <- snapshot{checks: s.Status(), servers: s.Servers()}
		}
	}
}

func (r *Runner) logResult(s *Scheduler, d attemptDone) {
	if d.res.Up {
		return
	}
	st := s.checks[d.id]
	r.opts.Logger.Debug("check failed", "server", st.srv.name, "checker", st.spec.Name, "reason", d.res.Reason, "failures", st.fails+1, "retry", st.spec.Timing.Retry)
}

func (r *Runner) emit(e Event) {
	switch e.Kind {
	case ServerUp:
		r.opts.Logger.Info("real server up", "server", e.Server, "checker", e.Checker, "weight", e.Weight)
	case ServerDown:
		r.opts.Logger.Info("real server down", "server", e.Server, "checker", e.Checker, "reason", e.Reason)
	case WeightChanged:
		r.opts.Logger.Info("real server weight", "server", e.Server, "checker", e.Checker, "weight", e.Weight)
	}
	if r.opts.OnEvent != nil {
		r.opts.OnEvent(e)
	}
}

// Status returns every checker's status and every server's state; it
// waits for Run to have started and returns nils once Run has returned or
// ctx is done.
func (r *Runner) Status(ctx context.Context) ([]Status, []ServerStatus) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return nil, nil
	}
	q := make(chan snapshot, 1)
	select {
	case r.status <- q:
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
