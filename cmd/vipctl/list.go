package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/ipvsadm"
	"github.com/vipd/vipd/internal/lvs"
)

// listFlags are ipvsadm's list options.
type listFlags struct {
	opt        ipvsadm.Options
	conns      bool
	timeout    bool
	tcp, udp   string
	sctp, mark string
}

func (l *listFlags) add(fs *flag.FlagSet, withSelect bool) {
	fs.BoolVar(&l.opt.Numeric, "n", false, "numeric output (vipd never resolves names, so this is always the case; accepted as ipvsadm accepts it)")
	fs.BoolVar(&l.opt.Numeric, "numeric", false, "numeric output (vipd never resolves names, so this is always the case; accepted as ipvsadm accepts it)")
	fs.BoolVar(&l.opt.PersistentConn, "persistent-conn", false, "with the persistent connection counters (or, with -c, the persistence-engine columns)")
	fs.BoolVar(&l.opt.Exact, "exact", false, "exact numbers, no K/M/G/T scaling of --stats and --rate")
	if !withSelect {
		return
	}
	fs.BoolVar(&l.opt.Stats, "stats", false, "with the cumulative counters: connections, packets and bytes in and out")
	fs.BoolVar(&l.opt.Rate, "rate", false, "with the rates: connections, packets and bytes per second")
	fs.BoolVar(&l.opt.Thresholds, "thresholds", false, "with the upper and lower connection thresholds")
	fs.BoolVar(&l.opt.TunInfo, "tun-info", false, "with the tunnel type and options of Tunnel destinations")
	fs.BoolVar(&l.opt.NoSort, "nosort", false, "in the daemon's order rather than ipvsadm's sorted order")
	fs.BoolVar(&l.conns, "c", false, "the connection table, as vipctl conns (ipvsadm -L -c)")
	fs.BoolVar(&l.conns, "connection", false, "the connection table, as vipctl conns (ipvsadm -L -c)")
	fs.BoolVar(&l.timeout, "timeout", false, "the tcp, tcpfin and udp timeouts (ipvsadm -L --timeout)")
	fs.StringVar(&l.tcp, "t", "", "only the TCP service `VIP:PORT`")
	fs.StringVar(&l.udp, "u", "", "only the UDP service `VIP:PORT`")
	fs.StringVar(&l.sctp, "sctp-service", "", "only the SCTP service `VIP:PORT`")
	fs.StringVar(&l.mark, "f", "", "only the firewall-mark service `MARK`")
}

func init() {
	var lf listFlags
	var cf listFlags
	commands = append(commands,
		&command{
			name:    "list",
			args:    "[-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact] [--nosort] [-t|-u VIP:PORT | -f MARK] [-c] [--timeout]",
			summary: "list the virtual servers exactly as ipvsadm -L -n prints them",
			help: `The output is byte for byte what ipvsadm 1.31 prints for the same
services, whichever data plane runs them, so scripts that parse
ipvsadm -L -n keep working. The first line is the kernel's IPVS version
and connection table size with the ipvs data plane; with the proxy, which
has no such table, version 1.2.1 and size 0. With -o json, prints the
services with their counters and rates as the daemon reports them.`,
			flags: func(fs *flag.FlagSet) { lf.add(fs, true) },
			run:   func(ctx context.Context, a *app, args []string) error { return runList(ctx, a, args, lf) },
		},
		&command{
			name:    "conns",
			args:    "[-n] [--persistent-conn]",
			summary: "list the connection table exactly as ipvsadm -L -n -c prints it",
			help: `Persistence templates are listed too (state NONE, client port 0), as the
kernel lists them. With -o json, prints the entries as the daemon reports
them.`,
			flags: func(fs *flag.FlagSet) { cf.add(fs, false) },
			run: func(ctx context.Context, a *app, args []string) error {
				cf.conns = true
				return runList(ctx, a, args, cf)
			},
		},
	)
}

