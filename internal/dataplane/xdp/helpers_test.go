package xdp

import (
	"net/netip"

	"github.com/vipd/vipd/internal/lvs"
)

type lvsService = lvs.Service

// newService is a DR service on key with one real server per weight,
// 198.18.0.(11+i) or 2001:db8::(11+i).
func newService(key netip.AddrPort, weights ...int) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: key}, Scheduler: "mh"}
	if key == vip6 {
		s.Key.Proto = lvs.UDP
	}
	for i, w := range weights {
		var a netip.Addr
		if key.Addr().Is4() {
			a = netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)})
		} else {
			b := netip.MustParseAddr("2001:db8::").As16()
			b[15] = byte(11 + i)
			a = netip.AddrFrom16(b)
		}
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: netip.AddrPortFrom(a, key.Port()), Weight: w, Forward: lvs.Route})
	}
	return s
}

func backendsOf(s lvs.Service) []Backend {
	var bs []Backend
	for _, d := range s.Destinations {
		bs = append(bs, Backend{Addr: d.Addr, Weight: d.Weight})
	}
	return bs
}
