package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/proctrack"
)

// scriptRunner runs one vrrp_script every interval in its own goroutine
// and reports each result to the core (which keeps its rise/fall state).
type scriptRunner struct {
	cancel context.CancelFunc
}

// fileRunner polls one vrrp_track_file.
type fileRunner struct {
	cancel context.CancelFunc
}

func (n *Node) stopScript(name string) {
	if sr := n.scripts[name]; sr != nil {
		sr.cancel()
		delete(n.scripts, name)
	}
}

func (n *Node) stopFile(name string) {
	if fr := n.files[name]; fr != nil {
		fr.cancel()
		delete(n.files, name)
	}
}

func (n *Node) startScript(sc ScriptConfig) {
	ctx, cancel := context.WithCancel(n.ctx)
	sr := &scriptRunner{cancel: cancel}
	n.scripts[sc.Name] = sr
	interval := sc.Interval
	if interval <= 0 {
		interval = time.Second
	}
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			ok, detail := runScript(ctx, sc.Script, sc.Credential, timeout)
			if ctx.Err() != nil {
				return
			}
			posted := n.post(func() {
				if n.scripts[sc.Name] == sr { // not stopped since
					n.step(Input{Kind: InScript, Now: time.Now(), Name: sc.Name, OK: ok, Detail: detail})
				}
			})
			if !posted {
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// runScript runs a keepalived script line: program and arguments split on
// spaces, single quotes grouping. Exit status 0 is success; a timeout
// kills the whole process group.
func runScript(ctx context.Context, line string, cred *syscall.Credential, timeout time.Duration) (bool, string) {
	args := splitScript(line)
	if len(args) == 0 {
		return false, "empty script"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return false, err.Error()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return true, "exited with status 0"
		case errors.As(err, &ee) && ee.Exited():
			return false, fmt.Sprintf("exited with status %d", ee.ExitCode())
		default:
			return false, err.Error()
		}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return false, "timed out"
	}
}

func splitScript(s string) []string {
	var args []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted = !quoted
			in = true
		case (r == ' ' || r == '\t') && !quoted:
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// startFile polls a track file twice a second; a change is reported to
// the core. A missing or unreadable file reads as 0.
func (n *Node) startFile(fc TrackFileConfig) {
	ctx, cancel := context.WithCancel(n.ctx)
	fr := &fileRunner{cancel: cancel}
	n.files[fc.Name] = fr
	last := readTrackFile(fc.Path)
	n.answers = append(n.answers, Input{Kind: InFile, Now: time.Now(), Name: fc.Name, Value: last})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			v := readTrackFile(fc.Path)
			if v == last {
				continue
			}
			last = v
			ok := n.post(func() {
				if n.files[fc.Name] == fr {
					n.step(Input{Kind: InFile, Now: time.Now(), Name: fc.Name, Value: v})
				}
			})
			if !ok {
				return
			}
		}
	}()
}

func readTrackFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return v
}

// trackProcesses (re)starts the process monitor for specs (none: stops
// it). The first scan's quorums are stepped before any other answer, so
// that an instance whose socket is answered in the same batch starts
// knowing them (keepalived reads /proc before its instances start).
func (n *Node) trackProcesses(specs []proctrack.Spec) {
	if n.procMon != nil {
		n.procMon.Stop()
		n.procMon = nil
	}
	if len(specs) == 0 {
		return
	}
	var mon *proctrack.Monitor
	report := func(cs []proctrack.Change) {
		n.post(func() {
			if n.procMon != mon { // stopped since
				return
			}
			for _, c := range cs {
				n.step(Input{Kind: InProcess, Now: time.Now(), Name: c.Name, Up: c.Up, Value: c.Count})
			}
		})
	}
	mon, first, err := proctrack.Start(specs, report, n.log)
	if err != nil {
		n.log.Error(fmt.Sprintf("%v: vrrp_track_process is not followed", err))
		return
	}
	n.procMon = mon
	var ins []Input
	for _, c := range first {
		ins = append(ins, Input{Kind: InProcess, Now: time.Now(), Name: c.Name, Up: c.Up, Value: c.Count})
	}
	n.answers = append(ins, n.answers...)
}
