// Package daemon wires vipd together: it loads keepalived.conf, runs VRRP,
// the health checkers and a data plane, turns check results into the
// desired virtual services, serves the control API and reloads without
// disturbing what did not change.
//
// One goroutine (the loop) owns the configuration, the real servers'
// health and the quorum states; checkers, VRRP and the API talk to it
// through one ordered queue, so there is no shared mutable state to lock.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/dataplane/proxy"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/notify"
	"github.com/vipd/vipd/internal/vrrp"
)

// Options are the daemon's command-line settings.
type Options struct {
	ConfigFile string
	ConfigID   string
	// Dataplane: "" (the configuration's vipd_dataplane, else auto),
	// auto, proxy, ipvs or xdp.
	Dataplane string
	// KeepalivedVersion: judge the configuration as keepalived 2.2
	// ("", the default) or 2.4 does (config.Options.KeepalivedVersion).
	KeepalivedVersion string
	Control           string // unix socket of the control API ("" = none)
	Metrics           string // listen address of metrics and status page ("" = none)
	PIDFile           string // "" = none
	DataFile          string // SIGUSR1 dump; default /tmp/vipd.data
	StatsFile         string // SIGUSR2 dump; default /tmp/vipd.stats
	IPVSState         string // ownership record of the ipvs data plane; default /run/vipd/ipvs.json
	XDPPins           string // bpffs directory of the xdp data plane's maps; default /sys/fs/bpf/vipd
	VRRPOnly          bool   // -P
	CheckOnly         bool   // -C
	Version           string
	Logger            *slog.Logger
	// Handover, when set, is the previous process handing over (vipctl
	// upgrade, takeover.go): Run takes its sockets and state.
	Handover *Handover

	// XDPIfaces get the xdp program besides the interfaces real servers
	// are reached through (a director whose VIP traffic comes in on
	// another interface).
	XDPIfaces []string
}

// Daemon is a running vipd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	// dpName is the data plane: resolved by New, before any goroutine
	// starts, and never written again, so API goroutines read it freely
	// (a reload cannot change the data plane).
	dpName string
	// openDP, when set (by tests), starts a stand-in data plane instead
	// of dataplanes[dpName].
	openDP func() (dataplane.Dataplane, error)

	in   *inbox        // functions the loop goroutine runs, in order
	quit chan struct{} // closed when the loop has returned

	// Owned by the loop goroutine.
	gen     *generation       // the running configuration and what was built from it
	local   map[hostAddr]bool // the host's addresses, for ha_suspend (hasuspend.go); nil: not watched
	health  map[string]health
	quorum  map[string]bool
	node    *vrrp.Node
	promote *promoter // promote_secondaries set by vipd, reset at stop
	memLock *memLock  // vrrp_no_swap
	// trackMu orders the track_group states (trackUp) handed to VRRP.
	trackMu  sync.Mutex
	trackUp  map[string]bool
	nodeDone chan struct{}
	stopNode context.CancelFunc
	runner   *check.Runner
	stopRun  context.CancelFunc
	runDone  chan struct{}
	dp       dataplane.Dataplane
	notifier *notify.Notifier
	routing  *routing   // static addresses/routes/rules, virtual routes/rules (static.go)
	bgp      *bgpDriver // BGP speaker (bgp.go); nil without a bgp block
	bfd      *bfdDriver // BFD sessions (bfd.go); nil without bfd_instance

	// Upgrade (upgrade.go): one at a time; handedOver is closed once the
	// next process took over.
	upgrading  atomic.Bool
	handedOver chan struct{}
	handOnce   sync.Once

	// Read by API goroutines.
	mu   sync.Mutex
	snap snapshot
	// The control and metrics listeners, for an upgrade to pass on.
	ctlLn, webLn net.Listener
}

