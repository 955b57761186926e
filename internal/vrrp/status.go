package vrrp

import (
	"net/netip"
	"slices"
	"time"
)

// Status is a snapshot of everything VRRP.
type Status struct {
	Instances []InstanceStatus `json:"instances"`
	Groups    []GroupStatus    `json:"groups,omitempty"`
	Scripts   []ScriptStatus   `json:"scripts,omitempty"`
	Processes []ProcessStatus  `json:"processes,omitempty"`
	// UnknownVRID counts adverts with a VRID no instance has, per
	// interface (IPv6 sockets as "eth0/v6").
	UnknownVRID map[string]uint64 `json:"unknown_vrid,omitempty"`
}

// InstanceStatus is one instance's state and counters (the fields of
// api.Instance).
type InstanceStatus struct {
	Name              string        `json:"name"`
	Interface         string        `json:"interface"`
	VRID              int           `json:"vrid"`
	Version           int           `json:"version"`
	Family            string        `json:"family"`
	State             string        `json:"state"`
	Priority          int           `json:"priority"`
	EffectivePriority int           `json:"effective_priority"`
	AdvertInterval    time.Duration `json:"advert_interval"`
	MasterAddr        netip.Addr    `json:"master_addr"`
	MasterPriority    int           `json:"master_priority"`
	VIPs              []string      `json:"vips"`
	SyncGroup         string        `json:"sync_group,omitempty"`
	Transitions       uint64        `json:"transitions"`
	LastTransition    time.Time     `json:"last_transition"`
	FaultReasons      []string      `json:"fault_reasons,omitempty"`
	Stats             Stats         `json:"stats"`
	// PriorityChanges counts changes of the effective priority
	// (keepalived's notify_priority_changes events).
	PriorityChanges uint64 `json:"priority_changes"`
}

// GroupStatus is a sync group's state.
type GroupStatus struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Instances []string `json:"instances"`
}

// ScriptStatus is a vrrp_script's state.
type ScriptStatus struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Weight     int       `json:"weight"`
	LastChange time.Time `json:"last_change"`
}

// ProcessStatus is a vrrp_track_process's state: State is UP while its
// quorum holds, DOWN, or INIT before the first scan.
type ProcessStatus struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Count      int       `json:"count"`
	Quorum     int       `json:"quorum"`
	QuorumMax  int       `json:"quorum_max"` // -1: unlimited
	Weight     int       `json:"weight"`
	LastChange time.Time `json:"last_change"`
}

// Status returns a snapshot of the core.
func (c *Core) Status() Status {
	var st Status
	for _, name := range c.order {
		ci := c.insts[name]
		m := ci.m
		ma, mp := m.Master()
		tr, last := m.Transitions()
		fam := "inet"
		if ci.key.V6 {
			fam = "inet6"
		}
		var vips []string
		for _, v := range ci.vips {
			vips = append(vips, v.Prefix.String())
		}
		st.Instances = append(st.Instances, InstanceStatus{
			Name: name, Interface: ci.cfg.Interface, VRID: ci.cfg.VRID, Version: m.Config().Version, Family: fam,
			State: m.State().String(), Priority: int(m.Config().Priority), EffectivePriority: m.EffectivePriority(),
			AdvertInterval: m.Config().AdvertInt, MasterAddr: ma, MasterPriority: mp, VIPs: vips, SyncGroup: ci.group,
			Transitions: tr, LastTransition: last, FaultReasons: m.Faults(), Stats: m.Stats(), PriorityChanges: ci.prioChanges,
		})
	}
	for _, gc := range c.cfg.Groups {
		if g := c.groups[gc.Name]; g != nil {
			st.Groups = append(st.Groups, GroupStatus{Name: gc.Name, State: g.State().String(), Instances: slices.Clone(gc.Instances)})
		}
	}
	for _, sc := range c.cfg.Scripts {
		if sr := c.scripts[sc.Name]; sr != nil {
			st.Scripts = append(st.Scripts, ScriptStatus{Name: sc.Name, State: sr.tracker.State().String(), Weight: sc.Weight, LastChange: sr.changed})
		}
	}
	for _, pc := range c.cfg.TrackProcesses {
		if pr := c.procs[pc.Name]; pr != nil {
			state := "INIT"
			if pr.known {
				state = map[bool]string{true: "UP", false: "DOWN"}[pr.up]
			}
			st.Processes = append(st.Processes, ProcessStatus{Name: pc.Name, State: state, Count: pr.count,
				Quorum: pc.Quorum, QuorumMax: pc.QuorumMax, Weight: pr.cfg.Weight, LastChange: pr.changed})
		}
	}
	for k, s := range c.socks {
		if s.unknownVRID > 0 {
			if st.UnknownVRID == nil {
				st.UnknownVRID = map[string]uint64{}
			}
			st.UnknownVRID[k.String()] = s.unknownVRID
		}
	}
	return st
}
