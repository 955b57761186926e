package ipvsadm

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// The expected outputs below were written by hand from ipvsadm 1.31's
// format strings ("  -> %-28s %-7s %-6d %-10u %-10u\n" and friends); each
// line is a separate literal so that the trailing blanks ipvsadm prints
// are visible.

func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcp(addr string) lvs.ServiceKey { return lvs.ServiceKey{Proto: lvs.TCP, Addr: ap(addr)} }

func dest(addr string, fwd lvs.Forward, weight, active, inactive int) lvs.DestStatus {
	return lvs.DestStatus{
		Destination:   lvs.Destination{Addr: ap(addr), Weight: weight, Forward: fwd},
		ActiveConns:   active,
		InactiveConns: inactive,
	}
}

func svc(key lvs.ServiceKey, sched string, dests ...lvs.DestStatus) lvs.ServiceStatus {
	return lvs.ServiceStatus{Service: lvs.Service{Key: key, Scheduler: sched}, Dests: dests}
}

// mixed is a set of services given out of ipvsadm's order, with every
// kind of service line.
func mixed() []lvs.ServiceStatus {
	https := svc(tcp("198.18.0.100:443"), "sh",
		dest("198.18.0.32:8443", lvs.Masq, 100, 7, 0),
		dest("198.18.0.31:8443", lvs.Masq, 100, 1234567, 0))
	https.Flags = lvs.FlagSHPort | lvs.FlagPersistent
	https.Persistence = 300 * time.Second
	https.PersistMask = 24

	dns := svc(lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.0.100:53")}, "rr",
		dest("198.18.0.21:53", lvs.Route, 1, 0, 25))
	dns.Flags = lvs.FlagOnePacket

	v6 := svc(tcp("[2001:db8::100]:80"), "rr",
		dest("[2001:db8::22]:80", lvs.Route, 1, 0, 0),
		dest("[2001:db8::21]:80", lvs.Tunnel, 5, 2, 1))
	v6.Persistence = 60 * time.Second
	v6.PersistMask = 64

	fwm7 := svc(lvs.ServiceKey{FWMark: 7}, "wlc", dest("198.18.0.21:0", lvs.Route, 1, 0, 0))
	fwm7.Flags = lvs.FlagSched1 | lvs.FlagSched3
	fwm3 := svc(lvs.ServiceKey{FWMark: 3, IPv6: true}, "wlc")

	web := svc(tcp("198.18.0.100:80"), "wrr",
		dest("198.18.0.22:80", lvs.Route, 2, 3, 12),
		dest("198.18.0.21:80", lvs.Route, 1, 0, 0),
		dest("198.18.0.23:80", lvs.Route, 0, 0, 4))
	return []lvs.ServiceStatus{fwm7, https, dns, v6, fwm3, web}
}

