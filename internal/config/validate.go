package config

import (
	"slices"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// finishChecker applies per-type checks when a checker block ends and
// reports whether the checker is kept.
func (b *builder) finishChecker(c *cx, n *Node, ch *Checker) bool {
	switch ch.Type {
	case CheckHTTP, CheckSSL:
		if len(ch.HTTP.URLs) == 0 {
			c.errf(n, "add a url { path / } block", "HTTP/SSL_GET checker has no urls specified - ignoring")
			return false
		}
	case CheckMisc:
		if ch.Misc.Path == nil {
			c.errf(n, "add misc_path /path/to/script", "no script path has been specified for MISC_CHECK - skipping")
			return false
		}
		if c.miscUser != "" {
			ch.Misc.Path.User, ch.Misc.Path.Group = c.miscUser, c.miscGroup
		}
	case CheckFile:
		if ch.File.TrackFile == "" {
			c.errf(n, "add track_file NAME", "FILE_CHECK has no track_file specified - ignoring")
			return false
		}
		found := false
		for _, tf := range b.cfg.TrackFiles {
			if tf.Name == ch.File.TrackFile {
				found = true
				if !ch.File.WeightSet {
					ch.File.Weight = tf.Weight
				}
			}
		}
		if !found {
			c.errf(n, "define track_file "+ch.File.TrackFile+" { file ... } before using it", "track_file %s not found", ch.File.TrackFile)
			return false
		}
	case CheckBFD:
		if c.bfdName == "" {
			c.errf(n, "add name BFD_INSTANCE", "no name has been specified for BFD_CHECK - skipping")
		} else if !b.bfdInstances[c.bfdName] {
			b.add(c.bfdNamePos, Error, "name", "define bfd_instance "+c.bfdName+" { ... }", "BFD_CHECK - BFD %s not configured", c.bfdName)
		} else {
			ch.BFD = c.bfdName
			return true
		}
		return false
	}
	return true
}

// finish resolves inheritance and defaults that depend on the whole file.
func (b *builder) finish() {
	g := &b.cfg.Global
	for _, in := range b.cfg.Instances {
		// keepalived: state MASTER without a priority makes the
		// instance the address owner.
		if in.State == StateMaster && !in.prioritySet {
			in.Priority = 255
		}
		s := b.instGARP[in]
		if s == nil {
			s = &garpSet{}
		}
		inheritUnset(s.masterDelay, &in.GARP.MasterDelay, g.GARP.MasterDelay)
		inheritUnset(s.masterRepeat, &in.GARP.MasterRepeat, g.GARP.MasterRepeat)
		if !s.lowerDelay {
			if s.masterDelay && !b.globalSet[globalLowerDelaySet] {
				in.GARP.LowerPrioDelay = in.GARP.MasterDelay
			} else {
				in.GARP.LowerPrioDelay = g.GARP.LowerPrioDelay
			}
		}
		if !s.lowerRepeat {
			if s.masterRepeat && !b.globalSet[globalLowerRepeatSet] {
				in.GARP.LowerPrioRepeat = in.GARP.MasterRepeat
			} else {
				in.GARP.LowerPrioRepeat = g.GARP.LowerPrioRepeat
			}
		}
		inheritUnset(s.refresh, &in.GARP.MasterRefresh, g.GARP.MasterRefresh)
		inheritUnset(s.refreshRepeat, &in.GARP.MasterRefreshRepeat, g.GARP.MasterRefreshRepeat)
		in.GARP.Interval, in.GARP.NAInterval = g.GARP.Interval, g.GARP.NAInterval
		if !s.extraIf {
			in.GARPExtraIf, in.GARPExtraIfAll = g.GARPExtraIf, g.GARPExtraIfAll
		}
		inheritUnset(s.version, &in.Version, g.VRRPVersion)
		inheritUnset(in.v3set, &in.V3ChecksumAsV2, g.V3ChecksumAsV2)
		inheritUnset(s.downTimer, &in.DownTimerAdverts, g.DownTimerAdverts)
		inheritUnset(s.lowerNoAdvert, &in.LowerPrioNoAdvert, g.LowerPrioNoAdvert)
		inheritUnset(s.higherSend, &in.HigherPrioSendAdvert, g.HigherPrioSendAdvert)
		inheritUnset(s.skipCheck, &in.SkipCheckAdvAddr, g.SkipCheckAdvAddr)
		inheritUnset(s.strict, &in.Strict, g.Strict)
		if !s.accept && in.Strict {
			in.Accept = in.Priority == 255
		}
		if !in.CheckUnicastSrc {
			in.CheckUnicastSrc = g.CheckUnicastSrc && len(in.UnicastPeers) > 0
		}
		if !in.smtpSet {
			switch {
			case g.SMTPAlertVRRP != nil:
				in.SMTPAlert = *g.SMTPAlertVRRP
			case g.SMTPAlert != nil:
				in.SMTPAlert = *g.SMTPAlert
			}
		}
		if s.unicastKeyword != nil && len(in.UnicastPeers) == 0 {
			b.add(s.unicastKeyword.Pos, Warning, s.unicastKeyword.Name, "add a unicast_peer block, or remove "+s.unicastKeyword.Name,
				"(%s) a unicast keyword has been specified without any unicast peers; defaulting to multicast (deprecated usage)", in.Name)
		}
		if in.Family() && in.Version == 2 {
			in.Version = 3
		}
		if in.vmacImplicit {
			b.add(in.Pos, Warning, "vmac_xmit_base", "add use_vmac", "(%s) vmac_xmit_base has no effect without use_vmac", in.Name)
			in.UseVMAC = nil
		}
		// use_vmac on an address: keepalived's rules. On the
		// instance's own interface and family with the instance's
		// VMAC it is redundant (reported; the address goes on the
		// VMAC anyway); elsewhere it asks for a VMAC per address,
		// which vipd does not make (as use_vmac_addr).
		for _, list := range [][]VIP{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if !v.UseVMAC {
					continue
				}
				if in.UseVMAC != nil && (v.Dev == "" || v.Dev == in.Interface) && v.Prefix.Addr().Is6() == in.Family() {
					b.add(v.Pos, Warning, "use_vmac", "remove use_vmac from the address: the instance's use_vmac puts it on the VMAC",
						"(%s) use_vmac specified for VIP/eVIP %s and vrrp instance", in.Name, v.Prefix)
					continue
				}
				sev := Notice
				if b.opts.Dataplane != "" {
					sev = Error
				}
				d := b.add(v.Pos, sev, "use_vmac", "per-address VMACs are not implemented: remove use_vmac from the address",
					"(%s) use_vmac on address %s: not supported by vipd; the daemon refuses this configuration", in.Name, v.Prefix)
				if sev == Error {
					d.Exit = ExitConfig
				}
			}
		}
	}
	for _, vs := range b.cfg.VirtualServers {
		b.finishVS(vs)
	}
}

