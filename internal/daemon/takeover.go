package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/dataplane/proxy"
	"github.com/vipd/vipd/internal/handover"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/vrrp"
)

// Handover is the new process's end of `vipctl upgrade` (see
// upgrade.go): the previous process's Hello, the socket to it and the
// listening sockets it passed. cmd/vipd accepts it before loading the
// configuration and hands it to the daemon in Options.
type Handover struct {
	conn  *os.File
	hello *handover.Hello
	state *handover.State
	// fds of the passed listeners by name, until taken.
	fds  map[string][]int
	done bool
}

// AcceptHandover reads the previous process's Hello on fd 3 (the
// environment says there is one: HandoverEnv). The passed descriptors
// become close-on-exec, so that scripts vipd runs do not inherit them.
func AcceptHandover() (*Handover, error) {
	os.Unsetenv(HandoverEnv)
	if err := unix.SetNonblock(handover.FirstFD, true); err != nil {
		return nil, fmt.Errorf("handover: fd %d: %w", handover.FirstFD, err)
	}
	unix.CloseOnExec(handover.FirstFD)
	h := &Handover{conn: os.NewFile(handover.FirstFD, "handover"), fds: map[string][]int{}}
	_ = h.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := handover.Decode(h.conn)
	if err != nil {
		return nil, err
	}
	hello, ok := f.Msg.(*handover.Hello)
	if !ok {
		return nil, fmt.Errorf("handover: got %s first, expected hello", f.Type)
	}
	for _, l := range hello.Listeners {
		var st unix.Stat_t
		if err := unix.Fstat(l.FD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return nil, fmt.Errorf("handover: listener %s: fd %d is not a socket", l.Name, l.FD)
		}
		unix.CloseOnExec(l.FD)
		h.fds[l.Name] = append(h.fds[l.Name], l.FD)
	}
	h.hello = hello
	return h, nil
}

// PreviousPID is the pid of the process handing over.
func (h *Handover) PreviousPID() int { return h.hello.PID }

// Fail tells the previous process which step failed: it kills this
// process and keeps running. The caller exits at once, without undoing
// anything (nothing of this process is committed).
func (h *Handover) Fail(step string, err error) {
	if h == nil || h.done {
		return
	}
	_ = handover.Encode(h.conn, &handover.Fail{Step: step, Error: err.Error()})
}

// ready says the configuration is loaded and waits for the state.
func (h *Handover) ready(version string) error {
	if err := handover.Encode(h.conn, &handover.Ready{PID: os.Getpid(), Version: version}); err != nil {
		return err
	}
	_ = h.conn.SetReadDeadline(time.Now().Add(doneTimeout))
	f, err := handover.Decode(h.conn)
	if errors.Is(err, io.EOF) {
		return errors.New("the previous vipd closed the handover")
	}
	if err != nil {
		return err
	}
	st, ok := f.Msg.(*handover.State)
	if !ok {
		return fmt.Errorf("got %s, expected state", f.Type)
	}
	h.state = st
	return nil
}

// finish tells the previous process that this one runs.
func (h *Handover) finish() error {
	err := handover.Encode(h.conn, &handover.Done{PID: os.Getpid()})
	h.done = true
	h.conn.Close()
	return err
}

// listener takes the passed listener of name as a net.Listener (nil if
// none was passed).
func (h *Handover) listener(name string) (net.Listener, error) {
	fds := h.fds[name]
	if len(fds) == 0 {
		return nil, nil
	}
	delete(h.fds, name)
	f := os.NewFile(uintptr(fds[0]), name)
	defer f.Close()
	return net.FileListener(f)
}

// proxySockets gives the proxy the sockets passed for its services.
func (h *Handover) proxySockets(px *proxy.Dataplane) error {
	for name, fds := range h.fds {
		rest, ok := strings.CutPrefix(name, "proxy/")
		if !ok {
			continue
		}
		proto, addr, _ := strings.Cut(rest, "/")
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return fmt.Errorf("passed socket %s: %w", name, err)
		}
		p := lvs.TCP
		if proto == "udp" {
			p = lvs.UDP
		}
		if err := px.Inherit(p, ap, fds); err != nil {
			return err
		}
		delete(h.fds, name)
	}
	return nil
}

// closeUnused closes the passed sockets nothing took.
func (h *Handover) closeUnused() {
	for name, fds := range h.fds {
		for _, fd := range fds {
			unix.Close(fd)
		}
		delete(h.fds, name)
	}
}

// resumed applies the handed-over state to what the daemon starts from:
// health and quorum (so the first Apply is what ran), track groups.
func (d *Daemon) resumed(st *handover.State) (checkers map[check.CheckerKey]bool, vr map[string]vrrp.Resume) {
	for _, s := range st.Servers {
		if _, ok := d.gen.health[s.Name]; ok {
			d.gen.health[s.Name] = health{up: s.Up, weight: s.Weight}
		}
	}
	for _, q := range st.Quorum {
		if _, ok := d.gen.quorum[q.Name]; ok {
			d.gen.quorum[q.Name] = q.Up
		}
	}
	if !d.opts.VRRPOnly {
		d.gen.desired = desiredServices(d.gen.cfg, d.gen.plans, d.gen.health, d.gen.quorum)
	}
	d.trackMu.Lock()
	for _, g := range st.TrackGroups {
		if d.trackUp == nil {
			d.trackUp = map[string]bool{}
		}
		d.trackUp[g.Name] = g.Up
	}
	d.trackMu.Unlock()
	checkers = map[check.CheckerKey]bool{}
	for _, c := range st.Checkers {
		checkers[check.CheckerKey{Server: c.Server, Checker: c.Checker}] = c.Up
	}
	return checkers, resumeFromWire(st.VRRP)
}

// takeoverFail ends a new process whose takeover failed: the previous
// process hears the step and why, and keeps running; this one exits at
// once, leaving everything as it found it (no deferred cleanup runs).
func (d *Daemon) takeoverFail(step string, err error) error {
	h := d.opts.Handover
	if h == nil || h.done {
		return err
	}
	d.log.Error(fmt.Sprintf("upgrade: taking over failed at %q: %v; the previous vipd keeps running", step, err))
	h.Fail(step, err)
	os.Exit(1)
	return err
}

// controlListener is the control socket: passed by the previous
// process, else opened.
func (d *Daemon) controlListener() (net.Listener, error) {
	if h := d.opts.Handover; h != nil {
		ln, err := h.listener("control")
		if err != nil {
			return nil, err
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			return api.SocketFromListener(ul, d.opts.Control), nil
		}
		if ln != nil {
			ln.Close()
		}
	}
	return api.Listen(d.opts.Control, 0o600)
}

// metricsListener is the metrics and status listener: passed, else
// opened.
func (d *Daemon) metricsListener() (net.Listener, error) {
	if h := d.opts.Handover; h != nil {
		if ln, err := h.listener("metrics"); err != nil || ln != nil {
			return ln, err
		}
	}
	return net.Listen("tcp", d.opts.Metrics)
}