func TestList(t *testing.T) {
	overflow := []lvs.ServiceStatus{
		svc(tcp("10.0.0.1:80"), "rr"),
		svc(tcp("198.18.0.1:80"), "rr"),
	}
	stats := svc(tcp("198.18.0.100:80"), "wlc",
		lvs.DestStatus{
			Destination: lvs.Destination{Addr: ap("198.18.0.21:80")},
			Stats:       lvs.Stats{Conns: 12, InPkts: 345, OutPkts: 0, InBytes: 99999999, OutBytes: 100000000},
		})
	stats.Stats = lvs.Stats{Conns: 99999999, InPkts: 100000000, OutPkts: 12345678901, InBytes: 123456789012345, OutBytes: 123456789012345678}
	rate := svc(tcp("198.18.0.100:80"), "wlc",
		lvs.DestStatus{
			Destination: lvs.Destination{Addr: ap("198.18.0.21:80")},
			Rates:       lvs.Rates{CPS: 123456789, InPPS: 5, OutPPS: 6, InBPS: 1500000000, OutBPS: 7},
		})
	rate.Rates = lvs.Rates{CPS: 3, InPPS: 40, OutPPS: 41, InBPS: 123456789, OutBPS: 2}
	thresh := svc(tcp("198.18.0.100:80"), "lc", lvs.DestStatus{
		Destination:   lvs.Destination{Addr: ap("198.18.0.21:80"), Weight: 3, UThreshold: 1000, LThreshold: 800},
		ActiveConns:   5,
		InactiveConns: 6,
		PersistConns:  2,
	})
	tun := svc(tcp("198.18.0.100:80"), "rr",
		dest("198.18.0.21:80", lvs.Route, 1, 0, 0),
		lvs.DestStatus{Destination: lvs.Destination{Addr: ap("198.18.0.22:80"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6080, TunnelCsum: 2}},
		lvs.DestStatus{Destination: lvs.Destination{Addr: ap("198.18.0.23:80"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelIPIP}},
		lvs.DestStatus{Destination: lvs.Destination{Addr: ap("198.18.0.24:80"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGRE, TunnelCsum: 1}},
	)

	tests := []struct {
		name string
		svcs []lvs.ServiceStatus
		opt  Options
		want string
	}{
		{
			name: "empty",
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
			),
		},
		{
			name: "every kind of service, sorted as ipvsadm sorts",
			svcs: mixed(),
			opt:  Options{Numeric: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
				"TCP  198.18.0.100:80 wrr",
				"  -> 198.18.0.21:80               Route   1      0          0         ",
				"  -> 198.18.0.22:80               Route   2      3          12        ",
				"  -> 198.18.0.23:80               Route   0      0          4         ",
				"TCP  198.18.0.100:443 sh (sh-port) persistent 300 mask 255.255.255.0",
				"  -> 198.18.0.31:8443             Masq    100    1234567    0         ",
				"  -> 198.18.0.32:8443             Masq    100    7          0         ",
				"UDP  198.18.0.100:53 rr ops",
				"  -> 198.18.0.21:53               Route   1      0          25        ",
				"TCP  [2001:db8::100]:80 rr persistent 60 mask 64",
				"  -> [2001:db8::21]:80            Tunnel  5      2          1         ",
				"  -> [2001:db8::22]:80            Route   1      0          0         ",
				"FWM  3 IPv6 wlc",
				"FWM  7 wlc (flag-1,flag-3)",
				"  -> 198.18.0.21:0                Route   1      0          0         ",
			),
		},
		{
			name: "nosort keeps the given order",
			svcs: []lvs.ServiceStatus{svc(tcp("198.18.0.100:443"), "rr"), svc(tcp("198.18.0.100:80"), "rr",
				dest("198.18.0.22:80", lvs.Masq, 1, 0, 0), dest("198.18.0.21:80", lvs.Masq, 1, 0, 0))},
			opt: Options{NoSort: true, KernelVersion: "1.2.0", ConnTabSize: 1048576},
			want: lines(
				"IP Virtual Server version 1.2.0 (size=1048576)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
				"TCP  198.18.0.100:443 rr",
				"TCP  198.18.0.100:80 rr",
				"  -> 198.18.0.22:80               Masq    1      0          0         ",
				"  -> 198.18.0.21:80               Masq    1      0          0         ",
			),
		},
		{
			// ipvsadm subtracts addresses as unsigned and returns the
			// difference as int: 10.0.0.1 - 198.18.0.1 overflows to a
			// positive number, so 198.18.0.1 is listed first.
			name: "ipvsadm's overflowing address comparison",
			svcs: overflow,
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
				"TCP  198.18.0.1:80 rr",
				"TCP  10.0.0.1:80 rr",
			),
		},
		{
			name: "stats with K M G T scaling",
			svcs: []lvs.ServiceStatus{stats},
			opt:  Options{Stats: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
				"  -> RemoteAddress:Port",
				"TCP  198.18.0.100:80              99999999  100000K   12345M     123T  123456T",
				"  -> 198.18.0.21:80                     12      345        0 99999999  100000K",
			),
		},
		{
			name: "stats exact",
			svcs: []lvs.ServiceStatus{stats},
			opt:  Options{Stats: true, Exact: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
				"  -> RemoteAddress:Port",
				"TCP  198.18.0.100:80              99999999 100000000 12345678901 123456789012345 123456789012345678",
				"  -> 198.18.0.21:80                     12      345        0 99999999 100000000",
			),
		},
		{
			name: "rate: packet rates of destinations are not scaled",
			svcs: []lvs.ServiceStatus{rate},
			opt:  Options{Rate: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
				"  -> RemoteAddress:Port",
				"TCP  198.18.0.100:80                     3       40       41  123456K        2",
				"  -> 198.18.0.21:80               123456789        5        6    1500M        7",
			),
		},
		{
			name: "thresholds",
			svcs: []lvs.ServiceStatus{thresh},
			opt:  Options{Thresholds: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
				"  -> RemoteAddress:Port",
				"TCP  198.18.0.100:80 lc",
				"  -> 198.18.0.21:80               1000       800        5          6         ",
			),
		},
		{
			name: "persistent-conn",
			svcs: []lvs.ServiceStatus{thresh},
			opt:  Options{PersistentConn: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
				"  -> RemoteAddress:Port",
				"TCP  198.18.0.100:80 lc",
				"  -> 198.18.0.21:80               3         2           5          6         ",
			),
		},
		{
			name: "tun-info",
			svcs: []lvs.ServiceStatus{tun},
			opt:  Options{TunInfo: true},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
				"TCP  198.18.0.100:80 rr",
				"  -> 198.18.0.21:80               Route   n/a           1      0          0         ",
				"  -> 198.18.0.22:80               Tunnel  gue:6080:r+c  1      0          0         ",
				"  -> 198.18.0.23:80               Tunnel  ipip          1      0          0         ",
				"  -> 198.18.0.24:80               Tunnel  gre:+c        1      0          0         ",
			),
		},
		{
			name: "sh and mh flags, third flag not shown for them",
			svcs: []lvs.ServiceStatus{
				{Service: lvs.Service{Key: tcp("198.18.0.100:1"), Scheduler: "mh", Flags: lvs.FlagMHFallback | lvs.FlagMHPort}},
				{Service: lvs.Service{Key: tcp("198.18.0.100:2"), Scheduler: "sh", Flags: lvs.FlagSched3}},
				{Service: lvs.Service{Key: tcp("198.18.0.100:3"), Scheduler: "rr", Flags: lvs.FlagSched2 | lvs.FlagPersistent | lvs.FlagOnePacket}},
				{Service: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.SCTP, Addr: ap("198.18.0.100:4")}, Scheduler: "rr"}},
			},
			want: lines(
				"IP Virtual Server version 1.2.1 (size=4096)",
				"Prot LocalAddress:Port Scheduler Flags",
				"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
				"TCP  198.18.0.100:1 mh (mh-fallback,mh-port)",
				"TCP  198.18.0.100:2 sh ()",
				"TCP  198.18.0.100:3 rr (flag-2) persistent 0 ops",
				"SCTP 198.18.0.100:4 rr",
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := List(&b, tt.svcs, tt.opt); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s\n%s", got, tt.want, firstDiff(got, tt.want))
			}
		})
	}
}

