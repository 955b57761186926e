// Package config reads keepalived.conf: a lexer and preprocessor (comments,
// include, $NAME definitions, @id conditional lines, ~SEQ/~LST blocks), a
// parser driven by one keyword table, and a typed model with keepalived's
// defaults and range checks.
//
// The model (Config and the types below) is what every other part of vipd
// consumes: the daemon maps it to the VRRP, checker and data-plane packages.
// Past the parser nothing is stringly typed: addresses are netip values,
// times are time.Duration, enumerations are named types. Every node keeps
// the position (file:line) of the line that declared it, so that errors
// found later, for example a refusal at daemon start, can name it.
//
// Defaults are resolved while building: a field holds the value vipd will
// use (keepalived's default when the configuration says nothing), and
// inheritance (global -> instance, virtual server -> real server ->
// checker) is already applied. Fields that keepalived treats as "unset"
// distinctly from any value are pointers.
package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Pos is a position in a configuration file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// MarshalText renders the position as file:line (in dumps and JSON).
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// String formats the position as file:line.
func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Config is one keepalived.conf after parsing, defaulting and validation.
// Slices keep configuration order.
type Config struct {
	Global Global `json:"global"`

	StaticAddresses []VIP        `json:"static_ipaddress,omitempty"`
	StaticRoutes    []Route      `json:"static_routes,omitempty"`
	StaticRules     []Rule       `json:"static_rules,omitempty"`
	TrackGroups     []TrackGroup `json:"track_groups,omitempty"`
	// LinkbeatInterfaces are polled for link state instead of trusting
	// netlink (linkbeat_interfaces block).
	LinkbeatInterfaces []Linkbeat `json:"linkbeat_interfaces,omitempty"`
	// InterfaceDelays debounce interface up/down transitions
	// (interface_up_down_delays block).
	InterfaceDelays []InterfaceDelay `json:"interface_up_down_delays,omitempty"`

	Scripts        []*VRRPScript   `json:"vrrp_scripts,omitempty"`
	TrackProcesses []*TrackProcess `json:"track_processes,omitempty"`
	TrackFiles     []*TrackFile    `json:"track_files,omitempty"`
	BFDInstances   []*BFDInstance  `json:"bfd_instances,omitempty"`
	SyncGroups     []*SyncGroup    `json:"sync_groups,omitempty"`
	GARPGroups     []*GARPGroup    `json:"garp_groups,omitempty"`
	Instances      []*Instance     `json:"vrrp_instances,omitempty"`

	VSGroups       []*VSGroup       `json:"virtual_server_groups,omitempty"`
	VirtualServers []*VirtualServer `json:"virtual_servers,omitempty"`
	// SSL is the client context of SSL_GET checkers (SSL block); nil when
	// absent, which means an auto-generated context.
	SSL *SSL `json:"ssl,omitempty"`
	// BGP is vipd's bgp block (kw_bgp.go); nil when absent.
	BGP *BGP `json:"bgp,omitempty"`

	// Files lists every file read, the main file first, then includes in
	// the order they were opened.
	Files []string `json:"files"`
}

// Dataplane names accepted by global_defs vipd_dataplane and --dataplane.
const (
	DataplaneAuto  = "auto"
	DataplaneProxy = "proxy"
	DataplaneIPVS  = "ipvs"
	DataplaneXDP   = "xdp"
)