func runList(ctx context.Context, a *app, args []string, lf listFlags) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	c := a.client()
	if lf.conns {
		conns, err := c.Conns(ctx)
		if err != nil {
			return err
		}
		if a.output == "json" {
			return a.json(conns)
		}
		return ipvsadm.Conns(a.stdout, conns, lf.opt)
	}
	key, one, err := lf.selected()
	if err != nil {
		return err
	}
	svcs, err := c.Services(ctx)
	if err != nil {
		return err
	}
	if lf.timeout {
		// keepalived's lvs_timeouts are global, as the kernel's are:
		// every service carries the same ones.
		var t lvs.Timeouts
		if len(svcs) > 0 {
			t = svcs[0].Timeouts
		}
		if a.output == "json" {
			t = t.WithDefaults()
			return a.json(map[string]int64{"tcp": int64(t.TCP.Seconds()), "tcpfin": int64(t.TCPFin.Seconds()), "udp": int64(t.UDP.Seconds())})
		}
		return ipvsadm.Timeout(a.stdout, t)
	}
	if one {
		var sel []lvs.ServiceStatus
		for _, s := range svcs {
			if s.Key.FWMark == key.FWMark && (key.FWMark != 0 || (s.Key.Proto == key.Proto && s.Key.Addr == key.Addr)) {
				sel = append(sel, s)
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("no such service %s", key)
		}
		if a.output == "json" {
			return a.json(sel)
		}
		return ipvsadm.ListService(a.stdout, sel, key, lf.opt)
	}
	if a.output == "json" {
		if svcs == nil {
			svcs = []lvs.ServiceStatus{}
		}
		return a.json(svcs)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	opt := lf.opt
	if err := listHeader(st, &opt); err != nil {
		return err
	}
	return ipvsadm.List(a.stdout, svcs, opt)
}

// proxyIPVSVersion is the IPVS version the proxy's listing names: the
// one whose semantics (schedulers, forwarding, counters) the proxy
// reproduces, and what every kernel since Linux 2.6 reports.
const proxyIPVSVersion = "1.2.1"

// listHeader sets the values of ipvsadm's first line, "IP Virtual Server
// version V (size=N)": with the ipvs data plane what the kernel reports
// (IPVS_CMD_GET_INFO, read by the daemon), as ipvsadm prints it; with the
// proxy (or no data plane) version 1.2.1 and size 0, because the proxy
// has no connection hash table whose size could be printed. The line
// stays so that scripts parsing ipvsadm -L -n keep working; docs/vipctl.md
// explains it.
func listHeader(st api.Status, opt *ipvsadm.Options) error {
	if st.IPVS != nil {
		opt.KernelVersion, opt.ConnTabSize = st.IPVS.Version, st.IPVS.ConnTabSize
		return nil
	}
	if st.Dataplane == config.DataplaneIPVS {
		return errors.New("the daemon runs the ipvs data plane but could not read the kernel's IPVS version (its log says why)")
	}
	opt.KernelVersion, opt.NoConnTable = proxyIPVSVersion, true
	return nil
}

// selected returns the service chosen with -t, -u, --sctp-service or -f.
func (lf listFlags) selected() (lvs.ServiceKey, bool, error) {
	n := 0
	for _, s := range []string{lf.tcp, lf.udp, lf.sctp, lf.mark} {
		if s != "" {
			n++
		}
	}
	if n == 0 {
		return lvs.ServiceKey{}, false, nil
	}
	if n > 1 {
		return lvs.ServiceKey{}, false, usagef("-t, -u, --sctp-service and -f select one service: give only one")
	}
	if lf.mark != "" {
		m, err := strconv.ParseUint(lf.mark, 0, 32)
		if err != nil || m == 0 {
			return lvs.ServiceKey{}, false, usagef("-f %q: want a firewall mark, 1 to 4294967295", lf.mark)
		}
		return lvs.ServiceKey{FWMark: uint32(m)}, true, nil
	}
	proto, s, flagName := lvs.TCP, lf.tcp, "-t"
	switch {
	case lf.udp != "":
		proto, s, flagName = lvs.UDP, lf.udp, "-u"
	case lf.sctp != "":
		proto, s, flagName = lvs.SCTP, lf.sctp, "--sctp-service"
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return lvs.ServiceKey{}, false, usagef("%s %q: want VIP:PORT, [IPv6]:PORT for IPv6", flagName, s)
	}
	return lvs.ServiceKey{Proto: proto, Addr: ap}, true, nil
}
