// Package lvs models Linux Virtual Server objects (services, destinations,
// connections, counters) and implements the kernel's schedulers as pure
// functions of a destination snapshot, so the userspace data plane and the
// kernel IPVS data plane make the same choices.
//
// The types here are the contract between the daemon (which computes the
// desired services from configuration and health checks) and the data
// planes (which reconcile themselves to that set).
package lvs

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol is an IP protocol number as IPVS uses it.
type Protocol uint8

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns the name ipvsadm prints ("TCP", "UDP", "SCTP").
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("proto%d", uint8(p))
}

// Forward is a destination's forwarding method (keepalived's lb_kind).
type Forward uint8

// Forwarding methods, named as ipvsadm prints them.
const (
	Masq   Forward = iota // NAT
	Route                 // DR, direct routing
	Tunnel                // TUN, IP-in-IP (or GUE/GRE)
	Local
	Bypass
)

// String returns the name ipvsadm prints in its Forward column.
func (f Forward) String() string {
	switch f {
	case Masq:
		return "Masq"
	case Route:
		return "Route"
	case Tunnel:
		return "Tunnel"
	case Local:
		return "Local"
	case Bypass:
		return "Bypass"
	}
	return fmt.Sprintf("fwd%d", uint8(f))
}

// LBKind returns keepalived's lb_kind name (NAT, DR, TUN), for messages
// that speak of the configuration; other methods have none and give their
// String.
func (f Forward) LBKind() string {
	if k, ok := lbKinds[f]; ok {
		return k
	}
	return f.String()
}

var lbKinds = map[Forward]string{Masq: "NAT", Route: "DR", Tunnel: "TUN"}

// TunnelType is the encapsulation of a Tunnel destination.
type TunnelType uint8

// Tunnel encapsulations the kernel supports (IP_VS_CONN_F_TUNNEL_TYPE_*).
const (
	TunnelIPIP TunnelType = iota
	TunnelGUE
	TunnelGRE
)

// SchedFlags are the scheduler flags ipvsadm's -b sets (flag-1..3) and the
// one-packet flag.
type SchedFlags uint32

// Scheduler flags, with the kernel's bit values (IP_VS_SVC_F_*).
const (
	FlagPersistent SchedFlags = 0x0001
	FlagHashed     SchedFlags = 0x0002
	FlagOnePacket  SchedFlags = 0x0004 // ops
	FlagSched1     SchedFlags = 0x0008 // sh-fallback / mh-fallback
	FlagSched2     SchedFlags = 0x0010 // sh-port / mh-port
	FlagSched3     SchedFlags = 0x0020
)

// Aliases for the scheduler-specific meaning of the generic flag bits.
const (
	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2
	FlagMHFallback = FlagSched1
	FlagMHPort     = FlagSched2
)

// Timeouts are the idle timeouts of connection entries (ipvsadm --set,
// keepalived's lvs_timeouts). Zero means the kernel default.
type Timeouts struct {
	TCP    time.Duration // established TCP, default 900 s
	TCPFin time.Duration // after FIN, default 120 s
	UDP    time.Duration // default 300 s
}

// Default timeouts of the kernel.
var DefaultTimeouts = Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}

// WithDefaults fills zero fields from DefaultTimeouts.
func (t Timeouts) WithDefaults() Timeouts {
	if t.TCP == 0 {
		t.TCP = DefaultTimeouts.TCP
	}
	if t.TCPFin == 0 {
		t.TCPFin = DefaultTimeouts.TCPFin
	}
	if t.UDP == 0 {
		t.UDP = DefaultTimeouts.UDP
	}
	return t
}

// ServiceKey identifies a virtual service as IPVS does: either protocol,
// address and port, or a firewall mark (with its address family).
type ServiceKey struct {
	Proto  Protocol
	Addr   netip.AddrPort // zero when FWMark is set
	FWMark uint32
	IPv6   bool // family of a fwmark service
}

// String formats the key as ipvsadm's -L -n does ("TCP  1.2.3.4:80" or
// "FWM  1").
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d", k.FWMark)
	}
	return fmt.Sprintf("%s %s", k.Proto, k.Addr)
}

// Service is one desired virtual service: what the daemon asks a data plane
// to run. Destinations are listed in configuration order; weights are the
// effective weights after health checks (0 = quiesced: no new connections,
// existing ones untouched). A destination that is absent is removed.
type Service struct {
	Key          ServiceKey
	Scheduler    string // rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos
	Flags        SchedFlags
	Persistence  time.Duration // 0: not persistent
	PersistMask  int           // persistence_granularity as a prefix length; 0 means unset (per client: 32 / 128)
	Timeouts     Timeouts
	Destinations []Destination

	// Proxy data plane only.
	ConnectTimeout time.Duration // dialing a destination; 0 = 5 s
	ProxyProtocol  int           // 0 none, 1 or 2: PROXY protocol version sent to destinations
}

// Destination is one desired real server of a Service.
type Destination struct {
	Addr       netip.AddrPort
	Weight     int
	Forward    Forward
	Tunnel     TunnelType
	TunnelPort uint16 // GUE port
	TunnelCsum uint8
	UThreshold int // 0 = unlimited
	LThreshold int
}

// Stats are IPVS's cumulative counters (ip_vs_stats_user).
type Stats struct {
	Conns    uint64
	InPkts   uint64
	OutPkts  uint64
	InBytes  uint64
	OutBytes uint64
}

// Rates are IPVS's estimated rates per second (ip_vs_estimator): the kernel
// samples every 2 s and smooths with a 1/4 weight for cps/pps and bps.
type Rates struct {
	CPS    uint64
	InPPS  uint64
	OutPPS uint64
	InBPS  uint64
	OutBPS uint64
}

// DestStatus is the observed state of a destination in a data plane.
type DestStatus struct {
	Destination
	ActiveConns   int
	InactiveConns int
	PersistConns  int
	Stats         Stats
	Rates         Rates
}

// ServiceStatus is the observed state of a service in a data plane: what
// `ipvsadm -L -n` (with --stats / --rate) shows.
type ServiceStatus struct {
	Service
	Dests []DestStatus // in the data plane's list order (what ipvsadm prints)
	Stats Stats
	Rates Rates
}

// ConnEntry is one entry of the connection table (`ipvsadm -L -n -c`).
type ConnEntry struct {
	Proto   Protocol
	Expire  time.Duration // time left before the entry expires
	State   string        // ESTABLISHED, FIN_WAIT, TIME_WAIT, UDP, NONE (templates), ...
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Dest    netip.AddrPort
	FWMark  uint32
}
