package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/api"
)

func init() {
	commands = append(commands, &command{
		name:    "bgp",
		args:    "[drain|resume] [-o json]",
		summary: "show the BGP speaker: neighbors, session and BFD state, routes announced; drain or resume",
		help: `Prints vipd's BGP speaker (the bgp block): one line per neighbor with its
AS, session state, how long it has been established, BFD state and the
negotiated hold time; then every VIP marked bgp_announce with whether it is
announced and why (first round of checks pending, every real server down,
quorum down, VRRP not MASTER).

drain takes this director out gracefully (RFC 8326): every route is
re-announced with the GRACEFUL_SHUTDOWN community (65535:0), so routers
that honour it move traffic to the other directors while this one still
forwards; after a pause the routes are withdrawn. Nothing is announced
until resume. Stopping vipd drains the same way first.`,
		run: runBGP,
	})
}

func runBGP(ctx context.Context, a *app, args []string) error {
	var b *api.BGP
	switch {
	case len(args) > 1:
		return usagef("unexpected argument %q", args[1])
	case len(args) == 1 && args[0] == "drain":
		var err error
		if b, err = a.client().BGPDrain(ctx); err != nil {
			return err
		}
	case len(args) == 1 && args[0] == "resume":
		var err error
		if b, err = a.client().BGPResume(ctx); err != nil {
			return err
		}
	case len(args) == 1:
		return usagef("unknown bgp action %q (drain or resume)", args[0])
	default:
		st, err := a.client().Status(ctx)
		if err != nil {
			return err
		}
		b = st.BGP
	}
	if a.output == "json" {
		return a.json(b)
	}
	return writeBGP(a.stdout, b, a.now())
}

func writeBGP(w io.Writer, b *api.BGP, now time.Time) error {
	if b == nil {
		_, err := fmt.Fprintln(w, "no bgp block: BGP is off")
		return err
	}
	head := fmt.Sprintf("BGP router id %s, local AS %d, %d routes announced", b.RouterID, b.LocalAS, len(b.Routes))
	if b.Draining {
		head += " (draining)"
	}
	fmt.Fprintln(w, head)
	if b.Error != "" {
		fmt.Fprintf(w, "speaker not running: %s\n", b.Error)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tUP FOR\tBFD\tHOLD")
	for _, p := range b.Peers {
		up := "-"
		if !p.Since.IsZero() {
			up = shortDur(now.Sub(p.Since).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\n", p.Addr, p.RemoteAS, p.State, up, orDash(p.BFD), p.HoldTime)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(b.Decisions) == 0 {
		return nil
	}
	announced := map[string]bool{}
	for _, r := range b.Routes {
		announced[r] = true
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "PREFIX\tANNOUNCED\tWHY")
	for _, d := range b.Decisions {
		yes := "no"
		if announced[d.Prefix] {
			yes = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Prefix, yes, strings.TrimSpace(d.Reason))
	}
	return tw.Flush()
}
