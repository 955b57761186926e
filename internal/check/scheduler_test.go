package check

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// script decides the outcome of the n-th attempt (from 0) of checker id
// starting at offset at from t0, and how long it takes.
type script func(id, n int, at time.Duration) (Result, time.Duration)

// simulate drives a Scheduler in simulated time until the offset until and
// returns its events as "12s down srv (reason)" lines, plus the attempt
// start offsets per checker.
func simulate(t *testing.T, servers []Server, jitter func(time.Duration) time.Duration, sc script, until time.Duration) ([]string, map[int][]time.Duration) {
	t.Helper()
	s := NewScheduler(servers, t0, jitter)
	out, starts := drive(t, s, nil, until, func(id int) int { return id }, sc)
	return out, starts
}

// drive runs s in simulated time until the offset until: it applies
// reloads at their offsets (before anything else due at that offset),
// reports attempts to Done when their simulated duration has passed and
// starts the due ones with the outcome sc gives for the n-th attempt
// (from 0) of the checker named key(id). It returns the events as
// "12s down srv (reason)" lines and the attempt start offsets by key.
func drive[K comparable](t *testing.T, s *Scheduler, reloads []reload, until time.Duration, key func(id int) K, sc func(k K, n int, at time.Duration) (Result, time.Duration)) ([]string, map[K][]time.Duration) {
	t.Helper()
	var out []string
	log := func(evs []Event) {
		for _, e := range evs {
			line := fmt.Sprintf("%v %s %s w=%d", e.Time.Sub(t0), e.Kind, e.Server, e.Weight)
			if e.Reason != "" {
				line += " (" + e.Reason + ")"
			}
			out = append(out, line)
		}
	}
	log(s.Initial(t0))
	type pending struct {
		at  time.Time
		id  int
		d   time.Duration
		res Result
	}
	var inflight []pending
	starts := map[K][]time.Duration{}
	for steps := 0; steps < 100000; steps++ {
		next, ok := s.Next()
		soonest, any := next, ok
		if len(inflight) > 0 && (!any || inflight[0].at.Before(soonest)) {
			soonest, any = inflight[0].at, true
		}
		if len(reloads) > 0 && (!any || !t0.Add(reloads[0].at).After(soonest)) {
			at := t0.Add(reloads[0].at)
			evs, stopped := s.Update(at, reloads[0].servers)
			for _, id := range stopped {
				if _, known := s.Check(id); known {
					t.Errorf("stopped checker %d still known", id)
				}
			}
			log(evs)
			reloads = reloads[1:]
			continue
		}
		if len(inflight) > 0 && (!ok || !inflight[0].at.After(next)) {
			p := inflight[0]
			inflight = inflight[1:]
			log(s.Done(p.at, p.id, p.d, p.res))
			continue
		}
		if !ok || next.Sub(t0) > until {
			return out, starts
		}
		for _, id := range s.Due(next) {
			k := key(id)
			at := next.Sub(t0)
			res, d := sc(k, len(starts[k]), at)
			starts[k] = append(starts[k], at)
			inflight = append(inflight, pending{at: next.Add(d), id: id, d: d, res: res})
		}
		sort.SliceStable(inflight, func(i, j int) bool { return inflight[i].at.Before(inflight[j].at) })
	}
	t.Fatal("simulation did not end")
	return nil, nil
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// faulty fails with reason (taking d) while at is in [from, to).
func faulty(from, to time.Duration, d time.Duration, reason string) script {
	return func(_, _ int, at time.Duration) (Result, time.Duration) {
		if at >= from && at < to {
			return down("%s", reason), d
		}
		return up(""), sec(0.01)
	}
}

func oneServer(tm ...Timing) []Server {
	srv := Server{Name: "rs", Weight: 1}
	for i, x := range tm {
		srv.Checkers = append(srv.Checkers, Spec{Name: fmt.Sprintf("c%d", i), Timing: x})
	}
	return []Server{srv}
}

func TestSchedulerTiming(t *testing.T) {
	tcp := Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2)}
	tests := []struct {
		name    string
		servers []Server
		sc      script
		until   time.Duration
		want    []string
		starts  []time.Duration // attempt starts of checker 0, when given
	}{
		{
			name:    "refused: one retry after delay_before_retry, then down; up after one success",
			servers: oneServer(tcp),
			sc:      faulty(sec(20), sec(40), 0, "connect: connection refused"),
			until:   sec(50),
			want: []string{
				"0s initial rs w=1",
				"25.04s down rs w=1 (connect: connection refused)",
				"43.05s up rs w=1",
			},
			starts: []time.Duration{0, sec(6.01), sec(12.02), sec(18.03), sec(24.04), sec(25.04), sec(31.04), sec(37.04), sec(43.04), sec(49.05)},
		},
		{
			name:    "blackhole: every attempt waits connect_timeout",
			servers: oneServer(tcp),
			sc:      faulty(sec(20), sec(100), sec(2), "connect: timeout"),
			until:   sec(40),
			// attempt at 24.04 ends 26.04, retry at 27.04 ends 29.04:
			// within delay_loop + timeout + retry x (delay_before_retry + timeout)
			// of the fault at 20.
			want: []string{"0s initial rs w=1", "29.04s down rs w=1 (connect: timeout)"},
		},
		{
			name:    "retry 3: three more attempts",
			servers: oneServer(Timing{DelayLoop: sec(6), Retry: 3, DelayBeforeRetry: sec(1), Timeout: sec(2)}),
			sc:      faulty(sec(3), sec(100), 0, "x"),
			until:   sec(20),
			want:    []string{"0s initial rs w=1", "9.01s down rs w=1 (x)"},
			starts:  []time.Duration{0, sec(6.01), sec(7.01), sec(8.01), sec(9.01), sec(15.01)},
		},
		{
			name:    "retry 0: down at the first failure",
			servers: oneServer(Timing{DelayLoop: sec(6), Retry: 0, DelayBeforeRetry: sec(1), Timeout: sec(2)}),
			sc:      faulty(sec(3), sec(100), 0, "x"),
			until:   sec(20),
			want:    []string{"0s initial rs w=1", "6.01s down rs w=1 (x)"},
		},
		{
			name:    "a success during the retries resets the count",
			servers: oneServer(tcp),
			sc: func(_, n int, _ time.Duration) (Result, time.Duration) {
				// fail, succeed, fail, succeed...: never two failures in a row
				if n%2 == 1 {
					return down("flap"), 0
				}
				return up(""), 0
			},
			until: sec(60),
			want:  []string{"0s initial rs w=1"},
		},
		{
			name:    "alpha: starts down, up after the first success",
			servers: oneServer(Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2), Alpha: true}),
			sc:      faulty(0, 0, 0, ""),
			until:   sec(10),
			want:    []string{"0s initial rs w=1", "10ms up rs w=1"},
		},
		{
			name:    "alpha and failing: no retries while down",
			servers: oneServer(Timing{DelayLoop: sec(6), Retry: 2, DelayBeforeRetry: sec(1), Timeout: sec(2), Alpha: true}),
			sc:      faulty(0, sec(100), 0, "x"),
			until:   sec(20),
			want:    []string{"0s initial rs w=1"},
			starts:  []time.Duration{0, sec(6), sec(12), sec(18)},
		},
		{
			name:    "warmup delays the first attempt by the jitter",
			servers: oneServer(Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2), Warmup: sec(6), Alpha: true}),
			sc:      faulty(0, 0, 0, ""),
			until:   sec(10),
			want:    []string{"0s initial rs w=1", "4.51s up rs w=1"},
			starts:  []time.Duration{sec(4.5)},
		},
		{
			name:    "two checkers: the server is down while either is",
			servers: oneServer(tcp, Timing{DelayLoop: sec(10), Retry: 0, DelayBeforeRetry: sec(1), Timeout: sec(2)}),
			sc: func(id, _ int, at time.Duration) (Result, time.Duration) {
				if id == 0 && at >= sec(5) && at < sec(30) {
					return down("c0 bad"), 0
				}
				if id == 1 && at >= sec(15) && at < sec(45) {
					return down("c1 bad"), 0
				}
				return up(""), 0
			},
			until: sec(60),
			want: []string{
				"0s initial rs w=1",
				"7s down rs w=1 (c0 bad)", // c0: fails at 6, retry at 7
				// c1 goes down at 20 and c0 recovers at 31: still down
				"50s up rs w=1", // c1 back at its 50 s round
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jitter := func(max time.Duration) time.Duration { return max * 3 / 4 }
			got, starts := simulate(t, tt.servers, jitter, tt.sc, tt.until)
			if !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if tt.starts != nil && !slices.Equal(starts[0], tt.starts) {
				t.Errorf("attempt starts:\n got %v\nwant %v", starts[0], tt.starts)
			}
		})
	}
}

