package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/daemon"
	"github.com/vipd/vipd/internal/vrrp"
)

// run starts the daemon and runs it until SIGTERM or SIGINT. SIGHUP
// reloads the configuration; SIGUSR1 writes the full state as JSON to
// the data file, SIGUSR2 the VRRP counters to the stats file, like
// keepalived's /tmp/keepalived.data and /tmp/keepalived.stats.
func run(o Options) int {
	level := slog.LevelInfo
	if o.LogDetail {
		level = slog.LevelDebug
	}
	var h slog.Handler = daemon.NewLogHandler(os.Stderr, level, true)
	if !o.LogConsole {
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "vipd"); err == nil {
			h = daemon.NewLogHandler(w, level, false)
		}
	}
	log := slog.New(h)
	slog.SetDefault(log)
	// Before any goroutine of the daemon starts: see vrrp.PrepareRuntime.
	if tuned := vrrp.PrepareRuntime(); tuned != "" {
		log.Debug("Go runtime: " + tuned)
	}

	dp := o.Dataplane
	if dp == config.DataplaneAuto {
		dp = ""
	}
	// Started by `vipctl upgrade`: the running vipd hands over on fd 3.
	var ho *daemon.Handover
	if os.Getenv(daemon.HandoverEnv) != "" {
		var err error
		if ho, err = daemon.AcceptHandover(); err != nil {
			log.Error("upgrade: " + err.Error())
			return 1
		}
	}
	d, err := daemon.New(daemon.Options{
		ConfigFile: o.ConfigFile,
		ConfigID:   o.ConfigID,
		Dataplane:  dp,
		// The daemon judges as the version given, refusing what it
		// does not know.
		KeepalivedVersion: o.KeepalivedVersion,
		Control:           o.Control,
		Metrics:           o.Metrics,
		PIDFile:           o.PIDFile,
		DataFile:          o.DataFile,
		StatsFile:         o.StatsFile,
		IPVSState:         o.IPVSState,
		XDPPins:           o.XDPPins,
		XDPIfaces:         splitList(o.XDPIfaces),
		VRRPOnly:          o.VRRPOnly,
		CheckOnly:         o.CheckOnly,
		Version:           version,
		Logger:            log,
		Handover:          ho,
	})
	if err != nil {
		// The previous vipd keeps running and reports this.
		ho.Fail("load the configuration", err)
		var ce *api.ConfigError
		if errors.As(err, &ce) {
			for _, dg := range ce.Diagnostics {
				log.Error(dg)
			}
			log.Error("configuration rejected; vipd is not starting (vipd -t shows every finding)")
			return config.ExitConfig
		}
		log.Error(err.Error())
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			switch s {
			case syscall.SIGHUP:
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				if err := d.Reload(rctx); err != nil && ctx.Err() == nil {
					log.Error("reload: " + err.Error())
				}
				cancel()
			case syscall.SIGUSR1:
				if err := d.WriteData(); err != nil {
					log.Error("SIGUSR1 dump", "err", err)
				}
			case syscall.SIGUSR2:
				if err := d.WriteStats(); err != nil {
					log.Error("SIGUSR2 stats", "err", err)
				}
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error(err.Error())
		return 1
	}
	fmt.Fprint(os.Stderr)
	return 0
}

// splitList splits a comma-separated flag value; empty gives nil.
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
