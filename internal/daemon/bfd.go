package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vipd/vipd/internal/bfd"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/vrrp"
)

// bfdDriver runs the bfd_instance sessions (internal/bfd) and hands
// their Up/Down to the two things that follow them: VRRP (track_bfd,
// through Node.SetTrack from a goroutine of its own, never the loop's:
// VRRP calls into the loop) and BFD_CHECK checkers (which read up).
type bfdDriver struct {
	srv    *bfd.Server
	log    *slog.Logger
	node   func() *vrrp.Node
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu       sync.Mutex
	up       map[string]bool     // session Up, by bfd_instance name
	sent     map[string]bool     // last state handed to VRRP
	trackers map[string][]string // bfd_instance -> vrrp_instances tracking it (for the log line)
}

// bfdSessions turns the bfd_instance blocks into session configurations.
func bfdSessions(c *config.Config) []bfd.SessionConfig {
	var out []bfd.SessionConfig
	for _, b := range c.BFDInstances {
		maxHops := uint8(b.MaxHops)
		if b.MaxHops < 0 {
			maxHops = 255
		}
		out = append(out, bfd.SessionConfig{
			Name: b.Name, Peer: b.Neighbor, Source: b.Source, Multihop: b.Multihop,
			TTL: uint8(b.TTL), MaxHops: maxHops,
			Config: bfd.Config{MinTx: b.MinTx, MinRx: b.MinRx, IdleTx: b.IdleTx, Multiplier: uint8(b.Multiplier), Passive: b.Passive},
		})
	}
	return out
}

// bfdTrackers lists, per bfd_instance, the vrrp_instances that track it
// directly or through their sync group.
func bfdTrackers(c *config.Config) map[string][]string {
	out := map[string][]string{}
	groups := map[string]*config.SyncGroup{}
	for _, sg := range c.SyncGroups {
		groups[sg.Name] = sg
	}
	for _, in := range c.Instances {
		refs := in.Track.BFDs
		if sg := groups[in.SyncGroup]; sg != nil {
			refs = append(slices.Clone(refs), sg.Track.BFDs...)
		}
		for _, r := range refs {
			if !slices.Contains(out[r.Name], in.Name) {
				out[r.Name] = append(out[r.Name], in.Name)
			}
		}
	}
	return out
}

// startBFD starts the sessions of c, if it has any; without bfd_instance
// no socket is opened. It runs in every mode (-P, -C): VRRP and the
// checkers both follow the sessions.
func (d *Daemon) startBFD(c *config.Config) {
	if len(c.BFDInstances) == 0 {
		return
	}
	b := &bfdDriver{log: d.log, done: make(chan struct{}), wake: make(chan struct{}, 1),
		up: map[string]bool{}, sent: map[string]bool{}, trackers: bfdTrackers(c)}
	b.node = func() *vrrp.Node {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.node
	}
	b.srv = bfd.NewServer(bfd.Options{Log: d.log, OnChange: b.changed})
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() {
		defer close(b.done)
		_ = b.srv.Run(ctx)
	}()
	go b.forward(ctx)
	if err := b.srv.Configure(ctx, bfdSessions(c)); err != nil {
		d.log.Error("BFD: " + err.Error())
	}
	d.bfd = b
	d.mu.Lock()
	d.snap.bfd = b
	d.mu.Unlock()
}

// reloadBFD moves the sessions to c's: unchanged ones keep their state.
func (d *Daemon) reloadBFD(c *config.Config) {
	if d.bfd == nil {
		d.startBFD(c)
		return
	}
	d.bfd.mu.Lock()
	d.bfd.trackers = bfdTrackers(c)
	keep := map[string]bool{}
	for _, b := range c.BFDInstances {
		keep[b.Name] = true
	}
	for name := range d.bfd.up {
		if !keep[name] {
			delete(d.bfd.up, name)
			delete(d.bfd.sent, name)
		}
	}
	d.bfd.mu.Unlock()
	if err := d.bfd.srv.Configure(context.Background(), bfdSessions(c)); err != nil {
		d.log.Error("BFD: " + err.Error())
	}
}

// stopBFD ends every session (AdminDown, so the peers know at once).
func (d *Daemon) stopBFD() {
	if d.bfd == nil {
		return
	}
	d.bfd.cancel()
	<-d.bfd.done
}

// changed runs on the BFD server's goroutine: record, wake the forwarder.
func (b *bfdDriver) changed(ev bfd.Event) {
	b.mu.Lock()
	b.up[ev.Name] = ev.To == bfd.Up
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Up reports whether a bfd_instance's session is Up (BFD_CHECK).
func (b *bfdDriver) Up(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.up[name]
}

// forward hands VRRP the states it has not seen, with keepalived's line.
func (b *bfdDriver) forward(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
		}
		b.replay(b.node(), false)
	}
}

// replay hands node the session states; all of them when a VRRP node
// has just started (every tracked BFD starts down in the core).
func (b *bfdDriver) replay(node *vrrp.Node, all bool) {
	if node == nil {
		return
	}
	type change struct {
		name     string
		up       bool
		trackers []string
	}
	var todo []change
	b.mu.Lock()
	for name, up := range b.up {
		if sent, ok := b.sent[name]; all || !ok || sent != up {
			b.sent[name] = up
			todo = append(todo, change{name, up, b.trackers[name]})
		}
	}
	b.mu.Unlock()
	for _, c := range todo {
		if !all {
			for _, in := range c.trackers {
				b.log.Info(fmt.Sprintf("VRRP_Instance(%s) Tracked BFD instance %s is %s", in, c.name, map[bool]string{true: "UP", false: "DOWN"}[c.up]))
			}
		}
		_ = node.SetTrack(vrrp.BFDRef(c.name), c.up)
	}
}

// bfdSessionUp answers BFD_CHECK from any goroutine: false without the
// session (not started, or no BFD at all).
func (d *Daemon) bfdSessionUp(name string) bool {
	d.mu.Lock()
	b := d.snap.bfd
	d.mu.Unlock()
	return b != nil && b.Up(name)
}

// bfdStatus lists the sessions for the API (nil without BFD).
func (d *Daemon) bfdStatus() []bfd.SessionStatus {
	d.mu.Lock()
	b := d.snap.bfd
	d.mu.Unlock()
	if b == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := b.srv.Status(ctx)
	if err != nil {
		return nil
	}
	return st
}
