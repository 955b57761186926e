package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/proctrack"
)

// Notification is a state change for notify scripts, SMTP alerts and the
// data plane: keepalived's notify arguments (TYPE NAME STATE PRIORITY).
type Notification struct {
	Time time.Time
	Type string // "INSTANCE" or "GROUP"
	Name string
	// State is MASTER, BACKUP, FAULT or STOP, or an event of an
	// instance: MASTER_RX_LOWER_PRI (keepalived's
	// notify_master_rx_lower_pri), MASTER_PRIORITY or BACKUP_PRIORITY
	// (notify_priority_changes: Priority is the new one).
	State    string
	Prev     string
	Priority int // effective priority
	// Reload marks a repeat of a state kept through a reload
	// (fifo_write_vrrp_states_on_reload): for the FIFOs only.
	Reload bool
	// Resumed marks the state an instance (or group) resumed in, handed
	// over by the previous process (vipctl upgrade): nothing changed on
	// the network; for the daemon's bookkeeping (routes, BGP, sync
	// daemon), not for scripts, FIFOs or mail.
	Resumed bool
	// VIPs of the instance (for the data plane).
	VIPs []netip.Prefix
}

// Notifier receives notifications in the order they happen. Notify is
// called from the VRRP goroutine and must not block: queue the work.
type Notifier interface {
	Notify(Notification)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Notification)

// Notify calls f.
func (f NotifierFunc) Notify(n Notification) { f(n) }

// Deps are the node's collaborators.
type Deps struct {
	Logger   *slog.Logger // nil: slog.Default()
	Notifier Notifier     // nil: none
	Host     Host         // nil: NewNetifHost()
}

// Node runs a configuration's VRRP instances over real sockets and
// timers: it is the driver of a Core. It feeds the core what happens
// (adverts with their arrival time, timer expiries, link changes, script
// results, reloads) and carries out the effects the core returns, through
// a Host. All its state belongs to the goroutine of Run; the other
// methods send it requests.
type Node struct {
	log      *slog.Logger
	notifier Notifier
	host     Host
	cfg      Config
	inbox    chan func()   // work for Run's goroutine, with a wake-up on efd
	running  chan struct{} // closed when Run's loop runs
	done     chan struct{} // closed when Run returns
	efdMu    sync.Mutex
	efd      int // eventfd that wakes the loop; -1 once closed

	// Owned by Run's goroutine.
	core     *Core
	deadline time.Time // of the core's timer (EffTimer)
	delayed  bool      // the startup delay has not passed: the core has not started
	answers  []Input   // the driver's answers to effects, stepped next
	socks    map[SockKey]*sock
	scripts  map[string]*scriptRunner
	files    map[string]*fileRunner
	procMon  *proctrack.Monitor
	limiter  logLimiter // for errors of the host
	ctx      context.Context
	readBuf  []byte
	stopping bool
	rtStop   chan struct{} // ends the ProcessRealtime scans
	rtDone   chan struct{}
	// resume: the states handed over by the previous process, for the
	// first reload (SetResume); handoff: Handoff asked Run to return
	// without a word to the network.
	resume  map[string]Resume
	handoff bool
}

type sock struct {
	key    SockKey
	conn   Conn
	joined map[netip.Addr]bool
}

