package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vipd/vipd/internal/realserver"
)

type realserverFlags struct {
	vips  string
	dev   string
	mode  string
	state string
}

func (r *realserverFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&r.vips, "vip", "", "the virtual addresses `A[,B...]`, comma separated; down without --vip undoes every VIP of the state file")
	fs.StringVar(&r.dev, "dev", "", "DR: `DEVICE` that gets the VIPs (default lo); TUN always uses tunl0")
	fs.StringVar(&r.mode, "mode", "dr", "forwarding `MODE` of the director: dr (direct routing) or tun (IP-in-IP)")
	fs.StringVar(&r.state, "state", realserver.DefaultStateFile, "`FILE` recording what up changed, so that down can undo exactly that")
}

func init() {
	var r realserverFlags
	commands = append(commands, &command{
		name:    "realserver",
		args:    "up|down [--vip A[,B...]] [--dev lo] [--mode dr|tun] [--state FILE]",
		summary: "prepare (up) or restore (down) this host as a DR/TUN real server",
		help: `Run on a real server behind a director that forwards with direct routing
(lb_kind DR) or IP-in-IP (lb_kind TUN), in place of the usual dr.sh:

  up    sets net.ipv4.conf.{all,DEV}.arp_ignore=1 and arp_announce=2, so the
        host never answers ARP for a VIP nor announces one, and adds each
        VIP as /32 (/128) on DEV (lo). TUN: the same on tunl0, which is
        brought up, with rp_filter=0 on all and tunl0.
  down  removes the VIPs that up added and, once no VIP is left, puts back
        every sysctl up changed (unless someone changed it since).

up is idempotent (run it again, or with more VIPs) and records in the state
file the value each sysctl had before, so down undoes exactly what up did.
Each line of output says what changed, or that it was already so. Runs
locally, as root, in the current network namespace: no daemon needed.`,
		local: true,
		flags: func(fs *flag.FlagSet) { r.add(fs) },
		run:   func(ctx context.Context, a *app, args []string) error { return runRealserver(a, args, r) },
	})
}

// changeJSON is a realserver.Change for -o json.
type changeJSON struct {
	What string `json:"what"`
	From string `json:"from"`
	To   string `json:"to"`
	Note string `json:"note,omitempty"`
}

func runRealserver(a *app, args []string, r realserverFlags) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down") {
		return usagef("want up or down")
	}
	op := args[0]
	cfg := realserver.Config{Mode: realserver.Mode(r.mode), Dev: r.dev, StateFile: r.state}
	if cfg.Mode != realserver.DR && cfg.Mode != realserver.TUN {
		return usagef("--mode %q: want dr or tun", r.mode)
	}
	for _, s := range strings.Split(r.vips, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			// Accept the /32 that dr.sh users write.
			if p, perr := netip.ParsePrefix(s); perr == nil && p.IsSingleIP() {
				ip = p.Addr()
			} else {
				return usagef("--vip %q: want an IP address", s)
			}
		}
		cfg.VIPs = append(cfg.VIPs, ip)
	}
	if op == "up" && len(cfg.VIPs) == 0 {
		return usagef("up needs --vip")
	}
	var changes []realserver.Change
	var err error
	if op == "up" {
		changes, err = realserver.Up(cfg)
	} else {
		changes, err = realserver.Down(cfg)
	}
	// What was done before a failure is printed too: the operator must
	// know the state the host is left in.
	if a.output == "json" {
		out := struct {
			Changes []changeJSON `json:"changes"`
			Error   string       `json:"error,omitempty"`
		}{Changes: []changeJSON{}}
		for _, c := range changes {
			out.Changes = append(out.Changes, changeJSON{What: c.What, From: c.From, To: c.To, Note: c.Note})
		}
		if err != nil {
			out.Error = err.Error()
		}
		if jerr := a.json(out); jerr != nil {
			return jerr
		}
		if err != nil {
			return &failed{err: err}
		}
		return nil
	}
	for _, c := range changes {
		fmt.Fprintln(a.stdout, c.String())
	}
	return err
}
