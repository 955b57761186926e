package vrrp

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proctrack"
)

// Scripted scenarios in testdata/scenarios, in the style of
// cockroachdb/datadriven (a dozen lines here rather than a dependency):
// each block is a command, optional input lines, "----" and the effects
// the core returned, one per line, up to a blank line. One core runs on
// 198.18.0.11 (eth0 and eth1 up); other routers exist only through the
// adverts a scenario injects. Run with -vrrp.rewrite to write the
// effects as they are now (then read the diff).
//
// Commands:
//
//	config            input: instance/script/group lines (see parseScenarioConfig); a reload after the first
//	advert INST from=ADDR prio=N [vrid=N] [ttl=N] [version=N] [interval=N] [truncate=N] [corrupt]
//	tick DURATION     advance the clock, firing due timers
//	script NAME ok|fail
//	link IFACE up|down
//	external NAME up|down
//	process NAME up|down COUNT   the process monitor's report
//	addrs IFACE [ADDR,...]       the interface's addresses now (before the first config: at start)
//	stop
//	status            each instance's state, priorities and faults
//	counters          each instance's counters, unknown VRIDs

var rewriteScenarios = flag.Bool("vrrp.rewrite", false, "rewrite the expected effects of testdata/scenarios")

var scenarioMe = netip.MustParseAddr("198.18.0.11")

type scenario struct {
	t     *testing.T
	core  *Core
	now   time.Time
	timer time.Time
	cfg   Config
	links map[string]bool // interface up
	addrs map[string][]netip.Addr
	out   []string
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runScenarioFile(t, f)
		})
	}
}

func runScenarioFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	sc := &scenario{t: t, core: NewCore(), now: t0, links: map[string]bool{"eth0": true, "eth1": true},
		addrs: map[string][]netip.Addr{"eth0": {scenarioMe}}}
	var rewritten []string
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			rewritten = append(rewritten, line)
			i++
			continue
		}
		start := i
		cmd := line
		var input []string
		for i++; i < len(lines) && lines[i] != "----"; i++ {
			input = append(input, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: %q has no ----", path, start+1, cmd)
		}
		i++ // ----
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		got := sc.run(fmt.Sprintf("%s:%d", path, start+1), cmd, input)
		rewritten = append(rewritten, cmd)
		rewritten = append(rewritten, input...)
		rewritten = append(rewritten, "----")
		rewritten = append(rewritten, got...)
		if !*rewriteScenarios && strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, start+1, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if *rewriteScenarios {
		if err := os.WriteFile(path, []byte(strings.Join(rewritten, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (sc *scenario) run(where, cmd string, input []string) []string {
	sc.out = nil
	f := strings.Fields(cmd)
	arg := func(i int) string {
		if i >= len(f) {
			sc.t.Fatalf("%s: %q needs more arguments", where, cmd)
		}
		return f[i]
	}
	switch f[0] {
	case "config":
		cfg, err := parseScenarioConfig(input)
		if err == nil {
			_, err = cfg.Validate()
		}
		if err != nil {
			sc.t.Fatalf("%s: %v", where, err)
		}
		sc.cfg = cfg
		links := []LinkFacts{{Name: "eth0", Up: sc.links["eth0"], Addr4: scenarioMe, Addrs: sc.addrs["eth0"]},
			{Name: "eth1", Up: sc.links["eth1"], Addrs: sc.addrs["eth1"]}}
		sc.step(Input{Kind: InReload, Config: cfg, Links: links})
	case "advert":
		sc.advert(where, arg(1), f[2:])
	case "tick":
		d, err := time.ParseDuration(arg(1))
		if err != nil {
			sc.t.Fatalf("%s: %v", where, err)
		}
		sc.tick(d)
	case "script":
		sc.step(Input{Kind: InScript, Name: arg(1), OK: arg(2) == "ok", Detail: "exited with status 1"})
	case "link":
		sc.links[arg(1)] = arg(2) == "up"
		sc.step(Input{Kind: InLink, Link: LinkFacts{Name: arg(1), Up: arg(2) == "up", Addr4: scenarioMe}})
	case "external":
		sc.step(Input{Kind: InExternal, Name: arg(1), Up: arg(2) == "up"})
	case "bfd":
		sc.step(Input{Kind: InExternal, Name: BFDRef(arg(1)), Up: arg(2) == "up"})
	case "process":
		n, _ := strconv.Atoi(arg(3))
		sc.step(Input{Kind: InProcess, Name: arg(1), Up: arg(2) == "up", Value: n})
	case "addrs":
		var as []netip.Addr
		if len(f) > 2 {
			for _, a := range strings.Split(f[2], ",") {
				as = append(as, netip.MustParseAddr(a))
			}
		}
		sc.addrs[arg(1)] = as
		sc.step(Input{Kind: InAddrs, Link: LinkFacts{Name: arg(1), Addrs: as}})
	case "stop":
		sc.step(Input{Kind: InStop})
	case "status":
		for _, st := range sc.core.Status().Instances {
			line := fmt.Sprintf("%s %s priority %d effective %d", st.Name, st.State, st.Priority, st.EffectivePriority)
			if len(st.FaultReasons) > 0 {
				line += " faults: " + strings.Join(st.FaultReasons, ", ")
			}
			sc.out = append(sc.out, line)
		}
		for _, g := range sc.core.Status().Groups {
			sc.out = append(sc.out, fmt.Sprintf("group %s %s", g.Name, g.State))
		}
		for _, p := range sc.core.Status().Processes {
			sc.out = append(sc.out, fmt.Sprintf("process %s %s running %d quorum %d..%d weight %d", p.Name, p.State, p.Count, p.Quorum, p.QuorumMax, p.Weight))
		}
	case "counters":
		st := sc.core.Status()
		for _, in := range st.Instances {
			sc.out = append(sc.out, fmt.Sprintf("%s received %d sent %d dropped %v priority changes %d",
				in.Name, in.Stats.AdvertRcvd, in.Stats.AdvertSent, in.Stats.Dropped, in.PriorityChanges))
		}
		sc.out = append(sc.out, fmt.Sprintf("unknown VRID %v", st.UnknownVRID))
	default:
		sc.t.Fatalf("%s: unknown command %q", where, cmd)
	}
	return sc.out
}

// step feeds the core and prints its effects; sockets open at once.
func (sc *scenario) step(in Input) {
	in.Now = sc.now
	queue := []Input{in}
	for len(queue) > 0 {
		in := queue[0]
		queue = queue[1:]
		for _, e := range sc.core.Step(in) {
			if e.Kind == EffListen {
				queue = append(queue, Input{Kind: InSocket, Now: sc.now, Sock: e.Sock, Group: e.Group})
			}
			if s := sc.format(e); s != "" {
				sc.out = append(sc.out, s)
			}
		}
	}
}

func (sc *scenario) format(e Effect) string {
	switch e.Kind {
	case EffLog:
		if e.Level > 0 {
			return "error: " + e.Msg
		}
		return "log: " + e.Msg
	case EffSend:
		return fmt.Sprintf("send %s priority %d to %v", e.Instance, e.Priority, e.Dst)
	case EffAddVIP:
		return fmt.Sprintf("add %s %v dev %s", e.Instance, e.VIP.Prefix, e.VIP.Dev)
	case EffRemoveVIP:
		s := fmt.Sprintf("remove %s %v dev %s", e.Instance, e.VIP.Prefix, e.VIP.Dev)
		if e.Stale {
			s += " (stale)"
		}
		return s
	case EffGARP:
		return fmt.Sprintf("garp %s %v x%d", e.Instance, e.VIP.Prefix.Addr(), e.Count)
	case EffNotify:
		n := e.Notification
		return fmt.Sprintf("notify %s %s %s (was %s) priority %d", n.Type, n.Name, n.State, n.Prev, n.Priority)
	case EffListen:
		return fmt.Sprintf("listen %v %v", e.Sock, e.Group)
	case EffUnlisten:
		return fmt.Sprintf("unlisten %v", e.Sock)
	case EffRunScript:
		return "run script " + e.Script.Name
	case EffStopScript:
		return "stop script " + e.Name
	case EffWatchFile:
		return "watch file " + e.File.Name
	case EffStopFile:
		return "stop file " + e.Name
	case EffAddVMAC:
		return fmt.Sprintf("add vmac %s on %s mac %s ipv6 %v", e.VMAC.Name, e.VMAC.Base, e.VMAC.MAC, e.VMAC.V6)
	case EffRemoveVMAC:
		return fmt.Sprintf("remove vmac %s", e.Name)
	case EffTrackProcesses:
		var names []string
		for _, s := range e.Processes {
			names = append(names, s.Name)
		}
		return fmt.Sprintf("track processes %v", names)
	case EffTimer:
		sc.timer = e.At
	}
	return ""
}

// tick advances the clock by d, stepping InTick at each timer the core
// set; the effects of each tick follow a line with its time.
func (sc *scenario) tick(d time.Duration) {
	end := sc.now.Add(d)
	for i := 0; !sc.timer.IsZero() && !sc.timer.After(end); i++ {
		if i > 100000 {
			sc.t.Fatal("tick: timer storm")
		}
		sc.now = sc.timer
		n := len(sc.out)
		sc.step(Input{Kind: InTick})
		if len(sc.out) > n {
			sc.out = append(sc.out[:n], append([]string{fmt.Sprintf("at %v:", sc.now.Sub(t0))}, sc.out[n:]...)...)
		}
	}
	sc.now = end
}

// advert injects an advert as another router would send it for the
// instance, with overrides.
func (sc *scenario) advert(where, name string, args []string) {
	var ic *InstanceConfig
	for i := range sc.cfg.Instances {
		if sc.cfg.Instances[i].Name == name {
			ic = &sc.cfg.Instances[i]
		}
	}
	if ic == nil {
		sc.t.Fatalf("%s: no instance %s", where, name)
	}
	mc := ic.machineConfig()
	iv, _ := IntervalField(mc.Version, mc.AdvertInt)
	p := Packet{Version: mc.Version, Type: TypeAdvertisement, VRID: mc.VRID, AdvertInt: iv,
		AuthType: mc.AuthType, AuthData: mc.AuthPass, Addrs: mc.VIPs}
	var src netip.Addr
	ttl, truncate, corrupt := 255, 0, false
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "from":
			src = netip.MustParseAddr(v)
		case "prio":
			p.Priority = uint8(n)
		case "vrid":
			p.VRID = uint8(n)
		case "ttl":
			ttl = n
		case "version":
			p.Version = n
		case "interval":
			p.AdvertInt = uint16(n)
		case "truncate":
			truncate = n
		case "corrupt":
			corrupt = true
		default:
			sc.t.Fatalf("%s: advert: unknown %q", where, a)
		}
	}
	dst := MulticastGroup4
	b, err := p.Marshal(src, dst, EncodeOptions{})
	if err != nil {
		sc.t.Fatalf("%s: %v", where, err)
	}
	if corrupt {
		b[6] ^= 0xff // checksum
	}
	if truncate > 0 {
		b = b[:truncate]
	}
	sc.step(Input{Kind: InAdvert, Sock: SockKey{Iface: ic.Interface},
		Packet: netif.Received{Payload: b, Src: src, Dst: dst, TTL: ttl, At: sc.now}})
}

// parseScenarioConfig reads a compact configuration, one block per line:
//
//	instance NAME vrid=N prio=N vips=A/N[,A/N] [state=MASTER] [version=3]
//	    [advert=1s] [nopreempt] [preempt_delay=D] [track_script=S[:W]]
//	    [track_interface=I[:W]] [track_external=X[:W]] [lower_prio_no_advert]
//	    [notify_priority_changes] [garp_delay=D] [interface=I]
//	    [mcast_src=ADDR] [track_src_ip]
//	script NAME weight=N [rise=N] [fall=N] [reverse] [init_fail]
//	process NAME [weight=N] [reverse] (tracked process; instances and
//	    groups list it with track_process=NAME[:W])
//	group NAME MEMBER... [track_interface=I[:W]] [track_script=S[:W]]
func parseScenarioConfig(lines []string) (Config, error) {
	var cfg Config
	ref := func(v string) TrackRef {
		name, w, ok := strings.Cut(v, ":")
		r := TrackRef{Name: name}
		if ok {
			n, _ := strconv.Atoi(w)
			r.Weight = &n
		}
		return r
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 {
			return cfg, fmt.Errorf("config line %q", line)
		}
		switch f[0] {
		case "instance":
			ic := InstanceConfig{Name: f[1], Interface: "eth0"}
			var garpDelay time.Duration
			numbers := map[string]*int{"vrid": &ic.VRID, "prio": &ic.Priority, "version": &ic.Version}
			durations := map[string]*time.Duration{"advert": &ic.AdvertInt, "preempt_delay": &ic.PreemptDelay, "garp_delay": &garpDelay}
			texts := map[string]*string{"state": &ic.State, "interface": &ic.Interface}
			flags := map[string]*bool{"nopreempt": &ic.NoPreempt, "lower_prio_no_advert": &ic.LowerPrioNoAdvert,
				"notify_priority_changes": &ic.NotifyPriorityChanges, "track_src_ip": &ic.TrackSrcIP}
			refs := map[string]*[]TrackRef{"track_script": &ic.TrackScripts, "track_interface": &ic.TrackInterfaces,
				"track_external": &ic.TrackExternal, "track_bfd": &ic.TrackBFDs, "track_process": &ic.TrackProcesses}
			err := options(f[2:], func(k, v string, n int, d time.Duration) bool {
				switch {
				case numbers[k] != nil:
					*numbers[k] = n
				case durations[k] != nil:
					*durations[k] = d
				case texts[k] != nil:
					*texts[k] = v
				case flags[k] != nil:
					*flags[k] = true
				case refs[k] != nil:
					*refs[k] = append(*refs[k], ref(v))
				case k == "mcast_src":
					ic.McastSrcIP = netip.MustParseAddr(v)
				case k == "vmac" || k == "vmac_xmit_base":
					ic.VMAC = &VMACConfig{Name: v, XmitBase: k == "vmac_xmit_base"}
				case k == "vips":
					for _, p := range strings.Split(v, ",") {
						ic.VIPs = append(ic.VIPs, VIP{Prefix: netip.MustParsePrefix(p)})
					}
				default:
					return false
				}
				return true
			})
			if garpDelay != 0 {
				ic.GARPMasterDelay = &garpDelay
			}
			if err != nil {
				return cfg, fmt.Errorf("instance: %w", err)
			}
			cfg.Instances = append(cfg.Instances, ic)
		case "script":
			sc := ScriptConfig{Name: f[1], Script: "/bin/true"}
			numbers := map[string]*int{"weight": &sc.Weight, "rise": &sc.Rise, "fall": &sc.Fall}
			flags := map[string]*bool{"reverse": &sc.Reverse, "init_fail": &sc.InitFail}
			err := options(f[2:], func(k, _ string, n int, _ time.Duration) bool {
				if p := numbers[k]; p != nil {
					*p = n
				} else if p := flags[k]; p != nil {
					*p = true
				}
				return numbers[k] != nil || flags[k] != nil
			})
			if err != nil {
				return cfg, fmt.Errorf("script: %w", err)
			}
			cfg.Scripts = append(cfg.Scripts, sc)
		case "process":
			pc := ProcessConfig{Spec: proctrack.Spec{Name: f[1], Process: f[1], Quorum: 1, QuorumMax: -1}}
			err := options(f[2:], func(k, _ string, n int, _ time.Duration) bool {
				switch k {
				case "weight":
					pc.Weight = n
				case "reverse":
					pc.Reverse = true
				case "quorum":
					pc.Quorum = n
				default:
					return false
				}
				return true
			})
			if err != nil {
				return cfg, fmt.Errorf("process: %w", err)
			}
			cfg.TrackProcesses = append(cfg.TrackProcesses, pc)
		case "group":
			g := GroupConfig{Name: f[1]}
			for _, a := range f[2:] {
				k, v, ok := strings.Cut(a, "=")
				switch {
				case !ok:
					g.Instances = append(g.Instances, a)
				case k == "track_interface":
					g.TrackInterfaces = append(g.TrackInterfaces, ref(v))
				case k == "track_script":
					g.TrackScripts = append(g.TrackScripts, ref(v))
				case k == "track_bfd":
					g.TrackBFDs = append(g.TrackBFDs, ref(v))
				case k == "track_process":
					g.TrackProcesses = append(g.TrackProcesses, ref(v))
				default:
					return cfg, fmt.Errorf("group: unknown %q", a)
				}
			}
			cfg.Groups = append(cfg.Groups, g)
		default:
			return cfg, fmt.Errorf("config line %q", line)
		}
	}
	return cfg, nil
}

// options calls set for each key=value (or bare key) with the value also
// read as a number and a duration; set returns false for an unknown key.
func options(args []string, set func(k, v string, n int, d time.Duration) bool) error {
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		n, _ := strconv.Atoi(v)
		d, _ := time.ParseDuration(v)
		if !set(k, v, n, d) {
			return fmt.Errorf("unknown %q", a)
		}
	}
	return nil
}
