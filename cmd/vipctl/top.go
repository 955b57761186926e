package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lvs"
)

type topFlags struct {
	interval   time.Duration
	iterations int
}

func (f *topFlags) add(fs *flag.FlagSet) {
	fs.DurationVar(&f.interval, "d", time.Second, "time between refreshes (rates are over this interval)")
	fs.IntVar(&f.iterations, "n", 0, "stop after this many refreshes (0: until interrupted)")
}

func init() {
	var tf topFlags
	commands = append(commands, &command{
		name:    "top",
		args:    "[-d interval] [-n count]",
		summary: "live view of instances, virtual and real servers with rates",
		help: `Shows the VRRP instances, then every virtual server and its real servers
with connections per second and bytes per second in and out, computed from
two successive samples of the daemon's counters (-d apart), active and
inactive connections, weight, and the health-check verdict. On a terminal
the view is redrawn every -d until interrupted (Ctrl-C) or -n refreshes;
when stdout is not a terminal it waits -d for the rates and prints the view
once, as plain text.`,
		flags: func(fs *flag.FlagSet) { tf.add(fs) },
		run:   func(ctx context.Context, a *app, args []string) error { return runTop(ctx, a, args, tf) },
	})
}

// isTerminal reports whether w is a character device (a terminal): top
// redraws only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// topSample is one reading of the daemon with the time it was taken.
type topSample struct {
	at time.Time
	st api.Status
}

func runTop(ctx context.Context, a *app, args []string, tf topFlags) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	if a.output == "json" {
		return usagef("top has no JSON output (vipctl dump -o json is the state as one document)")
	}
	if tf.interval < 100*time.Millisecond {
		return usagef("-d %s: the interval must be at least 100ms", tf.interval)
	}
	if tf.iterations < 0 {
		return usagef("-n %d: the count must be 0 or more", tf.iterations)
	}
	c := a.client()
	sample := func() (topSample, error) {
		st, err := c.Status(ctx)
		return topSample{at: time.Now(), st: st}, err
	}
	prev, err := sample()
	if err != nil {
		return err
	}
	tty := isTerminal(a.stdout)
	if tty {
		// The first frame has no rates yet; show it at once rather than
		// a blank screen for an interval.
		fmt.Fprint(a.stdout, "\x1b[?25l\x1b[H\x1b[2J"+topFrame(nil, prev, a.now(), tf.interval))
		defer fmt.Fprint(a.stdout, "\x1b[?25h\n")
	}
	t := time.NewTicker(tf.interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := sample()
		if err != nil {
			return err
		}
		frame := topFrame(&prev, cur, a.now(), tf.interval)
		if !tty {
			_, err := io.WriteString(a.stdout, frame)
			return err
		}
		// Home, frame, clear what the previous frame left below.
		fmt.Fprint(a.stdout, "\x1b[H"+strings.ReplaceAll(frame, "\n", "\x1b[K\n")+"\x1b[J")
		prev = cur
		if tf.iterations > 0 && n >= tf.iterations {
			return nil
		}
	}
}

// rate is the per-second rate of a counter between two samples; a counter
// that went down (a reload replaced the service) has no rate.
func rate(prev, cur uint64, d time.Duration) string {
	if cur < prev || d <= 0 {
		return "-"
	}
	return humanRate(float64(cur-prev) / d.Seconds())
}

// rateIf is rate over d when there was a previous sample (had), and "-"
// for a service or real server seen for the first time.
func rateIf(had bool, d time.Duration) func(prev, cur uint64) string {
	return func(prev, cur uint64) string {
		if !had {
			return "-"
		}
		return rate(prev, cur, d)
	}
}

