package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vipd/vipd/internal/api"
)

func init() {
	commands = append(commands, &command{
		name:    "upgrade",
		args:    "[-o json]",
		summary: "replace the running vipd with the binary at its path, without a lost connection",
		help: `The running vipd starts the binary at its own path (install the new one
there first) and hands it the listening sockets (virtual services of the
proxy data plane, the control socket, the metrics listener), the VRRP
states (a master keeps advertising on schedule: no state change, no
GARP, no priority 0 advert), the health checkers' verdicts and the data
plane. No new connection is refused meanwhile. The old process then
stops accepting, finishes its open proxied connections and exits once
the last one has closed; vipctl prints both pids.

Nothing is committed until the new process says it runs: if it cannot
load the configuration, take a socket or start, it is killed, the old
vipd takes everything back, and vipctl prints the step that failed and
why, and exits with status 1. Under systemd the old process makes the
new one the unit's main process (MAINPID=). docs/upgrade.md has the
details.`,
		run: runUpgrade,
	})
}

func runUpgrade(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r, err := a.client().Upgrade(ctx)
	var ue *api.UpgradeError
	if errors.As(err, &ue) {
		if a.output == "json" {
			if jerr := a.json(api.ErrorBody{Error: ue.Error(), Upgrade: ue}); jerr != nil {
				return jerr
			}
		} else {
			fmt.Fprintf(a.stderr, "vipctl: upgrade failed at step %q: %s\nvipctl: the running vipd is unchanged\n", ue.Step, ue.Reason)
		}
		return &failed{err: err}
	}
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if a.output == "json" {
		return a.json(r)
	}
	_, err = fmt.Fprintf(a.stdout, "upgraded: vipd %s (pid %d) replaced vipd %s (pid %d) in %v; pid %d exits after its %d open connections\n",
		r.NewVersion, r.NewPID, r.OldVersion, r.OldPID, r.Took.Round(time.Millisecond), r.OldPID, r.Draining)
	return err
}
