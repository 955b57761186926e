package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
)

func TestMetricsKeepalivedExporterNames(t *testing.T) {
	c := api.NewCollector(apitest.NewSource())
	want := `
# HELP keepalived_vrrp_state VRRP state as keepalived numbers it: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (vipd's STOP is 0). One series per VIP.
# TYPE keepalived_vrrp_state gauge
keepalived_vrrp_state{iname="VI_1",intf="eth0",ip_address="198.18.0.100",vrid="51"} 2
keepalived_vrrp_state{iname="VI_2",intf="eth0",ip_address="2001:db8::100",vrid="52"} 1
keepalived_vrrp_state{iname="VI_2",intf="eth0",ip_address="2001:db8::101",vrid="52"} 1
keepalived_vrrp_state{iname="VI_3",intf="eth1",ip_address="198.18.1.100",vrid="53"} 3
# HELP keepalived_advertisements_sent_total Advertisements sent.
# TYPE keepalived_advertisements_sent_total counter
keepalived_advertisements_sent_total{iname="VI_1",intf="eth0",vrid="51"} 3600
keepalived_advertisements_sent_total{iname="VI_2",intf="eth0",vrid="52"} 0
keepalived_advertisements_sent_total{iname="VI_3",intf="eth1",vrid="53"} 0
# HELP keepalived_authentication_failure_total Adverts failing authentication.
# TYPE keepalived_authentication_failure_total counter
keepalived_authentication_failure_total{iname="VI_1",intf="eth0",vrid="51"} 2
keepalived_authentication_failure_total{iname="VI_2",intf="eth0",vrid="52"} 0
keepalived_authentication_failure_total{iname="VI_3",intf="eth1",vrid="53"} 0
# HELP keepalived_become_master_total Times the instance became master.
# TYPE keepalived_become_master_total counter
keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"} 1
keepalived_become_master_total{iname="VI_2",intf="eth0",vrid="52"} 0
keepalived_become_master_total{iname="VI_3",intf="eth1",vrid="53"} 0
# HELP keepalived_script_status Tracking script status: 1 GOOD, 0 BAD (INIT is not exported, as keepalived does).
# TYPE keepalived_script_status gauge
keepalived_script_status{name="chk_nginx"} 1
# HELP keepalived_up 1 when the daemon answers (always 1 when served by vipd itself).
# TYPE keepalived_up gauge
keepalived_up 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"keepalived_vrrp_state", "keepalived_advertisements_sent_total", "keepalived_authentication_failure_total",
		"keepalived_become_master_total", "keepalived_script_status", "keepalived_up"); err != nil {
		t.Error(err)
	}
}

func TestMetricsNodeExporterIPVSNames(t *testing.T) {
	c := api.NewCollector(apitest.NewSource())
	want := `
# HELP node_ipvs_backend_weight The current backend weight by local and remote address.
# TYPE node_ipvs_backend_weight gauge
node_ipvs_backend_weight{local_address="",local_mark="00000001",local_port="0",proto="FWM",remote_address="198.18.0.23",remote_port="0"} 1
node_ipvs_backend_weight{local_address="198.18.0.100",local_mark="",local_port="53",proto="UDP",remote_address="198.18.0.21",remote_port="53"} 1
node_ipvs_backend_weight{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.21",remote_port="80"} 3
node_ipvs_backend_weight{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.22",remote_port="80"} 0
# HELP node_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE node_ipvs_backend_connections_active gauge
node_ipvs_backend_connections_active{local_address="",local_mark="00000001",local_port="0",proto="FWM",remote_address="198.18.0.23",remote_port="0"} 0
node_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="53",proto="UDP",remote_address="198.18.0.21",remote_port="53"} 0
node_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.21",remote_port="80"} 17
node_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.22",remote_port="80"} 0
# HELP node_ipvs_connections_total The total number of connections made (all virtual services).
# TYPE node_ipvs_connections_total counter
node_ipvs_connections_total 13555
# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data (all virtual services).
# TYPE node_ipvs_outgoing_bytes_total counter
node_ipvs_outgoing_bytes_total 96000
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"node_ipvs_backend_weight", "node_ipvs_backend_connections_active", "node_ipvs_connections_total", "node_ipvs_outgoing_bytes_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsVipd(t *testing.T) {
	c := api.NewCollector(apitest.NewSource())
	want := `
# HELP vipd_vrrp_adverts_dropped_total Adverts dropped, by reason.
# TYPE vipd_vrrp_adverts_dropped_total counter
vipd_vrrp_adverts_dropped_total{instance="VI_1",interface="eth0",reason="auth",vrid="51"} 2
vipd_vrrp_adverts_dropped_total{instance="VI_1",interface="eth0",reason="ttl",vrid="51"} 1
vipd_vrrp_adverts_dropped_total{instance="VI_3",interface="eth1",reason="checksum",vrid="53"} 7
vipd_vrrp_adverts_dropped_total{instance="VI_3",interface="eth1",reason="length",vrid="53"} 4
vipd_vrrp_adverts_dropped_total{instance="VI_3",interface="eth1",reason="ttl",vrid="53"} 1
# HELP vipd_vrrp_effective_priority Priority after tracking adjustments.
# TYPE vipd_vrrp_effective_priority gauge
vipd_vrrp_effective_priority{instance="VI_1",interface="eth0",vrid="51"} 110
vipd_vrrp_effective_priority{instance="VI_2",interface="eth0",vrid="52"} 90
vipd_vrrp_effective_priority{instance="VI_3",interface="eth1",vrid="53"} 100
# HELP vipd_real_server_up 1 when every health check of the real server passes (or it has none).
# TYPE vipd_real_server_up gauge
vipd_real_server_up{real_server="198.18.0.21:53",virtual_server="UDP 198.18.0.100:53"} 1
vipd_real_server_up{real_server="198.18.0.21:80",virtual_server="TCP 198.18.0.100:80"} 1
vipd_real_server_up{real_server="198.18.0.22:80",virtual_server="TCP 198.18.0.100:80"} 0
vipd_real_server_up{real_server="198.18.0.23:0",virtual_server="FWM 1"} 1
# HELP vipd_virtual_server_real_servers_up Real servers that are up and have a weight above 0.
# TYPE vipd_virtual_server_real_servers_up gauge
vipd_virtual_server_real_servers_up{virtual_server="FWM 1"} 1
vipd_virtual_server_real_servers_up{virtual_server="TCP 198.18.0.100:80"} 1
vipd_virtual_server_real_servers_up{virtual_server="UDP 198.18.0.100:53"} 1
# HELP vipd_virtual_server_quorum_up 1 while the virtual server has its quorum (live weight of its real servers, with keepalived's hysteresis), 0 when lost (the sorry server runs).
# TYPE vipd_virtual_server_quorum_up gauge
vipd_virtual_server_quorum_up{virtual_server="TCP 198.18.0.100:80"} 1
vipd_virtual_server_quorum_up{virtual_server="UDP 198.18.0.100:53"} 0
# HELP vipd_check_duration_seconds Duration of the checker's last check.
# TYPE vipd_check_duration_seconds gauge
vipd_check_duration_seconds{kind="DNS_CHECK",real_server="198.18.0.21:53",virtual_server="UDP 198.18.0.100:53"} 0.0008
vipd_check_duration_seconds{kind="HTTP_GET",real_server="198.18.0.21:80",virtual_server="TCP 198.18.0.100:80"} 0.003
vipd_check_duration_seconds{kind="HTTP_GET",real_server="198.18.0.22:80",virtual_server="TCP 198.18.0.100:80"} 0.0015
# HELP vipd_check_up 1 when the checker's last verdict is up.
# TYPE vipd_check_up gauge
vipd_check_up{kind="DNS_CHECK",real_server="198.18.0.21:53",virtual_server="UDP 198.18.0.100:53"} 1
vipd_check_up{kind="HTTP_GET",real_server="198.18.0.21:80",virtual_server="TCP 198.18.0.100:80"} 1
vipd_check_up{kind="HTTP_GET",real_server="198.18.0.22:80",virtual_server="TCP 198.18.0.100:80"} 0
# HELP vipd_real_server_connections_total Connections scheduled to the real server.
# TYPE vipd_real_server_connections_total counter
vipd_real_server_connections_total{real_server="198.18.0.21:53",virtual_server="UDP 198.18.0.100:53"} 800
vipd_real_server_connections_total{real_server="198.18.0.21:80",virtual_server="TCP 198.18.0.100:80"} 12345
vipd_real_server_connections_total{real_server="198.18.0.22:80",virtual_server="TCP 198.18.0.100:80"} 410
vipd_real_server_connections_total{real_server="198.18.0.23:0",virtual_server="FWM 1"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"vipd_vrrp_adverts_dropped_total", "vipd_vrrp_effective_priority", "vipd_real_server_up",
		"vipd_virtual_server_real_servers_up", "vipd_virtual_server_quorum_up", "vipd_check_duration_seconds", "vipd_check_up",
		"vipd_real_server_connections_total"); err != nil {
		t.Error(err)
	}
}

// TestMetricsFollowState checks there is no shadow state: a change in the
// daemon shows at the next scrape.
func TestMetricsFollowState(t *testing.T) {
	src := apitest.NewSource()
	c := api.NewCollector(src)
	state := func() float64 {
		return testutil.ToFloat64(metricWithLabels(t, c, "vipd_vrrp_state", map[string]string{"instance": "VI_1", "state": "MASTER"}))
	}
	if got := state(); got != 1 {
		t.Fatalf("VI_1 MASTER = %v, want 1", got)
	}
	src.Update(func(st *api.Status) { st.Instances[0].State = "BACKUP"; st.Instances[0].Transitions++ })
	if got := state(); got != 0 {
		t.Fatalf("after the transition VI_1 MASTER = %v, want 0", got)
	}
	src.SetReady(apitest.ErrNotReady)
	if got := testutil.ToFloat64(metricWithLabels(t, c, "vipd_ready", nil)); got != 0 {
		t.Errorf("vipd_ready = %v while not ready", got)
	}
	// Every instance has every state series, so absent() alerts work.
	if n := testutil.CollectAndCount(c, "vipd_vrrp_state"); n != 3*5 {
		t.Errorf("vipd_vrrp_state has %d series, want 15", n)
	}
}

func TestMetricsLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(api.NewCollector(apitest.NewSource()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		// keepalived_up and keepalived_vrrp_state are the exporter's
		// names; we keep them as they are for the dashboards' sake.
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsBadLabelValue checks a label value Prometheus refuses (an
// instance name that is not UTF-8) costs its own series, not the scrape.
func TestMetricsBadLabelValue(t *testing.T) {
	src := apitest.NewSource()
	src.Update(func(st *api.Status) { st.Instances[2].Name = "VI_\xff" })
	h := api.NewWebHandler(src, api.WebOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape = %d %s", rec.Code, body)
	}
	if !strings.Contains(string(body), `keepalived_vrrp_state{iname="VI_1"`) {
		t.Errorf("good series missing from the scrape:\n%s", body)
	}
	if strings.Contains(string(body), "VI_\xff") {
		t.Error("invalid label value exported")
	}
}

// metricWithLabels collects c and returns a collector holding only the
// series of name whose labels include want.
func metricWithLabels(t *testing.T, c *api.Collector, name string, want map[string]string) *filtered {
	t.Helper()
	return &filtered{c: c, name: name, want: want}
}

// TestReloadResultsMetric: every result has a series (so rate() and
// absent() work before the first failure), with the daemon's counts.
func TestReloadResultsMetric(t *testing.T) {
	src := apitest.NewSource()
	c := api.NewCollector(src)
	src.Update(func(st *api.Status) {
		st.ReloadResults = map[string]uint64{api.ReloadOK: 3, api.ReloadFailed: 1}
	})
	want := `# HELP vipd_reloads_total Reload attempts by result: ok, refused (the configuration was invalid; nothing changed) or failed (a commit step failed; see the log for the step and what runs).
# TYPE vipd_reloads_total counter
vipd_reloads_total{result="failed"} 1
vipd_reloads_total{result="ok"} 3
vipd_reloads_total{result="refused"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "vipd_reloads_total"); err != nil {
		t.Error(err)
	}
}
