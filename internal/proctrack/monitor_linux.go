package proctrack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Stats are the monitor's counters.
type Stats struct {
	Events  uint64 // process events decoded
	Bad     uint64 // messages dropped as malformed (see Decode)
	Lost    uint64 // receive buffer overruns (ENOBUFS): events were lost
	Rescans uint64 // full reads of /proc after a loss
}

// Monitor is the driver of a Tracker: it owns the connector socket and
// reads /proc, in one goroutine, and hands each batch of Changes to the
// report function (which must not block for long: it runs on that
// goroutine).
type Monitor struct {
	conn   *netlink.Conn
	tr     *Tracker
	report func([]Change)
	log    *slog.Logger
	stop   atomic.Bool
	done   chan struct{}

	events, bad, lost, rescans atomic.Uint64
}

// maxCmdline bounds the read of /proc/PID/cmdline: longer command lines
// are matched on their first maxCmdline bytes.
const maxCmdline = 64 << 10

// rcvBuf is the socket's receive buffer: room for a burst of some
// thousands of events (76 bytes each, plus the kernel's overhead).
const rcvBuf = 1 << 20

// Start opens the process events connector, subscribes, reads /proc and
// returns the first quorum of every spec (all Quorum, in spec order);
// later changes go to report until Stop. The connector exists in the
// initial network namespace only: a vipd running in another one (ip
// netns exec) opens its socket there, as keepalived does before it
// enters its net_namespace.
func Start(specs []Spec, report func([]Change), log *slog.Logger) (*Monitor, []Change, error) {
	if log == nil {
		log = slog.Default()
	}
	conn, err := dialConnector(log)
	if err != nil {
		return nil, nil, err
	}
	m := &Monitor{conn: conn, tr: NewTracker(specs), report: report, log: log, done: make(chan struct{})}
	first := m.tr.Scan(time.Now(), m.readAll())
	go m.run()
	return m, first, nil
}

// dialConnector opens a connector socket subscribed to process events
// and asks the kernel for them. The kernel sends them in the initial
// network namespace only (elsewhere the listen request is refused with
// ECONNREFUSED): a vipd started in another one (ip netns exec) opens its
// socket in the namespace of pid 1 or, where that cannot be read (a
// container), of the nearest ancestor process that is elsewhere, as
// keepalived opens its socket before it enters its net_namespace.
func dialConnector(log *slog.Logger) (*netlink.Conn, error) {
	var firstErr error
	for _, ns := range netnsCandidates() {
		conn, err := listen(ns)
		if ns > 0 {
			unix.Close(ns)
		}
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if errors.Is(err, unix.EPROTONOSUPPORT) {
			return nil, fmt.Errorf("track_process: the kernel has no process events connector (CONFIG_PROC_EVENTS): %w", err)
		}
	}
	return nil, firstErr
}

func listen(ns int) (*netlink.Conn, error) {
	conn, err := netlink.Dial(unix.NETLINK_CONNECTOR, &netlink.Config{Groups: CnIdxProc, NetNS: ns})
	if err != nil {
		return nil, fmt.Errorf("track_process: open the process events connector: %w", err)
	}
	if err := conn.SetReadBuffer(rcvBuf); err != nil {
		slog.Default().Debug(fmt.Sprintf("track_process: receive buffer of %d bytes: %v", rcvBuf, err))
	}
	if _, err := conn.Send(netlink.Message{Header: netlink.Header{Type: netlink.Done}, Data: ListenRequest(true)}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("track_process: listen to process events: %w", err)
	}
	return conn, nil
}

// netnsCandidates returns where to try the connector: 0 (this thread's
// namespace), then descriptors of other namespaces: pid 1's, then the
// ancestors' (each once, nearest first). The caller closes them.
func netnsCandidates() []int {
	out := []int{0}
	seen := map[uint64]bool{}
	var st unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &st) == nil {
		seen[st.Ino] = true
	}
	pids := []int{1}
	for pid, n := os.Getppid(), 0; pid > 1 && n < 64; n++ {
		pids = append(pids, pid)
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break
		}
		_, _, rest, ok := parseStat(b)
		f := bytes.Fields(rest)
		if !ok || len(f) < 1 {
			break
		}
		if pid, err = strconv.Atoi(string(f[0])); err != nil {
			break
		}
	}
	for _, pid := range pids {
		path := "/proc/" + strconv.Itoa(pid) + "/ns/net"
		if unix.Stat(path, &st) != nil || seen[st.Ino] {
			continue
		}
		seen[st.Ino] = true
		if fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			out = append(out, fd)
		}
	}
	return out
}

// Stop ends the monitor and waits for its goroutine.
func (m *Monitor) Stop() {
	if m.stop.Swap(true) {
		<-m.done
		return
	}
	// Closing the socket ends a pending Receive. The kernel stops
	// sending once no socket listens.
	m.conn.Close()
	<-m.done
}