// Global is the global_defs block with keepalived's defaults applied.
type Global struct {
	Pos Pos `json:"pos,omitzero"`

	// RouterID identifies the machine in alerts; default: the short host
	// name (resolved by the daemon when empty).
	RouterID              string        `json:"router_id,omitempty"`
	NotificationEmails    []string      `json:"notification_email,omitempty"`
	NotificationEmailFrom string        `json:"notification_email_from,omitempty"` // default keepalived@<host>
	SMTPServer            *SMTPServer   `json:"smtp_server,omitempty"`
	SMTPHeloName          string        `json:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout    time.Duration `json:"smtp_connect_timeout"` // default 30s
	// SMTPAlert, SMTPAlertVRRP and SMTPAlertChecker are the defaults of
	// smtp_alert for instances, groups and virtual/real servers; nil when
	// unset (keepalived then alerts only where smtp_alert is given).
	SMTPAlert             *bool `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP         *bool `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker      *bool `json:"smtp_alert_checker,omitempty"`
	CheckerLogAllFailures bool  `json:"checker_log_all_failures,omitempty"`
	NoEmailFaults         bool  `json:"no_email_faults,omitempty"`

	// ScriptUser and ScriptGroup run scripts that name no user. Empty
	// means keepalived_script if that user exists, else root.
	ScriptUser           string `json:"script_user,omitempty"`
	ScriptGroup          string `json:"script_group,omitempty"`
	EnableScriptSecurity bool   `json:"enable_script_security,omitempty"`

	StartupScript   *Script       `json:"startup_script,omitempty"`
	StartupTimeout  time.Duration `json:"startup_script_timeout,omitempty"` // default 10s
	ShutdownScript  *Script       `json:"shutdown_script,omitempty"`
	ShutdownTimeout time.Duration `json:"shutdown_script_timeout,omitempty"` // default 10s

	VRRPVersion     int        `json:"vrrp_version"`      // 2 (IPv6 instances always use 3)
	VRRPMcastGroup4 netip.Addr `json:"vrrp_mcast_group4"` // 224.0.0.18
	VRRPMcastGroup6 netip.Addr `json:"vrrp_mcast_group6"` // ff02::12
	// DefaultInterface is where static addresses without dev go (eth0).
	DefaultInterface string `json:"default_interface"`

	// Gratuitous ARP / unsolicited NA defaults, inherited by instances.
	GARP GARP `json:"garp"`
	// GARPExtraIf sends periodic GARP/NA on VIP interfaces other than the
	// instance's (0: off); GARPExtraIfAll extends it beyond VMACs.
	GARPExtraIf    time.Duration `json:"vrrp_garp_extra_if,omitempty"`
	GARPExtraIfAll bool          `json:"vrrp_garp_extra_if_all,omitempty"`
	// DownTimerAdverts is the default number of advert intervals before a
	// backup declares the master down (3, as the RFCs say).
	DownTimerAdverts      int  `json:"vrrp_down_timer_adverts"`
	LowerPrioNoAdvert     bool `json:"vrrp_lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert  bool `json:"vrrp_higher_prio_send_advert,omitempty"`
	CheckUnicastSrc       bool `json:"vrrp_check_unicast_src,omitempty"`
	SkipCheckAdvAddr      bool `json:"vrrp_skip_check_adv_addr,omitempty"`
	Strict                bool `json:"vrrp_strict,omitempty"`
	NotifyPriorityChanges bool `json:"vrrp_notify_priority_changes,omitempty"`
	// StartupDelay holds VRRP back after start (vrrp_startup_delay);
	// DelayAfterBoot holds it back until that long after boot
	// (vrrp_delay_after_boot, keepalived >= 2.3). The longer one applies.
	StartupDelay   time.Duration `json:"vrrp_startup_delay,omitempty"`
	DelayAfterBoot time.Duration `json:"vrrp_delay_after_boot,omitempty"`
	// VRRPRTPriority is the SCHED_RR priority of the VRRP thread
	// (vrrp_rt_priority; 0: the default, 1). VRRPNoSwap locks the
	// daemon's memory (vrrp_no_swap).
	VRRPRTPriority int  `json:"vrrp_rt_priority,omitempty"`
	VRRPNoSwap     bool `json:"vrrp_no_swap,omitempty"`
	// V3ChecksumAsV2 leaves the IPv4 pseudo-header out of VRRPv3
	// checksums, as Cisco and Juniper do (default of v3_checksum_as_v2).
	V3ChecksumAsV2 bool `json:"v3_checksum_as_v2,omitempty"`
	// MaxAutoPriority caps the realtime priority keepalived raises itself
	// to when it runs late; 0 off, -1 off without warning.
	MaxAutoPriority int `json:"max_auto_priority,omitempty"`

	LVSTimeouts   *lvs.Timeouts  `json:"lvs_timeouts,omitempty"` // zero fields: leave the kernel's
	LVSSyncDaemon *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty"`
	LVSFlush      bool           `json:"lvs_flush,omitempty"`
	// LVSFlushOnStop removes, at shutdown, all services (FlushAll) or only
	// vipd's virtual servers in one sweep (FlushVS).
	LVSFlushOnStop string `json:"lvs_flush_on_stop,omitempty"`

	NotifyFIFO                  *FIFO `json:"notify_fifo,omitempty"`
	VRRPNotifyFIFO              *FIFO `json:"vrrp_notify_fifo,omitempty"`
	LVSNotifyFIFO               *FIFO `json:"lvs_notify_fifo,omitempty"`
	FIFOWriteVRRPStatesOnReload bool  `json:"fifo_write_vrrp_states_on_reload,omitempty"`

	// DynamicInterfaces allows interfaces that do not exist at start.
	DynamicInterfaces bool `json:"dynamic_interfaces,omitempty"`
	AllowIfChanges    bool `json:"allow_if_changes,omitempty"`

	RSInitNotifies  bool `json:"rs_init_notifies,omitempty"`
	NoCheckerEmails bool `json:"no_checker_emails,omitempty"`
	// VMACPrefix names generated VMAC interfaces ("vrrp").
	VMACPrefix     string `json:"vmac_prefix,omitempty"`
	VMACAddrPrefix string `json:"vmac_addr_prefix,omitempty"`

	// Dataplane is vipd's vipd_dataplane extension: "auto" (default),
	// "proxy" or "ipvs".
	Dataplane string `json:"vipd_dataplane"`
}

// GARP holds the gratuitous ARP / unsolicited NA timing of an instance (or
// the global defaults).
type GARP struct {
	MasterDelay         time.Duration `json:"master_delay"`          // second burst after becoming master, default 5s (0: none)
	MasterRepeat        int           `json:"master_repeat"`         // messages per burst, default 5
	LowerPrioDelay      time.Duration `json:"lower_prio_delay"`      // default MasterDelay
	LowerPrioRepeat     int           `json:"lower_prio_repeat"`     // default MasterRepeat
	MasterRefresh       time.Duration `json:"master_refresh"`        // periodic refresh while master, default 0 (off)
	MasterRefreshRepeat int           `json:"master_refresh_repeat"` // default 1
	Interval            time.Duration `json:"interval"`              // between GARPs, default 0
	NAInterval          time.Duration `json:"na_interval"`           // between unsolicited NAs, default 0
}

// SMTPServer is global_defs smtp_server: a host (IP or name) and port.
type SMTPServer struct {
	Host string `json:"host"`
	Port uint16 `json:"port"` // default 25
}

// LVSSyncDaemon is global_defs lvs_sync_daemon (IPVS connection sync).
type LVSSyncDaemon struct {
	Interface string     `json:"interface"`
	Instance  string     `json:"instance,omitempty"` // VRRP instance whose state drives master/backup
	SyncID    int        `json:"id"`                 // 0..255; -1: the instance's VRID
	MaxLen    int        `json:"maxlen,omitempty"`
	Port      uint16     `json:"port"` // 8848
	TTL       int        `json:"ttl,omitempty"`
	Group     netip.Addr `json:"group,omitzero"` // 224.0.0.81 by default (kernel)
}

