package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Misc is MISC_CHECK: it runs a program; exit status 0 is up, anything
// else down. With Dynamic (misc_dynamic), exit 1 is down and 2..255 is up
// with the server's weight set to status - 2. The program runs in a
// process group of its own, as User/Group when set, with stdin, stdout and
// stderr on /dev/null; when the attempt's time (misc_timeout) runs out the
// whole group is killed, so a hung script's children do not linger, and it
// is always waited for, so no zombie remains.
type Misc struct {
	// Argv is misc_path split into words; Argv[0] is the program.
	Argv    []string
	Dynamic bool
	// Credential, when set, runs the program as that user (script_user or
	// MISC_CHECK's user keyword); see LookupCredential.
	Credential *syscall.Credential
	// Timeout is misc_timeout; zero leaves it to the context.
	Timeout time.Duration
	// Env, when not nil, is the program's whole environment.
	Env []string
}

// LookupCredential resolves a user name and an optional group name (the
// user's primary group when empty) for Misc.Credential.
func LookupCredential(userName, groupName string) (*syscall.Credential, error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("script user %q: %w", userName, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("script user %q: uid %q: %w", userName, u.Uid, err)
	}
	gidStr := u.Gid
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, fmt.Errorf("script group %q: %w", groupName, err)
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("script group %q: gid %q: %w", groupName, gidStr, err)
	}
	// No supplementary groups: the script must not keep root's.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Check runs the program once.
func (c *Misc) Check(ctx context.Context) Result {
	if len(c.Argv) == 0 {
		return down("misc_path empty")
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env = c.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return down("%s", reason("exec "+c.Argv[0], err))
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	timedOut := false
	select {
	case err = <-waited:
	case <-ctx.Done():
		timedOut = true
		// The negative pid is the process group: the script and
		// everything it started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-waited
	}
	// Children that outlived a script that exited are killed too: they
	// are in its group and would otherwise pile up round after round.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if timedOut {
		return down("timed out after %v", time.Since(start).Round(time.Millisecond))
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return down("%s", reason("wait", err))
		}
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if ok && ws.Signaled() {
			return down("killed by signal %v", ws.Signal())
		}
		code = ee.ExitCode()
	}
	switch {
	case code == 0:
		return up("exit 0")
	case c.Dynamic && code >= 2:
		return Result{Up: true, Reason: fmt.Sprintf("exit %d: weight %d", code, code-2), Weight: Weight{Kind: WeightSet, Value: int64(code - 2)}}
	}
	return down("exit %d", code)
}
