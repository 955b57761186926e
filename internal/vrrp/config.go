package vrrp

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proctrack"
)

// VIP is a virtual address (virtual_ipaddress entry).
type VIP = netif.Addr

// Config is everything VRRP runs: keepalived's vrrp_instance,
// vrrp_sync_group, vrrp_script and vrrp_track_file blocks and the VRRP
// parts of global_defs. internal/config's model maps onto it; zero values
// mean keepalived's defaults unless a field says otherwise.
type Config struct {
	Instances  []InstanceConfig  `json:"instances"`
	Groups     []GroupConfig     `json:"groups,omitempty"`
	Scripts    []ScriptConfig    `json:"scripts,omitempty"`
	TrackFiles []TrackFileConfig `json:"track_files,omitempty"`
	// TrackProcesses are the vrrp_track_process blocks.
	TrackProcesses []ProcessConfig `json:"track_processes,omitempty"`

	// McastGroup4/6: vrrp_mcast_group4/6 (224.0.0.18, ff02::12).
	McastGroup4 netip.Addr `json:"mcast_group4,omitzero"`
	McastGroup6 netip.Addr `json:"mcast_group6,omitzero"`
	// GARPInterval / GNAInterval: delay between two gratuitous ARPs /
	// unsolicited NAs on an interface (vrrp_garp_interval, vrrp_gna_interval).
	GARPInterval time.Duration `json:"garp_interval,omitempty"`
	GNAInterval  time.Duration `json:"gna_interval,omitempty"`
	// RTPriority is the SCHED_RR priority of the VRRP thread
	// (keepalived's vrrp_rt_priority); 0 means 1. NoRealtime keeps it
	// under the normal scheduler (keepalived's default).
	RTPriority int  `json:"rt_priority,omitempty"`
	NoRealtime bool `json:"no_realtime,omitempty"`
	// ProcessRealtime runs every thread of the process SCHED_RR at
	// RTPriority, not the VRRP thread alone (see rtprocess.go): what
	// keepalived's vrrp_rt_priority does to its VRRP process.
	ProcessRealtime bool `json:"process_realtime,omitempty"`
	// StartupDelay holds every instance back when Run starts
	// (keepalived's vrrp_startup_delay / vrrp_delay_after_boot): no
	// socket, no advert sent or read, no VIP, until it has passed; then
	// the instances start as they would have at once. A reload during
	// the delay only replaces the configuration to start with; later
	// reloads ignore the field.
	StartupDelay time.Duration `json:"startup_delay,omitempty"`
	// DelayAfterBoot (vrrp_delay_after_boot) holds the instances back
	// until the system has been up that long; the longer of the two
	// delays applies.
	DelayAfterBoot time.Duration `json:"delay_after_boot,omitempty"`
	// FIFOStatesOnReload (fifo_write_vrrp_states_on_reload): a reload
	// repeats the state of every instance and sync group that keeps it,
	// as a Notification with Reload set.
	FIFOStatesOnReload bool `json:"fifo_states_on_reload,omitempty"`
	// LinkDelays (interface_up_down_delays) hold back the effect of an
	// interface going down / up by Down / Up; a change undone within
	// the delay has none.
	LinkDelays map[string]LinkDelay `json:"link_delays,omitempty"`
}

// LinkDelay is one interface's line of interface_up_down_delays.
type LinkDelay struct {
	Down time.Duration `json:"down"`
	Up   time.Duration `json:"up"`
}

