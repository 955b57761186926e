package config

import (
	"net/netip"
	"time"
)

// BGP is vipd's bgp block: an embedded BGP speaker that announces VIPs to
// upstream routers, so that several active directors share them through
// the routers' ECMP (internal/bgp).
type BGP struct {
	Pos       Pos            `json:"pos"`
	RouterID  netip.Addr     `json:"router_id,omitzero"`
	LocalAS   uint32         `json:"local_as"`
	Neighbors []*BGPNeighbor `json:"neighbors"`
	// DrainPause is how long routes carry GRACEFUL_SHUTDOWN before they
	// are withdrawn (vipd stopping, vipctl bgp drain); 0 keeps the
	// default, DefaultDrainPause.
	DrainPause time.Duration `json:"drain_pause,omitempty"`
	// NoDrainPause: drain_pause 0 was given (withdraw at once).
	NoDrainPause bool `json:"no_drain_pause,omitempty"`
}

// DefaultDrainPause is drain_pause's default: long enough for a router
// that honours GRACEFUL_SHUTDOWN (RFC 8326) to move traffic to the other
// directors' paths before the withdrawal, short enough for a restart.
const DefaultDrainPause = time.Second

// Pause is the drain pause in effect.
func (g *BGP) Pause() time.Duration {
	switch {
	case g.NoDrainPause:
		return 0
	case g.DrainPause == 0:
		return DefaultDrainPause
	}
	return g.DrainPause
}

// BGPNeighbor is one neighbor block.
type BGPNeighbor struct {
	Pos      Pos        `json:"pos"`
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	// HoldTime 0 keeps the BGP default (90 s); the keepalive interval is a
	// third of it.
	HoldTime time.Duration `json:"hold_time,omitempty"`
	BFD      *BGPBFD       `json:"bfd,omitempty"`
	Passive  bool          `json:"passive,omitempty"`
	Port     uint16        `json:"port,omitempty"`     // 0: 179
	Multihop int           `json:"multihop,omitempty"` // eBGP multihop TTL, 0: off
	Password string        `json:"password,omitempty"` // TCP MD5
}

// BGPBFD holds a neighbor's BFD timers; a bare bfd gives 100 ms × 3.
type BGPBFD struct {
	MinRx      time.Duration `json:"min_rx"`
	MinTx      time.Duration `json:"min_tx"`
	Multiplier int           `json:"multiplier"`
}

const bgpNote = "vipd extension: "

// bgpNeighbor is the neighbor block being read.
func (c *cx) bgpNeighbor() *BGPNeighbor {
	ns := c.b.cfg.BGP.Neighbors
	return ns[len(ns)-1]
}

// ms parses argument 0 as milliseconds in [lo, hi].
func (c *cx) ms(n *Node, dst *time.Duration, lo, hi int64) {
	if v, ok := c.integer(n, 0, lo, hi); ok {
		*dst = time.Duration(v) * time.Millisecond
	}
}

var bgpBFDSection = newSection("bfd (bgp neighbor)", "BFD timers of a BGP neighbor (vipd extension)",
	kw("min_rx", "MS", 1, "100", func(c *cx, n *Node) { c.ms(n, &c.bgpNeighbor().BFD.MinRx, 10, 60000) }).
		vipd().note(bgpNote+"required minimum receive interval, milliseconds"),
	kw("min_tx", "MS", 1, "100", func(c *cx, n *Node) { c.ms(n, &c.bgpNeighbor().BFD.MinTx, 10, 60000) }).
		vipd().note(bgpNote+"desired minimum transmit interval, milliseconds"),
	kw("multiplier", "N", 1, "3", func(c *cx, n *Node) { c.intVal(n, &c.bgpNeighbor().BFD.Multiplier, 1, 255) }).
		vipd().note(bgpNote+"detection multiplier: the session is down after this many missed intervals"),
)

