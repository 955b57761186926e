// Package vrrp implements the Virtual Router Redundancy Protocol as
// keepalived 2.2.7 speaks it: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798,
// RFC 9568) over IPv4 and IPv6.
//
// The package has three layers, like etcd's raft:
//
//   - the packet codec (this file), pure functions over bytes;
//   - Machine, the state machine of one VRRP instance: a value driven by
//     events (Step) that returns actions, owning no socket, goroutine or
//     clock, and Group, which keeps the members of a vrrp_sync_group
//     together;
//   - Node, the driver: real sockets, timers, netlink and tracking, running
//     every instance of a configuration in one goroutine.
package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// IPProto is the IP protocol number of VRRP.
const IPProto = 112

// TypeAdvertisement is the only VRRP packet type.
const TypeAdvertisement = 1

// Authentication types of VRRPv2 (RFC 2338; RFC 3768 keeps the field).
const (
	AuthNone = 0
	AuthPass = 1 // simple text password, 8 bytes
	AuthAH   = 2 // IPsec AH: vipd refuses it, see Config validation
)

// Multicast groups of RFC 5798 (keepalived's vrrp_mcast_group4/6 defaults).
var (
	MulticastGroup4 = netip.MustParseAddr("224.0.0.18")
	MulticastGroup6 = netip.MustParseAddr("ff02::12")
)

// Packet is one decoded VRRP advertisement.
type Packet struct {
	Version  int // 2 or 3
	Type     int // TypeAdvertisement
	VRID     uint8
	Priority uint8
	// AdvertInt is the raw interval field: seconds in VRRPv2 (8 bits),
	// centiseconds in VRRPv3 (12 bits). Interval converts it.
	AdvertInt uint16
	AuthType  uint8   // VRRPv2 only
	AuthData  [8]byte // VRRPv2 only: the password for AuthPass
	Addrs     []netip.Addr
	Checksum  uint16 // as received, or as computed by Marshal
	// Trailer is the auth_hmac trailer (keepalived 2.4.2+), nil when the
	// advert has none.
	Trailer *AuthTrailer
}

// Interval returns the advertisement interval the packet carries.
func (p *Packet) Interval() time.Duration {
	if p.Version == 2 {
		return time.Duration(p.AdvertInt) * time.Second
	}
	return time.Duration(p.AdvertInt) * 10 * time.Millisecond
}

// IntervalField converts an advertisement interval to the wire field of
// the given version, or fails when the interval cannot be carried: VRRPv2
// has whole seconds 1..255, VRRPv3 centiseconds 1..4095.
func IntervalField(version int, d time.Duration) (uint16, error) {
	switch version {
	case 2:
		if d%time.Second != 0 || d < time.Second || d > 255*time.Second {
			return 0, fmt.Errorf("advert_int %v: VRRPv2 carries whole seconds from 1 to 255", d)
		}
		return uint16(d / time.Second), nil
	case 3:
		cs := d / (10 * time.Millisecond)
		if d%(10*time.Millisecond) != 0 || cs < 1 || cs > 4095 {
			return 0, fmt.Errorf("advert_int %v: VRRPv3 carries centiseconds from 0.01 to 40.95 s", d)
		}
		return uint16(cs), nil
	}
	return 0, fmt.Errorf("version %d: VRRP versions are 2 and 3", version)
}

// DecodeError is a packet that cannot be accepted. Field names the wire
// field at fault; Reason is a short stable word used for drop counters.
type DecodeError struct {
	Field  string
	Reason string
	Detail string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("vrrp packet: field %s: %s", e.Field, e.Detail)
}

// Drop reasons, shared by the codec, the state machine and the driver's
// counters.
const (
	DropLength    = "length"     // truncated, too long, or address count does not fit
	DropVersion   = "version"    // not 2 or 3, or not the instance's version
	DropType      = "type"       // not an advertisement
	DropChecksum  = "checksum"   // bad checksum
	DropTTL       = "ttl"        // TTL / hop limit not 255
	DropVRID      = "vrid"       // no instance with this VRID on the interface
	DropAuthType  = "auth_type"  // auth type differs from ours, or unknown
	DropAuth      = "auth"       // wrong password
	DropInterval  = "interval"   // VRRPv2 advert_int differs from ours
	DropAddrList  = "addr_list"  // VIP count or list differs from ours
	DropFamily    = "family"     // address family of the addresses is wrong
	DropMulticast = "multicast"  // unicast received while multicasting or vice versa
	DropPeer      = "peer"       // unicast source not among unicast_peer
	DropOwnPacket = "own_packet" // our own advert looped back
)

