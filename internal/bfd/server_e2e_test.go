package bfd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/vipd/vipd/internal/lab"
)

// node is a Server running in a lab host, with its events and logs kept.
type node struct {
	srv    *Server
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []Event
	logs   *strings.Builder
}

func startNode(t testing.TB, h *lab.Host, cfgs ...SessionConfig) *node {
	t.Helper()
	n := &node{done: make(chan struct{}), logs: &strings.Builder{}}
	var lmu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		lmu.Lock()
		defer lmu.Unlock()
		return n.logs.Write(b)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	n.srv = NewServer(Options{Log: log, Sockets: h.Do, OnChange: func(e Event) {
		n.mu.Lock()
		n.events = append(n.events, e)
		n.mu.Unlock()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { defer close(n.done); n.srv.Run(ctx) }()
	t.Cleanup(n.stop)
	if err := n.srv.Configure(ctx, cfgs); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (n *node) status(t testing.TB, name string) SessionStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sts, err := n.srv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no session %s in %+v", name, sts)
	return SessionStatus{}
}

func (n *node) waitState(t testing.TB, name, state string, within time.Duration) {
	t.Helper()
	lab.Eventually(t, within, func() bool { return n.status(t, name).State == state }, "session %s not %s: %+v %+v", name, state, n.status(t, name), n.srv.Counters())
}

func session(name string, peer netip.Addr, tx time.Duration, mult uint8) SessionConfig {
	return SessionConfig{Name: name, Peer: peer, Config: Config{MinTx: tx, MinRx: tx, IdleTx: time.Second, Multiplier: mult}}
}

// Timers are 50 ms x 5 here: 10 ms x 3 flaps on this shared 2-core
// machine under load (keepalived's sessions too); the benchmark measures
// 10 ms x 3.

// TestServerPair: two servers in two namespaces meet, negotiate 50 ms x 5,
// see the cable cut (Control Detection Time Expired) and meet again.
func TestServerPair(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	a, b := l.Host("a"), l.Host("b")
	na := startNode(t, a, session("to_b", b.Addr, 50*time.Millisecond, 5))
	nb := startNode(t, b, session("to_a", a.Addr, 50*time.Millisecond, 5))
	na.waitState(t, "to_b", "Up", 10*time.Second)
	nb.waitState(t, "to_a", "Up", 5*time.Second)
	lab.Eventually(t, 5*time.Second, func() bool {
		s := na.status(t, "to_b")
		return s.TxIntervalUS == 50000 && s.DetectUS == 250000
	}, "intervals not negotiated: %+v", na.status(t, "to_b"))
	s := na.status(t, "to_b")
	if s.RemoteDiscr != nb.status(t, "to_a").LocalDiscr || s.Remote != "Up" {
		t.Errorf("discriminators do not match: %+v / %+v", s, nb.status(t, "to_a"))
	}

	a.Cut()
	na.waitState(t, "to_b", "Down", 5*time.Second)
	if got := na.status(t, "to_b").LastDown; got != "Control Detection Time Expired" {
		t.Errorf("last down reason %q", got)
	}
	if !strings.Contains(na.logs.String(), "(to_b) Expired after") || !strings.Contains(na.logs.String(), "(to_b) Entering Down state (Local diagnostic - Control Detection Time Expired") {
		t.Errorf("keepalived's log lines missing:\n%s", na.logs.String())
	}
	a.Restore()
	na.waitState(t, "to_b", "Up", 10*time.Second)

	// Shutting down one side tells the other at once (AdminDown).
	na.stop()
	nb.waitState(t, "to_a", "Down", 5*time.Second)
	if got := nb.status(t, "to_a").LastDown; got != "Neighbor Signaled Session Down" {
		t.Errorf("peer's last down reason %q", got)
	}
}

// TestServerDropsBadTTL: a single-hop packet that crossed a router (TTL
// below 255) is dropped and counted (RFC 5881 section 5), as is garbage.
func TestServerDropsBadTTL(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	a, b := l.Host("a"), l.Host("b")
	na := startNode(t, a, session("to_b", b.Addr, 100*time.Millisecond, 3))
	send := func(ttl int, payload []byte) {
		t.Helper()
		err := b.Do(func() error {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: b.Addr.AsSlice(), Port: 50000}, &net.UDPAddr{IP: a.Addr.AsSlice(), Port: PortSingleHop})
			if err != nil {
				return err
			}
			defer c.Close()
			if err := ipv4.NewConn(c).SetTTL(ttl); err != nil {
				return err
			}
			_, err = c.Write(payload)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	p := Packet{State: Down, DetectMult: 3, MyDiscr: 77, DesiredMinTx: time.Second, RequiredMinRx: time.Second}
	send(254, p.Append(nil))
	send(255, []byte{1, 2, 3})
	lab.Eventually(t, 5*time.Second, func() bool {
		c := na.srv.Counters()
		return c.Dropped[DropTTL] == 1 && c.Dropped[string(FieldLength)] == 1
	}, "drops not counted: %+v", na.srv.Counters())
	if s := na.status(t, "to_b"); s.State != "Down" || s.RemoteDiscr != 0 {
		t.Errorf("a dropped packet moved the session: %+v", s)
	}
	send(255, p.Append(nil))
	na.waitState(t, "to_b", "Init", 5*time.Second)
}

// keepalivedBFD starts Debian's keepalived with only a bfd_instance.
func keepalivedBFD(t testing.TB, h *lab.Host, conf string) *lab.Proc {
	t.Helper()
	p := lab.StartKeepalived(t, h, conf)
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return p
}

// TestServerWithKeepalived: Debian's keepalived 2.2.7 as the peer, both
// ways: it sees vipd go Up and AdminDown; vipd sees it vanish.
func TestServerWithKeepalived(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	a, k := l.Host("vipd"), l.Host("kad")
	kp := keepalivedBFD(t, k, fmt.Sprintf("bfd_instance to_vipd {\n    neighbor_ip %s\n    min_rx 50\n    min_tx 50\n    multiplier 5\n}\n", a.Addr))
	na := startNode(t, a, session("to_kad", k.Addr, 50*time.Millisecond, 5))
	na.waitState(t, "to_kad", "Up", 15*time.Second)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(kp.Output(), "(to_vipd) Entering Up state") }, "keepalived did not go Up:\n%s", kp.Output())
	lab.Eventually(t, 5*time.Second, func() bool {
		s := na.status(t, "to_kad")
		return s.TxIntervalUS == 50000 && s.DetectUS == 250000
	}, "intervals not negotiated with keepalived: %+v", na.status(t, "to_kad"))

	na.stop()
	lab.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(kp.Output(), "(to_vipd) Entering Down state (Local diagnostic - Neighbor Signaled Session Down, Remote diagnostic - Administratively Down)")
	}, "keepalived did not see vipd's AdminDown:\n%s", kp.Output())

	na = startNode(t, a, session("to_kad", k.Addr, 50*time.Millisecond, 5))
	na.waitState(t, "to_kad", "Up", 15*time.Second)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Count(kp.Output(), "(to_vipd) Entering Up state") == 2 }, "keepalived did not come Up again:\n%s", kp.Output())
	k.Cut()
	na.waitState(t, "to_kad", "Down", 5*time.Second)
	if got := na.status(t, "to_kad").LastDown; got != "Control Detection Time Expired" {
		t.Errorf("last down reason %q", got)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(kp.Output(), "(to_vipd) Expired after") }, "keepalived did not expire:\n%s", kp.Output())
	t.Logf("keepalived's log:\n%s\nvipd's log:\n%s", kp.Output(), na.logs.String())
}

