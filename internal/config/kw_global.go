package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

func defaultGlobal() Global {
	return Global{
		SMTPConnectTimeout: 30 * time.Second,
		StartupTimeout:     10 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		VRRPVersion:        2,
		VRRPMcastGroup4:    netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:    netip.MustParseAddr("ff02::12"),
		DefaultInterface:   "eth0",
		GARP: GARP{
			MasterDelay: 5 * time.Second, MasterRepeat: 5,
			LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5,
			MasterRefreshRepeat: 1,
		},
		DownTimerAdverts: 3,
		VMACPrefix:       "vrrp",
		Dataplane:        DataplaneAuto,
	}
}

// globalSet remembers global options whose default depends on another
// (the lower-priority GARP values default to the master ones).
var globalLowerDelaySet, globalLowerRepeatSet = "lower_delay", "lower_repeat"

const maxLVSTimeout = 86400 * 31 // 31 days, keepalived's LVS_MAX_TIMEOUT

func fifoKw(name string, dst func(g *Global) **FIFO, script bool) *Keyword {
	args := "FIFO_NAME [username [groupname]]"
	if script {
		args = "STRING|QUOTED_STRING [username [groupname]]"
	}
	return kw(name, args, 1, "", func(c *cx, n *Node) {
		f := dst(&c.b.cfg.Global)
		if *f == nil {
			*f = &FIFO{}
		}
		if script {
			(*f).Script = c.script(n, 0)
			return
		}
		(*f).Path, (*f).User, (*f).Group = n.Args[0], arg(n, 1), arg(n, 2)
	})
}

func globalGARP(name, args, def string, set func(c *cx, n *Node, g *Global)) *Keyword {
	return kw(name, args, 1, def, func(c *cx, n *Node) { set(c, n, &c.b.cfg.Global) })
}

var (
	noEffectSched  = "vipd is a Go program scheduled by the Go runtime; process priorities, CPU affinity and memory locking are left to the service manager"
	noEffectSNMP   = "vipd exports Prometheus metrics (--metrics) instead of SNMP"
	noEffectDBus   = "vipd has a control socket (vipctl) instead of DBus"
	noEffectNL     = "vipd sizes its netlink buffers itself"
	noEffectReload = "vipd reloads on SIGHUP or vipctl reload and always checks the new configuration first"
	noEffectFW     = "vipd does not program a firewall"
)

