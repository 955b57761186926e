// Package failover measures VIP failover as a client sees it, vipd against
// keepalived 2.2.7 in the same lab and the same run: two directors and a
// client on a bridge in network namespaces, the client probing the VIP
// over UDP every 10 ms.
//
//	go test -run XXX -bench Failover -benchtime 1x ./bench/failover \
//	    -args -failover.runs 20 -failover.vipd '{bin} -config {json}'
//
// -failover.vipd is the command that runs a vipd director; placeholders
// {json} (vrrp.Config as JSON), {conf} (the same instance as
// keepalived.conf), {dir} (a private directory), {bin} (the vrrpnode
// test program, a vrrp.Node alone: the default, with which the figures
// of docs/benchmarks-failover.md's main table were measured) and {vipd}
// (the daemon, cmd/vipd): -failover.vipd '{vipd} -n -l -f {conf} -p
// {dir}/vipd.pid --control {dir}/vipd.sock'.
//
// Results and how to read them: docs/benchmarks-failover.md.
package failover

import (
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrp/vrrptest"
)

var (
	runs      = flag.Int("failover.runs", 20, "failovers per scenario and implementation")
	vipdCmd   = flag.String("failover.vipd", vrrptest.VipdCommand, "command template of a vipd director")
	kaCmd     = flag.String("failover.keepalived", vrrptest.KeepalivedCommand, "command template of a keepalived director")
	scenarios = flag.String("failover.scenarios", "v2-1s-cut,v3-100ms-cut,v3-100ms-term,v3-50ms-cut,v3-50ms-cut-prio250,v3-20ms-load",
		"comma-separated scenarios")
	loadFor = flag.Duration("failover.load", time.Minute, "duration of the v3-20ms-load scenario (the full run is 10m)")
	impls   = flag.String("failover.impls", "vipd,keepalived", "implementations to measure")
)

// Keep the main goroutine on the main thread (see internal/lab's Do).
func init() { runtime.LockOSThread() }

const port = 9999

var vip = netip.MustParseAddr("198.18.0.100")

type scenario struct {
	version  int
	interval time.Duration
	event    string // cut or term
	prio1    int    // master priority
	prio2    int    // backup priority
}

func parse(name string) (scenario, bool) {
	switch name {
	case "v2-1s-cut":
		return scenario{2, time.Second, "cut", 150, 100}, true
	case "v3-100ms-cut":
		return scenario{3, 100 * time.Millisecond, "cut", 150, 100}, true
	case "v3-100ms-term":
		return scenario{3, 100 * time.Millisecond, "term", 150, 100}, true
	case "v3-50ms-cut":
		return scenario{3, 50 * time.Millisecond, "cut", 150, 100}, true
	case "v3-50ms-cut-prio250":
		// The skew shrinks with the backup's priority: 250 gives 1.2 ms
		// instead of 30.5 ms, the down interval 151 ms instead of 180 ms.
		return scenario{3, 50 * time.Millisecond, "cut", 254, 250}, true
	}
	return scenario{}, false
}

// pairLab is one implementation's lab: two directors and a client.
type pairLab struct {
	name   string
	d1, d2 *lab.Host
	r1, r2 *vrrptest.Director
	cl     *lab.Host
	p      *vrrptest.Prober
}

