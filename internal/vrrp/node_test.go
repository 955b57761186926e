package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/netif"
	"golang.org/x/sys/unix"
)

// The Node driver over a fake Host, without root: its sockets are
// socketpairs on a fake LAN (so the loop's ppoll waits on real file
// descriptors), its addresses a set in memory, its links a channel the
// test writes. Real time, real timers, real vrrp_script processes and
// track files; only the kernel is a stand-in. The namespace tests
// (node_e2e_test.go) cover the real Host.

// fakeLAN delivers what one conn writes to every other open conn.
type fakeLAN struct {
	mu    sync.Mutex
	conns []*fakeConn
}

type fakeConn struct {
	lan    *fakeLAN
	fds    [2]int // [0] the node reads and polls, [1] the LAN writes
	closed bool
}

// A datagram on the LAN: source and destination (16 bytes each), TTL,
// then the VRRP message.
const fakeHeader = 33

func (l *fakeLAN) listen() (*fakeConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &fakeConn{lan: l, fds: [2]int{fds[0], fds[1]}}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return c, nil
}

func (c *fakeConn) Join(netip.Addr) error { return nil }
func (c *fakeConn) Fd() int               { return c.fds[0] }

func (c *fakeConn) Write(b []byte, src, dst netip.Addr, ttl int) error {
	s16, d16 := src.As16(), dst.As16()
	msg := append(append(append(s16[:], d16[:]...), byte(ttl)), b...)
	c.lan.mu.Lock()
	defer c.lan.mu.Unlock()
	for _, o := range c.lan.conns {
		if o != c && !o.closed {
			_, _ = unix.Write(o.fds[1], msg)
		}
	}
	return nil
}

func (c *fakeConn) TryRead(buf []byte) (netif.Received, bool, error) {
	tmp := make([]byte, 65536)
	n, err := unix.Read(c.fds[0], tmp)
	if errors.Is(err, unix.EAGAIN) {
		return netif.Received{}, false, nil
	}
	if err != nil || n < fakeHeader {
		return netif.Received{}, false, err
	}
	src := netip.AddrFrom16([16]byte(tmp[:16])).Unmap()
	dst := netip.AddrFrom16([16]byte(tmp[16:32])).Unmap()
	m := copy(buf, tmp[fakeHeader:n])
	return netif.Received{Payload: buf[:m], Src: src, Dst: dst, TTL: int(tmp[32]), At: time.Now()}, true, nil
}

func (c *fakeConn) Close() error {
	c.lan.mu.Lock()
	defer c.lan.mu.Unlock()
	if !c.closed {
		c.closed = true
		unix.Close(c.fds[0])
		unix.Close(c.fds[1])
	}
	return nil
}

// fakeHost is a Host whose addresses live in a map.
type fakeHost struct {
	lan   *fakeLAN
	addr  netip.Addr
	links chan netif.LinkState

	mu    sync.Mutex
	vips  map[netip.Prefix]bool
	added map[netip.Prefix]bool // by this process, for RemoveAllVIPs
	garps int
	sent  []string // "dev addr" of each Announce
	vmacs []string // "+name" / "-name" of each AddVMAC / RemoveVMAC
}

func newFakeHost(lan *fakeLAN, addr netip.Addr) *fakeHost {
	return &fakeHost{lan: lan, addr: addr, links: make(chan netif.LinkState, 8),
		vips: map[netip.Prefix]bool{}, added: map[netip.Prefix]bool{}}
}