// snapshot is what API readers see of the loop's state.
type snapshot struct {
	cfg           *config.Config
	health        map[string]health
	loaded        time.Time
	reloads       uint64
	reloadResults map[string]uint64 // by api.ReloadOK, ...
	// upgradeResults counts vipctl upgrade attempts by result (ok,
	// failed).
	upgradeResults map[string]uint64
	ready          error
	rsOfName       map[string]rsRef
	quorum         map[string]bool // by the API's virtual_server name
	notifier       *notify.Notifier
	runner         *check.Runner
	dp             dataplane.Dataplane // safe for concurrent reads (the interface's promise)
	// bgp.go's driver and the policy's decisions.
	bgp          *bgpDriver
	bgpDecisions []bgp.Decision
	bfd          *bfdDriver
}

// rsRef locates a check server in the configuration.
type rsRef struct {
	vs string
	rs string
}

// New loads and validates the configuration and builds what it runs
// (the first generation); it starts nothing.
func New(opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DataFile == "" {
		opts.DataFile = "/tmp/vipd.data"
	}
	if opts.StatsFile == "" {
		opts.StatsFile = "/tmp/vipd.stats"
	}
	if opts.IPVSState == "" {
		opts.IPVSState = "/run/vipd/ipvs.json"
	}
	d := &Daemon{opts: opts, log: opts.Logger, started: time.Now(), in: newInbox(), quit: make(chan struct{}), handedOver: make(chan struct{})}
	d.dpName = d.chooseDataplane()
	cfg, known, err := d.load(false)
	if err != nil {
		return nil, err
	}
	if d.gen, err = d.build(cfg, known); err != nil {
		return nil, err
	}
	return d, nil
}

// chooseDataplane resolves the data plane once: the command line's, else
// the configuration's vipd_dataplane, else auto ("" when no virtual
// servers run: they are then judged as keepalived -t does).
func (d *Daemon) chooseDataplane() string {
	if d.opts.VRRPOnly {
		return ""
	}
	dp := d.opts.Dataplane
	if dp == "" {
		// The data plane may come from the configuration itself, so
		// peek at it before validating for it.
		if c, _ := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID, KeepalivedVersion: d.opts.KeepalivedVersion}); c != nil {
			dp = c.Global.Dataplane
		}
	}
	return resolveDataplane(dp, d.needsKernel())
}

// load reads the configuration for the resolved data plane.
//
// It refuses (with an *api.ConfigError naming every file:line) what
// cannot run: findings that block (fatal, refused features), and, on a
// reload, errors the running configuration did not have, so a mistake
// made while editing never goes live. Other errors are logged and the
// item is dropped, as keepalived does: a configuration keepalived runs
// (the CentOS default's vrrp_garp_interval 0, say) runs.
func (d *Daemon) load(reload bool) (*config.Config, map[string]bool, error) {
	cfg, diags := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID, Dataplane: d.dpName, Host: config.OSHost{}, KeepalivedVersion: d.opts.KeepalivedVersion, Daemon: true})
	var refuse, logged []string
	known := map[string]bool{}
	for _, dg := range diags.Sorted() {
		key := dg.Keyword + "\x00" + dg.Msg
		switch {
		case dg.Blocking():
			refuse = append(refuse, dg.String())
		case dg.Severity >= config.Error:
			known[key] = true
			if reload && !d.gen.known[key] {
				refuse = append(refuse, dg.String())
			} else {
				logged = append(logged, dg.String())
			}
		default:
			// Warnings, and vipd's notices (keywords ignored or not
			// implemented yet): the operator should see both.
			d.log.Warn(dg.String())
		}
	}
	if cfg == nil && len(refuse) == 0 {
		refuse = append(refuse, fmt.Sprintf("%s: cannot read the configuration", d.opts.ConfigFile))
	}
	if len(refuse) > 0 {
		return nil, nil, &api.ConfigError{Diagnostics: refuse}
	}
	for _, e := range logged {
		d.log.Error(e)
	}
	if len(logged) > 0 {
		d.log.Error(fmt.Sprintf("the configuration has %d errors: the items named are dropped, as keepalived drops them (vipd -t lists them)", len(logged)))
	}
	return cfg, known, nil
}

