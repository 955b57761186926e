package config

import (
	"strings"
	"time"
)

func namedBlock(name, args string, sec *Section, set func(c *cx, n *Node)) *Keyword {
	return block(name, args, 1, sec, set)
}

var trackFileKw = namedBlock("track_file", "NAME { ... }", trackFileSection, func(c *cx, n *Node) {
	tf := &TrackFile{Pos: n.Pos, Name: n.Args[0], Weight: 1}
	c.tf = tf
	c.walk(trackFileSection, n.Children)
	c.tf = nil
	if tf.File == "" {
		c.errf(n, "add file \"PATH\" to the block", "no file set for track_file %s - ignoring", tf.Name)
		return
	}
	c.b.cfg.TrackFiles = append(c.b.cfg.TrackFiles, tf)
})

// topSection is the top level of keepalived.conf.
var topSection = newSection("top level", "Top-level blocks",
	block("global_defs", "{ ... }", 0, globalSection, func(c *cx, n *Node) {
		if c.b.cfg.Global.Pos.Line == 0 {
			c.b.cfg.Global.Pos = n.Pos
		}
		c.walk(globalSection, n.Children)
	}),
	list("static_ipaddress", "{ IP[/MASK] [dev IF] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			v, err := parseVIP(append([]string{it.Name}, it.Args...), true)
			if err != nil {
				c.errf(it, "write IP[/MASK] [brd IP] [dev IF] [scope SCOPE] [label LABEL] ...", "static_ipaddress: %v - skipping", err)
				continue
			}
			v.Pos = it.Pos
			c.b.cfg.StaticAddresses = append(c.b.cfg.StaticAddresses, v)
		}
	}),
	routeList("static_routes", func(c *cx) *[]Route { return &c.b.cfg.StaticRoutes }),
	ruleList("static_rules", func(c *cx) *[]Rule { return &c.b.cfg.StaticRules }),
	namedBlock("track_group", "NAME { group { VRRP_INSTANCE ... } }", trackGroupSection, func(c *cx, n *Node) {
		tg := &TrackGroup{Pos: n.Pos, Name: n.Args[0]}
		c.tg = tg
		c.walk(trackGroupSection, n.Children)
		c.tg = nil
		c.b.cfg.TrackGroups = append(c.b.cfg.TrackGroups, *tg)
	}).note("while a static address, route or rule with track_group NAME cannot be installed or reinstated (e.g. its interface was deleted), the listed instances are in FAULT (reason \"process track_group NAME down\"); they leave it once it is back").noValue(NoValueError),
	list("linkbeat_interfaces", "{ IFNAME [MII|ETHTOOL|IOCTL] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			l := Linkbeat{Interface: it.Name}
			if t := strings.ToUpper(arg(it, 0)); t != "" {
				if t != "MII" && t != "ETHTOOL" && t != "IOCTL" {
					c.errf(it, "use MII, ETHTOOL or IOCTL", "unknown linkbeat type '%s'", it.Args[0])
					continue
				}
				l.Type = t
			}
			c.b.cfg.LinkbeatInterfaces = append(c.b.cfg.LinkbeatInterfaces, l)
		}
	}).notYet("link state always comes from netlink; the list is kept in the model"),
	list("interface_up_down_delays", "{ IFNAME DOWN_DELAY [UP_DELAY] ... }", func(c *cx, n *Node) {
		for _, it := range n.Children {
			if len(it.Args) == 0 {
				c.errf(it, "write IFNAME DOWN_DELAY [UP_DELAY]", "interface %s has no delay", it.Name)
				continue
			}
			d := InterfaceDelay{Interface: it.Name}
			var ok bool
			if d.Down, ok = c.seconds(it, 0, 0, 255); !ok {
				continue
			}
			d.Up = d.Down
			if len(it.Args) > 1 {
				if d.Up, ok = c.seconds(it, 1, 0, 255); !ok {
					continue
				}
			}
			c.b.cfg.InterfaceDelays = append(c.b.cfg.InterfaceDelays, d)
		}
	}).note("VRRP acts on an interface going down (up) only once it has stayed so for DOWN_DELAY (UP_DELAY, default DOWN_DELAY); a change undone within the delay has no effect"),
	namedBlock("vrrp_script", "NAME { ... }", vrrpScriptSection, func(c *cx, n *Node) {
		s := &VRRPScript{Pos: n.Pos, Name: n.Args[0], Interval: time.Second, Rise: 1, Fall: 1, Timeout: -1}
		c.scr = s
		c.walk(vrrpScriptSection, n.Children)
		c.scr = nil
		if s.Script == nil || len(s.Script.Argv) == 0 {
			c.errf(n, "add script \"/path/to/script args\"", "no script set for vrrp_script %s - removing", s.Name)
			return
		}
		if s.user != "" {
			s.Script.User, s.Script.Group = s.user, s.group
		}
		if s.Timeout < 0 {
			s.Timeout = s.Interval
		}
		c.b.cfg.Scripts = append(c.b.cfg.Scripts, s)
	}),
	namedBlock("vrrp_track_process", "NAME { ... }", trackProcessSection, func(c *cx, n *Node) {
		tp := &TrackProcess{Pos: n.Pos, Name: n.Args[0], Quorum: 1, QuorumMax: -1}
		c.tp = tp
		c.walk(trackProcessSection, n.Children)
		c.tp = nil
		if len(tp.Process) == 0 {
			c.errf(n, "add process NAME to the block", "vrrp_track_process %s has no process specified - ignoring", tp.Name)
			return
		}
		c.b.cfg.TrackProcesses = append(c.b.cfg.TrackProcesses, tp)
	}).note("followed through the kernel's process events connector (CONFIG_PROC_EVENTS), after one read of /proc, as keepalived; vipd opens the connector in the initial network namespace even when it runs in another one"),
	trackFileKw,
	alias("vrrp_track_file", trackFileKw, false),
	namedBlock("vrrp_sync_group", "NAME { group { ... } ... }", syncGroupSection, func(c *cx, n *Node) {
		sg := &SyncGroup{Pos: n.Pos, Name: n.Args[0]}
		c.sg = sg
		c.walk(syncGroupSection, n.Children)
		c.sg = nil
		c.b.cfg.SyncGroups = append(c.b.cfg.SyncGroups, sg)
	}).noValue(NoValueError),
	block("garp_group", "{ ... }", 0, garpGroupSection, func(c *cx, n *Node) {
		g := &GARPGroup{Pos: n.Pos}
		c.gg = g
		c.walk(garpGroupSection, n.Children)
		c.gg = nil
		if !g.delaySet {
			c.errf(n, "add garp_interval and/or gna_interval", "garp group does not have any delay set - removing")
			return
		}
		if len(g.Interfaces) == 0 {
			c.errf(n, "add interface IFNAME or interfaces { ... }", "garp_group has no interfaces - ignoring")
			return
		}
		c.b.cfg.GARPGroups = append(c.b.cfg.GARPGroups, g)
	}).notYet("GARP pacing per interface group is not implemented yet (vrrp_garp_interval applies)"),
	namedBlock("vrrp_instance", "NAME { ... }", instanceSection, func(c *cx, n *Node) {
		in := newInstance(n.Args[0], n.Pos)
		c.inst = in
		c.walk(instanceSection, n.Children)
		c.inst = nil
		for _, o := range c.b.cfg.Instances {
			if o.Name == in.Name {
				c.errf(n, "give every vrrp_instance a distinct name", "vrrp instance %s already defined", in.Name)
				return
			}
		}
		c.b.cfg.Instances = append(c.b.cfg.Instances, in)
	}).noValue(NoValueError),
	&Keyword{Name: "bfd_instance", Args: "NAME { ... }", Min: 1, NoValue: NoValueError, Block: bfdSection, Note: noteBFD, set: bfdInstance},
	vsGroupKw,
	virtualServerKw,
	block("SSL", "{ password ...; ca ...; certificate ...; key ... }", 0, sslSectionTop, func(c *cx, n *Node) {
		if c.b.cfg.SSL == nil {
			c.b.cfg.SSL = &SSL{Pos: n.Pos}
		}
		c.walk(sslSectionTop, n.Children)
	}),
	ign("net_namespace", "NAME", 1, "run vipd inside the namespace instead (ip netns exec NAME vipd ...)").noValue(NoValueError).status(Refused),
	ign("net_namespace_ipvs", "NAME", 0, "vipd programs IPVS in its own namespace").status(Refused),
	ign("namespace_with_ipsets", "", 0, noEffectFW),
	ign("instance", "NAME", 1, "vipd's runtime paths are set with --pid and --control").noValue(NoValueError),
	ign("use_pid_dir", "", 0, "vipd's runtime paths are set with --pid and --control"),
	ign("linkbeat_use_polling", "", 0, "vipd follows link state through netlink"),
	ign("child_wait_time", "SECONDS", 1, "vipd is one process").checkInt(0, 1<<32-1),
)