func (h *fakeHost) Listen(string, bool) (Conn, error) { return h.lan.listen() }
func (h *fakeHost) Link(name string) LinkFacts {
	return LinkFacts{Name: name, Up: true, Addr4: h.addr}
}
func (h *fakeHost) WatchAddrs(ctx context.Context, _ chan<- error) (<-chan int, error) {
	out := make(chan int)
	go func() { <-ctx.Done(); close(out) }()
	return out, nil
}
func (h *fakeHost) WatchLinks(ctx context.Context, _ chan<- error) (<-chan netif.LinkState, error) {
	out := make(chan netif.LinkState)
	go func() {
		defer close(out)
		for {
			select {
			case st := <-h.links:
				select {
				case out <- st:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
func (h *fakeHost) AddVIP(v VIP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vips[v.Prefix], h.added[v.Prefix] = true, true
	return nil
}
func (h *fakeHost) RemoveVIP(v VIP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.vips, v.Prefix)
	delete(h.added, v.Prefix)
	return nil
}
func (h *fakeHost) RemoveStaleVIP(v VIP) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.vips[v.Prefix]
	delete(h.vips, v.Prefix)
	return was, nil
}
func (h *fakeHost) RemoveAllVIPs() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range h.added {
		delete(h.vips, p)
	}
	clear(h.added)
	return nil
}
func (h *fakeHost) Announce(dev string, a netip.Addr, _ int, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.garps++
	h.sent = append(h.sent, dev+" "+a.String())
	return nil
}
func (h *fakeHost) Close() error { return nil }
func (h *fakeHost) AddVMAC(v netif.VMAC) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vmacs = append(h.vmacs, "+"+v.Name)
	return nil
}
func (h *fakeHost) RemoveVMAC(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vmacs = append(h.vmacs, "-"+name)
	return nil
}
func (h *fakeHost) RemoveAllVMACs() error { return nil }

func (h *fakeHost) has(p netip.Prefix) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.vips[p]
}

// testWriter logs a node's lines in the test's output.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(w.name + " " + strings.TrimSpace(string(b)))
	return len(b), nil
}

type fakeNode struct {
	host   *fakeHost
	node   *Node
	cancel context.CancelFunc
	// notes are the notifications, with whether the VIP was in place.
	mu    sync.Mutex
	notes []string
}

var fakeVIP = netip.MustParsePrefix("198.18.0.100/24")

func fakeConfig(prio int, mod func(*Config)) Config {
	cfg := Config{NoRealtime: true, Instances: []InstanceConfig{{Name: "VI_1", Interface: "eth0", VRID: 51,
		Version: 3, Priority: prio, AdvertInt: 100 * time.Millisecond, VIPs: []VIP{{Prefix: fakeVIP}}}}}
	if mod != nil {
		mod(&cfg)
	}
	return cfg
}

func startFakeNode(t *testing.T, lan *fakeLAN, addr string, cfg Config) *fakeNode {
	t.Helper()
	f := &fakeNode{host: newFakeHost(lan, netip.MustParseAddr(addr))}
	notifier := NotifierFunc(func(n Notification) {
		f.mu.Lock()
		defer f.mu.Unlock()
		note := n.Type + " " + n.State
		if n.Type == "INSTANCE" && n.State == "MASTER" && !f.host.has(fakeVIP) {
			note += " without its VIP"
		}
		if n.Reload {
			note += " (reload)"
		}
		f.notes = append(f.notes, note)
	})
	log := slog.New(slog.NewTextHandler(testWriter{t, addr}, nil))
	n, err := New(cfg, Deps{Logger: log, Notifier: notifier, Host: f.host})
	if err != nil {
		t.Fatal(err)
	}
	f.node = n
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		if err := n.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); n.Wait() })
	return f
}

func (f *fakeNode) state() string {
	st := f.node.Status()
	if len(st.Instances) == 0 {
		return ""
	}
	return st.Instances[0].State
}

func (f *fakeNode) notified() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notes)
}

