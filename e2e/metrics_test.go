package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vipd/vipd/internal/lab"
)

// metricsConf is the VRRP pair's configuration of the metrics test;
// rs2Weight lets a reload change something visible.
func metricsConf(rs2Weight int) natConf {
	return natConf{routerID: "metrics_%s", vrid: 61, advert: "0.5", rs2Weight: rs2Weight}
}

// scrape is one parsed /metrics page.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics fetches http://addr/metrics from inside h's namespace and
// parses it with the Prometheus text parser, as a Prometheus server would.
func scrapeMetrics(t *testing.T, h *lab.Host, addr string) scrape {
	t.Helper()
	body, err := h.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s from %s: %v", addr, h.Name, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics of %s does not parse: %v\n%s", addr, err, body)
	}
	return scrape(fams)
}

// get returns the value of the series of family name whose labels include
// the given name=value pairs; ok is false when there is none, and the test
// fails when more than one matches (the caller named too few labels).
func (s scrape) get(t *testing.T, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	f := s[name]
	if f == nil {
		return 0, false
	}
	n := 0
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		default:
			t.Fatalf("%s%v: neither counter nor gauge", name, labels)
		}
	}
	if n > 1 {
		t.Fatalf("%s%v: %d series match, want one", name, labels, n)
	}
	return v, n == 1
}

// must is get that fails the test when the series is missing.
func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.get(t, name, labels...)
	if !ok {
		t.Fatalf("/metrics has no %s%v", name, labels)
	}
	return v
}

