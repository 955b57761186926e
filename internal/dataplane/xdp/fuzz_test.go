package xdp

import (
	"bytes"
	"context"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzProg runs arbitrary frames through the BPF program (the verifier
// already rules out crashes): the verdict is XDP_PASS with the frame
// untouched, or XDP_TX with only the MACs rewritten (DR services), or
// XDP_DROP for nothing but the TUN cases, which this service has not.
func FuzzProg(f *testing.F) {
	for _, p := range []pkt{
		tcp4("198.19.0.1:1000"),
		{src: netip.MustParseAddrPort("198.19.0.1:1"), dst: vip4, proto: unix.IPPROTO_TCP, ihl: 15},
		{src: netip.MustParseAddrPort("198.19.0.1:1"), dst: vip4, proto: unix.IPPROTO_TCP, frag: true},
		{src: netip.MustParseAddrPort("198.19.0.1:1"), dst: vip4, proto: unix.IPPROTO_UDP, cut: 3},
		{src: netip.MustParseAddrPort("[2001:db8:1::7]:1234"), dst: vip6, proto: unix.IPPROTO_UDP},
		{src: netip.MustParseAddrPort("198.19.0.1:1"), dst: vip4, proto: 112},
	} {
		f.Add(p.bytes())
	}
	d := newTestDP(f, bpffsDir(f))
	f.Cleanup(func() { d.Close() })
	s4, s6 := drService(vip4, 1, 1), drService(vip6, 1)
	if err := d.Apply(context.Background(), []lvsService{s4, s6}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 1500 {
			return // the kernel's test run wants an Ethernet header; MTU-sized frames
		}
		ret, _, out := runOut(t, d, in)
		switch ret {
		case xdpPass:
			if !bytes.Equal(out, in) {
				t.Fatalf("XDP_PASS changed the frame:\n% x\n% x", in, out)
			}
		case xdpTX:
			if !bytes.Equal(out[12:], in[12:]) || out[0] != 0x02 || out[1] != 0x55 {
				t.Fatalf("XDP_TX changed more than the MACs or sent to no real server:\n% x\n% x", in, out)
			}
		default:
			t.Fatalf("verdict %d for\n% x", ret, in)
		}
	})
}