func TestSchedulerDynamicWeight(t *testing.T) {
	srv := []Server{{Name: "rs", Weight: 5, Checkers: []Spec{
		{Name: "misc", Timing: Timing{DelayLoop: sec(1), Timeout: sec(1)}},
		{Name: "file", Timing: Timing{DelayLoop: sec(1), Timeout: sec(1)}},
	}}}
	// misc exit codes per round: 0 (no change), 12 (weight 10), 12, 1 (down), 22 (weight 20)
	miscW := []Result{up(""), {Up: true, Weight: Weight{WeightSet, 10}}, {Up: true, Weight: Weight{WeightSet, 10}}, down("exit 1"), {Up: true, Weight: Weight{WeightSet, 20}}}
	fileW := []Result{{Up: true, Weight: Weight{WeightAdd, 0}}, {Up: true, Weight: Weight{WeightAdd, -3}}, {Up: true, Weight: Weight{WeightAdd, -3}}, {Up: true, Weight: Weight{WeightAdd, -3}}, {Up: true, Weight: Weight{WeightAdd, -30}}}
	sc := func(id, n int, _ time.Duration) (Result, time.Duration) {
		if n >= len(miscW) {
			n = len(miscW) - 1
		}
		if id == 0 {
			return miscW[n], 0
		}
		return fileW[n], 0
	}
	got, _ := simulate(t, srv, nil, sc, sec(4.5))
	want := []string{
		"0s initial rs w=5",
		"1s weight rs w=10", // misc sets 10 (file adds 0)
		"1s weight rs w=7",  // file adds -3
		"3s down rs w=2 (exit 1)",
		"4s up rs w=17",    // misc sets 20, the file still adds -3
		"4s weight rs w=0", // file adds -30: clamped at 0
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// fakeClock is a manual clock for the Runner: After channels fire when
// Advance passes their deadline.
type fakeClock struct {
	mu      chan struct{}
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	c := &fakeClock{mu: make(chan struct{}, 1), now: t0}
	return c
}

func (c *fakeClock) lock()   { c.mu <- struct{}{} }
func (c *fakeClock) unlock() { <-c.mu }

func (c *fakeClock) Now() time.Time {
	c.lock()
	defer c.unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.lock()
	defer c.unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), c: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.lock()
	defer c.unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.c <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

type funcChecker func(ctx context.Context) Result

func (f funcChecker) Check(ctx context.Context) Result { return f(ctx) }

// TestRunnerFakeClock drives the real Runner loop with a fake clock:
// instant checkers, so each Advance settles before the next.
func TestRunnerFakeClock(t *testing.T) {
	clk := newFakeClock()
	healthy := make(chan bool, 1)
	healthy <- true
	state := true
	chk := funcChecker(func(context.Context) Result {
		select {
		case state = <-healthy:
		default:
		}
		if state {
			return up("")
		}
		return down("connect: connection refused")
	})
	events := make(chan Event, 16)
	r := NewRunner([]Server{{Name: "rs", Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: chk, Timing: Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2)}}}}},
		Options{Clock: clk, OnEvent: func(e Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if e := <-events; e.Kind != ServerInitial || !e.Up {
		t.Fatalf("first event %+v", e)
	}
	waitChecks := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			st, _ := r.Status(context.Background())
			if len(st) == 1 && st[0].Checks >= n && !st[0].Running {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("checker did not reach %d checks", n)
	}
	waitChecks(1)
	healthy <- false
	clk.Advance(sec(6)) // attempt 2 fails
	waitChecks(2)
	select {
	case e := <-events:
		t.Fatalf("event before the retry: %+v", e)
	default:
	}
	clk.Advance(sec(1)) // the retry fails: down
	e := <-events
	if e.Kind != ServerDown || e.Time.Sub(t0) != sec(7) || e.Reason != "connect: connection refused" {
		t.Fatalf("down event %+v", e)
	}
	waitChecks(3)
	healthy <- true
	clk.Advance(sec(6))
	e = <-events
	if e.Kind != ServerUp || e.Time.Sub(t0) != sec(13) {
		t.Fatalf("up event %+v", e)
	}
	st, srv := r.Status(context.Background())
	if !st[0].Up || st[0].Failed != 2 || st[0].LastChange.Sub(t0) != sec(13) || !srv[0].Up {
		t.Fatalf("status %+v %+v", st, srv)
	}
}

// BenchmarkScheduler measures the pure core's cost per attempt with
// 10,000 checkers: one Due and one Done.
func BenchmarkScheduler(b *testing.B) {
	tm := Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2), Warmup: sec(6)}
	var servers []Server
	for i := range 10000 {
		servers = append(servers, Server{Name: fmt.Sprint("rs", i), Weight: 1, Checkers: []Spec{{Name: "c", Timing: tm}}})
	}
	n := 0
	s := NewScheduler(servers, t0, func(max time.Duration) time.Duration { n++; return max * time.Duration(n%1000) / 1000 })
	b.ResetTimer()
	for i := 0; i < b.N; {
		next, _ := s.Next()
		for _, id := range s.Due(next) {
			res := up("")
			if i%7 == 0 {
				res = down("x")
			}
			s.Done(next.Add(time.Millisecond), id, time.Millisecond, res)
			i++
		}
	}
}

