package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// probe is a comparable test checker: two probes with the same Target are
// the same configuration, as two *TCP with the same Endpoint are.
type probe struct{ Target string }

func (*probe) Check(context.Context) Result { return up("") }

// reload replaces the servers at offset at.
type reload struct {
	at      time.Duration
	servers []Server
}

// keyedScript decides an attempt's outcome by "server/checker" name.
type keyedScript func(key string, at time.Duration) (Result, time.Duration)

// simulateReloads drives a Scheduler like simulate, applying reloads at
// their offsets (before anything else due at that offset), and returns
// the events, the attempt starts by "server/checker" and the Scheduler.
// Attempts of removed checkers still report to Done, as a canceled
// attempt would, and must be ignored.
func simulateReloads(t *testing.T, servers []Server, reloads []reload, sc keyedScript, until time.Duration) ([]string, map[string][]time.Duration, *Scheduler) {
	t.Helper()
	jitter := func(max time.Duration) time.Duration { return max * 3 / 4 }
	s := NewScheduler(servers, t0, jitter)
	key := func(id int) string {
		st, _ := s.Check(id)
		return st.Server + "/" + st.Checker
	}
	out, starts := drive(t, s, reloads, until, key, func(k string, _ int, at time.Duration) (Result, time.Duration) { return sc(k, at) })
	return out, starts, s
}

// failing fails the checkers named in keys while at is in [from, to),
// taking d; everything else succeeds in 10 ms.
func failing(from, to, d time.Duration, keys ...string) keyedScript {
	return func(key string, at time.Duration) (Result, time.Duration) {
		if slices.Contains(keys, key) && at >= from && at < to {
			return down("refused"), d
		}
		return up(""), sec(0.01)
	}
}