func (b *builder) finishVS(vs *VirtualServer) {
	g := &b.cfg.Global
	if vs.HASuspend && vs.Kind == VSFWMark {
		b.add(vs.Pos, Warning, "ha_suspend", "remove ha_suspend: a fwmark has no address to follow",
			"Virtual server FWM %d: cannot use ha_suspend with fwmarks - clearing ha_suspend", vs.FWMark)
		vs.HASuspend = false
	}
	cs := vs.cset
	if cs == nil {
		cs = newCheckSet()
	}
	d := CheckDefaults{DelayLoop: 60 * time.Second, ConnectTimeout: 5 * time.Second}
	applySet(&d, cs)
	if d.SMTPAlert == nil {
		if g.SMTPAlertChecker != nil {
			d.SMTPAlert = g.SMTPAlertChecker
		} else if g.SMTPAlert != nil {
			d.SMTPAlert = g.SMTPAlert
		}
	}
	vs.Check = d
	for _, rs := range vs.RealServers {
		if !rs.weightSet {
			rs.Weight = vs.defaultWeight
		}
		if !rs.methodSet {
			rs.Method = vs.Method
		}
		rd := d
		if rs.cset != nil {
			applySet(&rd, rs.cset)
		}
		rs.Check = rd
		if rs.Addr.Port() == 0 && vs.Kind == VSAddr {
			rs.Addr = addrPortWith(rs.Addr, vs.Addr.Port())
		}
		for i, ch := range rs.Checkers {
			cd := rd
			applySet(&cd, rs.checkSets[i])
			ch.ResolveTiming(cd)
			if !rs.portSet[i] {
				ch.ConnectPort = rs.Addr.Port()
			}
			if ch.HTTP != nil && ch.HTTP.Virtualhost == "" {
				ch.HTTP.Virtualhost = cd.Virtualhost
			}
			if ch.Misc != nil && ch.Misc.Timeout == 0 {
				ch.Misc.Timeout = ch.DelayLoop
			}
		}
	}
	if vs.SorryServer != nil && !vs.SorryServer.methodSet {
		vs.SorryServer.Method = vs.Method
	}
}

