package xdp

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// Maglev consistent hashing (Eisenbud et al., NSDI 2016), computed here
// and handed to the BPF program as a lookup table.
//
// Every director must compute the same table from the same destinations,
// so a flow that the network's ECMP moves to another director lands on
// the same real server: the table depends only on the destinations'
// addresses, ports and weights, never on their order, on local ids or on
// randomness. Destinations are sorted by address and port first.
//
// The table size is fixed (MaglevSize, a prime), not derived from the
// number of destinations: a size that changed with the set would remap
// nearly every flow whenever a server failed. 65537 keeps the paper's
// rule (size ≥ 100 × destinations) up to MaxDests destinations.
//
// Each destination d gets a permutation of the slots,
//
//	offset = h(d, seed1) % M,  skip = h(d, seed2) % (M-1) + 1,
//	slot j of its preference list = (offset + j·skip) % M,
//
// and in rounds the destinations claim their next free preferred slot, a
// destination of weight w claiming w/g slots per round (g the gcd of the
// weights, the largest scaled down to at most 64 claims, at least 1 for
// a positive weight), until every slot is taken. Weight 0 gets no slot:
// it receives no new flow (its open flows stay, through the flow table).
const (
	MaglevSize = 65537
	MaxDests   = MaglevSize / 100
	maxTurns   = 64
)

// Backend is one destination as the Maglev table sees it.
type Backend struct {
	Addr   netip.AddrPort
	Weight int
}

// Maglev returns the lookup table for backends: MaglevSize slots, each
// the index into backends of the destination that owns it, or nil when
// no backend has a positive weight.
func Maglev(backends []Backend) ([]int, error) {
	if len(backends) > MaxDests {
		return nil, fmt.Errorf("maglev: %d destinations, at most %d (table size %d ≥ 100 × destinations)", len(backends), MaxDests, MaglevSize)
	}
	order := make([]int, 0, len(backends))
	g, maxw := 0, 0
	for i, b := range backends {
		if b.Weight < 0 {
			return nil, fmt.Errorf("maglev: %s: negative weight %d", b.Addr, b.Weight)
		}
		if b.Weight == 0 {
			continue
		}
		order = append(order, i)
		if g == 0 {
			g = b.Weight
		} else {
			g = gcd(g, b.Weight)
		}
		maxw = max(maxw, b.Weight)
	}
	if len(order) == 0 {
		return nil, nil
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := backends[a].Addr.Addr().Compare(backends[b].Addr.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(backends[a].Addr.Port(), backends[b].Addr.Port())
	})
	for i := 1; i < len(order); i++ {
		if backends[order[i]].Addr == backends[order[i-1]].Addr {
			return nil, fmt.Errorf("maglev: destination %s listed twice", backends[order[i]].Addr)
		}
	}
	shift := max(bits.Len(uint(maxw/g))-bits.Len(maxTurns), 0)

	type perm struct {
		next, skip uint32
		turns      int
	}
	ps := make([]perm, len(order))
	for k, i := range order {
		a := backends[i].Addr
		ps[k] = perm{
			next:  destHash(a, 0x9e3779b1) % MaglevSize,
			skip:  destHash(a, 0x85ebca77)%(MaglevSize-1) + 1,
			turns: max((backends[i].Weight/g)>>shift, 1),
		}
	}
	table := make([]int, MaglevSize)
	for i := range table {
		table[i] = -1
	}
	for filled := 0; ; {
		for k, i := range order {
			p := &ps[k]
			for t := 0; t < p.turns; t++ {
				for table[p.next] >= 0 {
					p.next += p.skip
					if p.next >= MaglevSize {
						p.next -= MaglevSize
					}
				}
				table[p.next] = i
				if filled++; filled == MaglevSize {
					return table, nil
				}
			}
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// addrWords is the 16-byte form of a (IPv4 mapped into IPv6, as the BPF
// program keys it) as four little-endian words, the way the BPF program
// (little-endian only: bpf2go -target bpfel) reads them.
func addrWords(a netip.Addr) [4]uint32 {
	b := a.As16()
	var w [4]uint32
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

// destHash places a destination in the table (userspace only).
func destHash(a netip.AddrPort, seed uint32) uint32 {
	w := addrWords(a.Addr())
	return murmur5(seed, w[0], w[1], w[2], w[3], uint32(a.Port()))
}

// ClientHash is the hash the BPF program computes for a new flow
// (client_hash in bpf/xdplb.c): the client's address, and its port under
// mh-port (else 0). Slot = ClientHash % MaglevSize.
func ClientHash(client netip.Addr, port uint16) uint32 {
	w := addrWords(client)
	return murmur5(0x5eed1e55, w[0], w[1], w[2], w[3], uint32(port))
}

// murmur5 is MurmurHash3 (x86_32) of five 32-bit words.
func murmur5(h uint32, ws ...uint32) uint32 {
	for _, k := range ws {
		k *= 0xcc9e2d51
		k = bits.RotateLeft32(k, 15)
		k *= 0x1b873593
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	h ^= 20
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
