package ipvs

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	cf "github.com/cloudflare/ipvs"
	"github.com/vipd/vipd/internal/lvs"
)

var (
	vip80  = lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}
	vip443 = lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("198.18.0.100:443")}
	fwm1   = lvs.ServiceKey{FWMark: 1, Proto: lvs.TCP}
	rs1    = netip.MustParseAddrPort("198.18.0.21:80")
	rs2    = netip.MustParseAddrPort("198.18.0.22:80")
	rs3    = netip.MustParseAddrPort("198.18.0.23:80")
)

func svc(k lvs.ServiceKey, sched string, dests ...lvs.Destination) lvs.Service {
	s, err := normalize(lvs.Service{Key: k, Scheduler: sched, Destinations: dests})
	if err != nil {
		panic(err)
	}
	return s
}

func dst(a netip.AddrPort, w int) lvs.Destination {
	return lvs.Destination{Addr: a, Weight: w, Forward: lvs.Route}
}

// status is what a dump of s would return.
func status(s lvs.Service) lvs.ServiceStatus {
	st := lvs.ServiceStatus{Service: s}
	// The kernel lists destinations most recently added first.
	for i := len(s.Destinations) - 1; i >= 0; i-- {
		st.Dests = append(st.Dests, lvs.DestStatus{Destination: s.Destinations[i], ActiveConns: 3})
	}
	st.Service.Flags |= lvs.FlagHashed
	return st
}

