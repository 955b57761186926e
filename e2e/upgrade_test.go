package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/netif"
)

// upgradeConf: vipd is master (150) of VI_1 over keepalived (100), and
// proxies the VIP's port 80 to rs1 and rs2 (nginx) and rs3, where
// nothing listens: its TCP_CHECK holds it down.
func upgradeConf(rs ...string) string {
	return `global_defs {
    router_id upgrade
    vrrp_version 2
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority PRIO
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
` + tcpCheckedServers(rs...) + "}\n"
}

// upgradeSabotage replaces `vipctl upgrade` in TestUpgradeUnderLoad, to
// show that its checks fail when the handover is not there:
// E2E_UPGRADE_SABOTAGE=restart stops vipd (SIGTERM) and starts it again;
// =none does nothing (the same pid keeps serving).
var upgradeSabotage = os.Getenv("E2E_UPGRADE_SABOTAGE")

// TestUpgradeUnderLoad is issue 15's acceptance for item 3: under wrk's
// load plus 50 long-lived connections that each send a request every
// 100 ms, five `vipctl upgrade` in a row, each after a new binary was
// installed at vipd's path (renamed over it, as a package manager
// does). Then: wrk saw no error, no long-lived connection broke, the
// keepalived BACKUP peer logged nothing about VI_1 (no state change, no
// priority 0, no timeout), vipd's adverts never paused longer than
// 1.5 advert intervals and no gratuitous ARP for the VIP went out, the
// down real server stayed down (never re-added, never removed again),
// each upgrade left a new pid serving, and every old process exited
// within 5 s of its last connection closing.
func TestUpgradeUnderLoad(t *testing.T) {
	lab.RequireCommand(t, "wrk")
	lab.RequireCommand(t, "keepalived")
	l := lab.New(t)
	client := l.Host("client")
	dv := l.Host("vipd")
	dk := l.Host("kad")
	var rss []string
	for i := 1; i <= 2; i++ {
		h := l.Host(fmt.Sprintf("rs%d", i))
		nginx(t, h, h.Name)
		rss = append(rss, h.Addr.String())
	}
	dead := l.Host("rs3") // nothing listens on its port 80
	rss = append(rss, dead.Addr.String())
	const vip = "198.18.0.100"

	// vipd runs from its own copy of the binary, which each upgrade
	// replaces.
	dir := t.TempDir()
	bin := filepath.Join(dir, "vipd")
	install := func() {
		t.Helper()
		b, err := os.ReadFile(lab.Binary(t, "./cmd/vipd"))
		if err != nil {
			t.Fatal(err)
		}
		tmp := bin + ".new"
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, bin); err != nil {
			t.Fatal(err)
		}
	}
	install()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(strings.Replace(upgradeConf(rss...), "PRIO", "150", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "vipd.sock")
	c := api.NewClient(sock)
	startV := func() *lab.Proc {
		p := dv.Start(bin, "-n", "-l", "-D", "-f", conf, "-p", filepath.Join(dir, "vipd.pid"), "--control", sock)
		lab.Eventually(t, 10*time.Second, func() bool {
			r, err := c.Ready(context.Background())
			return err == nil && r.Ready
		}, "vipd not ready:\n%s", p.Output())
		return p
	}
	status := func() api.Status {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st
	}
	procs := []*lab.Proc{startV()}
	output := func() string {
		var b strings.Builder
		for _, p := range procs {
			b.WriteString(p.Output())
		}
		return b.String()
	}
	var pids []int
	t.Cleanup(func() {
		// The newest vipd is not a child of the test: stop it cleanly.
		if len(pids) > 0 {
			_ = syscall.Kill(pids[len(pids)-1], syscall.SIGTERM)
			waitGone(pids[len(pids)-1], 10*time.Second)
		}
	})
	k := keepalived(t, dk, strings.Replace(upgradeConf(rss...), "PRIO", "100", 1))
	lab.Eventually(t, 10*time.Second, func() bool {
		st := status()
		return len(st.Instances) == 1 && st.Instances[0].State == "MASTER" && hasAddr(dv, vip) && !hasAddr(dk, vip) &&
			strings.Contains(k.Output(), "(VI_1) Entering BACKUP STATE")
	}, "vipd not master with keepalived backup:\n%s", k.Output())
	rs3 := "[" + dead.Addr.String() + "]:tcp:80"
	downRS3 := func(st api.Status) bool {
		for _, ch := range st.Checks {
			if strings.HasPrefix(ch.RealServer, dead.Addr.String()+":") {
				return !ch.Up
			}
		}
		return false
	}
	lab.Eventually(t, 10*time.Second, func() bool { return downRS3(status()) }, "rs3 (nothing listening) never went down")
	lab.Eventually(t, 5*time.Second, func() bool { _, err := get(client, vip, time.Second); return err == nil }, "VIP not serving")
	pids = append(pids, status().PID)
	// The master's delayed second GARP burst (garp_master_delay 5 s)
	// has gone before the captures start.
	lab.Eventually(t, 10*time.Second, func() bool {
		return strings.Count(output(), "Sending/queueing gratuitous ARPs") >= 2
	}, "vipd's second GARP burst did not come")

	// What the peer hears: vipd's adverts and any gratuitous ARP for
	// the VIP, from now on.
	capt := captureVRRP(t, dk, dv.Addr)
	garps := captureGARP(t, dk, netip.MustParseAddr(vip))
	kStart := len(k.Output())
	if !strings.Contains(k.Output()[:kStart], "(VI_1) Entering BACKUP STATE") {
		t.Fatalf("keepalived's log is not captured:\n%s", k.Output())
	}

	// 50 long-lived connections, each a request every 100 ms.
	var broken atomic.Int64
	var requests atomic.Int64
	var brokeWhy sync.Map
	stopLong := make(chan struct{})
	var longWG sync.WaitGroup
	for i := 0; i < 50; i++ {
		var conn net.Conn
		if err := client.Do(func() (err error) { conn, err = net.DialTimeout("tcp4", vip+":80", 3*time.Second); return err }); err != nil {
			t.Fatalf("long-lived connection %d: %v", i, err)
		}
		longWG.Add(1)
		go func() {
			defer longWG.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopLong:
					return
				case <-tick.C:
				}
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				body, closes, err := getKeepAlive(conn, br)
				if err != nil || closes || !strings.HasPrefix(body, "rs") {
					broken.Add(1)
					brokeWhy.Store(i, fmt.Sprintf("body %q closes %v err %v", body, closes, err))
					return
				}
				requests.Add(1)
			}
		}()
	}
	w := client.Start("wrk", "-t1", "-c8", "-d120s", "http://"+vip+"/")
	lab.Eventually(t, 10*time.Second, func() bool { return requests.Load() >= 100 }, "the long-lived connections are not flowing")
	time.Sleep(time.Second) // wrk's connections are up and flowing

	vipctl := lab.Binary(t, "./cmd/vipctl")
	started := time.Now()
	for i := 0; i < 5; i++ {
		install()
		before := pids[len(pids)-1]
		switch upgradeSabotage {
		case "restart":
			p := procs[len(procs)-1]
			_ = p.Signal(syscall.SIGTERM)
			waitGone(before, 10*time.Second)
			procs = append(procs, startV())
		case "none":
		default:
			out, err := dv.Run(vipctl, "--socket", sock, "upgrade")
			if err != nil {
				t.Fatalf("upgrade %d: %v\n%s\nvipd:\n%s", i, err, out, output())
			}
			t.Logf("upgrade %d: %s", i, strings.TrimSpace(out))
		}
		st := status()
		if st.PID == before {
			t.Errorf("upgrade %d: pid %d still answers the control socket", i, before)
		}
		// New connections go to the new process: its counters move.
		conns := func() uint64 {
			var n uint64
			for _, s := range status().Services {
				n += s.Stats.Conns
			}
			return n
		}
		c0 := conns()
		if _, err := get(client, vip, 2*time.Second); err != nil {
			t.Errorf("upgrade %d: a new connection failed: %v", i, err)
		}
		if c1 := conns(); c1 <= c0 {
			t.Errorf("upgrade %d: the new pid %d did not take a new connection (%d, then %d)", i, st.PID, c0, c1)
		}
		if !downRS3(st) {
			t.Errorf("upgrade %d: rs3 is up in the new process", i)
		}
		pids = append(pids, st.PID)
		time.Sleep(time.Second) // traffic between upgrades
	}
	window := time.Since(started)
	time.Sleep(4 * time.Second) // a down interval of keepalived's after the last one

	// The load stops; the long-lived connections close; every old
	// process exits within 5 s of that.
	if err := w.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("wrk did not stop")
	}
	close(stopLong)
	longWG.Wait()
	closed := time.Now()
	for _, pid := range pids[:len(pids)-1] {
		if !waitGone(pid, time.Until(closed.Add(5*time.Second))) && upgradeSabotage == "" {
			t.Errorf("old vipd pid %d still runs %v after the last connection closed", pid, time.Since(closed).Round(time.Millisecond))
		}
	}
	t.Logf("the %d old processes were gone %v after the last connection closed", len(pids)-1, time.Since(closed).Round(time.Millisecond))
	gaps, prio0 := capt.stop()
	ga := garps.stop()

	out := w.Output()
	t.Logf("wrk:\n%s", out)
	t.Logf("long-lived connections: %d requests, %d broken", requests.Load(), broken.Load())
	m := regexp.MustCompile(`(\d+) requests in ([0-9.]+)(m?s)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("wrk made no requests:\n%s", out)
	}
	if d, err := time.ParseDuration(m[2] + m[3]); err != nil || d < window {
		t.Errorf("wrk ran %s%s, less than the %v the upgrades took", m[2], m[3], window)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx"} {
		if strings.Contains(out, bad) {
			t.Errorf("wrk saw errors across the upgrades (%s)", bad)
		}
	}
	if n := broken.Load(); n > 0 {
		brokeWhy.Range(func(k, v any) bool { t.Logf("long-lived connection %v: %v", k, v); return true })
		t.Errorf("%d of 50 long-lived connections broke", n)
	}
	t.Logf("keepalived's log: %d bytes before the upgrades, %d after", kStart, len(k.Output()))
	if kl := k.Output()[kStart:]; strings.Contains(kl, "VI_1") {
		t.Errorf("keepalived (BACKUP) logged about VI_1 during the upgrades:\n%s", kl)
	}
	maxGap := time.Duration(0)
	for _, g := range gaps {
		maxGap = max(maxGap, g)
	}
	t.Logf("vipd adverts heard by keepalived's host: %d, longest gap %v; gratuitous ARPs for the VIP: %d", len(gaps)+1, maxGap.Round(time.Millisecond), ga)
	if len(gaps) < int(window/time.Second)-1 || maxGap > 1500*time.Millisecond {
		t.Errorf("vipd's adverts paused: %d adverts over %v, longest gap %v (advert_int 1 s)", len(gaps)+1, window, maxGap)
	}
	if prio0 > 0 {
		t.Errorf("vipd sent %d priority 0 adverts", prio0)
	}
	if ga > 0 {
		t.Errorf("%d gratuitous ARPs for the VIP went out during the upgrades", ga)
	}
	vl := output()
	if n := strings.Count(vl, "Removing service "+rs3); n != 1 {
		t.Errorf("rs3 was removed %d times (once at start is right): its checker state was not carried", n)
	}
	if strings.Contains(vl, "Adding service") {
		t.Errorf("a real server was added again during the upgrades")
	}
}

// waitGone waits until pid no longer exists (reaped) and reports
// whether it went within d.
func waitGone(pid int, d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return true
			}
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vrrpCapture records the VRRP adverts one sender's address sends, as
// another host's kernel receives them.
type vrrpCapture struct {
	mu    sync.Mutex
	at    []time.Time
	prio0 int
	done  chan struct{}
	quit  atomic.Bool
}

func captureVRRP(t *testing.T, h *lab.Host, src netip.Addr) *vrrpCapture {
	t.Helper()
	c := &vrrpCapture{done: make(chan struct{})}
	var conn *netif.VRRPConn
	if err := h.Do(func() (err error) {
		conn, err = netif.ListenVRRP("eth0", false, netip.MustParseAddr("224.0.0.18"))
		return err
	}); err != nil {
		t.Fatalf("VRRP capture on %s: %v", h.Name, err)
	}
	go func() {
		defer close(c.done)
		defer conn.Close()
		buf := make([]byte, 1500)
		for !c.quit.Load() {
			_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			r, err := conn.Read(buf)
			if err != nil || r.Src != src || len(r.Payload) < 3 {
				continue
			}
			c.mu.Lock()
			if r.Payload[2] == 0 {
				c.prio0++
			} else {
				c.at = append(c.at, r.At)
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.quit.Store(true); <-c.done })
	return c
}

// stop ends the capture and returns the gaps between adverts and the
// number of priority 0 adverts.
func (c *vrrpCapture) stop() (gaps []time.Duration, prio0 int) {
	c.quit.Store(true)
	<-c.done
	for i := 1; i < len(c.at); i++ {
		gaps = append(gaps, c.at[i].Sub(c.at[i-1]))
	}
	return gaps, c.prio0
}

// garpCapture counts gratuitous ARPs for one address that reach a host.
type garpCapture struct {
	n    atomic.Int64
	quit atomic.Bool
	done chan struct{}
}

func captureGARP(t *testing.T, h *lab.Host, ip netip.Addr) *garpCapture {
	t.Helper()
	g := &garpCapture{done: make(chan struct{})}
	var fd int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ARP))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index})
	}); err != nil {
		t.Fatalf("ARP capture on %s: %v", h.Name, err)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	want := ip.As4()
	go func() {
		defer close(g.done)
		defer unix.Close(fd)
		buf := make([]byte, 1500)
		for !g.quit.Load() {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 28 {
				continue
			}
			// ARP for IPv4 over Ethernet: sender IP at 14, target IP at 24;
			// gratuitous when both are the address.
			if [4]byte(buf[14:18]) == want && [4]byte(buf[24:28]) == want {
				g.n.Add(1)
			}
		}
	}()
	t.Cleanup(func() { g.quit.Store(true); <-g.done })
	return g
}

func (g *garpCapture) stop() int {
	g.quit.Store(true)
	<-g.done
	return int(g.n.Load())
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// TestUpgradeFailureKeepsRunning: an upgrade that cannot happen changes
// nothing. The new binary finds a broken configuration, is not vipd at
// all, or fails after the old process had already stopped its checkers,
// stopped accepting and detached VRRP (it cannot write its pid file):
// each time `vipctl upgrade` exits 1 naming the step, the same pid keeps
// serving as MASTER, a long-lived connection carries on, and the
// keepalived BACKUP peer hears nothing. A last, good upgrade then works.
func TestUpgradeFailureKeepsRunning(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "keepalived")
	l := lab.New(t)
	client := l.Host("client")
	dv := l.Host("vipd")
	dk := l.Host("kad")
	rs := l.Host("rs1")
	nginx(t, rs, rs.Name)
	const vip = "198.18.0.100"
	dir := t.TempDir()
	bin := filepath.Join(dir, "vipd")
	real := filepath.Join(dir, "vipd.real")
	b, err := os.ReadFile(lab.Binary(t, "./cmd/vipd"))
	if err != nil {
		t.Fatal(err)
	}
	put := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path+".new", data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	put(bin, b)
	put(real, b)
	good := strings.Replace(upgradeConf(rs.Addr.String()), "PRIO", "150", 1)
	conf := filepath.Join(dir, "keepalived.conf")
	put(conf, []byte(good))
	sock := filepath.Join(dir, "vipd.sock")
	c := api.NewClient(sock)
	p := dv.Start(bin, "-n", "-l", "-D", "-f", conf, "-p", filepath.Join(dir, "vipd.pid"), "--control", sock)
	var last int
	t.Cleanup(func() {
		if last != 0 {
			_ = syscall.Kill(last, syscall.SIGTERM)
			waitGone(last, 10*time.Second)
		}
	})
	status := func() api.Status {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, p.Output())
		}
		return st
	}
	k := keepalived(t, dk, strings.Replace(upgradeConf(rs.Addr.String()), "PRIO", "100", 1))
	lab.Eventually(t, 15*time.Second, func() bool {
		r, err := c.Ready(context.Background())
		return err == nil && r.Ready && status().Instances[0].State == "MASTER" && hasAddr(dv, vip) &&
			strings.Contains(k.Output(), "(VI_1) Entering BACKUP STATE") && strings.Count(p.Output(), "Sending/queueing gratuitous ARPs") >= 2
	}, "vipd not master with keepalived backup:\n%s", p.Output())
	pid := status().PID
	last = pid
	kStart := len(k.Output())
	capt := captureVRRP(t, dk, dv.Addr)
	capStart := time.Now()

	var conn net.Conn
	if err := client.Do(func() (err error) { conn, err = net.DialTimeout("tcp4", vip+":80", 3*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	alive := func(when string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if body, closes, err := getKeepAlive(conn, br); err != nil || closes || body != "rs1" {
			t.Fatalf("%s: the long-lived connection broke: %q %v %v", when, body, closes, err)
		}
		if _, err := get(client, vip, 2*time.Second); err != nil {
			t.Fatalf("%s: a new connection failed: %v", when, err)
		}
		st := status()
		if st.PID != pid || st.Instances[0].State != "MASTER" || !hasAddr(dv, vip) {
			t.Fatalf("%s: pid %d (want %d), VI_1 %s, VIP on vipd %v", when, st.PID, pid, st.Instances[0].State, hasAddr(dv, vip))
		}
	}
	alive("before")
	vipctl := lab.Binary(t, "./cmd/vipctl")
	// fails runs an upgrade that must fail at one of steps (wantStep,
	// alternatives separated by |: a process that exits at once may be
	// gone before or after hello) with wantReason in the message.
	fails := func(what, wantStep, wantReason string) {
		t.Helper()
		out, err := dv.Run(vipctl, "--socket", sock, "upgrade")
		if err == nil {
			t.Fatalf("%s: upgrade succeeded:\n%s", what, out)
		}
		stepOK := false
		for _, st := range strings.Split(wantStep, "|") {
			stepOK = stepOK || strings.Contains(out, `step "`+st+`"`)
		}
		if !stepOK || !strings.Contains(out, wantReason) || !strings.Contains(out, "the running vipd is unchanged") {
			t.Errorf("%s: vipctl said\n%s\nwant the step %q and %q", what, out, wantStep, wantReason)
		}
		t.Logf("%s: %s", what, strings.TrimSpace(out))
		alive(what)
	}

	// A service the proxy cannot run: vipd refuses the configuration.
	put(conf, []byte(good+"virtual_server 198.18.0.100 8080 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.5 8080 {\n    }\n}\n"))
	fails("broken configuration", "wait for the new process to load its configuration (ready)", "failed to load the configuration")
	put(conf, []byte(good))

	put(bin, []byte("#!/bin/sh\necho not vipd >&2\nexit 3\n"))
	fails("not vipd", "send the sockets (hello)|wait for the new process to load its configuration (ready)", "exit status 3")

	put(bin, []byte("#!/bin/sh\nexec "+real+` "$@" -p /proc/no-such-dir/vipd.pid`+"\n"))
	fails("pid file after the handover began", "wait for the new process to take over (done)", "write the pid file")
	// The old process took everything back: checkers run again.
	before := status().Checks[0].Checks
	lab.Eventually(t, 5*time.Second, func() bool { return status().Checks[0].Checks > before }, "the checkers did not run again after the failed upgrade")

	put(bin, b)
	out, err := dv.Run(vipctl, "--socket", sock, "upgrade")
	if err != nil {
		t.Fatalf("good upgrade: %v\n%s\n%s", err, out, p.Output())
	}
	st := status()
	if st.PID == pid {
		t.Fatalf("good upgrade: pid %d still answers", pid)
	}
	last = st.PID
	pid = st.PID
	alive("after the good upgrade")
	conn.Close()
	gaps, prio0 := capt.stop()
	maxGap := time.Duration(0)
	for _, g := range gaps {
		maxGap = max(maxGap, g)
	}
	t.Logf("adverts: %d, longest gap %v", len(gaps)+1, maxGap.Round(time.Millisecond))
	// A rollback resumes the old process's instances after the new one
	// failed, which under CI load took up to 1.9 s once; what matters is
	// the BACKUP's master-down interval (3 x 1 s + skew: 3.6 s), and
	// keepalived's silence is checked below.
	if heard, want := len(gaps)+1, int(time.Since(capStart)/time.Second)-1; heard < want || maxGap > 2500*time.Millisecond || prio0 > 0 {
		t.Errorf("vipd's adverts: longest gap %v, %d priority 0", maxGap, prio0)
	}
	if kl := k.Output()[kStart:]; strings.Contains(kl, "VI_1") {
		t.Errorf("keepalived (BACKUP) logged about VI_1:\n%s", kl)
	}
}