// FIFO is a notify FIFO with an optional script that reads it.
type FIFO struct {
	Path   string  `json:"path"`
	User   string  `json:"user,omitempty"`
	Group  string  `json:"group,omitempty"`
	Script *Script `json:"script,omitempty"`
}

// Script is a program keepalived runs: a notify script, a track script, a
// MISC_CHECK path, quorum_up/down. Argv is the command split as keepalived
// splits it (unquoted spaces separate arguments; single quotes group).
type Script struct {
	Pos   Pos      `json:"pos"`
	Argv  []string `json:"argv"`
	User  string   `json:"user,omitempty"`  // "" = script_user
	Group string   `json:"group,omitempty"` // "" = the user's group
}

// Linkbeat is one interface of linkbeat_interfaces.
type Linkbeat struct {
	Interface string `json:"interface"`
	Type      string `json:"type,omitempty"` // MII, ETHTOOL, IOCTL or "" (best available)
}

// InterfaceDelay is one line of interface_up_down_delays.
type InterfaceDelay struct {
	Interface string        `json:"interface"`
	Down      time.Duration `json:"down"`
	Up        time.Duration `json:"up"`
}

// TrackGroup is a named set of instances that track static
// addresses/routes/rules.
type TrackGroup struct {
	Pos       Pos      `json:"pos"`
	Name      string   `json:"name"`
	Instances []string `json:"group"`
}

// VRRPScript is a vrrp_script block: a program run periodically whose exit
// status adjusts the priority of tracking instances or faults them.
type VRRPScript struct {
	Pos      Pos           `json:"pos"`
	Name     string        `json:"name"`
	Script   *Script       `json:"script"`
	Interval time.Duration `json:"interval"` // default 1s
	Timeout  time.Duration `json:"timeout"`  // default: Interval
	Weight   int           `json:"weight"`   // -253..253, default 0 (fault on failure)
	Reverse  bool          `json:"reverse,omitempty"`
	Rise     int           `json:"rise"` // successes to go OK, default 1
	Fall     int           `json:"fall"` // failures to go KO, default 1
	InitFail bool          `json:"init_fail,omitempty"`

	user, group string // the vrrp_script user keyword, applied to Script
	userPos     Pos
}

// TrackProcess is a vrrp_track_process block.
type TrackProcess struct {
	Pos            Pos           `json:"pos"`
	Name           string        `json:"name"`
	Process        []string      `json:"process"`               // name, then parameters to match
	ParamMatch     string        `json:"param_match,omitempty"` // "", "exact" (param_match alone), "initial" or "partial"
	Weight         int           `json:"weight"`                // -254..254, default 0... see keepalived
	Reverse        bool          `json:"reverse,omitempty"`
	Quorum         int           `json:"quorum"`     // default 1
	QuorumMax      int           `json:"quorum_max"` // default: no maximum (-1)
	ForkDelay      time.Duration `json:"fork_delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty"`
	FullCommand    bool          `json:"full_command,omitempty"`
}

// TrackFile is a track_file (or deprecated vrrp_track_file) block.
type TrackFile struct {
	Pos      Pos       `json:"pos"`
	Name     string    `json:"name"`
	File     string    `json:"file"`
	Weight   int       `json:"weight"` // default 1
	Reverse  bool      `json:"reverse,omitempty"`
	InitFile *InitFile `json:"init_file,omitempty"`
}

// InitFile asks for the tracked file to be created (or overwritten) with
// Value at start.
type InitFile struct {
	Value     int  `json:"value"`
	Overwrite bool `json:"overwrite,omitempty"`
}

// TrackRef is one entry of a track_interface / track_script / track_file /
// track_process / track_bfd list.
type TrackRef struct {
	Pos  Pos    `json:"pos"`
	Name string `json:"name"`
	// Weight is the configured weight; WeightSet says whether the entry
	// gave one (else the tracked object's own weight applies, or 0 for
	// interfaces).
	Weight    int  `json:"weight"`
	WeightSet bool `json:"weight_set,omitempty"`
	Reverse   bool `json:"reverse,omitempty"`
}

// Tracking groups the tracked objects of an instance or a sync group.
type Tracking struct {
	Interfaces []TrackRef `json:"track_interface,omitempty"`
	Scripts    []TrackRef `json:"track_script,omitempty"`
	Files      []TrackRef `json:"track_file,omitempty"`
	Processes  []TrackRef `json:"track_process,omitempty"`
	BFDs       []TrackRef `json:"track_bfd,omitempty"`
}

// Notify holds the notify scripts of an instance or sync group.
type Notify struct {
	Master           *Script `json:"notify_master,omitempty"`
	Backup           *Script `json:"notify_backup,omitempty"`
	Fault            *Script `json:"notify_fault,omitempty"`
	Stop             *Script `json:"notify_stop,omitempty"`
	Any              *Script `json:"notify,omitempty"` // called with GROUP|INSTANCE name STATE priority
	MasterRxLowerPri *Script `json:"notify_master_rx_lower_pri,omitempty"`
	// Deleted: notify DELETED instead of FAULT when a reload removes the
	// instance; Script may be nil.
	Deleted       bool    `json:"notify_deleted,omitempty"`
	DeletedScript *Script `json:"notify_deleted_script,omitempty"`
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Pos       Pos      `json:"pos"`
	Name      string   `json:"name"`
	Instances []string `json:"group"`
	Track     Tracking `json:"track"`
	Notify    Notify   `json:"notify"`
	// NotifyPriorityChanges is the group's notify_priority_changes,
	// nil when not given: its members that do not say take it, else
	// the global vrrp_notify_priority_changes.
	NotifyPriorityChanges   *bool `json:"notify_priority_changes,omitempty"`
	SMTPAlert               bool  `json:"smtp_alert,omitempty"`
	GlobalTracking          bool  `json:"global_tracking,omitempty"`
	SyncGroupTrackingWeight bool  `json:"sync_group_tracking_weight,omitempty"`
}