// TestServerWithBIRD: BIRD 2's BFD (protocol bfd with a neighbor) as the
// peer; birdc shows the session Up with the negotiated intervals.
func TestServerWithBIRD(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "bird", "birdc")
	l := lab.New(t)
	a, r := l.Host("vipd"), l.Host("bird")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	sock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`log stderr all;
router id %s;
protocol device { }
protocol bfd {
	interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };
	neighbor %s dev "eth0";
}
`, r.Addr, a.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	bird := r.Start("bird", "-f", "-c", conf, "-s", sock)
	t.Cleanup(func() { bird.Stop(5 * time.Second) })
	na := startNode(t, a, session("to_bird", r.Addr, 50*time.Millisecond, 5))
	na.waitState(t, "to_bird", "Up", 15*time.Second)
	birdc := func() string { o, _ := r.Run("birdc", "-s", sock, "show", "bfd", "sessions"); return o }
	birdState := func() string {
		for _, line := range strings.Split(birdc(), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == a.Addr.String() {
				return f[2]
			}
		}
		return ""
	}
	lab.Eventually(t, 5*time.Second, func() bool { return birdState() == "Up" }, "bird's session not Up:\n%s\n%s", birdc(), bird.Output())
	// We want 50 ms, BIRD accepts 100 ms at most that fast: 100 ms each
	// way, and BIRD's multiplier 5.
	lab.Eventually(t, 5*time.Second, func() bool {
		s := na.status(t, "to_bird")
		return s.TxIntervalUS == 100000 && s.DetectUS == 500000
	}, "intervals not negotiated with BIRD: %+v", na.status(t, "to_bird"))

	r.Cut()
	na.waitState(t, "to_bird", "Down", 5*time.Second)
	r.Restore()
	na.waitState(t, "to_bird", "Up", 15*time.Second)
	na.stop()
	lab.Eventually(t, 5*time.Second, func() bool { return birdState() == "Down" }, "bird did not see vipd leave:\n%s", birdc())
	t.Logf("birdc show bfd sessions:\n%s", birdc())
}

