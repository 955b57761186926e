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
// The load scenario counts false failovers at advert_int 0.02 and 0.01
// under busy loops, every implementation at once in one table; there
// "vipd" is the daemon (-failover.load-vipd), and a +rt suffix adds
// vrrp_rt_priority 1:
//
//	go test -v -run XXX -bench Failover -benchtime 1x -timeout 30m ./bench/failover \
//	    -args -failover.scenarios load -failover.load 10m
//
// Results and how to read them: docs/benchmarks-failover.md.
package failover

import (
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
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
	scenarios = flag.String("failover.scenarios", "v2-1s-cut,v3-100ms-cut,v3-100ms-term,v3-50ms-cut,v3-50ms-cut-prio250,load",
		"comma-separated scenarios")
	impls   = flag.String("failover.impls", "vipd,keepalived", "implementations to measure")
	loadFor = flag.Duration("failover.load", time.Minute, "duration of the load scenarios (the full run is 10m)")
	loadInt = flag.String("failover.load-intervals", "20ms,10ms", "advert intervals of the load scenario, all measured at once under the same load")
	loadImp = flag.String("failover.load-impls", "vipd,keepalived,vipd+rt,keepalived+rt",
		"implementations of the load scenarios: vipd (the daemon, -failover.load-vipd), vrrpnode (the vrrp.Node test program, -failover.vipd), keepalived; a +rt suffix adds vrrp_rt_priority 1 to global_defs; or NAME=TEMPLATE (a variant, e.g. vipd with other settings)")
	loadVipd = flag.String("failover.load-vipd", vrrptest.DaemonCommand, "command template of the vipd daemon in the load scenarios")
)

// Keep the main goroutine on the main thread (see internal/lab's Do).
func init() { runtime.LockOSThread() }

const port = 9999

var vip = netip.MustParseAddr("198.18.0.100")

type scenario struct {
	version  int
	interval time.Duration
	event    string   // cut or term
	prio1    int      // master priority
	prio2    int      // backup priority
	global   []string // global_defs lines
}