// InstanceConfig is one vrrp_instance.
type InstanceConfig struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      int    `json:"vrid"`
	// Version is 2 or 3; 0 means 2, or 3 for IPv6 instances.
	Version int `json:"version,omitempty"`
	// Priority 1..255; 0 means 100.
	Priority int `json:"priority,omitempty"`
	// State is the initial state: "MASTER" or "BACKUP" (default).
	State string `json:"state,omitempty"`
	// AdvertInt: 0 means 1 s. VRRPv2 needs whole seconds, v3 centiseconds.
	AdvertInt    time.Duration `json:"advert_int,omitempty"`
	NoPreempt    bool          `json:"nopreempt,omitempty"`
	PreemptDelay time.Duration `json:"preempt_delay,omitempty"`
	// AuthType "" or "PASS" (VRRPv2 only); "AH" is refused.
	AuthType string `json:"auth_type,omitempty"`
	AuthPass string `json:"auth_pass,omitempty"`
	// AuthHMAC is auth_hmac (keepalived 2.4.2+): signed adverts.
	AuthHMAC *AuthHMACConfig `json:"auth_hmac,omitempty"`
	// OldUnicastChecksum is old_unicast_checksum: "" sums unicast VRRPv3
	// IPv4 adverts with their destination and switches to the old sum
	// (the multicast group in the pseudo-header, keepalived before 1.3.6)
	// once a peer is heard using it; "config" always uses the old sum;
	// "never" never switches (and accepts only the new one).
	OldUnicastChecksum string `json:"old_unicast_checksum,omitempty"`

	VIPs []VIP `json:"vips"`
	// McastDstIP is the instance's multicast group (mcast_dst_ip);
	// invalid: Config.McastGroup4/6.
	McastDstIP netip.Addr `json:"mcast_dst_ip,omitzero"`
	// UnicastFaultNoPeer (unicast_fault_no_peer) holds an instance with
	// no UnicastPeers in FAULT instead of running it over multicast.
	UnicastFaultNoPeer bool `json:"unicast_fault_no_peer,omitempty"`
	// TrackSrcIP (track_src_ip) holds the instance in FAULT while its
	// configured source address (UnicastSrcIP or McastSrcIP) is not on
	// Interface; without either it has no effect (keepalived clears it).
	TrackSrcIP bool `json:"track_src_ip,omitempty"`
	// GARPExtraIf (garp_extra_if all): while master, every interval, one
	// GARP/NA on each interface other than Interface that holds a VIP or
	// an excluded VIP; 0: off.
	GARPExtraIf  time.Duration `json:"garp_extra_if,omitempty"`
	ExcludedVIPs []VIP         `json:"excluded_vips,omitempty"`

	McastSrcIP   netip.Addr   `json:"mcast_src_ip,omitzero"`
	UnicastSrcIP netip.Addr   `json:"unicast_src_ip,omitzero"`
	UnicastPeers []netip.Addr `json:"unicast_peers,omitempty"`
	// UnicastTTL: 0 means 255.
	UnicastTTL      int  `json:"unicast_ttl,omitempty"`
	CheckUnicastSrc bool `json:"check_unicast_src,omitempty"`

	DontTrackPrimary bool       `json:"dont_track_primary,omitempty"`
	TrackInterfaces  []TrackRef `json:"track_interfaces,omitempty"`
	TrackScripts     []TrackRef `json:"track_scripts,omitempty"`
	TrackFiles       []TrackRef `json:"track_files,omitempty"`
	TrackProcesses   []TrackRef `json:"track_processes,omitempty"`
	// TrackExternal names objects the daemon reports through
	// Node.SetTrack (health checker quorum, ...).
	TrackExternal []TrackRef `json:"track_external,omitempty"`
	// TrackBFDs are track_bfd entries: bfd_instance sessions the daemon
	// reports through Node.SetTrack(BFDRef(name), up).
	TrackBFDs []TrackRef `json:"track_bfd,omitempty"`

	// GARP schedule; nil means keepalived's default (repeat 5, delay 5 s,
	// refresh off, refresh repeat 1, lower-prio ones as the master ones).
	GARPMasterRepeat        *int           `json:"garp_master_repeat,omitempty"`
	GARPMasterDelay         *time.Duration `json:"garp_master_delay,omitempty"`
	GARPMasterRefresh       time.Duration  `json:"garp_master_refresh,omitempty"`
	GARPMasterRefreshRepeat int            `json:"garp_master_refresh_repeat,omitempty"`
	GARPLowerPrioRepeat     *int           `json:"garp_lower_prio_repeat,omitempty"`
	GARPLowerPrioDelay      *time.Duration `json:"garp_lower_prio_delay,omitempty"`

	// DownTimerAdverts: 0 means 3.
	DownTimerAdverts     int  `json:"down_timer_adverts,omitempty"`
	LowerPrioNoAdvert    bool `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert bool `json:"higher_prio_send_advert,omitempty"`
	SkipCheckAdvAddr     bool `json:"skip_check_adv_addr,omitempty"`
	// Strict is strict_mode / vrrp_strict (the caller resolves the
	// inheritance from global_defs).
	Strict bool `json:"strict,omitempty"`
	// NotifyPriorityChanges delivers a change of the effective priority
	// as a notification MASTER_PRIORITY or BACKUP_PRIORITY (keepalived's
	// notify_priority_changes, for its FIFO).
	NotifyPriorityChanges bool `json:"notify_priority_changes,omitempty"`
	// V3ChecksumAsV2 computes and checks VRRPv3 checksums without the
	// pseudo-header, for old peers.
	V3ChecksumAsV2 bool `json:"v3_checksum_as_v2,omitempty"`
	// VMAC (use_vmac) puts the instance on a macvlan of Interface that
	// carries the VRRP virtual MAC: its VIPs without a dev go there, and
	// its adverts are sent and received there unless XmitBase.
	// Interface stays the tracked link and the source of the adverts'
	// address, as in keepalived.
	VMAC *VMACConfig `json:"vmac,omitempty"`
}

// VMACConfig is an instance's use_vmac and vmac_xmit_base.
type VMACConfig struct {
	// Name of the macvlan (keepalived's default: vrrp.VRID).
	Name string `json:"name"`
	// MAC: empty means the virtual router MAC 00:00:5e:00:01:VRID
	// (IPv6: 00:00:5e:00:02:VRID).
	MAC string `json:"mac,omitempty"`
	// XmitBase sends and receives the adverts on Interface, not on the
	// macvlan (vmac_xmit_base).
	XmitBase bool `json:"xmit_base,omitempty"`
}

// sockIface is the interface the instance's adverts go out and come in
// on.
func (in *InstanceConfig) sockIface() string {
	if in.VMAC != nil && !in.VMAC.XmitBase {
		return in.VMAC.Name
	}
	return in.Interface
}

// vipDev is where a VIP without a dev goes.
func (in *InstanceConfig) vipDev() string {
	if in.VMAC != nil {
		return in.VMAC.Name
	}
	return in.Interface
}

// vmacLink is the macvlan the driver creates for the instance.
func (in *InstanceConfig) vmacLink() netif.VMAC {
	v6 := in.family6()
	mac := netif.VirtualMAC(in.VRID, v6)
	if in.VMAC.MAC != "" {
		if hw, err := net.ParseMAC(in.VMAC.MAC); err == nil {
			mac = hw
		}
	}
	return netif.VMAC{Name: in.VMAC.Name, Base: in.Interface, MAC: mac, V6: v6}
}

// TrackRef is an entry of track_interface, track_script or track_file:
// the tracked object's name and, optionally, this instance's weight for it
// (nil: the object's own weight, 0 for interfaces).
type TrackRef struct {
	Name    string `json:"name"`
	Weight  *int   `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// GroupConfig is a vrrp_sync_group.