// New checks the configuration and returns a node ready to Run.
func New(cfg Config, deps Deps) (*Node, error) {
	cfg = cfg.clone()
	warnings, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	n := &Node{
		log: deps.Logger, notifier: deps.Notifier, host: deps.Host, cfg: cfg,
		inbox: make(chan func(), 1024), running: make(chan struct{}), done: make(chan struct{}), efd: -1,
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.host == nil {
		n.host = NewNetifHost()
	}
	for _, w := range warnings {
		n.log.Warn(w)
	}
	return n, nil
}

// Reload applies a changed configuration without disturbing what did not
// change: an instance with the same name, interface, VRID, version,
// family and unicast/multicast mode keeps its state (no VIP flap, no
// extra GARP); its other settings change in place. An invalid
// configuration is refused and the running one kept.
func (n *Node) Reload(cfg Config) error {
	cfg = cfg.clone()
	warnings, err := cfg.Validate()
	if err != nil {
		return err
	}
	return n.call(func() {
		for _, w := range warnings {
			n.log.Warn(w)
		}
		sched := cfg.RTPriority != n.cfg.RTPriority || cfg.NoRealtime != n.cfg.NoRealtime || cfg.ProcessRealtime != n.cfg.ProcessRealtime
		n.cfg = cfg
		if sched {
			n.setScheduling() // vrrp_rt_priority changed
		}
		n.reload(cfg)
	})
}

// SetResume makes Run resume the named instances in the given states
// rather than start them (no startup delay, no listen before claiming,
// no GARP): the states another process handed over (Handoff). Call it
// before Run.
func (n *Node) SetResume(r map[string]Resume) { n.resume = r }

// Handoff stops Run as if the process vanished, for a process that
// takes over (vipctl upgrade): a master sends no priority 0 advert and
// keeps its VIPs, nothing is notified; sockets, scripts and file watches
// close. It returns the states of the instances, taken at the moment
// the loop stopped, and waits until Run has returned.
func (n *Node) Handoff() (map[string]Resume, error) {
	var r map[string]Resume
	if err := n.call(func() {
		r = n.core.Resumable()
		n.handoff = true
	}); err != nil {
		return nil, err
	}
	<-n.done
	return r, nil
}

// detach is Handoff's end of Run: the core stops its scripts and
// sockets; the VIPs stay.
func (n *Node) detach() {
	n.step(Input{Kind: InDetach, Now: time.Now()})
	for _, s := range n.socks {
		s.conn.Close()
	}
	for name := range n.scripts {
		n.stopScript(name)
	}
	for name := range n.files {
		n.stopFile(name)
	}
	n.host.Close()
}

// reload gathers the facts the core needs about cfg's interfaces and
// track files, and steps it.
func (n *Node) reload(cfg Config) {
	if n.delayed {
		// vrrp_startup_delay: Run starts n.cfg when the delay is over.
		return
	}
	in := Input{Kind: InReload, Now: time.Now(), Config: cfg, Files: map[string]int{}, Resume: n.resume}
	n.resume = nil
	for _, name := range Interfaces(cfg) {
		in.Links = append(in.Links, n.host.Link(name))
	}
	for _, fc := range cfg.TrackFiles {
		in.Files[fc.Name] = readTrackFile(fc.Path)
	}
	n.step(in)
}

// SetTrack reports the state of an object instances list in
// track_external (e.g. a virtual server's quorum): up or down.
func (n *Node) SetTrack(name string, up bool) error {
	return n.call(func() { n.step(Input{Kind: InExternal, Now: time.Now(), Name: name, Up: up}) })
}

// step feeds the core one input, carries out its effects, then feeds it
// the answers those effects produced.
func (n *Node) step(in Input) {
	n.exec(n.core.Step(in))
	for len(n.answers) > 0 {
		a := n.answers[0]
		n.answers = n.answers[1:]
		n.exec(n.core.Step(a))
	}
}

func (n *Node) exec(effects []Effect) {
	for _, e := range effects {
		switch e.Kind {
		case EffLog:
			n.log.Log(context.Background(), e.Level, e.Msg)
		case EffSend:
			n.send(e)
		case EffAddVIP:
			if err := n.host.AddVIP(e.VIP); err != nil {
				n.log.Error(fmt.Sprintf("(%s) %v", e.Instance, err))
			}
		case EffRemoveVIP:
			n.removeVIP(e)
		case EffGARP:
			if err := n.host.Announce(e.VIP.Dev, e.VIP.Prefix.Addr(), e.Count, n.cfg.GARPInterval); err != nil {
				n.logLimited("garp:"+e.Instance, fmt.Sprintf("(%s) %v", e.Instance, err))
			}
		case EffNotify:
			if n.notifier != nil {
				n.notifier.Notify(e.Notification)
			}
		case EffListen:
			n.listen(e.Sock, e.Group)
		case EffUnlisten:
			if s := n.socks[e.Sock]; s != nil {
				s.conn.Close()
				delete(n.socks, e.Sock)
			}
		case EffRunScript:
			n.stopScript(e.Script.Name)
			n.startScript(e.Script)
		case EffStopScript:
			n.stopScript(e.Name)
		case EffWatchFile:
			n.stopFile(e.File.Name)
			n.startFile(e.File)
		case EffStopFile:
			n.stopFile(e.Name)
		case EffTrackProcesses:
			n.trackProcesses(e.Processes)
		case EffTimer:
			n.deadline = e.At
		case EffAddVMAC:
			// A failure shows as the instance's socket error (FAULT).
			if err := n.host.AddVMAC(e.VMAC); err != nil {
				n.log.Error(fmt.Sprintf("(%s) %v", e.Instance, err))
			} else {
				n.log.Info(fmt.Sprintf("(%s) VMAC %s up on %s with MAC %s", e.Instance, e.VMAC.Name, e.VMAC.Base, e.VMAC.MAC))
			}
		case EffRemoveVMAC:
			if err := n.host.RemoveVMAC(e.Name); err != nil {
				n.log.Error(fmt.Sprintf("(%s) %v", e.Instance, err))
			}
		}
	}
}

func (n *Node) removeVIP(e Effect) {
	var err error
	if e.Stale {
		var removed bool
		removed, err = n.host.RemoveStaleVIP(e.VIP)
		if removed {
			n.log.Info(fmt.Sprintf("(%s) removed stale VIP %v from %s", e.Instance, e.VIP.Prefix.Addr(), e.VIP.Dev))
		}
	} else {
		err = n.host.RemoveVIP(e.VIP)
	}
	if err != nil {
		n.log.Error(fmt.Sprintf("(%s) %v", e.Instance, err))
	}
}

// listen opens the socket if needed and joins group (if valid), and
// queues the answer for the core.
func (n *Node) listen(key SockKey, group netip.Addr) {
	answer := Input{Kind: InSocket, Now: time.Now(), Sock: key, Group: group}
	defer func() { n.answers = append(n.answers, answer) }()
	s := n.socks[key]
	if s == nil {
		conn, err := n.host.Listen(key.Iface, key.V6)
		if err != nil {
			answer.Err = err.Error()
			return
		}
		s = &sock{key: key, conn: conn, joined: map[netip.Addr]bool{}}
		n.socks[key] = s
	}
	if group.IsValid() && !s.joined[group] {
		if err := s.conn.Join(group); err != nil {
			answer.Err = err.Error()
			return
		}
		s.joined[group] = true
	}
}

func (n *Node) send(e Effect) {
	s := n.socks[e.Sock]
	if s == nil {
		return
	}
	// A priority 0 advert on a link that is down is expected to fail.
	if err := s.conn.Write(e.Payload, e.Src, e.Dst, e.TTL); err != nil && e.Priority != 0 {
		n.logLimited("send:"+e.Instance, fmt.Sprintf("(%s): send advert error %v", e.Instance, err))
	}
}

// logLimited logs errors of the host at most once per 10 s per key.
func (n *Node) logLimited(key, msg string) {
	if msg, ok := n.limiter.pass(key, msg, time.Now()); ok {
		n.log.Info(msg)
	}
}

func (n *Node) linkChanged(st netif.LinkState) {
	f := LinkFacts{Name: st.Name, Up: st.Up, Gone: st.Gone}
	if st.Up && n.core.Uses(st.Name) {
		f = n.host.Link(st.Name)
		f.Up, f.Gone = st.Up, st.Gone
	}
	n.step(Input{Kind: InLink, Now: time.Now(), Link: f})
}

// addrsChanged reads again the addresses of the interfaces whose
// instances track their source address (track_src_ip), and reports
// them; the core ignores what did not change (VIPs come and go too).
// Instances without track_src_ip cost nothing here.
func (n *Node) addrsChanged() {
	if n.core == nil || n.delayed {
		return
	}
	seen := map[string]bool{}
	for _, ic := range n.cfg.Instances {
		if !ic.TrackSrcIP || seen[ic.Interface] || !(ic.UnicastSrcIP.IsValid() || ic.McastSrcIP.IsValid()) {
			continue
		}
		seen[ic.Interface] = true
		f := n.host.Link(ic.Interface)
		n.step(Input{Kind: InAddrs, Now: time.Now(), Link: LinkFacts{Name: ic.Interface, Addrs: f.Addrs}})
	}
}

func (n *Node) shutdown() {
	n.step(Input{Kind: InStop, Now: time.Now()})
	// Whatever the core did not remove (it removes all it added).
	if err := n.host.RemoveAllVIPs(); err != nil {
		n.log.Error(fmt.Sprintf("vrrp: %v", err))
	}
	for _, s := range n.socks {
		s.conn.Close()
	}
	if err := n.host.RemoveAllVMACs(); err != nil {
		n.log.Error(fmt.Sprintf("vrrp: %v", err))
	}
	for name := range n.scripts {
		n.stopScript(name)
	}
	for name := range n.files {
		n.stopFile(name)
	}
	n.host.Close()
}

// Status returns a snapshot (empty when the node is not running).
func (n *Node) Status() Status {
	var st Status
	_ = n.call(func() { st = n.core.Status() })
	return st
}

// Wait blocks until Run has returned.
func (n *Node) Wait() { <-n.done }
