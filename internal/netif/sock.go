package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// VRRPProto is the IP protocol number of VRRP.
const VRRPProto = 112

// TOS of VRRP adverts (IP precedence "internetwork control", what
// keepalived sends).
const vrrpTOS = 0xc0

// Received is one VRRP message read from a socket.
type Received struct {
	Payload []byte     // the VRRP message (IP payload)
	Src     netip.Addr // IP source
	Dst     netip.Addr // IP destination (multicast group or our address)
	TTL     int        // TTL / hop limit, -1 if unknown
	IfIndex int
}

// VRRPConn is a raw IP socket for VRRP on one interface and one address
// family: it joins the multicast group, sends with TTL/hop limit 255 (or
// the unicast TTL), and reports the received TTL/hop limit so that the
// caller can enforce RFC 5798's 255.
type VRRPConn struct {
	ifname string
	ifi    *net.Interface
	v6     bool
	c4     *ipv4.RawConn
	c6     *ipv6.PacketConn
	pc     net.PacketConn
	id     atomic.Uint32
	closed atomic.Bool
}

// ListenVRRP opens a VRRP socket on ifname. groups are joined on the
// interface (none for unicast-only use). The socket is bound to the device,
// so it only sees what arrives there.
func ListenVRRP(ifname string, v6 bool, groups ...netip.Addr) (*VRRPConn, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrp socket: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
			if serr == nil {
				// Adverts are tiny; a deeper queue survives scheduling
				// hiccups under load without dropping any.
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c := &VRRPConn{ifname: ifname, ifi: ifi, v6: v6}
	network, addr := "ip4:112", "0.0.0.0"
	if v6 {
		network, addr = "ip6:112", "::"
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("vrrp socket on %s: %w", ifname, err)
	}
	c.pc = pc
	fail := func(what string, err error) (*VRRPConn, error) {
		pc.Close()
		return nil, fmt.Errorf("vrrp socket on %s: %s: %w", ifname, what, err)
	}
	if !v6 {
		rc, err := ipv4.NewRawConn(pc)
		if err != nil {
			return fail("raw conn", err)
		}
		c.c4 = rc
		if err := rc.SetMulticastInterface(ifi); err != nil {
			return fail("IP_MULTICAST_IF", err)
		}
		if err := rc.SetMulticastLoopback(false); err != nil {
			return fail("IP_MULTICAST_LOOP", err)
		}
		if err := rc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
			return fail("control messages", err)
		}
		for _, g := range groups {
			if err := rc.JoinGroup(ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
				return fail("join "+g.String(), err)
			}
		}
		return c, nil
	}
	p6 := ipv6.NewPacketConn(pc)
	c.c6 = p6
	// The kernel computes and verifies the checksum at offset 6 (with
	// IPv6's pseudo-header, RFC 5798 5.2.8).
	if err := p6.SetChecksum(true, 6); err != nil {
		return fail("IPV6_CHECKSUM", err)
	}
	if err := p6.SetMulticastInterface(ifi); err != nil {
		return fail("IPV6_MULTICAST_IF", err)
	}
	if err := p6.SetMulticastLoopback(false); err != nil {
		return fail("IPV6_MULTICAST_LOOP", err)
	}
	if err := p6.SetMulticastHopLimit(255); err != nil {
		return fail("IPV6_MULTICAST_HOPS", err)
	}
	if err := p6.SetTrafficClass(vrrpTOS); err != nil {
		return fail("IPV6_TCLASS", err)
	}
	if err := p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return fail("control messages", err)
	}
	for _, g := range groups {
		if err := p6.JoinGroup(ifi, &net.IPAddr{IP: g.AsSlice()}); err != nil {
			return fail("join "+g.String(), err)
		}
	}
	return c, nil
}

// Join joins a multicast group on the socket's interface.
func (c *VRRPConn) Join(group netip.Addr) error {
	g := &net.IPAddr{IP: group.AsSlice()}
	var err error
	if c.v6 {
		err = c.c6.JoinGroup(c.ifi, g)
	} else {
		err = c.c4.JoinGroup(c.ifi, g)
	}
	if err != nil {
		return fmt.Errorf("join %v on %s: %w", group, c.ifname, err)
	}
	return nil
}

// Interface returns the interface name.
func (c *VRRPConn) Interface() string { return c.ifname }

// Read reads one VRRP message into buf. It returns net.ErrClosed after
// Close.
func (c *VRRPConn) Read(buf []byte) (Received, error) {
	for {
		if !c.v6 {
			h, p, cm, err := c.c4.ReadFrom(buf)
			if err != nil {
				return Received{}, err
			}
			if h == nil || h.Protocol != VRRPProto {
				continue
			}
			r := Received{Payload: p, TTL: h.TTL}
			r.Src, _ = netip.AddrFromSlice(h.Src.To4())
			r.Dst, _ = netip.AddrFromSlice(h.Dst.To4())
			if cm != nil {
				r.IfIndex = cm.IfIndex
			}
			// The raw socket hands us the whole datagram; trust the
			// header's length over the buffer (padding).
			if h.TotalLen >= h.Len && h.TotalLen-h.Len <= len(p) {
				r.Payload = p[:h.TotalLen-h.Len]
			}
			return r, nil
		}
		n, cm, src, err := c.c6.ReadFrom(buf)
		if err != nil {
			return Received{}, err
		}
		r := Received{Payload: buf[:n], TTL: -1}
		if a, ok := src.(*net.IPAddr); ok {
			r.Src, _ = netip.AddrFromSlice(a.IP)
		}
		if cm != nil {
			r.TTL = cm.HopLimit
			r.Dst, _ = netip.AddrFromSlice(cm.Dst)
			r.IfIndex = cm.IfIndex
		}
		return r, nil
	}
}

// Write sends a VRRP message from src to dst (the multicast group or a
// unicast peer) with the given TTL / hop limit.
func (c *VRRPConn) Write(payload []byte, src, dst netip.Addr, ttl int) error {
	if !c.v6 {
		h := IPv4Header(src, dst, len(payload), ttl, int(c.id.Add(1)&0xffff))
		if err := c.c4.WriteTo(h, payload, nil); err != nil {
			return fmt.Errorf("send advert to %v on %s: %w", dst, c.ifname, err)
		}
		return nil
	}
	cm := &ipv6.ControlMessage{Src: src.AsSlice(), IfIndex: c.ifi.Index, HopLimit: ttl, TrafficClass: vrrpTOS}
	to := &net.IPAddr{IP: dst.AsSlice()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
		// By index: a name would be resolved in the calling thread's
		// namespace, which need not be the socket's.
		to.Zone = strconv.Itoa(c.ifi.Index)
	}
	if _, err := c.c6.WriteTo(payload, cm, to); err != nil {
		return fmt.Errorf("send advert to %v on %s: %w", dst, c.ifname, err)
	}
	return nil
}

// IPv4Header is the header of a VRRP advert as keepalived builds it: TOS
// 0xc0, no fragmentation flags, protocol 112. The kernel fills in the
// checksum (IP_HDRINCL).
func IPv4Header(src, dst netip.Addr, payloadLen, ttl, id int) *ipv4.Header {
	return &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      vrrpTOS,
		TotalLen: ipv4.HeaderLen + payloadLen,
		ID:       id,
		TTL:      ttl,
		Protocol: VRRPProto,
		Src:      src.AsSlice(),
		Dst:      dst.AsSlice(),
	}
}

// SetReadDeadline sets the read deadline.
func (c *VRRPConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket; a blocked Read returns.
func (c *VRRPConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.pc.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