// ResolveTiming sets the checker's timing from what its levels wrote
// (cd: the checker's own settings over the real server's over the
// virtual server's) and keepalived's defaults for its type. It is the one
// place checker timing defaults live: `vipd -d` prints its result and the
// daemon runs exactly that (a real server's track_file entries, which
// run as FILE_CHECKs, get theirs here too).
func (ch *Checker) ResolveTiming(cd CheckDefaults) {
	ch.Alpha = cd.Alpha
	ch.DelayLoop = cd.DelayLoop
	ch.ConnectTimeout = cd.ConnectTimeout
	// keepalived's defaults by type.
	retry, beforeRetry := 1, time.Second
	switch ch.Type {
	case CheckHTTP, CheckSSL:
		beforeRetry = 3 * time.Second
	case CheckDNS:
		retry, beforeRetry = 3, ch.DelayLoop
	case CheckMisc:
		retry = 0
	}
	ch.Retry = orDefault(cd.Retry, retry)
	ch.DelayBeforeRetry = orDefault(cd.DelayBeforeRetry, beforeRetry)
	ch.Warmup = orDefault(cd.Warmup, ch.DelayLoop)
	if ch.Type == CheckFile {
		// A track file is read, not probed: no transient failures to
		// retry, and it starts from its content at once.
		ch.Retry, ch.Warmup = 0, 0
	}
}

// orDefault is *p, or def when p is nil (not written at any level).
func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func applySet(d *CheckDefaults, s *checkSet) {
	if s.DelayLoop != unsetDur {
		d.DelayLoop = s.DelayLoop
	}
	if s.ConnectTimeout != unsetDur {
		d.ConnectTimeout = s.ConnectTimeout
	}
	if s.Retry != unsetInt {
		v := s.Retry
		d.Retry = &v
	}
	if s.DelayBeforeRetry != unsetDur {
		v := s.DelayBeforeRetry
		d.DelayBeforeRetry = &v
	}
	if s.Warmup != unsetDur {
		v := s.Warmup
		d.Warmup = &v
	}
	if s.Alpha != nil {
		d.Alpha = *s.Alpha
	}
	if s.Inhibit != nil {
		d.InhibitOnFailure = *s.Inhibit
	}
	if s.Virtualhost != nil {
		d.Virtualhost = *s.Virtualhost
	}
	if s.SMTPAlert != nil {
		d.SMTPAlert = s.SMTPAlert
	}
}

