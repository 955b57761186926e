package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vipd/vipd/internal/proctrack"
)

func (c *Core) setExternal(in Input) {
	if old, ok := c.external[in.Name]; !ok || old != in.Up {
		c.external[in.Name] = in.Up
		c.retrackAll()
	}
}

func (l LinkFacts) addr(v6 bool) netip.Addr {
	if v6 {
		return l.Addr6
	}
	return l.Addr4
}

// pendingLink is a link change waiting for its interface_up_down_delays
// delay.
type pendingLink struct {
	facts LinkFacts
	at    time.Time
}

// linkChanged applies a link change, or holds it back for the
// interface's up or down delay (interface_up_down_delays): a change
// undone within the delay has no effect at all.
func (c *Core) linkChanged(st LinkFacts) {
	old, known := c.links[st.Name]
	if _, waiting := c.pendingLinks[st.Name]; waiting && known && old.Up == st.Up && old.Gone == st.Gone {
		delete(c.pendingLinks, st.Name)
		c.logf("Netlink reports %s %s again within its delay: nothing changes", st.Name, upDown(st.Up))
		return
	}
	if d, ok := c.cfg.LinkDelays[st.Name]; ok && known && old.Up != st.Up && !st.Gone {
		delay := d.Down
		if st.Up {
			delay = d.Up
		}
		if delay > 0 {
			if _, waiting := c.pendingLinks[st.Name]; !waiting {
				c.logf("Netlink reports %s %s; acting in %g seconds (interface_up_down_delays)", st.Name, upDown(st.Up), delay.Seconds())
			}
			if c.pendingLinks == nil {
				c.pendingLinks = map[string]pendingLink{}
			}
			c.pendingLinks[st.Name] = pendingLink{facts: st, at: c.now.Add(delay)}
			return
		}
	}
	delete(c.pendingLinks, st.Name)
	c.applyLink(st)
}

func (c *Core) applyLink(st LinkFacts) {
	old, known := c.links[st.Name]
	if st.Addrs == nil && !st.Gone {
		st.Addrs = old.Addrs // only InAddrs and reloads report them
	}
	c.links[st.Name] = st
	if known && old.Up == st.Up && old.Gone == st.Gone {
		return
	}
	if !c.Uses(st.Name) {
		return
	}
	if st.Up {
		c.logf("Netlink reports %s up", st.Name)
	} else {
		c.logf("Netlink reports %s down", st.Name)
	}
	for _, name := range c.order {
		ci := c.insts[name]
		if ci.cfg.Interface != st.Name {
			continue
		}
		if a := st.addr(ci.key.V6); st.Up && !ci.ownSrc && a.IsValid() && a != ci.src {
			ci.src = a
			ci.m.SetAddr(a)
		}
		if ci.sockErr != "" && !ci.waiting && !st.Gone {
			c.listen(ci) // try again: the interface may exist now
		}
	}
	c.retrackAll()
}

// addrsChanged records an interface's addresses and retracks the
// instances on it that track their source address (track_src_ip); as
// keepalived, only the instance's own interface counts.
func (c *Core) addrsChanged(l LinkFacts) {
	st, ok := c.links[l.Name]
	if !ok || slices.Equal(st.Addrs, l.Addrs) {
		return // unknown: no instance uses it (reloads report theirs)
	}
	st.Addrs = slices.Clone(l.Addrs)
	c.links[l.Name] = st
	for _, name := range c.order {
		if ci := c.insts[name]; ci.cfg.TrackSrcIP && ci.cfg.Interface == l.Name && !ci.waiting {
			c.retrack(ci)
		}
	}
}

func (c *Core) retrackAll() {
	for _, name := range c.order {
		if ci := c.insts[name]; !ci.waiting {
			c.retrack(ci)
		}
	}
}

