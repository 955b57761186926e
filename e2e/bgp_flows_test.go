package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/dataplane/xdp"
	"github.com/vipd/vipd/internal/lab"
)

// clearHashAtIngress attaches to ifname's ingress in h a tc program that
// calls bpf_set_hash_invalid: a packet from a local socket carries the
// socket's random hash (sk_txhash) across veths and namespaces, and the
// router's multipath selection would use it instead of the 5-tuple (and a
// new one after every retransmission timeout). Cleared, the router hashes
// the 5-tuple as a router on another machine does (issue 14).
func clearHashAtIngress(t testing.TB, h *lab.Host, ifname string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "clear_hash",
		Type:    ebpf.SchedCLS,
		License: "Apache-2.0",
		Instructions: asm.Instructions{
			asm.FnSetHashInvalid.Call(), // r1 is the skb already
			asm.Mov.Imm(asm.R0, 0),      // TC_ACT_OK
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("loading the hash-clearing tc program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	}); err != nil {
		t.Fatalf("attaching the hash-clearing program to %s ingress in %s: %v", ifname, h.Name, err)
	}
	t.Cleanup(func() { l.Close() })
}

func bgpXDPDirectorConf(self string) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
%[5]svirtual_server %[2]s 80 {
    delay_loop 1
    lvs_sched mh
    mh-port
    lvs_method DR
    protocol TCP
    bgp_announce
%[4]s}
`, self, bgpVIP, bgpRouter, tcpCheckedServers("198.18.0.21", "198.18.0.22"), bgpSession(self))
}

// flow is one long-lived keep-alive HTTP connection through the VIP that
// sends a request every 100 ms and records when each answer came.
type flow struct {
	conn  net.Conn
	port  int
	mu    sync.Mutex
	rs    string      // the real server that answers
	oks   []time.Time // answers
	err   error       // set when the connection broke
	errAt time.Time
}

func (f *flow) run(stop <-chan struct{}) {
	br := bufio.NewReader(f.conn)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = f.conn.SetDeadline(time.Now().Add(15 * time.Second))
		body, closes, err := getKeepAlive(f.conn, br)
		if closes {
			err = fmt.Errorf("server closes the connection")
		}
		f.mu.Lock()
		if err == nil && f.rs != "" && body != f.rs {
			err = fmt.Errorf("answered by %s, was %s", body, f.rs)
		}
		if err != nil {
			f.err, f.errAt = err, time.Now()
			f.mu.Unlock()
			return
		}
		f.rs = body
		f.oks = append(f.oks, time.Now())
		f.mu.Unlock()
	}
}

// state returns the real server and the error so far.
func (f *flow) state() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rs, f.err
}

// gapAfter is the longest time between answers from t0 on (the answer
// before t0 included), and whether an answer came after t0.
func (f *flow) gapAfter(t0 time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, _ := slices.BinarySearchFunc(f.oks, t0, func(a, b time.Time) int { return a.Compare(b) })
	if i == len(f.oks) {
		return 0, false
	}
	var g time.Duration
	for j := max(i, 1); j < len(f.oks); j++ {
		g = max(g, f.oks[j].Sub(f.oks[j-1]))
	}
	return g, true
}

// TestBGPFlowsSurvive is issue 14's acceptance test: three vipd directors
// on the xdp data plane (lb_algo mh with mh-port, DR) announce one VIP by
// BGP to a BIRD 2 router with ECMP and BFD; long-lived TCP connections
// from a client behind the router spread over all three. When ECMP moves
// flows (a director's cable cut, a director stopped, a director back),
// the director that receives a moved flow maps it to the same real server
// from the shared Maglev table, so no connection breaks: only the stall is
// measured. A real server that dies loses its connections and no others.
func TestBGPFlowsSurvive(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "nginx", "ethtool", "bird", "birdc")
	t.Parallel()
	l := lab.New(t)
	addrs := []string{"198.18.0.11", "198.18.0.12", "198.18.0.13"}
	r := l.Host("r", bgpRouter+"/24")
	var dh []*lab.Host
	for i, a := range addrs {
		dh = append(dh, l.Host(fmt.Sprintf("d%d", i+1), a+"/24"))
	}
	rs := []*lab.Host{l.Host("rs1", "198.18.0.21/24"), l.Host("rs2", "198.18.0.22/24")}
	client := bgpClient(t, l, r)
	for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"} {
		r.MustRun("sysctl", "-qw", k)
	}
	// Lab facts (docs/dataplanes.md): complete checksums from the client,
	// an XDP program on each director's bridge port for XDP_TX.
	// (bgpClient's host is not a lab.Host of l: no MustRun.)
	if out, err := exec.Command("ip", "netns", "exec", client.NS, "ethtool", "-K", "eth0", "tx", "off").CombinedOutput(); err != nil {
		t.Fatalf("ethtool -K eth0 tx off in the client: %v: %s", err, out)
	}
	for _, h := range dh {
		h.MustRun("ip", "route", "add", "default", "via", bgpRouter)
		pass, err := xdp.AttachPass(l.Bridge, h.Port)
		if err != nil {
			t.Fatalf("XDP on %s's peer veth: %v", h.Name, err)
		}
		t.Cleanup(func() { pass.Close() })
	}
	ng := map[string]*lab.Proc{}
	for _, h := range rs {
		realServerUp(t, h, bgpVIP)
		h.MustRun("ip", "route", "add", "default", "via", bgpRouter) // DR: answers go straight to the router
		ng[h.Name] = nginx(t, h, h.Name)
	}
	clearHashAtIngress(t, r, "cli0")

	dir := t.TempDir()
	bconf := filepath.Join(dir, "bird.conf")
	bsock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(bconf, []byte(birdConf(addrs)), 0o644); err != nil {
		t.Fatal(err)
	}
	bird := r.Start("bird", "-f", "-c", bconf, "-s", bsock)
	lab.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(bsock); return err == nil }, "bird did not start:\n%s", bird.Output())

	bpffs := filepath.Join(dir, "bpffs")
	if err := os.Mkdir(bpffs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", bpffs, "bpf", 0, ""); err != nil {
		t.Fatalf("mounting bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	startD := func(i int) *director {
		return startVipd(t, dh[i], bgpXDPDirectorConf(addrs[i]), "--dataplane", "xdp", "--xdp-pins", filepath.Join(bpffs, fmt.Sprintf("d%d", i+1)))
	}
	lab.Binary(t, "./cmd/vipd")
	vipctl := lab.Binary(t, "./cmd/vipctl")
	ds := make([]*director, 3)
	for i := range ds {
		ds[i] = startD(i)
	}
	waitNexthops(t, r, 3, time.Now(), 30*time.Second, "three xdp directors announce")

	// N long-lived connections, each from its own source port.
	const n = 45
	flows := make([]*flow, 0, n)
	for range n {
		var c net.Conn
		if err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp4", bgpVIP+":80", 3*time.Second); return err }); err != nil {
			t.Fatalf("connecting to the VIP: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		flows = append(flows, &flow{conn: c, port: c.LocalAddr().(*net.TCPAddr).Port})
	}
	stopFlows := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range flows {
		wg.Go(func() { f.run(stopFlows) })
	}
	t.Cleanup(func() { close(stopFlows); wg.Wait() })
	lab.Eventually(t, 10*time.Second, func() bool {
		for _, f := range flows {
			if _, ok := f.gapAfter(time.Now().Add(-time.Second)); !ok {
				return false
			}
		}
		return true
	}, "not every flow is answered")

	// Where each flow went: the router's prediction for its 5-tuple and
	// the director whose flow table holds it.
	predicted := func(f *flow) string {
		out := r.MustRun("ip", "route", "get", bgpVIP, "from", "198.18.1.2", "iif", "cli0", "ipproto", "tcp", "sport", strconv.Itoa(f.port), "dport", "80")
		fs := strings.Fields(out)
		if i := slices.Index(fs, "via"); i >= 0 && i+1 < len(fs) {
			return fs[i+1]
		}
		return ""
	}
	tables := make([]string, 3)
	for i, d := range ds {
		tables[i] = dh[i].MustRun(vipctl, "--socket", d.sock, "list", "-n", "-c")
	}
	perDirector := make([]int, 3)
	match := 0
	for _, f := range flows {
		key := fmt.Sprintf("198.18.1.2:%d ", f.port)
		var at []int
		for i := range tables {
			if strings.Contains(tables[i], key) {
				at = append(at, i)
			}
		}
		if len(at) != 1 {
			t.Errorf("flow from port %d in %d directors' flow tables, want 1", f.port, len(at))
			continue
		}
		perDirector[at[0]]++
		if predicted(f) == addrs[at[0]] {
			match++
		}
	}
	t.Logf("%d flows per director %v; %d of %d took the next hop `ip route get` predicted (tc bpf_set_hash_invalid at the router's ingress)", n, perDirector, match, n)
	if match != n {
		t.Errorf("%d of %d flows took the predicted next hop, want all", match, n)
	}
	for i, c := range perDirector {
		if c == 0 {
			t.Fatalf("no flow through d%d: %v\n%s", i+1, perDirector, tables[0])
		}
	}

	broken := func() []string {
		var b []string
		for _, f := range flows {
			f.mu.Lock()
			if f.err != nil {
				b = append(b, fmt.Sprintf("port %d (%s): %v", f.port, f.rs, f.err))
			}
			f.mu.Unlock()
		}
		return b
	}
	// after waits until every flow was answered 1 s after what happened at
	// t0, fails on a broken flow, and logs the stalls.
	after := func(t *testing.T, what string, t0 time.Time) {
		t.Helper()
		lab.Eventually(t, 20*time.Second, func() bool {
			for _, f := range flows {
				if _, err := f.state(); err != nil {
					continue
				}
				if _, ok := f.gapAfter(t0.Add(time.Second)); !ok {
					return false
				}
			}
			return true
		}, "%s: not every flow answered again", what)
		if b := broken(); len(b) > 0 {
			t.Fatalf("%s: %d connections broken: %v", what, len(b), b)
		}
		var gaps []time.Duration
		for _, f := range flows {
			g, _ := f.gapAfter(t0)
			gaps = append(gaps, g)
		}
		slices.Sort(gaps)
		stalled := len(gaps) - upTo300ms(gaps)
		t.Logf("%s: 0 of %d connections broken; longest gap between answers p50 %v, max %v; %d flows stalled > 300 ms",
			what, n, gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond), stalled)
	}

	// BFD up everywhere, so a cut is noticed in BFD time, not hold time.
	bfdUp := func() {
		lab.Eventually(t, 15*time.Second, func() bool {
			for _, d := range ds {
				st := d.status().BGP
				if st == nil || len(st.Peers) != 1 || st.Peers[0].BFD != "UP" {
					return false
				}
			}
			return true
		}, "BFD not UP on every director")
	}

	t.Run("link cut", func(t *testing.T) {
		bfdUp()
		t0 := time.Now()
		dh[2].Cut()
		took := waitNexthops(t, r, 2, t0, 10*time.Second, "d3's cable cut")
		t.Logf("d3 cable cut -> router has 2 next hops: %v", took.Round(time.Millisecond))
		after(t, "d3 cut", t0)
		t0 = time.Now()
		dh[2].Restore()
		took = waitNexthops(t, r, 3, t0, 10*time.Second, "d3's cable back")
		t.Logf("d3 cable back -> announced, 3 next hops: %v", took.Round(time.Millisecond))
		// What d3 saw of its real servers and its route (the race in
		// the report: a director whose checks come back one by one).
		var ev []string
		for _, ln := range strings.Split(ds[2].proc.Output(), "\n") {
			if strings.Contains(ln, "BGP") || strings.Contains(ln, "abling") || strings.Contains(ln, "TCP connection") {
				ev = append(ev, ln)
			}
		}
		t.Logf("d3's last health and BGP lines:\n%s", strings.Join(ev[max(0, len(ev)-12):], "\n"))
		after(t, "d3 back", t0)
	})
	t.Run("SIGTERM and start again", func(t *testing.T) {
		t0 := time.Now()
		if err := ds[1].proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		took := waitNexthops(t, r, 2, t0, 10*time.Second, "d2 stopped")
		t.Logf("SIGTERM d2 -> router has 2 next hops: %v", took.Round(time.Millisecond))
		select {
		case <-ds[1].proc.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("d2 did not stop")
		}
		after(t, "d2 stopped", t0)
		t0 = time.Now()
		ds[1] = startD(1)
		took = waitNexthops(t, r, 3, t0, 10*time.Second, "d2 started again")
		t.Logf("d2 started again -> announced, 3 next hops: %v", took.Round(time.Millisecond))
		after(t, "d2 back", t0)
	})
	t.Run("real server dies", func(t *testing.T) {
		on := map[string]int{}
		for _, f := range flows {
			rs, _ := f.state()
			on[rs]++
		}
		if on["rs1"] == 0 || on["rs2"] == 0 {
			t.Fatalf("flows per real server %v: want both", on)
		}
		t0 := time.Now()
		ng["rs1"].Kill()
		lab.Eventually(t, 20*time.Second, func() bool {
			for _, f := range flows {
				rs, err := f.state()
				if rs == "rs1" && err == nil {
					return false
				}
				if _, ok := f.gapAfter(t0.Add(time.Second)); rs == "rs2" && !ok {
					return false
				}
			}
			return true
		}, "rs1's connections not all lost or rs2's not all answered")
		lost := 0
		for _, f := range flows {
			rs, err := f.state()
			if rs == "rs2" && err != nil {
				t.Errorf("a connection to rs2 broke: port %d: %v", f.port, err)
			}
			if rs == "rs1" && err != nil {
				lost++
			}
		}
		t.Logf("rs1 killed: %d of its %d connections lost, 0 of rs2's %d", lost, on["rs1"], on["rs2"])
	})
}

// upTo300ms counts the sorted gaps of at most 300 ms.
func upTo300ms(gaps []time.Duration) int {
	i, _ := slices.BinarySearch(gaps, 300*time.Millisecond+time.Nanosecond)
	return i
}
