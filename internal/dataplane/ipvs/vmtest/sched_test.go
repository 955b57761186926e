package vmtest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// testSchedulers runs the same connection pattern through the kernel and
// through vipd's userspace scheduler (internal/lvs) and requires the same
// choice at every step. Before each connection the userspace scheduler is
// given the kernel's view of the destinations (list order, weights,
// active and inactive connection counts, read over netlink), so the
// comparison tests the algorithms, not a model of connection accounting.
//
// The pattern holds connections open (so lc, wlc, sed, nq and ovf see
// load), closes some, changes weights mid-way (one to 0: quiescing and
// the sh/mh fallback), and spreads clients over 17 source addresses and
// distinct source ports (sh, mh and their -port variants).
func testSchedulers(t *testing.T, n *natLab) {
	d := newDataplane(t, n.dir, ipvs.Options{})
	variants := []struct {
		name  string
		sched string
		flags lvs.SchedFlags
	}{
		{"rr", "rr", 0},
		{"wrr", "wrr", 0},
		{"lc", "lc", 0},
		{"wlc", "wlc", 0},
		{"sed", "sed", 0},
		{"nq", "nq", 0},
		{"fo", "fo", 0},
		{"ovf", "ovf", 0},
		{"dh", "dh", 0},
		{"sh", "sh", 0},
		{"sh-port", "sh", lvs.FlagSHPort},
		{"sh-fallback", "sh", lvs.FlagSHFallback},
		{"sh-port-fallback", "sh", lvs.FlagSHPort | lvs.FlagSHFallback},
		{"mh", "mh", 0},
		{"mh-port", "mh", lvs.FlagMHPort},
		{"mh-fallback", "mh", lvs.FlagMHFallback},
		{"lblc", "lblc", 0},
		{"lblcr", "lblcr", 0},
		{"twos", "twos", 0},
	}
	for vi, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if v.sched == "twos" {
				// twos picks at random (prandom): no sequence to compare.
				// Its presence is checked: kernels before 6.2 lack it
				// (ip_vs_twos.c came with Linux 6.2), which is the one
				// skip allowed here; on 6.2 and later it must work.
				lab.SkipKernelOlderThan(t, 6, 2, "the twos IPVS scheduler (ip_vs_twos)")
				err := d.Apply(context.Background(), []lvs.Service{{Key: vipKey(8999), Scheduler: "twos", Destinations: []lvs.Destination{natDest(0, 8081, 1)}}})
				if err != nil {
					t.Fatalf("kernel 6.2 or later without the twos scheduler: %v", err)
				}
				return
			}
			runSequence(t, n, d, uint16(9000+vi), vi, v.sched, v.flags)
		})
	}
	apply(t, d) // remove the last variant's service
}

type seqStep struct {
	open  int   // connections to open
	close []int // indexes (in opening order) of connections to close first
	// weights to set before this step (nil: unchanged), by real server
	weights []int
}