// GARPGroup is a garp_group block: GARP/NA pacing on interfaces that share
// a switch.
type GARPGroup struct {
	Pos        Pos           `json:"pos"`
	Interval   time.Duration `json:"garp_interval"`
	NAInterval time.Duration `json:"gna_interval"`
	Interfaces []string      `json:"interfaces"`

	delaySet bool
}

// State is the initial state of a VRRP instance.
type State string

// Initial states.
const (
	StateBackup State = "BACKUP"
	StateMaster State = "MASTER"
)

// AuthType is a VRRPv2 authentication type.
type AuthType string

// Authentication types (RFC 2338); AH is parsed and refused by vipd.
const (
	AuthNone AuthType = ""
	AuthPass AuthType = "PASS"
	AuthAH   AuthType = "AH"
)

// Auth is an instance's authentication block.
type Auth struct {
	Type AuthType `json:"auth_type"`
	Pass string   `json:"auth_pass,omitempty"` // at most 8 bytes (longer is truncated with a warning)
}

// AuthHMAC is an instance's auth_hmac block: adverts signed with
// HMAC-SHA256 and a time-based sequence number (keepalived 2.4.2+).
type AuthHMAC struct {
	Keys       []HMACKey `json:"keys"`
	ActiveKey  int       `json:"active_key"`
	Mode       string    `json:"mode,omitempty"`        // enforce (default), permissive, receive-only
	Monotonic  bool      `json:"monotonic,omitempty"`   // anti_replay monotonic (default time)
	TimeWindow int       `json:"time_window,omitempty"` // seconds; 0: max(3 × advert_int, 5)
}

// HMACKey is one key of auth_hmac. The key itself is a secret: dumps
// leave it out.
type HMACKey struct {
	ID  int    `json:"id"`
	Key []byte `json:"-"`
	Pos Pos    `json:"-"`
}

// VMAC is use_vmac: a macvlan interface carrying the virtual MAC.
type VMAC struct {
	Interface string `json:"interface,omitempty"` // "" = vrrp.<VRID>
	MAC       string `json:"mac,omitempty"`       // "" = 00:00:5e:00:01:<VRID>
	XmitBase  bool   `json:"vmac_xmit_base,omitempty"`
}

// UnicastPeer is one entry of unicast_peer.
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL int        `json:"min_ttl,omitempty"`
	MaxTTL int        `json:"max_ttl,omitempty"` // 0: unset
}

