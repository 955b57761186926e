// Package api is vipd's control surface: a JSON API on a unix socket (what
// vipctl talks to), and an opt-in HTTP listener with Prometheus metrics, a
// live status page and liveness/readiness endpoints.
//
// The daemon implements Source; this package only reads through it, so the
// daemon's goroutines stay the single owners of their state.
package api

import (
	"context"
	"fmt"
	"github.com/vipd/vipd/internal/bfd"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Source is what the daemon exposes to the API. Every method returns a
// snapshot the caller may keep; none blocks for long.
type Source interface {
	Status() Status
	Conns() []lvs.ConnEntry
	// Reload re-reads the configuration, validates it and applies the
	// difference. A configuration error leaves the running one in place
	// and is returned as *ConfigError; a valid configuration one of whose
	// commit steps failed comes back as *CommitError (the step, and what
	// runs now).
	Reload(ctx context.Context) error
	// Ready returns nil once the configuration is applied (VRRP running,
	// data plane programmed); otherwise why not.
	Ready() error
}

// ConfigError is a rejected configuration: every diagnostic, each naming
// file:line.
type ConfigError struct {
	Diagnostics []string `json:"diagnostics"`
}

func (e *ConfigError) Error() string {
	if len(e.Diagnostics) == 1 {
		return "configuration rejected: " + e.Diagnostics[0]
	}
	s := "configuration rejected:"
	for _, d := range e.Diagnostics {
		s += "\n  " + d
	}
	return s
}

// Results of a reload, as Status.ReloadResults and the
// vipd_reloads_total metric count them.
const (
	ReloadOK      = "ok"      // the new configuration runs
	ReloadRefused = "refused" // invalid configuration: nothing was changed
	ReloadFailed  = "failed"  // valid, but a commit step failed (CommitError)
)

// ReloadResults lists every result, in the order metrics show them.
var ReloadResults = []string{ReloadOK, ReloadRefused, ReloadFailed}

// CommitError is a reload whose configuration was valid but one of the
// steps that apply it failed: Step names it, Running says what runs now
// (the steps already committed are undone, so normally the previous
// configuration; Running says so when an undo failed too).
type CommitError struct {
	Step    string `json:"step"`
	Reason  string `json:"reason"`
	Running string `json:"running"`
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("reload failed at step %q: %s; running now: %s", e.Step, e.Reason, e.Running)
}

// Status is the whole observable state of a vipd daemon.
type Status struct {
	Version      string    `json:"version"`
	RouterID     string    `json:"router_id"`
	Hostname     string    `json:"hostname"`
	PID          int       `json:"pid"`
	Started      time.Time `json:"started"`
	ConfigFile   string    `json:"config_file"`
	ConfigLoaded time.Time `json:"config_loaded"`
	Reloads      uint64    `json:"reloads"`
	// ReloadResults counts reload attempts by result (ReloadResults).
	ReloadResults map[string]uint64 `json:"reload_results,omitempty"`
	// UpgradeResults counts vipctl upgrade attempts by result
	// (UpgradeResults).
	UpgradeResults map[string]uint64 `json:"upgrade_results,omitempty"`
	Dataplane      string            `json:"dataplane"` // proxy or ipvs
	// IPVS is what the kernel's IPVS reports (IPVS_CMD_GET_INFO), with the
	// ipvs data plane only: vipctl list prints it first, as ipvsadm does.
	IPVS *IPVSInfo `json:"ipvs,omitempty"`

	Instances  []Instance          `json:"instances"`
	SyncGroups []SyncGroup         `json:"sync_groups,omitempty"`
	Services   []lvs.ServiceStatus `json:"services"`
	Checks     []Check             `json:"checks"`
	Scripts    []Script            `json:"scripts,omitempty"`
	Processes  []Process           `json:"processes,omitempty"`
	// Quorum is each virtual server's quorum state (keepalived's quorum
	// with hysteresis), by the same name as Check.VirtualServer.
	Quorum map[string]bool `json:"quorum,omitempty"`
	BGP    *BGP            `json:"bgp,omitempty"`
	// BFD lists the bfd_instance sessions, by name.
	BFD []bfd.SessionStatus `json:"bfd,omitempty"`
	// Packets counts what a packet-path data plane (xdp) did with each
	// packet, by reason (docs/dataplanes.md): tx and redirect forwarded
	// it; flow_hit, flow_new and persist say how the server was chosen
	// (besides tx or redirect); the others are packets passed to the
	// kernel or dropped, and why. Absent for the proxy and ipvs.
	Packets map[string]uint64 `json:"packets,omitempty"`
}

// IPVSInfo is the kernel's IPVS version and connection table size
// (buckets of its hash table, 2^CONFIG_IP_VS_TAB_BITS).
type IPVSInfo struct {
	Version     string `json:"version"` // "1.2.1"
	ConnTabSize int    `json:"conn_tab_size"`
}

// Instance is one VRRP instance.
type Instance struct {
	Name              string        `json:"name"`
	Interface         string        `json:"interface"`
	VRID              int           `json:"vrid"`
	Version           int           `json:"version"` // 2 or 3
	Family            string        `json:"family"`  // inet or inet6
	State             string        `json:"state"`   // INIT, BACKUP, MASTER, FAULT, STOP
	Priority          int           `json:"priority"`
	EffectivePriority int           `json:"effective_priority"`
	AdvertInterval    time.Duration `json:"advert_interval"`
	MasterAddr        netip.Addr    `json:"master_addr"`     // current master as last heard (ourselves when master)
	MasterPriority    int           `json:"master_priority"` // as last heard
	VIPs              []string      `json:"vips"`
	SyncGroup         string        `json:"sync_group,omitempty"`
	Transitions       uint64        `json:"transitions"`
	LastTransition    time.Time     `json:"last_transition"`
	FaultReasons      []string      `json:"fault_reasons,omitempty"`
	Stats             VRRPStats     `json:"stats"`
}

// VRRPStats are an instance's counters, named after keepalived's own
// statistics (SIGUSR2's keepalived.stats) so dashboards map one to one.
type VRRPStats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthType   uint64 `json:"invalid_authtype"`
	AuthTypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
	// Dropped counts every advert dropped, by reason (checksum, vrid,
	// version, ttl, auth, length, ...): vipd's own, finer than the above.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

// SyncGroup is a vrrp_sync_group.
type SyncGroup struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Instances []string `json:"instances"`
}

