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
)

// scriptRunner runs one vrrp_script every interval in its own goroutine
// and reports each result to the node's goroutine, which owns tracker.
type scriptRunner struct {
	cfg     ScriptConfig
	tracker *ScriptTracker
	changed time.Time
	cancel  context.CancelFunc
}

func (s *scriptRunner) stop() { s.cancel() }

// fileRunner polls one vrrp_track_file.
type fileRunner struct {
	cfg    TrackFileConfig
	value  int
	cancel context.CancelFunc
}

func (f *fileRunner) stop() { f.cancel() }

// referenced returns the names of scripts and track files that some
// instance or group uses: keepalived runs only those.
func referenced(cfg Config) (scripts, files map[string]bool) {
	scripts, files = map[string]bool{}, map[string]bool{}
	add := func(refs []TrackRef, m map[string]bool) {
		for _, r := range refs {
			m[r.Name] = true
		}
	}
	for _, in := range cfg.Instances {
		add(in.TrackScripts, scripts)
		add(in.TrackFiles, files)
	}
	for _, g := range cfg.Groups {
		add(g.TrackScripts, scripts)
		add(g.TrackFiles, files)
	}
	return scripts, files
}

// syncRunners starts, stops and restarts script and file runners to match
// cfg. A script whose rise, fall and init_fail are unchanged keeps its
// state across a reload.
func (n *Node) syncRunners(cfg Config) {
	usedS, usedF := referenced(cfg)
	want := map[string]ScriptConfig{}
	for _, sc := range cfg.Scripts {
		if usedS[sc.Name] {
			want[sc.Name] = sc
		}
	}
	for name, sr := range n.scripts {
		sc, ok := want[name]
		if !ok || sc != sr.cfg {
			sr.stop()
			delete(n.scripts, name)
			if ok && sc.Rise == sr.cfg.Rise && sc.Fall == sr.cfg.Fall && sc.InitFail == sr.cfg.InitFail {
				n.startScript(sc, sr.tracker, sr.changed)
			}
		}
	}
	for name, sc := range want {
		if n.scripts[name] == nil {
			n.startScript(sc, NewScriptTracker(sc.Rise, sc.Fall, sc.InitFail), time.Time{})
		}
	}
	wantF := map[string]TrackFileConfig{}
	for _, fc := range cfg.TrackFiles {
		if usedF[fc.Name] {
			wantF[fc.Name] = fc
		}
	}
	for name, fr := range n.files {
		if fc, ok := wantF[name]; !ok || fc.Path != fr.cfg.Path {
			fr.stop()
			delete(n.files, name)
		} else {
			fr.cfg = fc
		}
	}
	for name, fc := range wantF {
		if n.files[name] == nil {
			n.startFile(fc)
		}
	}
}

func (n *Node) startScript(sc ScriptConfig, tr *ScriptTracker, changed time.Time) {
	ctx, cancel := context.WithCancel(n.ctx)
	sr := &scriptRunner{cfg: sc, tracker: tr, changed: changed, cancel: cancel}
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
			if !n.post(func() { n.scriptResult(sr, ok, detail) }) {
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

func (n *Node) scriptResult(sr *scriptRunner, ok bool, detail string) {
	if n.scripts[sr.cfg.Name] != sr {
		return // stopped since
	}
	if !sr.tracker.Result(ok) {
		return
	}
	sr.changed = time.Now()
	if sr.tracker.State() == ScriptGood {
		n.log.Info(fmt.Sprintf("VRRP_Script(%s) succeeded", sr.cfg.Name))
	} else {
		n.log.Info(fmt.Sprintf("VRRP_Script(%s) failed (%s)", sr.cfg.Name, detail))
	}
	n.retrackAll()
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
// the node. A missing or unreadable file reads as 0.
func (n *Node) startFile(fc TrackFileConfig) {
	ctx, cancel := context.WithCancel(n.ctx)
	fr := &fileRunner{cfg: fc, value: readTrackFile(fc.Path), cancel: cancel}
	n.files[fc.Name] = fr
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last := fr.value
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
				if n.files[fc.Name] != fr {
					return
				}
				fr.value = v
				n.log.Info(fmt.Sprintf("VRRP_Track_File(%s) value %d", fc.Name, v))
				n.retrackAll()
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