// Stats returns the counters.
func (m *Monitor) Stats() Stats {
	return Stats{Events: m.events.Load(), Bad: m.bad.Load(), Lost: m.lost.Load(), Rescans: m.rescans.Load()}
}

func (m *Monitor) run() {
	defer close(m.done)
	var lastErr string
	for !m.stop.Load() {
		dl := m.tr.Deadline()
		if err := m.conn.SetReadDeadline(dl); err != nil && !m.stop.Load() {
			m.log.Error(fmt.Sprintf("track_process: %v", err))
			return
		}
		msgs, err := m.conn.Receive()
		if m.stop.Load() {
			return
		}
		now := time.Now()
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			m.deliver(m.tr.Tick(now))
			continue
		case errors.Is(err, unix.ENOBUFS):
			// Events were lost: count everything again, as keepalived
			// does, applying the delays to what changed.
			m.lost.Add(1)
			m.rescans.Add(1)
			m.log.Warn("track_process: process events were lost (receive buffer full); reading /proc again")
			m.deliver(m.tr.Scan(now, m.readAll()))
			continue
		default:
			if s := err.Error(); s != lastErr {
				m.log.Error(fmt.Sprintf("track_process: receive: %v", err))
				lastErr = s
			}
			m.bad.Add(1)
			// A socket that keeps failing must not spin a core; Stop
			// closes it, which ends the wait at the next receive.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, msg := range msgs {
			if msg.Header.Type != netlink.Done {
				m.bad.Add(1)
				continue
			}
			ev, err := Decode(msg.Data)
			if err != nil {
				m.bad.Add(1)
				continue
			}
			m.events.Add(1)
			m.deliver(m.handle(now, ev))
		}
		m.deliver(m.tr.Tick(now))
	}
}

func (m *Monitor) deliver(ch []Change) {
	if len(ch) > 0 {
		m.report(ch)
	}
}

// handle applies one event. Threads are ignored: a fork whose child is
// a thread, and the exec, comm and exit of a thread other than the
// process's main one.
func (m *Monitor) handle(now time.Time, ev Event) []Change {
	switch ev.What {
	case EvNone:
		if ev.Err != 0 {
			m.log.Error(fmt.Sprintf("track_process: the kernel refused to send process events: %v", syscall.Errno(ev.Err)))
		}
	case EvFork:
		if ev.ChildPID == ev.ChildTGID {
			return m.tr.Fork(now, int(ev.ParentTGID), int(ev.ChildTGID))
		}
	case EvExec:
		if ev.PID == ev.TGID {
			if pr, ok := m.read(int(ev.TGID)); ok {
				return m.tr.Exec(now, pr)
			}
		}
	case EvComm:
		if ev.PID == ev.TGID {
			return m.tr.Comm(now, int(ev.TGID), ev.Comm)
		}
	case EvExit:
		if ev.PID == ev.TGID {
			return m.tr.Exit(now, int(ev.TGID))
		}
	}
	return nil
}

// readAll reads every process of /proc, zombies left out (they do not
// run; pgrep counts them, keepalived does not).
func (m *Monitor) readAll() []Proc {
	d, err := os.Open("/proc")
	if err != nil {
		m.log.Error(fmt.Sprintf("track_process: %v", err))
		return nil
	}
	defer d.Close()
	var out []Proc
	for {
		names, err := d.Readdirnames(512)
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil || pid <= 0 {
				continue
			}
			if pr, ok := m.read(pid); ok {
				out = append(out, pr)
			}
		}
		if err != nil {
			if err != io.EOF {
				m.log.Error(fmt.Sprintf("track_process: read /proc: %v", err))
			}
			return out
		}
	}
}

// read reads what the specs need of process pid: its name and state from
// /proc/PID/stat, its command line if some spec matches command lines.
// ok is false if the process is gone or a zombie.
func (m *Monitor) read(pid int) (Proc, bool) {
	pr := Proc{PID: pid}
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return pr, false
	}
	comm, state, ok := ParseStat(stat)
	if !ok || state == 'Z' {
		return pr, false
	}
	pr.Comm = comm
	if m.tr.NeedCmdline() {
		f, err := os.Open(dir + "/cmdline")
		if err != nil {
			return pr, false
		}
		b, err := io.ReadAll(io.LimitReader(f, maxCmdline))
		f.Close()
		if err != nil {
			return pr, false
		}
		pr.Cmdline = b
	}
	return pr, true
}

// ParseStat returns the name (comm) and state of a /proc/PID/stat line:
// "PID (COMM) S ...". The name may hold spaces and parentheses, so it
// runs to the last ')'.
func ParseStat(b []byte) (comm string, state byte, ok bool) {
	comm, state, _, ok = parseStat(b)
	return comm, state, ok
}

// parseStat also returns the fields after the state.
func parseStat(b []byte) (comm string, state byte, rest []byte, ok bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 >= len(b) {
		return "", 0, nil, false
	}
	return string(b[open+1 : end]), b[end+2], b[end+3:], true
}
