package vrrp

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vipd/vipd/internal/netif"
)

func (c *Core) announce(ci *coreInst, v VIP, count int) {
	if count <= 0 {
		return
	}
	kind := "gratuitous ARPs"
	if v.Prefix.Addr().Is6() {
		kind = "Unsolicited Neighbour Adverts"
	}
	c.logf("(%s) Sending/queueing %s on %s for %s", ci.cfg.Name, kind, v.Dev, v.Prefix.Addr())
	c.emit(Effect{Kind: EffGARP, Instance: ci.cfg.Name, VIP: v, Count: count})
}

// sendAdvert builds an advert and sends it to the multicast group or to
// each unicast peer. Without a socket or a source address there is
// nothing to send from (the instance is in FAULT for it).
func (c *Core) sendAdvert(ci *coreInst, prio uint8) {
	if ci.waiting || ci.sockErr != "" || !ci.src.IsValid() {
		return
	}
	name := ci.cfg.Name
	mc := ci.m.Config()
	iv, err := IntervalField(mc.Version, mc.AdvertInt)
	if err != nil {
		c.logLimited("send:"+name, fmt.Sprintf("(%s) %v", name, err))
		return
	}
	p := Packet{Version: mc.Version, Type: TypeAdvertisement, VRID: mc.VRID, Priority: prio, AdvertInt: iv,
		AuthType: mc.AuthType, AuthData: mc.AuthPass, Addrs: mc.VIPs}
	dsts := ci.cfg.UnicastPeers
	ttl := 255
	if len(dsts) == 0 {
		dsts = []netip.Addr{c.instGroup(ci)}
	} else if ci.cfg.UnicastTTL > 0 {
		ttl = ci.cfg.UnicastTTL
	}
	opt := EncodeOptions{V3ChecksumAsV2: ci.cfg.V3ChecksumAsV2}
	if a := ci.cfg.AuthHMAC; a != nil {
		// One sequence number for the advert: the unicast copies carry
		// the same trailer (the HMAC does not cover the destination).
		p.Trailer = ci.hmac.trailer(a, a.window(mc.AdvertInt), c.now)
		opt.AuthKey = a.key(a.ActiveKey)
	}
	for _, dst := range dsts {
		sumDst := dst
		if c.oldSum(ci) {
			sumDst = c.mcastGroup(false)
		}
		b, err := p.Marshal(ci.src, sumDst, opt)
		if err != nil {
			c.logLimited("send:"+name, fmt.Sprintf("(%s) %v", name, err))
			return
		}
		c.emit(Effect{Kind: EffSend, Instance: name, Sock: ci.key, Src: ci.src, Dst: dst, TTL: ttl, Payload: b, Priority: prio})
	}
}

// oldSum says whether the instance sums unicast VRRPv3 IPv4 adverts the
// way keepalived before 1.3.6 did (old_unicast_checksum).
func (c *Core) oldSum(ci *coreInst) bool {
	if len(ci.cfg.UnicastPeers) == 0 || ci.key.V6 || ci.cfg.V3ChecksumAsV2 || ci.cfg.version() != 3 {
		return false
	}
	return ci.oldSum || ci.cfg.OldUnicastChecksum == "config"
}

// receive decodes an advert and hands it to the instances with its VRID
// on that socket.
func (c *Core) receive(key SockKey, r netif.Received) {
	s := c.socks[key]
	if s == nil {
		return // closed since
	}
	if len(r.Payload) < 2 {
		s.unknownVRID++
		return
	}
	vrid := int(r.Payload[1])
	found := false
	for _, name := range c.order {
		ci := c.insts[name]
		if ci.key != key || ci.cfg.VRID != vrid || ci.waiting || ci.sockErr != "" {
			continue
		}
		if len(ci.cfg.UnicastPeers) == 0 && r.Dst.IsMulticast() && r.Dst != c.instGroup(ci) {
			// Another group's advert (mcast_dst_ip): keepalived's
			// socket, bound to the instance's group, never sees it.
			continue
		}
		found = true
		if r.Src == ci.src {
			ci.m.CountDrop(DropOwnPacket)
			continue
		}
		opt := DecodeOptions{V3ChecksumAsV2: ci.cfg.V3ChecksumAsV2, SkipChecksum: key.V6, AuthTrailer: ci.cfg.AuthHMAC != nil}
		sumDst := r.Dst
		if c.oldSum(ci) {
			sumDst = c.mcastGroup(false)
		}
		p, err := Decode(r.Payload, r.Src, sumDst, opt)
		if err != nil && !c.oldSum(ci) && ci.cfg.OldUnicastChecksum != "never" && len(ci.cfg.UnicastPeers) > 0 && !key.V6 && !ci.cfg.V3ChecksumAsV2 {
			// keepalived before 1.3.6 summed unicast VRRPv3 adverts with
			// the multicast group as destination: a peer heard doing so
			// switches our sum to its, as keepalived does.
			if p2, err2 := Decode(r.Payload, r.Src, c.mcastGroup(false), opt); err2 == nil && p2.Version == 3 {
				p, err = p2, nil
				ci.oldSum = true
				c.logf("(%s) Setting unicast VRRPv3 checksum to old version", name)
			}
		}
		if err != nil {
			reason := DropLength
			var de *DecodeError
			if errors.As(err, &de) {
				reason = de.Reason
			}
			ci.m.CountDrop(reason)
			c.logLimited("drop:"+reason, fmt.Sprintf("(%s) dropping advert from %v: %v", name, r.Src, err))
			continue
		}
		if a := ci.cfg.AuthHMAC; a != nil {
			v := ci.hmac.verify(a, a.window(ci.cfg.advertInt()), p, r.Payload, r.Src, ci.cfg.UnicastPeers, c.now)
			if v.reason != "" {
				ci.m.CountDrop(v.reason)
				c.logLimited("drop:"+name+":"+v.reason, fmt.Sprintf("(%s) %s", name, v.msg))
				continue
			}
			if v.msg != "" {
				c.logLimited("skew:"+name, fmt.Sprintf("(%s) %s", name, v.msg))
			}
		}
		// Adverts are judged by their arrival time (a busy loop reads
		// late); never by a time after now.
		at := r.At
		if at.IsZero() || at.After(c.now) {
			at = c.now
		}
		c.exec(ci.m.Step(Event{Kind: EvAdvert, Now: at, Packet: p, Src: r.Src, Dst: r.Dst, TTL: r.TTL}))
	}
	if !found {
		s.unknownVRID++
		c.logLimited(fmt.Sprintf("vrid:%s:%d", key.Iface, vrid),
			fmt.Sprintf("(%s) Unknown VRID(%d) received from %v. ignoring...", key.Iface, vrid, r.Src))
	}
}