type GroupConfig struct {
	Name            string     `json:"name"`
	Instances       []string   `json:"instances"`
	TrackInterfaces []TrackRef `json:"track_interfaces,omitempty"`
	TrackScripts    []TrackRef `json:"track_scripts,omitempty"`
	TrackFiles      []TrackRef `json:"track_files,omitempty"`
	TrackBFDs       []TrackRef `json:"track_bfd,omitempty"`
	TrackProcesses  []TrackRef `json:"track_processes,omitempty"`
}

// ScriptConfig is a vrrp_script.
type ScriptConfig struct {
	Name string `json:"name"`
	// Script is the command line: a program and arguments separated by
	// spaces, single quotes around an argument with spaces (keepalived's
	// syntax; no shell is involved).
	Script   string        `json:"script"`
	Interval time.Duration `json:"interval,omitempty"` // 0 means 1 s
	Timeout  time.Duration `json:"timeout,omitempty"`  // 0 means the interval
	Weight   int           `json:"weight,omitempty"`
	Reverse  bool          `json:"reverse,omitempty"`
	Rise     int           `json:"rise,omitempty"`
	Fall     int           `json:"fall,omitempty"`
	InitFail bool          `json:"init_fail,omitempty"`
	// Credential runs the script as another user (script_user or the
	// vrrp_script's user keyword); nil runs it as the daemon's user.
	Credential *syscall.Credential `json:"-"`
}