func TestSchedulerUpdate(t *testing.T) {
	tcp := Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2), Warmup: sec(4)}
	slow := tcp
	slow.DelayLoop = sec(10)
	alpha := tcp
	alpha.Alpha = true
	// srv builds a server whose checkers are probes named by their
	// target; every call makes new values, as a reload does.
	srv := func(name string, weight int64, tm Timing, targets ...string) Server {
		s := Server{Name: name, Weight: weight}
		for _, tg := range targets {
			s.Checkers = append(s.Checkers, Spec{Name: tg, Checker: &probe{Target: tg}, Timing: tm})
		}
		return s
	}
	tests := []struct {
		name    string
		servers []Server
		reloads []reload
		sc      keyedScript
		until   time.Duration
		want    []string
		// starts of one checker, when given
		key    string
		starts []time.Duration
	}{
		{
			name:    "no reload (reference for the next case)",
			servers: []Server{srv("a", 1, tcp, "c")},
			sc:      failing(sec(5), sec(40), 0, "a/c"),
			until:   sec(50),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)", "40.02s up a w=1"},
			key:     "a/c",
			starts:  []time.Duration{sec(3), sec(9.01), sec(10.01), sec(16.01), sec(22.01), sec(28.01), sec(34) + 10*time.Millisecond, sec(40.01), sec(46.02)},
		},
		{
			name:    "unchanged server keeps down state, schedule and counters",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(12), []Server{srv("a", 1, tcp, "c")}}, {sec(30), []Server{srv("a", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(40), 0, "a/c"),
			until:   sec(50),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)", "40.02s up a w=1"},
			key:     "a/c",
			starts:  []time.Duration{sec(3), sec(9.01), sec(10.01), sec(16.01), sec(22.01), sec(28.01), sec(34) + 10*time.Millisecond, sec(40.01), sec(46.02)},
		},
		{
			name:    "retry count survives a reload between a failure and its retry",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(9.5), []Server{srv("a", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(40), 0, "a/c"),
			until:   sec(12),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)"},
		},
		{
			name:    "attempt in flight of a kept checker still counts",
			servers: []Server{srv("a", 1, tcp, "c")},
			// the attempt at 9.01 takes 2 s (blackhole); reload at 10
			reloads: []reload{{sec(10), []Server{srv("a", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(40), sec(2), "a/c"),
			until:   sec(15),
			want:    []string{"0s initial a w=1", "14.01s down a w=1 (refused)"},
		},
		{
			name:    "changed timing restarts the checker as new: up again, then down after warmup and retry",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(20), []Server{srv("a", 1, slow, "c")}}},
			sc:      failing(sec(5), sec(100), 0, "a/c"),
			until:   sec(40),
			want: []string{
				"0s initial a w=1", "10.01s down a w=1 (refused)",
				"20s up a w=1 (configuration reload)",
				"24s down a w=1 (refused)", // first attempt at 20+3, retry at 24
			},
			key:    "a/c",
			starts: []time.Duration{sec(3), sec(9.01), sec(10.01), sec(16.01), sec(23), sec(24), sec(34)},
		},
		{
			name:    "changed checker configuration (same name) restarts; alpha starts it down",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(20), []Server{{Name: "a", Weight: 1, Checkers: []Spec{{Name: "c", Checker: &probe{Target: "other"}, Timing: alpha}}}}}},
			sc:      failing(0, 0, 0),
			until:   sec(30),
			want:    []string{"0s initial a w=1", "20s down a w=1 (configuration reload)", "23.01s up a w=1"},
		},
		{
			name:    "removed server: no event after the reload, attempt in flight ignored",
			servers: []Server{srv("a", 1, tcp, "c"), srv("b", 1, tcp, "c")},
			// b's attempt at 9.01 takes 2 s and would fail; b goes at 10
			reloads: []reload{{sec(10), []Server{srv("a", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(100), sec(2), "b/c"),
			until:   sec(40),
			want:    []string{"0s initial a w=1", "0s initial b w=1"},
		},
		{
			name:    "new server starts as new: ServerInitial, warmup from the reload",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(10), []Server{srv("a", 1, tcp, "c"), srv("b", 2, alpha, "c")}}},
			sc:      failing(0, 0, 0),
			until:   sec(20),
			want:    []string{"0s initial a w=1", "10s initial b w=2", "13.01s up b w=2"},
			key:     "b/c",
			starts:  []time.Duration{sec(13), sec(19.01)},
		},
		{
			name:    "configured weight change: WeightChanged",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(10), []Server{srv("a", 5, tcp, "c")}}},
			sc:      failing(0, 0, 0),
			until:   sec(20),
			want:    []string{"0s initial a w=1", "10s weight a w=5 (configuration reload)"},
		},
		{
			name:    "weight change of a server that is down: its state stays, weight event only",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(20), []Server{srv("a", 3, tcp, "c")}}},
			sc:      failing(sec(5), sec(30), 0, "a/c"),
			until:   sec(40),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)", "20s weight a w=3 (configuration reload)", "34.02s up a w=3"},
		},
		{
			name:    "checker added to an up server: no event without alpha",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(10), []Server{srv("a", 1, tcp, "c", "d")}}},
			sc:      failing(0, 0, 0),
			until:   sec(20),
			want:    []string{"0s initial a w=1"},
			key:     "a/d",
			starts:  []time.Duration{sec(13), sec(19.01)},
		},
		{
			name:    "checker added with alpha: the server waits for it",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(10), []Server{{Name: "a", Weight: 1, Checkers: []Spec{{Name: "c", Checker: &probe{"c"}, Timing: tcp}, {Name: "d", Checker: &probe{"d"}, Timing: alpha}}}}}},
			sc:      failing(0, 0, 0),
			until:   sec(20),
			want:    []string{"0s initial a w=1", "10s down a w=1 (configuration reload)", "13.01s up a w=1"},
		},
		{
			name:    "removing the failing checker brings the server up",
			servers: []Server{srv("a", 1, tcp, "c", "d")},
			reloads: []reload{{sec(20), []Server{srv("a", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(100), 0, "a/d"),
			until:   sec(30),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)", "20s up a w=1 (configuration reload)"},
		},
		{
			name:    "checkers of the same name: the unchanged one keeps its state",
			servers: []Server{srv("a", 1, tcp, "c", "d")},
			// d becomes a second "c" probe: the first keeps the old
			// c's down state, so the server does not come up at 20
			// (it would if both started as new), and the second
			// starts as new: first attempt at 23.
			reloads: []reload{{sec(20), []Server{srv("a", 1, tcp, "c", "c")}}},
			sc:      failing(sec(5), sec(100), 0, "a/c"),
			until:   sec(30),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)"},
			key:     "a/c",
			starts:  []time.Duration{sec(3), sec(9.01), sec(10.01), sec(16.01), sec(22.01), sec(23), sec(24), sec(28.01), sec(30)},
		},
		{
			name:    "server renamed: removed and added",
			servers: []Server{srv("a", 1, tcp, "c")},
			reloads: []reload{{sec(20), []Server{srv("b", 1, tcp, "c")}}},
			sc:      failing(sec(5), sec(100), 0, "a/c"),
			until:   sec(22),
			want:    []string{"0s initial a w=1", "10.01s down a w=1 (refused)", "20s initial b w=1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, starts, _ := simulateReloads(t, tt.servers, tt.reloads, tt.sc, tt.until)
			if !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if tt.key != "" && !slices.Equal(starts[tt.key], tt.starts) {
				t.Errorf("attempt starts of %s:\n got %v\nwant %v", tt.key, starts[tt.key], tt.starts)
			}
		})
	}
}

