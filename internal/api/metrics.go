package api

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vipd/vipd/internal/lvs"
)

// Collector exports a daemon's state as Prometheus metrics. It reads
// Source.Status() at scrape time and keeps no state of its own, so the
// numbers are never staler than the scrape and there is nothing to keep in
// step with the daemon.
//
// It exports three families (docs/metrics.md has the full mapping):
//   - keepalived_*: the names of the widely used keepalived exporter
//     (github.com/mehdy/keepalived-exporter), so dashboards built for
//     keepalived work unchanged;
//   - node_ipvs_*: the names of node_exporter's IPVS collector, for the
//     LVS dashboards;
//   - vipd_*: vipd's own, finer (drops by reason, checks, real servers).
type Collector struct {
	src Source
}

// NewCollector returns a collector reading src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// NewRegistry returns a registry with vipd's collector and the Go runtime
// and process collectors, what the --metrics listener serves.
func NewRegistry(src Source) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(NewCollector(src))
	r.MustRegister(collectors.NewGoCollector())
	r.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Label sets.
var (
	kaLabels      = []string{"iname", "intf", "vrid"}
	kaStateLabels = []string{"iname", "intf", "vrid", "ip_address"}
	ipvsLabels    = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}
	instLabels    = []string{"instance", "interface", "vrid"}
	vsLabels      = []string{"virtual_server"}
	rsLabels      = []string{"virtual_server", "real_server"}
	checkLabels   = []string{"virtual_server", "real_server", "kind"}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// keepalived exporter compatible.
var (
	kaUp    = desc("keepalived_up", "1 when the daemon answers (always 1 when served by vipd itself).")
	kaState = desc("keepalived_vrrp_state", "VRRP state as keepalived numbers it: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (vipd's STOP is 0). One series per VIP.", kaStateLabels...)

	kaCounters = []struct {
		d *prometheus.Desc
		v func(VRRPStats) uint64
	}{
		{desc("keepalived_advertisements_received_total", "Advertisements received.", kaLabels...), func(s VRRPStats) uint64 { return s.AdvertRcvd }},
		{desc("keepalived_advertisements_sent_total", "Advertisements sent.", kaLabels...), func(s VRRPStats) uint64 { return s.AdvertSent }},
		{desc("keepalived_become_master_total", "Times the instance became master.", kaLabels...), func(s VRRPStats) uint64 { return s.BecomeMaster }},
		{desc("keepalived_release_master_total", "Times the instance released master.", kaLabels...), func(s VRRPStats) uint64 { return s.ReleaseMaster }},
		{desc("keepalived_packet_length_errors_total", "Adverts with a bad length.", kaLabels...), func(s VRRPStats) uint64 { return s.PacketLenErr }},
		{desc("keepalived_advertisements_interval_errors_total", "Adverts with an advert interval different from ours.", kaLabels...), func(s VRRPStats) uint64 { return s.AdvertIntervalErr }},
		{desc("keepalived_ip_ttl_errors_total", "Adverts with an IP TTL other than 255.", kaLabels...), func(s VRRPStats) uint64 { return s.IPTTLErr }},
		{desc("keepalived_invalid_type_received_total", "Adverts with an invalid VRRP type.", kaLabels...), func(s VRRPStats) uint64 { return s.InvalidTypeRcvd }},
		{desc("keepalived_address_list_errors_total", "Adverts whose address list differs from ours.", kaLabels...), func(s VRRPStats) uint64 { return s.AddrListErr }},
		{desc("keepalived_authentication_invalid_total", "Adverts with an invalid authentication type.", kaLabels...), func(s VRRPStats) uint64 { return s.InvalidAuthType }},
		{desc("keepalived_authentication_mismatch_total", "Adverts with an authentication type different from ours.", kaLabels...), func(s VRRPStats) uint64 { return s.AuthTypeMismatch }},
		{desc("keepalived_authentication_failure_total", "Adverts failing authentication.", kaLabels...), func(s VRRPStats) uint64 { return s.AuthFailure }},
		{desc("keepalived_priority_zero_received_total", "Priority 0 adverts received (a master stepping down).", kaLabels...), func(s VRRPStats) uint64 { return s.PriZeroRcvd }},
		{desc("keepalived_priority_zero_sent_total", "Priority 0 adverts sent.", kaLabels...), func(s VRRPStats) uint64 { return s.PriZeroSent }},
	}
	kaScriptStatus = desc("keepalived_script_status", "Tracking script status: 1 GOOD, 0 BAD (INIT is not exported, as keepalived does).", "name")
)