var globalSection = newSection("global_defs", "Global definitions",
	kw("router_id", "STRING", 1, "local host name", func(c *cx, n *Node) { c.b.cfg.Global.RouterID = n.Args[0] }).noValue(NoValueError),
	list("notification_email", "{ EMAIL ... }", func(c *cx, n *Node) {
		g := &c.b.cfg.Global
		g.NotificationEmails = append(g.NotificationEmails, names(n)...)
		if len(n.Children) == 0 {
			c.warnf(n, "list the addresses, or remove the block", "empty notification_email block")
		}
		if len(n.Args) > 0 {
			c.errf(n, "put the addresses inside the block", "block notification_email has extra parameters %s", strings.Join(n.Args, " "))
		}
	}),
	kw("notification_email_from", "EMAIL", 1, "keepalived@<local host name>", func(c *cx, n *Node) {
		c.b.cfg.Global.NotificationEmailFrom = n.Args[0]
		if len(n.Args) > 1 && c.b.v24() {
			c.errf(n, "one address (quote it if it has spaces)", "emailfrom - ignoring extra entries '%s' ...", n.Args[1])
		}
	}).noValue(NoValueError),
	kw("smtp_server", "IP|NAME [PORT]", 1, "port 25", func(c *cx, n *Node) {
		s := &SMTPServer{Host: n.Args[0], Port: 25}
		if len(n.Args) > 1 {
			p, ok := c.port(n, 1)
			if !ok || p == 0 {
				return
			}
			s.Port = p
		}
		c.b.cfg.Global.SMTPServer = s
	}),
	kw("smtp_helo_name", "STRING", 1, "local host name", func(c *cx, n *Node) { c.b.cfg.Global.SMTPHeloName = n.Args[0] }).noValue(NoValueIgnored),
	kw("smtp_connect_timeout", "SECONDS", 1, "30", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 4294); ok {
			c.b.cfg.Global.SMTPConnectTimeout = time.Duration(v) * time.Second
		}
	}),
	flagKw("smtp_alert", func(c *cx, n *Node) { c.boolPtr(n, &c.b.cfg.Global.SMTPAlert) }).args("[<BOOL>]", 0),
	flagKw("smtp_alert_vrrp", func(c *cx, n *Node) { c.boolPtr(n, &c.b.cfg.Global.SMTPAlertVRRP) }).args("[<BOOL>]", 0),
	flagKw("smtp_alert_checker", func(c *cx, n *Node) { c.boolPtr(n, &c.b.cfg.Global.SMTPAlertChecker) }).args("[<BOOL>]", 0),
	flagKw("checker_log_all_failures", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.CheckerLogAllFailures) }).args("[<BOOL>]", 0),
	flagKw("no_email_faults", func(c *cx, n *Node) { c.b.cfg.Global.NoEmailFaults = true }),
	kw("script_user", "USERNAME [GROUPNAME]", 1, "keepalived_script if it exists, else root", func(c *cx, n *Node) {
		c.b.cfg.Global.ScriptUser, c.b.cfg.Global.ScriptGroup = n.Args[0], arg(n, 1)
		c.b.scriptUserPos = n.Pos
	}).noValue(NoValueError),
	flagKw("enable_script_security", func(c *cx, n *Node) { c.b.cfg.Global.EnableScriptSecurity = true }),
	kw("startup_script", "SCRIPT_NAME [username [groupname]]", 1, "", func(c *cx, n *Node) { c.b.cfg.Global.StartupScript = c.script(n, 0) }).noValue(NoValueError).note("run to its end (or its timeout) before anything starts, under the same script security as notify scripts; a failure is logged and vipd goes on"),
	kw("startup_script_timeout", "SECONDS", 1, "10", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 1000); ok {
			c.b.cfg.Global.StartupTimeout = time.Duration(v) * time.Second
		}
	}).note("then the script's process group is killed").noValue(NoValueError),
	kw("shutdown_script", "SCRIPT_NAME [username [groupname]]", 1, "", func(c *cx, n *Node) { c.b.cfg.Global.ShutdownScript = c.script(n, 0) }).note("run when vipd stops, after VRRP, checkers and the data plane have stopped (the running configuration's script)").noValue(NoValueError),
	kw("shutdown_script_timeout", "SECONDS", 1, "10", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 1000); ok {
			c.b.cfg.Global.ShutdownTimeout = time.Duration(v) * time.Second
		}
	}).note("then the script's process group is killed and vipd exits").noValue(NoValueError),
	kw("vrrp_version", "2|3", 1, "2", func(c *cx, n *Node) { c.intVal(n, &c.b.cfg.Global.VRRPVersion, 2, 3) }),
	mcastGroupKw("vrrp_mcast_group4", "IPv4", "224.0.0.18", "224.0.0.0/4", func(g *Global) *netip.Addr { return &g.VRRPMcastGroup4 }),
	mcastGroupKw("vrrp_mcast_group6", "IPv6", "ff02::12", "ff00::/8", func(g *Global) *netip.Addr { return &g.VRRPMcastGroup6 }),
	kw("default_interface", "IFNAME", 1, "eth0", func(c *cx, n *Node) { c.b.cfg.Global.DefaultInterface = n.Args[0] }).noValue(NoValueError),
	globalGARP("vrrp_garp_master_delay", "SECONDS", "5", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.MasterDelay = time.Duration(v) * time.Second
			if !c.b.globalSet[globalLowerDelaySet] {
				g.GARP.LowerPrioDelay = g.GARP.MasterDelay
			}
		}
	}),
	globalGARP("vrrp_garp_master_repeat", "COUNT", "5", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.MasterRepeat = int(v)
			if !c.b.globalSet[globalLowerRepeatSet] {
				g.GARP.LowerPrioRepeat = g.GARP.MasterRepeat
			}
		}
	}),
	globalGARP("vrrp_garp_lower_prio_delay", "SECONDS", "vrrp_garp_master_delay", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.LowerPrioDelay = time.Duration(v) * time.Second
			c.b.globalSet[globalLowerDelaySet] = true
		}
	}),
	globalGARP("vrrp_garp_lower_prio_repeat", "COUNT", "vrrp_garp_master_repeat", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.LowerPrioRepeat = int(v)
			c.b.globalSet[globalLowerRepeatSet] = true
		}
	}),
	globalGARP("vrrp_garp_master_refresh", "SECONDS", "0 (off)", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.MasterRefresh = time.Duration(v) * time.Second
		}
	}),
	globalGARP("vrrp_garp_master_refresh_repeat", "COUNT", "1", func(c *cx, n *Node, g *Global) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			g.GARP.MasterRefreshRepeat = int(v)
		}
	}),
	globalGARP("vrrp_garp_interval", "SECONDS", "0", func(c *cx, n *Node, g *Global) { c.durVal(n, &g.GARP.Interval, 0.000001, 4294.967295) }).
		note("keepalived 2.2 rejects 0 (range 0.000001..4294.967295); leave it out for no delay"),
	globalGARP("vrrp_gna_interval", "SECONDS", "0", func(c *cx, n *Node, g *Global) { c.durVal(n, &g.GARP.NAInterval, 0.000001, 4294.967295) }).
		note("keepalived 2.2 rejects 0 (range 0.000001..4294.967295); leave it out for no delay"),
	flagKw("vrrp_min_garp", func(c *cx, n *Node) {
		var v bool
		c.boolVal(n, &v)
		if v {
			g := &c.b.cfg.Global
			g.GARP.MasterRepeat, g.GARP.MasterDelay, g.GARP.LowerPrioRepeat, g.GARP.LowerPrioDelay, g.GARP.MasterRefreshRepeat = 1, 0, 1, 0, 1
		}
	}).args("[<BOOL>]", 0),
	garpExtraIf("vrrp_garp_extra_if", func(c *cx) (*time.Duration, *bool) {
		return &c.b.cfg.Global.GARPExtraIf, &c.b.cfg.Global.GARPExtraIfAll
	}).note("while master, every SECONDS, one GARP/NA on each interface other than the instance's that holds one of its VIPs or excluded VIPs; without `all` keepalived sends on VMAC interfaces only, and vipd has none: nothing is sent").noValue(NoValueError),
	kw("vrrp_down_timer_adverts", "1..100", 1, "3", func(c *cx, n *Node) { c.intVal(n, &c.b.cfg.Global.DownTimerAdverts, 1, 100) }),
	flagKw("vrrp_lower_prio_no_advert", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.LowerPrioNoAdvert) }).args("[<BOOL>]", 0),
	flagKw("vrrp_higher_prio_send_advert", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.HigherPrioSendAdvert) }).args("[<BOOL>]", 0),
	flagKw("vrrp_check_unicast_src", func(c *cx, n *Node) { c.b.cfg.Global.CheckUnicastSrc = true }),
	flagKw("vrrp_skip_check_adv_addr", func(c *cx, n *Node) { c.b.cfg.Global.SkipCheckAdvAddr = true }),
	flagKw("vrrp_strict", func(c *cx, n *Node) { c.b.cfg.Global.Strict = true }).note("strict RFC checks are made at load; no_accept mode follows (see no_accept)"),
	flagKw("vrrp_notify_priority_changes", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.NotifyPriorityChanges) }).note(notePrioChanges).args("[<BOOL>]", 0),
	kw("vrrp_startup_delay", "SECONDS", 1, "0", func(c *cx, n *Node) { c.durVal(n, &c.b.cfg.Global.StartupDelay, 0.001, 4294.967295) }).note("when VRRP starts (daemon start, or the reload that brings the first vrrp_instance), it opens no socket, sends and reads no advert and adds no VIP until the delay has passed; later reloads do not change the delay"),
	kw("vrrp_delay_after_boot", "SECONDS", 1, "0", func(c *cx, n *Node) { c.durVal(n, &c.b.cfg.Global.DelayAfterBoot, 0.001, 4294.967295) }).since("2.3"),
	flagKw("v3_checksum_as_v2", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.V3ChecksumAsV2) }).args("[<BOOL>]", 0).since("2.3"),
	ign("use_symlink_paths", "[<BOOL>]", 0, "vipd runs script paths as given").since("2.3"),
	ign("set_supplementary_groups", "", 0, "vipd sets the supplementary groups of script users").since("2.3"),
	ign("snmp_vs_stats_update_interval", "SECONDS", 1, noEffectSNMP).since("2.3"),
	ign("snmp_rs_stats_update_interval", "SECONDS", 1, noEffectSNMP).since("2.3"),
	ign("dbus_no_interface_name", "NAME", 1, noEffectDBus).since("2.3"),
	ign("state_file_location", "PATH", 1, "vipctl status replaces the SIGUSR1 data files").since("2.3"),
	ign("stats_file_location", "PATH", 1, "vipctl status replaces the SIGUSR2 stats files").since("2.3"),
	ign("json_file_location", "PATH", 1, "vipctl status -json replaces the JSON data file").since("2.3"),
	ign("json_version", "1|2", 1, "vipctl status -json replaces the JSON data file").since("2.3"),
	ign("iproute_usr_dir", "PATH", 1, "vipd reads route table names from /etc/iproute2").since("2.3"),
	ign("iproute_etc_dir", "PATH", 1, "vipd reads route table names from /etc/iproute2").since("2.3"),
	ign("include_check", "[OPTIONS]", 0, "vipd reports every missing include (a notice for include, an error for includea)").since("2.3"),
	kw("max_auto_priority", "[-1..99]", 0, "0", func(c *cx, n *Node) {
		if len(n.Args) == 0 {
			c.b.cfg.Global.MaxAutoPriority = 99
			return
		}
		c.intVal(n, &c.b.cfg.Global.MaxAutoPriority, -1, 99)
	}).status(Ignored).note(noEffectSched),
	kw("lvs_timeouts", "[tcp SECS] [tcpfin SECS] [udp SECS]", 0, "kernel's (900/120/300 s)", func(c *cx, n *Node) {
		t := &lvs.Timeouts{}
		if len(n.Args) == 0 {
			c.errf(n, "give tcp, tcpfin and/or udp with a number of seconds", "lvs_timeouts requires at least one option")
			return
		}
		for i := 0; i < len(n.Args); i += 2 {
			v, ok := c.integer(n, i+1, 1, maxLVSTimeout)
			if !ok {
				continue
			}
			d := time.Duration(v) * time.Second
			switch n.Args[i] {
			case "tcp":
				t.TCP = d
			case "tcpfin":
				t.TCPFin = d
			case "udp":
				t.UDP = d
			default:
				c.errf(n, "use tcp, tcpfin or udp", "unknown lvs_timeouts option '%s'", n.Args[i])
			}
		}
		c.b.cfg.Global.LVSTimeouts = t
	}),
	kw("lvs_sync_daemon", "INTERFACE [[inst] VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT] [ttl TTL] [group IP]", 1, "", lvsSyncDaemon).noValue(NoValueError).
		note("runs the kernel's sync daemon with the ipvs data plane (master on the VRRP master, backup elsewhere, as keepalived); ignored with a notice on the proxy data plane, which has no connections to sync"),
	flagKw("lvs_flush", func(c *cx, n *Node) { c.b.cfg.Global.LVSFlush = true }).note("ipvs data plane: the whole IPVS table is flushed at start (not on reload), services vipd did not create included; the proxy and xdp data planes have no IPVS table and flush nothing"),
	lvsFlushOnStop("lvs_flush_on_stop").note("ipvs data plane: without VS the whole IPVS table is flushed at stop; with VS vipd's virtual servers are deleted without their real servers first, as it does by default"),
	alias("lvs_flush_onstop", lvsFlushOnStop("lvs_flush_on_stop"), false),
	fifoKw("notify_fifo", func(g *Global) **FIFO { return &g.NotifyFIFO }, false).noValue(NoValueError),
	fifoKw("notify_fifo_script", func(g *Global) **FIFO { return &g.NotifyFIFO }, true).noValue(NoValueError),
	fifoKw("vrrp_notify_fifo", func(g *Global) **FIFO { return &g.VRRPNotifyFIFO }, false).noValue(NoValueError),
	fifoKw("vrrp_notify_fifo_script", func(g *Global) **FIFO { return &g.VRRPNotifyFIFO }, true).noValue(NoValueError),
	fifoKw("lvs_notify_fifo", func(g *Global) **FIFO { return &g.LVSNotifyFIFO }, false).noValue(NoValueError),
	fifoKw("lvs_notify_fifo_script", func(g *Global) **FIFO { return &g.LVSNotifyFIFO }, true).noValue(NoValueError),
	flagKw("fifo_write_vrrp_states_on_reload", func(c *cx, n *Node) { c.b.cfg.Global.FIFOWriteVRRPStatesOnReload = true }).note("a reload writes the state of each instance and sync group that keeps it to the FIFOs (no script, no mail); a changed state notifies as usual"),
	kw("dynamic_interfaces", "[allow_if_changes]", 0, "off", func(c *cx, n *Node) {
		g := &c.b.cfg.Global
		g.DynamicInterfaces = true
		if len(n.Args) > 0 {
			if n.Args[0] != "allow_if_changes" {
				c.errf(n, "the only option is allow_if_changes", "unknown dynamic_interfaces option '%s'", n.Args[0])
				return
			}
			g.AllowIfChanges = true
		}
	}),
	flagKw("rs_init_notifies", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.RSInitNotifies) }).note("a real server that starts up (at start, or new in a reload) is notified as up: notify_up, the FIFO line, mail as smtp_alert says; an alpha server starts down and is notified when it comes up").args("[<BOOL>]", 0),
	flagKw("no_checker_emails", func(c *cx, n *Node) { c.boolVal(n, &c.b.cfg.Global.NoCheckerEmails) }).note("what vipd always does: mail when a real server is added or removed, never for one checker's change while others keep the server's state (keepalived without it also mails each checker's change)").args("[<BOOL>]", 0),
	kw("vmac_prefix", "STRING", 1, "vrrp", func(c *cx, n *Node) { c.b.cfg.Global.VMACPrefix = n.Args[0] }),
	kw("vmac_addr_prefix", "STRING", 1, "vmac_prefix", func(c *cx, n *Node) { c.b.cfg.Global.VMACAddrPrefix = n.Args[0] }).status(Ignored).note("names per-address VMACs (use_vmac_addr), which vipd refuses"),
	kw("vipd_dataplane", "auto|proxy|ipvs|xdp", 1, "auto", func(c *cx, n *Node) {
		switch n.Args[0] {
		case DataplaneAuto, DataplaneProxy, DataplaneIPVS, DataplaneXDP:
			c.b.cfg.Global.Dataplane = n.Args[0]
		default:
			c.errf(n, "use auto, proxy, ipvs or xdp", "unknown data plane '%s'", n.Args[0])
		}
	}).vipd().note("vipd extension: the data plane (auto picks ipvs when the kernel has IPVS and a virtual server needs it, else proxy; xdp is only used when named); --dataplane overrides it"),

	// Accepted without effect.
	ign("tmp_config_directory", "DIRECTORY", 1, "vipd reads the configuration once, in the main process").noValue(NoValueError),
	ign("config_save_dir", "DIRECTORY", 1, "vipd does not save configuration copies"),
	ign("process_names", "", 0, noEffectSched),
	ign("process_name", "NAME", 1, noEffectSched),
	ign("vrrp_process_name", "NAME", 1, noEffectSched),
	ign("checker_process_name", "NAME", 1, noEffectSched),
	ign("bfd_process_name", "NAME", 1, noEffectSched),
	ign("lvs_process_name", "NAME", 1, noEffectSched),
	ign("min_auto_priority_delay", "USECS", 1, noEffectSched).noValue(NoValueError).checkInt(1, 10000000),
	ign("vrrp_priority", "-20..19", 1, "vipd's VRRP thread runs SCHED_RR, where a nice value has no effect (nice -10 on the whole process changed nothing under load: docs/benchmarks-failover.md)").noValue(NoValueError).checkInt(-20, 19),
	ign("checker_priority", "-20..19", 1, noEffectSched).noValue(NoValueError).checkInt(-20, 19),
	ign("bfd_priority", "-20..19", 1, noEffectSched).noValue(NoValueError).checkInt(-20, 19),
	flagKw("vrrp_no_swap", func(c *cx, n *Node) { c.b.cfg.Global.VRRPNoSwap = true }).note("mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) of the whole vipd process (keepalived locks its VRRP child; vipd is one process): a page once touched stays in memory, so the VRRP thread never waits on it coming back; a reload without it unlocks"),
	ign("checker_no_swap", "", 0, "vipd is one process: vrrp_no_swap locks all of it, checkers included"),
	ign("bfd_no_swap", "", 0, "vipd is one process: vrrp_no_swap locks all of it"),
	ign("vrrp_cpu_affinity", "CPU...", 1, noEffectSched).noValue(NoValueError),
	ign("checker_cpu_affinity", "CPU...", 1, noEffectSched).noValue(NoValueError),
	ign("bfd_cpu_affinity", "CPU...", 1, noEffectSched).noValue(NoValueError),
	kw("vrrp_rt_priority", "1..99", 1, "1", func(c *cx, n *Node) { c.intVal(n, &c.b.cfg.Global.VRRPRTPriority, 1, 99) }).noValue(NoValueError).note("every thread of vipd runs SCHED_RR at this priority, as keepalived runs its VRRP process (in a Go program the VRRP thread alone is held up by the runtime's ordinary threads: docs/benchmarks-failover.md); without the keyword vipd's VRRP thread alone runs SCHED_RR 1; changed by a reload"),
	ign("checker_rt_priority", "1..99", 1, "vipd is one process: vrrp_rt_priority sets the priority of all of it, checkers included").noValue(NoValueError).checkInt(1, 99),
	ign("bfd_rt_priority", "1..99", 1, noEffectSched).noValue(NoValueError).checkInt(1, 99),
	ign("vrrp_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1),
	ign("checker_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1),
	ign("bfd_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1),
	alias("vrrp_rlimit_rtime", ign("vrrp_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1), false),
	alias("checker_rlimit_rtime", ign("checker_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1), false),
	alias("bfd_rlimit_rtime", ign("bfd_rlimit_rttime", "USECS", 1, noEffectSched).checkInt(1, 1<<32-1), false),
	ign("snmp_socket", "SOCKET", 1, noEffectSNMP).noValue(NoValueError),
	ign("enable_snmp_vrrp", "", 0, noEffectSNMP),
	alias("enable_snmp_keepalived", ign("enable_snmp_vrrp", "", 0, noEffectSNMP), false),
	ign("enable_snmp_checker", "", 0, noEffectSNMP),
	ign("enable_snmp_rfc", "", 0, noEffectSNMP),
	ign("enable_snmp_rfcv2", "", 0, noEffectSNMP),
	ign("enable_snmp_rfcv3", "", 0, noEffectSNMP),
	ign("enable_traps", "", 0, noEffectSNMP),
	ign("enable_dbus", "", 0, noEffectDBus),
	ign("dbus_service_name", "SERVICE_NAME", 1, noEffectDBus).noValue(NoValueError),
	ign("vrrp_netlink_cmd_rcv_bufs", "BYTES", 1, noEffectNL).noValue(NoValueError).checkInt(0, 1<<32-1),
	ign("vrrp_netlink_cmd_rcv_bufs_force", "[<BOOL>]", 0, noEffectNL).checkBool(),
	ign("vrrp_netlink_monitor_rcv_bufs", "BYTES", 1, noEffectNL).noValue(NoValueError).checkInt(0, 1<<32-1),
	ign("vrrp_netlink_monitor_rcv_bufs_force", "[<BOOL>]", 0, noEffectNL).checkBool(),
	ign("lvs_netlink_cmd_rcv_bufs", "BYTES", 1, noEffectNL).noValue(NoValueError).checkInt(0, 1<<32-1),
	ign("lvs_netlink_cmd_rcv_bufs_force", "[<BOOL>]", 0, noEffectNL).checkBool(),
	ign("lvs_netlink_monitor_rcv_bufs", "BYTES", 1, noEffectNL).noValue(NoValueError).checkInt(0, 1<<32-1),
	ign("lvs_netlink_monitor_rcv_bufs_force", "[<BOOL>]", 0, noEffectNL).checkBool(),
	ign("process_monitor_rcv_bufs", "BYTES", 1, noEffectNL).noValue(NoValueError).checkInt(0, 1<<32-1),
	ign("process_monitor_rcv_bufs_force", "[<BOOL>]", 0, noEffectNL).checkBool(),
	ign("vrrp_rx_bufs_policy", "MTU|ADVERT|NUMBER", 1, noEffectNL).noValue(NoValueError),
	ign("vrrp_rx_bufs_multiplier", "NUMBER", 1, noEffectNL).noValue(NoValueError).checkInt(1, 1<<32-1),
	ign("umask", "NUMBER|BITS", 1, "vipd creates its files with mode 0600/0700"),
	ign("log_unknown_vrids", "", 0, "vipd counts adverts for unknown VRIDs in its metrics"),
	ign("random_seed", "UNSIGNED_INT", 1, "${_RANDOM} is seeded before global_defs is read").checkInt(0, 1<<32-1),
	ign("reload_check_config", "[LOG_FILE]", 0, noEffectReload),
	ign("reload_time_file", "PATH", 1, noEffectReload).noValue(NoValueError),
	ign("reload_repeat", "", 0, noEffectReload),
	ign("reload_file", "[PATH]", 0, noEffectReload),
	ign("data_use_instance", "[<BOOL>]", 0, "vipctl status replaces the SIGUSR1 data files").checkBool(),
	ign("disable_local_igmp", "", 0, "vipd does not change igmp_link_local_mcast_reports"),
	(&Keyword{Name: "vrrp_iptables", Args: "[IN_CHAIN [OUT_CHAIN]]", Status: Ignored, Note: noEffectFW + "; keepalived 2.2 (Debian) warns that iptables is not supported",
		set: func(c *cx, n *Node) {
			c.warnf(n, "replace vrrp_iptables and vrrp_ipsets with nftables", "iptables not supported, using nftables instead")
		}}),
	ign("nftables", "[TABLENAME]", 0, noEffectFW),
	ign("nftables_priority", "PRIORITY", 1, noEffectFW).checkInt(-1<<31, 1<<31-1),
	ign("nftables_counters", "", 0, noEffectFW),
	ign("nftables_ifindex", "", 0, noEffectFW),
	refuse("nftables_ipvs", "[TABLENAME]", 0, "virtual_server_group fwmarks through nftables are not implemented"),
	ign("nftables_ipvs_priority", "PRIORITY", 1, noEffectFW).checkInt(-1<<31, 1<<31-1),
	ign("nftables_ipvs_start_fwmark", "NUMBER", 1, noEffectFW).checkInt(0, 1<<32-1),
)

func init() {
	globalSection.addKeywords(
		alias("vrrp_vmac_garp_intvl", garpExtraIf("vrrp_garp_extra_if", func(c *cx) (*time.Duration, *bool) {
			return &c.b.cfg.Global.GARPExtraIf, &c.b.cfg.Global.GARPExtraIfAll
		}), true),
	)
}

func garpExtraIf(name string, dst func(c *cx) (*time.Duration, *bool)) *Keyword {
	return kw(name, "[all] SECONDS", 1, "0 (off)", func(c *cx, n *Node) {
		d, all := dst(c)
		i := 0
		if n.Args[0] == "all" {
			i = 1
			if len(n.Args) < 2 {
				c.errf(n, "write "+name+" [all] SECONDS", "missing interval")
				return
			}
		}
		v, ok := c.integer(n, i, 0, 86400)
		if !ok {
			return
		}
		*d = time.Duration(v) * time.Second
		*all = i == 1
	})
}

func lvsFlushOnStop(name string) *Keyword {
	return kw(name, "[VS]", 0, "off", func(c *cx, n *Node) {
		switch arg(n, 0) {
		case "":
			c.b.cfg.Global.LVSFlushOnStop = "all"
		case "VS":
			c.b.cfg.Global.LVSFlushOnStop = "vs"
		default:
			c.errf(n, "write lvs_flush_on_stop [VS]", "unknown lvs_flush_on_stop type %s", n.Args[0])
		}
	})
}

// mcastGroupKw is vrrp_mcast_group4 or vrrp_mcast_group6: a multicast
// address of the family ("IPv4" or "IPv6") in the range given, stored in
// the field dst picks.
func mcastGroupKw(name, family, def, within string, dst func(g *Global) *netip.Addr) *Keyword {
	return kw(name, strings.ToUpper(family), 1, def, func(c *cx, n *Node) {
		a, ok := c.addr(n, 0)
		if !ok {
			return
		}
		if a.Is4() != (family == "IPv4") || !a.IsMulticast() {
			c.errf(n, "give an "+family+" multicast address ("+within+")", "%s '%s' is not an %s multicast address", name, n.Args[0], family)
			return
		}
		*dst(&c.b.cfg.Global) = a
	})
}

func lvsSyncDaemon(c *cx, n *Node) {
	d := &LVSSyncDaemon{Interface: n.Args[0], SyncID: -1, Port: 8848}
	for i := 1; i < len(n.Args); i++ {
		key := n.Args[i]
		val := arg(n, i+1)
		switch key {
		case "inst":
			d.Instance = val
		case "id":
			c.intArg(n, i+1, &d.SyncID, 0, 255)
		case "maxlen":
			c.intArg(n, i+1, &d.MaxLen, 1, 65507)
		case "port":
			if v, ok := c.integer(n, i+1, 1, 65535); ok {
				d.Port = uint16(v)
			}
		case "ttl":
			c.intArg(n, i+1, &d.TTL, 1, 255)
		case "group":
			if a, ok := c.addr(n, i+1); ok {
				d.Group = a
			}
		default:
			if i == 1 {
				d.Instance = key
				continue
			}
			c.errf(n, "options are inst, id, maxlen, port, ttl, group", "unknown lvs_sync_daemon option '%s'", key)
			continue
		}
		i++ // every option takes one value
	}
	c.b.cfg.Global.LVSSyncDaemon = d
}