func TestPlan(t *testing.T) {
	none := func(svcKey) bool { return false }
	all := func(svcKey) bool { return true }
	base := svc(vip80, "wrr", dst(rs1, 1), dst(rs2, 2))
	tests := []struct {
		name    string
		current []lvs.ServiceStatus
		desired []lvs.Service
		owned   func(svcKey) bool
		want    []string
	}{
		{
			name:    "create from empty, destinations in configuration order",
			desired: []lvs.Service{base},
			owned:   none,
			want: []string{
				"add service TCP 198.18.0.100:80 wrr",
				"add destination TCP 198.18.0.100:80 -> 198.18.0.21:80",
				"add destination TCP 198.18.0.100:80 -> 198.18.0.22:80",
			},
		},
		{
			name:    "unchanged: nothing, whatever the counters",
			current: []lvs.ServiceStatus{status(base)},
			desired: []lvs.Service{base},
			owned:   all,
		},
		{
			name:    "foreign service untouched, owned one deleted",
			current: []lvs.ServiceStatus{status(base), status(svc(vip443, "rr")), status(svc(fwm1, "sh"))},
			desired: []lvs.Service{base},
			owned:   func(k svcKey) bool { return k == keyOf(fwm1) },
			want:    []string{"delete service FWM 1"},
		},
		{
			name:    "weight to 0 (inhibit_on_failure) is one edit",
			current: []lvs.ServiceStatus{status(base)},
			desired: []lvs.Service{svc(vip80, "wrr", dst(rs1, 0), dst(rs2, 2))},
			owned:   all,
			want:    []string{"edit destination TCP 198.18.0.100:80 -> 198.18.0.21:80 (weight 1->0)"},
		},
		{
			name:    "destination removed and one added",
			current: []lvs.ServiceStatus{status(base)},
			desired: []lvs.Service{svc(vip80, "wrr", dst(rs2, 2), dst(rs3, 1))},
			owned:   all,
			want: []string{
				"delete destination TCP 198.18.0.100:80 -> 198.18.0.21:80",
				"add destination TCP 198.18.0.100:80 -> 198.18.0.23:80",
			},
		},
		{
			name:    "scheduler and persistence change edit the service in place",
			current: []lvs.ServiceStatus{status(base)},
			desired: func() []lvs.Service {
				s := base
				s.Scheduler = "sh"
				s.Persistence = 300 * time.Second
				s.Flags |= lvs.FlagPersistent | lvs.FlagSHPort
				return []lvs.Service{s}
			}(),
			owned: all,
			want:  []string{"edit service TCP 198.18.0.100:80 sh (scheduler wrr->sh, flags 0x0->0x11, persistence 0s->5m0s)"},
		},
		{
			name:    "forwarding method change",
			current: []lvs.ServiceStatus{status(base)},
			desired: []lvs.Service{svc(vip80, "wrr", dst(rs1, 1), lvs.Destination{Addr: rs2, Weight: 2, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGRE, TunnelCsum: 1})},
			owned:   all,
			want:    []string{"edit destination TCP 198.18.0.100:80 -> 198.18.0.22:80 (forward Route->Tunnel, tunnel 0:0:0->2:0:1)"},
		},
		{
			name:    "adopted service that exists is edited, not recreated",
			current: []lvs.ServiceStatus{status(svc(vip80, "rr", dst(rs1, 1)))},
			desired: []lvs.Service{base},
			owned:   none,
			want: []string{
				"edit service TCP 198.18.0.100:80 wrr (scheduler rr->wrr)",
				"add destination TCP 198.18.0.100:80 -> 198.18.0.22:80",
			},
		},
		{
			name:    "everything owned goes when nothing is desired",
			current: []lvs.ServiceStatus{status(base), status(svc(fwm1, "sh"))},
			owned:   all,
			want:    []string{"delete service TCP 198.18.0.100:80", "delete service FWM 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, o := range plan(tt.current, tt.desired, tt.owned) {
				got = append(got, o.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("plan:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	v6 := lvs.ServiceKey{Proto: lvs.UDP, Addr: netip.MustParseAddrPort("[2001:db8::1]:53")}
	tests := []struct {
		name    string
		in      lvs.Service
		check   func(lvs.Service) bool
		wantErr string
	}{
		{name: "defaults", in: lvs.Service{Key: vip80},
			check: func(s lvs.Service) bool { return s.Scheduler == "wlc" && s.PersistMask == 32 && s.Flags == 0 }},
		{name: "ipv6 mask default", in: lvs.Service{Key: v6},
			check: func(s lvs.Service) bool { return s.PersistMask == 128 && s.Key.IPv6 }},
		{name: "persistence sets the flag and rounds up", in: lvs.Service{Key: vip80, Persistence: 1500 * time.Millisecond, PersistMask: 24},
			check: func(s lvs.Service) bool {
				return s.Flags == lvs.FlagPersistent && s.Persistence == 2*time.Second && s.PersistMask == 24
			}},
		{name: "persistent flag without timeout is cleared", in: lvs.Service{Key: vip80, Flags: lvs.FlagPersistent | lvs.FlagHashed | lvs.FlagOnePacket},
			check: func(s lvs.Service) bool { return s.Flags == lvs.FlagOnePacket }},
		{name: "fwmark key drops protocol", in: lvs.Service{Key: lvs.ServiceKey{FWMark: 7, Proto: lvs.UDP, Addr: rs1}},
			check: func(s lvs.Service) bool { return s.Key == lvs.ServiceKey{FWMark: 7} }},
		{name: "mapped v4 unmapped", in: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("[::ffff:198.18.0.100]:80")}},
			check: func(s lvs.Service) bool { return s.Key.Addr == vip80.Addr && !s.Key.IPv6 }},
		{name: "ipip tunnel clears port", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1, Forward: lvs.Tunnel, TunnelPort: 9, TunnelCsum: 1}}},
			check: func(s lvs.Service) bool { d := s.Destinations[0]; return d.TunnelPort == 0 && d.TunnelCsum == 0 }},
		{name: "non-tunnel clears tunnel", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1, Forward: lvs.Masq, Tunnel: lvs.TunnelGUE, TunnelPort: 9}}},
			check: func(s lvs.Service) bool { d := s.Destinations[0]; return d.Tunnel == 0 && d.TunnelPort == 0 }},
		{name: "no address", in: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP}}, wantErr: "no address and no fwmark"},
		{name: "bad protocol", in: lvs.Service{Key: lvs.ServiceKey{Proto: 1, Addr: rs1}}, wantErr: "protocol 1"},
		{name: "mask out of range", in: lvs.Service{Key: vip80, PersistMask: 33}, wantErr: "persistence_granularity /33"},
		{name: "negative weight", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1, Weight: -1}}}, wantErr: "real server 198.18.0.21:80: weight -1"},
		{name: "duplicate dest", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1}, {Addr: rs1}}}, wantErr: "listed twice"},
		{name: "gue without port", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE}}}, wantErr: "GUE tunnel needs a port"},
		{name: "unknown forward", in: lvs.Service{Key: vip80, Destinations: []lvs.Destination{{Addr: rs1, Forward: 9}}}, wantErr: "unknown forwarding method 9"},
		{name: "long scheduler", in: lvs.Service{Key: vip80, Scheduler: "averyveryverylongname"}, wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("normalize(%+v) = %+v", tt.in, got)
			}
		})
	}
}

