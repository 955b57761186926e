// Command vipd is a high-availability load balancer that reads
// keepalived.conf: VRRP failover, virtual servers over health-checked real
// servers, with a userspace proxy or the kernel's IPVS as data plane.
//
// Its options are keepalived's (same letters, same long names) plus vipd's
// own runtime paths. `vipd -t` checks a configuration and exits as
// `keepalived -t` does; `vipd -d` prints the normalized configuration.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/daemon"
)

// Options are the parsed command-line options; run receives them.
type Options struct {
	ConfigFile string // -f, --use-file
	ConfigTest bool   // -t, --config-test
	// ConfigTestLog is the FILE of --config-test=FILE: diagnostics go
	// there instead of stderr.
	ConfigTestLog string
	DumpConf      bool   // -d, --dump-conf
	DontFork      bool   // -n, --dont-fork
	LogConsole    bool   // -l, --log-console
	LogDetail     bool   // -D, --log-detail
	PIDFile       string // -p, --pid
	VRRPPIDFile   string // -r, --vrrp_pid (accepted; vipd is one process)
	CheckPIDFile  string // -c, --checkers_pid (accepted; vipd is one process)
	VRRPOnly      bool   // -P, --vrrp
	CheckOnly     bool   // -C, --check
	ConfigID      string // -i, --config-id (default: short host name)
	Dataplane     string // --dataplane auto|proxy|ipvs ("" = the configuration's vipd_dataplane, else auto)
	// KeepalivedVersion is --keepalived-version: judge the configuration
	// as keepalived 2.2 (default) or 2.4 does.
	KeepalivedVersion string
	Control           string // --control: unix socket of vipctl
	Metrics           string // --metrics: Prometheus listen address ("" = off)
	Signum            string // --signum: print a signal number and exit
	DataFile          string // --data-file: SIGUSR1's dump
	StatsFile         string // --stats-file: SIGUSR2's dump
	IPVSState         string // --ipvs-state: the ipvs data plane's ownership record
	XDPPins           string // --xdp-pins: bpffs directory of the xdp data plane's maps
	XDPIfaces         string // --xdp-interfaces: more interfaces for the xdp program
}

// option describes one command-line option; the table drives parsing and
// --help, so the help text cannot miss an option.
type option struct {
	short    byte
	long     string
	arg      string // "" for a flag; the placeholder otherwise
	optional bool   // the argument is optional (--long=VALUE only)
	help     string
	set      func(o *Options, v string)
}