// resolveDataplane turns "auto" (or nothing) into ipvs when the kernel
// has IPVS, loading the module first when the configuration needs the
// kernel (DR, TUN or fwmark), and into proxy otherwise.
func resolveDataplane(name string, needsKernel bool) string {
	if _, ok := dataplanes[name]; ok {
		return name
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return config.DataplaneIPVS
	}
	if needsKernel {
		if err := exec.Command("modprobe", "ip_vs").Run(); err == nil {
			if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
				return config.DataplaneIPVS
			}
		}
	}
	return config.DataplaneProxy
}

// needsKernel reports whether the configuration file has virtual servers
// only the kernel can run: DR or TUN real servers, or fwmark services.
func (d *Daemon) needsKernel() bool {
	c, _ := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID, KeepalivedVersion: d.opts.KeepalivedVersion})
	if c == nil {
		return false
	}
	for _, vs := range c.VirtualServers {
		if vs.Kind == config.VSFWMark {
			return true
		}
		for _, rs := range vs.RealServers {
			if rs.Method.Forward != lvs.Masq {
				return true
			}
		}
	}
	for _, g := range c.VSGroups {
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				return true
			}
		}
	}
	return false
}

// Run starts everything and runs until ctx is done, then stops cleanly:
// VRRP first (priority 0 adverts, VIPs removed, so a backup takes over at
// once), then checkers, data plane and notifications.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.log.Info(fmt.Sprintf("Starting vipd %s (data plane %s)", d.opts.Version, d.dpName))
	ho := d.opts.Handover
	var resumeChecks map[check.CheckerKey]bool
	var resumeVRRP map[string]vrrp.Resume
	if ho != nil {
		// The configuration is loaded (New): the previous process stops
		// and sends its state.
		if err := ho.ready(d.opts.Version); err != nil {
			return d.takeoverFail("receive the state", err)
		}
		resumeChecks, resumeVRRP = d.resumed(ho.state)
		d.log.Info(fmt.Sprintf("Taking over from vipd pid %d: %d VRRP instances, %d checkers", ho.PreviousPID(), len(resumeVRRP), len(resumeChecks)))
	}
	if d.opts.PIDFile != "" {
		prev := 0
		if ho != nil {
			prev = ho.PreviousPID()
		}
		if err := writePIDFile(d.opts.PIDFile, prev); err != nil {
			return d.takeoverFail("write the pid file", err)
		}
		defer func() {
			if !d.handedOverNow() {
				os.Remove(d.opts.PIDFile)
			}
		}()
	}
	g := d.gen
	// startup_script runs before anything starts, shutdown_script after
	// everything has stopped (the first defer runs last); across an
	// upgrade neither runs: vipd did not start or stop.
	if ho == nil {
		d.globalScript("startup", g.cfg.Global.StartupScript, g.cfg.Global.StartupTimeout, g.notifyCf)
	}
	defer func() {
		if d.handedOverNow() {
			return
		}
		// The running generation's, as keepalived's last configuration.
		gl := d.gen.cfg.Global
		d.globalScript("shutdown", gl.ShutdownScript, gl.ShutdownTimeout, d.gen.notifyCf)
	}()
	if d.notifier, err = notify.New(g.notifyCf); err != nil {
		return d.takeoverFail("start notifications", fmt.Errorf("notifications: %w", err))
	}
	d.publish(errors.New("starting"))
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.notifier.Close(cctx)
	}()
	if !d.opts.CheckOnly {
		d.routing = startRouting(g.cfg, d.log, d.trackGroup)
		defer func() {
			if d.handedOverNow() {
				d.routing.abandon()
			} else {
				d.routing.stop()
			}
		}()
	}

	if !d.opts.VRRPOnly {
		if d.dp, err = d.newDataplane(); err != nil {
			return d.takeoverFail("start the data plane", err)
		}
		if g.cfg.Global.LVSFlush && ho == nil {
			// Not on an upgrade: the table is the old process's, to adopt.
			d.flushIPVS("lvs_flush")
		}
		defer func() {
			if d.handedOverNow() {
				// The new process owns the data plane now: no flush.
				d.releaseDataplane()
			} else if d.gen.cfg.Global.LVSFlushOnStop == "all" {
				// lvs_flush_on_stop (the running generation's): the whole
				// table at once. With VS, vipd's own services go one by one
				// without their real servers first, which is what Close
				// does anyway.
				d.flushIPVS("lvs_flush_on_stop")
			}
			if cerr := d.dp.Close(); cerr != nil {
				d.log.Warn("closing the data plane", "err", cerr)
			}
		}()
		if px, ok := d.dp.(*proxy.Dataplane); ok && ho != nil {
			if err := ho.proxySockets(px); err != nil {
				return d.takeoverFail("adopt the proxy's sockets", err)
			}
		}
	}

	// Health starts as the checkers will report it (up unless alpha), so
	// the first Apply is right before the first check completes.
	d.health, d.quorum = g.health, g.quorum
	for _, p := range g.plans {
		if ho == nil && (p.cfg.QuorumUp != nil || p.cfg.QuorumDown != nil || p.cfg.SorryServer != nil) {
			d.quorumEvent(p, d.quorum[p.name], quorumSum(p, d.health), true, false)
		}
	}
	if d.dp != nil {
		if err := d.applyServices(g.desired); err != nil {
			return d.takeoverFail("apply the services", err)
		}
		if px, ok := d.dp.(*proxy.Dataplane); ok && ho != nil {
			if n := px.ReleaseInherited(); n > 0 {
				d.log.Info(fmt.Sprintf("upgrade: closed %d passed sockets of services the configuration no longer has", n))
			}
		}
		if g.cfg.Global.LVSSyncDaemon != nil {
			// Backup until VRRP says master, as keepalived starts it
			// (across an upgrade the resumed states set it).
			if ho == nil {
				d.syncDaemonState("INIT")
			}
			defer func() {
				if !d.handedOverNow() {
					d.syncDaemonState("STOP")
				}
			}()
		}
	}

	if !d.opts.CheckOnly {
		// promote_secondaries: on before the instances start, back
		// off after VRRP has stopped (defers run in reverse).
		d.promote = newPromoter(d.log)
		d.promote.apply(g.cfg)
		defer func() {
			if !d.handedOverNow() {
				d.promote.reset()
			}
		}()
	}

	if !d.opts.CheckOnly {
		d.memLock = newMemLock(d.log)
		d.memLock.apply(g.cfg.Global.VRRPNoSwap)
		defer d.memLock.apply(false)
	}

	// Like keepalived, no VRRP runs without a vrrp_instance (a reload
	// that adds one starts it).
	if g.vrrp != nil {
		d.node, err = vrrp.New(*g.vrrp, vrrp.Deps{Logger: d.log, Notifier: vrrp.NotifierFunc(d.vrrpNotify)})
		if err != nil {
			return d.takeoverFail("start VRRP", err)
		}
		if ho != nil {
			d.node.SetResume(resumeVRRP)
		}
	}

	defer func() { d.in.close(); close(d.quit) }()
	if !d.opts.VRRPOnly {
		// ha_suspend follows the host's addresses.
		addrCtx, stopAddrs := context.WithCancel(context.Background())
		defer stopAddrs()
		if err := d.watchAddrs(addrCtx); err != nil {
			d.log.Error(err.Error() + "; ha_suspend suspends nothing")
			d.local = nil
		}
		d.markSuspended(g.plans, g.servers)
		d.startRunner(g.servers, resumeChecks)
		defer d.stopRunner()
		d.applySuspend(g.plans, true)
	}
	d.startBGP(nil)
	defer d.stopBGP(true)
	d.startBFD(g.cfg)
	// Registered before stopVRRP's defer, so it runs after it: the
	// instances leave first, then the BFD peers hear AdminDown.
	defer d.stopBFD()
	if d.node != nil {
		d.startVRRP()
		d.replayTrackGroups(d.node)
		if d.bfd != nil {
			d.bfd.replay(d.node, true)
		}
	}
	defer d.stopVRRP()

	d.publish(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	if d.opts.Control != "" {
		ln, err := d.controlListener()
		if err != nil {
			return d.takeoverFail("open the control socket", fmt.Errorf("control socket: %w", err))
		}
		d.mu.Lock()
		d.ctlLn = ln
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if !d.handedOverNow() {
					os.Remove(d.opts.Control)
				}
			}()
			if err := api.Serve(apiCtx, ln, (*source)(d)); err != nil && !errors.Is(err, context.Canceled) && !d.handedOverNow() {
				d.log.Error("control API stopped", "err", err)
			}
		}()
	}
	if d.opts.Metrics != "" {
		ln, err := d.metricsListener()
		if err != nil {
			return d.takeoverFail("open the metrics listener", fmt.Errorf("metrics listener: %w", err))
		}
		d.mu.Lock()
		d.webLn = ln
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := api.ServeWeb(apiCtx, ln, (*source)(d), api.WebOptions{Logger: d.log}); err != nil && !errors.Is(err, context.Canceled) && !d.handedOverNow() {
				d.log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	if ho != nil {
		ho.closeUnused()
		if err := ho.finish(); err != nil {
			// The previous process takes everything back and kills
			// this one.
			return d.takeoverFail("say done", err)
		}
		d.log.Info(fmt.Sprintf("Took over from vipd pid %d", ho.PreviousPID()))
		// The previous process tells systemd this one is the main
		// process (MAINPID=); READY=1 from here would be refused.
	} else {
		sdNotify("READY=1\nSTATUS=running")
	}

	for {
		select {
		case <-d.handedOver:
			d.log.Info("Handed over to the new vipd: not accepting any more")
			if kl, ok := d.ctlLn.(interface{ KeepFile() }); ok {
				kl.KeepFile()
			}
			stopAPI()
			d.drain(ctx)
			return nil
		case <-ctx.Done():
			sdNotify("STOPPING=1")
			d.log.Info("Stopping")
			d.publish(errors.New("stopping"))
			stopAPI()
			// BGP routes go first (GRACEFUL_SHUTDOWN, a pause, the
			// withdrawal) while the data plane still forwards.
			d.stopBGP(true)
			// VRRP goes first: priority 0 adverts and the VIPs removed,
			// so a backup takes over while the rest shuts down.
			d.stopVRRP()
			d.stopRunner()
			for _, p := range d.gen.plans {
				if p.cfg.Omega {
					d.quorumEvent(p, false, 0, false, true)
				}
			}
			return nil
		case <-d.in.ready:
			d.in.serve()
		}
	}
}

// flushIPVS empties the kernel's IPVS table (lvs_flush, lvs_flush_on_stop)
// when the data plane is ipvs; the other data planes have no IPVS table
// of their own to flush, and vipd leaves the kernel's alone.
func (d *Daemon) flushIPVS(why string) {
	f, ok := d.dp.(interface{ Flush() error })
	if !ok {
		d.log.Info(why + ": the " + d.dpName + " data plane has no IPVS table; nothing flushed")
		return
	}
	if err := f.Flush(); err != nil {
		d.log.Error(why, "err", err)
	}
}

// startVRRP runs the VRRP node in a goroutine of its own.
func (d *Daemon) startVRRP() {
	d.nodeDone = make(chan struct{})
	var nodeCtx context.Context
	nodeCtx, d.stopNode = context.WithCancel(context.Background())
	node, done := d.node, d.nodeDone
	go func() {
		defer close(done)
		if err := node.Run(nodeCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("VRRP stopped", "err", err)
		}
	}()
}

// stopVRRP stops the VRRP node and waits until it has sent its priority
// 0 adverts and removed its VIPs. The VRRP goroutine may be handing us a
// request meanwhile, so requests are served while waiting.
func (d *Daemon) stopVRRP() {
	if d.stopNode == nil {
		return
	}
	d.stopNode()
	d.stopNode = nil
	for {
		select {
		case <-d.nodeDone:
			return
		case <-d.in.ready:
			d.in.serve()
		}
	}
}

// scriptPolicy applies keepalived's script security to the scripts vipd
// runs itself (vrrp_script, MISC_CHECK), as the notify package does to
// notify scripts, and resolves the user they run as.
func (d *Daemon) scriptPolicy(c *config.Config) scriptPolicy {
	nc := notifyConfig(c, d.log)
	return func(s *config.Script) (*syscall.Credential, error) {
		if ns := notifyScript(s); ns != nil {
			if err := notify.CheckScript(ns, nc); err != nil {
				return nil, err
			}
		}
		return scriptCredential(c, s)
	}
}

// startRunner starts a check runner for servers; its events come to the
// loop. Its checkers start with the verdicts in resume (handed over by
// the previous process; nil at an ordinary start).
func (d *Daemon) startRunner(servers []check.Server, resume map[check.CheckerKey]bool) {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopRun = cancel
	d.runDone = make(chan struct{})
	d.runner = check.NewRunner(servers, check.Options{
		Logger: d.log,
		Resume: resume,
		OnEvent: func(ev check.Event) {
			// The runner must not block on us for long; the loop is
			// quick, and runs until the runner is stopped.
			d.do(func() { d.checkEvent(ev) })
		},
	})
	done := d.runDone
	go func() {
		defer close(done)
		if err := d.runner.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("health checks stopped", "err", err)
		}
	}()
}

