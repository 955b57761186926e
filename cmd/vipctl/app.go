package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/api"
)

// Version is vipctl's version, set at build time with
// -ldflags "-X main.Version=...".
var Version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command failed (daemon unreachable, reload rejected, ...)
	exitUsage = 2 // bad command line
)

// app is one vipctl invocation; tests build it with their own writers and
// clock.
type app struct {
	stdout, stderr io.Writer
	now            func() time.Time
	getenv         func(string) string

	// Set by the common flags.
	socket string
	output string
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, now: time.Now, getenv: os.Getenv}
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	help    string // paragraphs after the synopsis
	// flags adds the command's own flags; the common ones are added
	// for every command.
	flags func(fs *flag.FlagSet)
	// local commands do not talk to the daemon (no --socket).
	local bool
	// usageExit replaces exitUsage for a bad command line (genhash
	// exits 1, as keepalived's does).
	usageExit int
	run       func(ctx context.Context, a *app, args []string) error
}

var commands []*command

// badUsage is the exit code for a bad command line of c.
func (c *command) badUsage() int {
	if c.usageExit != 0 {
		return c.usageExit
	}
	return exitUsage
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is a bad command line: the message and the command's usage
// go to stderr, exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// failed is an error already reported in full (reload diagnostics):
// run only sets the exit code.
type failed struct{ err error }

func (e *failed) Error() string { return e.err.Error() }

func (a *app) run(ctx context.Context, args []string) int {
	defSocket := api.DefaultSocket
	if s := a.getenv("VIPCTL_SOCKET"); s != "" {
		defSocket = s
	}
	// Common flags may come before the command ("vipctl --socket S
	// status") or after it ("vipctl status --socket S").
	global := flag.NewFlagSet("vipctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.commonFlags(global, defSocket, "text")
	version := global.Bool("version", false, "print vipctl's version and exit")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.stdout)
			return exitOK
		}
		fmt.Fprintf(a.stderr, "vipctl: %v\n", err)
		a.usage(a.stderr)
		return exitUsage
	}
	if *version {
		fmt.Fprintf(a.stdout, "vipctl %s\n", Version)
		return exitOK
	}
	rest := global.Args()
	if len(rest) == 0 {
		a.usage(a.stderr)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		if len(rest) > 1 {
			if c := lookup(rest[1]); c != nil {
				a.commandUsage(a.stdout, c)
				return exitOK
			}
			fmt.Fprintf(a.stderr, "vipctl: unknown command %q\n", rest[1])
			return exitUsage
		}
		a.usage(a.stdout)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(a.stderr, "vipctl: unknown command %q (vipctl help lists them)\n", name)
		return exitUsage
	}
	fs := flag.NewFlagSet("vipctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.commonFlags(fs, a.socket, a.output)
	if c.flags != nil {
		c.flags(fs)
	}
	cargs := rest[1:]
	var positional []string
	// Positional words (realserver's up|down) may precede the flags.
	for len(cargs) > 0 && !strings.HasPrefix(cargs[0], "-") {
		positional = append(positional, cargs[0])
		cargs = cargs[1:]
	}
	if err := fs.Parse(cargs); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.commandUsage(a.stdout, c)
			return exitOK
		}
		fmt.Fprintf(a.stderr, "vipctl %s: %v\n", c.name, err)
		a.commandUsage(a.stderr, c)
		return c.badUsage()
	}
	positional = append(positional, fs.Args()...)
	if a.output != "text" && a.output != "json" {
		fmt.Fprintf(a.stderr, "vipctl %s: -o %q: want text or json\n", c.name, a.output)
		return c.badUsage()
	}
	err := c.run(ctx, a, positional)
	var ue *usageError
	var f *failed
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "vipctl %s: %s\n", c.name, ue.msg)
		a.commandUsage(a.stderr, c)
		return c.badUsage()
	case errors.As(err, &f):
		return exitFail
	default:
		fmt.Fprintf(a.stderr, "vipctl: %v\n", err)
		return exitFail
	}
}

// commonFlags adds --socket and -o to fs, with the given defaults (the
// values already parsed before the command name).
func (a *app) commonFlags(fs *flag.FlagSet, defSocket, defOutput string) {
	fs.StringVar(&a.socket, "socket", defSocket, "control socket of the vipd to talk to (vipd --control; env VIPCTL_SOCKET) (`PATH`)")
	fs.StringVar(&a.output, "o", defOutput, "output `FORMAT`: text or json")
	fs.StringVar(&a.output, "output", defOutput, "output `FORMAT`: text or json")
}

func (a *app) client() *api.Client { return api.NewClient(a.socket) }

// json prints v indented, for -o json.
func (a *app) json(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = a.stdout.Write(b)
	return err
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, `vipctl controls and inspects a running vipd.

Usage:
  vipctl [--socket PATH] [-o text|json] COMMAND [FLAGS] [ARGS]

Commands:
`)
	cs := append([]*command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `  help        show the help of a command: vipctl help COMMAND

Common flags (before or after the command):
  --socket PATH   control socket of the vipd to talk to (default %s,
                  or $VIPCTL_SOCKET); one vipd per network namespace each
                  has its own (vipd --control PATH)
  -o, --output F  output format: text (default) or json
  --version       print vipctl's version and exit
  -h, --help      show this help

Exit status: 0 success, 1 failure (vipd unreachable, reload rejected, ...),
2 bad command line.
`, api.DefaultSocket)
}

func (a *app) commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: vipctl %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var x app
	if !c.local {
		x.commonFlags(fs, api.DefaultSocket, "text")
	} else {
		fs.StringVar(&x.output, "o", "text", "output `FORMAT`: text or json")
		fs.StringVar(&x.output, "output", "text", "output `FORMAT`: text or json")
	}
	if c.flags != nil {
		c.flags(fs)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	printFlags(w, fs)
}

// printFlags lists fs's flags with their aliases on one line ("-s,
// --server ADDR"): flags bound to the same variable are aliases.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	type entry struct {
		names []string
		f     *flag.Flag
	}
	var list []*entry
	fs.VisitAll(func(f *flag.Flag) {
		for _, e := range list {
			if e.f.Value == f.Value {
				e.names = append(e.names, f.Name)
				return
			}
		}
		list = append(list, &entry{names: []string{f.Name}, f: f})
	})
	for _, e := range list {
		sort.Slice(e.names, func(i, j int) bool {
			if len(e.names[i]) != len(e.names[j]) {
				return len(e.names[i]) < len(e.names[j])
			}
			return e.names[i] < e.names[j]
		})
	}
	sort.Slice(list, func(i, j int) bool { return strings.ToLower(list[i].names[0]) < strings.ToLower(list[j].names[0]) })
	for _, e := range list {
		arg, usage := flag.UnquoteUsage(e.f)
		var names []string
		for _, n := range e.names {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
		line := "  " + strings.Join(names, ", ")
		if arg != "" {
			line += " " + arg
		}
		if d := e.f.DefValue; d != "" && d != "false" && d != "0" {
			usage += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, usage)
	}
}

// ago formats how long before now t was, for people.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return shortDur(d.Round(time.Second)) + " ago"
}

// shortDur formats a duration without trailing zero units: 1h0m0s is 1h,
// 1h30m0s is 1h30m.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
