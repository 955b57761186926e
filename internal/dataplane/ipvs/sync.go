package ipvs

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Connection synchronisation (keepalived's lvs_sync_daemon). The kernel's
// master sync daemon multicasts new and changed connection entries of
// this director; a backup daemon on the other directors receives them and
// creates the same entries, so that after a failover the new master
// forwards established connections to the same real servers (they would
// otherwise be dropped: IPVS only schedules connection-opening packets).
//
// Like keepalived, the daemon runs a backup sync daemon while its VRRP
// instance is BACKUP or FAULT (and at start), and a master sync daemon
// while it is MASTER: SyncBackup and SyncMaster switch between them.

// SyncDaemons lists the running sync daemons (GET_DAEMON), master first.
func (d *Dataplane) SyncDaemons() ([]SyncDaemon, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncDaemons()
}

func (d *Dataplane) syncDaemons() ([]SyncDaemon, error) {
	msgs, err := d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdGetDaemon, Version: genlVersion}}, d.family.ID, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("ipvs: GET_DAEMON: %w", err)
	}
	var out []SyncDaemon
	for _, m := range msgs {
		sd, err := decodeDaemon(m.Data)
		if err != nil {
			return nil, fmt.Errorf("ipvs: GET_DAEMON: %w", err)
		}
		out = append(out, sd)
	}
	return out, nil
}

// SyncMaster makes this director the sync master: the backup daemon is
// stopped and a master daemon started with cfg. Called when VRRP enters
// MASTER. Idempotent: nothing is written when a master daemon with the
// same settings already runs and no backup daemon does.
func (d *Dataplane) SyncMaster(cfg SyncConfig) error {
	return d.syncSwitch(SyncMaster, SyncBackup, cfg)
}

// SyncBackup makes this director a sync backup: the master daemon is
// stopped and a backup daemon started with cfg. Called at start and when
// VRRP enters BACKUP or FAULT. Idempotent like SyncMaster.
func (d *Dataplane) SyncBackup(cfg SyncConfig) error {
	return d.syncSwitch(SyncBackup, SyncMaster, cfg)
}

// SyncStop stops both sync daemons (shutdown, or lvs_sync_daemon removed
// from the configuration). Stopping a daemon that does not run is not an
// error.
func (d *Dataplane) SyncStop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	running, err := d.syncDaemons()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range running {
		if err := d.stopSync(r.State); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Dataplane) syncSwitch(on, off SyncState, cfg SyncConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	running, err := d.syncDaemons()
	if err != nil {
		return err
	}
	var have *SyncDaemon
	for i := range running {
		switch running[i].State {
		case off:
			if err := d.stopSync(off); err != nil {
				return err
			}
		case on:
			have = &running[i]
		}
	}
	if have != nil {
		if sameSync(have.SyncConfig, cfg) {
			d.syncs[on] = true
			return nil
		}
		if err := d.stopSync(on); err != nil {
			return err
		}
	}
	return d.startSync(on, cfg)
}

// sameSync compares a running daemon with a wanted config; zero fields of
// the wanted one mean "kernel default" and match whatever runs.
func sameSync(have, want SyncConfig) bool {
	if have.Interface != want.Interface || have.SyncID != want.SyncID {
		return false
	}
	if want.MaxLen != 0 && have.MaxLen != want.MaxLen {
		return false
	}
	if want.Port != 0 && have.Port != want.Port {
		return false
	}
	if want.TTL != 0 && have.TTL != want.TTL {
		return false
	}
	if want.Group.IsValid() && have.Group.Unmap() != want.Group.Unmap() {
		return false
	}
	return true
}

func (d *Dataplane) startSync(st SyncState, cfg SyncConfig) error {
	b, err := encodeDaemon(st, &cfg)
	if err != nil {
		return err
	}
	d.writes.Add(1)
	_, err = d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdNewDaemon, Version: genlVersion}, Data: b}, d.family.ID, netlink.Request|netlink.Acknowledge)
	if err != nil {
		return fmt.Errorf("ipvs: start %s sync daemon on %s (syncid %d): %w", st, cfg.Interface, cfg.SyncID, err)
	}
	d.syncs[st] = true
	d.log.Info("ipvs: started sync daemon", "state", st.String(), "interface", cfg.Interface, "syncid", cfg.SyncID, "netns", d.opts.NetNS)
	return nil
}

func (d *Dataplane) stopSync(st SyncState) error {
	b, err := encodeDaemon(st, nil)
	if err != nil {
		return err
	}
	d.writes.Add(1)
	_, err = d.genl.Execute(genetlink.Message{Header: genetlink.Header{Command: cmdDelDaemon, Version: genlVersion}, Data: b}, d.family.ID, netlink.Request|netlink.Acknowledge)
	if err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ipvs: stop %s sync daemon: %w", st, err)
	}
	delete(d.syncs, st)
	d.log.Info("ipvs: stopped sync daemon", "state", st.String(), "netns", d.opts.NetNS)
	return nil
}
