package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proctrack"
	"github.com/vipd/vipd/internal/vrrp"
)

// scriptPolicy decides whether a script may run and as whom: keepalived's
// script security rules (enable_script_security, script_user), shared
// with notify scripts.
type scriptPolicy func(*config.Script) (*syscall.Credential, error)

// vrrpConfig maps the VRRP part of the configuration model onto the vrrp
// package's own configuration. Scripts the policy refuses are left out,
// with the instances' references to them, as keepalived disables them.
func vrrpConfig(c *config.Config, policy scriptPolicy, log *slog.Logger) vrrp.Config {
	g := c.Global
	out := vrrp.Config{
		McastGroup4:  g.VRRPMcastGroup4,
		McastGroup6:  g.VRRPMcastGroup6,
		GARPInterval: g.GARP.Interval,
		GNAInterval:  g.GARP.NAInterval,
		// Used when VRRP first starts only (not on reloads).
		StartupDelay:   g.StartupDelay,
		DelayAfterBoot: g.DelayAfterBoot,

		FIFOStatesOnReload: g.FIFOWriteVRRPStatesOnReload,
		// vrrp_rt_priority: the whole process real-time, as keepalived
		// makes its VRRP process; without it the VRRP thread alone.
		RTPriority:      g.VRRPRTPriority,
		ProcessRealtime: g.VRRPRTPriority > 0,
	}
	for _, ld := range c.InterfaceDelays {
		if out.LinkDelays == nil {
			out.LinkDelays = map[string]vrrp.LinkDelay{}
		}
		out.LinkDelays[ld.Interface] = vrrp.LinkDelay{Down: ld.Down, Up: ld.Up}
	}
	refused := map[string]bool{}
	for _, s := range c.Scripts {
		var cred *syscall.Credential
		if policy != nil {
			var err error
			if cred, err = policy(s.Script); err != nil {
				log.Error(fmt.Sprintf("%s: vrrp_script %s disabled: %v", s.Pos, s.Name, err))
				refused[s.Name] = true
				continue
			}
		}
		out.Scripts = append(out.Scripts, vrrp.ScriptConfig{
			Credential: cred,
			Name:       s.Name,
			Script:     commandLine(s.Script),
			Interval:   s.Interval,
			Timeout:    s.Timeout,
			Weight:     s.Weight,
			Reverse:    s.Reverse,
			Rise:       s.Rise,
			Fall:       s.Fall,
			InitFail:   s.InitFail,
		})
	}
	for _, f := range c.TrackFiles {
		w := f.Weight
		out.TrackFiles = append(out.TrackFiles, vrrp.TrackFileConfig{Name: f.Name, Path: f.File, Weight: &w, Reverse: f.Reverse})
	}
	for _, tp := range c.TrackProcesses {
		out.TrackProcesses = append(out.TrackProcesses, processConfig(tp))
	}
	for _, sg := range c.SyncGroups {
		out.Groups = append(out.Groups, vrrp.GroupConfig{
			Name:            sg.Name,
			Instances:       append([]string(nil), sg.Instances...),
			TrackInterfaces: trackRefs(sg.Track.Interfaces),
			TrackScripts:    trackRefs(without(sg.Track.Scripts, refused)),
			TrackFiles:      trackRefs(sg.Track.Files),
			TrackBFDs:       bfdTrackRefs(sg.Track.BFDs),
			TrackProcesses:  trackRefs(sg.Track.Processes),
		})
	}
	vmacNames := map[string]bool{}
	for _, in := range c.Instances {
		if in.UseVMAC != nil && in.UseVMAC.Interface != "" {
			vmacNames[in.UseVMAC.Interface] = true
		}
	}
	for _, in := range c.Instances {
		ic := vrrp.InstanceConfig{
			Name:                 in.Name,
			Interface:            in.Interface,
			VRID:                 in.VRID,
			Version:              in.Version,
			Priority:             in.Priority,
			State:                string(in.State),
			AdvertInt:            in.AdvertInt,
			NoPreempt:            !in.Preempt,
			PreemptDelay:         in.PreemptDelay,
			VIPs:                 vips(in.VIPs, in.Interface),
			ExcludedVIPs:         vips(in.ExcludedVIPs, in.Interface),
			UnicastTTL:           in.UnicastTTL,
			CheckUnicastSrc:      in.CheckUnicastSrc || g.CheckUnicastSrc,
			DontTrackPrimary:     in.DontTrackPrimary,
			TrackInterfaces:      trackRefs(in.Track.Interfaces),
			TrackScripts:         trackRefs(without(in.Track.Scripts, refused)),
			TrackFiles:           trackRefs(in.Track.Files),
			TrackBFDs:            bfdTrackRefs(in.Track.BFDs),
			TrackProcesses:       trackRefs(in.Track.Processes),
			DownTimerAdverts:     in.DownTimerAdverts,
			LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
			HigherPrioSendAdvert: in.HigherPrioSendAdvert,
			SkipCheckAdvAddr:     in.SkipCheckAdvAddr || g.SkipCheckAdvAddr,
			Strict:               in.Strict || g.Strict,
		}
		if vm := in.UseVMAC; vm != nil {
			ic.VMAC = &vrrp.VMACConfig{Name: vm.Interface, MAC: vmacMAC(vm.MAC, in.VRID), XmitBase: vm.XmitBase}
			if ic.VMAC.Name == "" {
				ic.VMAC.Name = vmacName(g.VMACPrefix, in.VRID, in.Family(), vmacNames)
				vmacNames[ic.VMAC.Name] = true
			}
			// keepalived: addresses of the instance's family with no
			// dev, or dev the instance's interface, go on the VMAC.
			onVMAC := func(vs []vrrp.VIP) {
				for i := range vs {
					if vs[i].Dev == in.Interface && vs[i].Prefix.Addr().Is6() == in.Family() {
						vs[i].Dev = ic.VMAC.Name
					}
				}
			}
			onVMAC(ic.VIPs)
			onVMAC(ic.ExcludedVIPs)
		}
		ic.NotifyPriorityChanges = notifyPrioChanges(c, in)
		for _, tg := range c.TrackGroups {
			if slices.Contains(tg.Instances, in.Name) {
				// Weight 0: FAULT while the group is down.
				ic.TrackExternal = append(ic.TrackExternal, vrrp.TrackRef{Name: trackGroupRef(tg.Name)})
			}
		}
		ic.McastDstIP = in.McastDstIP
		ic.UnicastFaultNoPeer = in.UnicastFaultNoPeer
		ic.TrackSrcIP = in.TrackSrcIP
		if in.GARPExtraIfAll {
			// Without "all" keepalived sends on VMAC interfaces only,
			// and vipd has none.
			ic.GARPExtraIf = in.GARPExtraIf
		}
		if in.Auth != nil {
			ic.AuthType = string(in.Auth.Type)
			ic.AuthPass = in.Auth.Pass
		}
		if a := in.AuthHMAC; a != nil {
			h := &vrrp.AuthHMACConfig{ActiveKey: uint8(a.ActiveKey), Mode: a.Mode, Monotonic: a.Monotonic, TimeWindow: a.TimeWindow}
			for _, k := range a.Keys {
				h.Keys = append(h.Keys, vrrp.HMACKey{ID: uint8(k.ID), Key: k.Key})
			}
			ic.AuthHMAC = h
		}
		ic.OldUnicastChecksum = in.OldUnicastChecksum
		for _, p := range in.UnicastPeers {
			ic.UnicastPeers = append(ic.UnicastPeers, p.Addr)
		}
		if len(ic.UnicastPeers) > 0 {
			ic.UnicastSrcIP = in.SrcIP
		} else {
			ic.McastSrcIP = in.SrcIP
		}
		gp := in.GARP
		repeat, delay := gp.MasterRepeat, gp.MasterDelay
		lrepeat, ldelay := gp.LowerPrioRepeat, gp.LowerPrioDelay
		ic.GARPMasterRepeat = &repeat
		ic.GARPMasterDelay = &delay
		ic.GARPLowerPrioRepeat = &lrepeat
		ic.GARPLowerPrioDelay = &ldelay
		ic.GARPMasterRefresh = gp.MasterRefresh
		ic.GARPMasterRefreshRepeat = gp.MasterRefreshRepeat
		out.Instances = append(out.Instances, ic)
	}
	return out
}

