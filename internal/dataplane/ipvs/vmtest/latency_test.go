package vmtest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lvs"
)

// testApplyLatency measures what a health-check verdict costs in the
// kernel: an Apply that flips one destination's weight between 0 and 1
// (dump, one SET_DEST, read back), against `ipvsadm -e` making the same
// change on another service in the same run (process start included, as
// a notify script would pay it). It asserts only that every change reads
// back; the numbers are printed (the VM is emulated, so they are upper
// bounds for real hardware).
func testApplyLatency(t *testing.T, n *natLab) {
	d := newDataplane(t, n.dir, ipvs.Options{})
	svc := lvs.Service{Key: vipKey(83), Scheduler: "wrr", Destinations: []lvs.Destination{natDest(0, 8081, 1), natDest(1, 8081, 1)}}
	apply(t, d, svc)
	refVS := "198.18.1.100:84"
	n.dir.MustRun("ipvsadm", "-A", "-t", refVS, "-s", "wrr")
	n.dir.MustRun("ipvsadm", "-a", "-t", refVS, "-r", "198.18.2.21:8081", "-m", "-w", "1")
	defer n.dir.MustRun("ipvsadm", "-D", "-t", refVS)

	const rounds = 21
	var ours, ref []time.Duration
	for i := 0; i < rounds; i++ {
		w := i % 2
		svc.Destinations[0].Weight = w
		w0 := d.Writes()
		start := time.Now()
		apply(t, d, svc)
		ours = append(ours, time.Since(start))
		if d.Writes()-w0 != 1 {
			t.Errorf("a weight change took %d writes, want 1", d.Writes()-w0)
		}
		if got := find(t, d, svc.Key); destWeight(got, natDest(0, 8081, 0).Addr.String()) != w {
			t.Fatalf("weight %d did not reach the kernel: %+v", w, got.Dests)
		}
		start = time.Now()
		n.dir.MustRun("ipvsadm", "-e", "-t", refVS, "-r", "198.18.2.21:8081", "-m", "-w", strconv.Itoa(w))
		ref = append(ref, time.Since(start))
	}
	mo, mr := median(ours), median(ref)
	t.Logf("weight change reaching the kernel: vipd Apply median %v (max %v); `ip netns exec ipvsadm -e` median %v; ratio %.2f",
		mo.Round(time.Microsecond), slices.Max(ours).Round(time.Microsecond), mr.Round(time.Microsecond), float64(mo)/float64(mr))
}

func destWeight(s lvs.ServiceStatus, addr string) int {
	for _, d := range s.Dests {
		if d.Addr.String() == addr {
			return d.Weight
		}
	}
	return -1
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