// Instance is a vrrp_instance block with defaults resolved.
type Instance struct {
	Pos  Pos    `json:"pos"`
	Name string `json:"name"`

	State     State  `json:"state"`     // default BACKUP
	Interface string `json:"interface"` // may be empty with unicast
	VRF       string `json:"vrf,omitempty"`
	UseVMAC   *VMAC  `json:"use_vmac,omitempty"`
	// DontTrackPrimary ignores faults of Interface.
	DontTrackPrimary bool     `json:"dont_track_primary,omitempty"`
	NativeIPv6       bool     `json:"native_ipv6,omitempty"`
	Track            Tracking `json:"track"`

	// SrcIP is mcast_src_ip / unicast_src_ip (one setting in keepalived).
	SrcIP              netip.Addr    `json:"src_ip,omitzero"`
	TrackSrcIP         bool          `json:"track_src_ip,omitempty"`
	McastDstIP         netip.Addr    `json:"mcast_dst_ip,omitzero"` // zero: the global group of the family
	UnicastPeers       []UnicastPeer `json:"unicast_peer,omitempty"`
	UnicastFaultNoPeer bool          `json:"unicast_fault_no_peer,omitempty"`
	UnicastTTL         int           `json:"unicast_ttl,omitempty"` // 0: 255
	CheckUnicastSrc    bool          `json:"check_unicast_src,omitempty"`
	// OldUnicastChecksum: "" (new sum, switch on hearing the old one),
	// "config" (old_unicast_checksum: the old sum) or "never".
	OldUnicastChecksum string `json:"old_unicast_checksum,omitempty"`
	// AuthHMAC is the auth_hmac block (keepalived 2.4.2+).
	AuthHMAC *AuthHMAC `json:"auth_hmac,omitempty"`
	// V3ChecksumAsV2: see Global.V3ChecksumAsV2.
	V3ChecksumAsV2 bool `json:"v3_checksum_as_v2,omitempty"`
	// NoVIPs suppresses the warning for an instance without VIPs
	// (no_virtual_ipaddress, keepalived >= 2.3).
	NoVIPs bool `json:"no_virtual_ipaddress,omitempty"`

	// Version is 2 or 3 (the global vrrp_version, 3 for IPv6 instances).
	Version   int           `json:"version"`
	VRID      int           `json:"virtual_router_id"` // 1..255
	Priority  int           `json:"priority"`          // 1..255, default 100
	AdvertInt time.Duration `json:"advert_int"`        // default 1s
	Auth      *Auth         `json:"authentication,omitempty"`

	VIPs               []VIP   `json:"virtual_ipaddress,omitempty"`
	ExcludedVIPs       []VIP   `json:"virtual_ipaddress_excluded,omitempty"`
	PromoteSecondaries bool    `json:"promote_secondaries,omitempty"`
	Routes             []Route `json:"virtual_routes,omitempty"`
	Rules              []Rule  `json:"virtual_rules,omitempty"`

	// Accept is accept mode: receive packets for the VIPs when not the
	// address owner (default true unless strict mode).
	Accept       bool          `json:"accept"`
	Preempt      bool          `json:"preempt"` // default true; nopreempt clears it
	PreemptDelay time.Duration `json:"preempt_delay,omitempty"`

	SkipCheckAdvAddr     bool          `json:"skip_check_adv_addr,omitempty"`
	Strict               bool          `json:"strict_mode,omitempty"`
	LowerPrioNoAdvert    bool          `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert bool          `json:"higher_prio_send_advert,omitempty"`
	DownTimerAdverts     int           `json:"down_timer_adverts"`
	GARP                 GARP          `json:"garp"`
	GARPExtraIf          time.Duration `json:"garp_extra_if,omitempty"`
	GARPExtraIfAll       bool          `json:"garp_extra_if_all,omitempty"`

	Notify Notify `json:"notify"`
	// NotifyPriorityChanges is the instance's notify_priority_changes,
	// nil when not given (then its sync group's, else the global one).
	NotifyPriorityChanges *bool `json:"notify_priority_changes,omitempty"`
	SMTPAlert             bool  `json:"smtp_alert,omitempty"`
	Debug                 int   `json:"debug,omitempty"`
	LinkbeatUsePolling    bool  `json:"linkbeat_use_polling,omitempty"`
	KernelRxBufSize       int   `json:"kernel_rx_buf_size,omitempty"`

	// SyncGroup is the name of the vrrp_sync_group holding the instance.
	SyncGroup string `json:"sync_group,omitempty"`

	// BGPAnnounce is where vipd's bgp_announce was given; nil when not.
	BGPAnnounce *Pos `json:"bgp_announce,omitempty"`

	ifacePos     Pos
	statePos     Pos
	authHMACPos  Pos
	prioritySet  bool
	vmacImplicit bool
	smtpSet      bool
	v3set        bool
}

// Family reports whether the instance runs over IPv6 (its first VIP, else
// its source or first peer address, is IPv6, or native_ipv6 is set).
func (in *Instance) Family() (ipv6 bool) {
	if in.NativeIPv6 {
		return true
	}
	if len(in.VIPs) > 0 {
		return in.VIPs[0].Prefix.Addr().Is6()
	}
	if in.SrcIP.IsValid() {
		return in.SrcIP.Is6()
	}
	if len(in.UnicastPeers) > 0 {
		return in.UnicastPeers[0].Addr.Is6()
	}
	return false
}

// Scope is an address or route scope.
type Scope string

// Address and route scopes as ip(8) names them.
const (
	ScopeGlobal  Scope = "global"
	ScopeSite    Scope = "site"
	ScopeLink    Scope = "link"
	ScopeHost    Scope = "host"
	ScopeNowhere Scope = "nowhere"
)

// VIP is one address of virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress:
//
//	IP[/MASK] [brd IP|+|-] [dev IF] [use_vmac] [scope SCOPE] [label LABEL]
//	[peer IP[/MASK]] [home] [-nodad] [mngtmpaddr] [noprefixroute]
//	[autojoin] [no_track] [track_group G] [preferred_lft N|forever]
type VIP struct {
	Pos Pos `json:"pos"`
	// Prefix is the address with its prefix length (/32 or /128 when the
	// configuration gives none).
	Prefix netip.Prefix `json:"prefix"`
	// Brd is the broadcast address; BrdSet/BrdClear are "+" and "-" (set
	// or clear the host bits).
	Brd      netip.Addr `json:"brd,omitzero"`
	BrdSet   bool       `json:"brd_set,omitempty"`
	BrdClear bool       `json:"brd_clear,omitempty"`
	// Dev is the interface; "" means the instance's interface (or
	// default_interface for static addresses).
	Dev           string       `json:"dev,omitempty"`
	Scope         Scope        `json:"scope"` // default global
	Label         string       `json:"label,omitempty"`
	Peer          netip.Prefix `json:"peer,omitzero"`
	Home          bool         `json:"home,omitempty"`
	NoDAD         bool         `json:"nodad,omitempty"`
	MngTmpAddr    bool         `json:"mngtmpaddr,omitempty"`
	NoPrefixRoute bool         `json:"noprefixroute,omitempty"`
	AutoJoin      bool         `json:"autojoin,omitempty"`
	NoTrack       bool         `json:"no_track,omitempty"`
	UseVMAC       bool         `json:"use_vmac,omitempty"`
	TrackGroup    string       `json:"track_group,omitempty"`
	// PreferredLft is the preferred lifetime in seconds; nil means the
	// default (0, deprecated, for /128 IPv6 addresses; forever otherwise),
	// -1 means forever.
	PreferredLft *int `json:"preferred_lft,omitempty"`
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Via    netip.Addr `json:"via,omitzero"`
	Dev    string     `json:"dev,omitempty"`
	Weight int        `json:"weight,omitempty"` // 1..256
	OnLink bool       `json:"onlink,omitempty"`
}

// Route is one line of virtual_routes or static_routes, in ip-route syntax.
type Route struct {
	Pos Pos `json:"pos"`
	// Type is unicast (default), blackhole, unreachable, prohibit, throw,
	// local, broadcast, anycast, multicast, nat.
	Type       string       `json:"type,omitempty"`
	Dst        netip.Prefix `json:"to"`
	Src        netip.Addr   `json:"src,omitzero"`
	Via        netip.Addr   `json:"via,omitzero"`
	Dev        string       `json:"dev,omitempty"`
	Table      uint32       `json:"table,omitempty"`  // 0: main
	Metric     uint32       `json:"metric,omitempty"` // metric / priority / preference
	Scope      Scope        `json:"scope,omitempty"`
	Protocol   uint8        `json:"protocol"` // resolved: keepalived's (18) unless written
	TOS        uint8        `json:"tos,omitempty"`
	OnLink     bool         `json:"onlink,omitempty"`
	Nexthops   []Nexthop    `json:"nexthop,omitempty"`
	Metrics    RouteMetrics `json:"metrics,omitzero"`
	Realms     uint32       `json:"realms,omitempty"` // FROM<<16 | TO
	VRF        string       `json:"vrf,omitempty"`
	Append     bool         `json:"append,omitempty"`
	Inet6      bool         `json:"inet6,omitempty"`
	NoTrack    bool         `json:"no_track,omitempty"`
	TrackGroup string       `json:"track_group,omitempty"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Min uint16 `json:"min"`
	Max uint16 `json:"max"`
}

