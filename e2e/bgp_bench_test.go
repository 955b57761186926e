package e2e

import (
	"flag"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

var (
	bgpRuns       = flag.Int("bgp.runs", 20, "events per scenario in BenchmarkBGPFailover")
	bgpRouterImpl = flag.String("bgp.router", "bird", "router of BenchmarkBGPFailover: bird or frr")
)

// probe opens a short connection to the VIP from the client every 10 ms
// (1 s connect timeout, GET /) and records each attempt's start and result.
type probe struct {
	mu       sync.Mutex
	attempts []attempt
	stop     chan struct{}
	wg       sync.WaitGroup
}

type attempt struct {
	start time.Time
	ok    bool
}

func startProbe(client *lab.Host) *probe {
	p := &probe{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				start := time.Now()
				_, err := getPath(client, net.JoinHostPort(bgpVIP, "80"), "/", time.Second)
				p.mu.Lock()
				p.attempts = append(p.attempts, attempt{start, err == nil})
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

// end stops the probe and returns the attempts that failed and the start
// of the last failed one after since (zero when none failed).
func (p *probe) end(since time.Time) (total, failed int, lastFail time.Duration) {
	close(p.stop)
	p.wg.Wait()
	for _, a := range p.attempts {
		total++
		if !a.ok {
			failed++
			if d := a.start.Sub(since); d > lastFail {
				lastFail = d
			}
		}
	}
	return total, failed, lastFail
}

type series []time.Duration

func (s series) pct(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(p*float64(len(c))+0.999999) - 1
	return c[max(0, min(i, len(c)-1))]
}

func (s series) String() string {
	return fmt.Sprintf("p50 %v  p99 %v", s.pct(0.5).Round(time.Millisecond), s.pct(0.99).Round(time.Millisecond))
}

// BenchmarkBGPFailover measures, in the topology of TestBGPActiveActive
// (BIRD 2, three vipd directors, BFD 100 ms × 3), what a client behind the
// router sees when one director goes away, -bgp.runs times per scenario:
//
//   - cut: d3's cable is cut (BFD notices): time until the router has 2
//     next hops, start of the last failing connection, connections lost;
//     then the cable comes back: time until 3 next hops, connections lost.
//   - term (the reference, same run): d3's vipd gets SIGTERM (drain:
//     GRACEFUL_SHUTDOWN, 1 s, withdrawal): same figures; vipd restarts.
//
// The client opens a connection every 10 ms (1 s connect timeout).
//
//	go test -run XXX -bench BGPFailover -benchtime 1x ./e2e -args -bgp.runs 20
func BenchmarkBGPFailover(bm *testing.B) {
	for range bm.N {
		benchBGP(bm)
	}
}

func benchBGP(bm *testing.B) {
	b := newBGPLab(bm, *bgpRouterImpl)
	d3 := b.dh[2]
	type result struct {
		gone, lastFail, back series
		failed, backFailed   []int
		total                int
	}
	var cut, term result
	waitBFD := func() {
		lab.Eventually(bm, 30*time.Second, func() bool {
			st := b.ds[2].status().BGP
			return st != nil && len(st.Peers) == 1 && st.Peers[0].BFD == "UP" && st.Peers[0].State == "ESTABLISHED"
		}, "d3 session and BFD not up")
	}
	for i := 0; i < *bgpRuns; i++ {
		for _, sc := range []string{"cut", "term"} {
			res := &cut
			if sc == "term" {
				res = &term
			}
			waitBFD()
			time.Sleep(300 * time.Millisecond) // let the probe's connections settle before the event
			p := startProbe(b.client)
			time.Sleep(200 * time.Millisecond)
			t0 := time.Now()
			if sc == "cut" {
				d3.Cut()
			} else if err := b.ds[2].proc.Signal(15); err != nil {
				bm.Fatal(err)
			}
			res.gone = append(res.gone, waitNexthops(bm, b.r, 2, t0, 30*time.Second, sc))
			time.Sleep(1500 * time.Millisecond) // every connection started before the route went has ended
			total, failed, last := p.end(t0)
			res.total += total
			res.failed = append(res.failed, failed)
			res.lastFail = append(res.lastFail, last)

			p = startProbe(b.client)
			t1 := time.Now()
			if sc == "cut" {
				d3.Restore()
			} else {
				select {
				case <-b.ds[2].proc.Done():
				case <-time.After(15 * time.Second):
					bm.Fatal("d3 did not stop")
				}
				b.ds[2] = startVipd(bm, d3, bgpDirectorConf(b.addrs[2]), "--dataplane", "proxy")
			}
			res.back = append(res.back, waitNexthops(bm, b.r, 3, t1, 60*time.Second, sc+" back"))
			time.Sleep(1500 * time.Millisecond)
			_, bf, _ := p.end(t1)
			res.backFailed = append(res.backFailed, bf)
			bm.Logf("run %2d %-4s gone %v, last failing start %v, lost %d; back %v, lost %d", i+1, sc,
				res.gone[len(res.gone)-1].Round(time.Millisecond), last.Round(time.Millisecond), failed,
				res.back[len(res.back)-1].Round(time.Millisecond), bf)
		}
	}
	sum := func(x []int) (s, m int) {
		for _, v := range x {
			s += v
			m = max(m, v)
		}
		return
	}
	for _, r := range []struct {
		name string
		res  *result
	}{{"cut (BFD)", &cut}, {"SIGTERM (drain, reference)", &term}} {
		f, fm := sum(r.res.failed)
		bf, bfm := sum(r.res.backFailed)
		bm.Logf("%-27s route gone: %s | last failing connection started: %s | lost per event: mean %.1f max %d (of %d) | back: %s, lost mean %.1f max %d",
			r.name, r.res.gone, r.res.lastFail, float64(f)/float64(len(r.res.failed)), fm, r.res.total, r.res.back, float64(bf)/float64(len(r.res.backFailed)), bfm)
	}
	bm.Logf("ratio cut/SIGTERM, route gone p50: %.1fx", float64(cut.gone.pct(0.5))/float64(max(1, term.gone.pct(0.5))))
	bm.ReportMetric(float64(cut.gone.pct(0.5).Milliseconds()), "cut-route-gone-p50-ms")
	bm.ReportMetric(float64(cut.gone.pct(0.99).Milliseconds()), "cut-route-gone-p99-ms")
	bm.ReportMetric(float64(term.gone.pct(0.5).Milliseconds()), "term-route-gone-p50-ms")
}