// TrackFileConfig is a vrrp_track_file.
type TrackFileConfig struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Weight  *int   `json:"weight,omitempty"` // nil means 1
	Reverse bool   `json:"reverse,omitempty"`
}

// ProcessConfig is a vrrp_track_process: the processes to count (Spec)
// and the default weight of the instances that track it (0: FAULT while
// the quorum is lost; with Reverse, while it is held).
type ProcessConfig struct {
	proctrack.Spec
	Weight  int  `json:"weight,omitempty"`
	Reverse bool `json:"reverse,omitempty"`
}

// clone copies the parts Validate adjusts, so that the caller's
// configuration is never modified.
func (c Config) clone() Config {
	c.Instances = slices.Clone(c.Instances)
	c.Groups = slices.Clone(c.Groups)
	c.Scripts = slices.Clone(c.Scripts)
	c.TrackFiles = slices.Clone(c.TrackFiles)
	c.TrackProcesses = slices.Clone(c.TrackProcesses)
	c.LinkDelays = maps.Clone(c.LinkDelays)
	return c
}

// ConfigError lists every problem of a configuration.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return "vrrp: " + strings.Join(e.Problems, "; ") }

// Validate checks the configuration as keepalived would, applying the
// vrrp_strict rules. It returns warnings (keepalived logs them and goes
// on, after adjusting the setting) and an error listing what keepalived
// would refuse.
func (c *Config) Validate() (warnings []string, err error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	warn := func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }

	names := map[string]bool{}
	type ifv struct {
		iface   string
		vrid    int
		v6      bool
		unicast bool
	}
	ids := map[ifv]string{}
	vmacs := map[string]string{} // VMAC name -> instance
	scripts := map[string]bool{}
	for _, s := range c.Scripts {
		if s.Name == "" || scripts[s.Name] {
			bad("vrrp_script %q: empty or duplicate name", s.Name)
		}
		scripts[s.Name] = true
		if strings.TrimSpace(s.Script) == "" {
			bad("vrrp_script %s: no script", s.Name)
		}
		if s.Weight < -253 || s.Weight > 253 {
			bad("vrrp_script %s: weight %d outside -253..253", s.Name, s.Weight)
		}
	}
	files := map[string]bool{}
	for _, f := range c.TrackFiles {
		if f.Name == "" || files[f.Name] {
			bad("vrrp_track_file %q: empty or duplicate name", f.Name)
		}
		files[f.Name] = true
		if f.Path == "" {
			bad("vrrp_track_file %s: no file", f.Name)
		}
	}
	procs := map[string]bool{}
	for _, p := range c.TrackProcesses {
		if p.Name == "" || procs[p.Name] {
			bad("vrrp_track_process %q: empty or duplicate name", p.Name)
		}
		procs[p.Name] = true
		if p.Process == "" {
			bad("vrrp_track_process %s: no process", p.Name)
		}
		if p.Weight < -254 || p.Weight > 254 {
			bad("vrrp_track_process %s: weight %d outside -254..254", p.Name, p.Weight)
		}
		if p.QuorumMax >= 0 && p.Quorum > p.QuorumMax {
			bad("vrrp_track_process %s: quorum %d above quorum_max %d", p.Name, p.Quorum, p.QuorumMax)
		}
	}
	checkRefs := func(who, what string, refs []TrackRef, known map[string]bool, lo, hi int) {
		for _, r := range refs {
			if known != nil && !known[r.Name] {
				bad("%s: %s %q is not defined", who, what, r.Name)
			}
			if r.Weight != nil && (*r.Weight < lo || *r.Weight > hi) {
				bad("%s: %s %s weight %d outside %d..%d", who, what, r.Name, *r.Weight, lo, hi)
			}
		}
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		who := "vrrp_instance " + in.Name
		if in.Name == "" {
			bad("vrrp_instance #%d: no name", i+1)
		} else if names[in.Name] {
			bad("%s: duplicate name", who)
		}
		names[in.Name] = true
		if in.Interface == "" {
			bad("%s: no interface", who)
		}
		if in.VRID < 1 || in.VRID > 255 {
			bad("%s: virtual_router_id %d outside 1..255", who, in.VRID)
		}
		if in.Priority < 0 || in.Priority > 255 {
			bad("%s: priority %d outside 1..255", who, in.Priority)
		}
		v6 := in.family6()
		if g := in.McastDstIP; g.IsValid() && (g.Is6() != v6 || !g.IsMulticast() || (g.Is6() && !g.IsLinkLocalMulticast())) {
			// As keepalived: reported and skipped, the instance runs
			// on vrrp_mcast_group4/6.
			warn("%s: mcast_dst_ip %v must be a multicast address (IPv6: link-local) of the instance's family: using the default group", who, g)
			c.Instances[i].McastDstIP = netip.Addr{}
		}
		for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
			if !v.Prefix.IsValid() {
				bad("%s: virtual_ipaddress with no address", who)
			}
		}
		for _, v := range in.VIPs {
			if v.Prefix.IsValid() && v.Prefix.Addr().Is6() != v6 {
				bad("%s: virtual_ipaddress %v: every address must be of one family (use virtual_ipaddress_excluded to mix)", who, v.Prefix)
			}
		}
		version := in.version()
		if version != 2 && version != 3 {
			bad("%s: version %d, want 2 or 3", who, in.Version)
		}
		if v6 && version == 2 {
			bad("%s: VRRPv2 has no IPv6 (RFC 3768); use version 3", who)
		}
		if _, err := IntervalField(version, in.advertInt()); err != nil {
			bad("%s: %v", who, err)
		}
		switch strings.ToUpper(in.State) {
		case "", "BACKUP", "MASTER":
		default:
			bad("%s: state %q, want MASTER or BACKUP", who, in.State)
		}
		switch strings.ToUpper(in.AuthType) {
		case "":
		case "PASS":
			if version == 3 {
				bad("%s: authentication is not part of VRRPv3", who)
			}
			if in.AuthPass == "" {
				bad("%s: auth_type PASS without auth_pass", who)
			}
			if len(in.AuthPass) > 8 {
				warn("%s: auth_pass is truncated to 8 characters", who)
			}
		case "AH":
			bad("%s: auth_type AH (IPsec AH) is not supported by vipd; use PASS or, better, no authentication (RFC 3768 removed it)", who)
		default:
			bad("%s: auth_type %q, want PASS", who, in.AuthType)
		}
		if in.AuthHMAC != nil {
			if in.AuthType != "" {
				bad("%s: auth_hmac cannot be combined with authentication", who)
			}
			in.AuthHMAC.validate(who, bad)
		}
		switch in.OldUnicastChecksum {
		case "", "config", "never":
		default:
			bad("%s: old_unicast_checksum %q, want \"\", \"config\" or \"never\"", who, in.OldUnicastChecksum)
		}
		for _, p := range in.UnicastPeers {
			if p.Is6() != v6 {
				bad("%s: unicast_peer %v is not of the instance's address family", who, p)
			}
		}
		if in.UnicastTTL < 0 || in.UnicastTTL > 255 {
			bad("%s: unicast_ttl %d outside 0..255", who, in.UnicastTTL)
		}
		if in.DownTimerAdverts < 0 || in.DownTimerAdverts > 100 {
			bad("%s: down_timer_adverts %d outside 1..100", who, in.DownTimerAdverts)
		}
		if in.PreemptDelay < 0 || in.PreemptDelay > 1000*time.Second {
			bad("%s: preempt_delay %v outside 0..1000 s", who, in.PreemptDelay)
		}
		if vm := in.VMAC; vm != nil {
			switch {
			case vm.Name == "" || len(vm.Name) >= 16 || strings.ContainsAny(vm.Name, "/ "):
				bad("%s: use_vmac: %q is not an interface name", who, vm.Name)
			case vm.Name == in.Interface:
				bad("%s: use_vmac: the VMAC cannot be the instance's interface %s", who, in.Interface)
			case vmacs[vm.Name] != "":
				bad("%s: use_vmac: interface %s is already the VMAC of %s", who, vm.Name, vmacs[vm.Name])
			}
			vmacs[vm.Name] = in.Name
			if vm.MAC != "" {
				if hw, err := net.ParseMAC(vm.MAC); err != nil || len(hw) != 6 {
					bad("%s: use_vmac: %q is not an Ethernet MAC address", who, vm.MAC)
				}
			}
			if len(in.UnicastPeers) > 0 && !vm.XmitBase {
				// keepalived's rule (NOTE 2 of use_vmac).
				bad("%s: use_vmac with unicast peers needs vmac_xmit_base", who)
			}
			if vm.XmitBase && (in.Strict) {
				warn("(%s) xmit_base is incompatible with strict mode - resetting", in.Name)
				c.Instances[i].VMAC = &VMACConfig{Name: vm.Name, MAC: vm.MAC}
			}
		}
		key := ifv{in.Interface, in.VRID, v6, len(in.UnicastPeers) > 0}
		if other, ok := ids[key]; ok && !key.unicast {
			bad("%s: virtual_router_id %d already used by %s on %s", who, in.VRID, other, in.Interface)
		}
		ids[key] = in.Name
		checkRefs(who, "track_interface", in.TrackInterfaces, nil, -253, 253)
		checkRefs(who, "track_script", in.TrackScripts, scripts, -253, 253)
		checkRefs(who, "track_file", in.TrackFiles, files, -254, 254)
		checkRefs(who, "track_process", in.TrackProcesses, procs, -254, 254)
		checkRefs(who, "track_external", in.TrackExternal, nil, -254, 254)
		checkRefs(who, "track_bfd", in.TrackBFDs, nil, -253, 253)

		// keepalived's adjustments, with its warnings.
		prio := in.priority()
		if prio == PriorityOwner && in.NoPreempt {
			warn("(%s) nopreempt is incompatible with priority 255 - resetting nopreempt", in.Name)
			in.NoPreempt = false
		}
		if strings.EqualFold(in.State, "MASTER") {
			if in.NoPreempt {
				warn("(%s) Warning - nopreempt will not work with initial state MASTER - clearing", in.Name)
				in.NoPreempt = false
			}
			if in.PreemptDelay > 0 {
				warn("(%s) Warning - preempt delay will not work with initial state MASTER - clearing", in.Name)
				in.PreemptDelay = 0
			}
		}
		if in.PreemptDelay > 0 && in.NoPreempt {
			warn("(%s) preempt_delay is incompatible with nopreempt mode - resetting", in.Name)
			in.PreemptDelay = 0
		}
		if in.Strict {
			// vrrp_strict (keepalived.conf(5)).
			if len(in.VIPs) == 0 {
				bad("%s: vrrp_strict: at least one virtual_ipaddress is required", who)
			}
			if len(in.UnicastPeers) > 0 {
				bad("%s: vrrp_strict: unicast_peer is not allowed", who)
			}
			if in.AuthType != "" {
				bad("%s: vrrp_strict: authentication is not allowed", who)
			}
			if v6 && len(in.VIPs) > 0 && !in.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
				bad("%s: vrrp_strict: the first IPv6 VIP must be link local", who)
			}
			if strings.EqualFold(in.State, "MASTER") && prio != PriorityOwner {
				warn("(%s): Cannot start in MASTER state if not address owner", in.Name)
				in.State = "BACKUP"
			}
			if in.PreemptDelay > 0 {
				warn("(%s) preempt_delay is incompatible with strict mode - resetting", in.Name)
				in.PreemptDelay = 0
			}
			if in.HigherPrioSendAdvert {
				bad("%s: vrrp_strict: higher_prio_send_advert is not allowed", who)
			}
			in.LowerPrioNoAdvert = true
			zero := 0
			in.GARPMasterRefresh = 0
			in.GARPLowerPrioRepeat = &zero
		}
		if len(in.VIPs) > 20 && !in.Strict {
			warn("(%s) number of VIPs %d exceeds what fits an advert of most implementations (20); consider virtual_ipaddress_excluded", in.Name, len(in.VIPs))
		} else if len(in.VIPs) > 20 {
			bad("%s: vrrp_strict: at most 20 virtual_ipaddress", who)
		}
	}
	grouped := map[string]string{}
	for _, g := range c.Groups {
		who := "vrrp_sync_group " + g.Name
		if len(g.Instances) == 0 {
			bad("%s: no instances", who)
		}
		for _, n := range g.Instances {
			if !names[n] {
				bad("%s: vrrp_instance %q is not defined", who, n)
			}
			if other, ok := grouped[n]; ok {
				bad("%s: vrrp_instance %s is already in sync group %s", who, n, other)
			}
			grouped[n] = g.Name
		}
		checkRefs(who, "track_script", g.TrackScripts, scripts, -253, 253)
		checkRefs(who, "track_file", g.TrackFiles, files, -254, 254)
		checkRefs(who, "track_process", g.TrackProcesses, procs, -254, 254)
		checkRefs(who, "track_interface", g.TrackInterfaces, nil, -253, 253)
		checkRefs(who, "track_bfd", g.TrackBFDs, nil, -253, 253)
	}
	if len(problems) > 0 {
		return warnings, &ConfigError{Problems: problems}
	}
	return warnings, nil
}

