// Package daemon wires vipd together: it loads keepalived.conf, runs VRRP,
// the health checkers and a data plane, turns check results into the
// desired virtual services, serves the control API and reloads without
// disturbing what did not change.
//
// One goroutine (the loop) owns the configuration, the real servers'
// health and the quorum states; checkers, VRRP and the API talk to it
// through a channel, so there is no shared mutable state to lock.
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
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/bgp"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/dataplane/ipvs"
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
	// auto, proxy or ipvs.
	Dataplane string
	Control   string // unix socket of the control API ("" = none)
	Metrics   string // listen address of metrics and status page ("" = none)
	PIDFile   string // "" = none
	DataFile  string // SIGUSR1 dump; default /tmp/vipd.data
	StatsFile string // SIGUSR2 dump; default /tmp/vipd.stats
	IPVSState string // ownership record of the ipvs data plane; default /run/vipd/ipvs.json
	VRRPOnly  bool   // -P
	CheckOnly bool   // -C
	Version   string
	Logger    *slog.Logger
}

// Daemon is a running vipd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	dpName  string

	reqs chan func()   // run on the loop goroutine
	quit chan struct{} // closed when the loop has returned

	// Owned by the loop goroutine.
	cfg       *config.Config
	knownErrs map[string]bool // errors of the running configuration (a reload may keep them)
	plans     []*vsPlan
	health    map[string]health
	quorum    map[string]bool
	node      *vrrp.Node
	nodeDone  chan struct{}
	stopNode  context.CancelFunc
	runner    *check.Runner
	stopRun   context.CancelFunc
	runDone   chan struct{}
	servers   []check.Server
	dp        dataplane.Dataplane
	notifier  *notify.Notifier
	notifyCf  notify.Config
	routing   *routing   // static addresses/routes/rules, virtual routes/rules (static.go)
	bgp       *bgpDriver // BGP speaker (bgp.go); nil without a bgp block

	// Read by API goroutines.
	mu   sync.Mutex
	snap snapshot
}

// snapshot is what API readers see of the loop's state.
type snapshot struct {
	cfg      *config.Config
	plans    []*vsPlan
	health   map[string]health
	loaded   time.Time
	reloads  uint64
	ready    error
	rsOfName map[string]rsRef
	notifier *notify.Notifier
	runner   *check.Runner
	// bgp.go's driver and the policy's decisions.
	bgp          *bgpDriver
	bgpDecisions []bgp.Decision
}

// rsRef locates a check server in the configuration.
type rsRef struct {
	vs string
	rs string
}

