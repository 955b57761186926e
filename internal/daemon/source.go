package daemon

import (
	"context"
	"maps"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lvs"
)

// source is the Daemon as the API sees it.
type source Daemon

var _ api.Source = (*source)(nil)

func (s *source) d() *Daemon { return (*Daemon)(s) }

// packetCounter is a data plane with a packet path of its own (xdp),
// which counts what it did with each packet, by reason.
type packetCounter interface {
	Reasons() map[string]uint64
}

// Status assembles a snapshot from every part: VRRP, data plane and
// checkers answer for themselves; the daemon's own state comes from the
// last published snapshot.
func (s *source) Status() api.Status {
	d := s.d()
	d.mu.Lock()
	snap := d.snap
	results := maps.Clone(snap.reloadResults)
	upgrades := maps.Clone(snap.upgradeResults)
	d.mu.Unlock()
	host, _ := os.Hostname()
	st := api.Status{
		Version:        d.opts.Version,
		Hostname:       host,
		PID:            os.Getpid(),
		Started:        d.started,
		ConfigFile:     d.opts.ConfigFile,
		ConfigLoaded:   snap.loaded,
		Reloads:        snap.reloads,
		ReloadResults:  results,
		UpgradeResults: upgrades,
		Dataplane:      d.dpName,
		Services:       []lvs.ServiceStatus{},
		Instances:      []api.Instance{},
		Checks:         []api.Check{},
	}
	if d.opts.VRRPOnly {
		st.Dataplane = "none"
	}
	if snap.cfg != nil {
		st.RouterID = snap.cfg.Global.RouterID
	}
	if st.RouterID == "" {
		st.RouterID = strings.SplitN(host, ".", 2)[0]
	}
	d.mu.Lock()
	node := d.node
	d.mu.Unlock()
	if node != nil {
		vs := node.Status()
		for _, in := range vs.Instances {
			ai := api.Instance{
				Name: in.Name, Interface: in.Interface, VRID: in.VRID, Version: in.Version, Family: in.Family,
				State: in.State, Priority: in.Priority, EffectivePriority: in.EffectivePriority,
				AdvertInterval: in.AdvertInterval, MasterAddr: in.MasterAddr, MasterPriority: in.MasterPriority,
				VIPs: in.VIPs, SyncGroup: in.SyncGroup, Transitions: in.Transitions, LastTransition: in.LastTransition,
				FaultReasons: in.FaultReasons,
			}
			ai.Stats = api.VRRPStats{
				AdvertRcvd: in.Stats.AdvertRcvd, AdvertSent: in.Stats.AdvertSent,
				BecomeMaster: in.Stats.BecomeMaster, ReleaseMaster: in.Stats.ReleaseMaster,
				PriZeroRcvd: in.Stats.PriZeroRcvd, PriZeroSent: in.Stats.PriZeroSent,
				Dropped: in.Stats.Dropped,
			}
			// keepalived's error counters, from vipd's drop reasons.
			dr := in.Stats.Dropped
			ai.Stats.PacketLenErr = dr["length"]
			ai.Stats.AdvertIntervalErr = dr["interval"]
			ai.Stats.IPTTLErr = dr["ttl"]
			ai.Stats.InvalidTypeRcvd = dr["type"]
			ai.Stats.AddrListErr = dr["addr_list"]
			ai.Stats.InvalidAuthType = dr["auth_type"]
			ai.Stats.AuthTypeMismatch = dr["auth_type"]
			ai.Stats.AuthFailure = dr["auth"]
			st.Instances = append(st.Instances, ai)
		}
		for _, g := range vs.Groups {
			st.SyncGroups = append(st.SyncGroups, api.SyncGroup{Name: g.Name, State: g.State, Instances: g.Instances})
		}
		for _, sc := range vs.Scripts {
			st.Scripts = append(st.Scripts, api.Script{Name: sc.Name, State: sc.State, Weight: sc.Weight, LastChange: sc.LastChange})
		}
		for _, p := range vs.Processes {
			st.Processes = append(st.Processes, api.Process{Name: p.Name, State: p.State, Count: p.Count, Quorum: p.Quorum,
				QuorumMax: p.QuorumMax, Weight: p.Weight, LastChange: p.LastChange})
		}
	}
	if snap.dp != nil {
		st.Services = snap.dp.Services()
	}
	if k, ok := snap.dp.(*ipvs.Dataplane); ok {
		// Read each time: the kernel's values, not a remembered copy.
		if info, err := k.Info(); err == nil {
			st.IPVS = &api.IPVSInfo{Version: info.Version, ConnTabSize: info.ConnTabSize}
		} else {
			d.log.Warn("status: cannot read the kernel's IPVS version", "err", err)
		}
	}
	if pc, ok := snap.dp.(packetCounter); ok {
		st.Packets = pc.Reasons()
	}
	st.Quorum = snap.quorum
	if r := snap.runner; r != nil && snap.rsOfName != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		checks, _ := r.Status(ctx)
		cancel()
		for _, c := range checks {
			ref := snap.rsOfName[c.Server]
			h := snap.health[c.Server]
			kind, _, _ := strings.Cut(c.Checker, " ")
			st.Checks = append(st.Checks, api.Check{
				VirtualServer: ref.vs, RealServer: ref.rs, Kind: kind, Up: c.Up, Reason: c.Last.Reason,
				Weight: clampWeight(h.weight), LastCheck: c.LastCheck, LastChange: c.LastChange,
				Duration: c.Duration, Checks: c.Checks, Failures: c.Failed,
			})
		}
		sort.SliceStable(st.Checks, func(i, j int) bool {
			if st.Checks[i].VirtualServer != st.Checks[j].VirtualServer {
				return st.Checks[i].VirtualServer < st.Checks[j].VirtualServer
			}
			return st.Checks[i].RealServer < st.Checks[j].RealServer
		})
	}
	st.BGP = d.bgpStatus()
	st.BFD = d.bfdStatus()
	return st
}

func (s *source) Conns() []lvs.ConnEntry {
	d := s.d()
	d.mu.Lock()
	dp := d.snap.dp
	d.mu.Unlock()
	if dp == nil {
		return nil
	}
	return dp.Conns()
}

func (s *source) Reload(ctx context.Context) error { return s.d().Reload(ctx) }

func (s *source) Ready() error {
	d := s.d()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap.ready
}

var _ api.Upgrader = (*source)(nil)

// Upgrade replaces the daemon's process (upgrade.go).
func (s *source) Upgrade(ctx context.Context) (api.UpgradeResult, error) {
	return s.d().Upgrade(ctx)
}
