package vrrp_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrp"
	"github.com/vipd/vipd/internal/vrrp/vrrptest"
)

// Keep the main goroutine on the main thread: lab.Host.Do leaves its
// thread in a namespace, and a main thread there would make the lab's
// cleanup kill the test binary.
func init() { runtime.LockOSThread() }

// TestMain lets more of the end-to-end tests run at once than there are
// cores: they wait on VRRP timers, not on the CPU (a few % of a core
// each), and the v2 ones take ~20 s each. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < 4 {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}

const probePort = 9999

var vip = netip.MustParseAddr("198.18.0.100")

// pair is two directors and a client on one lab bridge.
type pair struct {
	l      *lab.Lab
	d1, d2 *lab.Host
	cl     *lab.Host
	p      *vrrptest.Prober
	// cutting marks the next failover as a cable pull (see failover).
	cutting bool
}

// cut pulls h's cable, as a failover event.
func (p *pair) cut(h *lab.Host) func() {
	return func() {
		p.cutting = true
		h.Cut()
	}
}

func newPair(t *testing.T) *pair {
	l := lab.New(t)
	p := &pair{l: l, d1: l.Host("d1"), d2: l.Host("d2"), cl: l.Host("client")}
	vrrptest.Responder(t, p.d1, probePort)
	vrrptest.Responder(t, p.d2, probePort)
	return p
}

func (p *pair) probe(t *testing.T) {
	p.p = vrrptest.Probe(t, p.cl, vip, probePort, 10*time.Millisecond)
}

func spec(version int, interval time.Duration, prio int) vrrptest.Spec {
	return vrrptest.Spec{VRID: 51, Version: version, Priority: prio, AdvertInt: interval,
		VIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24")}}
}

// status asks a vrrpnode for its status (SIGUSR1 writes it to a file).
func status(t *testing.T, d *vrrptest.Director) vrrp.Status {
	t.Helper()
	path := filepath.Join(d.Dir, "status.json")
	os.Remove(path)
	if err := d.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var st vrrp.Status
	lab.Eventually(t, 3*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(b, &st) == nil
	}, "no status from %s", d.Host.Name)
	return st
}

// waitMaster waits until h holds the VIP and the client's probes reach it.
func (p *pair) waitMaster(t *testing.T, h *lab.Host, timeout time.Duration) {
	t.Helper()
	lab.Eventually(t, timeout, func() bool { return vrrptest.HasVIP(h, vip) }, "%s never got the VIP", h.Name)
	if p.p != nil {
		p.p.WaitReply(t, h.Name, time.Now(), timeout)
	}
}

// failover cuts/kills/stops the master by act, then checks that the client
// reaches the VIP through the backup within bound.
func (p *pair) failover(t *testing.T, to *lab.Host, bound time.Duration, act func()) time.Duration {
	t.Helper()
	t0 := time.Now()
	act()
	if p.cutting {
		// A cable pulled by an "ip" command on a busy host is pulled at
		// some point while the command runs: count from its end.
		t0 = time.Now()
		p.cutting = false
	}
	p.p.WaitReply(t, to.Name, t0, bound+5*time.Second)
	fromEvent, gap, _ := p.p.Outage(to.Name, t0)
	t.Logf("failover to %s: client reached the VIP %v after the event (gap between replies %v), bound %v", to.Name, fromEvent.Round(time.Millisecond), gap.Round(time.Millisecond), bound)
	if fromEvent > bound {
		t.Errorf("client reached the VIP %v after the event, want at most %v", fromEvent, bound)
	}
	return fromEvent
}

