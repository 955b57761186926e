package daemon

import (
	"fmt"
	"log/slog"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/notify"
)

// notifyConfig maps global_defs onto the notification settings.
func notifyConfig(c *config.Config, log *slog.Logger) notify.Config {
	g := c.Global
	nc := notify.Config{
		RouterID:           g.RouterID,
		ScriptUser:         g.ScriptUser,
		ScriptGroup:        g.ScriptGroup,
		ScriptSecurity:     g.EnableScriptSecurity,
		Email:              g.NotificationEmails,
		EmailFrom:          g.NotificationEmailFrom,
		SMTPHeloName:       g.SMTPHeloName,
		SMTPConnectTimeout: g.SMTPConnectTimeout,
		SMTPAlert:          g.SMTPAlert,
		SMTPAlertVRRP:      g.SMTPAlertVRRP,
		SMTPAlertChecker:   g.SMTPAlertChecker,
		NoEmailFaults:      g.NoEmailFaults,
		NotifyFIFO:         fifo(g.NotifyFIFO),
		VRRPNotifyFIFO:     fifo(g.VRRPNotifyFIFO),
		LVSNotifyFIFO:      fifo(g.LVSNotifyFIFO),
		Logger:             log,
	}
	if g.SMTPServer != nil {
		nc.SMTPServer = fmt.Sprintf("%s %d", g.SMTPServer.Host, g.SMTPServer.Port)
	}
	return nc
}

func fifo(f *config.FIFO) notify.FIFOConfig {
	if f == nil {
		return notify.FIFOConfig{}
	}
	return notify.FIFOConfig{Path: f.Path, User: f.User, Group: f.Group, Script: notifyScript(f.Script)}
}

func notifyScript(s *config.Script) *notify.Script {
	if s == nil || len(s.Argv) == 0 {
		return nil
	}
	return &notify.Script{Args: append([]string(nil), s.Argv...), User: s.User, Group: s.Group}
}

// vrrpScripts finds the notify scripts and smtp_alert of an instance or
// sync group.
func vrrpScripts(c *config.Config, group bool, name string) (notify.VRRPScripts, *bool) {
	var n *config.Notify
	var alert bool
	if group {
		for _, g := range c.SyncGroups {
			if g.Name == name {
				n, alert = &g.Notify, g.SMTPAlert
			}
		}
	} else {
		for _, in := range c.Instances {
			if in.Name == name {
				n, alert = &in.Notify, in.SMTPAlert
			}
		}
	}
	if n == nil {
		return notify.VRRPScripts{}, nil
	}
	s := notify.VRRPScripts{
		Master:           notifyScript(n.Master),
		Backup:           notifyScript(n.Backup),
		Fault:            notifyScript(n.Fault),
		Stop:             notifyScript(n.Stop),
		Deleted:          notifyScript(n.DeletedScript),
		MasterRxLowerPri: notifyScript(n.MasterRxLowerPri),
		Notify:           notifyScript(n.Any),
	}
	var a *bool
	if alert {
		a = &alert
	}
	return s, a
}

func notifyVS(p *vsPlan) notify.VirtualServer {
	vs := notify.VirtualServer{Group: p.cfg.Group}
	if len(p.keys) > 0 {
		vs.Key = p.keys[0].key
	} else {
		vs.Key = lvs.ServiceKey{Proto: p.cfg.Protocol, Addr: p.cfg.Addr}
	}
	return vs
}

// syncDaemonState follows lvs_sync_daemon's instance: the kernel sync
// daemon runs as master on the VRRP master and as backup elsewhere, as
// keepalived does.
func (d *Daemon) syncDaemonState(state string) {
	sd := d.gen.cfg.Global.LVSSyncDaemon
	k, ok := d.dp.(*ipvs.Dataplane)
	if sd == nil || !ok {
		return
	}
	sc := ipvs.SyncConfig{Interface: sd.Interface, Port: sd.Port, Group: sd.Group}
	if sd.SyncID >= 0 {
		sc.SyncID = uint8(sd.SyncID)
	} else {
		for _, in := range d.gen.cfg.Instances {
			if in.Name == sd.Instance {
				sc.SyncID = uint8(in.VRID)
			}
		}
	}
	if sd.MaxLen > 0 {
		sc.MaxLen = uint16(sd.MaxLen)
	}
	if sd.TTL > 0 {
		sc.TTL = uint8(sd.TTL)
	}
	var err error
	switch state {
	case "MASTER":
		err = k.SyncMaster(sc)
		d.log.Info("lvs_sync_daemon: starting as master", "interface", sc.Interface, "syncid", sc.SyncID)
	case "BACKUP", "FAULT", "INIT":
		err = k.SyncBackup(sc)
		d.log.Info("lvs_sync_daemon: starting as backup", "interface", sc.Interface, "syncid", sc.SyncID)
	case "STOP":
		err = k.SyncStop()
	}
	if err != nil {
		d.log.Error("lvs_sync_daemon", "err", err)
	}
}