// node_exporter IPVS collector compatible.
var (
	ipvsConns    = desc("node_ipvs_connections_total", "The total number of connections made (all virtual services).")
	ipvsInPkts   = desc("node_ipvs_incoming_packets_total", "The total number of incoming packets (all virtual services).")
	ipvsOutPkts  = desc("node_ipvs_outgoing_packets_total", "The total number of outgoing packets (all virtual services).")
	ipvsInBytes  = desc("node_ipvs_incoming_bytes_total", "The total amount of incoming data (all virtual services).")
	ipvsOutBytes = desc("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data (all virtual services).")
	ipvsActive   = desc("node_ipvs_backend_connections_active", "The current active connections by local and remote address.", ipvsLabels...)
	ipvsInactive = desc("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", ipvsLabels...)
	ipvsWeight   = desc("node_ipvs_backend_weight", "The current backend weight by local and remote address.", ipvsLabels...)
)

// vipd's own.
var (
	vInfo         = desc("vipd_build_info", "Always 1; labels say the version, data plane and router_id.", "version", "dataplane", "router_id")
	vReady        = desc("vipd_ready", "1 when the configuration is applied (the readiness endpoint answers 200).")
	vStart        = desc("vipd_start_time_seconds", "When the daemon started, Unix time.")
	vLoaded       = desc("vipd_config_loaded_timestamp_seconds", "When the running configuration was loaded, Unix time.")
	vReloads      = desc("vipd_config_reloads_total", "Successful configuration reloads.")
	vUpgrades     = desc("vipd_upgrades_total", "vipctl upgrade attempts this process ran, by result: ok (a new process took over; this one drains and exits) or failed (nothing changed; the log and vipctl name the step).", "result")
	vReloadRes    = desc("vipd_reloads_total", "Reload attempts by result: ok, refused (the configuration was invalid; nothing changed) or failed (a commit step failed; see the log for the step and what runs).", "result")
	vVRRPState    = desc("vipd_vrrp_state", "1 for the instance's current state, 0 for the others.", append(instLabels, "state")...)
	vPriority     = desc("vipd_vrrp_priority", "Configured priority.", instLabels...)
	vEffPriority  = desc("vipd_vrrp_effective_priority", "Priority after tracking adjustments.", instLabels...)
	vMasterPrio   = desc("vipd_vrrp_master_priority", "Priority of the current master as last heard.", instLabels...)
	vTransitions  = desc("vipd_vrrp_transitions_total", "State transitions.", instLabels...)
	vLastTrans    = desc("vipd_vrrp_last_transition_timestamp_seconds", "When the last transition happened, Unix time.", instLabels...)
	vAdvSent      = desc("vipd_vrrp_adverts_sent_total", "Adverts sent.", instLabels...)
	vAdvRcvd      = desc("vipd_vrrp_adverts_received_total", "Adverts received and accepted.", instLabels...)
	vAdvDropped   = desc("vipd_vrrp_adverts_dropped_total", "Adverts dropped, by reason.", append(instLabels, "reason")...)
	vVIPs         = desc("vipd_vrrp_vips", "Number of virtual addresses of the instance.", instLabels...)
	vSyncState    = desc("vipd_vrrp_sync_group_state", "1 for the sync group's current state, 0 for the others.", "group", "state")
	vScriptState  = desc("vipd_vrrp_script_state", "1 for the tracking script's current state, 0 for the others.", "script", "state")
	vVSInfo       = desc("vipd_virtual_server_info", "Always 1; labels describe the virtual server.", "virtual_server", "scheduler", "persistent")
	vVSConns      = desc("vipd_virtual_server_connections_total", "Connections scheduled.", vsLabels...)
	vVSInPkts     = desc("vipd_virtual_server_in_packets_total", "Packets from clients.", vsLabels...)
	vVSOutPkts    = desc("vipd_virtual_server_out_packets_total", "Packets to clients.", vsLabels...)
	vVSInBytes    = desc("vipd_virtual_server_in_bytes_total", "Bytes from clients.", vsLabels...)
	vVSOutBytes   = desc("vipd_virtual_server_out_bytes_total", "Bytes to clients.", vsLabels...)
	vVSUp         = desc("vipd_virtual_server_real_servers_up", "Real servers that are up and have a weight above 0.", vsLabels...)
	vVSReal       = desc("vipd_virtual_server_real_servers", "Real servers configured.", vsLabels...)
	vVSQuorum     = desc("vipd_virtual_server_quorum_up", "1 while the virtual server has its quorum (live weight of its real servers, with keepalived's hysteresis), 0 when lost (the sorry server runs).", vsLabels...)
	vRSUp         = desc("vipd_real_server_up", "1 when every health check of the real server passes (or it has none).", rsLabels...)
	vRSWeight     = desc("vipd_real_server_weight", "Effective weight given to the data plane (0: quiesced).", rsLabels...)
	vRSInfo       = desc("vipd_real_server_info", "Always 1; labels describe the real server.", append(rsLabels, "forward")...)
	vRSActive     = desc("vipd_real_server_active_connections", "Active connections.", rsLabels...)
	vRSInactive   = desc("vipd_real_server_inactive_connections", "Inactive connections.", rsLabels...)
	vRSPersist    = desc("vipd_real_server_persistent_connections", "Persistence templates pointing at the real server.", rsLabels...)
	vRSConns      = desc("vipd_real_server_connections_total", "Connections scheduled to the real server.", rsLabels...)
	vRSInPkts     = desc("vipd_real_server_in_packets_total", "Packets from clients.", rsLabels...)
	vRSOutPkts    = desc("vipd_real_server_out_packets_total", "Packets to clients.", rsLabels...)
	vRSInBytes    = desc("vipd_real_server_in_bytes_total", "Bytes from clients.", rsLabels...)
	vRSOutBytes   = desc("vipd_real_server_out_bytes_total", "Bytes to clients.", rsLabels...)
	vCheckUp      = desc("vipd_check_up", "1 when the checker's last verdict is up.", checkLabels...)
	vCheckDur     = desc("vipd_check_duration_seconds", "Duration of the checker's last check.", checkLabels...)
	vCheckTotal   = desc("vipd_checks_total", "Checks run.", checkLabels...)
	vCheckFail    = desc("vipd_check_failures_total", "Checks that failed.", checkLabels...)
	vCheckLast    = desc("vipd_check_last_timestamp_seconds", "When the last check ran, Unix time.", checkLabels...)
	vCheckChanged = desc("vipd_check_last_change_timestamp_seconds", "When the verdict last changed, Unix time.", checkLabels...)
	vPackets      = desc("vipd_dataplane_packets_total", "Packets of the xdp data plane's packet path by reason: tx and redirect (forwarded), flow_hit, flow_new and persist (how a forwarded packet's server was chosen), and why others went to the kernel or were dropped (not_ip, malformed, fragment, not_l4, no_service, no_dest, too_big, not_ours).", "reason")
)

