package config

import (
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Host answers the questions about the running system that keepalived
// asks while loading a configuration.
type Host interface {
	// InterfaceExists reports whether a network interface exists.
	InterfaceExists(name string) bool
	// LookupUser returns the uid of a user, ok=false if there is none.
	LookupUser(name string) (uid int, ok bool)
	// LookPath resolves a command as exec.LookPath does.
	LookPath(file string) (string, error)
	// Stat returns file information (following links).
	Stat(path string) (fs.FileInfo, error)
	// Euid is the effective uid vipd runs with.
	Euid() int
}

// OSHost is the Host of the running system (in the current network
// namespace).
type OSHost struct{}

// InterfaceExists implements Host.
func (OSHost) InterfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// LookupUser implements Host.
func (OSHost) LookupUser(name string) (int, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	uid, err := strconv.Atoi(u.Uid)
	return uid, err == nil
}

// LookPath implements Host.
func (OSHost) LookPath(file string) (string, error) { return exec.LookPath(file) }

// Stat implements Host.
func (OSHost) Stat(path string) (fs.FileInfo, error) { return os.Stat(path) }

// Lstat returns file information without following a final link (the
// optional lstater a Host may implement).
func (OSHost) Lstat(path string) (fs.FileInfo, error) { return os.Lstat(path) }

// lstater is a Host that can look at links themselves.
type lstater interface {
	Lstat(path string) (fs.FileInfo, error)
}

// Euid implements Host.
func (OSHost) Euid() int { return os.Geteuid() }

// checkHost makes keepalived's load-time checks against the system:
// interfaces must exist (unless dynamic_interfaces), and scripts that
// would run as root need enable_script_security.
func (b *builder) checkHost() {
	h := b.opts.Host
	cfg := b.cfg
	g := &cfg.Global
	missing := false
	ifCheck := func(pos Pos, kw, name, what string) {
		if name == "" || g.DynamicInterfaces || h.InterfaceExists(name) {
			return
		}
		missing = true
		b.add(pos, Error, kw, "create the interface, fix the name, or set global_defs dynamic_interfaces",
			"interface %s for %s doesn't exist", name, what)
	}
	for _, in := range cfg.Instances {
		pos := in.ifacePos
		if pos.Line == 0 {
			pos = in.Pos
		}
		ifCheck(pos, "interface", in.Interface, "vrrp_instance "+in.Name)
		for _, t := range in.Track.Interfaces {
			ifCheck(t.Pos, "track_interface", t.Name, "track_interface of "+in.Name)
		}
		for _, v := range append(append([]VIP(nil), in.VIPs...), in.ExcludedVIPs...) {
			ifCheck(v.Pos, "virtual_ipaddress", v.Dev, "VIP "+v.Prefix.String())
		}
		for _, r := range in.Routes {
			b.checkRoute(r, ifCheck)
		}
	}
	for _, sg := range cfg.SyncGroups {
		for _, t := range sg.Track.Interfaces {
			ifCheck(t.Pos, "track_interface", t.Name, "track_interface of sync group "+sg.Name)
		}
	}
	for _, v := range cfg.StaticAddresses {
		dev := v.Dev
		if dev == "" {
			dev = g.DefaultInterface
		}
		ifCheck(v.Pos, "static_ipaddress", dev, "static address "+v.Prefix.String())
	}
	for _, r := range cfg.StaticRoutes {
		b.checkRoute(r, ifCheck)
	}
	if missing {
		// keepalived stops here: a configuration with a missing
		// interface cannot run, so its scripts are not examined.
		b.add(Pos{}, Error, "", "", "non-existent interface specified in configuration")
		return
	}
	b.checkScripts()
}

func (b *builder) checkRoute(r Route, ifCheck func(pos Pos, kw, name, what string)) {
	ifCheck(r.Pos, "dev", r.Dev, "route "+r.Dst.String())
	for _, nh := range r.Nexthops {
		ifCheck(r.Pos, "nexthop", nh.Dev, "route nexthop")
	}
	if b.v24() {
		return // keepalived 2.4 no longer warns about untrackable routes
	}
	if r.Dev == "" && !r.NoTrack && len(r.Nexthops) == 0 && r.Type == "" {
		b.add(r.Pos, Warning, "virtual_routes", "add dev IFNAME or no_track", "cannot track route %s with no interface specified, not tracking", r.Dst)
	} else if r.Dev == "" && !r.NoTrack && len(r.Nexthops) > 0 {
		devless := false
		for _, nh := range r.Nexthops {
			devless = devless || nh.Dev == ""
		}
		if devless {
			b.add(r.Pos, Warning, "virtual_routes", "add dev IFNAME or no_track", "cannot track route %s with no interface specified, not tracking", r.Dst)
		}
	}
}

// allScripts lists every script of the configuration.
func (b *builder) allScripts() (scripts []*Script, trackScripts map[*Script]string) {
	cfg := b.cfg
	trackScripts = map[*Script]string{}
	var out []*Script
	add := func(s ...*Script) {
		for _, x := range s {
			if x != nil {
				out = append(out, x)
			}
		}
	}
	notify := func(n *Notify) {
		add(n.Master, n.Backup, n.Fault, n.Stop, n.Any, n.MasterRxLowerPri, n.DeletedScript)
	}
	g := &cfg.Global
	add(g.StartupScript, g.ShutdownScript)
	for _, f := range []*FIFO{g.NotifyFIFO, g.VRRPNotifyFIFO, g.LVSNotifyFIFO} {
		if f != nil {
			add(f.Script)
		}
	}
	for _, s := range cfg.Scripts {
		add(s.Script) // keepalived checks every vrrp_script, tracked or not
		trackScripts[s.Script] = s.Name
	}
	for _, sg := range cfg.SyncGroups {
		notify(&sg.Notify)
	}
	for _, in := range cfg.Instances {
		notify(&in.Notify)
	}
	for _, vs := range cfg.VirtualServers {
		add(vs.QuorumUp, vs.QuorumDown)
		for _, rs := range vs.RealServers {
			add(rs.NotifyUp, rs.NotifyDown)
			for _, ch := range rs.Checkers {
				if ch.Misc != nil {
					add(ch.Misc.Path)
				}
			}
		}
	}
	return out, trackScripts
}

// checkScripts follows keepalived: a script that does not exist, or names
// a user that does not exist, is dropped silently; one that would run as
// root without enable_script_security is a security violation.
func (b *builder) checkScripts() {
	h := b.opts.Host
	g := &b.cfg.Global
	defUID, defOK := -1, false
	if g.ScriptUser != "" {
		if uid, ok := h.LookupUser(g.ScriptUser); ok {
			defUID, defOK = uid, true
		} else {
			b.add(b.scriptUserPos, Error, "script_user", "create the user or fix the name", "error setting global script uid/gid: user %s does not exist", g.ScriptUser)
		}
	} else if uid, ok := h.LookupUser("keepalived_script"); ok {
		defUID, defOK = uid, true
	}
	violation, noDefault := false, false
	var firstRoot Pos
	all, trackScripts := b.allScripts()
	for _, s := range all {
		if len(s.Argv) == 0 {
			continue
		}
		notFound := func() {
			if name, ok := trackScripts[s]; ok {
				b.add(s.Pos, Warning, "script", "install the script or fix its path", "disabling track script %s since %s is not found/accessible", name, s.Argv[0])
			} else {
				b.add(s.Pos, Notice, "", "keepalived drops a script that does not exist, silently", "script %s not found; it will not run", s.Argv[0])
			}
		}
		path := s.Argv[0]
		if !filepath.IsAbs(path) {
			p, err := h.LookPath(path)
			if err != nil {
				notFound()
				continue
			}
			path = p
		}
		if _, err := h.Stat(path); err != nil {
			notFound()
			continue
		}
		uid := defUID
		if s.User != "" {
			u, ok := h.LookupUser(s.User)
			if !ok {
				b.add(s.Pos, Notice, "", "keepalived drops a script whose user does not exist, silently", "user %s of script %s does not exist; it will not run", s.User, s.Argv[0])
				continue
			}
			uid = u
		} else if !defOK {
			uid = h.Euid()
			if g.EnableScriptSecurity {
				noDefault = true
			}
		}
		if uid == 0 && !g.EnableScriptSecurity {
			if !violation {
				firstRoot = s.Pos
			}
			violation = true
		}
		if uid == 0 && g.EnableScriptSecurity {
			if b.v24() && b.linkInScriptPath(s, trackScripts) {
				continue
			}
			b.checkScriptPath(s, path)
		}
	}
	if noDefault {
		b.add(b.cfg.Global.Pos, Warning, "script_user", "set global_defs script_user, or create the user keepalived_script", "unable to set default user keepalived_script for script")
	}
	if violation {
		b.add(firstRoot, Security, "enable_script_security", "add enable_script_security to global_defs (and make the scripts writable by root only), or run them as another user with script_user",
			"SECURITY VIOLATION - scripts are being executed but script_security not enabled")
	}
}

// linkInScriptPath is keepalived 2.4.3's check of a root script's path
// as written: every component but the last must be a directory, not a
// link to one (on a merged-/usr system /bin/true is refused, /usr/bin/true
// accepted; 2.2.7 checks the resolved path only).
func (b *builder) linkInScriptPath(s *Script, trackScripts map[*Script]string) bool {
	ls, ok := b.opts.Host.(lstater)
	if !ok || !filepath.IsAbs(s.Argv[0]) {
		return false
	}
	for p := filepath.Dir(filepath.Clean(s.Argv[0])); p != "/" && p != "."; p = filepath.Dir(p) {
		st, err := ls.Lstat(p)
		if err == nil && !st.IsDir() {
			if name, ok := trackScripts[s]; ok {
				b.add(s.Pos, Warning, "script", "write the script's real path ("+p+" is a link), as keepalived 2.4 runs only scripts whose directories are no links", "Disabling track script %s due to insecure", name)
			} else {
				// keepalived 2.4.3 -t drops it without failing the check.
				b.add(s.Pos, Notice, "", "write the script's real path ("+p+" is a link): keepalived 2.4 drops the script silently", "Wrong file type found in script path '%s' - disabling", s.Argv[0])
			}
			return true
		}
	}
	return false
}

// checkScriptPath refuses a root script that a non-root user could
// replace: the file or a directory on its path is writable by group or
// others (sticky directories excepted) or owned by another user.
func (b *builder) checkScriptPath(s *Script, path string) {
	h := b.opts.Host
	for p := path; ; p = filepath.Dir(p) {
		st, err := h.Stat(p)
		if err != nil {
			return
		}
		insecure := st.Mode().Perm()&0o022 != 0 && !(st.IsDir() && st.Mode()&fs.ModeSticky != 0)
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
			insecure = true
		}
		if insecure {
			b.add(s.Pos, Warning, "", "make "+p+" writable by root only", "unsafe permissions found for script '%s' - disabling", s.Argv[0])
			return
		}
		if p == "/" || p == "." {
			return
		}
	}
}

func addrPortWith(ap netip.AddrPort, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr(), port)
}