func (d *Daemon) stopRunner() {
	if d.stopRun == nil {
		return
	}
	d.stopRun()
	// The runner may be blocked handing us an event: serve requests
	// while waiting for it to finish.
	for {
		select {
		case <-d.runDone:
			d.stopRun = nil
			return
		case <-d.in.ready:
			d.in.serve()
		}
	}
}

// do queues f for the loop goroutine, after everything queued before
// it; it never blocks. After the loop has returned, f is dropped.
func (d *Daemon) do(f func()) { d.in.push(f) }

// call runs f on the loop goroutine and waits for it, or for ctx (f may
// then still run).
func (d *Daemon) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	if !d.in.push(func() { f(); close(done) }) {
		return errors.New("vipd is stopping")
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.quit:
		return errors.New("vipd is stopping")
	}
}

// checkEvent handles a real server's state change from the checkers.
func (d *Daemon) checkEvent(ev check.Event) {
	prev, known := d.health[ev.Server]
	now := health{up: ev.Up, weight: ev.Weight}
	if known && ev.Kind == check.ServerInitial && ev.Up && d.gen.cfg.Global.RSInitNotifies {
		d.rsInitNotify(ev)
	}
	if !known || prev == now {
		return // a server a reload removed, or nothing new
	}
	d.health[ev.Server] = now
	for _, p := range d.gen.plans {
		for _, rs := range p.rss {
			if rs.check != ev.Server {
				continue
			}
			if prev.up != now.up && ev.Kind != check.ServerInitial {
				verb := "Removing"
				if now.up {
					verb = "Adding"
				}
				if !now.up && rs.cfg.Check.InhibitOnFailure {
					verb = "Disabling"
				} else if now.up && rs.cfg.Check.InhibitOnFailure {
					verb = "Enabling"
				}
				prep := "from"
				if now.up {
					prep = "to"
				}
				msg := fmt.Sprintf("%s service %s %s VS %s", verb, rs.check, prep, p.name)
				if ev.Reason != "" {
					d.log.Info(msg, "reason", ev.Reason)
				} else {
					d.log.Info(msg)
				}
				var script *config.Script
				if now.up {
					script = rs.cfg.NotifyUp
				} else {
					script = rs.cfg.NotifyDown
				}
				d.notifier.RealServer(notify.RealServerEvent{
					VS: notifyVS(p), RS: destination(rs.cfg, p.port()).Addr, Up: now.up,
					Script: notifyScript(script), Checker: ev.Checker, SMTPAlert: rs.cfg.Check.SMTPAlert,
				})
			}
			sum := quorumSum(p, d.health)
			up := nextQuorum(p, d.quorum[p.name], sum)
			if up != d.quorum[p.name] {
				d.quorum[p.name] = up
				d.quorumEvent(p, up, sum, false, false)
			}
		}
	}
	if d.dp != nil {
		if err := d.apply(); err != nil {
			d.log.Error("applying the data plane", "err", err)
		}
	}
	d.bgpUpdate()
	d.publish(nil)
}

