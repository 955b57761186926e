package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Run runs the instances until ctx is done, then stops cleanly: a master
// sends a priority 0 advert, and every address the node added is removed.
//
// The loop owns one OS thread and waits in ppoll(2) on the VRRP sockets
// and an eventfd, with the next VRRP deadline as timeout, so that the
// kernel wakes this thread itself when an advert is due or arrives: no Go
// scheduler, timer or other thread stands between a deadline and the
// advert. Unless Config.NoRealtime, the thread runs SCHED_RR (keepalived's
// vrrp_rt_priority, on by default here): with every core saturated by
// other work a master still advertises on time, so a 20 ms advert
// interval holds (see bench/failover). Adverts are judged by their kernel
// arrival time, and every socket is read before a timeout is acted upon.
func (n *Node) Run(ctx context.Context) error {
	// Never unlocked: the thread may carry a real-time policy; it ends
	// with this goroutine.
	runtime.LockOSThread()
	defer close(n.done)
	n.ctx = ctx
	n.core = NewCore()
	n.socks = map[SockKey]*sock{}
	n.scripts = map[string]*scriptRunner{}
	n.files = map[string]*fileRunner{}
	n.limiter = logLimiter{}
	n.readBuf = make([]byte, 65536)

	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("vrrp: eventfd: %w", err)
	}
	n.efdMu.Lock()
	n.efd = efd
	n.efdMu.Unlock()
	defer n.closeEfd()
	n.setScheduling()
	defer n.stopProcessRT()

	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	linkErr := make(chan error, 1)
	linkCh, err := n.host.WatchLinks(wctx, linkErr)
	if err != nil {
		return fmt.Errorf("vrrp: %w", err)
	}
	go func() {
		for st := range linkCh {
			if !n.post(func() { n.linkChanged(st) }) {
				return
			}
		}
	}()
	go func() {
		select {
		case err := <-linkErr:
			n.post(func() { n.log.Error(fmt.Sprintf("vrrp: %v; interface tracking stopped", err)) })
		case <-n.done:
		}
	}()
	// Address changes, for track_src_ip; subscribed before the first
	// reload reads the addresses, so that no change falls between.
	addrErr := make(chan error, 1)
	addrCh, err := n.host.WatchAddrs(wctx, addrErr)
	if err != nil {
		return fmt.Errorf("vrrp: %w", err)
	}
	go func() {
		for range addrCh {
			if !n.post(n.addrsChanged) {
				return
			}
		}
	}()
	go func() {
		select {
		case err := <-addrErr:
			n.post(func() { n.log.Error(fmt.Sprintf("vrrp: %v; track_src_ip stopped", err)) })
		case <-n.done:
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			n.post(func() { n.stopping = true })
		case <-n.done:
		}
	}()

	var startAt time.Time
	if d := startupDelay(n.cfg, uptime()); d > 0 && n.resume == nil {
		startAt = time.Now().Add(d)
		n.delayed = true
		n.log.Info(fmt.Sprintf("Delaying startup for %g seconds", d.Seconds()))
	} else {
		n.reload(n.cfg)
	}
	close(n.running)
	var fds []unix.PollFd
	for {
		n.readEventfd()
		n.runInbox()
		if n.handoff {
			n.detach()
			return nil
		}
		if n.stopping {
			n.shutdown()
			return nil
		}
		if n.delayed && !time.Now().Before(startAt) {
			n.delayed = false
			n.log.Info("VRRP startup delay over: starting the instances")
			n.reload(n.cfg)
		}
		// Adverts first, with their arrival times, then the timers.
		n.readSockets()
		if now := time.Now(); !n.deadline.IsZero() && !n.deadline.After(now) {
			n.step(Input{Kind: InTick, Now: now})
		}
		if len(n.inbox) > 0 {
			continue
		}
		fds = append(fds[:0], unix.PollFd{Fd: int32(efd), Events: unix.POLLIN})
		for _, s := range n.socks {
			fds = append(fds, unix.PollFd{Fd: int32(s.conn.Fd()), Events: unix.POLLIN})
		}
		var ts *unix.Timespec
		next := n.deadline
		if n.delayed {
			next = startAt
		}
		if !next.IsZero() {
			d := max(time.Until(next), 0)
			t := unix.NsecToTimespec(int64(d))
			ts = &t
		}
		if _, err := unix.Ppoll(fds, ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			n.log.Error(fmt.Sprintf("vrrp: ppoll: %v", err))
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// readSockets hands every queued advert to its instance.
func (n *Node) readSockets() {
	for _, s := range n.socks {
		for i := 0; i < 256; i++ {
			r, ok, err := s.conn.TryRead(n.readBuf)
			if err != nil || !ok {
				break
			}
			n.step(Input{Kind: InAdvert, Now: time.Now(), Sock: s.key, Packet: r})
		}
	}
}

func (n *Node) runInbox() {
	for {
		select {
		case f := <-n.inbox:
			f()
		default:
			return
		}
	}
}

// post queues f for Run's goroutine and wakes it. It returns false when
// the node has stopped.
func (n *Node) post(f func()) bool {
	select {
	case n.inbox <- f:
	case <-n.done:
		return false
	}
	n.efdMu.Lock()
	defer n.efdMu.Unlock()
	if n.efd >= 0 {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(n.efd, one[:])
	}
	return true
}

func (n *Node) readEventfd() {
	var b [8]byte
	_, _ = unix.Read(n.efd, b[:])
}

func (n *Node) closeEfd() {
	n.efdMu.Lock()
	defer n.efdMu.Unlock()
	if n.efd >= 0 {
		unix.Close(n.efd)
		n.efd = -1
	}
}

// setScheduling gives the loop's thread SCHED_RR (reset on fork, so that
// nothing this thread might start inherits it), or with ProcessRealtime
// every thread of the process (see rtprocess.go).
func (n *Node) setScheduling() {
	n.stopProcessRT()
	if n.cfg.NoRealtime {
		_ = unix.SchedSetAttr(0, schedAttr(0), 0)
		return
	}
	prio := n.cfg.RTPriority
	if prio <= 0 {
		prio = 1
	}
	if n.cfg.ProcessRealtime {
		n.startProcessRT(prio)
	}
	if err := unix.SchedSetAttr(0, schedAttr(prio), 0); err != nil {
		n.log.Warn(fmt.Sprintf("vrrp: cannot run the VRRP thread SCHED_RR priority %d (%v); a busy host may delay adverts", prio, err))
	}
}

// startProcessRT raises every thread of the process to SCHED_RR prio now
// and every rtScanEvery until stopProcessRT.
func (n *Node) startProcessRT(prio int) {
	if _, err := setProcessPriority(prio); err != nil {
		n.log.Warn(fmt.Sprintf("vrrp: cannot run the process SCHED_RR priority %d (%v); only the VRRP thread is", prio, err))
		return
	}
	n.log.Info(fmt.Sprintf("vrrp: every thread of the process runs SCHED_RR priority %d (vrrp_rt_priority)", prio))
	stop, done := make(chan struct{}), make(chan struct{})
	n.rtStop, n.rtDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(rtScanEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_, _ = setProcessPriority(prio)
			}
		}
	}()
}

