package vrrp

import (
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/netif"
)

// A simulated LAN of whole VRRP nodes: every host runs a full Core (sync
// groups, vrrp_script tracking, external tracking, reloads) and a fake
// kernel that holds the VIPs the core's effects add and remove. Adverts
// cross the LAN as real packets (marshalled and decoded by the cores),
// late, lost, duplicated and reordered while the network misbehaves.
// Each fault sequence is a burst of trouble (crashes, clean stops,
// restarts, sockets that fail to open, flapping links and track scripts,
// priority changes and reloads mid-flight); then the network calms down
// and the test checks what VRRP promises:
//
//   - every live host's instance is in FAULT exactly when its tracked
//     objects say so, at the effective priority keepalived's weight
//     arithmetic gives;
//   - per VRID exactly one master, with the highest effective priority of
//     the hosts that can be master, and it alone holds the VIPs;
//   - the members of a sync group are in one state;
//   - MASTER is notified only once the VIPs are in place;
//   - a host that stops cleanly leaves no VIP behind;
//   - no host, restarted or not, becomes MASTER while a higher-priority
//     master is alive and heard (checked the moment it happens, not
//     only once settled: a restarting state MASTER host must listen
//     before claiming, issue 15 item 5).

var (
	simSeed      = flag.Int64("vrrp.seed", 0, "base seed of the whole-node simulation (0: VRRP_SIM_SEED or the clock)")
	simSequences = flag.Int("vrrp.sequences", 1000, "fault sequences the whole-node simulation runs")
)

type simHost struct {
	id     int
	addr   netip.Addr
	core   *Core
	alive  bool
	inc    int // incarnation: deliveries to an earlier one are lost
	timer  time.Time
	linkUp bool
	// missing: the interface does not exist yet, sockets fail to open
	// until it comes up.
	missing   bool
	kernel    map[netip.Prefix]int // VIPs on the host: the incarnation that added each
	scriptOK  bool                 // what the script would answer now
	scriptRun bool                 // the core runs the script
	extUp     bool

	// Configuration knobs.
	prio    int
	grouped bool
	vi3     bool
	master  bool // state MASTER

	// What the audible-master invariant needs: since when the link is
	// up, since when each instance is MASTER, and the priority of its
	// adverts and since when it is unchanged.
	linkSince    time.Time
	masterSince  map[string]time.Time
	advPrio      map[string]int
	advPrioSince map[string]time.Time
}

type simItem struct {
	at   time.Time
	seq  int
	host int
	inc  int
	// A delivery (payload set) or a script run.
	payload  []byte
	src, dst netip.Addr
}

// simParams are one sequence's shared settings.
type simParams struct {
	version int
	advert  time.Duration
	weight  int // the script's weight (0: a failing script is a fault)
	rise    int
	fall    int
	extW    int
}

type nodeSim struct {
	rnd   *rand.Rand
	p     simParams
	now   time.Time
	hosts []*simHost
	q     []simItem // in time order
	seq   int
	steps int
	trace []string
	err   error

	// Network trouble.
	loss, dup float64
	maxDelay  time.Duration
	// calmSince: since when there has been no loss and no late delivery
	// (zero while there is).
	calmSince time.Time
}

var simVIPs = map[string]netip.Prefix{
	"VI_1": netip.MustParsePrefix("198.18.0.101/32"),
	"VI_2": netip.MustParsePrefix("198.18.0.102/32"),
	"VI_3": netip.MustParsePrefix("198.18.0.103/32"),
}

func (s *nodeSim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%9.3fs ", s.now.Sub(t0).Seconds())+fmt.Sprintf(format, args...))
}

func (s *nodeSim) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