// validate makes the cross-checks keepalived makes once the whole file is
// read: references, required settings, families, duplicates, and the
// data-plane fit.
func (b *builder) validate() {
	cfg := b.cfg
	scripts := map[string]*VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	files := map[string]*TrackFile{}
	for _, f := range cfg.TrackFiles {
		files[f.Name] = f
	}
	procs := map[string]*TrackProcess{}
	for _, p := range cfg.TrackProcesses {
		procs[p.Name] = p
	}
	insts := map[string]*Instance{}

	var kept []*Instance
	for _, in := range cfg.Instances {
		if in.VRID == 0 {
			b.add(in.Pos, Error, "virtual_router_id", "add virtual_router_id 1..255 to the instance", "(%s) the virtual router id must be set", in.Name)
			continue
		}
		if in.Interface == "" { // keepalived 2.2.7 requires it, unicast or not

			b.add(in.Pos, Error, "interface", "add interface IFNAME", "(%s) unknown interface!", in.Name)
			continue
		}
		if len(in.VIPs) == 0 && !in.NoVIPs {
			b.add(in.Pos, Warning, "virtual_ipaddress", "add a virtual_ipaddress block", "(%s) no VIP specified; at least one is sensible", in.Name)
		}
		b.checkVIPFamily(in)
		// keepalived 2.2 makes this check only when priority is
		// configured explicitly.
		if in.Auth != nil && in.Auth.Type == AuthAH && in.State == StateMaster && in.prioritySet && in.Priority != 255 {
			b.add(in.statePos, Warning, "state", "use auth_type PASS, or state BACKUP", "(%s) initial state master is incompatible with AH authentication - clearing", in.Name)
			in.State = StateBackup
		}
		if in.Auth != nil && in.Auth.Type == AuthNone {
			// keepalived 2.2.7 -t accepts this and uses no authentication
			b.add(in.Pos, Notice, "authentication", "add auth_type PASS", "(%s) authentication block without auth_type; no authentication is used", in.Name)
			in.Auth = nil
		}
		if in.Auth != nil && in.Auth.Pass == "" {
			b.add(in.Pos, Warning, "auth_pass", "add auth_pass PASSWORD", "(%s) authentication specified but no password given - ignoring", in.Name)
			in.Auth = nil
		}
		if in.Auth != nil && in.Version == 3 {
			b.add(in.Pos, Warning, "authentication", "remove the authentication block; VRRPv3 has none", "(%s) cannot use authentication with VRRPv3 - ignoring", in.Name)
			in.Auth = nil
		}
		if a := in.AuthHMAC; a != nil {
			// keepalived 2.4's checks, in its order.
			if in.Auth != nil {
				b.add(in.authHMACPos, Error, "auth_hmac", "remove the authentication block", "(%s) auth_hmac cannot be combined with authentication, dropping legacy auth", in.Name)
				in.Auth = nil
			}
			if !slices.ContainsFunc(a.Keys, func(k HMACKey) bool { return k.ID == a.ActiveKey }) {
				b.add(in.authHMACPos, Error, "auth_hmac", "set active_key to the id of a key", "(%s) auth_hmac active_key %d is not defined, disabling extension", in.Name, a.ActiveKey)
				in.AuthHMAC = nil
			} else if in.Strict && a.Mode != "" && a.Mode != "enforce" {
				b.add(in.authHMACPos, Error, "auth_hmac", "use mode enforce with vrrp_strict", "(%s) strict mode requires auth_hmac mode enforce", in.Name)
				a.Mode = "enforce"
			}
		}
		if in.Strict {
			b.checkStrict(in)
		}
		in.Track.Scripts = b.checkRefs(in.Name, "track script", in.Track.Scripts, func(n string) bool { return scripts[n] != nil })
		in.Track.Files = b.checkRefs(in.Name, "track file", in.Track.Files, func(n string) bool { return files[n] != nil })
		in.Track.Processes = b.checkRefs(in.Name, "track process", in.Track.Processes, func(n string) bool { return procs[n] != nil })
		in.Track.BFDs = b.resolveTrackBFD(in.Name, in.Track.BFDs)
		if in.Priority == 255 {
			b.zeroOwnerWeights(in, scripts, files, procs)
		}
		insts[in.Name] = in
		kept = append(kept, in)
	}
	cfg.Instances = kept
	b.checkDuplicateVRIDs()

	var groups []*SyncGroup
	for _, sg := range cfg.SyncGroups {
		var members []string
		for _, name := range sg.Instances {
			in := insts[name]
			if in == nil {
				b.add(sg.Pos, Error, "group", "list vrrp_instance names defined in this file", "sync group %s: virtual router %s specified but not found", sg.Name, name)
				continue
			}
			if in.SyncGroup != "" {
				b.add(sg.Pos, Error, "group", "an instance can belong to one sync group only", "virtual router %s cannot exist in more than one sync group; ignoring %s", name, sg.Name)
				continue
			}
			in.SyncGroup = sg.Name
			members = append(members, name)
		}
		sg.Instances = members
		if len(members) == 0 {
			b.add(sg.Pos, Error, "vrrp_sync_group", "list its instances in a group { ... } block", "sync group %s has no virtual router(s) - removing", sg.Name)
			continue
		}
		if len(members) == 1 {
			b.add(sg.Pos, Warning, "vrrp_sync_group", "a sync group needs at least two instances to be useful", "sync group %s has only 1 virtual router(s) - this probably isn't what you want", sg.Name)
		}
		if !sg.SyncGroupTrackingWeight {
			for _, name := range members {
				b.zeroGroupWeights(insts[name], scripts, files, procs)
			}
		}
		sg.Track.Scripts = b.checkRefs(sg.Name, "track script", sg.Track.Scripts, func(n string) bool { return scripts[n] != nil })
		sg.Track.Files = b.checkRefs(sg.Name, "track file", sg.Track.Files, func(n string) bool { return files[n] != nil })
		sg.Track.Processes = b.checkRefs(sg.Name, "track process", sg.Track.Processes, func(n string) bool { return procs[n] != nil })
		sg.Track.BFDs = b.resolveTrackBFD(sg.Name, sg.Track.BFDs)
		groups = append(groups, sg)
	}
	cfg.SyncGroups = groups

	b.validateLVS()
	b.validateBGP()
	if b.opts.Host != nil {
		b.checkHost()
	}
}

