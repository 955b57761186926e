package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/bfd"
)

func init() {
	commands = append(commands,
		&command{
			name:    "status",
			args:    "[-o json]",
			summary: "show the daemon and its VRRP instances",
			help: `Prints the daemon (version, uptime, configuration, readiness), then one
line per VRRP instance: state, configured and effective priority, the
master as last heard, VIPs, transitions and when the last one happened;
then sync groups, tracking scripts, tracked processes (vrrp_track_process:
running count against the quorum), and advert counters with the dropped
adverts by reason (checksum, vrid, version, ttl, auth, length, ...);
then the BFD sessions (bfd_instance): peer, state (local/remote),
discriminators, the negotiated transmit interval and detection time,
and the reason of the last fall.
With -o json, prints the daemon's status document.`,
			run: runStatus,
		},
		&command{
			name:    "checks",
			args:    "[-o json]",
			summary: "show every health checker: up/down, last result and why, last change",
			run:     runChecks,
		},
	)
}

func runStatus(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	c := a.client()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	rd, err := c.Ready(ctx)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.json(st)
	}
	return writeStatus(a.stdout, st, rd, a.now())
}

func writeStatus(w io.Writer, st api.Status, rd api.Readiness, now time.Time) error {
	ready := "ready"
	if !rd.Ready {
		ready = "NOT READY: " + rd.Error
	}
	fmt.Fprintf(w, "vipd %s on %s, router_id %s, pid %d, up %s\n", st.Version, st.Hostname, orDash(st.RouterID), st.PID, shortDur(now.Sub(st.Started).Round(time.Second)))
	fmt.Fprintf(w, "config %s, loaded %s, %d reloads; data plane %s; %s\n", st.ConfigFile, ago(now, st.ConfigLoaded), st.Reloads, st.Dataplane, ready)

	fmt.Fprintln(w)
	if len(st.Instances) == 0 {
		fmt.Fprintln(w, "no VRRP instances")
	} else {
		tw := newTable(w)
		fmt.Fprintln(tw, "INSTANCE\tINTERFACE\tVRID\tVER\tSTATE\tPRIO\tEFFECTIVE\tMASTER\tMASTER PRIO\tADVERT\tVIPS\tTRANSITIONS\tLAST CHANGE")
		for _, in := range st.Instances {
			master, mprio := "-", "-"
			if in.MasterAddr.IsValid() {
				master, mprio = in.MasterAddr.String(), strconv.Itoa(in.MasterPriority)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\tv%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n",
				in.Name, in.Interface, in.VRID, in.Version, in.State, in.Priority, in.EffectivePriority,
				master, mprio, shortDur(in.AdvertInterval), orDash(strings.Join(in.VIPs, ",")),
				in.Transitions, ago(now, in.LastTransition))
		}
		tw.Flush()
		for _, in := range st.Instances {
			if len(in.FaultReasons) > 0 {
				fmt.Fprintf(w, "%s fault: %s\n", in.Name, strings.Join(in.FaultReasons, "; "))
			}
		}
	}

	section(w, st.SyncGroups, "SYNC GROUP\tSTATE\tINSTANCES", func(tw io.Writer, g api.SyncGroup) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, g.State, strings.Join(g.Instances, ","))
	})
	section(w, st.Scripts, "SCRIPT\tSTATE\tWEIGHT\tLAST CHANGE", func(tw io.Writer, s api.Script) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Name, s.State, s.Weight, ago(now, s.LastChange))
	})
	section(w, st.Processes, "TRACK PROCESS\tSTATE\tRUNNING\tQUORUM\tWEIGHT\tLAST CHANGE", func(tw io.Writer, p api.Process) {
		q := fmt.Sprintf("%d..%d", p.Quorum, p.QuorumMax)
		if p.QuorumMax < 0 {
			q = fmt.Sprintf("%d..", p.Quorum)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", p.Name, p.State, p.Count, q, p.Weight, ago(now, p.LastChange))
	})
	section(w, st.BFD, "BFD SESSION\tPEER\tSTATE\tREMOTE\tLOCAL DISCR\tREMOTE DISCR\tTX\tDETECT\tSINCE\tLAST DOWN", func(tw io.Writer, s bfd.SessionStatus) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Peer, s.State, s.Remote, s.LocalDiscr, s.RemoteDiscr,
			shortDur(time.Duration(s.TxIntervalUS)*time.Microsecond), shortDur(time.Duration(s.DetectUS)*time.Microsecond), ago(now, s.Since), orDash(s.LastDown))
	})
	section(w, st.Instances, "INSTANCE\tADVERTS SENT\tRECEIVED\tBECAME MASTER\tPRIO 0 RCVD\tPRIO 0 SENT\tDROPPED", func(tw io.Writer, in api.Instance) {
		s := in.Stats
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", in.Name, s.AdvertSent, s.AdvertRcvd, s.BecomeMaster, s.PriZeroRcvd, s.PriZeroSent, dropped(s.Dropped))
	})
	return nil
}

// section writes, when rows has any, a blank line and a table: header,
// then one line a row written by line.
func section[R any](w io.Writer, rows []R, header string, line func(tw io.Writer, r R)) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		line(tw, r)
	}
	tw.Flush()
}

// dropped formats drop counters as "12 (checksum 7, length 4, ttl 1)".
func dropped(m map[string]uint64) string {
	var total uint64
	keys := make([]string, 0, len(m))
	for k, v := range m {
		total += v
		keys = append(keys, k)
	}
	if total == 0 {
		return "0"
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func runChecks(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	checks, err := a.client().Checks(ctx)
	if err != nil {
		return err
	}
	if a.output == "json" {
		return a.json(checks)
	}
	return writeChecks(a.stdout, checks, a.now())
}

func writeChecks(w io.Writer, checks []api.Check, now time.Time) error {
	if len(checks) == 0 {
		_, err := fmt.Fprintln(w, "no health checkers")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "VIRTUAL SERVER\tREAL SERVER\tCHECK\tSTATE\tWEIGHT\tLAST CHANGE\tLAST CHECK\tDURATION\tFAILED\tLAST RESULT")
	for _, c := range checks {
		state := "UP"
		if !c.Up {
			state = "DOWN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d/%d\t%s\n",
			c.VirtualServer, c.RealServer, c.Kind, state, c.Weight, ago(now, c.LastChange), ago(now, c.LastCheck),
			c.Duration.Round(10*time.Microsecond), c.Failures, c.Checks, orDash(c.Reason))
	}
	return tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