func (s *nodeSim) config(h *simHost) Config {
	ext := s.p.extW
	inst := func(name string, vrid int) InstanceConfig {
		ic := InstanceConfig{Name: name, Interface: "eth0", VRID: vrid, Version: s.p.version, Priority: h.prio,
			AdvertInt: s.p.advert, VIPs: []VIP{{Prefix: simVIPs[name]}},
			TrackExternal: []TrackRef{{Name: "ext", Weight: &ext}}}
		if h.master {
			ic.State = "MASTER"
		}
		if !h.grouped || name == "VI_3" {
			ic.TrackScripts = []TrackRef{{Name: "chk"}}
		}
		return ic
	}
	cfg := Config{
		Instances: []InstanceConfig{inst("VI_1", 51), inst("VI_2", 52)},
		Scripts: []ScriptConfig{{Name: "chk", Script: "chk", Interval: s.p.advert, Weight: s.p.weight,
			Rise: s.p.rise, Fall: s.p.fall}},
	}
	if h.vi3 {
		cfg.Instances = append(cfg.Instances, inst("VI_3", 53))
	}
	if h.grouped {
		cfg.Groups = []GroupConfig{{Name: "G", Instances: []string{"VI_1", "VI_2"}, TrackScripts: []TrackRef{{Name: "chk"}}}}
	}
	if _, err := cfg.Validate(); err != nil {
		panic(err)
	}
	return cfg
}

func (s *nodeSim) facts(h *simHost) LinkFacts {
	return LinkFacts{Name: "eth0", Up: h.linkUp && !h.missing, Gone: h.missing, Addr4: h.addr}
}

func (s *nodeSim) step(h *simHost, in Input) {
	in.Now = s.now
	s.steps++
	var answers []Input
	for _, e := range h.core.Step(in) {
		s.exec(h, e, &answers)
	}
	for len(answers) > 0 {
		a := answers[0]
		answers = answers[1:]
		a.Now = s.now
		for _, e := range h.core.Step(a) {
			s.exec(h, e, &answers)
		}
	}
}

func (s *nodeSim) exec(h *simHost, e Effect, answers *[]Input) {
	switch e.Kind {
	case EffTimer:
		h.timer = e.At
	case EffSend:
		if !h.linkUp {
			return
		}
		if p, ok := h.advPrio[e.Instance]; !ok || p != int(e.Priority) {
			h.advPrio[e.Instance] = int(e.Priority)
			h.advPrioSince[e.Instance] = s.now
		}
		for _, o := range s.hosts {
			if o == h || !o.alive || !o.linkUp {
				continue
			}
			copies := 1
			if s.rnd.Float64() < s.dup {
				copies = 2
			}
			for range copies {
				if s.rnd.Float64() < s.loss {
					continue
				}
				d := 100*time.Microsecond + time.Duration(s.rnd.Int63n(int64(s.maxDelay)))
				s.push(simItem{at: s.now.Add(d), host: o.id, inc: o.inc, payload: e.Payload, src: e.Src, dst: e.Dst})
			}
		}
	case EffLog:
		if os.Getenv("SIMLOG") != "" {
			s.logf("h%d log %s", h.id, e.Msg)
		}
	case EffAddVIP:
		h.kernel[e.VIP.Prefix] = h.inc
	case EffRemoveVIP:
		delete(h.kernel, e.VIP.Prefix)
	case EffNotify:
		n := e.Notification
		if n.Type == "INSTANCE" && n.State == "MASTER" {
			for _, v := range n.VIPs {
				if _, ok := h.kernel[v]; !ok {
					s.failf("h%d: %s notified MASTER before its VIP %v is in place", h.id, n.Name, v)
				}
			}
		}
		s.logf("h%d notify %s %s %s->%s prio %d", h.id, n.Type, n.Name, n.Prev, n.State, n.Priority)
		if n.Type == "INSTANCE" {
			switch n.State {
			case "MASTER":
				s.checkAudible(h, n)
				h.masterSince[n.Name] = s.now
			case "MASTER_RX_LOWER_PRI", "MASTER_PRIORITY", "BACKUP_PRIORITY":
			default:
				delete(h.masterSince, n.Name)
			}
		}
	case EffListen:
		a := Input{Kind: InSocket, Sock: e.Sock, Group: e.Group}
		if h.missing {
			a.Err = "listen eth0: no such device (simulated)"
		}
		*answers = append(*answers, a)
	case EffRunScript:
		if !h.scriptRun {
			h.scriptRun = true
			s.push(simItem{at: s.now, host: h.id, inc: h.inc})
		}
	case EffStopScript:
		h.scriptRun = false
	}
}

