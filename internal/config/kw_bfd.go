package config

import (
	"math"
	"net/netip"
	"strconv"
	"time"
)

// bfdInstance reads a bfd_instance block and applies keepalived's end of
// block checks (bfd_end_handler): a neighbor is required, source and
// neighbor share a family, one session per source/neighbor pair.
func bfdInstance(c *cx, n *Node) {
	bi := &BFDInstance{Pos: n.Pos, Name: n.Args[0], MinRx: 10 * time.Millisecond, MinTx: 10 * time.Millisecond, IdleTx: time.Second, Multiplier: 5}
	c.bfd = bi
	c.walk(bfdSection, n.Children)
	c.bfd = nil
	if c.b.bfdInstances == nil {
		c.b.bfdInstances = map[string]bool{}
	}
	switch {
	case c.b.bfdInstances[bi.Name]:
		c.errf(n, "give every bfd_instance a distinct name", "BFD instance %s already configured - ignoring", bi.Name)
		return
	case !bi.Neighbor.IsValid():
		c.errf(n, "add neighbor_ip ADDRESS", "Configuration error: BFD instance %s has no neighbor address set, disabling instance", bi.Name)
		return
	case bi.Source.IsValid() && bi.Source.Is4() != bi.Neighbor.Is4():
		c.errf(n, "use a source_ip of the neighbor's family", "Configuration error: BFD instance %s source address %s and neighbor address %s are not of the same family, disabling instance", bi.Name, bi.Source, bi.Neighbor)
		return
	}
	for _, o := range c.b.cfg.BFDInstances {
		if o.Neighbor == bi.Neighbor && o.Source == bi.Source && o.Multihop == bi.Multihop {
			c.errf(n, "one bfd_instance per neighbor (and source)", "Configuration error: BFD instance %s has duplicate neighbor address %s, ignoring instance", bi.Name, bi.Neighbor)
			return
		}
	}
	ttl := bi.TTL
	if ttl == 0 {
		ttl = 255
		if bi.Neighbor.Is6() {
			ttl = 64
		}
	}
	if bi.MaxHops > ttl {
		c.warnf(n, "max_hops at most the ttl", "BFD instance %s: max_hops exceeds ttl/hoplimit - setting to ttl/hoplimit", bi.Name)
		bi.MaxHops = ttl
	}
	c.b.bfdInstances[bi.Name] = true
	c.b.cfg.BFDInstances = append(c.b.cfg.BFDInstances, bi)
}

func bfdAddr(c *cx, n *Node, dst *netip.Addr, what string) {
	a, err := netip.ParseAddr(n.Args[0])
	if err != nil {
		c.errf(n, "give an IPv4 or IPv6 address", "Configuration error: BFD instance %s has malformed %s address %s, ignoring", c.bfd.Name, what, n.Args[0])
		return
	}
	*dst = a.Unmap()
}

// bfdMS reads keepalived's milliseconds with up to 3 decimals; above
// sensible it warns as keepalived does, and keeps the value.
func bfdMS(c *cx, n *Node, dst *time.Duration, lo, sensible int64) {
	f, err := strconv.ParseFloat(n.Args[0], 64)
	const hi = math.MaxUint32 / 1000
	if err != nil || math.IsNaN(f) || f < float64(lo) || f > hi || math.Round(f*1000) != f*1000 {
		c.errf(n, "milliseconds, up to 3 decimals", "Configuration error: BFD instance %s %s value %s not valid (must be in range [%d-%d]), ignoring", c.bfd.Name, n.Name, n.Args[0], lo, hi)
		return
	}
	if f > float64(sensible) {
		c.warnf(n, "BFD is for fast detection", "Configuration warning: BFD instance %s %s value %s is larger than max sensible (%d)", c.bfd.Name, n.Name, n.Args[0], sensible)
	}
	*dst = time.Duration(math.Round(f*1000)) * time.Microsecond
}

func bfdInt(c *cx, n *Node, dst *int, what string, lo, hi int64) {
	v, err := strconv.ParseInt(n.Args[0], 10, 64)
	if err != nil || v < lo || v > hi {
		c.errf(n, "a whole number in range", "Configuration error: BFD instance %s %s value %s not valid (must be in range [%d-%d]), ignoring", c.bfd.Name, what, n.Args[0], lo, hi)
		return
	}
	*dst = int(v)
}

// resolveTrackBFD checks track_bfd entries and gives those without a
// weight their bfd_instance's weight (keepalived: the instance's weight
// is the default).
func (b *builder) resolveTrackBFD(owner string, refs []TrackRef) []TrackRef {
	byName := map[string]*BFDInstance{}
	for _, bi := range b.cfg.BFDInstances {
		byName[bi.Name] = bi
	}
	refs = b.checkRefs(owner, "track bfd", refs, func(n string) bool { return byName[n] != nil })
	for i := range refs {
		if bi := byName[refs[i].Name]; !refs[i].WeightSet {
			refs[i].Weight, refs[i].Reverse = bi.Weight, bi.Reverse
		}
	}
	return refs
}