// Check is one health checker of one real server.
type Check struct {
	VirtualServer string        `json:"virtual_server"` // "TCP 198.18.0.100:80" or "FWM 1"
	RealServer    string        `json:"real_server"`    // "198.18.0.21:80"
	Kind          string        `json:"kind"`           // HTTP_GET, TCP_CHECK, ...
	Up            bool          `json:"up"`
	Reason        string        `json:"reason"` // last result and why
	Weight        int           `json:"weight"` // effective weight given to the data plane
	LastCheck     time.Time     `json:"last_check"`
	LastChange    time.Time     `json:"last_change"`
	Duration      time.Duration `json:"duration"` // of the last check
	Checks        uint64        `json:"checks"`
	Failures      uint64        `json:"failures"`
}

// Process is a vrrp_track_process: how many matching processes run,
// against its quorum.
type Process struct {
	Name       string    `json:"name"`
	State      string    `json:"state"` // UP (quorum held), DOWN, INIT
	Count      int       `json:"count"`
	Quorum     int       `json:"quorum"`
	QuorumMax  int       `json:"quorum_max"` // -1: unlimited
	Weight     int       `json:"weight"`
	LastChange time.Time `json:"last_change"`
}

// Script is a vrrp_script (tracking script).
type Script struct {
	Name       string    `json:"name"`
	State      string    `json:"state"` // GOOD, BAD, INIT
	Weight     int       `json:"weight"`
	LastChange time.Time `json:"last_change"`
}
