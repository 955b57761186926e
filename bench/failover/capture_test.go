package failover

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"golang.org/x/sys/unix"
)

// tap records the VRRP adverts crossing a host's eth0, as the kernel saw
// them: an AF_PACKET socket with SO_TIMESTAMPNS. On the master (out) it
// sees each advert as the driver hands it to the device, which is when
// the sending daemon's sendmsg ran: the gaps between them are the
// daemon's timer accuracy. On the backup (in) it sees them as the veth
// delivers them into the backup's namespace (the time the bridge
// forwarded them): the gaps there add the bridge's delivery. Only the
// kernel stamps are used: the reading thread (SCHED_FIFO 50, so that
// the socket does not overflow) is a Go thread, and its read times
// suffer the same runtime delays as the daemons' (lastHop showed up to
// 300 ms on a host with load average 40, while the kernel stamps of the
// same adverts were on time).
type tap struct {
	host    string
	out     bool
	fd      int
	mu      sync.Mutex
	stamps  []time.Time     // kernel time of each advert
	lastHop []time.Duration // read time minus kernel time
	done    chan struct{}
}

// startTap opens the tap on h's eth0: out true records adverts h sends,
// false adverts h receives.
func startTap(b *testing.B, h *lab.Host, out bool) *tap {
	b.Helper()
	t := &tap{host: h.Name, out: out, fd: -1, done: make(chan struct{})}
	err := h.Do(func() error {
		// Only ETH_P_ALL taps see outgoing packets.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		t.fd = fd
		idx, err := ifindex(h.Iface)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		return nil
	})
	if err != nil {
		if t.fd >= 0 {
			unix.Close(t.fd)
		}
		b.Fatalf("tap on %s: %v", h.Name, err)
	}
	go t.run()
	b.Cleanup(t.stop)
	return t
}

func ifindex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("ifindex %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (t *tap) run() {
	defer close(t.done)
	runtime.LockOSThread() // ends with the goroutine, real-time policy with it
	attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Flags: unix.SCHED_FLAG_RESET_ON_FORK, Priority: 50}
	_ = unix.SchedSetAttr(0, attr, 0)
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(t.fd, buf, oob, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		read := time.Now()
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || (ll.Pkttype == unix.PACKET_OUTGOING) != t.out || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		if n < 20 || buf[9] != 112 { // IPPROTO_VRRP
			continue
		}
		ts, ok := kernelStamp(oob[:oobn])
		if !ok {
			continue
		}
		// Kernel stamps are wall-clock; carry them to the monotonic clock.
		at := read.Add(-max(read.Sub(ts), 0))
		t.mu.Lock()
		t.stamps = append(t.stamps, at)
		t.lastHop = append(t.lastHop, read.Sub(ts))
		t.mu.Unlock()
	}
}

// kernelStamp returns the SO_TIMESTAMPNS time in the control messages.
func kernelStamp(oob []byte) (time.Time, bool) {
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, cm := range cms {
		if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_TIMESTAMPNS && len(cm.Data) >= 16 {
			return time.Unix(int64(binary.NativeEndian.Uint64(cm.Data[0:8])), int64(binary.NativeEndian.Uint64(cm.Data[8:16]))), true
		}
	}
	return time.Time{}, false
}

func (t *tap) stop() {
	select {
	case <-t.done:
		return
	default:
	}
	unix.Shutdown(t.fd, unix.SHUT_RDWR)
	unix.Close(t.fd)
	select {
	case <-t.done:
	case <-time.After(2 * time.Second):
	}
}

// since returns the kernel stamps and last-hop delays recorded after t0.
func (t *tap) since(t0 time.Time) ([]time.Time, []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, _ := slices.BinarySearchFunc(t.stamps, t0, func(a, b time.Time) int { return a.Compare(b) })
	return slices.Clone(t.stamps[i:]), slices.Clone(t.lastHop[i:])
}

// gapStats sorts the gaps between consecutive adverts by how many
// advert intervals they span. A backup declares the master down after
// down (3 intervals plus its skew) without an advert.
type gapStats struct {
	interval, down time.Duration
	n              int           // gaps
	max            time.Duration // longest
	// over[i] counts gaps longer than limits[i].
	limits []time.Duration
	over   []int
	p99    time.Duration
}

func gaps(stamps []time.Time, interval, down time.Duration) gapStats {
	g := gapStats{interval: interval, down: down,
		limits: []time.Duration{interval * 3 / 2, 2 * interval, 3 * interval, down}}
	g.over = make([]int, len(g.limits))
	var all []time.Duration
	for i := 1; i < len(stamps); i++ {
		d := stamps[i].Sub(stamps[i-1])
		all = append(all, d)
		g.max = max(g.max, d)
		for j, l := range g.limits {
			if d > l {
				g.over[j]++
			}
		}
	}
	g.n = len(all)
	g.p99 = percentile(all, 0.99)
	return g
}

// String prints the histogram: "n 3000, p99 21ms, max 45ms; >1.5i 12, >2i 3, >3i 1, >down 0".
func (g gapStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "n %d, p99 %v, max %v;", g.n, g.p99.Round(10*time.Microsecond), g.max.Round(10*time.Microsecond))
	names := []string{">1.5i", ">2i", ">3i", ">down"}
	for i, c := range g.over {
		fmt.Fprintf(&b, " %s %d", names[i], c)
	}
	return b.String()
}

// durStats is "p50 p99 p99.9 max" of delays.
func durStats(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	r := func(x time.Duration) time.Duration { return x.Round(time.Microsecond) }
	return fmt.Sprintf("p50 %v p99 %v p99.9 %v max %v", r(percentile(d, 0.5)), r(percentile(d, 0.99)), r(percentile(d, 0.999)), r(slices.Max(d)))
}

// span is a gap between two adverts: from the one before to the one after.
type span struct{ from, to time.Time }

// longGaps returns the gaps longer than limit.
func longGaps(stamps []time.Time, limit time.Duration) []span {
	var out []span
	for i := 1; i < len(stamps); i++ {
		if stamps[i].Sub(stamps[i-1]) > limit {
			out = append(out, span{stamps[i-1], stamps[i]})
		}
	}
	return out
}

// shared counts the spans of a that overlap a span of any of others:
// a stall that other, unrelated processes suffered at the same moment
// points at the machine (kernel, other real-time work), not at the
// process.
func shared(a []span, others ...[]span) int {
	n := 0
	for _, x := range a {
	search:
		for _, o := range others {
			for _, y := range o {
				if x.from.Before(y.to) && y.from.Before(x.to) {
					n++
					break search
				}
			}
		}
	}
	return n
}

// delivery pairs each advert reaching d2 with the last one d1 sent
// before it and returns the delays: the veth and bridge between the two
// taps, in kernel time on both ends. Right while the delays stay under
// an advert interval (adverts carry no sequence number).
func delivery(sent, got []time.Time) []time.Duration {
	var out []time.Duration
	for _, r := range got {
		i, _ := slices.BinarySearchFunc(sent, r, func(a, b time.Time) int { return a.Compare(b) })
		// sent[i-1] <= r < sent[i] (ties: sent[i] == r counts as sent).
		if i < len(sent) && sent[i].Equal(r) {
			i++
		}
		if i == 0 {
			continue
		}
		out = append(out, r.Sub(sent[i-1]))
	}
	return out
}