func TestListDoesNotReorderInput(t *testing.T) {
	in := mixed()
	first := in[0].Key
	var b bytes.Buffer
	if err := List(&b, in, Options{}); err != nil {
		t.Fatal(err)
	}
	if in[0].Key != first {
		t.Errorf("List reordered the caller's slice")
	}
}

func TestListService(t *testing.T) {
	var b bytes.Buffer
	if err := ListService(&b, mixed(), lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.0.100:53")}, Options{}); err != nil {
		t.Fatal(err)
	}
	want := lines(
		"Prot LocalAddress:Port Scheduler Flags",
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
		"UDP  198.18.0.100:53 rr ops",
		"  -> 198.18.0.21:53               Route   1      0          25        ",
	)
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	err := ListService(&b, mixed(), tcp("198.18.0.100:8080"), Options{})
	if !errors.Is(err, ErrNoService) {
		t.Errorf("missing service: err = %v, want ErrNoService", err)
	}
}

func TestConns(t *testing.T) {
	conns := []lvs.ConnEntry{
		{Proto: lvs.TCP, Expire: 899*time.Second + 700*time.Millisecond, State: "ESTABLISHED",
			Client: ap("198.18.0.50:41234"), Virtual: ap("198.18.0.100:80"), Dest: ap("198.18.0.21:80")},
		{Proto: lvs.UDP, Expire: 299 * time.Second, State: "UDP",
			Client: ap("198.18.0.50:5353"), Virtual: ap("198.18.0.100:53"), Dest: ap("198.18.0.21:53")},
		{Proto: lvs.TCP, Expire: 3661 * time.Second, State: "NONE",
			Client: ap("198.18.0.50:0"), Virtual: ap("198.18.0.100:443"), Dest: ap("198.18.0.31:8443")},
		{Proto: lvs.TCP, Expire: 5 * time.Second, State: "FIN_WAIT",
			Client: ap("[2001:db8::50]:40000"), Virtual: ap("[2001:db8::100]:80"), Dest: ap("[2001:db8::21]:80")},
		{Proto: lvs.SCTP, Expire: -time.Second, State: "CLOSED",
			Client: ap("198.18.0.50:1"), Virtual: ap("198.18.0.100:2"), Dest: ap("198.18.0.21:3")},
		{Proto: 0, Expire: 60 * time.Second, State: "NONE",
			Client: ap("198.18.0.50:0"), Virtual: ap("0.0.0.7:0"), Dest: ap("198.18.0.21:0")},
	}
	want := lines(
		"IPVS connection entries",
		"pro expire state       source             virtual            destination",
		"TCP 14:59  ESTABLISHED 198.18.0.50:41234  198.18.0.100:80    198.18.0.21:80",
		"UDP 04:59  UDP         198.18.0.50:5353   198.18.0.100:53    198.18.0.21:53",
		"TCP 61:01  NONE        198.18.0.50:0      198.18.0.100:443   198.18.0.31:8443",
		"TCP 00:05  FIN_WAIT    [2001:db8::50]:40000 [2001:db8::100]:80 [2001:db8::21]:80",
		"SCTP 00:00  CLOSED      198.18.0.50:1      198.18.0.100:2     198.18.0.21:3",
		"IP  01:00  NONE        198.18.0.50:0      0.0.0.7:0          198.18.0.21:0",
	)
	var b bytes.Buffer
	if err := Conns(&b, conns, Options{Numeric: true}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s\n%s", got, want, firstDiff(got, want))
	}

	b.Reset()
	if err := Conns(&b, conns[:1], Options{PersistentConn: true}); err != nil {
		t.Fatal(err)
	}
	want = lines(
		"IPVS connection entries",
		"pro expire state       source             virtual            destination        pe name          pe_data",
		"TCP 14:59  ESTABLISHED 198.18.0.50:41234  198.18.0.100:80    198.18.0.21:80",
	)
	if got := b.String(); got != want {
		t.Errorf("persistent-conn got:\n%s\nwant:\n%s\n%s", got, want, firstDiff(got, want))
	}
}