// vmacName is keepalived's name for an instance's VMAC: PREFIX.VRID,
// else (taken by another instance) PREFIXn.VRID, IPv6 instances trying
// n=6 first; cut to the 15 bytes of an interface name by shortening the
// prefix.
func vmacName(prefix string, vrid int, v6 bool, taken map[string]bool) string {
	if prefix == "" {
		prefix = "vrrp"
	}
	mk := func(num string) string {
		tail := num + "." + strconv.Itoa(vrid)
		if len(prefix)+len(tail) > 15 {
			return prefix[:15-len(tail)] + tail
		}
		return prefix + tail
	}
	nums := []string{""}
	if v6 {
		nums = append(nums, "6")
	}
	for i := 1; i < 100; i++ {
		if !v6 || i != 6 {
			nums = append(nums, strconv.Itoa(i))
		}
	}
	for _, n := range nums {
		if name := mk(n); !taken[name] {
			return name
		}
	}
	return mk("")
}

// vmacMAC completes a use_vmac MAC given with five octets with the VRID,
// as keepalived does; a full one is kept, none stays empty (the virtual
// router MAC).
func vmacMAC(mac string, vrid int) string {
	if strings.Count(mac, ":") == 4 {
		return fmt.Sprintf("%s:%02x", mac, vrid)
	}
	return mac
}