// vrrpStates are every state an instance can be in, so that the state
// series of an instance always exist (a 0 series is as useful as a 1).
var vrrpStates = []string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"}

var scriptStates = []string{"INIT", "GOOD", "BAD"}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		kaUp, kaState, kaScriptStatus,
		ipvsConns, ipvsInPkts, ipvsOutPkts, ipvsInBytes, ipvsOutBytes, ipvsActive, ipvsInactive, ipvsWeight,
		vInfo, vReady, vStart, vLoaded, vReloads, vReloadRes, vUpgrades, vVRRPState, vPriority, vEffPriority, vMasterPrio,
		vTransitions, vLastTrans, vAdvSent, vAdvRcvd, vAdvDropped, vVIPs, vSyncState, vScriptState,
		vVSInfo, vVSConns, vVSInPkts, vVSOutPkts, vVSInBytes, vVSOutBytes, vVSUp, vVSReal, vVSQuorum,
		vRSUp, vRSWeight, vRSInfo, vRSActive, vRSInactive, vRSPersist, vRSConns, vRSInPkts, vRSOutPkts, vRSInBytes, vRSOutBytes,
		vCheckUp, vCheckDur, vCheckTotal, vCheckFail, vCheckLast, vCheckChanged, vPackets,
	} {
		ch <- d
	}
	for _, k := range kaCounters {
		ch <- k.d
	}
	for _, d := range bgpDescriptions {
		ch <- d
	}
	for _, d := range bfdDescriptions {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l []string) {
		// Label values come from the configuration; one that Prometheus
		// refuses (invalid UTF-8) fails that series, not the process.
		m, err := prometheus.NewConstMetric(d, t, v, l...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) { emit(d, prometheus.GaugeValue, v, l) }
	counter := func(d *prometheus.Desc, v uint64, l ...string) { emit(d, prometheus.CounterValue, float64(v), l) }
	unix := func(d *prometheus.Desc, t interface{ Unix() int64 }, zero bool, l ...string) {
		if !zero {
			gauge(d, float64(t.Unix()), l...)
		}
	}

	gauge(kaUp, 1)
	gauge(vInfo, 1, st.Version, st.Dataplane, st.RouterID)
	gauge(vReady, b2f(c.src.Ready() == nil))
	unix(vStart, st.Started, st.Started.IsZero())
	unix(vLoaded, st.ConfigLoaded, st.ConfigLoaded.IsZero())
	counter(vReloads, st.Reloads)
	for _, r := range ReloadResults {
		counter(vReloadRes, st.ReloadResults[r], r)
	}
	for _, r := range UpgradeResults {
		counter(vUpgrades, st.UpgradeResults[r], r)
	}

	for _, in := range st.Instances {
		vrid := strconv.Itoa(in.VRID)
		ka := []string{in.Name, in.Interface, vrid}
		for _, k := range kaCounters {
			counter(k.d, k.v(in.Stats), ka...)
		}
		kst := keepalivedState(in.State)
		if len(in.VIPs) == 0 {
			gauge(kaState, kst, in.Name, in.Interface, vrid, "")
		}
		seen := map[[2]string]bool{}
		for _, v := range in.VIPs {
			ip, dev := splitVIP(v, in.Interface)
			if seen[[2]string{ip, dev}] {
				continue
			}
			seen[[2]string{ip, dev}] = true
			gauge(kaState, kst, in.Name, dev, vrid, ip)
		}

		il := []string{in.Name, in.Interface, vrid}
		for _, s := range vrrpStates {
			gauge(vVRRPState, b2f(in.State == s), append(il, s)...)
		}
		gauge(vPriority, float64(in.Priority), il...)
		gauge(vEffPriority, float64(in.EffectivePriority), il...)
		gauge(vMasterPrio, float64(in.MasterPriority), il...)
		counter(vTransitions, in.Transitions, il...)
		unix(vLastTrans, in.LastTransition, in.LastTransition.IsZero(), il...)
		counter(vAdvSent, in.Stats.AdvertSent, il...)
		counter(vAdvRcvd, in.Stats.AdvertRcvd, il...)
		gauge(vVIPs, float64(len(in.VIPs)), il...)
		for _, r := range sortedKeys(in.Stats.Dropped) {
			counter(vAdvDropped, in.Stats.Dropped[r], append(il, r)...)
		}
	}
	for _, g := range st.SyncGroups {
		for _, s := range vrrpStates {
			gauge(vSyncState, b2f(g.State == s), g.Name, s)
		}
	}
	for _, s := range st.Scripts {
		switch s.State {
		case "GOOD":
			gauge(kaScriptStatus, 1, s.Name)
		case "BAD":
			gauge(kaScriptStatus, 0, s.Name)
		}
		for _, v := range scriptStates {
			gauge(vScriptState, b2f(s.State == v), s.Name, v)
		}
	}

	down := RealServersDown(st.Checks)
	var total lvs.Stats
	type ipvsKey [6]string
	type ipvsSum struct{ active, inactive, weight int }
	ipvsSums := map[ipvsKey]*ipvsSum{}
	var ipvsOrder []ipvsKey
	for _, svc := range st.Services {
		vs := svc.Key.String()
		total.Conns += svc.Stats.Conns
		total.InPkts += svc.Stats.InPkts
		total.OutPkts += svc.Stats.OutPkts
		total.InBytes += svc.Stats.InBytes
		total.OutBytes += svc.Stats.OutBytes
		gauge(vVSInfo, 1, vs, svc.Scheduler, strconv.FormatBool(svc.Persistence > 0))
		counter(vVSConns, svc.Stats.Conns, vs)
		counter(vVSInPkts, svc.Stats.InPkts, vs)
		counter(vVSOutPkts, svc.Stats.OutPkts, vs)
		counter(vVSInBytes, svc.Stats.InBytes, vs)
		counter(vVSOutBytes, svc.Stats.OutBytes, vs)
		up := 0
		for _, d := range svc.Dests {
			rs := d.Addr.String()
			l := []string{vs, rs}
			isUp := !down[RealServerKey{vs, rs}]
			if isUp && d.Weight > 0 {
				up++
			}
			gauge(vRSUp, b2f(isUp), l...)
			gauge(vRSWeight, float64(d.Weight), l...)
			gauge(vRSInfo, 1, vs, rs, d.Forward.String())
			gauge(vRSActive, float64(d.ActiveConns), l...)
			gauge(vRSInactive, float64(d.InactiveConns), l...)
			gauge(vRSPersist, float64(d.PersistConns), l...)
			counter(vRSConns, d.Stats.Conns, l...)
			counter(vRSInPkts, d.Stats.InPkts, l...)
			counter(vRSOutPkts, d.Stats.OutPkts, l...)
			counter(vRSInBytes, d.Stats.InBytes, l...)
			counter(vRSOutBytes, d.Stats.OutBytes, l...)

			k := ipvsBackendLabels(svc.Key, d.Addr)
			s, ok := ipvsSums[k]
			if !ok {
				s = &ipvsSum{}
				ipvsSums[k] = s
				ipvsOrder = append(ipvsOrder, k)
			}
			s.active += d.ActiveConns
			s.inactive += d.InactiveConns
			s.weight += d.Weight
		}
		gauge(vVSUp, float64(up), vs)
		gauge(vVSReal, float64(len(svc.Dests)), vs)
		if up, ok := st.Quorum[vs]; ok {
			gauge(vVSQuorum, b2f(up), vs)
		}
	}
	for _, r := range sortedKeys(st.Packets) {
		counter(vPackets, st.Packets[r], r)
	}
	counter(ipvsConns, total.Conns)
	counter(ipvsInPkts, total.InPkts)
	counter(ipvsOutPkts, total.OutPkts)
	counter(ipvsInBytes, total.InBytes)
	counter(ipvsOutBytes, total.OutBytes)
	for _, k := range ipvsOrder {
		s := ipvsSums[k]
		gauge(ipvsActive, float64(s.active), k[:]...)
		gauge(ipvsInactive, float64(s.inactive), k[:]...)
		gauge(ipvsWeight, float64(s.weight), k[:]...)
	}

	seen := map[[3]string]bool{}
	for _, chk := range st.Checks {
		l := []string{chk.VirtualServer, chk.RealServer, chk.Kind}
		// Two checkers of the same kind on one real server would collide;
		// the first one wins rather than failing the whole scrape.
		if k := [3]string(l); seen[k] {
			continue
		} else {
			seen[k] = true
		}
		gauge(vCheckUp, b2f(chk.Up), l...)
		gauge(vCheckDur, chk.Duration.Seconds(), l...)
		counter(vCheckTotal, chk.Checks, l...)
		counter(vCheckFail, chk.Failures, l...)
		unix(vCheckLast, chk.LastCheck, chk.LastCheck.IsZero(), l...)
		unix(vCheckChanged, chk.LastChange, chk.LastChange.IsZero(), l...)
	}
	collectBGP(st, emit)
	collectBFD(st, emit)
}