// globalScript runs startup_script or shutdown_script to its end or its
// timeout (default 10 s), with keepalived's log lines; a failure is
// logged and the daemon goes on, as keepalived does.
func (d *Daemon) globalScript(what string, s *config.Script, timeout time.Duration, nc notify.Config) {
	ns := notifyScript(s)
	if ns == nil {
		return
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	d.log.Info(fmt.Sprintf("Running %s script %s", what, ns.Args[0]))
	start := time.Now()
	if err := notify.RunScript(context.Background(), ns, nc, timeout); err != nil {
		d.log.Warn(fmt.Sprintf("%s script %s failed", what, ns.Args[0]), "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	d.log.Info(fmt.Sprintf("%s script %s completed", what, ns.Args[0]))
}

// trackGroup hears from the routing worker that a track_group went down
// or up, and hands it to VRRP as the external object its instances
// track (see vrrpConfig); the state is kept for a VRRP that starts later.
func (d *Daemon) trackGroup(group string, up bool) {
	d.trackMu.Lock()
	defer d.trackMu.Unlock()
	if d.trackUp == nil {
		d.trackUp = map[string]bool{}
	}
	d.trackUp[group] = up
	d.mu.Lock()
	node := d.node
	d.mu.Unlock()
	if node != nil {
		_ = node.SetTrack(trackGroupRef(group), up)
	}
}

// replayTrackGroups hands a VRRP node that just started the track_group
// states heard before it existed.
func (d *Daemon) replayTrackGroups(node *vrrp.Node) {
	d.trackMu.Lock()
	defer d.trackMu.Unlock()
	for g, up := range d.trackUp {
		_ = node.SetTrack(trackGroupRef(g), up)
	}
}

// rsInitNotify is rs_init_notifies: a real server that starts up (at
// start, or new in a reload) is notified as up, as keepalived does when
// it adds a server with no failed checker to its pool: notify_up, the
// FIFO line and mail as smtp_alert says.
func (d *Daemon) rsInitNotify(ev check.Event) {
	for _, p := range d.gen.plans {
		for _, rs := range p.rss {
			if rs.check != ev.Server {
				continue
			}
			d.notifier.RealServer(notify.RealServerEvent{
				VS: notifyVS(p), RS: destination(rs.cfg, p.port()).Addr, Up: true,
				Script: notifyScript(rs.cfg.NotifyUp), Checker: ev.Checker, SMTPAlert: rs.cfg.Check.SMTPAlert,
			})
		}
	}
}

func (d *Daemon) quorumEvent(p *vsPlan, up bool, sum int64, init, stopping bool) {
	if !init || !up {
		if up {
			d.log.Info(fmt.Sprintf("Gained quorum %d+%d=%d <= %d for VS %s", p.cfg.Quorum, p.cfg.Hysteresis, p.cfg.Quorum+p.cfg.Hysteresis, sum, p.name))
		} else {
			d.log.Info(fmt.Sprintf("Lost quorum %d-%d=%d > %d for VS %s", p.cfg.Quorum, p.cfg.Hysteresis, p.cfg.Quorum-p.cfg.Hysteresis, sum, p.name))
		}
	}
	script := p.cfg.QuorumDown
	if up {
		script = p.cfg.QuorumUp
	}
	d.notifier.Quorum(notify.QuorumEvent{
		VS: notifyVS(p), Up: up, Script: notifyScript(script),
		Quorum: p.cfg.Quorum, Hysteresis: p.cfg.Hysteresis, Threshold: int64(p.cfg.Quorum), LiveSum: sum,
		Init: init, Stopping: stopping, SMTPAlert: p.cfg.Check.SMTPAlert,
	})
}

// apply hands the desired services of the running generation, as
// health and quorum now stand, to the data plane.
func (d *Daemon) apply() error {
	return d.applyServices(desiredServices(d.gen.cfg, d.gen.plans, d.health, d.quorum))
}

// vrrpNotify receives VRRP state changes on the VRRP goroutine: it queues
// the notifications (never blocking) and moves the IPVS sync daemon.
func (d *Daemon) vrrpNotify(n vrrp.Notification) {
	ev, ok := vrrpEventOf(n)
	if !ok {
		return
	}
	if n.Reload {
		// fifo_write_vrrp_states_on_reload: nothing changed.
		d.currentNotifier().VRRP(ev)
		return
	}
	if n.Resumed {
		// Handed over by the previous process: nothing changed for
		// scripts, FIFOs or mail; what this process runs follows it.
		if !ev.Group {
			d.routing.vrrpState(n.Name, n.State)
		}
		d.bgpVRRP(n)
		if cfg := d.currentConfig(); !ev.Group && cfg != nil && cfg.Global.LVSSyncDaemon != nil && cfg.Global.LVSSyncDaemon.Instance == n.Name {
			d.do(func() { d.syncDaemonState(n.State) })
		}
		return
	}
	if !ev.Group {
		d.routing.vrrpState(n.Name, n.State)
	}
	d.bgpVRRP(n)
	cfg := d.currentConfig()
	if cfg != nil {
		ev.Scripts, ev.SMTPAlert = vrrpScripts(cfg, ev.Group, n.Name)
	}
	d.currentNotifier().VRRP(ev)
	if !ev.Group && cfg != nil && cfg.Global.LVSSyncDaemon != nil && cfg.Global.LVSSyncDaemon.Instance == n.Name {
		// In the order VRRP reported the states (the loop's queue).
		d.do(func() { d.syncDaemonState(n.State) })
	}
}

// vrrpEventOf translates a VRRP notification into the notifier's event;
// ok is false for a state the notifier does not know.
func vrrpEventOf(n vrrp.Notification) (ev notify.VRRPEvent, ok bool) {
	ev = notify.VRRPEvent{Group: n.Type == "GROUP", Name: n.Name, Priority: n.Priority, FIFOOnly: n.Reload}
	// DELETED is the daemon's own (a reload removed the instance), never
	// a VRRP machine's; the FIFO-only events (MASTER_PRIORITY for
	// notify_priority_changes...) the notifier routes itself.
	st, ok := notify.ParseState(n.State)
	if !ok || st == notify.StateDeleted {
		return ev, false
	}
	ev.State = st
	return ev, true
}

func (d *Daemon) currentNotifier() *notify.Notifier {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap.notifier
}

func (d *Daemon) currentConfig() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap.cfg
}

// publish refreshes the snapshot API readers see.
func (d *Daemon) publish(notReady error) {
	names := map[string]rsRef{}
	quorum := map[string]bool{}
	for _, p := range d.gen.plans {
		// The API joins checks to services by the IPVS key's string.
		vs := p.name
		if len(p.keys) > 0 {
			vs = p.keys[0].key.String()
		}
		if up, ok := d.quorum[p.name]; ok {
			quorum[vs] = up
		}
		for _, rs := range p.rss {
			names[rs.check] = rsRef{vs: vs, rs: destination(rs.cfg, p.port()).Addr.String()}
		}
	}
	h := make(map[string]health, len(d.health))
	for k, v := range d.health {
		h[k] = v
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.cfg != d.gen.cfg {
		if d.snap.cfg != nil {
			d.snap.reloads++
		}
		d.snap.loaded = time.Now()
	}
	d.snap.cfg, d.snap.health, d.snap.rsOfName = d.gen.cfg, h, names
	d.snap.quorum = quorum
	d.snap.notifier = d.notifier
	d.snap.runner = d.runner
	d.snap.dp = d.dp
	d.snap.ready = notReady
}

// initialHealth is how the checkers will first report a server: up,
// unless one of its checkers starts in alpha mode.
func initialHealth(s check.Server) health {
	for _, c := range s.Checkers {
		if c.Timing.Alpha {
			return health{up: false, weight: s.Weight}
		}
	}
	return health{up: true, weight: s.Weight}
}

// writePIDFile writes this process's pid to path, unless another live
// vipd's is there (prev, the process handing over, is not another).
func writePIDFile(path string, prev int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(string(trimNL(b))); err == nil && pid != os.Getpid() && pid != prev && processAlive(pid) {
			return fmt.Errorf("pid file %s: vipd already running as pid %d (use -p for another instance)", path, pid)
		}
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