// counterType checks that a family is exported as a counter.
func (s scrape) counterType(t *testing.T, name string) {
	t.Helper()
	if f := s[name]; f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("%s is not a counter in /metrics", name)
	}
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsLive runs two vipd daemons with --metrics in front of two
// nginx real servers, drives them (connections through the VIP, adverts,
// a failover and a preemption, a reload with vipctl, a real server
// stopped) and checks that what Prometheus scrapes says what the lab did.
// Then the status page of the running master is rendered in headless
// Chromium, from the client's namespace, and must show the live instance,
// virtual server and real servers.
func TestMetricsLive(t *testing.T) {
	t.Parallel()
	p := newNATPair(t)
	client, h1, h2, rs1, rs2, ng1 := p.client, p.d1, p.d2, p.rs1, p.rs2, p.ng1
	r1, r2 := rs1.Addr.String(), rs2.Addr.String()
	rs1Key, rs2Key := r1+":80", r2+":80"
	const vip, vs = "198.18.0.100", "TCP 198.18.0.100:80"
	m1 := net.JoinHostPort(h1.Addr.String(), "9650")
	m2 := net.JoinHostPort(h2.Addr.String(), "9650")

	d1, d2 := p.start(t, metricsConf(1), []string{"--metrics", m1}, []string{"--metrics", m2})
	// Both real servers pass their first check before anything is counted.
	lab.Eventually(t, 5*time.Second, func() bool {
		s := scrapeMetrics(t, client, m1)
		a, _ := s.get(t, "vipd_check_up", "real_server", rs1Key, "kind", "HTTP_GET")
		b, _ := s.get(t, "vipd_check_up", "real_server", rs2Key, "kind", "TCP_CHECK")
		return a == 1 && b == 1
	}, "the checks of rs1 and rs2 never both passed")

	inst := []string{"instance", "VI_1", "interface", "eth0", "vrid", "61"}
	ka := []string{"iname", "VI_1", "intf", "eth0", "vrid", "61"}
	// d1 is scraped before d2 here and after d2 at the end of the advert
	// count below, so d2's window lies within d1's; the span of each
	// pair of scrapes bounds the adverts sent outside d2's window.
	start0 := time.Now()
	s1, s2 := scrapeMetrics(t, client, m1), scrapeMetrics(t, client, m2)
	skew := time.Since(start0)
	for _, n := range []string{"vipd_vrrp_adverts_sent_total", "vipd_vrrp_adverts_received_total", "vipd_vrrp_transitions_total",
		"vipd_config_reloads_total", "vipd_virtual_server_connections_total", "vipd_real_server_connections_total",
		"vipd_checks_total", "vipd_check_failures_total", "keepalived_advertisements_sent_total", "node_ipvs_connections_total"} {
		s1.counterType(t, n)
	}
	// Nothing went through the VIP yet (nginx and the checks talk to
	// the real servers directly) and nothing was reloaded: the counters
	// start at 0, so the deltas below are the absolute values too.
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"vipd_virtual_server_connections_total", []string{"virtual_server", vs}},
		{"node_ipvs_connections_total", nil},
		{"vipd_config_reloads_total", nil},
	} {
		if v := s1.must(t, c.name, c.labels...); v != 0 {
			t.Errorf("%s = %v before any connection or reload", c.name, v)
		}
	}
	// Both real servers up, quorum 1 (keepalived's default): held.
	if v := s1.must(t, "vipd_virtual_server_quorum_up", "virtual_server", vs); v != 1 {
		t.Errorf("vipd_virtual_server_quorum_up = %v with every real server up, want 1", v)
	}
	if v := s1.must(t, "vipd_ready"); v != 1 {
		t.Errorf("vipd_ready = %v on a running daemon", v)
	}
	if _, ok := s1.get(t, "vipd_build_info", "dataplane", "proxy", "router_id", "metrics_MASTER"); !ok {
		t.Errorf("vipd_build_info lacks dataplane=proxy, router_id=metrics_MASTER")
	}
	if v := s1.must(t, "vipd_vrrp_state", append(inst, "state", "MASTER")...); v != 1 {
		t.Errorf("d1 vipd_vrrp_state{MASTER} = %v, want 1", v)
	}
	if v := s2.must(t, "keepalived_vrrp_state", append(ka, "ip_address", vip)...); v != 1 {
		t.Errorf("d2 keepalived_vrrp_state = %v, want 1 (BACKUP)", v)
	}

	// Adverts: the master sends, the backup receives the same ones; the
	// master receives none and the backup sends none.
	lab.Eventually(t, 8*time.Second, func() bool {
		a := scrapeMetrics(t, client, m1).must(t, "vipd_vrrp_adverts_sent_total", inst...)
		return a-s1.must(t, "vipd_vrrp_adverts_sent_total", inst...) >= 6
	}, "d1 sent fewer than 6 adverts (advert_int 0.5) in 8 s")
	start1 := time.Now()
	a2 := scrapeMetrics(t, client, m2)
	a1 := scrapeMetrics(t, client, m1)
	skew += time.Since(start1)
	sent := a1.must(t, "vipd_vrrp_adverts_sent_total", inst...) - s1.must(t, "vipd_vrrp_adverts_sent_total", inst...)
	rcvd := a2.must(t, "vipd_vrrp_adverts_received_total", inst...) - s2.must(t, "vipd_vrrp_adverts_received_total", inst...)
	// Every advert d2 counted was sent in d1's window (one may have been
	// in flight at its start); at most the adverts of the scrapes' spans
	// were sent outside d2's window.
	outside := float64(skew/(500*time.Millisecond)) + 2
	t.Logf("adverts: d1 sent %v, d2 received %v (scrapes spanned %v)", sent, rcvd, skew.Round(time.Millisecond))
	if rcvd > sent+1 || rcvd < sent-outside {
		t.Errorf("d2 received %v adverts while d1 sent %v (at most %v outside d2's window)", rcvd, sent, outside)
	}
	if kav := a1.must(t, "keepalived_advertisements_sent_total", ka...) - s1.must(t, "keepalived_advertisements_sent_total", ka...); kav != sent {
		t.Errorf("keepalived_advertisements_sent_total moved by %v, vipd_vrrp_adverts_sent_total by %v", kav, sent)
	}
	if v := a1.must(t, "vipd_vrrp_adverts_received_total", inst...) - s1.must(t, "vipd_vrrp_adverts_received_total", inst...); v != 0 {
		t.Errorf("the master received %v adverts from a silent backup", v)
	}
	if v := a2.must(t, "vipd_vrrp_adverts_sent_total", inst...) - s2.must(t, "vipd_vrrp_adverts_sent_total", inst...); v != 0 {
		t.Errorf("the backup sent %v adverts", v)
	}

	// Connections: each GET through the VIP is one connection; rr spreads
	// them; the counters say how many went where.
	const n = 10
	req := "GET / HTTP/1.0\r\nHost: vip\r\n\r\n" // what getPath sends
	per := map[string]float64{}
	for _, b := range gets(t, client, vip, n) {
		per[b]++
	}
	if per["rs1"]+per["rs2"] != n {
		t.Fatalf("bodies through the VIP: %v", per)
	}
	var c1 scrape
	lab.Eventually(t, 5*time.Second, func() bool {
		c1 = scrapeMetrics(t, client, m1)
		return c1.must(t, "vipd_virtual_server_connections_total", "virtual_server", vs)-
			s1.must(t, "vipd_virtual_server_connections_total", "virtual_server", vs) >= n
	}, "vipd_virtual_server_connections_total did not count %d connections", n)
	delta := func(now, before scrape, name string, labels ...string) float64 {
		t.Helper()
		b, _ := before.get(t, name, labels...)
		return now.must(t, name, labels...) - b
	}
	if v := delta(c1, s1, "vipd_virtual_server_connections_total", "virtual_server", vs); v != n {
		t.Errorf("vipd_virtual_server_connections_total moved by %v for %d connections", v, n)
	}
	if v := delta(c1, s1, "node_ipvs_connections_total"); v != n {
		t.Errorf("node_ipvs_connections_total moved by %v for %d connections", v, n)
	}
	for rs, name := range map[string]string{rs1Key: "rs1", rs2Key: "rs2"} {
		if v := delta(c1, s1, "vipd_real_server_connections_total", "virtual_server", vs, "real_server", rs); v != per[name] {
			t.Errorf("vipd_real_server_connections_total{%s} moved by %v, the client got %v answers from %s", rs, v, per[name], name)
		}
	}
	if v := delta(c1, s1, "vipd_virtual_server_in_bytes_total", "virtual_server", vs); v < float64(n*len(req)) {
		t.Errorf("vipd_virtual_server_in_bytes_total moved by %v, the client sent %d bytes", v, n*len(req))
	}
	if v := delta(c1, s1, "vipd_virtual_server_out_bytes_total", "virtual_server", vs); v < float64(n*len("rs1\n")) {
		t.Errorf("vipd_virtual_server_out_bytes_total moved by %v, the client received more", v)
	}
	if v := c1.must(t, "vipd_virtual_server_real_servers_up", "virtual_server", vs); v != 2 {
		t.Errorf("vipd_virtual_server_real_servers_up = %v, want 2", v)
	}

	// rs1's nginx dies: its HTTP_GET fails and it is out of the pool;
	// rs2's TCP_CHECK keeps passing. (Before the failover below: d1's
	// checks time out while its cable is cut.)
	ng1.Kill()
	var f1 scrape
	lab.Eventually(t, 8*time.Second, func() bool {
		f1 = scrapeMetrics(t, client, m1)
		v, _ := f1.get(t, "vipd_check_up", "real_server", rs1Key, "kind", "HTTP_GET")
		return v == 0
	}, "vipd_check_up for rs1's HTTP_GET did not go to 0 after its nginx died")
	if v := delta(f1, c1, "vipd_check_failures_total", "real_server", rs1Key, "kind", "HTTP_GET"); v < 1 {
		t.Errorf("vipd_check_failures_total{rs1} moved by %v after a failed check", v)
	}
	if v := delta(f1, s1, "vipd_check_failures_total", "real_server", rs2Key, "kind", "TCP_CHECK"); v != 0 {
		t.Errorf("vipd_check_failures_total{rs2} moved by %v, its nginx never stopped", v)
	}
	if v := f1.must(t, "vipd_check_up", "real_server", rs2Key, "kind", "TCP_CHECK"); v != 1 {
		t.Errorf("vipd_check_up{rs2} = %v, want 1", v)
	}
	if v := delta(f1, s1, "vipd_checks_total", "real_server", rs2Key, "kind", "TCP_CHECK"); v < 1 {
		t.Errorf("vipd_checks_total{rs2} did not move while checks ran (%v)", v)
	}
	if v, ok := f1.get(t, "vipd_real_server_up", "virtual_server", vs, "real_server", rs1Key); ok && v != 0 {
		t.Errorf("vipd_real_server_up{rs1} = %v after its check failed", v)
	}
	if v := f1.must(t, "vipd_virtual_server_real_servers_up", "virtual_server", vs); v != 1 {
		t.Errorf("vipd_virtual_server_real_servers_up = %v with rs1 down, want 1", v)
	}
	const more = 4
	for _, b := range gets(t, client, vip, more) {
		if b != "rs2" {
			t.Fatalf("got %q through the VIP with rs1 down", b)
		}
	}
	lab.Eventually(t, 5*time.Second, func() bool {
		f1 = scrapeMetrics(t, client, m1)
		return delta(f1, s1, "vipd_real_server_connections_total", "virtual_server", vs, "real_server", rs2Key) >= per["rs2"]+more
	}, "vipd_real_server_connections_total{rs2} did not count the %d connections made with rs1 down", more)
	if v := delta(f1, s1, "vipd_real_server_connections_total", "virtual_server", vs, "real_server", rs2Key); v != per["rs2"]+more {
		t.Errorf("vipd_real_server_connections_total{rs2} moved by %v, the client got %v answers from rs2", v, per["rs2"]+more)
	}

	// A failover and a preemption: d1's cable is cut (d1 FAULT, d2
	// MASTER), then plugged back (d1 preempts, d2 BACKUP again).
	h1.Cut()
	lab.Eventually(t, 5*time.Second, func() bool { return d2.state("VI_1") == "MASTER" && d1.state("VI_1") == "FAULT" },
		"after the cut: d1 %s, d2 %s; want FAULT, MASTER", d1.state("VI_1"), d2.state("VI_1"))
	h1.Restore()
	lab.Eventually(t, 5*time.Second, func() bool { return d1.state("VI_1") == "MASTER" && d2.state("VI_1") == "BACKUP" },
		"after the restore: d1 %s, d2 %s; want MASTER, BACKUP", d1.state("VI_1"), d2.state("VI_1"))
	t1, t2 := scrapeMetrics(t, client, m1), scrapeMetrics(t, client, m2)
	for _, c := range []struct {
		s, base scrape
		who     string
		name    string
		labels  []string
		min     float64
		max     float64
	}{
		// d2: BACKUP -> MASTER -> BACKUP.
		{t2, a2, "d2", "vipd_vrrp_transitions_total", inst, 2, 2},
		{t2, a2, "d2", "keepalived_become_master_total", ka, 1, 1},
		{t2, a2, "d2", "keepalived_release_master_total", ka, 1, 1},
		// d2 advertised while master; d1 heard it after the restore
		// (a lower priority: it preempts).
		{t2, a2, "d2", "vipd_vrrp_adverts_sent_total", inst, 1, 1e9},
		{t1, f1, "d1", "vipd_vrrp_adverts_received_total", inst, 1, 1e9},
		// d1: MASTER -> FAULT -> (BACKUP ->) MASTER.
		{t1, f1, "d1", "vipd_vrrp_transitions_total", inst, 2, 3},
		{t1, f1, "d1", "keepalived_become_master_total", ka, 1, 1},
		{t1, f1, "d1", "keepalived_release_master_total", ka, 1, 1},
		{t1, s1, "d1", "vipd_config_reloads_total", nil, 0, 0},
	} {
		if v := delta(c.s, c.base, c.name, c.labels...); v < c.min || v > c.max {
			t.Errorf("%s: %s moved by %v, want %v..%v", c.who, c.name, v, c.min, c.max)
		}
	}
	if v := t1.must(t, "keepalived_vrrp_state", append(ka, "ip_address", vip)...); v != 2 {
		t.Errorf("d1 keepalived_vrrp_state = %v after preempting, want 2 (MASTER)", v)
	}
	if v := t1.must(t, "vipd_vrrp_last_transition_timestamp_seconds", inst...); v < float64(time.Now().Add(-30*time.Second).Unix()) {
		t.Errorf("d1 vipd_vrrp_last_transition_timestamp_seconds = %v, not the preemption just now", v)
	}

	// A reload with vipctl that gives rs2 weight 3.
	if err := os.WriteFile(d1.conf, []byte(metricsConf(3).forState("MASTER", 150, p)), 0o644); err != nil {
		t.Fatal(err)
	}
	vipctl := lab.Binary(t, "./cmd/vipctl")
	if out, err := exec.Command(vipctl, "--socket", d1.sock, "reload").CombinedOutput(); err != nil {
		t.Fatalf("vipctl reload: %v\n%s", err, out)
	}
	rl := scrapeMetrics(t, client, m1)
	if v := delta(rl, t1, "vipd_config_reloads_total"); v != 1 {
		t.Errorf("vipd_config_reloads_total moved by %v for one vipctl reload", v)
	}
	if v := rl.must(t, "vipd_real_server_weight", "virtual_server", vs, "real_server", rs2Key); v != 3 {
		t.Errorf("vipd_real_server_weight{rs2} = %v after the reload, want 3", v)
	}
	if v := delta(rl, s1, "vipd_virtual_server_connections_total", "virtual_server", vs); v != n+more {
		t.Errorf("vipd_virtual_server_connections_total moved by %v over the run, want %d: a reload must not reset it", v, n+more)
	}
	if v := delta(rl, t1, "vipd_vrrp_transitions_total", inst...); v != 0 {
		t.Errorf("the reload caused %v transitions", v)
	}
	if v := rl.must(t, "vipd_check_up", "real_server", rs1Key, "kind", "HTTP_GET"); v != 0 {
		t.Errorf("vipd_check_up{rs1} = %v after the reload, its nginx is still down", v)
	}

	// The status page of the running master, in a browser on the client.
	dom := chromiumDOM(t, client, "http://"+m1+"/")
	pageBad := false
	for _, re := range []string{
		`<tr class="st-MASTER" data-instance="VI_1"><td>VI_1</td><td>eth0</td><td class="num">61</td>`,
		`data-service="` + regexp.QuoteMeta(vs) + `"`,
		regexp.QuoteMeta(vs) + ` — rr`,
		// rs2: up, weight 3 since the reload, its check's last result,
		// active, inactive and persistent connections, then the
		// connections it was given.
		`<tr class="rs-up" data-real-server="` + regexp.QuoteMeta(rs2Key) + `"><td>` + regexp.QuoteMeta(rs2Key) +
			`</td><td>Masq</td><td>UP</td><td class="num">3</td><td class="wrap">TCP_CHECK: connected</td>` +
			`(<td class="num">\d+</td>){3}` + fmt.Sprintf(`<td class="num">%v</td>`, per["rs2"]+more),
		// rs1 is out of the pool: one of one real server up, and every
		// connection of the run counted.
		`<tr class="total"><td>Total</td><td></td><td>1/1 up</td>(<td></td>){5}` + fmt.Sprintf(`<td class="num">%d</td>`, n+more),
		// rs1: DOWN in the checks table, with why.
		`<tr class="rs-down"><td>` + regexp.QuoteMeta(vs) + `</td><td>` + regexp.QuoteMeta(rs1Key) +
			`</td><td>HTTP_GET</td><td>DOWN</td><td class="wrap">[^<]*connection refused`,
		`, 1 reloads`,
		`updated \d\d:\d\d:\d\d, every second`,
	} {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("status page lacks %s", re)
			pageBad = true
		}
	}
	if strings.Contains(dom, "lost contact") {
		t.Error("status page says it lost contact with vipd")
		pageBad = true
	}
	if pageBad {
		t.Fatalf("status page DOM:\n%s", dom)
	}

	// rs1 comes back: its check passes again, it rejoins the pool, and
	// the page, loaded again, follows. A passing HTTP_GET has no last
	// result to show: the Check cell names it alone.
	nginx(t, rs1, "rs1")
	lab.Eventually(t, 8*time.Second, func() bool {
		s := scrapeMetrics(t, client, m1)
		v, _ := s.get(t, "vipd_check_up", "real_server", rs1Key, "kind", "HTTP_GET")
		up, _ := s.get(t, "vipd_virtual_server_real_servers_up", "virtual_server", vs)
		return v == 1 && up == 2
	}, "rs1's check did not pass again after its nginx restarted")
	dom = chromiumDOM(t, client, "http://"+m1+"/")
	for _, re := range []string{
		`<tr class="rs-up" data-real-server="` + regexp.QuoteMeta(rs1Key) + `"><td>` + regexp.QuoteMeta(rs1Key) +
			`</td><td>Masq</td><td>UP</td><td class="num">1</td><td class="wrap">HTTP_GET</td>`,
		`<tr class="total"><td>Total</td><td></td><td>2/2 up</td>`,
		`<tr class="rs-up"><td>` + regexp.QuoteMeta(vs) + `</td><td>` + regexp.QuoteMeta(rs1Key) + `</td><td>HTTP_GET</td><td>UP</td>`,
	} {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("status page with rs1 back lacks %s", re)
			pageBad = true
		}
	}
	if pageBad {
		t.Logf("status page DOM:\n%s", dom)
	}
}

// chromiumDOM loads url in headless Chromium running in h's namespace and
// returns the DOM once the page's scripts ran for 3 s of virtual time (the
// page fetches status.json at once and then every second).
func chromiumDOM(t *testing.T, h *lab.Host, url string) string {
	t.Helper()
	lab.RequireCommand(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, "chromium",
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--virtual-time-budget=3000",
		"--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium in %s: %v\n%s", h.Name, err, stderr)
	}
	return string(out)
}
