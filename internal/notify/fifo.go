package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FIFOConfig is one of notify_fifo, vrrp_notify_fifo and lvs_notify_fifo.
type FIFOConfig struct {
	Path string // FIFO_NAME; empty: not configured

	// Owner of a FIFO vipd creates ([username [groupname]] after the
	// name); empty for the daemon's own.
	User, Group string

	// Script is the *_fifo_script: started when the FIFO is opened, with
	// the FIFO's name appended as its last argument, and sent SIGTERM at
	// Close.
	Script *Script
}

// fifo writes notification lines to a named pipe in order, from one
// goroutine, so that neither a missing nor a slow reader ever blocks the
// daemon: the pipe is opened read-write and non-blocking (so opening
// never waits for a reader and writing never gets SIGPIPE), lines wait in
// a bounded queue while the pipe is full, and lines beyond the queue are
// dropped and counted.
type fifo struct {
	path     string
	released bool // cleanup ran
	f        *os.File
	lines    chan string
	done     chan struct{}
	dropped  atomic.Uint64
	written  atomic.Uint64
	script   *exec.Cmd
	exited   chan struct{}
	log      *slog.Logger
}

const fifoQueue = 1024

// fifos counts the Notifiers of this process that use each FIFO, so that
// a reload, which starts a new Notifier before closing the old one, keeps
// the FIFO that the old one created: it is removed when its last user
// closes.
var fifos = struct {
	sync.Mutex
	m map[string]*fifoUse
}{m: map[string]*fifoUse{}}

type fifoUse struct {
	users   int
	created bool // by this process: remove it after the last user
}

func openFIFO(cfg *FIFOConfig, ncfg *Config, log *slog.Logger, warn func(string)) (*fifo, error) {
	ff := &fifo{path: filepath.Clean(cfg.Path), lines: make(chan string, fifoQueue), done: make(chan struct{}), log: log}
	if err := ff.acquire(cfg); err != nil {
		return nil, err
	}
	if cfg.Script != nil {
		p, err := prepare(cfg.Script, ncfg, []string{cfg.Path}, warn)
		if err != nil {
			ff.cleanup()
			return nil, fmt.Errorf("notify fifo %s: script %s: %w", cfg.Path, cfg.Script.Args[0], err)
		}
		cmd := &exec.Cmd{Path: p.path, Args: p.args, SysProcAttr: sysProcAttr(p.id)}
		if err := cmd.Start(); err != nil {
			ff.cleanup()
			return nil, fmt.Errorf("notify fifo %s: start %s: %w", cfg.Path, p.path, err)
		}
		ff.script = cmd
		ff.exited = make(chan struct{})
		go func() {
			err := cmd.Wait()
			log.Info("notify fifo script exited", "fifo", cfg.Path, "script", p.path, "status", fmt.Sprint(exitError(err)))
			close(ff.exited)
		}()
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		ff.stopScript(time.Second)
		ff.cleanup()
		return nil, fmt.Errorf("notify fifo %s: open: %w", cfg.Path, err)
	}
	ff.f = f
	go ff.writer()
	return ff, nil
}

// send queues a line; it never blocks.
func (ff *fifo) send(line string) {
	select {
	case ff.lines <- line:
	default:
		if ff.dropped.Add(1) == 1 {
			ff.log.Warn("notify fifo full: dropping notifications (no reader, or it is too slow)", "fifo", ff.path)
		}
	}
}

func (ff *fifo) writer() {
	defer close(ff.done)
	for line := range ff.lines {
		// The file is non-blocking and pollable: Write waits in the
		// runtime's poller while the pipe is full, until the deadline
		// Close sets.
		if _, err := ff.f.WriteString(line); err != nil {
			ff.dropped.Add(1)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Close gave up waiting for a reader: drop the rest.
				for range ff.lines {
					ff.dropped.Add(1)
				}
				return
			}
			continue
		}
		ff.written.Add(1)
	}
}

// close sends the reader script SIGTERM (keepalived does so before its
// last notifications, so the script knows to stop after reading them),
// writes what is queued until ctx's deadline, closes and removes the FIFO
// if vipd created it, and waits for the script to exit (SIGKILL after the
// deadline).
func (ff *fifo) close(ctx context.Context) {
	if ff.script != nil {
		_ = ff.script.Process.Signal(syscall.SIGTERM)
	}
	close(ff.lines)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	_ = ff.f.SetWriteDeadline(deadline)
	select {
	case <-ff.done:
	case <-ctx.Done():
	}
	// Removing the name first keeps a reader that reopens the FIFO in a
	// loop from reopening this one.
	ff.cleanup()
	_ = ff.f.Close()
	<-ff.done // writes to the closed file fail at once: the rest is counted as dropped
	if ff.script != nil {
		select {
		case <-ff.exited:
		case <-ctx.Done():
			ff.stopScript(0)
		case <-time.After(time.Until(deadline)):
			ff.stopScript(0)
		}
	}
}

func (ff *fifo) stopScript(grace time.Duration) {
	if ff.script == nil {
		return
	}
	pid := ff.script.Process.Pid
	if grace > 0 {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-ff.exited:
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-ff.exited
}

// acquire creates the FIFO if needed (0644, owned by cfg's user) and
// registers this use of it.
func (ff *fifo) acquire(cfg *FIFOConfig) error {
	fifos.Lock()
	defer fifos.Unlock()
	if u := fifos.m[ff.path]; u != nil {
		if fi, err := os.Lstat(ff.path); err == nil && fi.Mode()&fs.ModeNamedPipe != 0 {
			u.users++
			return nil
		}
		delete(fifos.m, ff.path) // removed behind our back: start over
	}
	use := &fifoUse{users: 1}
	fi, err := os.Lstat(ff.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := unix.Mkfifo(ff.path, 0o644); err != nil {
			return fmt.Errorf("notify fifo %s: create: %w", ff.path, err)
		}
		// Mkfifo is subject to the umask; keepalived's FIFOs are 0644.
		_ = os.Chmod(ff.path, 0o644)
		use.created = true
		if cfg.User != "" {
			id, err := lookupIdentity(cfg.User, cfg.Group)
			if err == nil {
				err = os.Chown(ff.path, int(id.uid), int(id.gid))
			}
			if err != nil {
				_ = os.Remove(ff.path)
				return fmt.Errorf("notify fifo %s: %w", ff.path, err)
			}
		}
	case err != nil:
		return fmt.Errorf("notify fifo %s: %w", ff.path, err)
	case fi.Mode()&fs.ModeNamedPipe == 0:
		return fmt.Errorf("notify fifo %s: exists and is not a FIFO but %s", ff.path, fileKind(fi.Mode()))
	}
	fifos.m[ff.path] = use
	return nil
}

// cleanup ends this use of the FIFO and removes the FIFO when this
// process created it and no other Notifier uses it.
func (ff *fifo) cleanup() {
	if ff.released {
		return
	}
	ff.released = true
	fifos.Lock()
	defer fifos.Unlock()
	u := fifos.m[ff.path]
	if u == nil {
		return
	}
	u.users--
	if u.users > 0 {
		return
	}
	delete(fifos.m, ff.path)
	if u.created {
		_ = os.Remove(ff.path)
	}
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + m.Type().String()
}