// stopProcessRT ends the scans and puts every thread back under the
// normal scheduler (setScheduling then raises the loop's thread again).
func (n *Node) stopProcessRT() {
	if n.rtStop == nil {
		return
	}
	close(n.rtStop)
	<-n.rtDone
	n.rtStop, n.rtDone = nil, nil
	if _, err := setProcessPriority(0); err != nil {
		n.log.Warn(fmt.Sprintf("vrrp: cannot put the process back under the normal scheduler: %v", err))
	}
}

// startupDelay is how long Run holds the instances back: the longer of
// vrrp_startup_delay and what remains of vrrp_delay_after_boot.
func startupDelay(cfg Config, up time.Duration) time.Duration {
	d := cfg.StartupDelay
	if cfg.DelayAfterBoot > 0 && up >= 0 {
		d = max(d, cfg.DelayAfterBoot-up)
	}
	return d
}

// uptime is the time since the system booted, -1 if unknown.
func uptime() time.Duration {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return -1
	}
	return time.Duration(si.Uptime) * time.Second
}

// call runs f in Run's goroutine and waits for it. It fails when Run is
// not running.
func (n *Node) call(f func()) error {
	select {
	case <-n.running:
	case <-n.done:
		return errors.New("vrrp: node stopped")
	}
	done := make(chan struct{})
	if !n.post(func() { f(); close(done) }) {
		return errors.New("vrrp: node stopped")
	}
	select {
	case <-done:
		return nil
	case <-n.done:
		return errors.New("vrrp: node stopped")
	}
}
