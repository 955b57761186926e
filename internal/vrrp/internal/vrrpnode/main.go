// Command vrrpnode runs a vrrp.Node from a JSON configuration, logging to
// stderr the way "keepalived -l" does. It is the stand-in for vipd in the
// VRRP end-to-end tests and the failover benchmark until the daemon runs
// VRRP from keepalived.conf.
//
//	vrrpnode -config node.json [-status status.json]
//
// SIGTERM or SIGINT stops it cleanly (priority 0 advert, VIPs removed);
// SIGHUP re-reads the configuration and applies it (hot reload); SIGUSR1
// writes the status as JSON to the -status file.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/vrrp"
)

func main() {
	confPath := flag.String("config", "", "configuration (JSON of vrrp.Config)")
	statusPath := flag.String("status", "", "file SIGUSR1 writes the status to")
	flag.Parse()
	log := slog.New(&consoleHandler{w: os.Stderr})
	if tuned := vrrp.PrepareRuntime(); tuned != "" {
		log.Info("Go runtime: " + tuned)
	}
	if err := run(*confPath, *statusPath, log); err != nil {
		log.Error(err.Error())
		os.Exit(1)
	}
}

func load(path string) (vrrp.Config, error) {
	var cfg vrrp.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func run(confPath, statusPath string, log *slog.Logger) error {
	cfg, err := load(confPath)
	if err != nil {
		return err
	}
	notifier := vrrp.NotifierFunc(func(n vrrp.Notification) {
		log.Info(fmt.Sprintf("notify %s %s %s %d", n.Type, n.Name, n.State, n.Priority))
	})
	node, err := vrrp.New(cfg, vrrp.Deps{Logger: log, Notifier: notifier})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			st := node.Status()
			b, _ := json.MarshalIndent(st, "", "  ")
			if statusPath != "" {
				tmp := statusPath + ".tmp"
				if err := os.WriteFile(tmp, b, 0o644); err == nil {
					_ = os.Rename(tmp, statusPath)
				}
			}
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("Reloading")
			cfg, err := load(confPath)
			if err == nil {
				err = node.Reload(cfg)
			}
			if err != nil {
				log.Error(fmt.Sprintf("reload refused, running configuration kept: %v", err))
				continue
			}
			log.Info("Reload complete")
		}
	}()
	log.Info("Starting VRRP child process (vrrpnode)")
	err = node.Run(ctx)
	log.Info("Stopped")
	return err
}

// consoleHandler writes "Sat Nov 21 21:56:53 2026: message", keepalived's
// console log format.
type consoleHandler struct {
	mu sync.Mutex
	w  io.Writer
}

func (h *consoleHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	_, err := fmt.Fprintf(h.w, "%s: %s\n", t.Format("Mon Jan _2 15:04:05.000 2006"), r.Message)
	return err
}
func (h *consoleHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *consoleHandler) WithGroup(string) slog.Handler      { return h }