func (in *InstanceConfig) family6() bool {
	for _, v := range in.VIPs {
		if v.Prefix.IsValid() {
			return v.Prefix.Addr().Is6()
		}
	}
	if len(in.UnicastPeers) > 0 {
		return in.UnicastPeers[0].Is6()
	}
	return in.UnicastSrcIP.IsValid() && in.UnicastSrcIP.Is6()
}

func (in *InstanceConfig) version() int {
	if in.Version != 0 {
		return in.Version
	}
	if in.family6() {
		return 3
	}
	return 2
}

func (in *InstanceConfig) priority() int {
	if in.Priority == 0 {
		return 100
	}
	return in.Priority
}

func (in *InstanceConfig) advertInt() time.Duration {
	if in.AdvertInt == 0 {
		return time.Second
	}
	return in.AdvertInt
}

func orDefault[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}

// machineConfig derives the state machine's configuration.
func (in *InstanceConfig) machineConfig() MachineConfig {
	mc := MachineConfig{
		Name:                 in.Name,
		Version:              in.version(),
		VRID:                 uint8(in.VRID),
		Priority:             uint8(in.priority()),
		AdvertInt:            in.advertInt(),
		InitMaster:           strings.EqualFold(in.State, "MASTER"),
		NoPreempt:            in.NoPreempt,
		PreemptDelay:         in.PreemptDelay,
		DownTimerAdverts:     in.DownTimerAdverts,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
		Unicast:              len(in.UnicastPeers) > 0,
		UnicastPeers:         slices.Clone(in.UnicastPeers),
		CheckUnicastSrc:      in.CheckUnicastSrc,
		SkipCheckAdvAddr:     in.SkipCheckAdvAddr,
	}
	if strings.EqualFold(in.AuthType, "PASS") {
		mc.AuthType = AuthPass
		copy(mc.AuthPass[:], in.AuthPass)
	}
	for _, v := range in.VIPs {
		mc.VIPs = append(mc.VIPs, v.Prefix.Addr())
	}
	mc.GARPMasterRepeat = orDefault(in.GARPMasterRepeat, 5)
	mc.GARPMasterDelay = orDefault(in.GARPMasterDelay, 5*time.Second)
	mc.GARPMasterRefresh = in.GARPMasterRefresh
	mc.GARPMasterRefreshRepeat = max(1, in.GARPMasterRefreshRepeat)
	mc.GARPExtraIf = in.GARPExtraIf
	mc.GARPLowerPrioRepeat = orDefault(in.GARPLowerPrioRepeat, mc.GARPMasterRepeat)
	mc.GARPLowerPrioDelay = orDefault(in.GARPLowerPrioDelay, mc.GARPMasterDelay)
	return mc
}

// identity is what makes an instance the same instance across a reload:
// changing any of these replaces it.
func (in *InstanceConfig) identity() string {
	id := fmt.Sprintf("%s|%d|%d|%v|%v|%v", in.Interface, in.VRID, in.version(), in.family6(), len(in.UnicastPeers) > 0, in.UnicastSrcIP)
	if in.VMAC != nil {
		// The VMAC is made with the instance and goes with it.
		id += fmt.Sprintf("|vmac %s %s %v", in.VMAC.Name, in.VMAC.MAC, in.VMAC.XmitBase)
	}
	return id
}
