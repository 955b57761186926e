package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vipd/vipd/internal/api"
)

func init() {
	commands = append(commands,
		&command{
			name:    "reload",
			args:    "[-o json]",
			summary: "reload the configuration; on rejection or a failed step print why and exit 1",
			help: `The daemon builds and validates the new configuration completely before
applying the difference (unchanged VRRP instances keep their state,
unchanged services their connections). A configuration with errors is
rejected as a whole and the running one stays: vipctl prints each
diagnostic, one per line, naming file:line, and exits with status 1.
A valid configuration is then committed step by step (notifications,
data plane, health checks, VRRP, routing); when a step fails (the data
plane cannot bind a port, say), the steps already taken are undone and
vipctl prints the step, the reason and what runs now, and exits with
status 1. Same as SIGHUP to vipd, except that SIGHUP can only log it.`,
			run: runReload,
		},
		&command{
			name:    "dump",
			args:    "",
			summary: "print the daemon's full state as JSON (status, connections, readiness)",
			help: `What SIGUSR1's /tmp/keepalived.data is for keepalived, as one JSON
document, printed as the daemon sent it.`,
			run: runDump,
		},
	)
}

func runReload(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	r, err := a.client().Reload(ctx)
	var cerr *api.ConfigError
	if errors.As(err, &cerr) {
		if a.output == "json" {
			if jerr := a.json(api.ErrorBody{Error: "configuration rejected", Diagnostics: cerr.Diagnostics}); jerr != nil {
				return jerr
			}
		} else {
			fmt.Fprintf(a.stderr, "vipctl: reload rejected, the running configuration is unchanged:\n")
			for _, d := range cerr.Diagnostics {
				fmt.Fprintf(a.stderr, "%s\n", d)
			}
		}
		return &failed{err: err}
	}
	var commit *api.CommitError
	if errors.As(err, &commit) {
		if a.output == "json" {
			if jerr := a.json(api.ErrorBody{Error: commit.Error(), Commit: commit}); jerr != nil {
				return jerr
			}
		} else {
			fmt.Fprintf(a.stderr, "vipctl: reload failed at step %q: %s\nvipctl: running now: %s\n", commit.Step, commit.Reason, commit.Running)
		}
		return &failed{err: err}
	}
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if a.output == "json" {
		return a.json(r)
	}
	_, err = fmt.Fprintf(a.stdout, "reloaded %s (%d reloads since start)\n", r.ConfigFile, r.Reloads)
	return err
}

func runDump(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	raw, err := a.client().DumpRaw(ctx)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	b.WriteByte('\n')
	_, err = a.stdout.Write(b.Bytes())
	return err
}