func parse(name string) (scenario, bool) {
	switch name {
	case "v2-1s-cut":
		return scenario{2, time.Second, "cut", 150, 100, nil}, true
	case "v3-100ms-cut":
		return scenario{3, 100 * time.Millisecond, "cut", 150, 100, nil}, true
	case "v3-100ms-term":
		return scenario{3, 100 * time.Millisecond, "term", 150, 100, nil}, true
	case "v3-50ms-cut":
		return scenario{3, 50 * time.Millisecond, "cut", 150, 100, nil}, true
	case "v3-50ms-cut-prio250":
		// The skew shrinks with the backup's priority: 250 gives 1.2 ms
		// instead of 30.5 ms, the down interval 151 ms instead of 180 ms.
		return scenario{3, 50 * time.Millisecond, "cut", 254, 250, nil}, true
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
	return vrrptest.Spec{VRID: 51, Version: s.version, Priority: prio, AdvertInt: s.interval, Global: s.global,
		VIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24")}}
}

func newPairLab(b *testing.B, impl string, s scenario) *pairLab {
	cmd := *vipdCmd
	if impl == "keepalived" {
		cmd = *kaCmd
	}
	return newPairLabCmd(b, impl, cmd, s)
}

func newPairLabCmd(b *testing.B, impl, cmd string, s scenario) *pairLab {
	if strings.HasPrefix(impl, "keepalived") {
		lab.RequireCommand(b, "keepalived")
	}
	l := lab.New(b)
	pl := &pairLab{name: impl, d1: l.Host("d1"), d2: l.Host("d2"), cl: l.Host("client")}
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
		if ivs, ok := loadIntervals(name); ok {
			b.Run(name, func(b *testing.B) { benchLoad(b, ivs) })
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

// loadIntervals returns the advert intervals of a load scenario: "load"
// is every interval of -failover.load-intervals at once, v3-20ms-load
// and v3-10ms-load one each.
func loadIntervals(name string) ([]time.Duration, bool) {
	switch name {
	case "v3-20ms-load":
		return []time.Duration{20 * time.Millisecond}, true
	case "v3-10ms-load":
		return []time.Duration{10 * time.Millisecond}, true
	case "load":
		var out []time.Duration
		for _, f := range strings.Split(*loadInt, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || d < 10*time.Millisecond || d%(10*time.Millisecond) != 0 {
				return nil, false // VRRPv3 counts in centiseconds
			}
			out = append(out, d)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// loadPair is one pair of the load scenario with its taps.
type loadPair struct {
	*pairLab
	impl     string
	interval time.Duration
	out, in  *tap // adverts leaving d1, adverts reaching d2
	before   int
}

// benchLoad runs one pair per implementation and advert interval (VRRPv3,
// priorities 150/100), all at once, while busy loops saturate every core,
// and counts false failovers: the backup taking the master role although
// the master never failed (keepalived's "thread timer expired"
// complaint). Every pair sees the same load for the same minutes. Taps
// on both directors' interfaces say where the time went (see tap).
func benchLoad(b *testing.B, intervals []time.Duration) {
	// The taps' reading threads are real-time, but a Go thread back from
	// a system call needs a P: spare Ps and no garbage collection in this
	// process during the window keep the bench's own runtime out of what
	// the taps measure.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * runtime.NumCPU()))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var pairs []*loadPair
	for _, iv := range intervals {
		for _, impl := range strings.Split(*loadImp, ",") {
			impl = strings.TrimSpace(impl)
			s := scenario{3, iv, "none", 150, 100, nil}
			// NAME+rt: the same with vrrp_rt_priority 1 in global_defs
			// (keepalived: its VRRP process real-time; vipd: every thread).
			base := impl
			if b, ok := strings.CutSuffix(impl, "+rt"); ok {
				base, s.global = b, []string{"vrrp_rt_priority 1"}
			}
			var cmd string
			switch base {
			case "vipd":
				cmd = *loadVipd
			case "vrrpnode":
				cmd = *vipdCmd
			case "keepalived":
				cmd = *kaCmd
			default:
				// A variant of vipd, measured beside the others: name=template.
				name, tmpl, ok := strings.Cut(impl, "=")
				if !ok || strings.HasPrefix(name, "keepalived") || s.global != nil {
					b.Fatalf("unknown implementation %q", impl)
				}
				impl, cmd = name, tmpl
				b.Logf("%s = %q", name, tmpl)
			}
			pl := newPairLabCmd(b, impl, cmd, s)
			pairs = append(pairs, &loadPair{pairLab: pl, impl: impl, interval: iv,
				out: startTap(b, pl.d1, true), in: startTap(b, pl.d2, false)})
		}
	}
	for _, p := range pairs {
		p.settle(b)
	}
	// Saturate: two busy loops per core, niced like ordinary batch work
	// is not (nice 0, same as the daemons).
	var hogs []*exec.Cmd
	stopHogs := func() {
		for _, c := range hogs {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}
		hogs = nil
	}
	defer stopHogs()
	for i := 0; i < 2*runtime.NumCPU(); i++ {
		c := exec.Command("sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		hogs = append(hogs, c)
	}
	for _, p := range pairs {
		p.before = strings.Count(p.r2.Log(), "Entering MASTER STATE")
	}
	load0 := loadavg()
	steal0, soft0 := cpuStat()
	// Canaries: what the machine does to a plain C program waking every
	// 10 ms at the daemons' priorities (keepalived: nice 0; vipd's loop:
	// SCHED_RR 1) and at a high real-time one.
	canaries := []*canary{
		startCanary("nice 0 (keepalived's)", "other", 0, *loadFor),
		startCanary("SCHED_RR 1 (vipd's loop)", "rr", 1, *loadFor),
		startCanary("SCHED_FIFO 90", "fifo", 90, *loadFor),
	}
	t0 := time.Now()
	time.Sleep(*loadFor)
	t1 := time.Now()
	load1 := loadavg()
	steal1, soft1 := cpuStat()
	var canaryNote strings.Builder
	for i, c := range canaries {
		name := []string{"nice 0 (keepalived's)", "SCHED_RR 1 (vipd's loop)", "SCHED_FIFO 90"}[i]
		fmt.Fprintf(&canaryNote, "\n  %-26s %s", name, c.wait())
	}
	stopHogs()

	b.Logf("load: %d busy loops (nice 0) on %d cores for %v; load average before/after %s / %s (other work on the machine included)",
		2*runtime.NumCPU(), runtime.NumCPU(), *loadFor, load0, load1)
	b.Logf("machine during the window: steal %v, softirq %v (both cores together)", steal1-steal0, soft1-soft0)
	b.Logf("cyclictest every 10 ms during the window:%s", canaryNote.String())
	b.Logf("vipd = %q", *loadVipd)
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-9s %-11s %6s  %-52s  %-52s  %s\n", "interval", "impl", "false", "adverts sent by d1 (gaps, kernel time)", "adverts reaching d2's veth (gaps)", "d1 veth to d2 veth (bridge)")
	// Late sends of each pair, to tell a stall of one process from one
	// of the machine (several unrelated processes late at once).
	long2 := make([][]span, len(pairs))
	for i, p := range pairs {
		sent, _ := p.out.since(t0)
		long2[i] = longGaps(before(sent, t1), 2*p.interval)
	}
	var sharedNote strings.Builder
	for i, p := range pairs {
		falseN := strings.Count(p.r2.Log(), "Entering MASTER STATE") - p.before
		down := vrrptest.DownInterval(3, 100, p.interval)
		sent, _ := p.out.since(t0)
		got, _ := p.in.since(t0)
		sent, got = before(sent, t1), before(got, t1)
		others := slices.Concat(long2[:i], long2[i+1:])
		late := longGaps(sent, 3*p.interval)
		fmt.Fprintf(&sharedNote, "\n%-9v %-11s %d send gaps over 3 intervals, %d of them overlapping a send gap over 2 intervals of another pair's (other processes)",
			p.interval, p.impl, len(late), shared(late, others...))
		fmt.Fprintf(&table, "%-9v %-11s %6d  %-52s  %-52s  %s\n", p.interval, p.impl, falseN,
			gaps(sent, p.interval, down), gaps(got, p.interval, down), durStats(delivery(sent, got)))
		b.ReportMetric(float64(falseN), fmt.Sprintf("%s-%v-false-failovers", p.impl, p.interval))
		if os.Getenv("FF_GC") != "" {
			for _, r := range []*vrrptest.Director{p.r1, p.r2} {
				b.Logf("TMP %s %v %s gc lines: %d", p.impl, p.interval, r.Host.Name, strings.Count(r.Log(), "\ngc "))
			}
		}
		if falseN > 0 && testing.Verbose() {
			for _, r := range []*vrrptest.Director{p.r1, p.r2} {
				n := 0
				for _, l := range strings.Split(r.Log(), "\n") {
					if n < 20 && (strings.Contains(l, "timeout") || strings.Contains(l, "Entering") || strings.Contains(l, "priority")) {
						b.Logf("%v %s %s: %s", p.interval, p.impl, r.Host.Name, l)
						n++
					}
				}
			}
		}
	}
	b.Logf("false failovers in %v under load, same run (down interval: 3 intervals + skew %v at 10 ms, %v at 20 ms; >1.5i etc. count gaps longer than 1.5, 2, 3 intervals and the down interval):%s",
		*loadFor, vrrptest.DownInterval(3, 100, 10*time.Millisecond).Round(10*time.Microsecond),
		vrrptest.DownInterval(3, 100, 20*time.Millisecond).Round(10*time.Microsecond), table.String())
	b.Logf("stalls shared between pairs:%s", sharedNote.String())
}

// before returns the prefix of sorted times before t1.
func before(ts []time.Time, t1 time.Time) []time.Time {
	i, _ := slices.BinarySearchFunc(ts, t1, func(a, b time.Time) int { return a.Compare(b) })
	return ts[:i]
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
