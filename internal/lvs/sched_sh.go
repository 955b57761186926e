package lvs

import (
	"net/netip"
	"time"
)

// Source hashing (ip_vs_sh), with the sh-port and sh-fallback flags.
//
// A 256-bucket table (IP_VS_SH_TAB_BITS = 8) is filled in list order, each
// destination taking as many consecutive buckets as its weight (at least
// one, so a weight-0 destination still owns a bucket), cycling through the
// list until all buckets are taken. It is rebuilt on every add, delete and
// edit. A connection goes to bucket
//
//	hash_32(client_port + fold(client_addr), 8)
//
// where client_port is the source port with sh-port and 0 without, and
// hash_32 is the golden-ratio multiply keeping the top 8 bits. Nothing is
// random: the same list gives the same table as the kernel's.
//
// If the bucket's destination has weight 0 or is overloaded there is no
// destination, unless sh-fallback is set: then the kernel probes the
// buckets (offset + hash) & 255 for offset = (i + hash) % 256, i = 0..255,
// which starts at twice the hash (a quirk we keep), and takes the first
// usable destination.

const (
	shTabBits = 8
	shTabSize = 1 << shTabBits
	shTabMask = shTabSize - 1
)

func init() {
	RegisterScheduler("sh", func(flags SchedFlags) Scheduler { return &shScheduler{flags: flags} })
}

type shScheduler struct {
	flags   SchedFlags
	buckets [shTabSize]*Dest
	ready   bool // Update was called
}

func (s *shScheduler) Name() string { return "sh" }

func (s *shScheduler) Update(dests []*Dest) {
	s.ready = true
	if len(dests) == 0 {
		s.buckets = [shTabSize]*Dest{}
		return
	}
	p, count := 0, 0
	for i := range s.buckets {
		d := dests[p]
		s.buckets[i] = d
		count++
		if count >= d.Weight {
			p = (p + 1) % len(dests)
			count = 0
		}
	}
}

// shHash is ip_vs_sh_hashkey: (offset + hash_32(port + fold(addr))) & mask.
func shHash(addr netip.Addr, port uint16, offset uint32) uint32 {
	return (offset + hash32(uint32(port)+addrFold(addr), shTabBits)) & shTabMask
}

func (s *shScheduler) Schedule(dests []*Dest, f Flow, _ time.Time) *Dest {
	if !s.ready {
		s.Update(dests)
	}
	var port uint16
	if s.flags&FlagSHPort != 0 {
		port = flowPort(f)
	}
	addr := f.Client.Addr()
	ihash := shHash(addr, port, 0)
	d := s.buckets[ihash]
	if d == nil || usable(d) {
		return d
	}
	if s.flags&FlagSHFallback == 0 {
		return nil
	}
	for off := uint32(0); off < shTabSize; off++ {
		roff := (off + ihash) % shTabSize
		d := s.buckets[shHash(addr, port, roff)]
		if d == nil {
			break
		}
		if usable(d) {
			return d
		}
	}
	return nil
}
