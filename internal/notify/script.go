package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Script is a configured notify script: the command split into words as
// keepalived splits it, and the user and group to run it as ("" for the
// global script_user, or keepalived's default).
type Script struct {
	Args  []string
	User  string
	Group string
}

// ParseScript parses a script setting: the command string (the value of
// notify_master, notify, notify_up, quorum_up, *_fifo_script..., with the
// configuration's quotes removed) and the optional user and group that
// follow it.
func ParseScript(command, user, group string) (*Script, error) {
	args, err := SplitCommand(command)
	if err != nil {
		return nil, err
	}
	if group != "" && user == "" {
		return nil, fmt.Errorf("script %q: a group (%s) needs a user", args[0], group)
	}
	return &Script{Args: args, User: user, Group: group}, nil
}

// String returns the command as keepalived logs it, each word quoted.
func (s *Script) String() string { return shellQuote(s.Args) }

// DefaultScriptUser is the user keepalived runs scripts as when
// script_user is not set, if it exists.
const DefaultScriptUser = "keepalived_script"

// identity is a resolved user and group.
type identity struct {
	uid, gid uint32
	name     string
}

// resolveIdentity finds the uid and gid a script runs as, with
// keepalived's rules: the script's own user (and group, else the user's
// primary group); else the global script_user; else keepalived_script if
// that user exists; else the daemon's own identity, except that with
// enable_script_security vipd refuses to guess, as keepalived does.
func resolveIdentity(s *Script, cfg *Config) (identity, error) {
	if s.User != "" {
		return lookupIdentity(s.User, s.Group)
	}
	if cfg.ScriptUser != "" {
		return lookupIdentity(cfg.ScriptUser, cfg.ScriptGroup)
	}
	id, err := lookupIdentity(DefaultScriptUser, "")
	if err == nil {
		return id, nil
	}
	if cfg.ScriptSecurity {
		return identity{}, fmt.Errorf("no script_user is configured and the default user %s does not exist; "+
			"with enable_script_security a script is not run as root by default (set script_user)", DefaultScriptUser)
	}
	return identity{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), name: strconv.Itoa(os.Geteuid())}, nil
}

func lookupIdentity(name, group string) (identity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if n, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			u = &user.User{Uid: strconv.FormatUint(n, 10), Gid: strconv.FormatUint(n, 10), Username: name}
		} else {
			return identity{}, fmt.Errorf("script user %q does not exist", name)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			n, nerr := strconv.ParseUint(group, 10, 32)
			if nerr != nil {
				return identity{}, fmt.Errorf("script group %q does not exist", group)
			}
			gid = n
		} else {
			gid, _ = strconv.ParseUint(g.Gid, 10, 32)
		}
	}
	return identity{uid: uint32(uid), gid: uint32(gid), name: name}, nil
}

// prepared is a script ready to run: the path to execute (symbolic links
// of its directories resolved, as keepalived does) and its identity.
type prepared struct {
	path string
	args []string // argv, argv[0] == path
	id   identity
}

// prepare resolves the script's identity and checks it with keepalived's
// refusal rules. A refused script returns an error that says why.
func prepare(s *Script, cfg *Config, extra []string, warn func(string)) (*prepared, error) {
	if s == nil || len(s.Args) == 0 {
		return nil, ErrEmptyCommand
	}
	id, err := resolveIdentity(s, cfg)
	if err != nil {
		return nil, err
	}
	path, err := checkScript(s.Args[0], id, cfg.ScriptSecurity, warn)
	if err != nil {
		return nil, err
	}
	args := append([]string{path}, s.Args[1:]...)
	args = append(args, extra...)
	return &prepared{path: path, args: args, id: id}, nil
}

// run executes a prepared script in its own process group, as its user,
// with stdin, stdout and stderr on /dev/null, and waits for it, at most
// timeout (0: no limit) or until ctx is done. On either, the whole
// process group gets SIGTERM and, a second later, SIGKILL. A script the
// kernel cannot execute (no #! line) is run by /bin/sh, as keepalived
// does through system(3).
func run(ctx context.Context, p *prepared, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err := runOnce(ctx, p.path, p.args, p.id)
	if errors.Is(err, syscall.ENOEXEC) {
		err = runOnce(ctx, "/bin/sh", []string{"sh", "-c", shellQuote(p.args)}, p.id)
	}
	return err
}

func runOnce(ctx context.Context, path string, args []string, id identity) error {
	var cmd *exec.Cmd
	for try := 0; ; try++ {
		cmd = &exec.Cmd{Path: path, Args: args, SysProcAttr: sysProcAttr(id)}
		err := cmd.Start()
		if err == nil {
			break
		}
		// A script just written may still be open for writing in a
		// process that is between fork and exec: retry briefly.
		if !errors.Is(err, syscall.ETXTBSY) || try == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(10<<try) * time.Millisecond):
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitError(err)
	case <-ctx.Done():
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: killed", ErrScriptTimeout)
	}
	return fmt.Errorf("killed: %w", ctx.Err())
}

// ErrScriptTimeout is returned when a script ran longer than its timeout.
var ErrScriptTimeout = errors.New("script timed out")

func sysProcAttr(id identity) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if id.uid != uint32(os.Geteuid()) || id.gid != uint32(os.Getegid()) {
		attr.Credential = &syscall.Credential{Uid: id.uid, Gid: id.gid, Groups: []uint32{id.gid}}
	}
	return attr
}

func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by signal %s", ws.Signal())
		}
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

// RunScript runs s once and waits for it, at most timeout (0: no
// limit): keepalived's startup_script and shutdown_script. It applies
// the same identity and script security as notify scripts and kills
// the script's process group when the timeout expires.
func RunScript(ctx context.Context, s *Script, cfg Config, timeout time.Duration) error {
	p, err := prepare(s, &cfg, nil, func(string) {})
	if err != nil {
		return err
	}
	return run(ctx, p, timeout)
}
