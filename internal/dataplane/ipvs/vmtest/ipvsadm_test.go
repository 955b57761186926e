package vmtest

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/ipvsadm"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// testIpvsadmListings is the byte-for-byte harness: the same kernel state
// listed by ipvsadm 1.31 and by internal/ipvsadm over what the data plane
// reads (services, counters, rates, thresholds, tunnels, connections,
// timeouts). Counters, rates and connection expiry move while we look, so
// each comparison takes ipvsadm's output before and after ours and only
// judges when those two agree (retrying otherwise).
func testIpvsadmListings(t *testing.T, n *natLab) {
	d := newDataplane(t, n.dir, ipvs.Options{})
	web := vipKey(80)
	held := vipKey(81)
	svcs := []lvs.Service{
		{Key: web, Scheduler: "wrr", Destinations: []lvs.Destination{natDest(0, 8080, 3), natDest(1, 8080, 1), natDest(2, 8080, 0)}},
		{Key: held, Scheduler: "sh", Flags: lvs.FlagSHPort | lvs.FlagSHFallback, Persistence: 300 * time.Second, PersistMask: 24,
			Destinations: []lvs.Destination{natDest(0, 8081, 1), {Addr: netip.AddrPortFrom(rsAddr(1), 8081), Weight: 2, Forward: lvs.Masq, UThreshold: 100, LThreshold: 10}}},
		{Key: lvs.ServiceKey{FWMark: 7}, Scheduler: "mh", Flags: lvs.FlagMHPort,
			Destinations: []lvs.Destination{{Addr: netip.AddrPortFrom(rsAddr(2), 0), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGUE, TunnelPort: 6080, TunnelCsum: 1},
				{Addr: netip.AddrPortFrom(rsAddr(3), 0), Weight: 1, Forward: lvs.Tunnel, Tunnel: lvs.TunnelGRE}}},
		{Key: lvs.ServiceKey{Proto: lvs.UDP, Addr: mustAddr("[2001:db8::100]:53")}, Scheduler: "rr", Flags: lvs.FlagOnePacket, Persistence: time.Minute, PersistMask: 64,
			Destinations: []lvs.Destination{{Addr: mustAddr("[2001:db8::21]:53"), Weight: 1, Forward: lvs.Route}}},
		{Key: lvs.ServiceKey{FWMark: 8, IPv6: true}, Scheduler: "lc", Timeouts: lvs.Timeouts{TCP: 3600 * time.Second, UDP: 60 * time.Second}},
	}
	apply(t, d, svcs...)

	// Traffic: finished connections on web, held ones on held (a
	// persistence template, active connections), so every column has
	// something in it.
	for i := 0; i < 5; i++ {
		if _, err := n.client.Get("http://" + natVIP + "/"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		c, err := dialHold(n.client, n.srcs[i], uint16(31000+i), held.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	lab.Eventually(t, 10*time.Second, func() bool { return find(t, d, web).Stats.Conns == 5 }, "stats never counted the requests")

	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	base := ipvsadm.Options{Numeric: true, KernelVersion: info.Version, ConnTabSize: info.ConnTabSize}
	list := func(o ipvsadm.Options) func() (string, error) {
		return func() (string, error) {
			svcs, err := d.List()
			if err != nil {
				return "", err
			}
			var b bytes.Buffer
			err = ipvsadm.List(&b, svcs, o)
			return b.String(), err
		}
	}
	with := func(f func(*ipvsadm.Options)) ipvsadm.Options { o := base; f(&o); return o }
	cases := []struct {
		args []string
		ours func() (string, error)
	}{
		{[]string{"-L", "-n"}, list(base)},
		{[]string{"-L", "-n", "--stats"}, list(with(func(o *ipvsadm.Options) { o.Stats = true }))},
		{[]string{"-L", "-n", "--stats", "--exact"}, list(with(func(o *ipvsadm.Options) { o.Stats, o.Exact = true, true }))},
		{[]string{"-L", "-n", "--rate"}, list(with(func(o *ipvsadm.Options) { o.Rate = true }))},
		{[]string{"-L", "-n", "--thresholds"}, list(with(func(o *ipvsadm.Options) { o.Thresholds = true }))},
		{[]string{"-L", "-n", "--persistent-conn"}, list(with(func(o *ipvsadm.Options) { o.PersistentConn = true }))},
		{[]string{"-L", "-n", "--tun-info"}, list(with(func(o *ipvsadm.Options) { o.TunInfo = true }))},
		{[]string{"-L", "-n", "-c"}, func() (string, error) {
			conns, err := d.ConnList()
			if err != nil {
				return "", err
			}
			var b bytes.Buffer
			err = ipvsadm.Conns(&b, conns, base)
			return b.String(), err
		}},
		{[]string{"-L", "--timeout"}, func() (string, error) {
			tm, err := d.Timeouts()
			if err != nil {
				return "", err
			}
			var b bytes.Buffer
			err = ipvsadm.Timeout(&b, tm)
			return b.String(), err
		}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			if c.args[len(c.args)-1] == "-c" {
				compareConnListing(t, n.dir, c.args, c.ours)
				return
			}
			compareListing(t, n.dir, c.args, c.ours)
		})
	}
}

// compareConnListing compares `ipvsadm -L -n -c`. Every entry's expiry
// ticks each second at its own phase, so with a dozen entries some tick
// during any window long enough to run ipvsadm twice in the emulated VM.
// The expiry column is therefore judged by value (ours between ipvsadm's
// before and after) and by form (mm:ss padded to 6); every other byte of
// every line must be identical.
func compareConnListing(t *testing.T, dir *lab.Host, args []string, ours func() (string, error)) {
	t.Helper()
	var last string
	for attempt := 0; attempt < 10; attempt++ {
		before := dir.MustRun("ipvsadm", args...)
		got, err := ours()
		if err != nil {
			t.Fatal(err)
		}
		after := dir.MustRun("ipvsadm", args...)
		why := connsMatch(before, got, after)
		if why == "" {
			if strings.Count(got, "\n") < 4 {
				t.Errorf("too few connection entries to compare:\n%s", got)
			}
			return
		}
		last = why
	}
	t.Errorf("ipvsadm %s and internal/ipvsadm differ: %s", strings.Join(args, " "), last)
}

func connsMatch(before, got, after string) string {
	b, g, a := strings.Split(before, "\n"), strings.Split(got, "\n"), strings.Split(after, "\n")
	if len(b) != len(g) || len(a) != len(g) {
		return fmt.Sprintf("%d, %d and %d lines (ipvsadm, vipd, ipvsadm)\n%s\n%s", len(b), len(g), len(a), before, got)
	}
	for i := range g {
		if i < 2 || len(g[i]) < 10 || len(b[i]) < 10 || len(a[i]) < 10 {
			if g[i] != b[i] {
				return firstDiff(before, got)
			}
			continue
		}
		rest := func(l string) string { return l[:4] + l[10:] }
		if rest(g[i]) != rest(b[i]) || rest(g[i]) != rest(a[i]) {
			return fmt.Sprintf("line %d outside the expiry column:\n  ipvsadm: %q\n  vipd:    %q", i+1, b[i], g[i])
		}
		eb, okb := mmss(b[i][4:10])
		eg, okg := mmss(g[i][4:10])
		ea, oka := mmss(a[i][4:10])
		if !okg || !okb || !oka || eg > eb || eg < ea {
			return fmt.Sprintf("line %d: expiry %q not between ipvsadm's %q and %q", i+1, g[i][4:10], b[i][4:10], a[i][4:10])
		}
	}
	return ""
}

// mmss reads ipvsadm's expiry column, "mm:ss" padded to 6 characters.
func mmss(s string) (int, bool) {
	if len(s) != 6 || s[2] != ':' || s[5] != ' ' {
		return 0, false
	}
	m, err1 := strconv.Atoi(s[:2])
	sec, err2 := strconv.Atoi(s[3:5])
	return m*60 + sec, err1 == nil && err2 == nil && sec < 60
}

func compareListing(t *testing.T, dir *lab.Host, args []string, ours func() (string, error)) {
	t.Helper()
	var last string
	for attempt := 0; attempt < 20; attempt++ {
		before := dir.MustRun("ipvsadm", args...)
		got, err := ours()
		if err != nil {
			t.Fatal(err)
		}
		after := dir.MustRun("ipvsadm", args...)
		if before != after {
			continue // the kernel moved (a counter, a second of expiry): again
		}
		if got == before {
			if strings.Count(got, "\n") < 2 && args[1] != "--timeout" {
				t.Errorf("ipvsadm %s printed almost nothing:\n%s", strings.Join(args, " "), got)
			}
			return
		}
		last = firstDiff(before, got)
	}
	if last == "" {
		t.Fatalf("ipvsadm %s never printed the same twice in a row", strings.Join(args, " "))
	}
	t.Errorf("ipvsadm %s and internal/ipvsadm differ: %s", strings.Join(args, " "), last)
}

// firstDiff describes the first differing line of two listings.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  ipvsadm: %q\n  vipd:    %q\nfull ipvsadm output:\n%s\nfull vipd output:\n%s", i+1, wl, gl, want, got)
		}
	}
	return "identical"
}