func TestNormalizeAllDuplicates(t *testing.T) {
	_, err := normalizeAll([]lvs.Service{{Key: fwm1}, {Key: lvs.ServiceKey{FWMark: 1, Proto: lvs.UDP}}})
	if err == nil || !strings.Contains(err.Error(), "FWM 1: defined twice") {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeouts(t *testing.T) {
	def := lvs.DefaultTimeouts
	custom := lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}
	tests := []struct {
		name      string
		kernel    lvs.Timeouts
		want      lvs.Timeouts
		orig      *lvs.Timeouts
		target    lvs.Timeouts
		wantWrite bool
	}{
		{name: "unset keeps the kernel's", kernel: custom, target: custom},
		{name: "set tcp only", kernel: def, want: lvs.Timeouts{TCP: 7200 * time.Second}, target: custom, wantWrite: true},
		{name: "already set", kernel: custom, want: lvs.Timeouts{TCP: 7200 * time.Second}, orig: &def, target: custom},
		{name: "unset after vipd set restores", kernel: custom, orig: &def, target: def, wantWrite: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, w := planTimeouts(tt.kernel, tt.want, tt.orig)
			if got != tt.target || w != tt.wantWrite {
				t.Errorf("planTimeouts = %+v, %v; want %+v, %v", got, w, tt.target, tt.wantWrite)
			}
		})
	}
	a := lvs.Service{Key: vip80, Timeouts: lvs.Timeouts{TCP: time.Hour}}
	b := lvs.Service{Key: vip443, Timeouts: lvs.Timeouts{TCP: 2 * time.Hour}}
	if _, err := desiredTimeouts([]lvs.Service{a, b}); err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Errorf("conflicting lvs_timeouts: err = %v", err)
	}
	c := lvs.Service{Key: vip443, Timeouts: lvs.Timeouts{UDP: 10 * time.Second}}
	got, err := desiredTimeouts([]lvs.Service{a, c})
	if err != nil || got != (lvs.Timeouts{TCP: time.Hour, UDP: 10 * time.Second}) {
		t.Errorf("desiredTimeouts = %+v, %v", got, err)
	}
}

// TestConvertRoundTrip checks that what toKernel* sends is what
// fromKernel* makes of the kernel's echo, for every field the plan
// compares: otherwise an unchanged service would be edited on every
// reload.
func TestConvertRoundTrip(t *testing.T) {
	v6 := lvs.ServiceKey{Proto: lvs.UDP, Addr: netip.MustParseAddrPort("[2001:db8::1]:53")}
	services := []lvs.Service{
		svc(vip80, "wrr", dst(rs1, 1)),
		{Key: vip443, Scheduler: "sh", Flags: lvs.FlagSHPort | lvs.FlagSHFallback, Persistence: time.Minute, PersistMask: 24},
		{Key: v6, Scheduler: "mh", Flags: lvs.FlagOnePacket, Persistence: time.Hour, PersistMask: 64},
		{Key: lvs.ServiceKey{FWMark: 9, IPv6: true}, Scheduler: "lc"},
	}
	for _, s := range services {
		n, err := normalize(s)
		if err != nil {
			t.Fatal(err)
		}
		ks := toKernelService(n)
		ks.Flags |= 0x2 // the kernel adds HASHED
		st, err := fromKernelService(ksExt(ks))
		if err != nil {
			t.Fatal(err)
		}
		if d := serviceDiff(st.Service, n); d != "" || keyOf(st.Key) != keyOf(n.Key) {
			t.Errorf("%s: round trip differs: %s (key %v)", keyString(n.Key), d, st.Key)
		}
	}
	dests := []lvs.Destination{
		{Addr: rs1, Weight: 5, Forward: lvs.Masq, UThreshold: 10, LThreshold: 2},
		{Addr: rs2, Weight: 0, Forward: lvs.Route},
		{Addr: rs3, Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6080, TunnelCsum: 2},
		{Addr: netip.MustParseAddrPort("[2001:db8::2]:80"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelIPIP},
		{Addr: rs1, Forward: lvs.Local},
		{Addr: rs1, Forward: lvs.Bypass},
	}
	for _, d := range dests {
		n, err := normalizeDest(d)
		if err != nil {
			t.Fatal(err)
		}
		got := fromKernelDest(kdExt(toKernelDest(n)))
		if diff := destDiff(got.Destination, n); diff != "" || got.Addr != n.Addr {
			t.Errorf("%s: round trip differs: %s", n.Addr, diff)
		}
	}
}

func ksExt(s cf.Service) cf.ServiceExtended         { return cf.ServiceExtended{Service: s} }
func kdExt(d cf.Destination) cf.DestinationExtended { return cf.DestinationExtended{Destination: d} }
