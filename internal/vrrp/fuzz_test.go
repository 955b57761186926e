package vrrp

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzDecode feeds arbitrary messages to the decoder: it must never panic,
// and whatever it accepts must encode back to the same bytes (the reserved
// bits of VRRPv3's interval field aside, which are ignored on receipt).
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"vrrp_v2_adv.txt", "vrrp_v2_auth_pass.txt", "vrrp_v2_three_vips.txt",
		"vrrp_v3_adv.txt", "vrrp_v3_two_vips_prio200.txt", "vrrp_v3_ipv6.txt"} {
		src, _, msg := splitFrame(&testing.T{}, frame(&testing.T{}, name))
		f.Add(msg, src.Is6())
	}
	for _, name := range []string{"v3_ipv4.txt", "v2_ipv4.txt", "v3_ipv6.txt"} {
		src, _, msg := splitFrame(&testing.T{}, frame(&testing.T{}, "hmac/"+name))
		f.Add(msg, src.Is6())
	}
	f.Fuzz(func(t *testing.T, msg []byte, v6 bool) {
		src, dst := netip.MustParseAddr("198.18.0.11"), MulticastGroup4
		if v6 {
			src, dst = netip.MustParseAddr("fe80::ac:ff:fe00:11"), MulticastGroup6
		}
		for _, opt := range []DecodeOptions{{}, {V3ChecksumAsV2: true}, {SkipChecksum: true}, {AuthTrailer: true}, {AuthTrailer: true, SkipChecksum: true}} {
			p, err := Decode(msg, src, dst, opt)
			if err != nil {
				if _, ok := err.(*DecodeError); !ok {
					t.Fatalf("error %T is not a *DecodeError: %v", err, err)
				}
				continue
			}
			if p.Trailer != nil {
				// Verifying a trailer never panics, whatever it holds.
				VerifyAuthDigest(goldenKey1, src, msg)
			}
			if opt.SkipChecksum {
				continue
			}
			b, err := p.Marshal(src, dst, EncodeOptions{V3ChecksumAsV2: opt.V3ChecksumAsV2})
			if err != nil {
				t.Fatalf("decoded packet does not encode: %v", err)
			}
			in := append([]byte(nil), msg...)
			if p.Version == 3 && in[4]>>4 != 0 {
				continue // reserved bits differ, checksum with them
			}
			// 0x0000 and 0xffff are the same ones' complement sum.
			if in[6] == 0xff && in[7] == 0xff && b[6] == 0 && b[7] == 0 {
				b[6], b[7] = 0xff, 0xff
			}
			if !bytes.Equal(b, in) {
				t.Fatalf("round trip\n in  %x\n out %x", in, b)
			}
		}
	})
}
