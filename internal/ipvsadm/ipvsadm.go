// Package ipvsadm prints virtual services and connections exactly as
// ipvsadm 1.31 prints them, so operators' eyes, scripts and monitoring
// (awk over `ipvsadm -L -n`) keep working when vipd runs the data plane.
//
// The formats were taken from the ipvsadm 1.31 binary Debian ships (its
// format strings and the order in which it prints fields) and written down
// here from scratch: header lines, column widths, scheduler flags, IPv6
// brackets, the K/M/G/T scaling of --stats and --rate, FWM services, the
// -c connection table with mm:ss expiry, and ipvsadm's sort order (it sorts
// services and destinations unless --nosort, with its integer-overflowing
// comparison, which this package reproduces).
//
// Names are never resolved: -L prints what -L -n prints (see Options).
package ipvsadm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Options select the listing, like ipvsadm's list options. At most one of
// Stats, Rate, Thresholds, PersistentConn and TunInfo takes effect; when
// several are set, ipvsadm's precedence applies (Stats, Rate, Thresholds,
// PersistentConn, TunInfo).
type Options struct {
	// Numeric is -n. vipd never resolves addresses or ports to names, so
	// the output is the numeric one either way; the field exists so
	// callers can pass the user's flags through.
	Numeric bool

	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	Exact          bool // --exact: no K/M/G/T scaling
	NoSort         bool // --nosort: keep the caller's order

	// KernelVersion and ConnTabSize fill the first line, "IP Virtual
	// Server version 1.2.1 (size=4096)". Empty and zero mean those
	// defaults, the values of every current kernel built with the
	// default CONFIG_IP_VS_TAB_BITS; callers listing a kernel's table
	// pass what it reports (IPVS_CMD_GET_INFO).
	KernelVersion string
	ConnTabSize   int
	// NoConnTable prints size=0: the data plane has no connection hash
	// table (vipd's proxy), so no size is claimed.
	NoConnTable bool
}

// ErrNoService is returned by ListService when the service is not in the
// list (ipvsadm prints "No such service" then).
var ErrNoService = errors.New("no such service")

