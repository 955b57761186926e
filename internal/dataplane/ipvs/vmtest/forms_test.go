package vmtest

import (
	"context"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lvs"
)

// form is one keepalived virtual_server form, as vipd's model and as the
// ipvsadm commands an operator (or keepalived) would run for it.
type form struct {
	svc     lvs.Service
	ipvsadm [][]string
}

func forms() []form {
	ap := netip.MustParseAddrPort
	r := func(s string) netip.AddrPort { return ap(s) }
	f := []form{
		{ // IP PORT, NAT, wrr, weight 0 (inhibit_on_failure), lvs_timeouts
			svc: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: ap("198.18.1.100:80")}, Scheduler: "wrr",
				Timeouts: lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 60 * time.Second, UDP: 600 * time.Second},
				Destinations: []lvs.Destination{
					{Addr: r("198.18.2.21:8080"), Weight: 3, Forward: lvs.Masq},
					{Addr: r("198.18.2.22:8080"), Weight: 1, Forward: lvs.Masq},
					{Addr: r("198.18.2.23:8080"), Weight: 0, Forward: lvs.Masq},
				}},
			ipvsadm: [][]string{
				{"--set", "7200", "60", "600"},
				{"-A", "-t", "198.18.1.100:80", "-s", "wrr"},
				{"-a", "-t", "198.18.1.100:80", "-r", "198.18.2.21:8080", "-m", "-w", "3"},
				{"-a", "-t", "198.18.1.100:80", "-r", "198.18.2.22:8080", "-m", "-w", "1"},
				{"-a", "-t", "198.18.1.100:80", "-r", "198.18.2.23:8080", "-m", "-w", "0"},
			},
		},
		{ // UDP, DR, sh with both flags, persistence with granularity
			svc: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.1.100:53")}, Scheduler: "sh",
				Flags: lvs.FlagSHPort | lvs.FlagSHFallback, Persistence: 300 * time.Second, PersistMask: 24,
				Destinations: []lvs.Destination{
					{Addr: r("198.18.2.21:53"), Weight: 1, Forward: lvs.Route},
					{Addr: r("198.18.2.22:53"), Weight: 2, Forward: lvs.Route},
				}},
			ipvsadm: [][]string{
				{"-A", "-u", "198.18.1.100:53", "-s", "sh", "-b", "sh-port,sh-fallback", "-p", "300", "-M", "255.255.255.0"},
				{"-a", "-u", "198.18.1.100:53", "-r", "198.18.2.21:53", "-g", "-w", "1"},
				{"-a", "-u", "198.18.1.100:53", "-r", "198.18.2.22:53", "-g", "-w", "2"},
			},
		},
		{ // fwmark, TUN (ipip), mh with both flags
			svc: lvs.Service{Key: lvs.ServiceKey{FWMark: 1}, Scheduler: "mh", Flags: lvs.FlagMHPort | lvs.FlagMHFallback,
				Destinations: []lvs.Destination{
					{Addr: r("198.18.2.21:0"), Weight: 1, Forward: lvs.Tunnel},
					{Addr: r("198.18.2.22:0"), Weight: 1, Forward: lvs.Tunnel},
				}},
			ipvsadm: [][]string{
				{"-A", "-f", "1", "-s", "mh", "-b", "mh-port,mh-fallback"},
				{"-a", "-f", "1", "-r", "198.18.2.21", "-i", "-w", "1"},
				{"-a", "-f", "1", "-r", "198.18.2.22", "-i", "-w", "1"},
			},
		},
		{ // IPv6 fwmark, DR
			svc: lvs.Service{Key: lvs.ServiceKey{FWMark: 2, IPv6: true}, Scheduler: "rr",
				Destinations: []lvs.Destination{{Addr: r("[2001:db8::21]:80"), Weight: 1, Forward: lvs.Route}}},
			ipvsadm: [][]string{
				{"-A", "-f", "2", "-6", "-s", "rr"},
				{"-a", "-f", "2", "-6", "-r", "[2001:db8::21]:80", "-g", "-w", "1"},
			},
		},
		{ // IPv6, persistence with an IPv6 prefix, thresholds
			svc: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: ap("[2001:db8::100]:443")}, Scheduler: "lc",
				Persistence: 60 * time.Second, PersistMask: 64,
				Destinations: []lvs.Destination{{Addr: r("[2001:db8::21]:443"), Weight: 1, Forward: lvs.Masq, UThreshold: 100, LThreshold: 10}}},
			ipvsadm: [][]string{
				{"-A", "-t", "[2001:db8::100]:443", "-s", "lc", "-p", "60", "-M", "64"},
				{"-a", "-t", "[2001:db8::100]:443", "-r", "[2001:db8::21]:443", "-m", "-w", "1", "-x", "100", "-y", "10"},
			},
		},
		{ // one-packet scheduling
			svc:     lvs.Service{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.1.100:514")}, Scheduler: "rr", Flags: lvs.FlagOnePacket},
			ipvsadm: [][]string{{"-A", "-u", "198.18.1.100:514", "-s", "rr", "-o"}},
		},
		{ // SCTP
			svc:     lvs.Service{Key: lvs.ServiceKey{Proto: lvs.SCTP, Addr: ap("198.18.1.100:9")}, Scheduler: "nq"},
			ipvsadm: [][]string{{"-A", "--sctp-service", "198.18.1.100:9", "-s", "nq"}},
		},
		{ // GUE and GRE tunnels with their checksum modes
			svc: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: ap("198.18.1.100:8443")}, Scheduler: "wlc",
				Destinations: []lvs.Destination{
					{Addr: r("198.18.2.21:8443"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6080, TunnelCsum: 1},
					{Addr: r("198.18.2.22:8443"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGRE, TunnelCsum: 1},
					{Addr: r("198.18.2.23:8443"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6081, TunnelCsum: 2},
					{Addr: r("198.18.2.24:8443"), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6082},
				}},
			ipvsadm: [][]string{
				{"-A", "-t", "198.18.1.100:8443", "-s", "wlc"},
				{"-a", "-t", "198.18.1.100:8443", "-r", "198.18.2.21:8443", "-i", "-w", "1", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum"},
				{"-a", "-t", "198.18.1.100:8443", "-r", "198.18.2.22:8443", "-i", "-w", "1", "--tun-type", "gre", "--tun-csum"},
				{"-a", "-t", "198.18.1.100:8443", "-r", "198.18.2.23:8443", "-i", "-w", "1", "--tun-type", "gue", "--tun-port", "6081", "--tun-remcsum"},
				{"-a", "-t", "198.18.1.100:8443", "-r", "198.18.2.24:8443", "-i", "-w", "1", "--tun-type", "gue", "--tun-port", "6082", "--tun-nocsum"},
			},
		},
	}
	// Every other scheduler, once.
	for i, s := range []string{"lblc", "lblcr", "dh", "sed", "fo", "ovf"} {
		port := 8001 + i
		vs := "198.18.1.100:" + strconv.Itoa(port)
		f = append(f, form{
			svc: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: ap(vs)}, Scheduler: s,
				Destinations: []lvs.Destination{{Addr: r("198.18.2.21:8080"), Weight: 2, Forward: lvs.Masq}}},
			ipvsadm: [][]string{
				{"-A", "-t", vs, "-s", s},
				{"-a", "-t", vs, "-r", "198.18.2.21:8080", "-m", "-w", "2"},
			},
		})
	}
	return f
}