func TestTimeout(t *testing.T) {
	for _, tt := range []struct {
		in   lvs.Timeouts
		want string
	}{
		{lvs.Timeouts{}, "Timeout (tcp tcpfin udp): 900 120 300\n"},
		{lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 30 * time.Second, UDP: 1500 * time.Millisecond}, "Timeout (tcp tcpfin udp): 7200 30 1\n"},
	} {
		var b bytes.Buffer
		if err := Timeout(&b, tt.in); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("Timeout(%+v) = %q, want %q", tt.in, b.String(), tt.want)
		}
	}
}

// TestNtop6 checks the IPv6 spelling against what glibc's inet_ntop
// prints (values taken from glibc).
func TestNtop6(t *testing.T) {
	for in, want := range map[string]string{
		"::":                   "::",
		"::1":                  "::1",
		"::ffff:1.2.3.4":       "::ffff:1.2.3.4",
		"::1.2.3.4":            "::1.2.3.4",
		"2001:db8:0:1:0:0:0:1": "2001:db8:0:1::1",
		"2001:0:0:1:0:0:0:1":   "2001:0:0:1::1",
		"1:0:0:1:0:0:1:1":      "1::1:0:0:1:1",
		"1:0:1:1:1:1:1:1":      "1:0:1:1:1:1:1:1",
		"fe80::":               "fe80::",
		"::ffff:0:0":           "::ffff:0.0.0.0",
		"0:0:0:0:0:1:0:0":      "::1:0:0",
		"2001:DB8::100":        "2001:db8::100",
	} {
		if got := ntop6(netip.MustParseAddr(in).As16()); got != want {
			t.Errorf("ntop6(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestMergeSortMatchesStableSort checks the merge sort against the
// standard library on a consistent order.
func TestMergeSortMatchesStableSort(t *testing.T) {
	for n := 0; n < 40; n++ {
		s := make([]int, n)
		for i := range s {
			s[i] = (i * 7919) % 13
		}
		mergeSort(s, func(a, b *int) int { return *a - *b })
		for i := 1; i < n; i++ {
			if s[i-1] > s[i] {
				t.Fatalf("n=%d: not sorted: %v", n, s)
			}
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n got " + quote(g[i]) + "\nwant " + quote(w[i])
		}
	}
	return "lengths differ"
}

func quote(s string) string { return "\"" + s + "\"" }