// TestSchedulerUpdateKeepsStatus checks that a kept checker's status
// (counters, last result, last change) survives, and that it takes the
// new Checker value.
func TestSchedulerUpdateKeepsStatus(t *testing.T) {
	tm := Timing{DelayLoop: sec(6), Retry: 0, Timeout: sec(2)}
	first := &probe{"x"}
	s := NewScheduler([]Server{{Name: "a", Weight: 1, Checkers: []Spec{{Name: "c", Checker: first, Timing: tm}}}}, t0, nil)
	ids := s.Due(t0)
	s.Done(t0.Add(sec(1)), ids[0], sec(1), down("refused"))
	before := s.Status()
	second := &probe{"x"}
	evs, stopped := s.Update(t0.Add(sec(2)), []Server{{Name: "a", Weight: 1, Checkers: []Spec{{Name: "c", Checker: second, Timing: tm}}}})
	if len(evs) != 0 || len(stopped) != 0 {
		t.Fatalf("events %v, stopped %v", evs, stopped)
	}
	after := s.Status()
	if !slices.Equal(before, after) {
		t.Errorf("status changed:\n%+v\n%+v", before, after)
	}
	if after[0].Up || after[0].Checks != 1 || after[0].Failed != 1 || after[0].Last.Reason != "refused" || after[0].Next != t0.Add(sec(7)) {
		t.Errorf("status %+v", after[0])
	}
	if sp, ok := s.Spec(ids[0]); !ok || sp.Checker != Checker(second) {
		t.Errorf("kept checker did not take the new Checker value")
	}
}

func TestSchedulerUpdateStopsRunning(t *testing.T) {
	tm := Timing{DelayLoop: sec(6), Retry: 0, Timeout: sec(2)}
	mk := func(names ...string) []Server {
		var out []Server
		for _, n := range names {
			out = append(out, Server{Name: n, Weight: 1, Checkers: []Spec{{Name: "c", Checker: &probe{n}, Timing: tm}}})
		}
		return out
	}
	s := NewScheduler(mk("a", "b", "c"), t0, nil)
	ids := s.Due(t0) // all three running
	if len(ids) != 3 {
		t.Fatalf("due %v", ids)
	}
	s.Done(t0.Add(sec(1)), ids[2], sec(1), up("")) // c idle again
	_, stopped := s.Update(t0.Add(sec(1)), mk("a"))
	if !slices.Equal(stopped, []int{ids[1]}) {
		t.Errorf("stopped %v, want [%d] (b running, c idle)", stopped, ids[1])
	}
	if evs := s.Done(t0.Add(sec(2)), ids[1], sec(2), down("x")); evs != nil {
		t.Errorf("event of a removed checker: %v", evs)
	}
	if srv := s.Servers(); len(srv) != 1 || srv[0].Name != "a" {
		t.Errorf("servers %v", srv)
	}
	if n, ok := s.Next(); ok {
		t.Errorf("next due %v: only a is left and it is running", n)
	}
}

func TestSchedulerUpdateDynamicWeight(t *testing.T) {
	tm := Timing{DelayLoop: sec(1), Timeout: sec(1)}
	mk := func(w int64) []Server {
		return []Server{{Name: "rs", Weight: w, Checkers: []Spec{{Name: "misc", Checker: &probe{"m"}, Timing: tm}}}}
	}
	s := NewScheduler(mk(5), t0, nil)
	id := s.Due(t0)[0]
	if evs := s.Done(t0, id, 0, Result{Up: true, Weight: Weight{WeightSet, 10}}); len(evs) != 1 || evs[0].Weight != 10 {
		t.Fatalf("events %v", evs)
	}
	// misc_dynamic set the weight: a new configured weight does not
	// change the effective one.
	if evs, _ := s.Update(t0.Add(sec(0.5)), mk(7)); len(evs) != 0 {
		t.Errorf("events %v, want none", evs)
	}
	if srv := s.Servers(); srv[0].Weight != 10 {
		t.Errorf("weight %d", srv[0].Weight)
	}
}

