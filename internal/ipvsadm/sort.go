package ipvsadm

import (
	"net/netip"

	"github.com/vipd/vipd/internal/lvs"
)

// ipvsadm sorts with qsort(3) and comparison functions that subtract
// unsigned 32-bit values and return the difference as a signed int. When
// two addresses differ by 2^31 or more the sign flips: 10.0.0.1 sorts
// after 198.18.0.1. To print the same order, the comparisons below make
// the same subtraction, and mergeSort is glibc's qsort algorithm (a
// top-down merge sort that takes from the left run on ties), which
// matters because such a comparison is not a consistent order.

const (
	afInet  = 2
	afInet6 = 10
)

func diff32(a, b uint32) int { return int(int32(a - b)) }

// unionWords is an address as the kernel's union nf_inet_addr holds it
// (IPv4 in the first four bytes, the rest zero), as four host-order
// 32-bit words; ipvsadm compares the first word for IPv4 and all four for
// IPv6.
func unionWords(a netip.Addr) [4]uint32 {
	var u [16]byte
	if a.Is4() {
		v := a.As4()
		copy(u[:], v[:])
	} else if a.IsValid() {
		u = a.As16()
	}
	var w [4]uint32
	for i := range w {
		w[i] = uint32(u[4*i])<<24 | uint32(u[4*i+1])<<16 | uint32(u[4*i+2])<<8 | uint32(u[4*i+3])
	}
	return w
}

func compareAddrs(a, b [4]uint32, v6 bool) int {
	if !v6 {
		return diff32(a[0], b[0])
	}
	r := 0
	for i := 0; r == 0 && i < 4; i++ {
		r = diff32(a[i], b[i])
	}
	return r
}

func serviceAF(k lvs.ServiceKey) int {
	if isIPv6(k) {
		return afInet6
	}
	return afInet
}

// compareServices is libipvs's ipvs_cmp_services: fwmark, family,
// protocol, address, port. A fwmark service has no address or port; for
// fwmark services the protocol the kernel reports is the one the service
// was created with, which vipd's model keeps in Proto as well.
func compareServices(x, y *lvs.ServiceStatus) int {
	if r := diff32(x.Key.FWMark, y.Key.FWMark); r != 0 {
		return r
	}
	afx, afy := serviceAF(x.Key), serviceAF(y.Key)
	if r := afx - afy; r != 0 {
		return r
	}
	if r := int(x.Key.Proto) - int(y.Key.Proto); r != 0 {
		return r
	}
	var ax, ay netip.Addr
	var px, py uint16
	if x.Key.FWMark == 0 {
		ax, px = x.Key.Addr.Addr(), x.Key.Addr.Port()
	}
	if y.Key.FWMark == 0 {
		ay, py = y.Key.Addr.Addr(), y.Key.Addr.Port()
	}
	if r := compareAddrs(unionWords(ax), unionWords(ay), afx == afInet6); r != 0 {
		return r
	}
	return int(px) - int(py)
}

// compareDests is libipvs's ipvs_cmp_dests: address (compared by the
// first destination's family), then port.
func compareDests(x, y *lvs.DestStatus) int {
	v6 := x.Addr.Addr().Is6()
	if r := compareAddrs(unionWords(x.Addr.Addr()), unionWords(y.Addr.Addr()), v6); r != 0 {
		return r
	}
	return int(x.Addr.Port()) - int(y.Addr.Port())
}

// mergeSort sorts s in place the way glibc's qsort does when it can
// allocate its buffer: split at n/2, sort both halves, merge taking the
// left element when cmp <= 0.
func mergeSort[T any](s []T, cmp func(a, b *T) int) {
	if len(s) < 2 {
		return
	}
	tmp := make([]T, len(s))
	msort(s, tmp, cmp)
}

func msort[T any](s, tmp []T, cmp func(a, b *T) int) {
	n := len(s)
	if n <= 1 {
		return
	}
	n1 := n / 2
	left, right := s[:n1], s[n1:]
	msort(left, tmp, cmp)
	msort(right, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(left) && j < len(right) {
		if cmp(&left[i], &right[j]) <= 0 {
			tmp[k] = left[i]
			i++
		} else {
			tmp[k] = right[j]
			j++
		}
		k++
	}
	for i < len(left) {
		tmp[k] = left[i]
		i++
		k++
	}
	// What is left of the right run is already in place.
	copy(s, tmp[:k])
}