// processConfig maps a vrrp_track_process block: the first word of
// process is the name, the others parameters, which (like param_match)
// make keepalived match the command line, exactly by default.
func processConfig(tp *config.TrackProcess) vrrp.ProcessConfig {
	s := proctrack.Spec{
		Name: tp.Name, FullCommand: tp.FullCommand,
		Quorum: tp.Quorum, QuorumMax: tp.QuorumMax,
		ForkDelay: tp.ForkDelay, TerminateDelay: tp.TerminateDelay,
	}
	if len(tp.Process) > 0 {
		s.Process, s.Params = tp.Process[0], slices.Clone(tp.Process[1:])
	}
	switch tp.ParamMatch {
	case "initial":
		s.ParamMatch = proctrack.MatchInitial
	case "partial":
		s.ParamMatch = proctrack.MatchPartial
	case "exact":
		s.ParamMatch = proctrack.MatchExact
	default:
		if len(s.Params) > 0 {
			s.ParamMatch = proctrack.MatchExact
		}
	}
	return vrrp.ProcessConfig{Spec: s, Weight: tp.Weight, Reverse: tp.Reverse}
}

// trackGroupRef names a track_group as the external object VRRP tracks.
func trackGroupRef(group string) string { return "track_group " + group }

// notifyPrioChanges resolves notify_priority_changes as keepalived does:
// the instance's own setting, else its sync group's, else the global
// vrrp_notify_priority_changes.
func notifyPrioChanges(c *config.Config, in *config.Instance) bool {
	if in.NotifyPriorityChanges != nil {
		return *in.NotifyPriorityChanges
	}
	for _, sg := range c.SyncGroups {
		if sg.Name == in.SyncGroup && sg.NotifyPriorityChanges != nil {
			return *sg.NotifyPriorityChanges
		}
	}
	return c.Global.NotifyPriorityChanges
}

func vips(in []config.VIP, defaultDev string) []vrrp.VIP {
	var out []vrrp.VIP
	for _, v := range in {
		dev := v.Dev
		if dev == "" {
			dev = defaultDev
		}
		a := netif.Addr{Prefix: v.Prefix, Dev: dev, Label: v.Label, Scope: string(v.Scope), Broadcast: v.Brd}
		if v.BrdSet && v.Prefix.Addr().Is4() {
			a.Broadcast = broadcastOf(v.Prefix)
		}
		out = append(out, a)
	}
	return out
}

// broadcastOf returns the prefix's address with all host bits set
// ("brd +").
func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// without drops the references to refused scripts.
func without(refs []config.TrackRef, refused map[string]bool) []config.TrackRef {
	var out []config.TrackRef
	for _, r := range refs {
		if !refused[r.Name] {
			out = append(out, r)
		}
	}
	return out
}

// bfdTrackRefs always carries the weight: config gave entries without
// one their bfd_instance's weight (0: FAULT while down).
func bfdTrackRefs(in []config.TrackRef) []vrrp.TrackRef {
	var out []vrrp.TrackRef
	for _, r := range in {
		w := r.Weight
		out = append(out, vrrp.TrackRef{Name: r.Name, Weight: &w, Reverse: r.Reverse})
	}
	return out
}

func trackRefs(in []config.TrackRef) []vrrp.TrackRef {
	var out []vrrp.TrackRef
	for _, r := range in {
		tr := vrrp.TrackRef{Name: r.Name, Reverse: r.Reverse}
		if r.WeightSet {
			w := r.Weight
			tr.Weight = &w
		}
		out = append(out, tr)
	}
	return out
}

// commandLine joins a script's words back into keepalived's command-line
// syntax (single quotes around words with spaces), for packages that take
// the command as one string.
func commandLine(s *config.Script) string {
	if s == nil {
		return ""
	}
	words := make([]string, len(s.Argv))
	for i, w := range s.Argv {
		if w == "" || strings.ContainsAny(w, " \t'\"") {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}