// TestNodeOverFakeHost drives two Nodes through what the namespace tests
// do with a real kernel: election, reload in place, track_external,
// vrrp_script and track_file with weights, a link going down, a clean
// stop that hands over with priority 0 and leaves no VIP.
func TestNodeOverFakeHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flag := filepath.Join(dir, "maintenance")
	weightFile := filepath.Join(dir, "weight")
	if err := os.WriteFile(weightFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lan := &fakeLAN{}
	withTracking := func(cfg *Config) {
		cfg.Scripts = []ScriptConfig{{Name: "chk", Script: "test ! -e " + flag, Interval: 100 * time.Millisecond, Weight: -100}}
		cfg.TrackFiles = []TrackFileConfig{{Name: "tf", Path: weightFile}}
		cfg.Instances[0].TrackScripts = []TrackRef{{Name: "chk"}}
		cfg.Instances[0].TrackFiles = []TrackRef{{Name: "tf"}}
	}
	a := startFakeNode(t, lan, "198.18.0.11", fakeConfig(150, withTracking))
	b := startFakeNode(t, lan, "198.18.0.12", fakeConfig(100, nil))
	masterIs := func(m, o *fakeNode) func() bool {
		return func() bool {
			return m.host.has(fakeVIP) && !o.host.has(fakeVIP) && m.state() == "MASTER" && o.state() == "BACKUP"
		}
	}
	lab.Eventually(t, 5*time.Second, masterIs(a, b), "a (150) not master over b (100): a %s, b %s", a.state(), b.state())

	// Reload b in place to 200: it preempts.
	if err := b.node.Reload(fakeConfig(200, nil)); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, masterIs(b, a), "b (200) did not preempt")
	// An external object down (weight -150) drops b to 50.
	if err := b.node.Reload(fakeConfig(200, func(c *Config) {
		w := -150
		c.Instances[0].TrackExternal = []TrackRef{{Name: "quorum", Weight: &w}}
	})); err != nil {
		t.Fatal(err)
	}
	if err := b.node.SetTrack("quorum", false); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, masterIs(a, b), "a did not take over from b at 50")

	// a's script fails (a real process): 150 - 100 = 50, b's priority;
	// a backup does not preempt at equal priority. The track file then
	// reads -10 (x weight 1): a at 40 loses to b.
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return a.node.Status().Instances[0].EffectivePriority == 50 }, "script failure did not lower a to 50")
	if err := os.WriteFile(weightFile, []byte("-10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, masterIs(b, a), "b (50) did not preempt a (150-100-10)")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, masterIs(a, b), "a (140) did not preempt back")

	// a's link goes down: FAULT, b takes over.
	a.host.links <- netif.LinkState{Name: "eth0", Up: false}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "FAULT" && b.host.has(fakeVIP) && !a.host.has(fakeVIP) }, "a not in FAULT / b not master")
	a.host.links <- netif.LinkState{Name: "eth0", Up: true}
	lab.Eventually(t, 5*time.Second, masterIs(a, b), "a did not come back as master")

	// A clean stop: b takes over within its skew time after priority 0,
	// and a leaves no VIP.
	a.cancel()
	a.node.Wait()
	if a.host.has(fakeVIP) {
		t.Errorf("a left its VIP after stopping")
	}
	lab.Eventually(t, 2*time.Second, func() bool { return b.host.has(fakeVIP) }, "b did not take over after a's priority 0")
	for _, f := range []*fakeNode{a, b} {
		for _, n := range f.notified() {
			if n == "INSTANCE MASTER without its VIP" {
				t.Errorf("MASTER notified before the VIP was in place: %v", f.notified())
			}
		}
	}
	if got := a.notified(); got[len(got)-1] != "INSTANCE STOP" {
		t.Errorf("a's last notification %q, want INSTANCE STOP (all: %v)", got[len(got)-1], got)
	}
}

