package lvs

import (
	"net/netip"
	"testing"
)

// Expected values come from testdata/sched_siphash.py and
// testdata/sched_reference.py, an independent Python model. Its SipHash
// agrees with CPython's own SipHash-1-3 (key 0 under PYTHONHASHSEED=0) and
// with the SipHash paper's SipHash-2-4 vector; the zero-key rows below are
// therefore also CPython's hash() of the four little-endian bytes,
// truncated to 32 bits.
func TestHsiphash32(t *testing.T) {
	tests := []struct {
		key  hsipKey
		m    uint32
		want uint32
	}{
		{hsipKey{}, 0, 0x9ac48af0},
		{hsipKey{}, 1, 0xc37b7090},
		{hsipKey{}, 0xc6120001, 0xc24e2a5b},
		{hsipKey{}, 0xffffffff, 0x74cad6e2},
		// The mh keys.
		{mhKey1, 0, 0x1d5a77c2},
		{mhKey1, 0xc6120001, 0xe00db0de},
		{mhKey1, 0xc6120151, 0x25fb90ae}, // 198.18.1.1 + port 80
		{mhKey2, 0, 0xf882433f},
		{mhKey2, 0xc6120001, 0x80b62a1e},
		{mhKey2, 0xc6120151, 0xe40affd4},
	}
	for _, tt := range tests {
		if got := hsiphash32(tt.key, tt.m); got != tt.want {
			t.Errorf("hsiphash32(%x, %#x) = %#x, want %#x", tt.key, tt.m, got, tt.want)
		}
	}
}

func TestHash32(t *testing.T) {
	tests := []struct {
		v       uint32
		h8, h10 uint32
	}{
		{0, 0, 0},
		{1, 97, 391},           // 0x61c88647 >> 24 = 0x61
		{0xc6120001, 188, 755}, // product 0xbcc68647
		{0xffffffff, 158, 632}, // product 0x9e3779b9
		{0x20010db9, 63, 252},
	}
	for _, tt := range tests {
		if got := hash32(tt.v, 8); got != tt.h8 {
			t.Errorf("hash32(%#x, 8) = %d, want %d", tt.v, got, tt.h8)
		}
		if got := hash32(tt.v, 10); got != tt.h10 {
			t.Errorf("hash32(%#x, 10) = %d, want %d", tt.v, got, tt.h10)
		}
	}
}

func TestAddrFold(t *testing.T) {
	tests := []struct {
		addr string
		want uint32
	}{
		{"198.18.0.1", 0xc6120001},
		{"::ffff:198.18.0.1", 0xc6120001},
		// 0x20010db8 ^ 0 ^ 0 ^ 1
		{"2001:db8::1", 0x20010db9},
		// 0x20010db8 ^ 0x00010000 ^ 0 ^ 1
		{"2001:db8:1::1", 0x20000db9},
	}
	for _, tt := range tests {
		if got := addrFold(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("addrFold(%s) = %#x, want %#x", tt.addr, got, tt.want)
		}
	}
}