// zeroGroupWeights applies keepalived's rule that the tracking of an
// instance in a sync group is unweighted (unless
// sync_group_tracking_weight): a weighted track script, file or process
// is reported and its weight set to 0.
func (b *builder) zeroGroupWeights(in *Instance, scripts map[string]*VRRPScript, files map[string]*TrackFile, procs map[string]*TrackProcess) {
	zeroTrackWeights(in, false, scripts, files, procs, func(r *TrackRef, what string) {
		b.add(r.Pos, Warning, r.Name, "set weight 0, or add sync_group_tracking_weight to the vrrp_sync_group",
			"(%s) ignoring tracked %s %s with weights due to SYNC group", in.Name, what, r.Name)
	})
}

// zeroOwnerWeights applies keepalived's rule that the address owner
// (priority 255) cannot have its priority changed by tracking: weighted
// tracked objects are reported and their weight set to 0.
func (b *builder) zeroOwnerWeights(in *Instance, scripts map[string]*VRRPScript, files map[string]*TrackFile, procs map[string]*TrackProcess) {
	zeroTrackWeights(in, true, scripts, files, procs, func(r *TrackRef, what string) {
		b.add(r.Pos, Warning, r.Name, "set weight 0, or a priority below 255",
			"(%s) ignoring %s tracked %s due to address owner", in.Name, r.Name, what)
	})
}

// zeroTrackWeights sets to 0 the weight of each tracked script, file and
// process (and interface, with ifaces) of in that has one (its own or its
// definition's), after report says why; what names the kind.
func zeroTrackWeights(in *Instance, ifaces bool, scripts map[string]*VRRPScript, files map[string]*TrackFile, procs map[string]*TrackProcess, report func(r *TrackRef, what string)) {
	zero := func(refs []TrackRef, what string, weightOf func(string) int) {
		for i := range refs {
			r := &refs[i]
			w := r.Weight
			if !r.WeightSet {
				w = weightOf(r.Name)
			}
			if w != 0 {
				report(r, what)
				r.Weight, r.WeightSet = 0, true
			}
		}
	}
	if ifaces {
		zero(in.Track.Interfaces, "interface", func(string) int { return 0 })
	}
	zero(in.Track.Scripts, "script", func(n string) int { return scripts[n].Weight })
	zero(in.Track.Files, "file", func(n string) int { return files[n].Weight })
	zero(in.Track.Processes, "process", func(n string) int { return procs[n].Weight })
}

func (b *builder) checkRefs(owner, what string, refs []TrackRef, ok func(string) bool) []TrackRef {
	var out []TrackRef
	for _, r := range refs {
		if !ok(r.Name) {
			b.add(r.Pos, Error, r.Name, "define it first, or fix the name", "(%s) %s %s not found, ignoring...", owner, what, r.Name)
			continue
		}
		out = append(out, r)
	}
	return out
}

func (b *builder) checkVIPFamily(in *Instance) {
	if len(in.VIPs) == 0 {
		return
	}
	v6 := in.VIPs[0].Prefix.Addr().Is6()
	var keep []VIP
	for _, v := range in.VIPs {
		if v.Prefix.Addr().Is6() != v6 {
			b.add(v.Pos, Error, "virtual_ipaddress", "put addresses of the other family in virtual_ipaddress_excluded",
				"(%s): address family must match VRRP instance [%s] - ignoring", in.Name, v.Prefix.Addr())
			continue
		}
		keep = append(keep, v)
	}
	in.VIPs = keep
}