// RealServerKey names a real server of a virtual server as Check does:
// ("TCP 198.18.0.100:80", "198.18.0.21:80").
type RealServerKey struct {
	VirtualServer string
	RealServer    string
}

// RealServersDown returns the real servers that have at least one failing
// checker: keepalived takes a real server out when any of its checkers
// fails.
func RealServersDown(checks []Check) map[RealServerKey]bool {
	down := map[RealServerKey]bool{}
	for _, c := range checks {
		if !c.Up {
			down[RealServerKey{c.VirtualServer, c.RealServer}] = true
		}
	}
	return down
}

// keepalivedState numbers a state as keepalived's exporter does.
func keepalivedState(s string) float64 {
	switch s {
	case "BACKUP":
		return 1
	case "MASTER":
		return 2
	case "FAULT":
		return 3
	}
	return 0
}

// splitVIP takes a VIP as the daemon lists it ("198.18.0.100/24",
// "198.18.0.100/24 dev eth1 label eth1:1", "2001:db8::1") and returns the
// bare address and the interface it is on.
func splitVIP(v, defIntf string) (ip, intf string) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return "", defIntf
	}
	ip = f[0]
	if i := strings.IndexByte(ip, '/'); i >= 0 {
		ip = ip[:i]
	}
	intf = defIntf
	for i := 1; i+1 < len(f); i++ {
		if f[i] == "dev" {
			intf = f[i+1]
		}
	}
	return ip, intf
}

// ipvsBackendLabels are node_exporter's label values for a destination,
// as it reads them from /proc/net/ip_vs: fwmark services have no local
// address and their mark in upper-case hex, 8 digits.
func ipvsBackendLabels(k lvs.ServiceKey, d netip.AddrPort) [6]string {
	if k.FWMark != 0 {
		return [6]string{"", "0", d.Addr().String(), strconv.Itoa(int(d.Port())), "FWM", fmt.Sprintf("%08X", k.FWMark)}
	}
	return [6]string{k.Addr.Addr().String(), strconv.Itoa(int(k.Addr.Port())), d.Addr().String(), strconv.Itoa(int(d.Port())), k.Proto.String(), ""}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
