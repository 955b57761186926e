package bfd

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipd/vipd/internal/lab"
)

// BenchmarkDetection: how fast a dead peer is detected at 10 ms x 3, by
// two vipd BFD servers (the driver the daemon runs) and, as the
// reference in the same run and lab, by two keepalived 2.2.7 processes.
// Each iteration is one trial per pair: once the session is Up, the
// peer's port leaves the bridge (its link stays up, so only BFD can
// tell) and the time to Down is taken.
//
// "dead" is keepalived's own measure, time since the last packet
// received when the session expired (keepalived logs it as "Expired
// after N ms (U usec overdue)": dead = 30 ms + overdue); "cut" (vipd
// only) is from just before the netlink call that removes the port to
// the Down event (an upper bound: the port leaves during the call). Run:
//
//	go test -run XXX -bench Detection -benchtime 30x ./internal/bfd
func BenchmarkDetection(b *testing.B) {
	lab.RequireCommand(b, "keepalived")
	l := lab.New(b)
	va, vb := l.Host("va"), l.Host("vb")
	ka, kb := l.Host("ka"), l.Host("kb")

	na := startNode(b, va, session("to_vb", vb.Addr, 10*time.Millisecond, 3))
	downs := func() []Event {
		na.mu.Lock()
		defer na.mu.Unlock()
		var out []Event
		for _, e := range na.events {
			if e.To == Down {
				out = append(out, e)
			}
		}
		return out
	}
	startNode(b, vb, session("to_va", va.Addr, 10*time.Millisecond, 3))
	kconf := func(peer netip.Addr) string {
		return fmt.Sprintf("bfd_instance to_peer {\n    neighbor_ip %s\n    min_rx 10\n    min_tx 10\n    multiplier 3\n}\n", peer)
	}
	kpa := keepalivedBFD(b, ka, kconf(kb.Addr))
	keepalivedBFD(b, kb, kconf(ka.Addr))

	br, err := netns.GetFromName(l.Bridge)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	nh, err := netlink.NewHandleAt(br)
	if err != nil {
		b.Fatal(err)
	}
	defer nh.Close()
	bridge, err := nh.LinkByName("br0")
	if err != nil {
		b.Fatal(err)
	}
	port := func(h *lab.Host) netlink.Link {
		p, err := nh.LinkByName(h.Port)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	// cut returns the time before the netlink call: the port may leave
	// the bridge at any point of the call, so "cut" is an upper bound.
	cut := func(h *lab.Host) time.Time {
		p := port(h)
		t0 := time.Now()
		if err := nh.LinkSetNoMaster(p); err != nil {
			b.Fatal(err)
		}
		return t0
	}
	restore := func(h *lab.Host) {
		if err := nh.LinkSetMaster(port(h), bridge); err != nil {
			b.Fatal(err)
		}
	}
	expired := regexp.MustCompile(`\(to_peer\) Expired after \d+ ms \((-?\d+) usec overdue\)`)
	// keepalived is Up when its last state line says so.
	// and the detection time it last reported is 30 ms (the poll
	// sequence that moves it from idle_tx has completed), as vipd's
	// DetectUS is required to be.
	kUp := func() bool {
		o := kpa.Output()
		up := strings.LastIndex(o, "(to_peer) Entering Up state")
		return up > strings.LastIndex(o, "(to_peer) Entering Down state") &&
			strings.LastIndex(o, "Detection time is 30000 us") > up
	}

	var vCut, vDead, kDead []time.Duration
	for b.Loop() {
		// vipd: Up (and settled at 10 ms), cut, wait for Down.
		var n int
		lab.Eventually(b, 30*time.Second, func() bool {
			if s := na.status(b, "to_vb"); s.State != "Up" || s.DetectUS != 30000 {
				return false
			}
			// Up at 10 ms x 3, and no fall in the next 200 ms: steady.
			n = len(downs())
			time.Sleep(200 * time.Millisecond)
			return len(downs()) == n && na.status(b, "to_vb").State == "Up"
		}, "vipd not steadily Up at 10 ms x 3")
		t0 := cut(vb)
		lab.Eventually(b, 10*time.Second, func() bool { return len(downs()) > n }, "vipd did not detect the cut")
		e := downs()[n]
		vCut = append(vCut, e.At.Sub(t0))
		vDead = append(vDead, e.DeadTime)
		restore(vb)

		// keepalived: the same on its pair.
		var from int
		lab.Eventually(b, 30*time.Second, func() bool {
			if !kUp() {
				return false
			}
			// Up, and still Up with no fall 200 ms later: steady.
			from = len(kpa.Output())
			time.Sleep(200 * time.Millisecond)
			return kUp() && !strings.Contains(kpa.Output()[from:], "Entering Down state")
		}, "keepalived not Up:\n%s", kpa.Output())
		from = len(kpa.Output())
		cut(kb)
		var m []string
		lab.Eventually(b, 10*time.Second, func() bool { m = expired.FindStringSubmatch(kpa.Output()[from:]); return m != nil }, "keepalived did not detect the cut:\n%s", kpa.Output())
		over, _ := strconv.Atoi(m[1])
		kDead = append(kDead, 30*time.Millisecond+time.Duration(over)*time.Microsecond)
		restore(kb)
	}
	b.StopTimer()
	q := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	row := func(name string, d []time.Duration) {
		within := 0
		for _, x := range d {
			if x <= 50*time.Millisecond {
				within++
			}
		}
		fmt.Printf("%-32s n=%-3d min %-8v p50 %-8v p90 %-8v max %-8v within 50 ms: %d/%d\n", name, len(d),
			slices.Min(d).Round(100*time.Microsecond), q(d, 0.5).Round(100*time.Microsecond), q(d, 0.9).Round(100*time.Microsecond),
			slices.Max(d).Round(100*time.Microsecond), within, len(d))
	}
	fmt.Println("BFD detection at 10 ms x 3 (detection time 30 ms):")
	row("vipd, cut to Down", vCut)
	row("vipd, last packet to Down", vDead)
	row("keepalived, last packet to Down", kDead)
	fmt.Printf("ratio vipd/keepalived (p50, last packet to Down): %.2f\n", float64(q(vDead, 0.5))/float64(q(kDead, 0.5)))
	b.ReportMetric(float64(q(vCut, 0.5).Microseconds())/1000, "vipd-cut-p50-ms")
	b.ReportMetric(float64(q(vDead, 0.5).Microseconds())/1000, "vipd-dead-p50-ms")
	b.ReportMetric(float64(q(kDead, 0.5).Microseconds())/1000, "keepalived-dead-p50-ms")
}