func spec(s scenario, prio int) vrrptest.Spec {
	return vrrptest.Spec{VRID: 51, Version: s.version, Priority: prio, AdvertInt: s.interval,
		VIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24")}}
}

func newPairLab(b *testing.B, impl string, s scenario) *pairLab {
	l := lab.New(b)
	pl := &pairLab{name: impl, d1: l.Host("d1"), d2: l.Host("d2"), cl: l.Host("client")}
	cmd := *vipdCmd
	if impl == "keepalived" {
		lab.RequireCommand(b, "keepalived")
		cmd = *kaCmd
	}
	vrrptest.Responder(b, pl.d1, port)
	vrrptest.Responder(b, pl.d2, port)
	pl.r1 = vrrptest.Start(b, pl.d1, impl, cmd, spec(s, s.prio1))
	pl.r2 = vrrptest.Start(b, pl.d2, impl, cmd, spec(s, s.prio2))
	pl.p = vrrptest.Probe(b, pl.cl, vip, port, 10*time.Millisecond)
	return pl
}

// settle waits until d1 serves the client and d2 has dropped the VIP.
func (pl *pairLab) settle(b *testing.B) {
	b.Helper()
	t0 := time.Now()
	pl.p.WaitReply(b, "d1", t0, 30*time.Second)
	lab.Eventually(b, 10*time.Second, func() bool { return !vrrptest.HasVIP(pl.d2, vip) }, "%s: d2 kept the VIP", pl.name)
}

// once runs one failover and returns the client-observed outage: the gap
// between the last reply the client got (from the master) and the first
// from the backup.
func (pl *pairLab) once(b *testing.B, s scenario, rnd *rand.Rand) (time.Duration, error) {
	pl.settle(b)
	// Random phase against the master's advert timer, as in real life.
	time.Sleep(s.interval + time.Duration(rnd.Int63n(int64(s.interval))))
	t0 := time.Now()
	switch s.event {
	case "cut":
		pl.d1.Cut()
	case "term":
		pl.r1.Term(b)
	}
	var err error
	deadline := time.Now().Add(vrrptest.DownInterval(s.version, s.prio2, s.interval) + 10*time.Second)
	for {
		if _, ok := pl.p.FirstFrom("d2", t0); ok {
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("%s: no failover to d2", pl.name)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, gap, _ := pl.p.Outage("d2", t0)
	// Back to the starting point: d1 returns and preempts.
	switch s.event {
	case "cut":
		pl.d1.Restore()
	case "term":
		pl.r1.Restart(b)
	}
	return gap, err
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)) + 0.5)
	if i >= len(s) {
		i = len(s) - 1
	}
	if i > 0 && p < 1 {
		i = int(p*float64(len(s)-1) + 0.5)
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func BenchmarkFailover(b *testing.B) {
	lab.RequireRoot(b)
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		if name == "v3-20ms-load" {
			b.Run(name, benchLoad)
			continue
		}
		s, ok := parse(name)
		if !ok {
			b.Fatalf("unknown scenario %q", name)
		}
		b.Run(name, func(b *testing.B) {
			want := strings.Split(*impls, ",")
			labs := map[string]*pairLab{}
			for _, impl := range want {
				labs[impl] = newPairLab(b, impl, s)
			}
			out := map[string][]time.Duration{}
			rnd := rand.New(rand.NewSource(1))
			// Interleaved: run i of every implementation, then run i+1.
			for i := 0; i < *runs; i++ {
				for _, impl := range want {
					gap, err := labs[impl].once(b, s, rnd)
					if err != nil {
						b.Fatal(err)
					}
					out[impl] = append(out[impl], gap)
				}
			}
			bound := vrrptest.DownInterval(s.version, s.prio2, s.interval)
			if s.event == "term" {
				bound = vrrptest.Skew(s.version, s.prio2, s.interval)
			}
			for _, impl := range want {
				d := out[impl]
				b.ReportMetric(ms(percentile(d, 0.5)), impl+"-p50-ms")
				b.ReportMetric(ms(percentile(d, 0.99)), impl+"-p99-ms")
				b.Logf("%-10s %s: outage p50 %v p99 %v min %v max %v (protocol bound from the last advert: %v) all: %v",
					impl, name, percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond),
					slices.Min(d).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond), bound.Round(time.Millisecond), roundAll(d))
			}
			if v, k := out["vipd"], out["keepalived"]; len(v) > 0 && len(k) > 0 {
				r50 := float64(percentile(v, 0.5)) / float64(percentile(k, 0.5))
				r99 := float64(percentile(v, 0.99)) / float64(percentile(k, 0.99))
				b.ReportMetric(r50, "ratio-p50")
				b.ReportMetric(r99, "ratio-p99")
				b.Logf("%s: vipd/keepalived outage ratio p50 %.2f p99 %.2f (below 1: vipd faster)", name, r50, r99)
			}
		})
	}
}

func roundAll(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond)
	}
	return out
}

// benchLoad runs a pair at advert_int 0.02 (VRRPv3) while busy loops
// saturate every core, and counts false failovers: the backup taking the
// master role although the master never failed (keepalived's "thread
// timer expired" complaint).
func benchLoad(b *testing.B) {
	s := scenario{3, 20 * time.Millisecond, "none", 150, 100}
	want := strings.Split(*impls, ",")
	labs := map[string]*pairLab{}
	for _, impl := range want {
		labs[impl] = newPairLab(b, impl, s)
		labs[impl].settle(b)
	}
	// Saturate: two busy loops per core, niced like ordinary batch work
	// is not (nice 0, same as the daemons).
	var hogs []*exec.Cmd
	for i := 0; i < 2*runtime.NumCPU(); i++ {
		c := exec.Command("sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		hogs = append(hogs, c)
	}
	defer func() {
		for _, c := range hogs {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}
	}()
	before := map[string]int{}
	for _, impl := range want {
		before[impl] = strings.Count(labs[impl].r2.Log(), "Entering MASTER STATE")
	}
	t0 := time.Now()
	time.Sleep(*loadFor)
	for _, impl := range want {
		pl := labs[impl]
		false2 := strings.Count(pl.r2.Log(), "Entering MASTER STATE") - before[impl]
		// Gaps the client saw while nothing failed.
		var worst time.Duration
		var last time.Time
		for _, r := range pl.p.Replies() {
			if r.At.Before(t0) {
				continue
			}
			if !last.IsZero() && r.At.Sub(last) > worst {
				worst = r.At.Sub(last)
			}
			last = r.At
		}
		b.ReportMetric(float64(false2), impl+"-false-failovers")
		if false2 > 0 && testing.Verbose() {
			for _, r := range []*vrrptest.Director{pl.r1, pl.r2} {
				for _, l := range strings.Split(r.Log(), "\n") {
					if strings.Contains(l, "timeout") || strings.Contains(l, "Entering") || strings.Contains(l, "priority") {
						b.Logf("%s %s: %s", impl, r.Host.Name, l)
					}
				}
			}
		}
		b.Logf("%-10s advert_int 0.02 under load for %v: %d false failovers, longest gap between probe replies %v",
			impl, *loadFor, false2, worst.Round(time.Millisecond))
	}
}