func (b *builder) checkStrict(in *Instance) {
	bad := func(kw, hint, format string, args ...any) {
		b.add(in.Pos, Warning, kw, hint, "(%s) strict mode: "+format, append([]any{in.Name}, args...)...)
	}
	if len(in.VIPs) == 0 {
		bad("virtual_ipaddress", "add a VIP or drop vrrp_strict", "no VIPs")
	}
	if len(in.UnicastPeers) > 0 {
		bad("unicast_peer", "drop vrrp_strict to use unicast", "unicast peers not allowed")
	}
	if in.Auth != nil {
		bad("authentication", "remove the authentication block or drop vrrp_strict", "authentication is not supported - ignoring")
		in.Auth = nil
	}
	if in.PreemptDelay > 0 {
		bad("preempt_delay", "remove preempt_delay or drop vrrp_strict", "preempt_delay is not supported - ignoring")
		in.PreemptDelay = 0
	}
	if in.State == StateMaster && in.Priority != 255 {
		bad("state", "use state BACKUP, or priority 255", "state MASTER must match being address owner (priority 255) - starting as BACKUP")
		in.State = StateBackup
	}
}

func (b *builder) checkDuplicateVRIDs() {
	type key struct {
		iface string
		vrid  int
		v6    bool
	}
	seen := map[key]*Instance{}
	for _, in := range b.cfg.Instances {
		if in.Interface == "" || len(in.UnicastPeers) > 0 || in.McastDstIP.IsValid() {
			continue
		}
		k := key{in.Interface, in.VRID, in.Family()}
		if o := seen[k]; o != nil {
			fam := "IPv4"
			if k.v6 {
				fam = "IPv6"
			}
			b.add(in.Pos, Error, "virtual_router_id", "give each instance on an interface its own virtual_router_id",
				"%s and %s both use VRID %d with %s on interface %s", o.Name, in.Name, in.VRID, fam, in.Interface)
			continue
		}
		seen[k] = in
	}
}

func (b *builder) validateLVS() {
	groups := map[string]*VSGroup{}
	for _, g := range b.cfg.VSGroups {
		groups[g.Name] = g
	}
	var kept []*VirtualServer
	for _, vs := range b.cfg.VirtualServers {
		name := vs.String()
		if vs.Kind == VSGroupK && groups[vs.Group] == nil {
			// keepalived 2.2 -t accepts this; the service never runs
			b.add(vs.Pos, Notice, "virtual_server", "define virtual_server_group "+vs.Group+" { ... }", "virtual server group %s not found; the virtual server will not run", vs.Group)
			continue
		}
		if vs.family != "" {
			if vs.Kind != VSFWMark {
				b.add(vs.Pos, Warning, "ip_family", "ip_family only applies to fwmark virtual servers", "virtual server %s: ip_family ignored", name)
			} else {
				vs.IPv6 = vs.family == "inet6"
			}
		}
		if vs.Kind == VSFWMark && vs.protoSet {
			b.add(vs.Pos, Warning, "protocol", "remove protocol from fwmark virtual servers", "virtual server %s: protocol specified for fwmark - protocol will be ignored", name)
		}
		if !vs.protoSet && vs.Kind != VSFWMark {
			b.add(vs.Pos, Warning, "protocol", "add protocol TCP (or UDP, SCTP)", "virtual server %s: no protocol set - defaulting to UDP", name)
			vs.Protocol = lvs.UDP
		}
		if vs.Scheduler != "" && !schedulers[vs.Scheduler] {
			b.add(vs.schedPos, Error, "lvs_sched", "use rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh or twos", "invalid lvs_scheduler '%s' - ignoring", vs.Scheduler)
			vs.Scheduler = ""
		}
		if vs.Scheduler == "" {
			b.add(vs.Pos, Warning, "lvs_sched", "add lvs_sched (e.g. rr or wlc)", "virtual server %s: no scheduler set, setting default 'wlc'", vs.String())
			vs.Scheduler = "wlc"
		}
		b.checkSchedFlags(vs)
		if !vs.methodSet {
			b.add(vs.Pos, Warning, "lvs_method", "add lvs_method NAT (or DR, TUN)", "virtual server %s: no forwarding method set, setting default NAT", vs.String())
		}
		if vs.Kind == VSAddr && vs.Addr.Port() == 0 && vs.PersistenceTimeout == 0 {
			b.add(vs.Pos, Warning, "virtual_server", "give the port, or make the service persistent", "virtual server %s: zero port only valid for persistent services - setting persistence", vs.String())
			vs.PersistenceTimeout = 360 * time.Second
		}
		if len(vs.RealServers) == 0 {
			b.add(vs.Pos, Warning, "real_server", "add real_server blocks", "virtual server %s has no real servers - ignoring", vs)
			continue
		}
		b.checkQuorum(vs)
		b.checkDataplane(vs)
		kept = append(kept, vs)
	}
	b.cfg.VirtualServers = kept
	b.checkSyncDaemon()
}

