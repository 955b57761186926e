package lvs

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzSchedulers drives every scheduler with lists, list changes, flows
// and times decoded from the input, and checks what holds for all of
// them: no panic, a chosen destination is in the current list with a
// positive weight and (except lblc's cached choice, which the kernel does
// not check) no overload flag, and two schedulers fed the same calls make
// the same choices.
func FuzzSchedulers(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 9, 9, 9, 9, 9, 9})
	f.Add([]byte{7, 4, 0, 5, 0x81, 1, 2, 200, 17, 3, 0, 0, 0, 250, 251, 252})
	f.Add([]byte{12, 6, 1, 1, 1, 1, 0, 0, 0xff, 0xfe, 0x10, 0x20, 0x30, 0x40, 0x50})
	names := SchedulerNames()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput{data: data}
		sched := names[int(in.byte())%len(names)]
		flags := SchedFlags(in.byte()) & (FlagSched1 | FlagSched2)
		mk := func() Scheduler {
			if sched == "twos" {
				return NewTwos(func(n uint32) uint32 { return uint32(len(data)) % n })
			}
			s, err := NewScheduler(sched, flags)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s1, s2 := mk(), mk()

		// A pool of destinations; the list is a subset in some order.
		pool := make([]*Dest, 8)
		for i := range pool {
			pool[i] = &Dest{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}), 80)}
		}
		var dests []*Dest
		now := t0
		for ops := 0; ops < 200 && !in.done(); ops++ {
			switch op := in.byte(); op % 4 {
			case 0: // new list
				dests = dests[:0]
				n := int(in.byte()) % (len(pool) + 1)
				for i := range n {
					dests = append(dests, pool[(int(op)/4+i)%len(pool)])
				}
				s1.Update(dests)
				s2.Update(dests)
			case 1: // change one destination
				if len(dests) == 0 {
					continue
				}
				x := dests[int(in.byte())%len(dests)]
				b := in.byte()
				x.Weight = int(b % 6)
				x.ActiveConns = int(in.byte() % 8)
				x.InactiveConns = int(in.byte() % 8)
				x.Overloaded = b&0x80 != 0
				s1.Update(dests)
				s2.Update(dests)
			case 2: // time passes
				now = now.Add(time.Duration(in.byte()) * time.Duration(in.byte()) * time.Minute)
			case 3: // a connection
				c := netip.AddrFrom4([4]byte{198, 18, 0, in.byte()})
				if op&0x80 != 0 {
					c = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: in.byte()})
				}
				fl := Flow{
					Proto:   Protocol(in.byte() % 20),
					Client:  netip.AddrPortFrom(c, uint16(in.byte())<<8),
					Virtual: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, in.byte() % 4}), 80),
				}
				x1 := s1.Schedule(dests, fl, now)
				x2 := s2.Schedule(dests, fl, now)
				if x1 != x2 {
					t.Fatalf("%s: two schedulers chose %v and %v", sched, x1, x2)
				}
				if x1 == nil {
					continue
				}
				if !contains(dests, x1) {
					t.Fatalf("%s chose %v, not in the list", sched, x1.Addr)
				}
				if x1.Weight <= 0 || (x1.Overloaded && sched != "lblc") {
					t.Fatalf("%s chose %+v", sched, *x1)
				}
				if op&0x40 != 0 {
					x1.ActiveConns++
				}
			}
		}
	})
}

func contains(ds []*Dest, x *Dest) bool {
	for _, d := range ds {
		if d == x {
			return true
		}
	}
	return false
}

type fuzzInput struct {
	data []byte
	i    int
}

func (in *fuzzInput) done() bool { return in.i >= len(in.data) }

func (in *fuzzInput) byte() byte {
	if in.i >= len(in.data) {
		return 0
	}
	b := in.data[in.i]
	in.i++
	return b
}