// List prints what `ipvsadm -L -n` prints (with the options' variants):
// the version line, the title and every service with its destinations.
func List(w io.Writer, svcs []lvs.ServiceStatus, opt Options) error {
	var b bytes.Buffer
	v := opt.KernelVersion
	if v == "" {
		v = "1.2.1"
	}
	size := opt.ConnTabSize
	switch {
	case opt.NoConnTable:
		size = 0
	case size == 0:
		size = 4096
	}
	fmt.Fprintf(&b, "IP Virtual Server version %s (size=%d)\n", v, size)
	list := svcs
	if !opt.NoSort {
		list = append([]lvs.ServiceStatus(nil), svcs...)
		mergeSort(list, compareServices)
	}
	title(&b, opt)
	for i := range list {
		service(&b, &list[i], opt)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ListService prints what `ipvsadm -L -n -t VIP:PORT` (or -u, -f) prints
// for one service: the title and that service, without the version line.
func ListService(w io.Writer, svcs []lvs.ServiceStatus, key lvs.ServiceKey, opt Options) error {
	for i := range svcs {
		if sameKey(svcs[i].Key, key) {
			var b bytes.Buffer
			title(&b, opt)
			service(&b, &svcs[i], opt)
			_, err := w.Write(b.Bytes())
			return err
		}
	}
	return fmt.Errorf("ipvsadm: %s: %w", key, ErrNoService)
}

// Timeout prints what `ipvsadm -L --timeout` prints. Zero fields are
// printed as the kernel defaults, which is what the kernel reports for
// them.
func Timeout(w io.Writer, t lvs.Timeouts) error {
	t = t.WithDefaults()
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n",
		int(t.TCP/time.Second), int(t.TCPFin/time.Second), int(t.UDP/time.Second))
	return err
}

// Conns prints what `ipvsadm -L -n -c` prints, in the given order (the
// kernel's hash-table order; ipvsadm does not sort connections). With
// opt.PersistentConn the title has the persistence-engine columns, as
// `ipvsadm -L -n -c --persistent-conn` has; vipd has no persistence
// engines, so the lines are the plain ones, as ipvsadm prints them for
// entries without engine data.
func Conns(w io.Writer, conns []lvs.ConnEntry, opt Options) error {
	var b bytes.Buffer
	b.WriteString("IPVS connection entries\n")
	if opt.PersistentConn {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(&b, "pro expire %-11s %-18s %-18s %s\n",
			"state", "source", "virtual", "destination")
	}
	for _, c := range conns {
		secs := int64(c.Expire / time.Second)
		if secs < 0 {
			secs = 0
		}
		expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		fmt.Fprintf(&b, "%-3s %-6s %-11s %-18s %-18s %s\n",
			connProto(c.Proto), expire, c.State,
			addrPort(c.Client), addrPort(c.Virtual), addrPort(c.Dest))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// title prints the column headings (ipvsadm's print_title).
func title(b *bytes.Buffer, opt Options) {
	const local = "Prot LocalAddress:Port"
	switch {
	case opt.Stats:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			local, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case opt.Rate:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			local, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case opt.Thresholds:
		fmt.Fprintf(b, "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			local, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	case opt.PersistentConn:
		fmt.Fprintf(b, "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			local, "Weight", "PersistConn", "ActiveConn", "InActConn")
	case opt.TunInfo:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		b.WriteString("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// service prints one service line and its destinations (ipvsadm's
// print_service_entry).
func service(b *bytes.Buffer, s *lvs.ServiceStatus, opt Options) {
	name := serviceName(s.Key)
	switch {
	case opt.Stats:
		fmt.Fprintf(b, "%-33s", name)
		largeNums(b, opt.Exact, s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes)
	case opt.Rate:
		fmt.Fprintf(b, "%-33s", name)
		largeNums(b, opt.Exact, s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS, s.Rates.InBPS, s.Rates.OutBPS)
	default:
		fmt.Fprintf(b, "%s %s", name, s.Scheduler)
		if s.Flags&(lvs.FlagSched1|lvs.FlagSched2|lvs.FlagSched3) != 0 {
			b.WriteString(" (")
			b.WriteString(schedFlags(s.Scheduler, s.Flags))
			b.WriteByte(')')
		}
		if s.Flags&lvs.FlagPersistent != 0 || s.Persistence > 0 {
			fmt.Fprintf(b, " persistent %d", uint32(s.Persistence/time.Second))
			if isIPv6(s.Key) {
				if s.PersistMask != 0 && s.PersistMask != 128 {
					fmt.Fprintf(b, " mask %d", s.PersistMask)
				}
			} else if s.PersistMask != 0 && s.PersistMask != 32 {
				b.WriteString(" mask ")
				b.WriteString(net.IP(net.CIDRMask(s.PersistMask, 32)).String())
			}
		}
		if s.Flags&lvs.FlagOnePacket != 0 {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')

	dests := s.Dests
	if !opt.NoSort {
		dests = append([]lvs.DestStatus(nil), s.Dests...)
		mergeSort(dests, compareDests)
	}
	for i := range dests {
		d := &dests[i]
		dname := addrPort(d.Addr)
		if !d.Addr.Addr().Is6() && len(dname) > 28 {
			dname = dname[:28]
		}
		switch {
		case opt.Stats:
			fmt.Fprintf(b, "  -> %-28s", dname)
			largeNums(b, opt.Exact, d.Stats.Conns, d.Stats.InPkts, d.Stats.OutPkts, d.Stats.InBytes, d.Stats.OutBytes)
			b.WriteByte('\n')
		case opt.Rate:
			// ipvsadm prints the packet rates unscaled and only the
			// byte rates through its K/M scaling.
			fmt.Fprintf(b, "  -> %-28s %8d %8d %8d", dname, d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS)
			largeNums(b, opt.Exact, d.Rates.InBPS, d.Rates.OutBPS)
			b.WriteByte('\n')
		case opt.Thresholds:
			fmt.Fprintf(b, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname,
				uint32(d.UThreshold), uint32(d.LThreshold), uint32(d.ActiveConns), uint32(d.InactiveConns))
		case opt.PersistentConn:
			fmt.Fprintf(b, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname,
				uint32(d.Weight), uint32(d.PersistConns), uint32(d.ActiveConns), uint32(d.InactiveConns))
		case opt.TunInfo:
			fmt.Fprintf(b, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname,
				forwardName(d.Forward), tunnelInfo(&d.Destination), int32(d.Weight),
				uint32(d.ActiveConns), uint32(d.InactiveConns))
		default:
			fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname,
				forwardName(d.Forward), int32(d.Weight), uint32(d.ActiveConns), uint32(d.InactiveConns))
		}
	}
}

// serviceName is the first column of a service line: "TCP  1.2.3.4:80",
// "FWM  7", "FWM  7 IPv6". ipvsadm cuts IPv4 names at 33 characters.
func serviceName(k lvs.ServiceKey) string {
	if k.FWMark != 0 {
		if k.IPv6 {
			return fmt.Sprintf("FWM  %d IPv6", int32(k.FWMark))
		}
		return fmt.Sprintf("FWM  %d", int32(k.FWMark))
	}
	name := fmt.Sprintf("%-4s %s", protoName(k.Proto), addrPort(k.Addr))
	if !k.Addr.Addr().Is6() && len(name) > 33 {
		name = name[:33]
	}
	return name
}

// protoName is ipvsadm's name for a service protocol.
func protoName(p lvs.Protocol) string {
	switch p {
	case lvs.TCP, lvs.UDP, lvs.SCTP:
		return p.String()
	}
	return "?"
}

// connProto is the kernel's name for a connection's protocol, which
// /proc/net/ip_vs_conn carries and ipvsadm prints as it is.
func connProto(p lvs.Protocol) string {
	switch p {
	case 0:
		return "IP"
	case lvs.TCP, lvs.UDP, lvs.SCTP:
		return p.String()
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return "IP_" + strconv.Itoa(int(p))
}

// forwardName is ipvsadm's Forward column; ipvsadm has no name for a
// bypass destination and printf prints "(null)" for it.
func forwardName(f lvs.Forward) string {
	switch f {
	case lvs.Masq:
		return "Masq"
	case lvs.Local:
		return "Local"
	case lvs.Tunnel:
		return "Tunnel"
	case lvs.Route:
		return "Route"
	}
	return "(null)"
}

// tunnelInfo is the TunnelInfo column of --tun-info: "ipip",
// "gue:PORT:FLAGS", "gre:FLAGS" for tunnel destinations, "n/a" otherwise.
func tunnelInfo(d *lvs.Destination) string {
	if d.Forward != lvs.Tunnel {
		return "n/a"
	}
	csum := "?"
	switch d.TunnelCsum {
	case 0:
		csum = "-c"
	case 1:
		csum = "+c"
	case 2:
		csum = "r+c"
	}
	var s string
	switch d.Tunnel {
	case lvs.TunnelIPIP:
		s = "ipip"
	case lvs.TunnelGUE:
		s = fmt.Sprintf("gue:%d:%s", d.TunnelPort, csum)
	case lvs.TunnelGRE:
		s = "gre:" + csum
	default:
		return "n/a"
	}
	if len(s) > 15 { // ipvsadm formats into a 16-byte buffer
		s = s[:15]
	}
	return s
}

// schedFlags lists the scheduler flags the way ipvsadm names them for the
// scheduler: sh-fallback/sh-port for sh, mh-fallback/mh-port for mh (whose
// third flag ipvsadm does not show), flag-1..3 for the others.
func schedFlags(sched string, f lvs.SchedFlags) string {
	var s string
	switch sched {
	case "sh", "mh":
		if f&lvs.FlagSched1 != 0 {
			s += sched + "-fallback,"
		}
		if f&lvs.FlagSched2 != 0 {
			s += sched + "-port,"
		}
	default:
		if f&lvs.FlagSched1 != 0 {
			s += "flag-1,"
		}
		if f&lvs.FlagSched2 != 0 {
			s += "flag-2,"
		}
		if f&lvs.FlagSched3 != 0 {
			s += "flag-3,"
		}
	}
	if s != "" {
		s = s[:len(s)-1]
	}
	return s
}

// largeNums prints counters with ipvsadm's print_largenum: right-aligned
// in 9 columns, scaled to K, M, G or T when they would not fit in 8
// digits, unless exact.
func largeNums(b *bytes.Buffer, exact bool, vals ...uint64) {
	for _, v := range vals {
		if exact {
			s := strconv.FormatUint(v, 10)
			width := len(s)
			if width < 8 {
				width = 8
			}
			fmt.Fprintf(b, "%*s", width+1, s)
			continue
		}
		switch {
		case v < 100000000:
			fmt.Fprintf(b, "%9d", v)
		case v < 1000000000:
			fmt.Fprintf(b, "%8dK", v/1000)
		case v < 100000000000:
			fmt.Fprintf(b, "%8dM", v/1000000)
		case v < 100000000000000:
			fmt.Fprintf(b, "%8dG", v/1000000000)
		default:
			fmt.Fprintf(b, "%8dT", v/1000000000000)
		}
	}
}

// addrPort formats an address and port as ipvsadm -n does: "1.2.3.4:80",
// "[2001:db8::1]:80", with glibc's inet_ntop spelling of IPv6 addresses.
func addrPort(ap netip.AddrPort) string {
	a := ap.Addr()
	if a.Is4() {
		return a.String() + ":" + strconv.Itoa(int(ap.Port()))
	}
	if !a.IsValid() {
		return "0.0.0.0:" + strconv.Itoa(int(ap.Port()))
	}
	return "[" + ntop6(a.As16()) + "]:" + strconv.Itoa(int(ap.Port()))
}

// ntop6 spells an IPv6 address as glibc's inet_ntop does: the longest run
// of two or more zero groups (the first of equal runs) becomes "::", and
// IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d with a
// non-zero seventh group) addresses end in dotted quad.
func ntop6(a [16]byte) string {
	var w [8]uint16
	for i := range w {
		w[i] = uint16(a[2*i])<<8 | uint16(a[2*i+1])
	}
	bestBase, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			bestBase, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		bestBase = -1
	}
	var b []byte
	for i := 0; i < 8; i++ {
		if bestBase >= 0 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				b = append(b, ':')
			}
			continue
		}
		if i != 0 {
			b = append(b, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			b = append(b, netip.AddrFrom4([4]byte{a[12], a[13], a[14], a[15]}).String()...)
			break
		}
		b = strconv.AppendUint(b, uint64(w[i]), 16)
	}
	if bestBase >= 0 && bestBase+bestLen == 8 {
		b = append(b, ':')
	}
	return string(b)
}

func isIPv6(k lvs.ServiceKey) bool {
	if k.FWMark != 0 {
		return k.IPv6
	}
	return k.Addr.Addr().Is6()
}

func sameKey(a, b lvs.ServiceKey) bool {
	if a.FWMark != 0 || b.FWMark != 0 {
		return a.FWMark == b.FWMark && a.IPv6 == b.IPv6
	}
	return a.Proto == b.Proto && a.Addr == b.Addr
}
