package vrrp

import (
	"net/netip"
	"time"
)

// Resume is what one instance's machine must know to carry on in another
// process exactly where it stood (vipctl upgrade): its state and the
// timers that matter to its peers. A master keeps its advert schedule
// (NextAdvert), so a backup peer sees no gap longer than one interval
// plus the handover; a backup keeps the master it heard and its down
// timer, so a handover never looks like a silent master.
//
// Times are absolute: both processes run on one host and read the same
// clock.
type Resume struct {
	State       State
	MasterAddr  netip.Addr    // backup: the master last heard
	MasterPrio  int           // backup: its priority
	MasterAdver time.Duration // the interval the down timer is based on
	NextAdvert  time.Time     // master: when the next advert is due
	DownAt      time.Time     // backup: when the master down timer fires
}

// Resumable reports the machine's Resume; ok is false in a state that is
// not carried (INIT, FAULT, STOP: the next process starts such an
// instance afresh, as at any start).
func (m *Machine) Resumable() (r Resume, ok bool) {
	switch m.state {
	case StateMaster:
		return Resume{State: StateMaster, MasterAdver: m.masterAdver, NextAdvert: m.advertAt}, true
	case StateBackup:
		if m.initListen {
			// Still listening before a first claim: the next process
			// listens afresh (a start, not a handover).
			return Resume{}, false
		}
		return Resume{State: StateBackup, MasterAddr: m.masterAddr, MasterPrio: m.masterPrio,
			MasterAdver: m.masterAdver, DownAt: m.downAt}, true
	}
	return Resume{}, false
}

// resume leaves INIT straight into r.State, as another process left it:
// no VIP removal, no GARP, no advert before its time, no state change
// reported as one (ActStateChange carries Resumed, for the daemon's own
// bookkeeping). A master re-adds its VIPs, which are already there (the
// host's add is idempotent), so that it owns them for a later shutdown.
// A faulted instance starts as usual.
func (m *Machine) resume(now time.Time, r Resume) {
	if m.state != StateInit {
		return
	}
	if m.faulted() || (r.State != StateMaster && r.State != StateBackup) {
		m.start(now)
		return
	}
	if r.MasterAdver > 0 {
		m.masterAdver = r.MasterAdver
	}
	switch r.State {
	case StateMaster:
		m.logf("Resuming MASTER STATE (handed over by the previous vipd process)")
		m.masterAdver = m.cfg.AdvertInt
		m.state = StateMaster
		m.emit(Action{Kind: ActAddVIPs})
		m.emit(Action{Kind: ActStateChange, From: StateInit, To: StateMaster, Resumed: true})
		m.advertAt = r.NextAdvert
		if m.advertAt.IsZero() || m.advertAt.After(now.Add(m.cfg.AdvertInt)) {
			// Unknown, or further than one interval away (a clock
			// jump): advertise on the normal schedule from now.
			m.advertAt = now
		}
		if m.cfg.GARPMasterRefresh > 0 {
			m.garpRefreshAt = now.Add(m.cfg.GARPMasterRefresh)
		}
		if m.cfg.GARPExtraIf > 0 {
			m.garpExtraAt = now.Add(m.cfg.GARPExtraIf)
		}
		m.masterAddr, m.masterPrio, m.masterRxAt = m.addr, m.eff, time.Time{}
	case StateBackup:
		m.logf("Resuming BACKUP STATE (handed over by the previous vipd process)")
		m.state = StateBackup
		m.emit(Action{Kind: ActStateChange, From: StateInit, To: StateBackup, Resumed: true})
		m.masterAddr, m.masterPrio, m.masterRxAt = r.MasterAddr, r.MasterPrio, now
		m.downAt = r.DownAt
		if m.downAt.IsZero() || m.downAt.After(now.Add(m.MasterDownInterval())) {
			m.downAt = now.Add(m.MasterDownInterval())
		}
	}
}

// Resumable returns the Resume of every instance in a state that is
// carried, by name: what Node.Handoff gives the next process.
func (c *Core) Resumable() map[string]Resume {
	out := map[string]Resume{}
	for name, ci := range c.insts {
		if r, ok := ci.m.Resumable(); ok {
			out[name] = r
		}
	}
	return out
}

// detach stops the core without touching what it runs for the network:
// no priority 0 advert, no VIP removed, no state change. Scripts, file
// watches and sockets stop. The process that takes over resumes the
// instances (Input.Resume).
func (c *Core) detach() {
	for _, name := range sortedKeys(c.scripts) {
		c.emit(Effect{Kind: EffStopScript, Name: name})
	}
	for _, name := range sortedKeys(c.files) {
		c.emit(Effect{Kind: EffStopFile, Name: name})
	}
	for k := range c.socks {
		c.emit(Effect{Kind: EffUnlisten, Sock: k})
	}
	c.stopped = true
}