var bgpNeighborSection = newSection("neighbor (bgp)", "A BGP neighbor (vipd extension)",
	kw("remote_as", "ASN", 1, "", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 1<<32-1); ok {
			c.bgpNeighbor().RemoteAS = uint32(v)
		}
	}).vipd().note(bgpNote+"the neighbor's AS number (required)"),
	kw("hold_time", "SECONDS", 1, "90", func(c *cx, n *Node) {
		v, ok := c.integer(n, 0, 0, 65535)
		if !ok {
			return
		}
		if v > 0 && v < 3 {
			c.errf(n, "use 0 or at least 3 seconds (RFC 4271)", "hold time %d too short", v)
			return
		}
		c.bgpNeighbor().HoldTime = time.Duration(v) * time.Second
	}).vipd().note(bgpNote+"BGP hold time; keepalives every third of it"),
	&Keyword{Name: "bfd", Args: "[{ min_rx MS; min_tx MS; multiplier N }]", Block: bgpBFDSection, OptionalBlock: true, VipdOnly: true,
		Note: bgpNote + "BFD (RFC 5880) for the session, defaults min_rx 100 ms, min_tx 100 ms, multiplier 3",
		set: func(c *cx, n *Node) {
			nb := c.bgpNeighbor()
			nb.BFD = &BGPBFD{MinRx: 100 * time.Millisecond, MinTx: 100 * time.Millisecond, Multiplier: 3}
			c.walk(bgpBFDSection, n.Children)
		}},
	flagKw("passive", func(c *cx, n *Node) { c.boolVal(n, &c.bgpNeighbor().Passive) }).args("[<BOOL>]", 0).
		vipd().note(bgpNote+"wait for the neighbor to connect (vipd listens on port 179)"),
	kw("port", "PORT", 1, "179", func(c *cx, n *Node) {
		if p, ok := c.port(n, 0); ok {
			c.bgpNeighbor().Port = p
		}
	}).vipd().note(bgpNote+"the neighbor's TCP port"),
	kw("multihop", "[TTL]", 0, "off", func(c *cx, n *Node) {
		ttl := int64(255)
		if len(n.Args) > 0 {
			v, ok := c.integer(n, 0, 1, 255)
			if !ok {
				return
			}
			ttl = v
		}
		c.bgpNeighbor().Multihop = int(ttl)
	}).vipd().note(bgpNote+"eBGP multihop with this TTL (default 255)"),
	kw("password", "STRING", 1, "", func(c *cx, n *Node) { c.bgpNeighbor().Password = n.Args[0] }).
		vipd().note(bgpNote+"TCP MD5 signature (RFC 2385)"),
)

var bgpSection = newSection("bgp", "vipd's BGP speaker (vipd extension)",
	kw("router_id", "IPV4", 1, "", func(c *cx, n *Node) {
		if a, ok := c.addr(n, 0); ok {
			if !a.Is4() {
				c.errf(n, "give an IPv4 address", "router_id %s is not IPv4", a)
				return
			}
			c.b.cfg.BGP.RouterID = a
		}
	}).vipd().note(bgpNote+"BGP identifier (required)"),
	kw("local_as", "ASN", 1, "", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 1<<32-1); ok {
			c.b.cfg.BGP.LocalAS = uint32(v)
		}
	}).vipd().note(bgpNote+"this director's AS number (required)"),
	kw("drain_pause", "MS", 1, "1000", func(c *cx, n *Node) {
		g := c.b.cfg.BGP
		c.ms(n, &g.DrainPause, 0, 600000)
		g.NoDrainPause = g.DrainPause == 0 && len(n.Args) > 0 && n.Args[0] == "0"
	}).vipd().note(bgpNote+"milliseconds the routes carry GRACEFUL_SHUTDOWN before they are withdrawn when vipd stops or on vipctl bgp drain (0: withdraw at once); give the routers time to move traffic to the other directors"),
	block("neighbor", "IP { ... }", 1, bgpNeighborSection, func(c *cx, n *Node) {
		a, ok := c.addr(n, 0)
		if !ok {
			return
		}
		for _, o := range c.b.cfg.BGP.Neighbors {
			if o.Addr == a {
				c.errf(n, "give each neighbor once", "neighbor %s already defined at %s", a, o.Pos)
				return
			}
		}
		c.b.cfg.BGP.Neighbors = append(c.b.cfg.BGP.Neighbors, &BGPNeighbor{Pos: n.Pos, Addr: a})
		c.walk(bgpNeighborSection, n.Children)
	}).vipd().note(bgpNote+"a BGP neighbor (the upstream router)"),
)

