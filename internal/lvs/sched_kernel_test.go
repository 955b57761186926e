package lvs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sequences observed on the real kernel: Debian's 6.1.0-56-amd64 in the
// project VM, with testdata/kernelcheck (2026-11-22). Each scenario is
// replayed here the way the kernel saw it: ipvsadm adds destinations one
// at a time at the head of the list (the scheduler's hook runs after
// each), then edits; UDP datagrams from new sources then open
// connections, which count as inactive. The expected strings are the
// kernel's output, verbatim.
func TestKernelObserved(t *testing.T) {
	tests := []struct {
		name, sched string
		flags       SchedFlags
		ops         string // "+A:1" adds A with weight 1 at the head, "=B:0" edits B
		pkts        string // "seq N": N connections from 198.18.0.1 (new ports);
		// "clients": 198.18.0.1..8 port 40000; "ports": 198.18.0.1 ports
		// 40000..40005; "vips": 198.18.0.1 to 198.18.2.1..6
		want string
	}{
		{"rr", "rr", 0, "+A:1 +B:1 +C:1", "seq 6", "C B A C B A"},
		{"wrr incremental", "wrr", 0, "+A:1 +B:5", "seq 8", "B A B B B B B A"},
		{"wrr 4:2:2", "wrr", 0, "+C:2 +B:2 +A:4", "seq 8", "A B C A A B C A"},
		{"lc", "lc", 0, "+C:1 +B:3 +A:1", "seq 7", "A B C A B C A"},
		{"wlc", "wlc", 0, "+B:3 +A:1", "seq 9", "A B B B A B B B A"},
		{"sed", "sed", 0, "+B:3 +A:1", "seq 3", "B B B"},
		{"nq", "nq", 0, "+B:3 +A:1", "seq 3", "A A A"},
		{"fo", "fo", 0, "+C:3 +B:3 +A:1", "seq 3", "B B B"},
		{"lblc", "lblc", 0, "+B:1 +A:1", "seq 4", "A A A A"},
		{"lblcr", "lblcr", 0, "+B:1 +A:1", "seq 4", "A A A A"},
		{"sh", "sh", 0, "+C:1 +B:1 +A:1", "clients", "C A C B B A B A"},
		{"sh 2:1", "sh", 0, "+B:1 +A:2", "clients", "B A B A A A A A"},
		{"sh-port", "sh", FlagSHPort, "+C:1 +B:1 +A:1", "ports", "A C A C A B"},
		{"sh quiesced", "sh", 0, "+C:1 +B:1 +A:1 =B:0", "clients", "C A C - - A - A"},
		{"sh-fallback", "sh", FlagSHFallback, "+C:1 +B:1 +A:1 =B:0", "clients", "C A C C C A C A"},
		{"sh-fallback 2", "sh", FlagSHFallback, "+C:1 +B:1 +A:1 =B:0 =C:0", "clients", "A A A A A A A A"},
		{"mh", "mh", 0, "+C:1 +B:1 +A:1", "clients", "B C C C A C A C"},
		{"mh 1:2:3", "mh", 0, "+C:3 +B:2 +A:1", "clients", "B C C C C C C C"},
		{"mh A C", "mh", 0, "+C:1 +A:1", "clients", "A C C C A C C C"},
		{"mh reversed", "mh", 0, "+A:1 +B:1 +C:1", "clients", "B C C C A C C C"},
		{"mh-port", "mh", FlagMHPort, "+C:1 +B:1 +A:1", "ports", "B B A C C A"},
		{"mh quiesced", "mh", 0, "+C:1 +B:1 +A:1 =B:0", "clients", "- C C C A C A C"},
		{"mh-fallback", "mh", FlagMHFallback, "+C:1 +B:1 +A:1 =B:0", "clients", "A C C C A C A C"},
		{"mh 1:100", "mh", 0, "+B:100 +A:1", "clients", "B B B B B B B B"},
		{"dh", "dh", 0, "+C:1 +B:1 +A:1", "vips", "C B C B C A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewScheduler(tt.sched, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			var dests []*Dest
			for _, op := range strings.Fields(tt.ops) {
				n, w, _ := strings.Cut(op[1:], ":")
				weight, _ := strconv.Atoi(w)
				if op[0] == '+' {
					dests = append([]*Dest{d(n, weight)}, dests...)
				} else {
					for _, x := range dests {
						if name(x) == n {
							x.Weight = weight
						}
					}
				}
				s.Update(dests)
			}
			var got []string
			for i, f := range kernelFlows(tt.pkts) {
				x := s.Schedule(dests, f, t0.Add(time.Duration(i)*time.Millisecond))
				if x != nil {
					x.InactiveConns++ // UDP
				}
				got = append(got, name(x))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, the kernel chose %q", g, tt.want)
			}
		})
	}
}

func kernelFlows(spec string) []Flow {
	udp := func(client string, port int, vip string) Flow {
		return Flow{Proto: UDP,
			Client:  netip.AddrPortFrom(netip.MustParseAddr(client), uint16(port)),
			Virtual: netip.AddrPortFrom(netip.MustParseAddr(vip), 80)}
	}
	var out []Flow
	switch f := strings.Fields(spec); f[0] {
	case "seq":
		n, _ := strconv.Atoi(f[1])
		for i := range n {
			out = append(out, udp("198.18.0.1", 50000+i, "198.18.3.1"))
		}
	case "clients":
		for i := 1; i <= 8; i++ {
			out = append(out, udp(fmt.Sprintf("198.18.0.%d", i), 40000, "198.18.3.1"))
		}
	case "ports":
		for p := 40000; p <= 40005; p++ {
			out = append(out, udp("198.18.0.1", p, "198.18.3.1"))
		}
	case "vips":
		for i := 1; i <= 6; i++ {
			out = append(out, udp("198.18.0.1", 40000, fmt.Sprintf("198.18.2.%d", i)))
		}
	}
	return out
}
