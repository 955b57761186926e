package ipvs

import (
	"fmt"
	"net/netip"
	"time"

	cf "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/vipd/vipd/internal/lvs"
)

// Conversions between the lvs model and github.com/cloudflare/ipvs's
// netlink structures. The two number forwarding methods differently.

func family(ipv6 bool) cf.AddressFamily {
	if ipv6 {
		return cf.INET6
	}
	return cf.INET
}

// toKernelService is the full service for NEW/SET_SERVICE (or its key
// for the other commands: the kernel reads only what it needs).
func toKernelService(s lvs.Service) cf.Service {
	k := keyOf(s.Key)
	ks := cf.Service{
		Family:    family(k.ipv6),
		Scheduler: s.Scheduler,
		Flags:     cf.Flags(s.Flags &^ lvs.FlagHashed),
		Timeout:   uint32(s.Persistence / time.Second),
	}
	if k.fwmark != 0 {
		ks.FWMark = k.fwmark
	} else {
		ks.Address = k.addr.Addr()
		ks.Port = k.addr.Port()
		ks.Protocol = cf.Protocol(k.proto)
	}
	// The kernel requires a netmask in a full service: for IPv4 the mask,
	// for IPv6 the prefix length.
	bits := s.PersistMask
	if k.ipv6 {
		if bits == 0 {
			bits = 128
		}
		ks.Netmask = netmask.MaskFrom(bits, 128)
	} else {
		if bits == 0 {
			bits = 32
		}
		ks.Netmask = netmask.MaskFrom(bits, 32)
	}
	return ks
}

var fwdToKernel = map[lvs.Forward]cf.ForwardType{
	lvs.Masq:   cf.Masquerade,
	lvs.Route:  cf.DirectRoute,
	lvs.Tunnel: cf.Tunnel,
	lvs.Local:  cf.Local,
	lvs.Bypass: cf.Bypass,
}

func fwdFromKernel(f cf.ForwardType) lvs.Forward {
	for k, v := range fwdToKernel {
		if v == f {
			return k
		}
	}
	return lvs.Forward(0xff)
}

func toKernelDest(d lvs.Destination) cf.Destination {
	a := d.Addr.Addr().Unmap()
	return cf.Destination{
		Address:        a,
		Port:           d.Addr.Port(),
		Family:         family(a.Is6()),
		FwdMethod:      fwdToKernel[d.Forward],
		Weight:         uint32(d.Weight),
		UpperThreshold: uint32(d.UThreshold),
		LowerThreshold: uint32(d.LThreshold),
		TunnelType:     cf.TunnelType(d.Tunnel),
		TunnelPort:     d.TunnelPort,
		TunnelFlags:    cf.TunnelFlags(d.TunnelCsum),
	}
}

// fromKernelService converts a dumped service. The kernel's flags carry
// IP_VS_SVC_F_HASHED for every listed service; it is stripped, as ipvsadm
// does not show it either.
func fromKernelService(ks cf.ServiceExtended) (lvs.ServiceStatus, error) {
	var st lvs.ServiceStatus
	ipv6 := ks.Family == cf.INET6
	if ks.Family != cf.INET && ks.Family != cf.INET6 {
		return st, fmt.Errorf("service with address family %d", ks.Family)
	}
	if ks.FWMark != 0 {
		st.Key = lvs.ServiceKey{FWMark: ks.FWMark, IPv6: ipv6}
	} else {
		a := ks.Address.Unmap()
		st.Key = lvs.ServiceKey{Proto: lvs.Protocol(ks.Protocol), Addr: netip.AddrPortFrom(a, ks.Port), IPv6: a.Is6()}
	}
	st.Scheduler = ks.Scheduler
	st.Flags = lvs.SchedFlags(ks.Flags) &^ lvs.FlagHashed
	if st.Flags&lvs.FlagPersistent != 0 {
		st.Persistence = time.Duration(ks.Timeout) * time.Second
	}
	st.PersistMask = ks.Netmask.Bits()
	if st.PersistMask < 0 { // not a prefix (set by someone else): show it as full
		st.PersistMask = 0
	}
	stats := ks.Stats64
	if stats == (cf.Stats{}) {
		stats = ks.Stats
	}
	st.Stats, st.Rates = fromKernelStats(stats)
	return st, nil
}

func fromKernelDest(kd cf.DestinationExtended) lvs.DestStatus {
	d := lvs.DestStatus{
		Destination: lvs.Destination{
			Addr:       netip.AddrPortFrom(kd.Address.Unmap(), kd.Port),
			Weight:     int(int32(kd.Weight)),
			Forward:    fwdFromKernel(kd.FwdMethod),
			UThreshold: int(kd.UpperThreshold),
			LThreshold: int(kd.LowerThreshold),
		},
		ActiveConns:   int(kd.ActiveConnections),
		InactiveConns: int(kd.InactiveConnections),
		PersistConns:  int(kd.PersistentConnections),
	}
	if d.Forward == lvs.Tunnel {
		d.Tunnel = lvs.TunnelType(kd.TunnelType)
		d.TunnelPort = kd.TunnelPort
		d.TunnelCsum = uint8(kd.TunnelFlags)
	}
	stats := kd.Stats64
	if stats == (cf.Stats{}) {
		stats = kd.Stats
	}
	d.Stats, d.Rates = fromKernelStats(stats)
	return d
}

func fromKernelStats(s cf.Stats) (lvs.Stats, lvs.Rates) {
	return lvs.Stats{
			Conns:    s.Connections,
			InPkts:   s.IncomingPackets,
			OutPkts:  s.OutgoingPackets,
			InBytes:  s.IncomingBytes,
			OutBytes: s.OutgoingBytes,
		}, lvs.Rates{
			CPS:    s.ConnectionRate,
			InPPS:  s.IncomingPacketRate,
			OutPPS: s.OutgoingPacketRate,
			InBPS:  s.IncomingByteRate,
			OutBPS: s.OutgoingByteRate,
		}
}