func init() {
	topSection.addKeywords(
		block("bgp", "{ ... }", 0, bgpSection, func(c *cx, n *Node) {
			if c.b.cfg.BGP != nil {
				c.errf(n, "merge the bgp blocks", "bgp block already defined at %s", c.b.cfg.BGP.Pos)
				return
			}
			c.b.cfg.BGP = &BGP{Pos: n.Pos}
			c.walk(bgpSection, n.Children)
		}).vipd().note("vipd extension: announce VIPs by BGP (active-active directors behind ECMP routers); see docs/scale-out.md"),
	)
	virtualServerSection.addKeywords(
		flagKw("bgp_announce", func(c *cx, n *Node) {
			pos := n.Pos
			c.vs.BGPAnnounce = &pos
		}).vipd().note("vipd extension: announce the VIP as a host route by BGP while this director serves it (after the first round of checks, quorum up, some real server up)"),
	)
	instanceSection.addKeywords(
		flagKw("bgp_announce", func(c *cx, n *Node) {
			pos := n.Pos
			c.inst.BGPAnnounce = &pos
		}).vipd().note("vipd extension: announce the instance's VIPs as host routes by BGP while MASTER"),
	)
}

// validateBGP checks the bgp block as a whole and the bgp_announce
// keywords that depend on it. A broken bgp block is dropped (an error
// for vipd -t); bgp_announce without one is an error at its line.
func (b *builder) validateBGP() {
	if g := b.cfg.BGP; g != nil {
		ok := true
		if !g.RouterID.IsValid() {
			b.add(g.Pos, Error, "router_id", "add router_id IPV4 to the bgp block", "bgp: router_id missing")
			ok = false
		}
		if g.LocalAS == 0 {
			b.add(g.Pos, Error, "local_as", "add local_as ASN to the bgp block", "bgp: local_as missing")
			ok = false
		}
		if len(g.Neighbors) == 0 {
			b.add(g.Pos, Error, "neighbor", "add neighbor IP { remote_as ASN }", "bgp: no neighbor")
			ok = false
		}
		for _, nb := range g.Neighbors {
			if nb.RemoteAS == 0 {
				b.add(nb.Pos, Error, "remote_as", "add remote_as ASN to the neighbor block", "bgp: neighbor %s has no remote_as", nb.Addr)
				ok = false
			}
		}
		if !ok {
			b.cfg.BGP = nil
		}
	}
	// GoBGP runs its own BFD for the neighbors (internal/bgp) and binds
	// UDP 3784 as the single-hop bfd_instance sessions do: whichever
	// bound second would fail at run time, so say it here.
	if g := b.cfg.BGP; g != nil {
		for _, nb := range g.Neighbors {
			if nb.BFD == nil {
				continue
			}
			for _, bi := range b.cfg.BFDInstances {
				if !bi.Multihop {
					b.add(bi.Pos, Error, "bfd_instance", "drop the neighbor's bfd or this bfd_instance (multihop bfd_instances use UDP 4784 and can stay): docs/bfd.md",
						"bfd_instance %s and BGP neighbor %s's bfd (%s) both need UDP port 3784", bi.Name, nb.Addr, nb.Pos)
				}
			}
			break
		}
	}
	for _, vs := range b.cfg.VirtualServers {
		if vs.BGPAnnounce == nil {
			continue
		}
		switch {
		case vs.Kind != VSAddr:
			b.add(*vs.BGPAnnounce, Error, "bgp_announce", "announce the addresses with a vrrp_instance's bgp_announce, or give the virtual server an IP", "bgp_announce needs a virtual server with an IP address (%s)", vs)
			vs.BGPAnnounce = nil
		case b.cfg.BGP == nil:
			b.add(*vs.BGPAnnounce, Error, "bgp_announce", "add a valid bgp { router_id; local_as; neighbor IP { remote_as } } block", "bgp_announce without a bgp block")
			vs.BGPAnnounce = nil
		}
	}
	for _, in := range b.cfg.Instances {
		if in.BGPAnnounce != nil && b.cfg.BGP == nil {
			b.add(*in.BGPAnnounce, Error, "bgp_announce", "add a valid bgp { router_id; local_as; neighbor IP { remote_as } } block", "(%s) bgp_announce without a bgp block", in.Name)
			in.BGPAnnounce = nil
		}
	}
}
