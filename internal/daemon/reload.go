package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/dataplane/proxy"
	"github.com/vipd/vipd/internal/dataplane/xdp"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/notify"
	"github.com/vipd/vipd/internal/vrrp"
)

// dataplaneKind is one data plane the daemon can run: its check, which
// judges services without side effects (at load, for every virtual
// server, and on each generation's desired set), and how to start it.
// Adding a data plane is adding an entry to dataplanes.
type dataplaneKind struct {
	check dataplane.Check
	hint  string // what to do when check refuses a virtual server
	open  func(d *Daemon) (dataplane.Dataplane, error)
}

var dataplanes = map[string]dataplaneKind{
	config.DataplaneProxy: {check: proxy.Check, hint: "run with --dataplane ipvs or set global_defs vipd_dataplane ipvs", open: func(d *Daemon) (dataplane.Dataplane, error) {
		dp, err := proxy.New(proxy.Options{Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("proxy data plane: %w", err)
		}
		return dp, nil
	}},
	config.DataplaneXDP: {check: xdp.Check, hint: "the xdp data plane runs lvs_method DR or TUN (ipip, gue) with lvs_sched mh; run the rest with --dataplane ipvs or proxy (docs/dataplanes.md)", open: func(d *Daemon) (dataplane.Dataplane, error) {
		dp, err := xdp.New(xdp.Options{PinPath: d.opts.XDPPins, Interfaces: d.opts.XDPIfaces, Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("xdp data plane: %w (use --dataplane proxy or ipvs where XDP cannot load)", err)
		}
		return dp, nil
	}},
	config.DataplaneIPVS: {check: ipvs.Check, open: func(d *Daemon) (dataplane.Dataplane, error) {
		dp, err := ipvs.New(ipvs.Options{StateFile: d.opts.IPVSState, Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("ipvs data plane: %w (use --dataplane proxy on kernels without IPVS)", err)
		}
		return dp, nil
	}},
}

// dataplaneCheck is the chosen data plane's check, nil when no virtual
// servers run.
func (d *Daemon) dataplaneCheck() dataplane.Check {
	if d.opts.VRRPOnly {
		return nil
	}
	return dataplanes[d.dpName].check
}

// CheckServices judges cfg's virtual servers for the data plane named dp
// as the daemon does at start and reload, without running anything: one
// diagnostic per problem, at the virtual server's line. vipd -t calls it
// so that it refuses what the daemon would. An unknown dp judges nothing.
func CheckServices(cfg *config.Config, dp string) config.Diagnostics {
	k, ok := dataplanes[dp]
	if !ok || cfg == nil {
		return nil
	}
	plans, err := planServices(cfg)
	if err != nil {
		return config.Diagnostics{{Severity: config.Error, Msg: err.Error(), Exit: config.ExitConfig}}
	}
	return validateServices(cfg, plans, k.check, k.hint)
}

// newDataplane starts the chosen data plane (or the stand-in a test set).
func (d *Daemon) newDataplane() (dataplane.Dataplane, error) {
	if d.openDP != nil {
		return d.openDP()
	}
	k, ok := dataplanes[d.dpName]
	if !ok {
		return nil, fmt.Errorf("data plane %q: unknown", d.dpName)
	}
	return k.open(d)
}

// generation is everything the daemon runs from one configuration. build
// makes one without side effects; the first runs as is, a reload commits
// the next one step by step (reload).
type generation struct {
	cfg      *config.Config
	known    map[string]bool // errors of cfg that were logged, not refused
	plans    []*vsPlan
	servers  []check.Server
	health   map[string]health // real servers: kept from the running generation, else initial
	quorum   map[string]bool
	desired  []lvs.Service // what the data plane is to run
	vrrp     *vrrp.Config  // nil: this generation runs no VRRP
	notifyCf notify.Config
}

// build makes the next generation from cfg and what runs now (health
// and quorum of the servers that stay, whether VRRP runs). Every check
// that needs no side effect happens here, the data plane's included, so
// that a commit can only fail on what the system refuses.
func (d *Daemon) build(cfg *config.Config, known map[string]bool) (*generation, error) {
	g := &generation{cfg: cfg, known: known}
	var err error
	if g.plans, err = planServices(cfg); err != nil {
		return nil, &api.ConfigError{Diagnostics: []string{err.Error()}}
	}
	dpCheck := d.dataplaneCheck()
	if errs := validateServices(cfg, g.plans, dpCheck, dataplanes[d.dpName].hint); len(errs) > 0 {
		var ds []string
		for _, e := range errs {
			ds = append(ds, e.String())
		}
		return nil, &api.ConfigError{Diagnostics: ds}
	}
	policy := d.scriptPolicy(cfg)
	if g.servers, err = checkServers(cfg, g.plans, policy, d.bfdSessionUp, d.log); err != nil {
		return nil, &api.ConfigError{Diagnostics: []string{err.Error()}}
	}
	if err := check.Validate(g.servers); err != nil {
		return nil, &api.ConfigError{Diagnostics: []string{err.Error()}}
	}
	// Keep what is known of servers that stay; new ones start as their
	// checkers will first report them.
	g.health = map[string]health{}
	for _, s := range g.servers {
		if st, ok := d.health[s.Name]; ok {
			g.health[s.Name] = st
		} else {
			g.health[s.Name] = initialHealth(s)
		}
	}
	g.quorum = map[string]bool{}
	for _, p := range g.plans {
		if up, ok := d.quorum[p.name]; ok {
			g.quorum[p.name] = up
		} else {
			sum := quorumSum(p, g.health)
			g.quorum[p.name] = sum > 0 && sum >= int64(p.cfg.Quorum)
		}
	}
	if !d.opts.VRRPOnly {
		g.desired = desiredServices(cfg, g.plans, g.health, g.quorum)
		if dpCheck != nil {
			// The whole set: what one virtual server's check cannot see
			// (two of them expanding to the same service).
			if err := dpCheck(g.desired); err != nil {
				return nil, &api.ConfigError{Diagnostics: []string{fmt.Sprintf("%s: the %s data plane refuses the services: %v", d.opts.ConfigFile, d.dpName, err)}}
			}
		}
	}
	// Like keepalived, no VRRP runs without a vrrp_instance (a reload
	// that adds one starts it; one that removes the last keeps the node,
	// which then runs none).
	if !d.opts.CheckOnly && (d.node != nil || len(cfg.Instances) > 0) {
		vc := vrrpConfig(cfg, policy, d.log)
		if _, err := vc.Validate(); err != nil {
			return nil, &api.ConfigError{Diagnostics: []string{err.Error()}}
		}
		g.vrrp = &vc
	}
	g.notifyCf = notifyConfig(cfg, d.log)
	return g, nil
}

// Reload re-reads the configuration and moves to it as a transaction:
// build and validate the next generation with no side effects (a
// configuration error is returned as *api.ConfigError and changes
// nothing), then commit it step by step in a fixed order (commitSteps);
// a step that fails undoes the ones before it and comes back as
// *api.CommitError naming the step and what runs now. What did not
// change keeps its state: VRRP instances, services' connections,
// checkers of unchanged real servers.
func (d *Daemon) Reload(ctx context.Context) error {
	if d.upgrading.Load() {
		return errors.New("an upgrade is running or done: reload the new vipd")
	}
	var err error
	if cerr := d.call(ctx, func() { err = d.reload() }); cerr != nil {
		return cerr
	}
	return err
}

func (d *Daemon) reload() (err error) {
	sdNotify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
	defer sdNotify("READY=1")
	d.log.Info("Reloading configuration", "file", d.opts.ConfigFile)
	defer func() {
		var cerr *api.CommitError
		switch {
		case err == nil:
			d.countReload(api.ReloadOK)
		case errors.As(err, &cerr):
			d.countReload(api.ReloadFailed)
			d.log.Error("Reload failed at step "+cerr.Step, "err", cerr.Reason, "running", cerr.Running)
		default:
			d.countReload(api.ReloadRefused)
			d.log.Error("Reload refused; the running configuration stays", "err", err)
		}
	}()
	cfg, known, err := d.load(true)
	if err != nil {
		return err
	}
	next, err := d.build(cfg, known)
	if err != nil {
		return err
	}
	var newNotifier *notify.Notifier
	if err := commit(d.commitSteps(next, &newNotifier)); err != nil {
		return err
	}
	// Committed: the loop's state moves to the new generation.
	oldNotifier := d.notifier
	d.gen, d.health, d.quorum = next, next.health, next.quorum
	d.promote.apply(next.cfg)
	d.reloadBGP(next.cfg) // cannot fail: a speaker that does not start is logged (bgp.go)
	d.reloadBFD(next.cfg) // a session that cannot start is logged; the others run
	if newNotifier != nil {
		d.notifier = newNotifier
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = oldNotifier.Close(cctx)
		}()
	}
	d.publish(nil)
	d.log.Info("Reload finished")
	return nil
}

// commitSteps are the steps that move the running daemon to next, in
// their fixed order: notifications first (so that the others' events
// reach the new settings), then the data plane (a VIP must be served
// before VRRP announces it), the checkers of the servers it runs, VRRP,
// and last the static and virtual routes (which cannot fail: the routing
// worker retries and logs). Each runs on the loop goroutine, so nothing
// else changes the loop's state meanwhile; the events a step causes
// (check results, VRRP states) wait in the loop's queue.
func (d *Daemon) commitSteps(next *generation, newNotifier **notify.Notifier) []step {
	prev := d.gen
	var steps []step
	if !reflect.DeepEqual(next.notifyCf, prev.notifyCf) {
		steps = append(steps, step{name: "notifications",
			do: func() error {
				n, err := notify.New(next.notifyCf)
				*newNotifier = n
				return err
			},
			undo: func() error {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				n := *newNotifier
				*newNotifier = nil
				if n == nil {
					return nil // notify.New failed: nothing was opened
				}
				return n.Close(cctx)
			}})
	}
	if d.dp != nil {
		steps = append(steps, step{name: "data plane",
			do: func() error { return d.applyServices(next.desired) },
			undo: func() error {
				return d.applyServices(desiredServices(prev.cfg, prev.plans, d.health, d.quorum))
			}})
	}
	if d.runner != nil {
		steps = append(steps, step{name: "health checks",
			do:   func() error { return d.updateRunner(next.plans, next.servers) },
			undo: func() error { return d.updateRunner(prev.plans, prev.servers) }})
	}
	if next.vrrp != nil {
		if d.node == nil {
			// The first vrrp_instance arrives with this reload.
			steps = append(steps, step{name: "VRRP",
				do: func() error {
					node, err := vrrp.New(*next.vrrp, vrrp.Deps{Logger: d.log, Notifier: vrrp.NotifierFunc(d.vrrpNotify)})
					if err != nil {
						return err
					}
					d.mu.Lock()
					d.node = node
					d.mu.Unlock()
					d.startVRRP()
					d.replayTrackGroups(node)
					if d.bfd != nil {
						d.bfd.replay(node, true)
					}
					return nil
				},
				undo: func() error {
					d.stopVRRP()
					d.mu.Lock()
					d.node = nil
					d.mu.Unlock()
					return nil
				}})
		} else {
			steps = append(steps, step{name: "VRRP",
				do: func() error { return d.node.Reload(*next.vrrp) },
				undo: func() error {
					if prev.vrrp == nil {
						return nil
					}
					return d.node.Reload(*prev.vrrp)
				}})
		}
	}
	if d.memLock != nil && next.cfg.Global.VRRPNoSwap != d.memLock.locked {
		// Cannot fail: a failed mlockall is logged, as at start.
		steps = append(steps, step{name: "vrrp_no_swap",
			do:   func() error { d.memLock.apply(next.cfg.Global.VRRPNoSwap); return nil },
			undo: func() error { d.memLock.apply(prev.cfg.Global.VRRPNoSwap); return nil }})
	}
	if d.routing != nil {
		steps = append(steps, step{name: "routing", do: func() error { d.routing.reload(next.cfg); return nil }})
	}
	return steps
}

// applyServices hands desired to the data plane, bounded in time.
func (d *Daemon) applyServices(desired []lvs.Service) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.dp.Apply(ctx, desired)
}

// updateRunner moves the checkers to servers: unchanged ones keep their
// state; the events of the others come to the loop's queue.
// ha_suspend holds new servers from the start, and kept ones as the
// plans now say.
func (d *Daemon) updateRunner(plans []*vsPlan, servers []check.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.markSuspended(plans, servers)
	if err := d.runner.Update(ctx, servers); err != nil {
		return err
	}
	d.applySuspend(plans, false)
	return nil
}

// countReload counts a reload's result for Status and the metrics.
func (d *Daemon) countReload(result string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.reloadResults == nil {
		d.snap.reloadResults = map[string]uint64{}
	}
	d.snap.reloadResults[result]++
}
