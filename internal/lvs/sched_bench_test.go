package lvs

import (
	"net/netip"
	"testing"
)

// BenchmarkSchedule measures one Schedule call of every scheduler on a
// service of 10 destinations with mixed weights and connection counts,
// for flows from 256 clients to 16 virtual addresses. Each result also
// reports its cost relative to a Go map lookup keyed by the client
// address and port (the per-packet connection-table lookup every data
// plane does anyway), measured in the same run.
func BenchmarkSchedule(b *testing.B) {
	dests := benchDests(10)
	flows := benchFlows()
	ref := benchRefLookup(b, flows)
	for _, sched := range SchedulerNames() {
		b.Run(sched, func(b *testing.B) {
			s, _ := NewScheduler(sched, FlagSHPort)
			s.Update(dests)
			i := 0
			for b.Loop() {
				if s.Schedule(dests, flows[i&(len(flows)-1)], t0) == nil {
					b.Fatal("no destination")
				}
				i++
			}
			if ref > 0 {
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(ns/ref, "x-map-lookup")
			}
		})
	}
}

// BenchmarkUpdate measures rebuilding the scheduler state after a change
// (the tables of sh, dh and mh; nothing for most others).
func BenchmarkUpdate(b *testing.B) {
	dests := benchDests(10)
	for _, sched := range []string{"wrr", "sh", "dh", "mh"} {
		b.Run(sched, func(b *testing.B) {
			s, _ := NewScheduler(sched, 0)
			for b.Loop() {
				s.Update(dests)
			}
		})
	}
}

func benchDests(n int) []*Dest {
	var out []*Dest
	for i := range n {
		out = append(out, &Dest{
			Addr:          netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}), 80),
			Weight:        1 + i%4,
			ActiveConns:   (i * 7) % 13,
			InactiveConns: (i * 5) % 11,
		})
	}
	return out
}

func benchFlows() []Flow {
	var out []Flow
	for i := range 4096 {
		out = append(out, Flow{
			Proto:   TCP,
			Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), uint16(30000+i)),
			Virtual: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i % 16)}), 80),
		})
	}
	return out
}

// benchRefLookup is the reference: a map lookup by netip.AddrPort in a map
// of 4096 entries. It returns ns/op.
func benchRefLookup(b *testing.B, flows []Flow) float64 {
	var ns float64
	b.Run("ref-map-lookup", func(b *testing.B) {
		m := make(map[netip.AddrPort]int, len(flows))
		for i, f := range flows {
			m[f.Client] = i
		}
		sum, i := 0, 0
		for b.Loop() {
			sum += m[flows[i&(len(flows)-1)].Client]
			i++
		}
		if sum < 0 {
			b.Log(sum)
		}
		ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	return ns
}
