package failover

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestGaps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	// Adverts every 10 ms, and gaps of 16, 25, 20 and 30 (exactly 2 and 3
	// intervals: not over), 31 and 40 ms.
	var st []time.Time
	at := t0
	for _, d := range []time.Duration{0, 10, 10, 16, 10, 25, 20, 30, 31, 40, 10} {
		at = at.Add(d * ms)
		st = append(st, at)
	}
	g := gaps(st, 10*ms, 36*ms)
	if g.n != 10 || g.max != 40*ms {
		t.Fatalf("n %d max %v, want 10 and 40ms", g.n, g.max)
	}
	// >15ms: 16 25 20 30 31 40; >20: 25 30 31 40; >30: 31 40; >36: 40.
	want := []int{6, 4, 2, 1}
	for i := range want {
		if g.over[i] != want[i] {
			t.Errorf("over %v = %d, want %d (all %v)", g.limits[i], g.over[i], want[i], g.over)
		}
	}
	if len(gaps(st[:1], 10*ms, 36*ms).over) != 4 || gaps(nil, 10*ms, 36*ms).n != 0 {
		t.Error("one advert or none: no gaps")
	}
	long := longGaps(st, 30*ms)
	if len(long) != 2 || long[0].to.Sub(long[0].from) != 31*ms {
		t.Fatalf("longGaps(30ms) = %v", long)
	}
	// Gaps over 30 ms: [121,152] and [152,192] ms. One span inside the first, one far away.
	other := []span{{t0.Add(130 * ms), t0.Add(140 * ms)}, {t0.Add(5 * time.Second), t0.Add(6 * time.Second)}}
	if n := shared(long, other); n != 1 {
		t.Errorf("shared = %d, want 1", n)
	}
	if n := shared(long); n != 0 {
		t.Errorf("shared with nothing = %d", n)
	}
	// Touching ends do not overlap.
	if n := shared([]span{{t0, t0.Add(ms)}}, []span{{t0.Add(ms), t0.Add(2 * ms)}}); n != 0 {
		t.Errorf("touching spans counted as shared")
	}
}

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	binary.NativeEndian.PutUint64(b[0:8], uint64(unix.CmsgLen(len(data)))) // Cmsghdr.Len (64-bit)
	binary.NativeEndian.PutUint32(b[8:12], uint32(level))
	binary.NativeEndian.PutUint32(b[12:16], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestKernelStamp(t *testing.T) {
	if unix.SizeofCmsghdr != 16 {
		t.Skip("control message layout of a 64-bit kernel only")
	}
	want := time.Unix(1700000000, 123456789)
	ts := make([]byte, 16)
	binary.NativeEndian.PutUint64(ts[0:8], uint64(want.Unix()))
	binary.NativeEndian.PutUint64(ts[8:16], uint64(want.Nanosecond()))
	got, ok := kernelStamp(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, ts))
	if !ok || !got.Equal(want) {
		t.Fatalf("kernelStamp = %v %v, want %v", got, ok, want)
	}
	if _, ok := kernelStamp(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, ts[:8])); ok {
		t.Error("short timestamp accepted")
	}
	if _, ok := kernelStamp(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, ts)); ok {
		t.Error("SO_TIMESTAMP taken for SO_TIMESTAMPNS")
	}
	// Another message first, then the stamp.
	both := append(cmsg(unix.SOL_IP, unix.IP_TTL, []byte{255, 0, 0, 0}), cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, ts)...)
	if got, ok := kernelStamp(both); !ok || !got.Equal(want) {
		t.Errorf("stamp after another message: %v %v", got, ok)
	}
}

func TestParseHistogram(t *testing.T) {
	out := "# /dev/cpu_dma_latency set to 0us\n000000 000000\n000012 000900\n006000 000002\n025000 000001\n# Total: 000000903\n# Min Latencies: 00012\n# Max Latencies: 25000\n# Histogram Overflows: 00001\n"
	h, over, err := parseHistogram(out)
	if err != nil || over != 1 || h[12] != 900 || h[6000] != 2 || h[25000] != 1 || len(h) != 3 {
		t.Fatalf("parseHistogram = %v %d %v", h, over, err)
	}
	want := "wake-ups 904, late >5ms 4, >10ms 2, >20ms 2, >30ms 1, max > 200ms"
	if got := h.summary(over); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	if _, _, err := parseHistogram("T: 0 ( 1) P: 1\n"); err == nil {
		t.Error("output without a histogram accepted")
	}
}

func TestDelivery(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	sent := []time.Time{at(0), at(10), at(20), at(30)}
	got := []time.Time{at(-1), at(0.05), at(10.1), at(20), at(33)}
	d := delivery(sent, got)
	want := []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 0, 3 * time.Millisecond}
	if len(d) != len(want) {
		t.Fatalf("delivery = %v, want %v", d, want)
	}
	for i := range want {
		if (d[i] - want[i]).Abs() > time.Microsecond {
			t.Errorf("delivery[%d] = %v, want %v", i, d[i], want[i])
		}
	}
}
