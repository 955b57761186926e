package vrrp

import (
	"fmt"
	"time"
)

// Group is a vrrp_sync_group: instances that change state together, as
// keepalived does it. When one member becomes MASTER the others follow;
// when one steps down to BACKUP the others do; when one goes to FAULT the
// others go too, and they leave FAULT together once no member has a fault
// of its own. A member whose down timer expires waits (still BACKUP) until
// every other member's has expired as well, so a group never splits
// because one member still hears a master.
//
// A Group is pure like Machine: Machine.Step drives it, and the actions
// of every member come back from that one Step, each naming its instance.
type Group struct {
	name    string
	members []*Machine
}

// NewGroup ties machines into a sync group. A machine belongs to at most
// one group.
func NewGroup(name string, members ...*Machine) (*Group, error) {
	g := &Group{name: name}
	for _, m := range members {
		if m.group != nil && m.group != g {
			return nil, fmt.Errorf("vrrp_sync_group %s: instance %s is already in group %s", name, m.cfg.Name, m.group.name)
		}
		m.group = g
		g.members = append(g.members, m)
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Members returns the group's instances.
func (g *Group) Members() []*Machine { return g.members }

// State is MASTER when every member is, FAULT when any is, else BACKUP
// (INIT before start, STOP after).
func (g *Group) State() State {
	all := StateMaster
	for _, m := range g.members {
		switch m.state {
		case StateFault:
			return StateFault
		case StateInit, StateStop:
			return m.state
		case StateBackup:
			all = StateBackup
		}
	}
	return all
}

func (g *Group) canGoMaster(m *Machine) bool {
	for _, o := range g.members {
		if o == m || o.state == StateMaster || o.wantMaster {
			continue
		}
		return false
	}
	return true
}

// heldBackup reports whether a member other than m is a backup that
// hears a master and does not want to take over: the group cannot be
// all MASTER. A member still starting (INIT) or waiting out its down
// timer without having heard a master does not count: it may yet join
// the masters.
func (g *Group) heldBackup(m *Machine) bool {
	for _, o := range g.members {
		if o != m && o.state == StateBackup && !o.wantMaster && !o.masterRxAt.IsZero() {
			return true
		}
	}
	return false
}

// sync brings the other members in line after m went from prev to its
// current state. Their actions are appended to m's output.
func (g *Group) sync(m *Machine, prev State, now time.Time) {
	run := func(o *Machine, f func()) {
		saved := o.out
		o.out = nil
		f()
		if o == m {
			o.out = append(saved, o.out...)
			return
		}
		m.out = append(m.out, o.out...)
		o.out = saved
	}
	logf := func(format string, args ...any) {
		m.out = append(m.out, Action{Kind: ActLog, Instance: m.cfg.Name, Msg: fmt.Sprintf("VRRP_Group(%s) ", g.name) + fmt.Sprintf(format, args...)})
	}

	// Faults: a member is held in FAULT while another has a fault of its own.
	changedFault := false
	for _, o := range g.members {
		held := false
		for _, p := range g.members {
			if p != o && len(p.faults) > 0 {
				held = true
			}
		}
		if o.syncFault != held && o.state != StateInit && o.state != StateStop {
			o.syncFault = held
			before := o.state
			run(o, func() { o.evalFault(now) })
			if o.state != before {
				changedFault = true
			}
		} else {
			o.syncFault = held
		}
	}
	if changedFault {
		if g.State() == StateFault {
			logf("Syncing instances to FAULT state")
		}
		return
	}

	switch {
	case prev != StateMaster && m.state == StateMaster:
		g.follow(m, StateBackup, "MASTER", logf, func(o *Machine) {
			run(o, func() { o.becomeMaster(now) })
		})
	case prev == StateMaster && m.state == StateBackup:
		g.follow(m, StateMaster, "BACKUP", logf, func(o *Machine) {
			run(o, func() { o.leaveMaster(now, StateBackup, false) })
		})
		for _, o := range g.members {
			if o != m && o.wantMaster {
				o.wantMaster = false
				o.downAt = now.Add(o.MasterDownInterval())
			}
		}
	}
}

// follow moves the other members that are in state from with move,
// logging "Syncing instances to <to> state" once if there are any.
func (g *Group) follow(m *Machine, from State, to string, logf func(string, ...any), move func(*Machine)) {
	synced := false
	for _, o := range g.members {
		if o == m || o.state != from {
			continue
		}
		if !synced {
			logf("Syncing instances to %s state", to)
			synced = true
		}
		move(o)
	}
}