var options = []option{
	{'f', "use-file", "FILE", false, "use the configuration file FILE (default " + config.DefaultPath + ")", func(o *Options, v string) { o.ConfigFile = v }},
	{'t', "config-test", "FILE", true, "check the configuration and exit: 0 if valid, keepalived's exit codes otherwise (4 cannot run, 5 errors or warnings, 6 scripts would run as root without enable_script_security, 7 no configuration file); diagnostics go to stderr, or to FILE", func(o *Options, v string) {
		o.ConfigTest = true
		o.ConfigTestLog = v
	}},
	{'d', "dump-conf", "", false, "print the normalized configuration as JSON and exit (with the exit code of -t)", func(o *Options, v string) { o.DumpConf = true }},
	{'i', "config-id", "ID", false, "use configuration id ID for @ID conditional lines (default: the host name up to the first dot)", func(o *Options, v string) { o.ConfigID = v }},
	{'n', "dont-fork", "", false, "stay in the foreground (vipd never forks; accepted for keepalived compatibility)", func(o *Options, v string) { o.DontFork = true }},
	{'l', "log-console", "", false, "log to the console (stderr) instead of syslog", func(o *Options, v string) { o.LogConsole = true }},
	{'D', "log-detail", "", false, "log detailed messages", func(o *Options, v string) { o.LogDetail = true }},
	{'p', "pid", "FILE", false, "write the process id to FILE (default /run/vipd/vipd.pid)", func(o *Options, v string) { o.PIDFile = v }},
	{'r', "vrrp_pid", "FILE", false, "accepted for keepalived compatibility (vipd is one process; no VRRP child pid file)", func(o *Options, v string) { o.VRRPPIDFile = v }},
	{'c', "checkers_pid", "FILE", false, "accepted for keepalived compatibility (vipd is one process; no checker child pid file)", func(o *Options, v string) { o.CheckPIDFile = v }},
	{'P', "vrrp", "", false, "run only VRRP (no virtual servers, no health checks)", func(o *Options, v string) { o.VRRPOnly = true }},
	{'C', "check", "", false, "run only the virtual servers and health checks (no VRRP)", func(o *Options, v string) { o.CheckOnly = true }},
	{0, "dataplane", "auto|proxy|ipvs|xdp", false, "data plane of the virtual servers: proxy (userspace, the default when the kernel has no IPVS), ipvs (kernel IPVS, needed for TUN and fwmark), xdp (DR with lvs_sched mh in XDP, no IPVS needed), auto; overrides global_defs vipd_dataplane", func(o *Options, v string) { o.Dataplane = v }},
	{0, "keepalived-version", "2.2|2.4", false, "judge the configuration as this keepalived does (default 2.2, Debian 12's 2.2.7; 2.4 as 2.4.3): keywords newer than it (auth_hmac, vrrp_delay_after_boot, ...) are unknown keywords, as that keepalived reports them; the daemon refuses a configuration that uses them rather than run without them", func(o *Options, v string) { o.KeepalivedVersion = v }},
	{0, "control", "PATH", false, "unix socket of the control API used by vipctl (default /run/vipd/vipd.sock)", func(o *Options, v string) { o.Control = v }},
	{0, "metrics", "ADDR", false, "serve Prometheus metrics on ADDR, e.g. 127.0.0.1:9650 (default: off)", func(o *Options, v string) { o.Metrics = v }},
	{0, "data-file", "FILE", false, "where SIGUSR1 writes the state as JSON (default /tmp/vipd.data)", func(o *Options, v string) { o.DataFile = v }},
	{0, "stats-file", "FILE", false, "where SIGUSR2 writes the VRRP counters (default /tmp/vipd.stats)", func(o *Options, v string) { o.StatsFile = v }},
	{0, "ipvs-state", "FILE", false, "where the ipvs data plane records the services it owns, so a restart adopts them without touching live connections (default /run/vipd/ipvs.json)", func(o *Options, v string) { o.IPVSState = v }},
	{0, "xdp-pins", "DIR", false, "bpffs directory where the xdp data plane pins its maps, so a restart adopts its flow table (default /sys/fs/bpf/vipd; bpffs is mounted if needed)", func(o *Options, v string) { o.XDPPins = v }},
	{0, "xdp-interfaces", "IF[,IF...]", false, "interfaces that receive VIP traffic and get the xdp program besides those the real servers are reached through (a two-armed director)", func(o *Options, v string) { o.XDPIfaces = v }},
	{0, "signum", "SIGFUNC", false, "print the number of the signal that asks vipd for SIGFUNC and exit, as keepalived does: RELOAD (reload the configuration), DATA and JSON (write the state as JSON to /tmp/vipd.data), STATS (write the VRRP counters to /tmp/vipd.stats), STOP (stop cleanly)", func(o *Options, v string) { o.Signum = v }},
	{'v', "version", "", false, "print the version and exit", nil},
	{'h', "help", "", false, "print this help and exit", nil},
}

// signums maps keepalived's --signum functions to the signals vipd
// handles (cmd/vipd/run.go), so scripts written for keepalived
// (kill -$(keepalived --signum=RELOAD) ...) work with vipd.
var signums = map[string]int{
	"RELOAD": int(syscall.SIGHUP),
	"DATA":   int(syscall.SIGUSR1),
	"JSON":   int(syscall.SIGUSR1),
	"STATS":  int(syscall.SIGUSR2),
	"STOP":   int(syscall.SIGTERM),
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func defaultOptions() Options {
	return Options{
		ConfigFile: config.DefaultPath,
		PIDFile:    "/run/vipd/vipd.pid",
		Control:    "/run/vipd/vipd.sock",
	}
}

// errHelp and errVersion ask main to print and exit 0.
type exitRequest struct{ what string }

func (e exitRequest) Error() string { return e.what }

// parseArgs parses keepalived-style options: -x, -xVALUE, -x VALUE,
// grouped flags (-nlD), --long, --long=VALUE, --long VALUE.
func parseArgs(args []string) (Options, error) {
	o := defaultOptions()
	find := func(short byte, long string) *option {
		for i := range options {
			if (short != 0 && options[i].short == short) || (long != "" && options[i].long == long) {
				return &options[i]
			}
		}
		return nil
	}
	apply := func(op *option, v string) error {
		switch op.long {
		case "help":
			return exitRequest{"help"}
		case "version":
			return exitRequest{"version"}
		}
		op.set(&o, v)
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return o, fmt.Errorf("unexpected argument %q", args[i+1])
			}
			return o, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			op := find(0, name)
			if op == nil {
				return o, fmt.Errorf("unknown option --%s", name)
			}
			if op.arg == "" && hasVal {
				return o, fmt.Errorf("option --%s takes no value", name)
			}
			if op.arg != "" && !hasVal && !op.optional {
				if i+1 >= len(args) {
					return o, fmt.Errorf("option --%s needs %s", name, op.arg)
				}
				i++
				val = args[i]
			}
			if err := apply(op, val); err != nil {
				return o, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				op := find(a[j], "")
				if op == nil {
					return o, fmt.Errorf("unknown option -%c", a[j])
				}
				if op.arg == "" || op.optional {
					val := ""
					if op.optional && j+1 < len(a) {
						val = a[j+1:]
						j = len(a)
					}
					if err := apply(op, val); err != nil {
						return o, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, fmt.Errorf("option -%c needs %s", a[j], op.arg)
					}
					i++
					val = args[i]
				}
				if err := apply(op, val); err != nil {
					return o, err
				}
				break
			}
		default:
			return o, fmt.Errorf("unexpected argument %q", a)
		}
	}
	switch o.Dataplane {
	case "", config.DataplaneAuto, config.DataplaneProxy, config.DataplaneIPVS, config.DataplaneXDP:
	default:
		return o, fmt.Errorf("--dataplane must be auto, proxy, ipvs or xdp, not %q", o.Dataplane)
	}
	if _, err := config.ParseKeepalivedVersion(o.KeepalivedVersion); err != nil {
		return o, fmt.Errorf("--keepalived-version: %v", err)
	}
	if o.VRRPOnly && o.CheckOnly {
		return o, fmt.Errorf("-P/--vrrp and -C/--check exclude each other")
	}
	return o, nil
}

