package netif

import (
	"context"
	"encoding/binary"
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
	// At is when the kernel received the message (SO_TIMESTAMPNS), on
	// the monotonic clock: timers measure from the arrival, not from when
	// a busy process got round to reading it.
	At time.Time
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
	rc     syscall.RawConn
	fd     int
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
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
			}
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
	if ipc, ok := pc.(*net.IPConn); ok {
		c.rc, err = ipc.SyscallConn()
		if err == nil {
			err = c.rc.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	} else {
		err = fmt.Errorf("unexpected %T", pc)
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("vrrp socket on %s: %w", ifname, err)
	}
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

// Fd returns the socket's descriptor, for poll(2). It stays valid until
// Close.
func (c *VRRPConn) Fd() int { return c.fd }

// Interface returns the interface name.
func (c *VRRPConn) Interface() string { return c.ifname }

// Read reads one VRRP message into buf, waiting for one. It returns
// net.ErrClosed after Close.
func (c *VRRPConn) Read(buf []byte) (Received, error) {
	for {
		r, st, err := c.recv(buf, true)
		if err != nil {
			return Received{}, err
		}
		if st == recvOK {
			return r, nil
		}
	}
}

// TryRead reads one VRRP message if one is queued, without waiting: ok is
// false when the socket is empty. The driver uses it to look at what
// arrived before acting on a timeout.
func (c *VRRPConn) TryRead(buf []byte) (r Received, ok bool, err error) {
	for {
		r, st, err := c.recv(buf, false)
		if err != nil || st == recvEmpty {
			return Received{}, false, err
		}
		if st == recvOK {
			return r, true, nil
		}
	}
}

type recvStatus uint8

const (
	recvEmpty recvStatus = iota
	recvOK
	recvSkip // something that is not a VRRP message
)

// recv does one recvmsg with the kernel's receive timestamp and the
// TTL/hop limit and destination address.
func (c *VRRPConn) recv(buf []byte, wait bool) (Received, recvStatus, error) {
	var (
		oob  [512]byte
		n    int
		oobn int
		from unix.Sockaddr
		rerr error
		got  bool
	)
	f := func(fd uintptr) bool {
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob[:], unix.MSG_DONTWAIT)
		if rerr == unix.EAGAIN || rerr == unix.EWOULDBLOCK {
			rerr = nil
			return !wait
		}
		got = rerr == nil
		return true
	}
	var err error
	if wait {
		err = c.rc.Read(f)
	} else {
		// Control, not Read: Read would queue behind the reader
		// goroutine's blocked Read on the descriptor's read lock.
		err = c.rc.Control(func(fd uintptr) { f(fd) })
	}
	if err != nil {
		if c.closed.Load() {
			return Received{}, recvEmpty, net.ErrClosed
		}
		return Received{}, recvEmpty, err
	}
	if rerr != nil {
		return Received{}, recvEmpty, rerr
	}
	if !got {
		return Received{}, recvEmpty, nil
	}
	r := Received{TTL: -1}
	if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, cm := range cms {
			switch {
			case cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_TIMESTAMPNS && len(cm.Data) >= 16:
				sec := int64(binary.NativeEndian.Uint64(cm.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(cm.Data[8:16]))
				// Carry the arrival over to the monotonic clock.
				age := time.Since(time.Unix(sec, nsec))
				r.At = time.Now().Add(-max(age, 0))
			case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_PKTINFO && len(cm.Data) >= 12:
				r.IfIndex = int(int32(binary.NativeEndian.Uint32(cm.Data[0:4])))
			case cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_HOPLIMIT && len(cm.Data) >= 4:
				r.TTL = int(int32(binary.NativeEndian.Uint32(cm.Data[0:4])))
			case cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_PKTINFO && len(cm.Data) >= 20:
				r.Dst = netip.AddrFrom16([16]byte(cm.Data[0:16]))
				r.IfIndex = int(binary.NativeEndian.Uint32(cm.Data[16:20]))
			}
		}
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	b := buf[:n]
	if !c.v6 {
		// IPv4 raw sockets deliver the IP header.
		if len(b) < 20 || b[0]>>4 != 4 {
			return r, recvSkip, nil
		}
		ihl := int(b[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || len(b) < ihl || b[9] != VRRPProto {
			return r, recvSkip, nil
		}
		if tot > len(b) || tot < ihl {
			tot = len(b)
		}
		r.TTL = int(b[8])
		r.Src = netip.AddrFrom4([4]byte(b[12:16]))
		r.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		r.Payload = b[ihl:tot]
		return r, recvOK, nil
	}
	if sa, ok := from.(*unix.SockaddrInet6); ok {
		r.Src = netip.AddrFrom16(sa.Addr)
	}
	r.Payload = b
	return r, recvOK, nil
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
