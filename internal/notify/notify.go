// Package notify tells the outside world about state changes, the ways
// keepalived does, so existing scripts and mail filters keep working:
//
//   - notify scripts: notify_master/backup/fault/stop and notify (with
//     "INSTANCE"|"GROUP" NAME STATE PRIORITY appended) for VRRP instances
//     and sync groups, notify_up/notify_down for real servers,
//     quorum_up/quorum_down for virtual servers; with script_user and
//     enable_script_security and keepalived's refusal rules;
//   - notify FIFOs (notify_fifo, vrrp_notify_fifo, lvs_notify_fifo, with
//     their *_fifo_script readers) with keepalived's line format;
//   - SMTP alerts with keepalived's subjects and bodies.
//
// Where vipd does better than keepalived: the scripts of one instance (or
// real server, or virtual server) run one after the other in the order of
// the events, never two at once, so a "backup" script can no longer
// overtake the "master" script it follows; a slow script holds up only its
// own instance's later scripts and never the VRRP state machine; scripts
// have a timeout; FIFO lines and mail are queued and never block; every
// refused script is logged with the file and the reason.
//
// The daemon creates one Notifier with New and calls VRRP, RealServer and
// Quorum from any goroutine; none of them blocks. Close flushes.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the notification part of global_defs.
type Config struct {
	RouterID string // router_id, the [tag] of mail subjects; default: host name

	ScriptUser, ScriptGroup string // script_user
	ScriptSecurity          bool   // enable_script_security

	// ScriptTimeout bounds each notify script run (keepalived has none);
	// zero means DefaultScriptTimeout, negative means no limit. A script
	// that overruns gets SIGTERM, then SIGKILL, with its process group.
	ScriptTimeout time.Duration
	// QueueLimit bounds the notifications waiting behind a running script,
	// per instance, real server or virtual server; zero means 256.
	QueueLimit int

	NotifyFIFO, VRRPNotifyFIFO, LVSNotifyFIFO FIFOConfig

	Email              []string      // notification_email
	EmailFrom          string        // notification_email_from; default vipd@HOSTNAME
	SMTPServer         string        // smtp_server "HOST [PORT]"; empty: no mail
	SMTPHeloName       string        // smtp_helo_name; default: host name
	SMTPConnectTimeout time.Duration // smtp_connect_timeout; default 30 s

	// smtp_alert, smtp_alert_vrrp, smtp_alert_checker: nil when not set.
	SMTPAlert, SMTPAlertVRRP, SMTPAlertChecker *bool
	NoEmailFaults                              bool // no_email_faults

	Logger *slog.Logger // default slog.Default()
}

// DefaultScriptTimeout is the default of Config.ScriptTimeout.
const DefaultScriptTimeout = 60 * time.Second

// Stats are the counters of a Notifier, for metrics.
type Stats struct {
	ScriptsRun, ScriptsFailed, ScriptsRefused, ScriptsDropped uint64
	FIFOLines, FIFODropped                                    uint64
	MailsSent, MailsFailed, MailsDropped                      uint64
}

// Notifier delivers notifications. Its methods are safe for concurrent
// use and never block.
type Notifier struct {
	cfg Config
	log *slog.Logger

	queues *queues
	cancel context.CancelFunc

	mu        sync.Mutex // orders FIFO lines and guards lastMail
	all       *fifo      // notify_fifo
	vrrpFIFO  *fifo      // vrrp_notify_fifo
	lvsFIFO   *fifo      // lvs_notify_fifo
	mailer    *mailer
	lastMail  map[string]State
	closed    bool // no more FIFO lines or mail
	closeOnce sync.Once

	run, failed, refused, dropped atomic.Uint64
}