// New loads and validates the configuration; it starts nothing.
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
	d := &Daemon{opts: opts, log: opts.Logger, started: time.Now(), reqs: make(chan func()), quit: make(chan struct{})}
	cfg, known, err := d.load(false)
	if err != nil {
		return nil, err
	}
	d.cfg, d.knownErrs = cfg, known
	return d, nil
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
	dp := d.dpName
	if dp == "" {
		// First load: the data plane may come from the configuration
		// itself, so peek at it before validating for it.
		dp = d.opts.Dataplane
		if dp == "" {
			c, _ := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID})
			if c != nil {
				dp = c.Global.Dataplane
			}
		}
		dp = resolveDataplane(dp, d.needsKernel())
		if d.opts.VRRPOnly {
			dp = "" // no virtual servers run: judge them as keepalived -t does
		}
	}
	cfg, diags := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID, Dataplane: dp, Host: config.OSHost{}})
	var refuse, logged []string
	known := map[string]bool{}
	for _, dg := range diags.Sorted() {
		key := dg.Keyword + "\x00" + dg.Msg
		switch {
		case dg.Blocking():
			refuse = append(refuse, dg.String())
		case dg.Severity >= config.Error:
			known[key] = true
			if reload && !d.knownErrs[key] {
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
	d.dpName = dp
	return cfg, known, nil
}

// resolveDataplane turns "auto" (or nothing) into ipvs when the kernel
// has IPVS, loading the module first when the configuration needs the
// kernel (DR, TUN or fwmark), and into proxy otherwise.
func resolveDataplane(name string, needsKernel bool) string {
	switch name {
	case config.DataplaneProxy, config.DataplaneIPVS:
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
	c, _ := config.Load(d.opts.ConfigFile, config.Options{ConfigID: d.opts.ConfigID})
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
	if d.opts.PIDFile != "" {
		if err := writePIDFile(d.opts.PIDFile); err != nil {
			return err
		}
		defer os.Remove(d.opts.PIDFile)
	}
	plans, err := planServices(d.cfg)
	if err != nil {
		return err
	}
	if errs := validateServices(d.cfg, plans, d.serviceValidator()); len(errs) > 0 {
		return &api.ConfigError{Diagnostics: errs}
	}
	servers, err := checkServers(d.cfg, plans, d.scriptPolicy(d.cfg), d.log)
	if err != nil {
		return err
	}
	d.plans, d.servers = plans, servers

	d.notifyCf = notifyConfig(d.cfg, d.log)
	if d.notifier, err = notify.New(d.notifyCf); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	d.publish(errors.New("starting"))
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.notifier.Close(cctx)
	}()
	if !d.opts.CheckOnly {
		d.routing = startRouting(d.cfg, d.log)
		defer d.routing.stop()
	}

	if !d.opts.VRRPOnly {
		if d.dp, err = d.newDataplane(); err != nil {
			return err
		}
		defer func() {
			if cerr := d.dp.Close(); cerr != nil {
				d.log.Warn("closing the data plane", "err", cerr)
			}
		}()
	}

	// Health starts as the checkers will report it (up unless alpha), so
	// the first Apply is right before the first check completes.
	d.health = map[string]health{}
	for _, s := range servers {
		d.health[s.Name] = initialHealth(s)
	}
	d.quorum = map[string]bool{}
	for _, p := range plans {
		sum := quorumSum(p, d.health)
		up := sum > 0 && sum >= int64(p.cfg.Quorum)
		d.quorum[p.name] = up
		if p.cfg.QuorumUp != nil || p.cfg.QuorumDown != nil || p.cfg.SorryServer != nil {
			d.quorumEvent(p, up, sum, true, false)
		}
	}
	if d.dp != nil {
		if err := d.apply(ctx); err != nil {
			return err
		}
		if d.cfg.Global.LVSSyncDaemon != nil {
			// Backup until VRRP says master, as keepalived starts it.
			d.syncDaemonState("INIT")
			defer d.syncDaemonState("STOP")
		}
	}

	// Like keepalived, no VRRP runs without a vrrp_instance (a reload
	// that adds one starts it).
	if !d.opts.CheckOnly && len(d.cfg.Instances) > 0 {
		d.node, err = vrrp.New(vrrpConfig(d.cfg, d.scriptPolicy(d.cfg), d.log), vrrp.Deps{Logger: d.log, Notifier: vrrp.NotifierFunc(d.vrrpNotify)})
		if err != nil {
			return err
		}
	}

	defer close(d.quit)
	if !d.opts.VRRPOnly {
		d.startRunner(servers)
		defer d.stopRunner()
	}
	d.startBGP(nil)
	defer d.stopBGP(true)
	if d.node != nil {
		d.startVRRP()
	}
	defer d.stopVRRP()

	d.publish(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	if d.opts.Control != "" {
		ln, err := api.Listen(d.opts.Control, 0o600)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer os.Remove(d.opts.Control)
			if err := api.Serve(apiCtx, ln, (*source)(d)); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("control API stopped", "err", err)
			}
		}()
	}
	if d.opts.Metrics != "" {
		ln, err := net.Listen("tcp", d.opts.Metrics)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := api.ServeWeb(apiCtx, ln, (*source)(d), api.WebOptions{Logger: d.log}); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	sdNotify("READY=1\nSTATUS=running")

	for {
		select {
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
			for _, p := range d.plans {
				if p.cfg.Omega {
					d.quorumEvent(p, false, 0, false, true)
				}
			}
			return nil
		case f := <-d.reqs:
			f()
		}
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
		case f := <-d.reqs:
			f()
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

// serviceValidator is the data plane's own check of a service, nil when
// there is none (or no virtual servers run).
func (d *Daemon) serviceValidator() func(lvs.Service) error {
	if d.opts.VRRPOnly || d.dpName != config.DataplaneProxy {
		return nil
	}
	return proxy.Validate
}

func (d *Daemon) newDataplane() (dataplane.Dataplane, error) {
	switch d.dpName {
	case config.DataplaneIPVS:
		dp, err := ipvs.New(ipvs.Options{StateFile: d.opts.IPVSState, Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("ipvs data plane: %w (use --dataplane proxy on kernels without IPVS)", err)
		}
		return dp, nil
	default:
		dp, err := proxy.New(proxy.Options{Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("proxy data plane: %w", err)
		}
		return dp, nil
	}
}

// startRunner starts a check runner for servers; its events come to the
// loop.
func (d *Daemon) startRunner(servers []check.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopRun = cancel
	d.runDone = make(chan struct{})
	d.runner = check.NewRunner(servers, check.Options{
		Logger: d.log,
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
		case f := <-d.reqs:
			f()
		}
	}
}

// do runs f on the loop goroutine; after the loop has returned, f is
// dropped.
func (d *Daemon) do(f func()) {
	select {
	case d.reqs <- f:
	case <-d.quit:
	}
}

// call runs f on the loop goroutine and waits for it, or for ctx.
func (d *Daemon) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case d.reqs <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.quit:
		return errors.New("vipd is stopping")
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkEvent handles a real server's state change from the checkers.
func (d *Daemon) checkEvent(ev check.Event) {
	prev, known := d.health[ev.Server]
	now := health{up: ev.Up, weight: ev.Weight}
	if !known || prev == now {
		return // a server a reload removed, or nothing new
	}
	d.health[ev.Server] = now
	for _, p := range d.plans {
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
		if err := d.apply(context.Background()); err != nil {
			d.log.Error("applying the data plane", "err", err)
		}
	}
	d.bgpUpdate()
	d.publish(nil)
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

// apply hands the desired services to the data plane.
func (d *Daemon) apply(ctx context.Context) error {
	want := desiredServices(d.cfg, d.plans, d.health, d.quorum)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return d.dp.Apply(ctx, want)
}

// vrrpNotify receives VRRP state changes on the VRRP goroutine: it queues
// the notifications (never blocking) and moves the IPVS sync daemon.
func (d *Daemon) vrrpNotify(n vrrp.Notification) {
	ev := notify.VRRPEvent{Group: n.Type == "GROUP", Name: n.Name, Priority: n.Priority}
	switch n.State {
	case "MASTER":
		ev.State = notify.StateMaster
	case "BACKUP":
		ev.State = notify.StateBackup
	case "FAULT":
		ev.State = notify.StateFault
	case "STOP":
		ev.State = notify.StateStop
	case "MASTER_RX_LOWER_PRI":
		ev.State = notify.EventMasterRxLowerPri
	default:
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
		go d.do(func() { d.syncDaemonState(n.State) })
	}
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
	for _, p := range d.plans {
		for _, rs := range p.rss {
			// The API joins checks to services by the IPVS key's string.
			vs := p.name
			if len(p.keys) > 0 {
				vs = p.keys[0].key.String()
			}
			names[rs.check] = rsRef{vs: vs, rs: destination(rs.cfg, p.port()).Addr.String()}
		}
	}
	h := make(map[string]health, len(d.health))
	for k, v := range d.health {
		h[k] = v
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.cfg != d.cfg {
		if d.snap.cfg != nil {
			d.snap.reloads++
		}
		d.snap.loaded = time.Now()
	}
	d.snap.cfg, d.snap.plans, d.snap.health, d.snap.rsOfName = d.cfg, d.plans, h, names
	d.snap.notifier = d.notifier
	d.snap.runner = d.runner
	d.snap.ready = notReady
}

// Reload re-reads the configuration and applies the difference: VRRP
// instances that did not change keep their state, services keep their
// connections, checkers of unchanged real servers keep theirs. A
// configuration with errors is refused and the running one stays.
func (d *Daemon) Reload(ctx context.Context) error {
	var err error
	if cerr := d.call(ctx, func() { err = d.reload() }); cerr != nil {
		return cerr
	}
	return err
}

func (d *Daemon) reload() error {
	sdNotify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
	defer sdNotify("READY=1")
	d.log.Info("Reloading configuration", "file", d.opts.ConfigFile)
	cfg, known, err := d.load(true)
	if err != nil {
		d.log.Error("Reload refused; the running configuration stays", "err", err)
		return err
	}
	plans, err := planServices(cfg)
	if err != nil {
		return &api.ConfigError{Diagnostics: []string{err.Error()}}
	}
	if errs := validateServices(cfg, plans, d.serviceValidator()); len(errs) > 0 {
		return &api.ConfigError{Diagnostics: errs}
	}
	servers, err := checkServers(cfg, plans, d.scriptPolicy(cfg), d.log)
	if err != nil {
		return &api.ConfigError{Diagnostics: []string{err.Error()}}
	}
	if !d.opts.CheckOnly && (d.node != nil || len(cfg.Instances) > 0) {
		vc := vrrpConfig(cfg, d.scriptPolicy(cfg), d.log)
		if _, err := vc.Validate(); err != nil {
			return &api.ConfigError{Diagnostics: []string{err.Error()}}
		}
		if d.node == nil {
			// The first vrrp_instance arrives with this reload.
			node, err := vrrp.New(vc, vrrp.Deps{Logger: d.log, Notifier: vrrp.NotifierFunc(d.vrrpNotify)})
			if err != nil {
				return fmt.Errorf("VRRP: %w", err)
			}
			d.mu.Lock()
			d.node = node
			d.mu.Unlock()
			d.startVRRP()
		} else if err := d.node.Reload(vc); err != nil {
			return fmt.Errorf("VRRP reload: %w", err)
		}
	}
	d.cfg, d.plans, d.knownErrs = cfg, plans, known
	d.routing.reload(cfg)
	if nc := notifyConfig(cfg, d.log); !reflect.DeepEqual(nc, d.notifyCf) {
		if n, err := notify.New(nc); err != nil {
			d.log.Error("notifications: keeping the previous settings", "err", err)
		} else {
			oldN := d.notifier
			d.notifier, d.notifyCf = n, nc
			go func() {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = oldN.Close(cctx)
			}()
		}
	}
	if !d.opts.VRRPOnly {
		// Keep what is known of servers that stay; new ones start as
		// their checkers will report them (the runner confirms with
		// their initial events).
		h := map[string]health{}
		for _, s := range servers {
			if st, ok := d.health[s.Name]; ok {
				h[s.Name] = st
				continue
			}
			h[s.Name] = initialHealth(s)
		}
		d.health = h
		d.servers = servers
		// Unchanged checkers keep their state; the runner's events for
		// what changed come to this loop after we return.
		uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := d.runner.Update(uctx, servers)
		cancel()
		if err != nil {
			d.log.Error("health checks: reload", "err", err)
		}
	}
	q := map[string]bool{}
	for _, p := range plans {
		if up, ok := d.quorum[p.name]; ok {
			q[p.name] = up
		} else {
			sum := quorumSum(p, d.health)
			q[p.name] = sum > 0 && sum >= int64(p.cfg.Quorum)
		}
	}
	d.quorum = q
	if d.dp != nil {
		if err := d.apply(context.Background()); err != nil {
			d.log.Error("applying the data plane after reload", "err", err)
		}
	}
	d.reloadBGP(cfg)
	d.publish(nil)
	d.log.Info("Reload finished")
	return nil
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

func writePIDFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(string(trimNL(b))); err == nil && pid != os.Getpid() && processAlive(pid) {
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
