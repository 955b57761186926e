package daemon

// vipctl upgrade: the running vipd starts the binary at its path and
// hands it the listening sockets (as inherited descriptors, os/exec
// ExtraFiles) and, over a socketpair, the VRRP, checker and quorum
// states (package handover's wire format). The new process adopts the
// data plane as a restart does (ipvs's ownership record, xdp's pins, the
// proxy's passed sockets), resumes the VRRP instances where the old one
// left them, and says Done; the old one stops accepting, finishes its
// open proxied connections and exits. Until Done nothing is committed:
// if the new process fails or dies, the old one kills it, takes
// everything back and reports the step that failed. See docs/upgrade.md.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/dataplane/proxy"
	"github.com/vipd/vipd/internal/handover"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/vrrp"
)

// HandoverEnv names the environment variable that tells a vipd it was
// started by `vipctl upgrade`: its handover socket is fd 3.
const HandoverEnv = "VIPD_HANDOVER"

// Steps of an upgrade, as UpgradeError names them.
const (
	stepRefused = "check that the upgrade can run"
	stepStart   = "start the new binary"
	stepHello   = "send the sockets (hello)"
	stepReady   = "wait for the new process to load its configuration (ready)"
	stepFreeze  = "stop accepting, stop the checkers, detach VRRP"
	stepState   = "send the state"
	stepDone    = "wait for the new process to take over (done)"
)

// Timeouts of the handover: the new process loads and validates its
// configuration before Ready; it starts the data plane, checkers, VRRP
// and API before Done.
var (
	readyTimeout = 60 * time.Second
	doneTimeout  = 30 * time.Second
)

func upgradeErr(step string, format string, args ...any) error {
	return &api.UpgradeError{Step: step, Reason: fmt.Sprintf(format, args...)}
}

// passed is a listening socket handed to the new process: a duplicate
// descriptor kept until the upgrade is over (a failed upgrade takes the
// proxy's back from these).
type passed struct {
	name  string
	proto lvs.Protocol
	addr  netip.AddrPort
	fd    int
	// file owns fd once made (ExtraFiles): closing it, never fd
	// directly, so that its finalizer cannot close the number again
	// later, when it may be another socket's.
	file *os.File
}

// Upgrade replaces this process with the binary at its path (api.Upgrader).
// It returns once the new process runs, or with an *api.UpgradeError
// once everything is back as it was.
func (d *Daemon) Upgrade(ctx context.Context) (api.UpgradeResult, error) {
	if !d.upgrading.CompareAndSwap(false, true) {
		return api.UpgradeResult{}, upgradeErr(stepRefused, "an upgrade is already running")
	}
	res, err := d.upgrade(ctx)
	if err != nil {
		d.upgrading.Store(false)
		d.countUpgrade(api.UpgradeFailed)
		d.log.Error("Upgrade failed; this vipd keeps running", "err", err)
		return res, err
	}
	d.countUpgrade(api.UpgradeOK)
	return res, nil
}

