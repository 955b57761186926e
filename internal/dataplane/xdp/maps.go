package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Go mirrors of the BPF maps' keys and values (bpf/xdplb.c). Field order,
// sizes and explicit padding match the C structs byte for byte;
// TestLayout compares the sizes with the object's BTF.

// Limits compiled into the BPF object.
const (
	maxServices = 1024
	maxDestSlot = 16384
)

// svcFlagHashPort: mh-port, the client's port joins the hash.
const svcFlagHashPort = 1

// Indexes of the per-CPU reasons array.
const (
	reasonTX = iota
	reasonRedirect
	reasonNotIP
	reasonMalformed
	reasonFragment
	reasonNotL4
	reasonNoService
	reasonNoDest
	reasonFlowHit
	reasonFlowNew
	reasonTooBig
	reasonPersist
	reasonNotOurs
	reasonMax
)

// ReasonNames name the reasons counters in order, for metrics and tests.
var ReasonNames = [reasonMax]string{"tx", "redirect", "not_ip", "malformed", "fragment", "not_l4", "no_service", "no_dest", "flow_hit", "flow_new", "too_big", "persist", "not_ours"}

// svcKey is struct svc_key: the VIP (IPv4 mapped into IPv6), port and
// protocol.
type svcKey struct {
	Addr  [16]byte
	Port  [2]byte // network order
	Proto uint8
	_     uint8
}

// svcVal is struct svc_val.
type svcVal struct {
	ID         uint32
	Flags      uint32
	TCPTimeout uint32 // seconds
	UDPTimeout uint32
	Persist    uint32   // persistence_timeout, seconds; 0: not persistent
	Mask       [16]byte // persistence_granularity over the 16-byte address
}

// persistKey is struct persist_key: a persistence template's key.
type persistKey struct {
	Svc    uint32
	Client [16]byte // masked
}

// flowKey is struct flow_key: the 5-tuple of a client's packets.
type flowKey struct {
	Src   [16]byte
	Dst   [16]byte
	SPort [2]byte
	DPort [2]byte
	Proto uint8
	_     [3]uint8
}

// flowVal is struct flow_val.
type flowVal struct {
	Dest uint32
	Gen  uint32
	Seen uint64 // CLOCK_MONOTONIC ns
}

// destVal is struct dest_val: where a real server's frames go.
type destVal struct {
	DMAC    [6]byte
	SMAC    [6]byte
	Ifindex uint32
	Gen     uint32
	Svc     uint32
	Addr    [16]byte
	Port    [2]byte
	Live    uint8
	Tun     uint8    // tunNone (DR), tunIPIP or tunGUE
	SAddr   [16]byte // TUN: outer source
	MTU     uint16   // TUN: MTU of Ifindex
	GUEPort [2]byte  // TUN GUE: the real server's port, network order
}

// destVal.Tun values.
const (
	tunNone = 0
	tunIPIP = 1
	tunGUE  = 2
)

// counters is struct counters (per CPU).
type counters struct {
	Conns   uint64
	Packets uint64
	Bytes   uint64
}

func port16(p uint16) [2]byte {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return b
}

func addrPortOf(a [16]byte, p [2]byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), binary.BigEndian.Uint16(p[:]))
}

// persistMask is the 16-byte mask of a persistence granularity given as a
// prefix length of the service's family (0: one client, /32 or /128).
func persistMask(is4 bool, bits int) [16]byte {
	var m [16]byte
	if is4 {
		if bits <= 0 || bits > 32 {
			bits = 32
		}
		bits += 96
	} else if bits <= 0 || bits > 128 {
		bits = 128
	}
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}