// testForms programs every keepalived virtual_server form through vipd in
// the director and through ipvsadm in a reference namespace, and requires
// ipvsadm to see the same table in both: vipd programs IPVS as ipvsadm
// does. A second Apply of the same set must then write nothing (every
// field reads back as it was written).
func testForms(t *testing.T, n *natLab) {
	// Fresh namespaces on both sides: destinations deleted earlier linger
	// in the kernel's trash with their counters and would come back.
	ref := n.l.Host("ref")
	vh := n.l.Host("vipd")
	fs := forms()
	var svcs []lvs.Service
	for _, f := range fs {
		svcs = append(svcs, f.svc)
		for _, args := range f.ipvsadm {
			ref.MustRun("ipvsadm", args...)
		}
	}

	d := newDataplane(t, vh, ipvs.Options{})
	apply(t, d, svcs...)
	w := d.Writes()
	apply(t, d, svcs...)
	if d.Writes() != w {
		t.Errorf("a second Apply of the same forms wrote %d times: some field does not read back as written", d.Writes()-w)
	}
	for _, args := range [][]string{
		{"-L", "-n"},
		{"-L", "-n", "--tun-info"},
		{"-L", "-n", "--thresholds"},
		{"-L", "--timeout"},
	} {
		want, got := ref.MustRun("ipvsadm", args...), vh.MustRun("ipvsadm", args...)
		if want != got {
			t.Errorf("ipvsadm %s: vipd's table differs from ipvsadm's: %s", strings.Join(args, " "), firstDiff(want, got))
		}
	}
	// The save format has every option of every entry; services come in
	// hash order (which depends on the namespace), destinations in list
	// order: compare per service.
	if want, got := saveBlocks(ref.MustRun("ipvsadm", "-S", "-n")), saveBlocks(vh.MustRun("ipvsadm", "-S", "-n")); want != got {
		t.Errorf("ipvsadm -S -n differs: %s", firstDiff(want, got))
	}

	// And every field reads back into the model as it was given.
	list, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(svcs) {
		t.Fatalf("listed %d services, configured %d", len(list), len(svcs))
	}
	if err := d.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if out := vh.MustRun("ipvsadm", "-L", "-n"); strings.Count(out, "\n") != 3 {
		t.Errorf("Apply(nil) left services behind:\n%s", out)
	}
}

// saveBlocks sorts `ipvsadm -S` output by service, keeping each service's
// destination lines in order.
func saveBlocks(out string) string {
	var blocks []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "-A ") || len(blocks) == 0 {
			blocks = append(blocks, line)
			continue
		}
		blocks[len(blocks)-1] += "\n" + line
	}
	sort.Strings(blocks)
	return strings.Join(blocks, "\n")
}