func (d *Daemon) upgrade(ctx context.Context) (api.UpgradeResult, error) {
	start := time.Now()
	var refuse error
	var ctlLn, webLn net.Listener
	if err := d.call(ctx, func() {
		switch {
		case d.handedOverNow():
			refuse = errors.New("this vipd has already handed over")
		case d.bfd != nil:
			refuse = errors.New("bfd_instance sessions run: they are not carried across an upgrade yet (a new session starts down, which track_bfd would act on; restart instead)")
		case d.bgp != nil:
			refuse = errors.New("a bgp block runs: the BGP sessions are not carried across an upgrade yet (restart instead)")
		case d.dpName == config.DataplaneXDP:
			refuse = errors.New("the xdp data plane is not carried across an upgrade yet (restart instead: it adopts its pinned maps)")
		}
		d.mu.Lock()
		ctlLn, webLn = d.ctlLn, d.webLn
		d.mu.Unlock()
	}); err != nil {
		return api.UpgradeResult{}, upgradeErr(stepRefused, "%v", err)
	}
	if refuse != nil {
		return api.UpgradeResult{}, upgradeErr(stepRefused, "%v", refuse)
	}
	exe, err := os.Executable()
	if err != nil {
		return api.UpgradeResult{}, upgradeErr(stepStart, "finding this binary's path: %v", err)
	}
	if fi, err := os.Stat(exe); err != nil {
		return api.UpgradeResult{}, upgradeErr(stepStart, "%v", err)
	} else if fi.Mode()&0o111 == 0 || !fi.Mode().IsRegular() {
		return api.UpgradeResult{}, upgradeErr(stepStart, "%s is not an executable file", exe)
	}
	d.log.Info("Upgrading: starting " + exe)

	// The sockets to pass, as duplicates.
	var socks []passed
	defer func() {
		for _, p := range socks {
			if p.file != nil {
				p.file.Close()
			} else {
				unix.Close(p.fd)
			}
		}
	}()
	for _, l := range []struct {
		name string
		ln   net.Listener
	}{{"control", ctlLn}, {"metrics", webLn}} {
		if l.ln == nil {
			continue
		}
		fd, err := dupListener(l.ln)
		if err != nil {
			return api.UpgradeResult{}, upgradeErr(stepStart, "%s socket: %v", l.name, err)
		}
		socks = append(socks, passed{name: l.name, fd: fd})
	}
	px, _ := d.dp.(*proxy.Dataplane)
	if px != nil {
		for proto, byAddr := range px.Sockets() {
			for ap, fds := range byAddr {
				for _, fd := range fds {
					nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
					if err != nil {
						return api.UpgradeResult{}, upgradeErr(stepStart, "proxy socket %s %s: %v", proto, ap, err)
					}
					socks = append(socks, passed{name: "proxy/" + strings.ToLower(proto.String()) + "/" + ap.String(), proto: proto, addr: ap, fd: nfd})
				}
			}
		}
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return api.UpgradeResult{}, upgradeErr(stepStart, "socketpair: %v", err)
	}
	if err := unix.SetNonblock(pair[0], true); err != nil {
		unix.Close(pair[0])
		unix.Close(pair[1])
		return api.UpgradeResult{}, upgradeErr(stepStart, "socketpair: %v", err)
	}
	conn := os.NewFile(uintptr(pair[0]), "handover")
	defer conn.Close()
	child := os.NewFile(uintptr(pair[1]), "handover-child")
	hello := &handover.Hello{PID: os.Getpid(), Version: d.opts.Version}
	extra := []*os.File{child}
	for i, p := range socks {
		f := os.NewFile(uintptr(p.fd), p.name)
		socks[i].file = f
		extra = append(extra, f)
		hello.Listeners = append(hello.Listeners, handover.Listener{Name: p.name, FD: handover.FirstFD + len(extra) - 1})
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, HandoverEnv+"=") }), HandoverEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.ExtraFiles = extra
	err = cmd.Start()
	child.Close()
	// os/exec may have put the shared descriptions in blocking mode
	// (File.Fd does): the event loops and the API need them non-blocking.
	for _, p := range socks {
		_ = unix.SetNonblock(p.fd, true)
	}
	if err != nil {
		return api.UpgradeResult{}, upgradeErr(stepStart, "%v", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// abort kills the new process (nothing it did is committed) and
	// waits for it, so that the error says how it ended.
	abort := func(step string, err error) error {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		werr := <-exited
		reason := err.Error()
		if werr != nil && !strings.Contains(reason, "exited") {
			reason += " (new vipd pid " + strconv.Itoa(pid) + ": " + werr.Error() + ")"
		}
		return upgradeErr(step, "%s", reason)
	}
	ex := &exchange{conn: conn, exited: exited, pid: pid}

	if err := handover.Encode(conn, hello); err != nil {
		select {
		case werr := <-exited:
			exited <- werr
			err = fmt.Errorf("the new vipd (pid %d) exited before hello: %v", pid, exitText(werr))
		case <-time.After(200 * time.Millisecond):
		}
		return api.UpgradeResult{}, abort(stepHello, err)
	}
	m, err := ex.expect(handover.TypeReady, readyTimeout)
	if err != nil {
		return api.UpgradeResult{}, abort(stepReady, err)
	}
	ready := m.(*handover.Ready)
	d.log.Info(fmt.Sprintf("Upgrading: new vipd %s (pid %d) loaded its configuration; handing over", ready.Version, ready.PID))

	// From here this process stops: checkers, accepting, VRRP (last,
	// to keep the gap between two adverts short).
	st, frozen, err := d.freeze(px)
	if err != nil {
		d.thaw(px, socks, frozen)
		return api.UpgradeResult{}, abort(stepFreeze, err)
	}
	if err := handover.Encode(conn, st); err != nil {
		d.thaw(px, socks, frozen)
		return api.UpgradeResult{}, abort(stepState, err)
	}
	if _, err := ex.expect(handover.TypeDone, doneTimeout); err != nil {
		err = abort(stepDone, err)
		d.thaw(px, socks, frozen)
		return api.UpgradeResult{}, err
	}
	// Committed: the new process runs. It is the service's main process
	// now (systemd, Type=notify: only the main process may say so).
	sdNotify("MAINPID=" + strconv.Itoa(pid))
	res := api.UpgradeResult{Binary: exe, OldPID: os.Getpid(), NewPID: pid, OldVersion: d.opts.Version, NewVersion: ready.Version, Took: time.Since(start)}
	if px != nil {
		res.Draining = px.Active()
	}
	d.log.Info(fmt.Sprintf("Upgrade done: vipd pid %d took over in %v; this process finishes %d open connections and exits", pid, res.Took.Round(time.Millisecond), res.Draining))
	d.markHandedOver()
	// Stop accepting on the control and metrics sockets before vipctl
	// hears of the new pid, so that whatever asks next reaches the new
	// process (requests in flight, this one included, still finish).
	if kl, ok := ctlLn.(interface{ KeepFile() }); ok {
		kl.KeepFile()
	}
	for _, ln := range []net.Listener{ctlLn, webLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	return res, nil
}

// exchange reads the new process's frames, or notices that it died.
type exchange struct {
	conn   *os.File
	exited chan error
	pid    int
}

func (x *exchange) expect(want handover.Type, timeout time.Duration) (any, error) {
	type result struct {
		f   handover.Frame
		err error
	}
	ch := make(chan result, 1)
	_ = x.conn.SetReadDeadline(time.Now().Add(timeout))
	go func() {
		f, err := handover.Decode(x.conn)
		ch <- result{f, err}
	}()
	var r result
	select {
	case r = <-ch:
		if r.err != nil {
			// A broken handover is most often a process that died:
			// say so if it did.
			select {
			case err := <-x.exited:
				x.exited <- err
				return nil, fmt.Errorf("the new vipd (pid %d) exited before %s: %v", x.pid, want, exitText(err))
			case <-time.After(200 * time.Millisecond):
			}
		}
	case err := <-x.exited:
		x.exited <- err // abort waits for it too
		// What it said before it went (a Fail) is the better reason.
		if r = <-ch; r.err != nil || r.f.Type != handover.TypeFail {
			return nil, fmt.Errorf("the new vipd (pid %d) exited before %s: %v", x.pid, want, exitText(err))
		}
	}
	switch {
	case errors.Is(r.err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("no answer from the new vipd (pid %d) in %v", x.pid, timeout)
	case errors.Is(r.err, io.EOF):
		return nil, fmt.Errorf("the new vipd (pid %d) closed the handover before %s", x.pid, want)
	case r.err != nil:
		return nil, r.err
	case r.f.Type == handover.TypeFail:
		return nil, fmt.Errorf("the new vipd (pid %d) failed to %s", x.pid, r.f.Msg.(*handover.Fail))
	case r.f.Type != want:
		return nil, fmt.Errorf("the new vipd (pid %d) sent %s, expected %s", x.pid, r.f.Type, want)
	}
	return r.f.Msg, nil
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// frozen is what freeze stopped, for thaw.
type frozen struct {
	runner   bool
	checkers map[check.CheckerKey]bool
	vrrp     map[string]vrrp.Resume
	node     bool
	accept   bool
}

// freeze stops this process's part (checkers, accepting, VRRP) and
// returns the state the next process resumes from.
func (d *Daemon) freeze(px *proxy.Dataplane) (*handover.State, frozen, error) {
	st := &handover.State{}
	var fz frozen
	var node *vrrp.Node
	var nodeRuns bool
	err := d.call(context.Background(), func() {
		if d.runner != nil && d.stopRun != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			checks, _ := d.runner.Status(ctx)
			cancel()
			fz.checkers = map[check.CheckerKey]bool{}
			for _, c := range checks {
				fz.checkers[check.CheckerKey{Server: c.Server, Checker: c.Checker}] = c.Up
				st.Checkers = append(st.Checkers, handover.Checker{Server: c.Server, Checker: c.Checker, Up: c.Up})
			}
			d.stopRunner()
			fz.runner = true
		}
		for _, name := range sortedKeys(d.health) {
			h := d.health[name]
			st.Servers = append(st.Servers, handover.Server{Name: name, Up: h.up, Weight: h.weight})
		}
		for _, name := range sortedKeys(d.quorum) {
			st.Quorum = append(st.Quorum, handover.Flag{Name: name, Up: d.quorum[name]})
		}
		node, nodeRuns = d.node, d.stopNode != nil
	})
	if err != nil {
		return nil, fz, err
	}
	d.trackMu.Lock()
	for _, g := range sortedKeys(d.trackUp) {
		st.TrackGroups = append(st.TrackGroups, handover.Flag{Name: g, Up: d.trackUp[g]})
	}
	d.trackMu.Unlock()
	if px != nil {
		px.StopAccepting()
		fz.accept = true
	}
	if node != nil && nodeRuns {
		rs, err := node.Handoff()
		if err != nil {
			return nil, fz, fmt.Errorf("VRRP: %w", err)
		}
		fz.node = true
		fz.vrrp = rs
		st.VRRP = resumeToWire(rs)
	}
	return st, fz, nil
}

// thaw takes back what freeze stopped: the upgrade failed before the
// new process took over (it is dead by now).
func (d *Daemon) thaw(px *proxy.Dataplane, socks []passed, fz frozen) {
	if fz.accept {
		for _, p := range socks {
			if p.proto == 0 {
				continue
			}
			// A copy of its own for the data plane (socks are closed
			// when the upgrade returns).
			nfd, err := unix.FcntlInt(uintptr(p.fd), unix.F_DUPFD_CLOEXEC, 0)
			if err == nil {
				err = px.Inherit(p.proto, p.addr, []int{nfd})
				if err != nil {
					unix.Close(nfd)
				}
			}
			if err != nil {
				d.log.Error("upgrade: taking back a proxy socket", "err", err)
			}
		}
		if err := px.ResumeAccepting(); err != nil {
			d.log.Error("upgrade: accepting again", "err", err)
		}
		px.ReleaseInherited()
	}
	_ = d.call(context.Background(), func() {
		if fz.runner {
			d.startRunner(d.gen.servers, fz.checkers)
		}
		if fz.node && d.gen.vrrp != nil {
			node, err := vrrp.New(*d.gen.vrrp, vrrp.Deps{Logger: d.log, Notifier: vrrp.NotifierFunc(d.vrrpNotify)})
			if err != nil {
				d.log.Error("upgrade: restarting VRRP", "err", err)
				return
			}
			node.SetResume(fz.vrrp)
			d.mu.Lock()
			d.node = node
			d.mu.Unlock()
			d.startVRRP()
			d.replayTrackGroups(node)
		}
		d.publish(nil)
	})
	d.log.Info("Upgrade undone: this vipd runs as before")
}

func resumeToWire(rs map[string]vrrp.Resume) []handover.Instance {
	var out []handover.Instance
	for _, name := range sortedKeys(rs) {
		r := rs[name]
		in := handover.Instance{Name: name, State: r.State.String(), MasterAddr: r.MasterAddr, MasterPrio: r.MasterPrio, MasterAdver: int64(r.MasterAdver)}
		if !r.NextAdvert.IsZero() {
			in.NextAdvert = r.NextAdvert.UnixNano()
		}
		if !r.DownAt.IsZero() {
			in.DownAt = r.DownAt.UnixNano()
		}
		out = append(out, in)
	}
	return out
}

func resumeFromWire(ins []handover.Instance) map[string]vrrp.Resume {
	out := map[string]vrrp.Resume{}
	for _, in := range ins {
		r := vrrp.Resume{MasterAddr: in.MasterAddr, MasterPrio: in.MasterPrio, MasterAdver: time.Duration(in.MasterAdver)}
		switch in.State {
		case "MASTER":
			r.State = vrrp.StateMaster
		case "BACKUP":
			r.State = vrrp.StateBackup
		default:
			continue
		}
		if in.NextAdvert > 0 {
			r.NextAdvert = time.Unix(0, in.NextAdvert)
		}
		if in.DownAt > 0 {
			r.DownAt = time.Unix(0, in.DownAt)
		}
		out[in.Name] = r
	}
	return out
}

// dupListener duplicates a listener's descriptor (close-on-exec; the
// child gets its own copy through ExtraFiles).
func dupListener(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return nfd, derr
}

// handedOverNow says whether the next process took over.
func (d *Daemon) handedOverNow() bool {
	select {
	case <-d.handedOver:
		return true
	default:
		return false
	}
}

func (d *Daemon) markHandedOver() {
	d.handOnce.Do(func() { close(d.handedOver) })
}

// countUpgrade counts an upgrade by result for the metrics.
func (d *Daemon) countUpgrade(result string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.upgradeResults == nil {
		d.snap.upgradeResults = map[string]uint64{}
	}
	d.snap.upgradeResults[result]++
}

// releaseDataplane leaves the kernel's state to the next process.
func (d *Daemon) releaseDataplane() {
	if k, ok := d.dp.(*ipvs.Dataplane); ok {
		k.Release()
	}
}

// drain waits, after a handover, until the proxy's open connections
// have closed (or ctx is done: SIGTERM cuts them).
func (d *Daemon) drain(ctx context.Context) {
	px, ok := d.dp.(*proxy.Dataplane)
	if !ok {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := -1
	for {
		n := px.Active()
		if n == 0 {
			d.log.Info("Handed over: the last connection closed; exiting")
			return
		}
		if n != last && (last < 0 || n%10 == 0) {
			d.log.Info(fmt.Sprintf("Handed over: %d connections still open", n))
		}
		last = n
		select {
		case <-ctx.Done():
			d.log.Info(fmt.Sprintf("Handed over: stopping with %d connections still open", n))
			return
		case <-tick.C:
		case <-d.in.ready:
			d.in.serve()
		}
	}
}

// sortedKeys returns a map's keys in order, for a stable handover.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