// Rule is one line of virtual_rules or static_rules, in ip-rule syntax.
type Rule struct {
	Pos      Pos          `json:"pos"`
	Not      bool         `json:"not,omitempty"`
	From     netip.Prefix `json:"from,omitzero"`
	To       netip.Prefix `json:"to,omitzero"`
	Priority uint32       `json:"preference,omitempty"` // 0: keepalived assigns one (with a warning)
	Table    uint32       `json:"table,omitempty"`
	// Action is "" (lookup Table), goto, blackhole, unreachable, prohibit,
	// nop.
	Action            string     `json:"action,omitempty"`
	Goto              uint32     `json:"goto,omitempty"`
	TOS               uint8      `json:"tos,omitempty"`
	FWMark            uint32     `json:"fwmark,omitempty"`
	FWMask            uint32     `json:"fwmask,omitempty"`
	Realms            uint32     `json:"realms,omitempty"` // FROM<<16 | TO
	Iif               string     `json:"iif,omitempty"`
	Oif               string     `json:"oif,omitempty"`
	SuppressPrefixLen int        `json:"suppress_prefixlength,omitempty"` // -1: unset
	SuppressIfGroup   int        `json:"suppress_ifgroup,omitempty"`      // -1: unset
	UIDRange          *[2]uint32 `json:"uidrange,omitempty"`
	Protocol          uint8      `json:"protocol"`           // resolved: keepalived's (18) unless written
	IPProto           uint8      `json:"ip_proto,omitempty"` // 0: any
	SPort             *PortRange `json:"sport,omitempty"`
	DPort             *PortRange `json:"dport,omitempty"`
	Inet6             bool       `json:"inet6,omitempty"`
	NoTrack           bool       `json:"no_track,omitempty"`
	TrackGroup        string     `json:"track_group,omitempty"`
}

// VSGroup is a virtual_server_group: addresses, address ranges and fwmarks
// sharing one real-server topology.
type VSGroup struct {
	Pos     Pos            `json:"pos"`
	Name    string         `json:"name"`
	Entries []VSGroupEntry `json:"entries"`
}