// TestNodeStartupDelay checks vrrp_startup_delay: a node with a higher
// priority stays silent (no VIP, no instance, no advert that would make
// the running master yield) until its delay has passed, then takes over.
func TestNodeStartupDelay(t *testing.T) {
	t.Parallel()
	lan := &fakeLAN{}
	b := startFakeNode(t, lan, "198.18.0.12", fakeConfig(100, nil))
	lab.Eventually(t, 5*time.Second, func() bool { return b.state() == "MASTER" && b.host.has(fakeVIP) }, "b did not become master alone")

	const delay = 700 * time.Millisecond
	start := time.Now()
	a := startFakeNode(t, lan, "198.18.0.11", fakeConfig(200, func(c *Config) { c.StartupDelay = delay }))
	// During the delay a has no instance and b is not preempted (a
	// reload meanwhile is accepted and applies once the delay is over).
	if err := a.node.Reload(fakeConfig(250, func(c *Config) { c.StartupDelay = delay })); err != nil {
		t.Fatal(err)
	}
	if st := a.state(); st != "" && time.Since(start) < delay {
		t.Errorf("a has an instance in state %s during its startup delay", st)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" && a.host.has(fakeVIP) && !b.host.has(fakeVIP) }, "a (250) did not take over after its delay")
	if took := time.Since(start); took < delay {
		t.Errorf("a took over %v after start, before its %v delay", took, delay)
	}
	if p := a.node.Status().Instances[0].EffectivePriority; p != 250 {
		t.Errorf("a runs priority %d, want 250 from the reload during the delay", p)
	}
	for _, n := range b.notified() {
		if n == "INSTANCE BACKUP" {
			return
		}
	}
	t.Errorf("b never went back to BACKUP: %v", b.notified())
}

func TestStartupDelayAfterBoot(t *testing.T) {
	for _, tc := range []struct {
		startup, boot, up, want time.Duration
	}{
		{0, 0, time.Hour, 0},
		{5 * time.Second, 0, time.Hour, 5 * time.Second},
		{0, 60 * time.Second, 20 * time.Second, 40 * time.Second},
		{50 * time.Second, 60 * time.Second, 20 * time.Second, 50 * time.Second},
		{0, 60 * time.Second, time.Hour, 0},
		{3 * time.Second, 60 * time.Second, -1, 3 * time.Second},
	} {
		if got := startupDelay(Config{StartupDelay: tc.startup, DelayAfterBoot: tc.boot}, tc.up); got != tc.want {
			t.Errorf("startup %v, after boot %v, up %v: %v, want %v", tc.startup, tc.boot, tc.up, got, tc.want)
		}
	}
}

// TestNodeFIFOStatesOnReload checks fifo_write_vrrp_states_on_reload: a
// reload repeats the state of an instance and a sync group that keep it
// (marked Reload, for the FIFOs only), and nothing without the option.
func TestNodeFIFOStatesOnReload(t *testing.T) {
	t.Parallel()
	withGroup := func(on bool) func(*Config) {
		return func(c *Config) {
			c.FIFOStatesOnReload = on
			c.Groups = []GroupConfig{{Name: "G1", Instances: []string{"VI_1"}}}
		}
	}
	a := startFakeNode(t, &fakeLAN{}, "198.18.0.11", fakeConfig(150, withGroup(true)))
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" && slices.Contains(a.notified(), "GROUP MASTER") },
		"a did not become master: %v", a.notified())
	if err := a.node.Reload(fakeConfig(140, withGroup(false))); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Reload(fakeConfig(130, withGroup(true))); err != nil {
		t.Fatal(err)
	}
	want := []string{"INSTANCE BACKUP", "GROUP BACKUP", "INSTANCE MASTER", "GROUP MASTER", "GROUP MASTER (reload)", "INSTANCE MASTER (reload)"}
	lab.Eventually(t, 5*time.Second, func() bool { return len(a.notified()) >= len(want) }, "no repeat at reload: %v", a.notified())
	if got := a.notified(); !slices.Equal(got, want) {
		t.Errorf("notified %q, want %q", got, want)
	}
}

// TestNodeMcastDstIP checks mcast_dst_ip over the stand-in LAN (which
// hands every datagram to every node, as a socket joined to every group
// would): nodes on different groups do not hear each other and are both
// master; nodes on the same group elect one.
func TestNodeMcastDstIP(t *testing.T) {
	t.Parallel()
	lan := &fakeLAN{}
	group := func(g string) func(*Config) {
		return func(c *Config) { c.Instances[0].McastDstIP = netip.MustParseAddr(g) }
	}
	a := startFakeNode(t, lan, "198.18.0.11", fakeConfig(150, group("224.0.0.200")))
	b := startFakeNode(t, lan, "198.18.0.12", fakeConfig(100, nil))
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" && b.state() == "MASTER" },
		"a on 224.0.0.200 and b on 224.0.0.18 should not see each other: a %s, b %s", a.state(), b.state())
	c := startFakeNode(t, lan, "198.18.0.13", fakeConfig(120, group("224.0.0.200")))
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" && c.state() == "BACKUP" && b.state() == "MASTER" },
		"c on a's group should be backup to a: a %s, c %s, b %s", a.state(), c.state(), b.state())
}