// retrack recomputes an instance's tracking and steps it if it changed.
func (c *Core) retrack(ci *coreInst) {
	var items []Tracked
	linkUp := func(name string) bool {
		st, ok := c.links[name]
		return ok && st.Up && !st.Gone
	}
	if !ci.cfg.DontTrackPrimary {
		items = append(items, Tracked{Kind: TrackInterface, Name: ci.cfg.Interface, Known: true, Up: linkUp(ci.cfg.Interface)})
	}
	addRefs := func(refs []TrackRef, kind TrackKind) {
		for _, r := range refs {
			t := Tracked{Kind: kind, Name: r.Name, Reverse: r.Reverse}
			switch kind {
			case TrackInterface:
				t.Known, t.Up = true, linkUp(r.Name)
				t.Weight = orDefault(r.Weight, 0)
			case TrackScript:
				sr := c.scripts[r.Name]
				if sr == nil {
					continue
				}
				t.Weight = orDefault(r.Weight, sr.cfg.Weight)
				if r.Weight == nil {
					t.Reverse = sr.cfg.Reverse
				}
				st := sr.tracker.State()
				t.Known, t.Up = st != ScriptInit, st == ScriptGood
			case TrackFile:
				fr := c.files[r.Name]
				if fr == nil {
					continue
				}
				t.Weight = orDefault(r.Weight, orDefault(fr.cfg.Weight, 1))
				if r.Weight == nil {
					t.Reverse = fr.cfg.Reverse
				}
				t.Known, t.Value = true, fr.value
			case TrackExternal:
				up, ok := c.external[r.Name]
				t.Weight = orDefault(r.Weight, 0)
				t.Known, t.Up = ok, up
			case TrackProcess:
				pr := c.procs[r.Name]
				if pr == nil {
					continue
				}
				t.Weight = orDefault(r.Weight, pr.cfg.Weight)
				if r.Weight == nil {
					t.Reverse = pr.cfg.Reverse
				}
				t.Known, t.Up = pr.known, pr.up
			case TrackBFD:
				// Down until the daemon reports it Up, as keepalived
				// starts every tracked BFD down.
				t.Weight = orDefault(r.Weight, 0)
				t.Known, t.Up = true, c.external[BFDRef(r.Name)]
			}
			items = append(items, t)
		}
	}
	addRefs(ci.cfg.TrackInterfaces, TrackInterface)
	addRefs(ci.cfg.TrackScripts, TrackScript)
	addRefs(ci.cfg.TrackFiles, TrackFile)
	addRefs(ci.cfg.TrackProcesses, TrackProcess)
	addRefs(ci.cfg.TrackExternal, TrackExternal)
	addRefs(ci.cfg.TrackBFDs, TrackBFD)
	for _, g := range c.cfg.Groups {
		if g.Name == ci.group {
			addRefs(g.TrackInterfaces, TrackInterface)
			addRefs(g.TrackScripts, TrackScript)
			addRefs(g.TrackFiles, TrackFile)
			addRefs(g.TrackProcesses, TrackProcess)
			addRefs(g.TrackBFDs, TrackBFD)
		}
	}
	delta, faults := Evaluate(items)
	if ci.sockErr != "" {
		faults = append(faults, ci.sockErr)
	}
	if ci.cfg.UnicastFaultNoPeer && len(ci.cfg.UnicastPeers) == 0 {
		// keepalived's words; without the keyword it falls back to
		// multicast.
		faults = append(faults, "Cannot use unicast without any peers")
	}
	if !ci.src.IsValid() {
		fam := "IPv4"
		if ci.key.V6 {
			fam = "IPv6 link-local"
		}
		faults = append(faults, fmt.Sprintf("no %s address for interface %s", fam, ci.cfg.Interface))
	}
	if ci.cfg.TrackSrcIP && ci.ownSrc && !slices.Contains(c.links[ci.cfg.Interface].Addrs, ci.src) {
		faults = append(faults, fmt.Sprintf("source address %v is not on interface %s", ci.src, ci.cfg.Interface))
	}
	if delta == ci.delta && slices.Equal(faults, ci.faults) && ci.m.State() != StateInit {
		return
	}
	ci.delta, ci.faults = delta, faults
	c.step(ci, Event{Kind: EvTrack, Delta: delta, Faults: faults})
}

// referenced returns the names of scripts and track files that some
// instance or group uses: keepalived runs only those.
func referenced(cfg Config) (scripts, files map[string]bool) {
	scripts, files = map[string]bool{}, map[string]bool{}
	add := func(refs []TrackRef, m map[string]bool) {
		for _, r := range refs {
			m[r.Name] = true
		}
	}
	for _, in := range cfg.Instances {
		add(in.TrackScripts, scripts)
		add(in.TrackFiles, files)
	}
	for _, g := range cfg.Groups {
		add(g.TrackScripts, scripts)
		add(g.TrackFiles, files)
	}
	return scripts, files
}

