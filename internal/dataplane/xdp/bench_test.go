package xdp

import (
	"context"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
)

// BenchmarkProg measures the BPF program's own cost per packet with
// BPF_PROG_TEST_RUN (the kernel times Repeat runs), against xdp_pass (a
// program that only returns) in the same run: the director's CPU per
// forwarded packet, without the NIC and the stack. Prints the ratios.
//
//	go test -run XXX -bench Prog -benchtime 1x ./internal/dataplane/xdp
func BenchmarkProg(b *testing.B) {
	d := newTestDP(b, bpffsDir(b))
	defer d.Close()
	s := drService(vip4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	if err := d.Apply(context.Background(), []lvsService{s}); err != nil {
		b.Fatal(err)
	}
	spec, err := loadXdplb()
	if err != nil {
		b.Fatal(err)
	}
	var pass struct {
		XdpPass *ebpf.Program `ebpf:"xdp_pass"`
	}
	if err := spec.LoadAndAssign(&pass, nil); err != nil {
		b.Fatal(err)
	}
	defer pass.XdpPass.Close()

	const repeat = 200000
	perPacket := func(p *ebpf.Program, frame []byte) float64 {
		_, dur, err := p.Benchmark(frame, repeat, nil) // time per run
		if err != nil {
			b.Fatal(err)
		}
		return float64(dur.Nanoseconds())
	}
	open := tcp4("198.19.9.1:1000")
	run(b, d, open) // the SYN: the flow is in the table now
	open.ack = true // later packets of the connection hit it (a SYN never does)
	hit := open.bytes()
	miss := tcp4("198.19.9.2:1000")
	pass0 := perPacket(pass.XdpPass, hit)
	flow := perPacket(d.objs.XdpLb, hit)
	// New flows: drop the entry and time single runs (Maglev lookup and
	// flow insert), averaged over 2000.
	var newFlow float64
	for range 2000 {
		k := flowKeyOf(miss)
		_ = d.objs.Flows.Delete(&k)
		_, dur, err := d.objs.XdpLb.Benchmark(miss.bytes(), 1, nil)
		if err != nil {
			b.Fatal(err)
		}
		newFlow += float64(dur.Nanoseconds()) / 2000
	}
	other := pkt{src: miss.src, dst: vip4, proto: 112}
	passed := perPacket(d.objs.XdpLb, other.bytes())
	b.ReportMetric(flow, "ns/flow-hit")
	b.ReportMetric(newFlow, "ns/new-flow")
	b.ReportMetric(passed, "ns/passed")
	b.ReportMetric(pass0, "ns/xdp_pass")
	fmt.Printf("per packet: flow hit %.0f ns (%.1fx xdp_pass), new flow %.0f ns (%.1fx), passed (VRRP) %.0f ns (%.1fx), xdp_pass %.0f ns\n",
		flow, flow/pass0, newFlow, newFlow/pass0, passed, passed/pass0, pass0)
	for range b.N {
	}
}

// flowKeyOf is the flow table key of p (IPv4).
func flowKeyOf(p pkt) flowKey {
	k := flowKey{Src: p.src.Addr().As16(), Dst: p.dst.Addr().As16(), SPort: port16(p.src.Port()), DPort: port16(p.dst.Port()), Proto: p.proto}
	return k
}