// VSGroupEntry is one line of a virtual_server_group: an address range
// (First..Last, equal for a single address) with an optional port, or a
// firewall mark.
type VSGroupEntry struct {
	Pos    Pos        `json:"pos"`
	First  netip.Addr `json:"first,omitzero"`
	Last   netip.Addr `json:"last,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	// Family is set for a fwmark entry with inet/inet6.
	Family string `json:"family,omitempty"`
}

// VSKind says how a virtual_server is addressed.
type VSKind string

// Virtual server forms.
const (
	VSAddr   VSKind = "ip"     // virtual_server IP [PORT]
	VSFWMark VSKind = "fwmark" // virtual_server fwmark N
	VSGroupK VSKind = "group"  // virtual_server group NAME
)

// TunnelConfig is the "TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]"
// part of lvs_method.
type TunnelConfig struct {
	Type lvs.TunnelType `json:"type"`
	Port uint16         `json:"port,omitempty"` // GUE
	Csum string         `json:"csum,omitempty"` // "", nocsum, csum, remcsum
}

// Method is an LVS forwarding method with its tunnel parameters.
type Method struct {
	Forward lvs.Forward   `json:"forward"` // Masq (NAT), Route (DR), Tunnel (TUN)
	Tunnel  *TunnelConfig `json:"tunnel,omitempty"`
}

// CheckDefaults are the timing options a virtual server or real server
// passes down to its checkers (a checker's own setting wins).
type CheckDefaults struct {
	DelayLoop        time.Duration  `json:"delay_loop"`
	ConnectTimeout   time.Duration  `json:"connect_timeout"`
	Retry            *int           `json:"retry,omitempty"`              // nil: the checker type's default
	DelayBeforeRetry *time.Duration `json:"delay_before_retry,omitempty"` // nil: the checker type's default
	Warmup           *time.Duration `json:"warmup,omitempty"`             // nil: DelayLoop
	Alpha            bool           `json:"alpha,omitempty"`
	InhibitOnFailure bool           `json:"inhibit_on_failure,omitempty"`
	Virtualhost      string         `json:"virtualhost,omitempty"`
	SMTPAlert        *bool          `json:"smtp_alert,omitempty"`
}

// VirtualServer is a virtual_server block.
type VirtualServer struct {
	Pos  Pos    `json:"pos"`
	Kind VSKind `json:"kind"`
	// Addr is the address and port of an "ip" virtual server; the port is
	// 0 when omitted (allowed for persistent services).
	Addr   netip.AddrPort `json:"addr,omitzero"`
	FWMark uint32         `json:"fwmark,omitempty"`
	Group  string         `json:"group,omitempty"`
	// IPv6 is the address family: from Addr, or ip_family for fwmarks.
	IPv6 bool `json:"ipv6,omitempty"`

	Scheduler string         `json:"lvs_sched"`       // default "" -> IPVS's wlc? see Defaults
	Flags     lvs.SchedFlags `json:"flags,omitempty"` // sh-port, sh-fallback, mh-*, flag-N, ops
	Method    Method         `json:"lvs_method"`

	PersistenceEngine      string        `json:"persistence_engine,omitempty"`
	PersistenceTimeout     time.Duration `json:"persistence_timeout,omitempty"`    // 0: not persistent
	PersistenceGranularity netip.Prefix  `json:"persistence_granularity,omitzero"` // as a mask
	Protocol               lvs.Protocol  `json:"protocol"`                         // default TCP
	HASuspend              bool          `json:"ha_suspend,omitempty"`
	SNMPName               string        `json:"snmp_name,omitempty"`
	Omega                  bool          `json:"omega,omitempty"`
	Quorum                 int           `json:"quorum"`     // default 1
	Hysteresis             int           `json:"hysteresis"` // default 0
	QuorumUp               *Script       `json:"quorum_up,omitempty"`
	QuorumDown             *Script       `json:"quorum_down,omitempty"`

	SorryServer *SorryServer `json:"sorry_server,omitempty"`

	// Check holds the virtual-server level checker defaults
	// (delay_loop 60s, connect_timeout 5s, ...).
	Check CheckDefaults `json:"check"`

	RealServers []*RealServer `json:"real_servers"`

	// ProxyProtocol is vipd's proxy_protocol extension: 0 (none), 1 or 2,
	// sent towards real servers by the proxy data plane.
	ProxyProtocol int `json:"proxy_protocol,omitempty"`
	// BGPAnnounce is where vipd's bgp_announce was given; nil when not.
	BGPAnnounce *Pos `json:"bgp_announce,omitempty"`

	cset          *checkSet
	schedPos      Pos
	methodSet     bool
	protoSet      bool
	family        string
	defaultWeight int
}

// String names the virtual server as keepalived's logs do: "[IP]:PROTO:PORT",
// "FWM N" or "group NAME".
func (vs *VirtualServer) String() string {
	switch vs.Kind {
	case VSFWMark:
		return fmt.Sprintf("FWM %d", vs.FWMark)
	case VSGroupK:
		return "group " + vs.Group
	}
	return fmt.Sprintf("[%s]:%s:%d", vs.Addr.Addr(), protoLower(vs.Protocol), vs.Addr.Port())
}

// SorryServer replaces the real servers when the quorum is lost.
type SorryServer struct {
	Pos     Pos            `json:"pos"`
	Addr    netip.AddrPort `json:"addr"`
	Method  Method         `json:"lvs_method"`
	Inhibit bool           `json:"inhibit,omitempty"`

	methodSet bool
}

// RealServer is a real_server block of a virtual server.
type RealServer struct {
	Pos        Pos            `json:"pos"`
	Addr       netip.AddrPort `json:"addr"`   // port 0: the virtual server's
	Weight     int            `json:"weight"` // default 1
	Method     Method         `json:"lvs_method"`
	NotifyUp   *Script        `json:"notify_up,omitempty"`
	NotifyDown *Script        `json:"notify_down,omitempty"`
	UThreshold int            `json:"uthreshold,omitempty"`
	LThreshold int            `json:"lthreshold,omitempty"`
	SNMPName   string         `json:"snmp_name,omitempty"`
	// Check holds this real server's checker defaults, inherited from
	// the virtual server.
	Check    CheckDefaults `json:"check"`
	Checkers []*Checker    `json:"checkers,omitempty"`
	// TrackFiles are real-server track_file references (weights adjust
	// the IPVS weight).
	TrackFiles []TrackRef `json:"track_file,omitempty"`

	weightSet bool
	methodSet bool
	cset      *checkSet
	checkSets []*checkSet
	portSet   []bool
}

// CheckerType is a health checker kind.
type CheckerType string

// Checker kinds, named as the keepalived blocks are.
const (
	CheckHTTP CheckerType = "HTTP_GET"
	CheckSSL  CheckerType = "SSL_GET"
	CheckTCP  CheckerType = "TCP_CHECK"
	CheckSMTP CheckerType = "SMTP_CHECK"
	CheckDNS  CheckerType = "DNS_CHECK"
	CheckMisc CheckerType = "MISC_CHECK"
	CheckPing CheckerType = "PING_CHECK"
	CheckUDP  CheckerType = "UDP_CHECK"
	CheckFile CheckerType = "FILE_CHECK"
	CheckBFD  CheckerType = "BFD_CHECK"
)

// Checker is one health checker of a real server. The connection and
// timing fields are resolved: the checker's setting, else the real
// server's, else the virtual server's, else the default of the type.
type Checker struct {
	Pos  Pos         `json:"pos"`
	Type CheckerType `json:"type"`

	// Connection options (not used by MISC_CHECK and FILE_CHECK).
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"` // zero: the real server's address
	ConnectPort uint16     `json:"connect_port"`        // resolved: the real server's port when unset
	BindTo      netip.Addr `json:"bindto,omitzero"`
	BindIf      string     `json:"bind_if,omitempty"`
	BindPort    uint16     `json:"bind_port,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"`

	Alpha            bool          `json:"alpha,omitempty"`
	ConnectTimeout   time.Duration `json:"connect_timeout"`
	Retry            int           `json:"retry"`
	DelayBeforeRetry time.Duration `json:"delay_before_retry"`
	Warmup           time.Duration `json:"warmup"`
	DelayLoop        time.Duration `json:"delay_loop"`
	LogAllFailures   bool          `json:"log_all_failures,omitempty"`

	HTTP *HTTPCheck `json:"http,omitempty"` // HTTP_GET, SSL_GET
	SMTP *SMTPCheck `json:"smtp,omitempty"`
	DNS  *DNSCheck  `json:"dns,omitempty"`
	Misc *MiscCheck `json:"misc,omitempty"`
	UDP  *UDPCheck  `json:"udp,omitempty"`
	File *FileCheck `json:"file,omitempty"`
	// BFD is the bfd_instance a BFD_CHECK follows.
	BFD string `json:"bfd,omitempty"`
}