func decodeErr(field, reason, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// DecodeOptions tune checksum verification.
type DecodeOptions struct {
	// V3ChecksumAsV2 verifies VRRPv3 checksums without the pseudo-header,
	// as some old implementations compute them.
	V3ChecksumAsV2 bool
	// SkipChecksum skips verification (IPv6 sockets with IPV6_CHECKSUM set
	// have had the kernel verify it already).
	SkipChecksum bool
	// AuthTrailer accepts an auth_hmac trailer (an instance with auth_hmac):
	// a message exactly AuthTrailerLen bytes longer than its addresses
	// need carries one. Without it such a message is too long, as for
	// keepalived without auth_hmac.
	AuthTrailer bool
}

// Decode parses a VRRP message (the IP payload). src and dst are the IP
// header's addresses: they give the address family and, for VRRPv3, the
// pseudo-header of the checksum. Every error is a *DecodeError naming the
// field.
func Decode(b []byte, src, dst netip.Addr, opt DecodeOptions) (*Packet, error) {
	if len(b) < 8 {
		return nil, decodeErr("header", DropLength, "message is %d bytes, shorter than the 8-byte header", len(b))
	}
	p := &Packet{
		Version:  int(b[0] >> 4),
		Type:     int(b[0] & 0x0f),
		VRID:     b[1],
		Priority: b[2],
		Checksum: binary.BigEndian.Uint16(b[6:8]),
	}
	count := int(b[3])
	if p.Version != 2 && p.Version != 3 {
		return nil, decodeErr("version", DropVersion, "version %d, want 2 or 3", p.Version)
	}
	if p.Type != TypeAdvertisement {
		return nil, decodeErr("type", DropType, "type %d, want 1 (advertisement)", p.Type)
	}
	v6 := src.Is6() && !src.Is4In6()
	alen := 4
	if v6 {
		alen = 16
		if p.Version == 2 {
			return nil, decodeErr("version", DropVersion, "VRRPv2 over IPv6 does not exist (RFC 3768 is IPv4 only)")
		}
	}
	want := 8 + count*alen
	if p.Version == 2 {
		want += 8
	}
	if opt.AuthTrailer && len(b) == want+AuthTrailerLen {
		p.Trailer = decodeTrailer(b[want:])
	} else if len(b) != want {
		return nil, decodeErr("count_ip_addrs", DropLength, "%d addresses need a %d-byte message, got %d bytes", count, want, len(b))
	}
	// The IPv4 checksum covers the VRRP message, not the trailer; the
	// IPv6 one (the kernel's) the whole payload.
	sumLen := want
	if v6 {
		sumLen = len(b)
	}
	if p.Version == 2 {
		p.AuthType = b[4]
		p.AdvertInt = uint16(b[5])
		copy(p.AuthData[:], b[8+count*4:])
	} else {
		// The top 4 bits are reserved: zero on send, ignored on receipt
		// (RFC 5798 5.2.5).
		p.AdvertInt = binary.BigEndian.Uint16(b[4:6]) & 0x0fff
	}
	p.Addrs = make([]netip.Addr, 0, count)
	for i := 0; i < count; i++ {
		off := 8 + i*alen
		var a netip.Addr
		if v6 {
			a = netip.AddrFrom16([16]byte(b[off : off+16]))
		} else {
			a = netip.AddrFrom4([4]byte(b[off : off+4]))
		}
		p.Addrs = append(p.Addrs, a)
	}
	if !opt.SkipChecksum {
		var sum uint16
		sb := b[:sumLen]
		if p.Version == 3 && !opt.V3ChecksumAsV2 {
			sum = checksum(pseudoHeader(src, dst, len(sb)), sb)
		} else {
			sum = checksum(nil, sb)
		}
		if sum != 0 {
			c := make([]byte, len(sb))
			copy(c, sb)
			c[6], c[7] = 0, 0
			var expect uint16
			if p.Version == 3 && !opt.V3ChecksumAsV2 {
				expect = checksum(pseudoHeader(src, dst, len(c)), c)
			} else {
				expect = checksum(nil, c)
			}
			return nil, decodeErr("checksum", DropChecksum, "checksum 0x%04x, computed 0x%04x", p.Checksum, expect)
		}
	}
	return p, nil
}

// EncodeOptions tune checksum computation and signing.
type EncodeOptions struct {
	V3ChecksumAsV2 bool
	// AuthKey signs the packet's Trailer (its HMAC field is computed);
	// nil leaves the HMAC as the Trailer has it.
	AuthKey []byte
}

// Marshal encodes the packet and fills its checksum. src and dst are the
// addresses of the IP header that will carry it (VRRPv3's pseudo-header;
// ignored by VRRPv2).
func (p *Packet) Marshal(src, dst netip.Addr, opt EncodeOptions) ([]byte, error) {
	if p.Version != 2 && p.Version != 3 {
		return nil, fmt.Errorf("vrrp packet: field version: %d, want 2 or 3", p.Version)
	}
	if len(p.Addrs) > 255 {
		return nil, fmt.Errorf("vrrp packet: field count_ip_addrs: %d addresses, at most 255", len(p.Addrs))
	}
	v6 := src.Is6() && !src.Is4In6()
	alen := 4
	if v6 {
		alen = 16
		if p.Version == 2 {
			return nil, fmt.Errorf("vrrp packet: field version: VRRPv2 cannot run over IPv6")
		}
	}
	n := 8 + len(p.Addrs)*alen
	if p.Version == 2 {
		n += 8
	}
	total := n
	if p.Trailer != nil {
		total += AuthTrailerLen
	}
	b := make([]byte, total)
	typ := p.Type
	if typ == 0 {
		typ = TypeAdvertisement
	}
	b[0] = byte(p.Version<<4) | byte(typ&0x0f)
	b[1] = p.VRID
	b[2] = p.Priority
	b[3] = byte(len(p.Addrs))
	if p.Version == 2 {
		if p.AdvertInt > 255 {
			return nil, fmt.Errorf("vrrp packet: field adver_int: %d s does not fit VRRPv2's 8 bits", p.AdvertInt)
		}
		b[4] = p.AuthType
		b[5] = byte(p.AdvertInt)
	} else {
		if p.AdvertInt > 0x0fff {
			return nil, fmt.Errorf("vrrp packet: field max_adver_int: %d cs does not fit 12 bits", p.AdvertInt)
		}
		binary.BigEndian.PutUint16(b[4:6], p.AdvertInt)
	}
	for i, a := range p.Addrs {
		off := 8 + i*alen
		switch {
		case v6 && a.Is6():
			s := a.As16()
			copy(b[off:], s[:])
		case !v6 && a.Is4():
			s := a.As4()
			copy(b[off:], s[:])
		default:
			return nil, fmt.Errorf("vrrp packet: field ip_address[%d]: %v is not of the advert's address family", i, a)
		}
	}
	if p.Version == 2 {
		copy(b[8+len(p.Addrs)*4:], p.AuthData[:])
	}
	if p.Trailer != nil {
		p.Trailer.put(b[n:])
		if opt.AuthKey != nil {
			p.Trailer.HMAC = AuthDigest(opt.AuthKey, src, b)
			copy(b[total-hmacTruncLen:], p.Trailer.HMAC[:])
		}
	}
	sb := b[:n]
	if v6 {
		sb = b
	}
	if p.Version == 3 && !opt.V3ChecksumAsV2 {
		p.Checksum = checksum(pseudoHeader(src, dst, len(sb)), sb)
	} else {
		p.Checksum = checksum(nil, sb)
	}
	binary.BigEndian.PutUint16(b[6:8], p.Checksum)
	return b, nil
}

// pseudoHeader returns the IPv4 (RFC 768 style) or IPv6 (RFC 8200 8.1)
// pseudo-header VRRPv3 sums (RFC 5798 5.2.8).
func pseudoHeader(src, dst netip.Addr, length int) []byte {
	if src.Is4() || src.Is4In6() {
		s, d := src.Unmap().As4(), dst.Unmap().As4()
		h := make([]byte, 12)
		copy(h[0:4], s[:])
		copy(h[4:8], d[:])
		h[9] = IPProto
		binary.BigEndian.PutUint16(h[10:12], uint16(length))
		return h
	}
	s, d := src.As16(), dst.As16()
	h := make([]byte, 40)
	copy(h[0:16], s[:])
	copy(h[16:32], d[:])
	binary.BigEndian.PutUint32(h[32:36], uint32(length))
	h[39] = IPProto
	return h
}

// checksum is the Internet checksum (RFC 1071) of pre followed by b.
// Summing a message that contains its correct checksum yields 0.
func checksum(pre, b []byte) uint16 {
	var s uint32
	add := func(x []byte) {
		for len(x) >= 2 {
			s += uint32(x[0])<<8 | uint32(x[1])
			x = x[2:]
		}
		if len(x) == 1 {
			s += uint32(x[0]) << 8
		}
	}
	add(pre) // pseudo-headers have even length
	add(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