// humanRate prints a rate with a K/M/G suffix (powers of 1000), as top and
// ipvsadm --rate readers expect.
func humanRate(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fK", v/1e3)
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// topFrame renders one view: cur's state with rates against prev (none on
// the first frame).
func topFrame(prev *topSample, cur topSample, now time.Time, interval time.Duration) string {
	var b strings.Builder
	st := cur.st
	fmt.Fprintf(&b, "vipd %s on %s, router_id %s, up %s, %d reloads, data plane %s — %s, every %s\n",
		st.Version, st.Hostname, orDash(st.RouterID), shortDur(now.Sub(st.Started).Round(time.Second)),
		st.Reloads, st.Dataplane, now.Format("15:04:05"), shortDur(interval))

	b.WriteString("\n")
	if len(st.Instances) == 0 {
		b.WriteString("no VRRP instances\n")
	} else {
		tw := newTable(&b)
		fmt.Fprintln(tw, "INSTANCE\tINTERFACE\tVRID\tSTATE\tPRIO\tMASTER\tADVERTS IN/OUT\tTRANSITIONS\tLAST CHANGE")
		for _, in := range st.Instances {
			master := "-"
			if in.MasterAddr.IsValid() {
				master = fmt.Sprintf("%s (%d)", in.MasterAddr, in.MasterPriority)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d/%d\t%s\t%d/%d\t%d\t%s\n", in.Name, in.Interface, in.VRID, in.State,
				in.Priority, in.EffectivePriority, master, in.Stats.AdvertRcvd, in.Stats.AdvertSent,
				in.Transitions, ago(now, in.LastTransition))
		}
		tw.Flush()
	}

	b.WriteString("\n")
	if len(st.Services) == 0 {
		b.WriteString("no virtual servers\n")
		return b.String()
	}
	var d time.Duration
	prevSvc := map[string]lvs.ServiceStatus{}
	if prev != nil {
		d = cur.at.Sub(prev.at)
		for _, s := range prev.st.Services {
			prevSvc[s.Key.String()] = s
		}
	}
	checks := map[api.RealServerKey][]api.Check{}
	for _, c := range st.Checks {
		k := api.RealServerKey{VirtualServer: c.VirtualServer, RealServer: c.RealServer}
		checks[k] = append(checks[k], c)
	}
	tw := newTable(&b)
	fmt.Fprintln(tw, "VIRTUAL SERVER / REAL SERVER\tSCHED/WEIGHT\tUP\tCONN/S\tIN B/S\tOUT B/S\tACTIVE\tINACTIVE\tCONNS\tCHECK")
	for _, s := range st.Services {
		vs := s.Key.String()
		ps, had := prevSvc[vs]
		r := rateIf(had, d)
		up, act, inact := 0, 0, 0
		for _, ds := range s.Dests {
			if allUp(checks[api.RealServerKey{VirtualServer: vs, RealServer: ds.Addr.String()}]) && ds.Weight > 0 {
				up++
			}
			act += ds.ActiveConns
			inact += ds.InactiveConns
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%d\t\n", vs, s.Scheduler, up, len(s.Dests),
			r(ps.Stats.Conns, s.Stats.Conns), r(ps.Stats.InBytes, s.Stats.InBytes), r(ps.Stats.OutBytes, s.Stats.OutBytes),
			act, inact, s.Stats.Conns)
		prevDest := map[string]lvs.DestStatus{}
		for _, pd := range ps.Dests {
			prevDest[pd.Addr.String()] = pd
		}
		for _, ds := range s.Dests {
			rs := ds.Addr.String()
			pd, hadD := prevDest[rs]
			rd := rateIf(hadD, d)
			cs := checks[api.RealServerKey{VirtualServer: vs, RealServer: rs}]
			state := "UP"
			if !allUp(cs) {
				state = "DOWN"
			}
			fmt.Fprintf(tw, "  -> %s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", rs, ds.Weight, state,
				rd(pd.Stats.Conns, ds.Stats.Conns), rd(pd.Stats.InBytes, ds.Stats.InBytes), rd(pd.Stats.OutBytes, ds.Stats.OutBytes),
				ds.ActiveConns, ds.InactiveConns, ds.Stats.Conns, checkSummary(cs))
		}
	}
	tw.Flush()
	return b.String()
}

func allUp(cs []api.Check) bool {
	for _, c := range cs {
		if !c.Up {
			return false
		}
	}
	return true
}

// checkSummary is the checkers of a real server in one cell: kind and,
// for a failing one, why ("HTTP_GET ok", "TCP_CHECK: connect: refused").
func checkSummary(cs []api.Check) string {
	if len(cs) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range cs {
		if c.Up {
			parts = append(parts, c.Kind+" ok")
		} else {
			parts = append(parts, c.Kind+": "+c.Reason)
		}
	}
	return strings.Join(parts, "; ")
}