func TestSameSpec(t *testing.T) {
	tm := Timing{DelayLoop: sec(6), Retry: 1, Timeout: sec(2)}
	ep := func(port uint16) Endpoint {
		return Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), port), Timeout: sec(2)}
	}
	httpc := func(mod func(*HTTP)) *HTTP {
		h := &HTTP{Endpoint: ep(80), URLs: []URL{{Path: "/", Digest: "ABCD", Status: []StatusRange{{200, 200}}, Regex: regexp.MustCompile("ok.*")}}}
		if mod != nil {
			mod(h)
		}
		return h
	}
	spec := func(c Checker) Spec { return Spec{Name: "c", Checker: c, Timing: tm} }
	fn := funcChecker(func(context.Context) Result { return up("") })
	tests := []struct {
		name string
		a, b Spec
		want bool
	}{
		{"TCP equal values", spec(&TCP{ep(80)}), spec(&TCP{ep(80)}), true},
		{"TCP other port", spec(&TCP{ep(80)}), spec(&TCP{ep(81)}), false},
		{"other timing", spec(&TCP{ep(80)}), Spec{Name: "c", Checker: &TCP{ep(80)}, Timing: Timing{DelayLoop: sec(7)}}, false},
		{"other name", spec(&TCP{ep(80)}), Spec{Name: "d", Checker: &TCP{ep(80)}, Timing: tm}, false},
		{"log_all_failures does not count", spec(&TCP{ep(80)}), Spec{Name: "c", Checker: &TCP{ep(80)}, Timing: tm, LogAllFailures: true}, true},
		{"other type", spec(&TCP{ep(80)}), spec(&SMTP{Endpoint: ep(80)}), false},
		{"HTTP regex compiled twice", spec(httpc(nil)), spec(httpc(nil)), true},
		{"HTTP digest case", spec(httpc(nil)), spec(httpc(func(h *HTTP) { h.URLs[0].Digest = "abcd" })), true},
		{"HTTP other regex", spec(httpc(nil)), spec(httpc(func(h *HTTP) { h.URLs[0].Regex = regexp.MustCompile("ok") })), false},
		{"HTTP no regex", spec(httpc(nil)), spec(httpc(func(h *HTTP) { h.URLs[0].Regex = nil })), false},
		{"HTTP other status", spec(httpc(nil)), spec(httpc(func(h *HTTP) { h.URLs[0].Status = nil })), false},
		{"HTTP extra URL", spec(httpc(nil)), spec(httpc(func(h *HTTP) { h.URLs = append(h.URLs, URL{Path: "/b"}) })), false},
		{"SSL with other credentials", spec(httpc(func(h *HTTP) { h.TLS = &tls.Config{ServerName: "a"} })), spec(httpc(func(h *HTTP) { h.TLS = &tls.Config{ServerName: "b"} })), true},
		{"SSL_GET vs HTTP_GET", spec(httpc(func(h *HTTP) { h.TLS = &tls.Config{} })), spec(httpc(nil)), false},
		{"MISC equal credentials", spec(&Misc{Argv: []string{"/bin/true"}, Credential: &syscall.Credential{Uid: 1}}), spec(&Misc{Argv: []string{"/bin/true"}, Credential: &syscall.Credential{Uid: 1}}), true},
		{"MISC other user", spec(&Misc{Argv: []string{"/bin/true"}, Credential: &syscall.Credential{Uid: 1}}), spec(&Misc{Argv: []string{"/bin/true"}, Credential: &syscall.Credential{Uid: 2}}), false},
		{"FILE other weight", spec(&File{Path: "/x", Weight: 1}), spec(&File{Path: "/x", Weight: 2}), false},
		{"same pointer", spec(&TCP{ep(80)}), spec(&TCP{ep(80)}), true},
		{"func checkers never equal", spec(fn), spec(fn), false},
		{"nil checkers", spec(nil), spec(nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameSpec(tt.a, tt.b); got != tt.want {
				t.Errorf("SameSpec = %v, want %v", got, tt.want)
			}
		})
	}
}

