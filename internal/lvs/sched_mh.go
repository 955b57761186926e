package lvs

import (
	"math/bits"
	"net/netip"
	"time"
)

// Maglev hashing (ip_vs_mh), with the mh-port and mh-fallback flags.
//
// The lookup table has a prime number of slots: 4093, the kernel's default
// (CONFIG_IP_VS_MH_TAB_INDEX = 12 selects primes[12-8]). Each destination
// gets a permutation of the slots from two hashes of its address and port:
//
//	offset = hsiphash(port + fold(addr), key1) % 4093
//	skip   = hsiphash(port + fold(addr), key2) % 4092 + 1
//
// and, in list order, round after round, each destination claims its next
// free slot "turns" times, until every slot is taken. turns is the
// destination's last non-zero weight divided by the gcd of those weights,
// shifted right so the largest fits in 6 bits (IP_VS_MH_TAB_BITS), and at
// least 1 for a positive weight. A connection goes to slot
//
//	hsiphash(client_port + fold(client_addr), key1) % 4093
//
// with client_port the source port under mh-port and 0 without.
//
// Randomness: none. The kernel's keys are fixed constants (its
// generate_hash_secret uses 2654435761 for both halves of key1 and
// 2654446892 for key2), so the table and every choice are the kernel's.
// hsiphash is SipHash-1-3 on a 64-bit kernel; see hsiphash32.
//
// Weights: the table is built from "last_weight", which the kernel sets on
// add and on every edit to a non-zero weight. A destination set to weight 0
// keeps its slots (so its clients are not remapped while it drains) but
// gets no new connection: without mh-fallback there is then no
// destination; with it, the kernel probes slot hash(offset) for
// offset = (i + first slot) % 4093, i = 0, 1, ..., taking the first usable
// destination and giving up at an empty slot.

const (
	mhTabSize = 4093 // primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]
	mhTabBits = 6    // CONFIG_IP_VS_MH_TAB_INDEX / 2
)

var (
	mhKey1 = hsipKey{2654435761, 2654435761}
	mhKey2 = hsipKey{2654446892, 2654446892}
)

func init() {
	RegisterScheduler("mh", func(flags SchedFlags) Scheduler { return &mhScheduler{flags: flags} })
}

type mhScheduler struct {
	flags      SchedFlags
	lookup     []*Dest // mhTabSize slots, nil until a destination has weight
	lastWeight map[netip.AddrPort]int

	// scratch for Update
	used  []uint64
	setup []mhSetup
}

type mhSetup struct {
	perm, skip uint32
	turns      int
}

func (s *mhScheduler) Name() string { return "mh" }

// mhHash is ip_vs_mh_hashkey: hsiphash of offset + port + fold(addr).
func mhHash(addr netip.Addr, port uint16, key hsipKey, offset uint32) uint32 {
	return hsiphash32(key, offset+uint32(port)+addrFold(addr))
}

func (s *mhScheduler) Update(dests []*Dest) {
	if s.lookup == nil {
		s.lookup = make([]*Dest, mhTabSize)
	}
	if len(dests) > mhTabSize {
		// The kernel refuses to rebuild (EINVAL) and keeps the old table.
		return
	}
	// last_weight: set when a destination is added, and on edits to a
	// non-zero weight. Destinations that left are forgotten; coming back
	// is an add.
	lw := make(map[netip.AddrPort]int, len(dests))
	g, maxw := 0, 0
	for _, d := range dests {
		w, known := s.lastWeight[d.Addr]
		if !known || d.Weight != 0 {
			w = d.Weight
		}
		lw[d.Addr] = w
		if w > 0 {
			if g > 0 {
				g = gcd(w, g)
			} else {
				g = w
			}
		}
		if w > maxw {
			maxw = w
		}
	}
	s.lastWeight = lw
	if g < 1 {
		clear(s.lookup)
		return
	}
	rshift := max(bits.Len(uint(maxw/g))-mhTabBits, 0)

	s.setup = s.setup[:0]
	for _, d := range dests {
		port, addr := d.Addr.Port(), d.Addr.Addr()
		w := lw[d.Addr]
		turns := (w / g) >> rshift
		if turns == 0 && w != 0 {
			turns = 1
		}
		s.setup = append(s.setup, mhSetup{
			perm:  mhHash(addr, port, mhKey1, 0) % mhTabSize,
			skip:  mhHash(addr, port, mhKey2, 0)%(mhTabSize-1) + 1,
			turns: turns,
		})
	}

	if s.used == nil {
		s.used = make([]uint64, (mhTabSize+63)/64)
	}
	clear(s.used)
	for n := 0; ; {
		for i, d := range dests {
			ds := &s.setup[i]
			for t := 0; t < ds.turns; t++ {
				c := ds.perm
				for s.used[c/64]&(1<<(c%64)) != 0 {
					ds.perm += ds.skip
					if ds.perm >= mhTabSize {
						ds.perm -= mhTabSize
					}
					c = ds.perm
				}
				s.used[c/64] |= 1 << (c % 64)
				s.lookup[c] = d
				if n++; n == mhTabSize {
					return
				}
			}
		}
	}
}

func (s *mhScheduler) Schedule(dests []*Dest, f Flow, _ time.Time) *Dest {
	if s.lookup == nil {
		s.Update(dests) // never updated: build from the current list
	}
	var port uint16
	if s.flags&FlagMHPort != 0 {
		port = flowPort(f)
	}
	addr := f.Client.Addr()
	ihash := mhHash(addr, port, mhKey1, 0) % mhTabSize
	d := s.lookup[ihash]
	if d == nil || usable(d) {
		return d
	}
	if s.flags&FlagMHFallback == 0 {
		return nil
	}
	for off := uint32(0); off < mhTabSize; off++ {
		roff := (off + ihash) % mhTabSize
		d := s.lookup[mhHash(addr, port, mhKey1, roff)%mhTabSize]
		if d == nil {
			break
		}
		if usable(d) {
			return d
		}
	}
	return nil
}