// TestNodeUnicastFaultNoPeer: with unicast_fault_no_peer an instance
// without unicast peers stays in FAULT (saying why) instead of running
// over multicast; given a peer by a reload, it runs.
func TestNodeUnicastFaultNoPeer(t *testing.T) {
	t.Parallel()
	noPeer := func(c *Config) { c.Instances[0].UnicastFaultNoPeer = true }
	a := startFakeNode(t, &fakeLAN{}, "198.18.0.11", fakeConfig(150, noPeer))
	lab.Eventually(t, 5*time.Second, func() bool {
		st := a.node.Status()
		return len(st.Instances) == 1 && st.Instances[0].State == "FAULT" &&
			slices.Contains(st.Instances[0].FaultReasons, "Cannot use unicast without any peers")
	}, "no FAULT without peers: %+v", a.node.Status().Instances)
	if a.host.has(fakeVIP) {
		t.Error("a FAULT instance holds its VIP")
	}
	if err := a.node.Reload(fakeConfig(150, func(c *Config) {
		noPeer(c)
		c.Instances[0].UnicastPeers = []netip.Addr{netip.MustParseAddr("198.18.0.12")}
	})); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" && a.host.has(fakeVIP) }, "a with a peer did not run: %s", a.state())
}

// TestNodeGARPExtraIf: garp_extra_if all sends, while master, one GARP
// per interval on each interface other than the instance's that holds a
// VIP (for the first VIP there), and none on the instance's own.
func TestNodeGARPExtraIf(t *testing.T) {
	t.Parallel()
	zero := 0
	a := startFakeNode(t, &fakeLAN{}, "198.18.0.11", fakeConfig(150, func(c *Config) {
		c.Instances[0].GARPMasterRepeat = &zero // only the periodic ones below
		c.Instances[0].GARPExtraIf = 200 * time.Millisecond
		c.Instances[0].VIPs = append(c.Instances[0].VIPs,
			VIP{Prefix: netip.MustParsePrefix("198.18.1.100/24"), Dev: "eth1"},
			VIP{Prefix: netip.MustParsePrefix("198.18.1.101/24"), Dev: "eth1"})
	}))
	sent := func() []string {
		a.host.mu.Lock()
		defer a.host.mu.Unlock()
		return slices.Clone(a.host.sent)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return len(sent()) >= 3 }, "no periodic GARP: %v", sent())
	for _, s := range sent() {
		if s != "eth1 198.18.1.100" {
			t.Fatalf("sent %q, want only eth1 198.18.1.100 (one per interval, not on eth0): %v", s, sent())
		}
	}
	// Not master any more: no more.
	a.host.links <- netif.LinkState{Name: "eth0", Up: false}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "FAULT" }, "a not in FAULT")
	n := len(sent())
	b := startFakeNode(t, &fakeLAN{}, "198.18.0.12", fakeConfig(100, nil)) // a marker of time passing: its election takes > 3 intervals
	lab.Eventually(t, 5*time.Second, func() bool { return b.state() == "MASTER" }, "b not master")
	if m := len(sent()); m != n {
		t.Errorf("%d GARPs after leaving MASTER", m-n)
	}
}

// TestNodeLinkDelays checks interface_up_down_delays: a link down undone
// within the down delay changes nothing; one that lasts faults the
// instance only after the delay; coming back waits for the up delay.
func TestNodeLinkDelays(t *testing.T) {
	t.Parallel()
	const down, up = 400 * time.Millisecond, 300 * time.Millisecond
	a := startFakeNode(t, &fakeLAN{}, "198.18.0.11", fakeConfig(150, func(c *Config) {
		c.LinkDelays = map[string]LinkDelay{"eth0": {Down: down, Up: up}}
	}))
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" }, "a not master")
	// A flap shorter than the delay: no FAULT at all.
	a.host.links <- netif.LinkState{Name: "eth0", Up: false}
	a.host.links <- netif.LinkState{Name: "eth0", Up: true}
	// A lasting down: FAULT, not before the delay.
	start := time.Now()
	a.host.links <- netif.LinkState{Name: "eth0", Up: false}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "FAULT" }, "a not in FAULT after a lasting link down")
	if took := time.Since(start); took < down {
		t.Errorf("FAULT %v after the link went down, before its %v delay", took, down)
	}
	start = time.Now()
	a.host.links <- netif.LinkState{Name: "eth0", Up: true}
	lab.Eventually(t, 5*time.Second, func() bool { return a.state() == "MASTER" }, "a not back after the link came up")
	if took := time.Since(start); took < up {
		t.Errorf("back %v after the link came up, before its %v delay", took, up)
	}
	faults := 0
	for _, n := range a.notified() {
		if n == "INSTANCE FAULT" {
			faults++
		}
	}
	if faults != 1 {
		t.Errorf("%d FAULTs notified, want 1 (the lasting down, not the flap): %v", faults, a.notified())
	}
}