// New starts a Notifier: it creates and opens the FIFOs (starting their
// reader scripts) and the mail sender.
func New(cfg Config) (*Notifier, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RouterID == "" {
		cfg.RouterID, _ = os.Hostname()
	}
	if cfg.ScriptTimeout == 0 {
		cfg.ScriptTimeout = DefaultScriptTimeout
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{
		cfg:      cfg,
		log:      cfg.Logger,
		queues:   newQueues(ctx, cfg.QueueLimit),
		cancel:   cancel,
		lastMail: map[string]State{},
	}
	fifos := []struct {
		kw  string
		cfg *FIFOConfig
		dst **fifo
	}{
		{"notify_fifo", &n.cfg.NotifyFIFO, &n.all},
		{"vrrp_notify_fifo", &n.cfg.VRRPNotifyFIFO, &n.vrrpFIFO},
		{"lvs_notify_fifo", &n.cfg.LVSNotifyFIFO, &n.lvsFIFO},
	}
	paths := map[string]string{}
	for _, f := range fifos {
		if f.cfg.Path == "" {
			continue
		}
		if other, dup := paths[f.cfg.Path]; dup {
			cancel()
			return nil, fmt.Errorf("%s %s: the same FIFO as %s (the FIFO names must all be different)", f.kw, f.cfg.Path, other)
		}
		paths[f.cfg.Path] = f.kw
	}
	for _, f := range fifos {
		if f.cfg.Path == "" {
			continue
		}
		ff, err := openFIFO(f.cfg, &n.cfg, n.log, n.warn)
		if err != nil {
			n.closeFIFOs(context.Background())
			cancel()
			return nil, fmt.Errorf("%s: %w", f.kw, err)
		}
		*f.dst = ff
	}
	if cfg.SMTPServer != "" && len(cfg.Email) > 0 {
		m, err := newMailer(&n.cfg, n.log)
		if err != nil {
			n.closeFIFOs(context.Background())
			cancel()
			return nil, err
		}
		n.mailer = m
	}
	return n, nil
}

func (n *Notifier) warn(msg string) { n.log.Warn(msg) }

// CheckScript applies the script security rules to s now, without
// running it, so that configuration checks (vipd -t, reload) can report a
// script that would be refused. Scripts are checked again each time they
// are about to run.
func (n *Notifier) CheckScript(s *Script) error {
	_, err := prepare(s, &n.cfg, nil, n.warn)
	return err
}

// CheckScript is Notifier.CheckScript for a configuration not yet running.
func CheckScript(s *Script, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	_, err := prepare(s, &cfg, nil, func(msg string) { cfg.Logger.Warn(msg) })
	return err
}

// VRRP reports a state change (or FIFO event) of an instance or sync
// group: its notify_STATE script, then its notify script with TYPE NAME
// STATE PRIORITY appended, run in order after the instance's earlier
// scripts; a line on notify_fifo and vrrp_notify_fifo; and, for state
// changes, mail if smtp_alert applies.
func (n *Notifier) VRRP(ev VRRPEvent) {
	typ := "INSTANCE"
	if ev.Group {
		typ = "GROUP"
	}
	src := typ + " " + ev.Name
	var jobs []scriptJob
	if ev.FIFOOnly {
		// no script, no mail
	} else if s := ev.Scripts.forState(ev.State); s != nil {
		jobs = append(jobs, scriptJob{what: "notify_" + stateKeyword(ev.State), script: s})
	}
	if ev.Scripts.Notify != nil && ev.State.isTransition() && !ev.FIFOOnly {
		jobs = append(jobs, scriptJob{what: "notify", script: ev.Scripts.Notify,
			extra: []string{typ, ev.Name, ev.State.String(), fmt.Sprint(ev.Priority)}})
	}
	n.enqueue(src, jobs)

	line := vrrpLine(&ev)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.sendLineLocked(line, n.vrrpFIFO) {
		return
	}

	if !ev.State.isTransition() || ev.FIFOOnly || n.mailer == nil {
		return
	}
	subject, body, ok := vrrpMail(ev.Group, ev.State)
	if !ok || !n.alert(ev.SMTPAlert, n.cfg.SMTPAlertVRRP, false) ||
		(n.cfg.NoEmailFaults && ev.State == StateFault) || n.lastMail[src] == ev.State {
		return
	}
	n.lastMail[src] = ev.State
	n.mailer.send(vrrpSubject(n.cfg.RouterID, &ev, subject), body)
}

// RealServer reports a real server going up or down: its notify_up or
// notify_down script, a line on notify_fifo and lvs_notify_fifo, and mail
// if smtp_alert applies (on by default for real servers, as in
// keepalived).
func (n *Notifier) RealServer(ev RealServerEvent) {
	what := "notify_down"
	if ev.Up {
		what = "notify_up"
	}
	n.lvsEvent("RS "+trio(ev.RS, ev.VS.Key.Proto)+" "+ev.VS.String(), what, ev.Script, rsLine(&ev), ev.SMTPAlert, true,
		func() (string, string) { return rsSubject(n.cfg.RouterID, &ev), rsBody(&ev) })
}

// Quorum reports a virtual server gaining or losing its quorum: its
// quorum_up or quorum_down script, a line on notify_fifo and
// lvs_notify_fifo, and mail if smtp_alert applies.
func (n *Notifier) Quorum(ev QuorumEvent) {
	what := "quorum_down"
	if ev.Up {
		what = "quorum_up"
	}
	n.lvsEvent("VS "+ev.VS.String(), what, ev.Script, vsLine(&ev), ev.SMTPAlert, false,
		func() (string, string) { return vsSubject(n.cfg.RouterID, &ev), vsBody(&ev) })
}

// sendLineLocked writes line to notify_fifo and to the given
// daemon-specific FIFO; false when the notifier is closed (nothing is
// sent then). n.mu must be held.
func (n *Notifier) sendLineLocked(line string, own *fifo) bool {
	if n.closed {
		return false
	}
	n.all.sendIf(line)
	own.sendIf(line)
	return true
}

// lvsEvent delivers a real or virtual server event: its script (queued
// behind the source's earlier ones), the line on notify_fifo and
// lvs_notify_fifo, and mail when smtp_alert applies (alertDefault is the
// answer when nothing is configured).
func (n *Notifier) lvsEvent(src, what string, script *Script, line string, alert *bool, alertDefault bool, mail func() (subject, body string)) {
	if script != nil {
		n.enqueue(src, []scriptJob{{what: what, script: script}})
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.sendLineLocked(line, n.lvsFIFO) {
		return
	}
	if n.mailer != nil && n.alert(alert, n.cfg.SMTPAlertChecker, alertDefault) {
		n.mailer.send(mail())
	}
}

// alert resolves smtp_alert: the object's own setting, else the global
// setting for its kind, else the global smtp_alert, else def.
func (n *Notifier) alert(own, kind *bool, def bool) bool {
	for _, b := range []*bool{own, kind, n.cfg.SMTPAlert} {
		if b != nil {
			return *b
		}
	}
	return def
}

// scriptJob is one script run of a notification.
type scriptJob struct {
	what   string // the keyword, for logs
	script *Script
	extra  []string
}

// enqueue queues the scripts of one notification as one job of src, so
// they run in order and together.
func (n *Notifier) enqueue(src string, jobs []scriptJob) {
	if len(jobs) == 0 {
		return
	}
	ok := n.queues.add(src, func(ctx context.Context) {
		for _, j := range jobs {
			if ctx.Err() != nil {
				n.dropped.Add(1)
				continue
			}
			n.runScript(ctx, src, j)
		}
	})
	if !ok {
		n.dropped.Add(uint64(len(jobs)))
		n.log.Warn("notify scripts dropped: too many notifications waiting behind a running script, or shutting down",
			"source", src, "scripts", len(jobs))
	}
}

func (n *Notifier) runScript(ctx context.Context, src string, j scriptJob) {
	p, err := prepare(j.script, &n.cfg, j.extra, n.warn)
	if err != nil {
		n.refused.Add(1)
		n.log.Warn("refusing to run "+j.what+" script: "+err.Error(),
			"source", src, "script", j.script.String())
		return
	}
	timeout := n.cfg.ScriptTimeout
	if timeout < 0 {
		timeout = 0
	}
	start := time.Now()
	err = run(ctx, p, timeout)
	n.run.Add(1)
	if err != nil {
		n.failed.Add(1)
		level := slog.LevelInfo
		if errors.Is(err, ErrScriptTimeout) {
			level = slog.LevelWarn
		}
		n.log.Log(context.Background(), level, j.what+" script failed", "source", src,
			"script", shellQuote(p.args), "err", err, "duration", time.Since(start).Round(time.Millisecond))
		return
	}
	n.log.Debug(j.what+" script done", "source", src, "script", shellQuote(p.args),
		"duration", time.Since(start).Round(time.Millisecond))
}

func stateKeyword(s State) string {
	switch s {
	case StateMaster:
		return "master"
	case StateBackup:
		return "backup"
	case StateFault:
		return "fault"
	case StateStop:
		return "stop"
	case StateDeleted:
		return "deleted"
	case EventMasterRxLowerPri:
		return "master_rx_lower_pri"
	}
	return "unknown"
}

func (ff *fifo) sendIf(line string) {
	if ff != nil {
		ff.send(line)
	}
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	s := Stats{
		ScriptsRun:     n.run.Load(),
		ScriptsFailed:  n.failed.Load(),
		ScriptsRefused: n.refused.Load(),
		ScriptsDropped: n.dropped.Load(),
	}
	for _, ff := range []*fifo{n.all, n.vrrpFIFO, n.lvsFIFO} {
		if ff != nil {
			s.FIFOLines += ff.written.Load()
			s.FIFODropped += ff.dropped.Load()
		}
	}
	if n.mailer != nil {
		s.MailsSent = n.mailer.sent.Load()
		s.MailsFailed = n.mailer.failed.Load()
		s.MailsDropped = n.mailer.dropped.Load()
	}
	return s
}

// Close flushes: it waits for queued scripts to run, FIFO lines to be
// written and mail to be sent, until ctx is done; then it kills scripts
// still running, drops what is left, stops the FIFO reader scripts and
// removes the FIFOs it created. Notifications after Close are dropped.
func (n *Notifier) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		if !n.queues.close(ctx) {
			err = fmt.Errorf("notify: close: scripts still running: %w", ctx.Err())
		}
		n.cancel() // kills what still runs
		n.queues.wait()
		n.closeFIFOs(ctx)
		if n.mailer != nil {
			n.mailer.close(ctx)
		}
	})
	return err
}

// closeFIFOs stops FIFO lines and mail from being queued and closes the
// FIFOs (in parallel: each may wait for its reader until ctx is done).
func (n *Notifier) closeFIFOs(ctx context.Context) {
	n.mu.Lock()
	n.closed = true
	fifos := []*fifo{n.all, n.vrrpFIFO, n.lvsFIFO}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, ff := range fifos {
		if ff != nil {
			wg.Add(1)
			go func() { defer wg.Done(); ff.close(ctx) }()
		}
	}
	wg.Wait()
}