// checkSyncDaemon notes that lvs_sync_daemon does nothing on the proxy
// data plane (its connections live in the proxy, not in the kernel).
func (b *builder) checkSyncDaemon() {
	if sd := b.cfg.Global.LVSSyncDaemon; sd != nil && b.opts.Dataplane == DataplaneProxy {
		b.add(b.cfg.Global.Pos, Notice, "lvs_sync_daemon", "use the ipvs data plane to sync connections between directors", "lvs_sync_daemon is ignored on the proxy data plane")
	}
}

// checkDataplane refuses what the selected data plane cannot run and
// the data plane itself does not judge: proxy_protocol under ipvs, which
// would run the service without it. What a data plane refuses by itself
// (the proxy: fwmark, DR, TUN; xdp: NAT, proxy_protocol, any scheduler
// but mh) its own Check judges, which the daemon and vipd -t run on every
// virtual server (daemon.CheckServices).
func (b *builder) checkDataplane(vs *VirtualServer) {
	if vs.ProxyProtocol != 0 && b.opts.Dataplane == DataplaneIPVS {
		b.add(vs.Pos, Error, "proxy_protocol", "use the proxy data plane, or remove proxy_protocol", "proxy_protocol needs the proxy data plane").Exit = ExitConfig
	}
}

// checkSchedFlags warns about scheduler flags that do not apply to the
// virtual server's scheduler, as keepalived does.
func (b *builder) checkSchedFlags(vs *VirtualServer) {
	type fl struct {
		name  string
		f     lvs.SchedFlags
		sched string
	}
	for _, x := range []fl{{"sh-port", lvs.FlagSHPort, "sh"}, {"sh-fallback", lvs.FlagSHFallback, "sh"}, {"hashed", lvs.FlagHashed, "sh"}} {
		if vs.Flags&x.f != 0 && vs.Scheduler != "sh" && vs.Scheduler != "mh" {
			b.add(vs.Pos, Warning, x.name, "remove it, or use lvs_sched "+x.sched, "%s only applies to the sh scheduler - ignoring", x.name)
			vs.Flags &^= x.f
		}
	}
}

// checkQuorum lowers a quorum the real servers cannot reach, as keepalived
// does (with a warning), and keeps the hysteresis below the quorum.
func (b *builder) checkQuorum(vs *VirtualServer) {
	if len(vs.RealServers) == 0 {
		return
	}
	total := 0
	for _, rs := range vs.RealServers {
		total += rs.Weight
	}
	if vs.Quorum > total {
		b.add(vs.Pos, Warning, "quorum", "lower quorum, or raise the real servers' weights",
			"quorum %d for %s exceeds total weight of real servers %d, reducing quorum to %d", vs.Quorum, vs, total, total)
		vs.Quorum = total
	}
	if vs.Hysteresis >= vs.Quorum {
		b.add(vs.Pos, Warning, "hysteresis", "keep hysteresis below quorum",
			"virtual server %s: hysteresis %d >= quorum %d; setting hysteresis to %d", vs, vs.Hysteresis, vs.Quorum, 0)
		vs.Hysteresis = 0
	}
}

// inheritUnset gives an instance's setting the global default unless the
// instance's own block set it.
func inheritUnset[T any](set bool, dst *T, global T) {
	if !set {
		*dst = global
	}
}