// ctlChecker is a comparable checker a test steers: Check fails while
// *down is set, and blocks until its context ends when block is set,
// reporting the cancellation on canceled.
type ctlChecker struct {
	Name     string
	down     *atomic.Bool
	block    bool
	canceled chan error
}

func (c *ctlChecker) Check(ctx context.Context) Result {
	if c.block {
		<-ctx.Done()
		c.canceled <- ctx.Err()
		return down("canceled")
	}
	if c.down != nil && c.down.Load() {
		return down("refused")
	}
	return up("")
}

// TestRunnerUpdate drives the real Runner loop with a fake clock through
// a reload: a kept server keeps its down state and counters, a removed
// server's attempt in flight is canceled and it has no event after
// Update, a new server gets ServerInitial, a weight change gives
// WeightChanged.
func TestRunnerUpdate(t *testing.T) {
	clk := newFakeClock()
	tm := Timing{DelayLoop: sec(6), Retry: 0, Timeout: time.Minute}
	aDown := &atomic.Bool{}
	aDown.Store(true)
	canceled := make(chan error, 1)
	mkA := func(w int64) Server {
		return Server{Name: "a", Weight: w, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &ctlChecker{Name: "a", down: aDown}, Timing: tm}}}
	}
	b := Server{Name: "b", Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &ctlChecker{Name: "b", block: true, canceled: canceled}, Timing: tm}}}
	c := Server{Name: "c", Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &ctlChecker{Name: "c"}, Timing: tm}}}
	events := make(chan Event, 64)
	r := NewRunner([]Server{mkA(1), b}, Options{Clock: clk, Jitter: func(time.Duration) time.Duration { return 0 }, OnEvent: func(e Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	next := func() Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	for _, want := range []string{"initial a", "initial b", "down a"} {
		if e := next(); e.Kind.String()+" "+e.Server != want {
			t.Fatalf("event %+v, want %s", e, want)
		}
	}
	if err := r.Update(context.Background(), []Server{mkA(1), c}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-canceled:
		if err != context.Canceled {
			t.Errorf("b's attempt ended with %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b's attempt in flight was not canceled")
	}
	if e := next(); e.Kind != ServerInitial || e.Server != "c" || !e.Up {
		t.Fatalf("event %+v, want initial c up", e)
	}
	st, srv := r.Status(context.Background())
	if len(srv) != 2 || srv[0].Name != "a" || srv[0].Up || srv[1].Name != "c" {
		t.Fatalf("servers %+v", srv)
	}
	if st[0].Up || st[0].Checks != 1 || st[0].Failed != 1 || st[0].LastChange != t0 {
		t.Errorf("a's status not kept: %+v", st[0])
	}
	// a is still down at its next round; it comes back when healthy.
	clk.Advance(sec(6))
	aDown.Store(false)
	clk.Advance(sec(6))
	if e := next(); e.Kind != ServerUp || e.Server != "a" || e.Time != t0.Add(sec(12)) {
		t.Fatalf("event %+v, want up a at 12s", e)
	}
	if err := r.Update(context.Background(), []Server{mkA(4), c}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Kind != WeightChanged || e.Server != "a" || e.Weight != 4 || e.Reason != ReloadReason {
		t.Fatalf("event %+v, want weight a 4", e)
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v", e)
	default:
	}
	if err := r.Update(context.Background(), []Server{mkA(1), mkA(2)}); err == nil {
		t.Error("Update accepted two servers of one name")
	}
	cancel()
	<-done
	done <- nil
	if err := r.Update(context.Background(), []Server{c}); err != ErrStopped {
		t.Errorf("Update after Run returned: %v, want ErrStopped", err)
	}
}

// TestRunnerUpdateSlowConsumer checks that Update returns while OnEvent
// is blocked (the daemon's OnEvent waits for the loop that calls Update),
// and that a removed server's queued event is dropped.
func TestRunnerUpdateSlowConsumer(t *testing.T) {
	clk := newFakeClock()
	tm := Timing{DelayLoop: sec(6), Timeout: time.Minute}
	srv := func(name string) Server {
		return Server{Name: name, Weight: 1, Checkers: []Spec{{Name: "c", Checker: &ctlChecker{Name: name}, Timing: tm}}}
	}
	events := make(chan Event) // unbuffered: OnEvent blocks until read
	r := NewRunner([]Server{srv("a"), srv("b")}, Options{Clock: clk, OnEvent: func(e Event) { events <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		for {
			select {
			case <-done:
				return
			case <-events:
			}
		}
	}()
	uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ucancel()
	if err := r.Update(uctx, []Server{srv("a"), srv("c")}); err != nil {
		t.Fatalf("Update with OnEvent blocked: %v", err)
	}
	var got []string
	for range 2 {
		select {
		case e := <-events:
			got = append(got, e.Kind.String()+" "+e.Server)
		case <-time.After(5 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	if want := []string{"initial a", "initial c"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v (b's queued initial dropped)", got, want)
	}
}

// TestRunnerUpdateTCP runs real TCP checkers on loopback through a reload
// with the real clock: the server whose port is closed stays down, with
// its counters, when the reload builds new but equal checkers.
func TestRunnerUpdateTCP(t *testing.T) {
	openAddr := serveTCP(t, func(c net.Conn) { c.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	tm := Timing{DelayLoop: 50 * time.Millisecond, Retry: 1, DelayBeforeRetry: 20 * time.Millisecond, Timeout: time.Second}
	mk := func(names ...string) []Server {
		var out []Server
		for _, n := range names {
			addr := openAddr
			if n == "dead" {
				addr = closedAddr
			}
			out = append(out, Server{Name: n, Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &TCP{Endpoint{Addr: addr, Timeout: time.Second}}, Timing: tm}}})
		}
		return out
	}
	events := make(chan Event, 64)
	r := NewRunner(mk("dead", "live"), Options{OnEvent: func(e Event) { events <- e }, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitEvent := func(kind EventKind, server string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && e.Server == server {
					return
				}
			case <-deadline:
				t.Fatalf("no %s event for %s", kind, server)
			}
		}
	}
	waitEvent(ServerDown, "dead")
	st, _ := r.Status(ctx)
	checks := st[0].Checks
	for range 3 {
		if err := r.Update(ctx, mk("dead", "live", "new")); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(ServerInitial, "new")
	st, srv := r.Status(ctx)
	if len(srv) != 3 || srv[0].Up || !srv[1].Up || st[0].Checks < checks {
		t.Fatalf("after reload: servers %+v, dead checks %d (before %d)", srv, st[0].Checks, checks)
	}
	if err := r.Update(ctx, mk("live")); err != nil {
		t.Fatal(err)
	}
	// Let several rounds of the remaining checker pass (it counts its
	// attempts): nothing may be reported for the removed servers.
	st, _ = r.Status(ctx)
	liveChecks := st[0].Checks
	lab.Eventually(t, 10*time.Second, func() bool {
		st, _ := r.Status(ctx)
		return len(st) == 1 && st[0].Checks >= liveChecks+4
	}, "the remaining checker did not run 4 more rounds")
	for {
		select {
		case e := <-events:
			if e.Server != "live" {
				t.Errorf("event after removal: %+v", e)
			}
			continue
		default:
		}
		break
	}
	if _, srv := r.Status(ctx); len(srv) != 1 || srv[0].Name != "live" {
		t.Errorf("servers %+v", srv)
	}
}

// BenchmarkSchedulerUpdate measures a reload of 10,000 HTTP_GET checkers
// that did not change (each compared field by field): the time the Run
// goroutine is busy with a reload.
func BenchmarkSchedulerUpdate(b *testing.B) {
	tm := Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(2), Warmup: sec(6)}
	mk := func() []Server {
		servers := make([]Server, 0, 10000)
		for i := range 10000 {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80)
			h := &HTTP{Endpoint: Endpoint{Addr: addr, Timeout: sec(2)}, URLs: []URL{{Path: "/health", Digest: "0123456789abcdef0123456789abcdef"}}}
			servers = append(servers, Server{Name: fmt.Sprintf("[%s]:tcp:80", addr.Addr()), Weight: 1, Checkers: []Spec{{Name: "HTTP_GET " + addr.String(), Checker: h, Timing: tm}}})
		}
		return servers
	}
	s := NewScheduler(mk(), t0, func(max time.Duration) time.Duration { return max / 2 })
	next := mk()
	b.ResetTimer()
	for range b.N {
		if evs, stopped := s.Update(t0, next); len(evs) != 0 || len(stopped) != 0 {
			b.Fatal("unchanged servers changed")
		}
	}
}