// TestServerMultihopWithBIRD: RFC 5883 (UDP 4784) against BIRD's
// multihop session.
func TestServerMultihopWithBIRD(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "bird", "birdc")
	l := lab.New(t)
	a, r := l.Host("vipd"), l.Host("bird")
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	sock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`log stderr all;
router id %s;
protocol device { }
protocol bfd {
	multihop { min rx interval 100 ms; min tx interval 100 ms; multiplier 5; };
	neighbor %s local %s multihop yes;
}
`, r.Addr, a.Addr, r.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	bird := r.Start("bird", "-f", "-c", conf, "-s", sock)
	t.Cleanup(func() { bird.Stop(5 * time.Second) })
	s := session("mh", r.Addr, 50*time.Millisecond, 5)
	s.Multihop, s.Source = true, a.Addr
	na := startNode(t, a, s)
	// BIRD sends multihop packets with TTL 64: with the single-hop
	// default (ttl 255, max_hops 0) they are dropped, and counted.
	lab.Eventually(t, 10*time.Second, func() bool { return na.srv.Counters().Dropped[DropTTL] > 0 }, "BIRD's TTL 64 packets not dropped")
	if st := na.status(t, "mh"); st.State != "Down" {
		t.Fatalf("session moved on dropped packets: %+v", st)
	}
	// max_hops -1 (255 here): no TTL check, as a multihop session wants.
	s.MaxHops = 255
	if err := na.srv.Configure(context.Background(), []SessionConfig{s}); err != nil {
		t.Fatal(err)
	}
	na.waitState(t, "mh", "Up", 15*time.Second)
	r.Cut()
	na.waitState(t, "mh", "Down", 5*time.Second)
	r.Restore()
	na.waitState(t, "mh", "Up", 15*time.Second)
	o, _ := r.Run("birdc", "-s", sock, "show", "bfd", "sessions")
	t.Logf("birdc show bfd sessions:\n%s", o)
}