// TestSchedulerSuspend: a suspended server's checkers do not start (they
// come due again a delay_loop later, as keepalived's disabled checkers
// do), keep their state, and start again once resumed; Suspend reports
// only changes. A new server may start suspended.
func TestSchedulerSuspend(t *testing.T) {
	tm := Timing{DelayLoop: sec(5), Timeout: sec(1)}
	servers := []Server{
		{Name: "a", Weight: 1, Checkers: []Spec{{Name: "ca", Timing: tm}}},
		{Name: "b", Weight: 1, Checkers: []Spec{{Name: "cb", Timing: tm}}, Suspended: true},
	}
	s := NewScheduler(servers, t0, nil)
	if got := s.Due(t0); !slices.Equal(got, []int{0}) {
		t.Fatalf("due at start: %v, want only a's checker 0 (b starts suspended)", got)
	}
	s.Done(t0.Add(sec(0.5)), 0, sec(0.5), Result{Reason: "connect: connection refused"})
	if ch := s.Suspend(map[string]bool{"a": true, "b": true}); !slices.Equal(ch, []string{"a"}) {
		t.Fatalf("changed %v, want [a]", ch)
	}
	if ch := s.Suspend(map[string]bool{"a": true, "b": true}); len(ch) != 0 {
		t.Fatalf("changed %v again, want none", ch)
	}
	for at := sec(1); at <= sec(30); at += sec(1) {
		if got := s.Due(t0.Add(at)); len(got) != 0 {
			t.Fatalf("suspended checkers %v started at %v", got, at)
		}
	}
	st := s.Status()
	if !st[0].Suspended || !st[1].Suspended || st[0].Checks != 1 || st[0].Up || !st[1].Up {
		t.Fatalf("status while suspended: %+v", st)
	}
	if ch := s.Suspend(map[string]bool{"b": true}); !slices.Equal(ch, []string{"a"}) {
		t.Fatalf("changed %v, want [a]", ch)
	}
	next, _ := s.Next()
	if got := s.Due(next); !slices.Equal(got, []int{0}) {
		t.Fatalf("after resuming a: due %v at %v, want [0]", got, next.Sub(t0))
	}
	if next.Sub(t0) > sec(36) {
		t.Fatalf("a's checker resumed at %v, want within a delay_loop of resuming (30 s)", next.Sub(t0))
	}
}