// HTTPCheck holds the HTTP_GET / SSL_GET specifics.
type HTTPCheck struct {
	// Protocol is the HTTP version sent: "1.0" (default), "1.0C" (1.0 with
	// Connection: close) or "1.1".
	Protocol     string `json:"http_protocol"`
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty"`      // SNI to send instead of the virtualhost (keepalived >= 2.3)
	TLSCompliant bool   `json:"tls_compliant,omitempty"` // send close_notify (keepalived >= 2.3)
	Virtualhost  string `json:"virtualhost,omitempty"`   // resolved from RS / VS when unset
	URLs         []URL  `json:"urls"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// URL is one url block of an HTTP_GET / SSL_GET checker.
type URL struct {
	Pos  Pos    `json:"pos"`
	Path string `json:"path"`
	// Digest is the expected MD5 of the body, lower-case hex ("" = none).
	Digest         string        `json:"digest,omitempty"`
	StatusCodes    []StatusRange `json:"status_code"` // default 200-299
	Virtualhost    string        `json:"virtualhost,omitempty"`
	Regex          string        `json:"regex,omitempty"`
	RegexNoMatch   bool          `json:"regex_no_match,omitempty"`
	RegexOptions   []string      `json:"regex_options,omitempty"`
	RegexMinOffset int           `json:"regex_min_offset,omitempty"`
	RegexMaxOffset int           `json:"regex_max_offset,omitempty"`
}

// SMTPCheck holds the SMTP_CHECK specifics.
type SMTPCheck struct {
	HeloName string `json:"helo_name"` // default: smtpchecker.keepalived.org
}

// DNSCheck holds the DNS_CHECK specifics.
type DNSCheck struct {
	Type string `json:"type"` // A, NS, CNAME, SOA (default), MX, TXT, AAAA
	Name string `json:"name"` // default "."

	nameSet bool
}

// MiscCheck holds the MISC_CHECK specifics.
type MiscCheck struct {
	Path    *Script       `json:"misc_path"`
	Timeout time.Duration `json:"misc_timeout"` // default: delay_loop
	Dynamic bool          `json:"misc_dynamic,omitempty"`
}

// UDPCheck holds the UDP_CHECK specifics.
type UDPCheck struct {
	Payload        []byte `json:"payload,omitempty"` // nil: random
	RequireReply   bool   `json:"require_reply,omitempty"`
	ReplyData      []byte `json:"reply_data,omitempty"`
	ReplyMask      []byte `json:"reply_mask,omitempty"` // 0 bits: ignored (X in the hex string)
	MinReplyLength int    `json:"min_reply_length"`
	MaxReplyLength int    `json:"max_reply_length"` // default 255
}

// FileCheck holds the FILE_CHECK specifics.
type FileCheck struct {
	TrackFile string `json:"track_file"`
	Dynamic   bool   `json:"dynamic,omitempty"`
	Weight    int    `json:"weight"`
	WeightSet bool   `json:"weight_set,omitempty"`
	Reverse   bool   `json:"reverse,omitempty"`
}

// SSL is the SSL block: the client context of SSL_GET checkers.
type SSL struct {
	Pos         Pos    `json:"pos"`
	Password    string `json:"password,omitempty"`
	CA          string `json:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
}

func protoLower(p lvs.Protocol) string {
	switch p {
	case lvs.TCP:
		return "tcp"
	case lvs.UDP:
		return "udp"
	case lvs.SCTP:
		return "sctp"
	}
	return p.String()
}

// BFDInstance is a bfd_instance block: one BFD session (RFC 5880) to a
// neighbor, tracked by track_bfd and BFD_CHECK.
type BFDInstance struct {
	Pos      Pos        `json:"pos"`
	Name     string     `json:"name"`
	Neighbor netip.Addr `json:"neighbor_ip"`
	Source   netip.Addr `json:"source_ip,omitzero"`
	// Timers as keepalived reads them (ms, 3 decimals): min_rx and
	// min_tx default 10 ms, idle_tx 1 s, multiplier 5.
	MinRx      time.Duration `json:"min_rx"`
	MinTx      time.Duration `json:"min_tx"`
	IdleTx     time.Duration `json:"idle_tx"`
	Multiplier int           `json:"multiplier"`
	Passive    bool          `json:"passive,omitempty"`
	// TTL is sent and expected (0: 255 for IPv4, 64 for IPv6, as
	// keepalived); MaxHops is how many hops a packet may have crossed
	// (-1: no check).
	TTL      int  `json:"ttl,omitempty"`
	MaxHops  int  `json:"max_hops"`
	Multihop bool `json:"multihop,omitempty"`
	// Weight is the default weight of track_bfd entries naming this
	// instance (0: the instance goes to FAULT when the session is down).
	Weight  int  `json:"weight,omitempty"`
	Reverse bool `json:"reverse,omitempty"`
}