// syncTracked starts, stops and restarts scripts and track files to
// match cfg. A script whose rise, fall and init_fail are unchanged keeps
// its state across a reload. values are the track files' current values.
func (c *Core) syncTracked(cfg Config, values map[string]int) {
	usedS, usedF := referenced(cfg)
	var want []ScriptConfig
	for _, sc := range cfg.Scripts {
		if usedS[sc.Name] {
			want = append(want, sc)
		}
	}
	for name, sr := range c.scripts {
		i := slices.IndexFunc(want, func(sc ScriptConfig) bool { return sc.Name == name })
		if i < 0 || want[i] != sr.cfg {
			c.emit(Effect{Kind: EffStopScript, Name: name})
			delete(c.scripts, name)
			if sc := want[max(i, 0)]; i >= 0 && sc.Rise == sr.cfg.Rise && sc.Fall == sr.cfg.Fall && sc.InitFail == sr.cfg.InitFail {
				c.scripts[name] = &coreScript{cfg: sc, tracker: sr.tracker, changed: sr.changed}
				c.emit(Effect{Kind: EffRunScript, Script: sc})
			}
		}
	}
	for _, sc := range want {
		if c.scripts[sc.Name] == nil {
			c.scripts[sc.Name] = &coreScript{cfg: sc, tracker: NewScriptTracker(sc.Rise, sc.Fall, sc.InitFail)}
			c.emit(Effect{Kind: EffRunScript, Script: sc})
		}
	}
	for name, fr := range c.files {
		i := slices.IndexFunc(cfg.TrackFiles, func(fc TrackFileConfig) bool { return fc.Name == name })
		if i < 0 || !usedF[name] || cfg.TrackFiles[i].Path != fr.cfg.Path {
			c.emit(Effect{Kind: EffStopFile, Name: name})
			delete(c.files, name)
		} else {
			fr.cfg = cfg.TrackFiles[i]
		}
	}
	for _, fc := range cfg.TrackFiles {
		if usedF[fc.Name] && c.files[fc.Name] == nil {
			c.files[fc.Name] = &coreFile{cfg: fc, value: values[fc.Name]}
			c.emit(Effect{Kind: EffWatchFile, File: fc})
		}
	}
}

func (c *Core) scriptResult(name string, ok bool, detail string) {
	sr := c.scripts[name]
	if sr == nil || !sr.tracker.Result(ok) {
		return
	}
	sr.changed = c.now
	if sr.tracker.State() == ScriptGood {
		c.logf("VRRP_Script(%s) succeeded", name)
	} else {
		c.logf("VRRP_Script(%s) failed (%s)", name, detail)
	}
	c.retrackAll()
}

func (c *Core) fileValue(name string, v int) {
	fr := c.files[name]
	if fr == nil || fr.value == v {
		return
	}
	fr.value = v
	c.logf("VRRP_Track_File(%s) value %d", name, v)
	c.retrackAll()
}

// coreProc is a vrrp_track_process as the core knows it: its quorum as
// the driver's process monitor last reported, and its count.
type coreProc struct {
	cfg     ProcessConfig
	known   bool // the monitor's first scan has been reported
	up      bool
	count   int
	changed time.Time
}

// syncProcesses keeps the processes that some instance or sync group
// tracks, and asks the driver to monitor exactly those (one effect with
// all of them: one connector socket serves them all). A process whose
// spec is unchanged keeps its state; any change restarts the monitor,
// whose first scan reports every quorum again.
func (c *Core) syncProcesses(cfg Config) {
	used := map[string]bool{}
	for _, in := range cfg.Instances {
		for _, r := range in.TrackProcesses {
			used[r.Name] = true
		}
	}
	for _, g := range cfg.Groups {
		for _, r := range g.TrackProcesses {
			used[r.Name] = true
		}
	}
	var want []ProcessConfig
	for _, pc := range cfg.TrackProcesses {
		if used[pc.Name] {
			want = append(want, pc)
		}
	}
	same := len(want) == len(c.procs)
	for _, pc := range want {
		if pr := c.procs[pc.Name]; pr == nil || !pr.cfg.Spec.Equal(pc.Spec) {
			same = false
		}
	}
	if same {
		for _, pc := range want {
			c.procs[pc.Name].cfg = pc // weights may change in place
		}
		return
	}
	old := c.procs
	c.procs = map[string]*coreProc{}
	specs := make([]proctrack.Spec, 0, len(want))
	for _, pc := range want {
		pr := &coreProc{cfg: pc}
		if o := old[pc.Name]; o != nil && o.cfg.Spec.Equal(pc.Spec) {
			pr.known, pr.up, pr.count, pr.changed = o.known, o.up, o.count, o.changed
		}
		c.procs[pc.Name] = pr
		specs = append(specs, pc.Spec)
	}
	if len(specs) == 0 {
		specs = nil
	}
	c.emit(Effect{Kind: EffTrackProcesses, Processes: specs})
}

// processChanged records what the process monitor reports: a count, and
// whether the quorum changed; keepalived logs "Quorum gained/lost for
// tracked process NAME" (not for the first scan, whose effect the
// instances' start shows).
func (c *Core) processChanged(name string, up bool, count int) {
	pr := c.procs[name]
	if pr == nil {
		return
	}
	pr.count = count
	if pr.known && pr.up == up {
		return
	}
	if pr.known {
		c.logf("Quorum %s for tracked process %s", map[bool]string{true: "gained", false: "lost"}[up], name)
	}
	pr.known, pr.up, pr.changed = true, up, c.now
	c.retrackAll()
}

// BFDRef is the external object name under which the daemon reports a
// bfd_instance's session (Node.SetTrack) for track_bfd.
func BFDRef(name string) string { return "bfd " + name }