// push queues an item in time order (ties: in the order pushed).
func (s *nodeSim) push(it simItem) {
	s.seq++
	it.seq = s.seq
	i, _ := slices.BinarySearchFunc(s.q, it, func(a, b simItem) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	s.q = slices.Insert(s.q, i, it)
}

// checkAudible fails when h becomes MASTER of n.Name while another host
// has been MASTER of it with a higher priority (or the same and a higher
// address) for a whole advert interval, on a calm network, both links
// up: h must have heard that master's adverts (delivered within
// ~1.1 ms), and one heard advert keeps a backup for three intervals.
func (s *nodeSim) checkAudible(h *simHost, n Notification) {
	w := s.p.advert + 2*time.Millisecond
	long := func(since time.Time) bool { return !since.IsZero() && s.now.Sub(since) >= w }
	if !long(s.calmSince) || !h.linkUp || h.missing || !long(h.linkSince) {
		return
	}
	for _, o := range s.hosts {
		if o == h || !o.alive || !o.linkUp || o.missing || !long(o.linkSince) {
			continue
		}
		since, ok := o.masterSince[n.Name]
		if !ok || !long(since) || !long(o.advPrioSince[n.Name]) {
			continue
		}
		p := o.advPrio[n.Name]
		if p > n.Priority || (p == n.Priority && o.addr.Compare(h.addr) > 0) {
			s.failf("h%d became MASTER of %s at priority %d while h%d has been master at %d since %.3fs, heard (%s)",
				h.id, n.Name, n.Priority, o.id, p, since.Sub(t0).Seconds(), s.describe())
		}
	}
}

func (s *nodeSim) start(h *simHost) {
	h.core = NewCore()
	h.masterSince, h.advPrio, h.advPrioSince = map[string]time.Time{}, map[string]int{}, map[string]time.Time{}
	h.alive = true
	h.inc++
	h.timer = time.Time{}
	h.scriptRun = false
	s.logf("h%d start prio %d grouped %v vi3 %v master %v missing %v", h.id, h.prio, h.grouped, h.vi3, h.master, h.missing)
	s.step(h, Input{Kind: InReload, Config: s.config(h), Links: []LinkFacts{s.facts(h)}})
	// The daemon reports an external object as soon as it knows it.
	s.step(h, Input{Kind: InExternal, Name: "ext", Up: h.extUp})
}

// run advances virtual time by d, delivering adverts, running scripts
// and firing timers in time order.
func (s *nodeSim) run(d time.Duration) {
	end := s.now.Add(d)
	for i := 0; s.err == nil; i++ {
		if i > 2_000_000 {
			s.failf("simulation does not settle (event storm)")
			return
		}
		var next *simHost
		for _, h := range s.hosts {
			if h.alive && !h.timer.IsZero() && (next == nil || h.timer.Before(next.timer)) {
				next = h
			}
		}
		if len(s.q) > 0 && (next == nil || !s.q[0].at.After(next.timer)) {
			if s.q[0].at.After(end) {
				break
			}
			it := s.q[0]
			s.q = s.q[1:]
			s.now = it.at
			h := s.hosts[it.host]
			if !h.alive || h.inc != it.inc {
				continue
			}
			if it.payload == nil {
				if h.scriptRun {
					s.step(h, Input{Kind: InScript, Name: "chk", OK: h.scriptOK, Detail: "simulated"})
					s.push(simItem{at: s.now.Add(s.p.advert), host: h.id, inc: h.inc})
				}
				continue
			}
			if h.linkUp {
				s.step(h, Input{Kind: InAdvert, Sock: SockKey{Iface: "eth0"},
					Packet: netif.Received{Payload: it.payload, Src: it.src, Dst: it.dst, TTL: 255, At: it.at}})
			}
			continue
		}
		if next == nil || next.timer.After(end) {
			break
		}
		if next.timer.After(s.now) {
			s.now = next.timer
		}
		s.step(next, Input{Kind: InTick})
	}
	s.now = end
}

// expected returns whether the host's instances must be in FAULT and at
// which effective priority they must be, from the sim's own knowledge
// of the tracked objects (keepalived's weight arithmetic).
func (s *nodeSim) expected(h *simHost) (fault bool, prio int) {
	fault = !h.linkUp || h.missing || (s.p.weight == 0 && !h.scriptOK)
	if h.prio == PriorityOwner {
		return fault, PriorityOwner
	}
	prio = h.prio
	switch {
	case s.p.weight > 0 && h.scriptOK, s.p.weight < 0 && !h.scriptOK:
		prio += s.p.weight
	}
	if s.p.extW < 0 && !h.extUp {
		prio += s.p.extW
	}
	return fault, min(max(prio, 1), PriorityOwner-1)
}

// check asserts the invariants of a settled network.
func (s *nodeSim) check() {
	type cand struct {
		h    *simHost
		st   InstanceStatus
		down bool
	}
	perVRID := map[string][]cand{}
	for _, h := range s.hosts {
		if !h.alive {
			continue
		}
		fault, prio := s.expected(h)
		states := map[string]string{}
		for _, st := range h.core.Status().Instances {
			states[st.Name] = st.State
			if (st.State == "FAULT") != fault {
				s.failf("h%d %s is %s (faults %v), expected fault=%v", h.id, st.Name, st.State, st.FaultReasons, fault)
			}
			if st.State != "FAULT" && st.State != "MASTER" && st.State != "BACKUP" {
				s.failf("h%d %s is %s", h.id, st.Name, st.State)
			}
			if st.EffectivePriority != prio {
				s.failf("h%d %s effective priority %d, expected %d (base %d, weight %d, script ok %v, external up %v)",
					h.id, st.Name, st.EffectivePriority, prio, h.prio, s.p.weight, h.scriptOK, h.extUp)
			}
			perVRID[st.Name] = append(perVRID[st.Name], cand{h: h, st: st, down: fault})
		}
		if h.grouped && states["VI_1"] != states["VI_2"] {
			s.failf("h%d: sync group split: VI_1 %s, VI_2 %s", h.id, states["VI_1"], states["VI_2"])
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range perVRID {
			if !yield(k) {
				return
			}
		}
	}) {
		best := -1
		var masters []cand
		for _, c := range perVRID[name] {
			if c.down {
				continue
			}
			best = max(best, c.st.EffectivePriority)
			if c.st.State == "MASTER" {
				masters = append(masters, c)
			}
		}
		for _, c := range perVRID[name] {
			_, holds := c.h.kernel[simVIPs[name]]
			if holds != (c.st.State == "MASTER") {
				s.failf("h%d %s is %s and holds its VIP: %v", c.h.id, name, c.st.State, holds)
			}
		}
		if best < 0 {
			continue
		}
		if len(masters) != 1 {
			s.failf("%s: %d masters (%s)", name, len(masters), s.describe())
			continue
		}
		if masters[0].st.EffectivePriority != best {
			s.failf("%s: master h%d has priority %d, best is %d (%s)", name, masters[0].h.id, masters[0].st.EffectivePriority, best, s.describe())
		}
	}
}

func (s *nodeSim) describe() string {
	var out []string
	for _, h := range s.hosts {
		if !h.alive {
			out = append(out, fmt.Sprintf("h%d:dead", h.id))
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "h%d(link %v):", h.id, h.linkUp)
		for _, st := range h.core.Status().Instances {
			fmt.Fprintf(&b, " %s=%s/%d", st.Name, st.State, st.EffectivePriority)
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

// stop stops a host cleanly and checks it left no VIP behind.
func (s *nodeSim) stop(h *simHost) {
	s.logf("h%d stop", h.id)
	s.step(h, Input{Kind: InStop})
	// A crashed incarnation's VIPs of an instance no longer configured
	// stay (as with keepalived): only this one's count.
	for v, inc := range h.kernel {
		if inc == h.inc {
			s.failf("h%d stopped with VIP %v left", h.id, v)
		}
	}
	h.alive = false
}

func (s *nodeSim) reload(h *simHost, what string) {
	s.logf("h%d reload: %s", h.id, what)
	if h.alive {
		s.step(h, Input{Kind: InReload, Config: s.config(h), Links: []LinkFacts{s.facts(h)}})
	}
}

// fault applies one random fault to a random host.
func (s *nodeSim) fault() {
	h := s.hosts[s.rnd.Intn(len(s.hosts))]
	switch k := s.rnd.Intn(13); {
	case k == 0 && h.alive:
		s.logf("h%d crash", h.id)
		h.alive = false
	case k == 1 && h.alive:
		s.stop(h)
	case k <= 2 && !h.alive:
		h.master = s.rnd.Intn(3) == 0
		h.missing = s.rnd.Intn(4) == 0
		s.start(h)
	case k == 3:
		h.linkUp = !h.linkUp
		if h.linkUp {
			h.missing = false
			h.linkSince = s.now
		}
		s.logf("h%d link %v", h.id, h.linkUp)
		if h.alive {
			s.step(h, Input{Kind: InLink, Link: s.facts(h)})
		}
	case k == 4 || k == 5:
		h.scriptOK = !h.scriptOK
		s.logf("h%d script ok %v", h.id, h.scriptOK)
	case k == 6:
		h.extUp = !h.extUp
		s.logf("h%d external up %v", h.id, h.extUp)
		if h.alive {
			s.step(h, Input{Kind: InExternal, Name: "ext", Up: h.extUp})
		}
	case k == 7:
		h.prio = s.randPrio()
		s.reload(h, fmt.Sprintf("priority %d", h.prio))
	case k == 8:
		h.vi3 = !h.vi3
		s.reload(h, fmt.Sprintf("VI_3 %v", h.vi3))
	case k == 9:
		h.grouped = !h.grouped
		s.reload(h, fmt.Sprintf("grouped %v", h.grouped))
	case k == 10:
		s.loss = []float64{0, 0.1, 0.3, 0.8}[s.rnd.Intn(4)]
		s.dup = []float64{0, 0.2, 0.5}[s.rnd.Intn(3)]
		prev := s.maxDelay
		s.maxDelay = []time.Duration{time.Millisecond, s.p.advert / 2, 2 * s.p.advert}[s.rnd.Intn(3)]
		s.setCalm(prev)
		s.logf("network loss %.1f dup %.1f delay up to %v", s.loss, s.dup, s.maxDelay)
	case k == 12 && h.missing:
		h.missing = false
		h.linkSince = s.now
		s.logf("h%d interface appears", h.id)
		if h.alive {
			s.step(h, Input{Kind: InLink, Link: s.facts(h)})
		}
	case k == 11 && h.alive:
		s.logf("h%d reload unchanged", h.id)
		s.reload(h, "unchanged")
	}
}

// setCalm notes when the network became calm (no loss, no late
// delivery, nothing late still in flight) or stopped being so; prev is
// the longest delay before the change.
func (s *nodeSim) setCalm(prev time.Duration) {
	switch calm := s.loss == 0 && s.maxDelay <= time.Millisecond; {
	case !calm:
		s.calmSince = time.Time{}
	case s.calmSince.IsZero():
		s.calmSince = s.now.Add(prev)
	}
}

// randPrio is a base priority; at most one host is the address owner.
func (s *nodeSim) randPrio() int {
	if s.rnd.Intn(10) == 0 && !slices.ContainsFunc(s.hosts, func(h *simHost) bool { return h.prio == PriorityOwner }) {
		return PriorityOwner
	}
	return 1 + s.rnd.Intn(254)
}

// sequence runs one fault sequence from seed and returns the first
// invariant it found broken.
func sequence(seed int64) (*nodeSim, error) {
	rnd := rand.New(rand.NewSource(seed))
	p := simParams{version: 2 + rnd.Intn(2), weight: []int{0, -60, -20, 20, 60}[rnd.Intn(5)],
		rise: 1 + rnd.Intn(3), fall: 1 + rnd.Intn(3), extW: []int{-30, -100}[rnd.Intn(2)]}
	p.advert = time.Second
	if p.version == 3 {
		p.advert = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second}[rnd.Intn(3)]
	}
	s := &nodeSim{rnd: rnd, p: p, now: t0, maxDelay: time.Millisecond, calmSince: t0}
	n := 2 + rnd.Intn(4)
	for i := range n {
		h := &simHost{id: i, addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), linkUp: true,
			kernel: map[netip.Prefix]int{}, scriptOK: rnd.Intn(4) != 0, extUp: true,
			grouped: rnd.Intn(2) == 0, master: rnd.Intn(3) == 0, linkSince: t0}
		s.hosts = append(s.hosts, h)
		h.prio = s.randPrio()
	}
	s.logf("version %d advert %v weight %d rise %d fall %d external weight %d", p.version, p.advert, p.weight, p.rise, p.fall, p.extW)
	for _, h := range s.hosts {
		s.start(h)
	}
	// Long enough for every down timer, script rise/fall and group wait.
	settle := time.Duration(3*(3+max(p.rise, p.fall))+2)*p.advert + time.Second
	for round := 0; round < 2 && s.err == nil; round++ {
		for range 1 + s.rnd.Intn(6) {
			s.fault()
			s.run(time.Duration(s.rnd.Int63n(int64(3 * p.advert))))
		}
		prev := s.maxDelay
		s.loss, s.dup, s.maxDelay = 0, 0, time.Millisecond
		s.setCalm(prev)
		s.logf("calm")
		s.run(settle)
		if s.err == nil {
			s.check()
		}
	}
	for _, h := range s.hosts {
		if h.alive && s.err == nil {
			s.stop(h)
		}
	}
	return s, s.err
}

func simBaseSeed(t *testing.T) int64 {
	if *simSeed != 0 {
		return *simSeed
	}
	if v := os.Getenv("VRRP_SIM_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("VRRP_SIM_SEED: %v", err)
		}
		return n
	}
	return time.Now().UnixNano()
}

// TestWholeNodeSimulation runs -vrrp.sequences random fault sequences
// (1,000 by default) from a base seed printed on failure; the failing
// sequence's seed replays it alone:
//
//	go test ./internal/vrrp -run TestWholeNodeSimulation -vrrp.seed=N -vrrp.sequences=1
func TestWholeNodeSimulation(t *testing.T) {
	t.Parallel()
	base := simBaseSeed(t)
	count := *simSequences
	steps := 0
	var virtual time.Duration
	for i := range count {
		seed := base + int64(i)
		s, err := sequence(seed)
		steps += s.steps
		virtual += s.now.Sub(t0)
		if err != nil {
			tr := s.trace
			if len(tr) > 80 {
				tr = tr[len(tr)-80:]
			}
			t.Fatalf("sequence %d: %v\nreplay: go test ./internal/vrrp -run TestWholeNodeSimulation -vrrp.seed=%d -vrrp.sequences=1 (or VRRP_SIM_SEED=%d)\ntrace:\n%s",
				i, err, seed, seed, strings.Join(tr, "\n"))
		}
	}
	t.Logf("base seed %d: %d sequences, %d steps, %v of virtual time", base, count, steps, virtual)
}