// TestVipdPairFailover is the acceptance list for a pair of vipd daemons
// (cmd/vipd on keepalived.conf): link cut, crash with the address
// removed, SIGTERM, and the master's return.
func TestVipdPairFailover(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		version  int
		interval time.Duration
	}{{2, time.Second}, {3, 100 * time.Millisecond}} {
		t.Run(fmt.Sprintf("v%d", c.version), func(t *testing.T) {
			t.Parallel()
			down := vrrptest.DownInterval(c.version, 100, c.interval)
			skew := vrrptest.Skew(c.version, 100, c.interval)
			p := newPair(t)
			d1 := vrrptest.Start(t, p.d1, "vipd", vrrptest.DaemonCommand, spec(c.version, c.interval, 150))
			d2 := vrrptest.Start(t, p.d2, "vipd", vrrptest.DaemonCommand, spec(c.version, c.interval, 100))
			p.probe(t)
			p.waitMaster(t, p.d1, 10*down)
			d2.WaitLog(t, "(VI_1) Entering BACKUP STATE (init)", 1, time.Second)
			vrrptest.Exclusive(t, vip, 3*c.interval, p.d1, p.d2)

			// 1. The master's link is cut.
			p.failover(t, p.d2, down+vrrptest.Slack(t), p.cut(p.d1))
			d1.WaitLog(t, "(VI_1) Entering FAULT STATE", 1, time.Second)
			lab.Eventually(t, time.Second, func() bool { return !vrrptest.HasVIP(p.d1, vip) }, "d1 kept the VIP in FAULT")
			// It comes back: BACKUP, then it preempts after its own down
			// interval.
			p.d1.Restore()
			d1.WaitLog(t, "(VI_1) Entering BACKUP STATE", 1, 2*time.Second)
			p.waitMaster(t, p.d1, 2*vrrptest.DownInterval(c.version, 150, c.interval)+time.Second)
			d2.WaitLog(t, "(VI_1) Master received advert from 198.18.0.11 with higher priority 150, ours 100", 1, time.Second)
			lab.Eventually(t, time.Second, func() bool { return !vrrptest.HasVIP(p.d2, vip) }, "d2 kept the VIP after d1 preempted")
			vrrptest.Exclusive(t, vip, 3*c.interval, p.d1, p.d2)

			// 2. SIGTERM: priority 0, the backup takes over after its skew.
			p.failover(t, p.d2, skew+vrrptest.Slack(t), func() { d1.Term(t) })
			if !strings.Contains(d1.Log(), "(VI_1) sent 0 priority") {
				t.Errorf("d1 did not log the priority 0 advert:\n%s", d1.Log())
			}
			if vrrptest.HasVIP(p.d1, vip) {
				t.Error("d1 left its VIP behind after SIGTERM")
			}
			d2.WaitLog(t, "(VI_1) Backup received priority 0 advertisement", 1, time.Second)
			d1.Restart(t)
			p.waitMaster(t, p.d1, 2*vrrptest.DownInterval(c.version, 150, c.interval)+2*time.Second)

			// 3. The master dies with its address: no priority 0, the
			// backup waits out the down interval.
			p.failover(t, p.d2, down+vrrptest.Slack(t), func() {
				d1.Kill()
				p.d1.MustRun("ip", "addr", "flush", "dev", "eth0")
			})
			vrrptest.Exclusive(t, vip, 3*c.interval, p.d1, p.d2)
		})
	}
}

// TestVipdPairNoPreempt: a higher priority vipd daemon with nopreempt
// leaves the master alone; with preempt it takes over.
func TestVipdPairNoPreempt(t *testing.T) {
	t.Parallel()
	iv := 100 * time.Millisecond
	p := newPair(t)
	s2 := spec(3, iv, 100)
	d2 := vrrptest.Start(t, p.d2, "vipd", vrrptest.DaemonCommand, s2)
	p.waitMaster(t, p.d2, 5*time.Second)
	s1 := spec(3, iv, 150)
	s1.NoPreempt = true
	d1 := vrrptest.Start(t, p.d1, "vipd", vrrptest.DaemonCommand, s1)
	d1.WaitLog(t, "(VI_1) Entering BACKUP STATE (init)", 1, 2*time.Second)
	vrrptest.Exclusive(t, vip, 10*vrrptest.DownInterval(3, 150, iv), p.d1, p.d2)
	if !vrrptest.HasVIP(p.d2, vip) || strings.Contains(d1.Log(), "Entering MASTER STATE") {
		t.Fatalf("nopreempt node took over:\n%s", d1.Log())
	}
	d1.Term(t)
	s1.NoPreempt = false
	d1 = vrrptest.Start(t, p.d1, "vipd", vrrptest.DaemonCommand, s1)
	p.waitMaster(t, p.d1, 5*time.Second)
	d1.WaitLog(t, "(VI_1) received lower priority (100) advert from 198.18.0.12 - discarding", 1, time.Second)
	_ = d2
}
