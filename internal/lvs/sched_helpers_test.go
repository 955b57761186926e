package lvs

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Helpers of the scheduler tests. Destinations are named by a letter: "A"
// is 198.18.1.1:80, "B" 198.18.1.2:80, and so on; sequences are written as
// the letters of the chosen destinations, "-" for no destination.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// d returns destination name with weight w; opts adjust it.
func d(name string, w int, opts ...func(*Dest)) *Dest {
	x := &Dest{Addr: letterAddr(name), Weight: w}
	for _, o := range opts {
		o(x)
	}
	return x
}

func letterAddr(name string) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + name[0] - 'A')}), 80)
}

func active(n int) func(*Dest)   { return func(x *Dest) { x.ActiveConns = n } }
func inactive(n int) func(*Dest) { return func(x *Dest) { x.InactiveConns = n } }
func overloaded(x *Dest)         { x.Overloaded = true }

func name(x *Dest) string {
	if x == nil {
		return "-"
	}
	a := x.Addr.Addr().As4()
	if x.Addr.Port() == 80 && a[0] == 198 && a[1] == 18 && a[2] == 1 {
		return string(rune('A' + a[3] - 1))
	}
	return x.Addr.String()
}

// flow is a TCP flow from client (host or host:port) to vip (host, port 80).
func flow(client, vip string) Flow {
	c, err := netip.ParseAddrPort(client)
	if err != nil {
		c = netip.AddrPortFrom(netip.MustParseAddr(client), 40000)
	}
	return Flow{Proto: TCP, Client: c, Virtual: netip.AddrPortFrom(netip.MustParseAddr(vip), 80)}
}

var defaultFlow = flow("198.18.0.1", "198.18.2.1")

// newSched makes a scheduler by name and gives it the destinations.
func newSched(t testing.TB, sched string, flags SchedFlags, dests []*Dest) Scheduler {
	t.Helper()
	s, err := NewScheduler(sched, flags)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != sched {
		t.Fatalf("Name() = %q, want %q", s.Name(), sched)
	}
	s.Update(dests)
	return s
}

// run schedules n connections of defaultFlow and returns the sequence.
func run(s Scheduler, dests []*Dest, n int) string {
	var out []string
	for range n {
		out = append(out, name(s.Schedule(dests, defaultFlow, t0)))
	}
	return strings.Join(out, " ")
}

// runConns is run where every chosen destination gets one more active
// connection, as if each connection stayed open.
func runConns(s Scheduler, dests []*Dest, n int) string {
	var out []string
	for range n {
		x := s.Schedule(dests, defaultFlow, t0)
		if x != nil {
			x.ActiveConns++
		}
		out = append(out, name(x))
	}
	return strings.Join(out, " ")
}

// clients schedules one connection from each client (to defaultFlow's
// virtual address) and returns the sequence.
func clients(s Scheduler, dests []*Dest, cs ...string) string {
	var out []string
	for _, c := range cs {
		out = append(out, name(s.Schedule(dests, flow(c, "198.18.2.1"), t0)))
	}
	return strings.Join(out, " ")
}

func hosts(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestSchedulerNames(t *testing.T) {
	want := "dh fo lblc lblcr lc mh nq ovf rr sed sh twos wlc wrr"
	if got := strings.Join(SchedulerNames(), " "); got != want {
		t.Errorf("SchedulerNames() = %q, want %q", got, want)
	}
	if _, err := NewScheduler("nope", 0); err == nil {
		t.Error("NewScheduler(nope) succeeded")
	}
}

// TestSchedulersNoDestination: every scheduler returns nil, without
// panicking, for an empty list and for a list of quiesced or overloaded
// destinations.
func TestSchedulersNoDestination(t *testing.T) {
	lists := map[string][]*Dest{
		"empty":      nil,
		"quiesced":   {d("A", 0), d("B", 0)},
		"overloaded": {d("A", 1, overloaded), d("B", 3, overloaded)},
	}
	for _, sched := range SchedulerNames() {
		for ln, dests := range lists {
			t.Run(sched+"/"+ln, func(t *testing.T) {
				s := newSched(t, sched, FlagSHFallback|FlagSHPort, dests)
				for i := range 3 {
					if x := s.Schedule(dests, defaultFlow, t0.Add(time.Duration(i)*time.Hour)); x != nil {
						t.Errorf("Schedule = %s, want none", name(x))
					}
				}
			})
		}
	}
}

// A scheduler used without Update builds its state from the list given to
// Schedule, as the kernel's init_svc does for a populated service.
func TestSchedulersWithoutUpdate(t *testing.T) {
	for _, sched := range SchedulerNames() {
		t.Run(sched, func(t *testing.T) {
			dests := []*Dest{d("A", 1), d("B", 2)}
			s, _ := NewScheduler(sched, 0)
			if x := s.Schedule(dests, defaultFlow, t0); x == nil {
				t.Error("no destination")
			}
		})
	}
}

// pick is a row of a scheduler's table test: connections (each closed at
// once, see run) over dests get the destinations named in want, "-" for
// none; there are as many connections as names.
type pick struct {
	name  string
	dests []*Dest
	want  string
}

// testPicks runs each row on a new scheduler sched.
func testPicks(t *testing.T, sched string, rows []pick) {
	t.Helper()
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			s := newSched(t, sched, 0, tt.dests)
			if got := run(s, tt.dests, len(strings.Fields(tt.want))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// testConns checks a worked example: connections that stay open (see
// runConns) over dests get the destinations named in want. It returns the
// scheduler, for a look at its state.
func testConns(t *testing.T, sched string, dests []*Dest, want string) Scheduler {
	t.Helper()
	s := newSched(t, sched, 0, dests)
	if got := runConns(s, dests, len(strings.Fields(want))); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	return s
}
