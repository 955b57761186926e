package config

// notYet lists keywords vipd parses into the model but does not act on
// yet, by section, with what happens instead. They are marked here rather
// than at their definitions so the list reads as one (and docs/compat.md
// says "not yet" for each).
var notYet = map[string]map[string]string{
	"global_defs": {
		"startup_script":                   "not run yet",
		"startup_script_timeout":           "startup_script is not run yet",
		"shutdown_script":                  "not run yet",
		"shutdown_script_timeout":          "shutdown_script is not run yet",
		"vrrp_garp_extra_if":               "no periodic GARP on the VIPs' other interfaces yet",
		"vrrp_garp_extra_if_all":           "see vrrp_garp_extra_if",
		"vrrp_notify_priority_changes":     "priority changes are not notified yet",
		"vrrp_startup_delay":               "VRRP starts at once",
		"lvs_flush":                        "vipd never flushes IPVS services it did not create (the ipvs data plane owns only its own)",
		"lvs_flush_on_stop":                "the ipvs data plane removes the services it created at stop, and only those",
		"fifo_write_vrrp_states_on_reload": "states are not re-sent to FIFOs on reload yet",
		"rs_init_notifies":                 "no notify at start for real servers yet",
		"no_checker_emails":                "checker mails follow smtp_alert_checker only",
		"vmac_prefix":                      "use_vmac is not implemented yet",
		"vmac_addr_prefix":                 "use_vmac is not implemented yet",
	},
	"top level": {
		"track_group":              "deleted static addresses, routes and rules are reinstated, but no instance is faulted when that fails",
		"garp_group":               "GARP pacing per interface group is not implemented yet (vrrp_garp_interval applies)",
		"linkbeat_interfaces":      "link state always comes from netlink",
		"interface_up_down_delays": "interface transitions act at once",
	},
	"vrrp_sync_group": {
		"notify_priority_changes": "priority changes are not notified yet",
	},
	"vrrp_instance": {
		"use_vmac":                "no virtual MAC yet: the VIP moves by gratuitous ARP with the interface's own MAC",
		"vmac_xmit_base":          "use_vmac is not implemented yet",
		"track_src_ip":            "the source address is not tracked yet",
		"unicast_fault_no_peer":   "an instance with no unicast peer is not faulted yet",
		"mcast_dst_ip":            "adverts go to vrrp_mcast_group4/6",
		"old_unicast_checksum":    "unicast checksums are always RFC ones",
		"promote_secondaries":     "the kernel's promote_secondaries is left as it is",
		"garp_extra_if":           "no periodic GARP on the VIPs' other interfaces yet",
		"notify_priority_changes": "priority changes are not notified yet",
	},
	"virtual_server": {
		"ha_suspend": "checkers run whether or not the VIP is here",
	},
}

// notYetRefused lists keywords vipd does not implement yet and whose
// absence would silently weaken failover: the daemon refuses them.
var notYetRefused = map[string]map[string]string{
	"top level": {
		"vrrp_track_process": "not implemented yet; track the process with a vrrp_script instead, e.g. script \"/usr/bin/pidof haproxy\"",
	},
	"vrrp_instance": {
		"track_process": "not implemented yet; use track_script with a vrrp_script running pidof",
	},
	"vrrp_sync_group": {
		"track_process": "not implemented yet; use track_script with a vrrp_script running pidof",
	},
}

func init() {
	for _, s := range Sections() {
		for name, note := range notYet[s.Name] {
			if k := s.Lookup(name); k != nil && k.Status == Supported {
				k.Status, k.Note = NotYet, note
			}
		}
		for name, note := range notYetRefused[s.Name] {
			if k := s.Lookup(name); k != nil {
				k.Status, k.Note = Refused, note
			}
		}
	}
}