func runSequence(t *testing.T, n *natLab, d *ipvs.Dataplane, port uint16, vi int, sched string, flags lvs.SchedFlags) {
	key := vipKey(port)
	weights := []int{3, 1, 2, 1}
	mkService := func() lvs.Service {
		s := lvs.Service{Key: key, Scheduler: sched, Flags: flags}
		for i, w := range weights {
			s.Destinations = append(s.Destinations, natDest(i, 8081, w))
		}
		return s
	}
	apply(t, d, mkService())

	us, err := lvs.NewScheduler(sched, flags)
	if err != nil {
		t.Fatalf("userspace scheduler: %v", err)
	}
	// The userspace destinations, in the kernel's list order, kept as
	// the same pointers for the whole sequence (schedulers may remember
	// them, as the kernel's remember list nodes). Apply adds destinations
	// one by one in configuration order, each at the head of the list,
	// and the kernel calls the scheduler's add_dest hook after each: so
	// does the test (it matters: wrr's starting weight depends on it).
	st := find(t, d, key)
	var dests []*lvs.Dest
	byAddr := map[netip.AddrPort]*lvs.Dest{}
	for i, w := range weights {
		ud := &lvs.Dest{Addr: netip.AddrPortFrom(rsAddr(i), 8081), Weight: w}
		dests = append([]*lvs.Dest{ud}, dests...)
		byAddr[ud.Addr] = ud
		us.Update(dests)
	}
	var order []string
	for i, ds := range st.Dests {
		order = append(order, rsName(ds.Addr))
		if i >= len(dests) || dests[i].Addr != ds.Addr {
			t.Fatalf("kernel lists destinations as %v, not most recently added first", order)
		}
	}
	for i, ud := range dests {
		ud.Index = i
	}
	t.Logf("kernel destination order: %v", order)

	refresh := func() lvs.ServiceStatus {
		st := find(t, d, key)
		for _, ds := range st.Dests {
			if ud := byAddr[ds.Addr]; ud != nil {
				ud.Weight, ud.ActiveConns, ud.InactiveConns, ud.PersistConns = ds.Weight, ds.ActiveConns, ds.InactiveConns, ds.PersistConns
			}
		}
		return st
	}

	steps := []seqStep{
		{open: 8},
		{close: []int{1, 4}, open: 6},
		{weights: []int{0, 1, 2, 1}, close: []int{0, 7}, open: 6},
		{weights: []int{0, 1, 4, 1}, close: []int{2, 3, 9}, open: 6},
	}
	var conns []*holdConn
	var mismatches []string
	var kernelSeq, userSeq []string
	opened, closed := 0, 0
	for si, s := range steps {
		if s.weights != nil {
			weights = s.weights
			apply(t, d, mkService())
			for i, w := range weights {
				byAddr[netip.AddrPortFrom(rsAddr(i), 8081)].Weight = w
			}
			us.Update(dests)
		}
		for _, ci := range s.close {
			if ci < len(conns) && conns[ci] != nil { // (nil: refused)
				conns[ci].Close()
				conns[ci] = nil
				closed++
			}
		}
		if len(s.close) > 0 {
			// Wait for the kernel to see the FINs: the counts the next
			// choices depend on must be final.
			wantActive := opened - closed
			lab.Eventually(t, 10*time.Second, func() bool {
				a, in := 0, 0
				for _, ds := range refresh().Dests {
					a += ds.ActiveConns
					in += ds.InactiveConns
				}
				return a == wantActive && in == closed
			}, "kernel connection counts never settled at %d active, %d inactive", wantActive, closed)
		}
		for k := 0; k < s.open; k++ {
			i := len(conns)
			src := n.srcs[(i*7+vi)%len(n.srcs)]
			sport := uint16(20000 + vi*100 + i)
			flow := lvs.Flow{Proto: lvs.TCP, Client: netip.AddrPortFrom(src, sport), Virtual: key.Addr}
			snap := refresh()
			want := us.Schedule(dests, flow, time.Now())
			c, err := dialHold(n.client, src, sport, key.Addr.String())
			got := "none"
			if err == nil {
				got = c.server
			}
			wantName := "none"
			if want != nil {
				wantName = rsName(want.Addr)
			}
			kernelSeq = append(kernelSeq, got)
			userSeq = append(userSeq, wantName)
			if got != wantName {
				mismatches = append(mismatches, fmt.Sprintf("step %d conn %d from %s: kernel chose %s, userspace %s; destinations before: %s",
					si, i, flow.Client, got, wantName, countsString(snap)))
			}
			if err != nil {
				// No destination available: the kernel lets the SYN
				// through to the director itself, which refuses it.
				if !strings.Contains(err.Error(), "refused") {
					t.Fatalf("connection %d: %v", i, err)
				}
				conns = append(conns, nil)
				continue
			}
			conns = append(conns, c)
			opened++
		}
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	t.Logf("kernel:    %s", strings.Join(kernelSeq, " "))
	if len(mismatches) > 0 {
		t.Logf("userspace: %s", strings.Join(userSeq, " "))
		if len(mismatches) > 5 {
			mismatches = append(mismatches[:5], fmt.Sprintf("... %d more", len(mismatches)-5))
		}
		t.Errorf("%s (flags %#x): userspace scheduler differs from the kernel's:\n%s", sched, uint32(flags), strings.Join(mismatches, "\n"))
	}
}

func rsName(a netip.AddrPort) string {
	b := a.Addr().As4()
	return fmt.Sprintf("rs%d", int(b[3])-20)
}

func countsString(st lvs.ServiceStatus) string {
	var parts []string
	for _, ds := range st.Dests {
		parts = append(parts, fmt.Sprintf("%s w%d a%d i%d", rsName(ds.Addr), ds.Weight, ds.ActiveConns, ds.InactiveConns))
	}
	return strings.Join(parts, ", ")
}