// usage writes the help text generated from the option table.
func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: vipd [OPTION]...\n\n")
	fmt.Fprintf(w, "vipd is a high-availability load balancer that reads keepalived.conf: VRRP\n")
	fmt.Fprintf(w, "failover and virtual servers over health-checked real servers.\n\nOptions:\n")
	for _, op := range options {
		var names string
		if op.short != 0 {
			names = fmt.Sprintf("-%c, ", op.short)
		} else {
			names = "    "
		}
		names += "--" + op.long
		if op.arg != "" {
			if op.optional {
				names += "[=" + op.arg + "]"
			} else {
				names += "=" + op.arg
			}
		}
		fmt.Fprintf(w, "  %-28s %s\n", names, wrap(op.help, 48, 31))
	}
	fmt.Fprintf(w, "\nExamples:\n  vipd -t -f /etc/keepalived/keepalived.conf   check a configuration\n")
	fmt.Fprintf(w, "  vipd -n -l -D                                run in the foreground, logging to stderr\n")
}

func wrap(s string, width, ind int) string {
	var b strings.Builder
	col := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(w) > width {
				b.WriteString("\n" + strings.Repeat(" ", ind))
				col = 0
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs vipd with the given arguments and returns the exit
// status.
func realMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		if r, ok := err.(exitRequest); ok {
			if r.what == "help" {
				usage(stdout)
			} else {
				fmt.Fprintf(stdout, "vipd %s\n", version)
			}
			return 0
		}
		fmt.Fprintf(stderr, "vipd: %v\n", err)
		fmt.Fprintf(stderr, "Try 'vipd --help' for more information.\n")
		return 1
	}
	if o.Signum != "" {
		n, ok := signums[strings.ToUpper(o.Signum)]
		if !ok {
			fmt.Fprintf(stderr, "vipd: unknown signal function %q (RELOAD, DATA, JSON, STATS, STOP)\n", o.Signum)
			return 1
		}
		fmt.Fprintln(stdout, n)
		return 0
	}
	if o.ConfigTest || o.DumpConf {
		return checkConfig(o, stdout, stderr)
	}
	return run(o)
}

// checkConfig implements -t and -d.
func checkConfig(o Options, stdout, stderr io.Writer) int {
	out := stderr
	if o.ConfigTestLog != "" {
		f, err := os.OpenFile(o.ConfigTestLog, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "vipd: %v\n", err)
			return config.ExitFatal
		}
		defer f.Close()
		out = f
	}
	cfg, diags := LoadConfig(o)
	for _, d := range diags {
		fmt.Fprintln(out, d.String())
	}
	if o.DumpConf && cfg != nil {
		stdout.Write(config.Dump(cfg))
	}
	return diags.ExitCode()
}

// LoadConfig loads the configuration as the options say: with the
// configuration id, against the running system, and for the data plane
// of --dataplane or the file's vipd_dataplane (see config.Check), whose
// own limits the daemon's check applies (daemon.CheckServices).
func LoadConfig(o Options) (*config.Config, config.Diagnostics) {
	cfg, diags := config.Check(o.ConfigFile, config.Options{ConfigID: o.ConfigID, Host: config.OSHost{}, Dataplane: o.Dataplane, KeepalivedVersion: o.KeepalivedVersion})
	dp := o.Dataplane
	if (dp == "" || dp == config.DataplaneAuto) && cfg != nil {
		dp = cfg.Global.Dataplane
	}
	if more := daemon.CheckServices(cfg, dp); len(more) > 0 {
		diags = append(diags, more...)
	}
	return cfg, diags
}
