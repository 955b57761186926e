package lvs

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Helpers shared by the schedulers: the kernel's address folding, its
// multiplicative hash, its hsiphash, connection overhead and destination
// lookup by address. Each is written from the kernel's definition so the
// schedulers choose exactly what IPVS chooses.

// goldenRatio32 is the multiplier of the kernel's hash_32()
// (GOLDEN_RATIO_32 in include/linux/hash.h, 2^32 / phi).
const goldenRatio32 = 0x61C88647

// hash32 is the kernel's hash_32(val, bits) on machines without an
// architecture-specific version (x86 has none): multiply by the golden ratio
// and keep the top bits, which are the well-mixed ones.
func hash32(v uint32, nbits uint) uint32 {
	return (v * goldenRatio32) >> (32 - nbits)
}

// addrFold reduces an address to the 32-bit value the kernel's hashing
// schedulers (sh, dh, mh, lblc, lblcr) hash: an IPv4 address in host byte
// order; an IPv6 address as the XOR of its four 32-bit words (XOR commutes
// with the byte swap, so folding then converting equals converting then
// folding). An IPv4-mapped IPv6 address is treated as IPv4, as a kernel
// AF_INET service would see it.
func addrFold(a netip.Addr) uint32 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}

// hsipKey is a key of the kernel's hsiphash. On 64-bit kernels
// hsiphash_key_t is two unsigned longs, so each half is 64 bits wide.
type hsipKey struct{ k0, k1 uint64 }

// SipHash initialisation constants ("somepseudorandomlygeneratedbytes").
const (
	sipC0 = 0x736f6d6570736575
	sipC1 = 0x646f72616e646f6d
	sipC2 = 0x6c7967656e657261
	sipC3 = 0x7465646279746573
)

// hsiphash32 is the kernel's hsiphash() of one 4-byte word on a 64-bit
// little-endian machine. There, "HalfSipHash-1-3" is in fact SipHash-1-3
// (one compression round, three finalisation rounds) truncated to 32 bits.
// A 4-byte message is a single final block: the length in the top byte and
// the word's little-endian bytes in the low ones. The kernel hashes the
// word's in-memory bytes, which on x86 are the value itself.
func hsiphash32(key hsipKey, m uint32) uint32 {
	v0 := sipC0 ^ key.k0
	v1 := sipC1 ^ key.k1
	v2 := sipC2 ^ key.k0
	v3 := sipC3 ^ key.k1
	b := uint64(4)<<56 | uint64(m)

	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

// sipRound is one SipRound of the SipHash specification.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// connOverhead is the kernel's ip_vs_dest_conn_overhead(): an active
// connection is taken to cost 256 times an inactive one. It is computed in
// 64 bits; the kernel's 32-bit int would only differ beyond 8 million
// active connections on one destination.
func connOverhead(d *Dest) int64 {
	return int64(d.ActiveConns)<<8 + int64(d.InactiveConns)
}

// usable reports what most schedulers require of a destination for a new
// connection: a positive weight and no overload flag.
func usable(d *Dest) bool {
	return d.Weight > 0 && !d.Overloaded
}

// flowPort returns the client port the sh-port and mh-port options hash:
// the source port for TCP, UDP and SCTP, 0 for other protocols (the kernel
// reads the first two bytes of the transport header only for those three).
func flowPort(f Flow) uint16 {
	switch f.Proto {
	case TCP, UDP, SCTP:
		return f.Client.Port()
	}
	return 0
}

// indexOf returns the position of the destination with address a in dests,
// trying hint first (schedulers remember where they last saw it), or -1.
func indexOf(dests []*Dest, a netip.AddrPort, hint int) int {
	if hint >= 0 && hint < len(dests) && dests[hint].Addr == a {
		return hint
	}
	for i, d := range dests {
		if d.Addr == a {
			return i
		}
	}
	return -1
}
