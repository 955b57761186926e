package proxy

import (
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// IPVS keeps a connection's entry after the connection closed: TIME_WAIT
// for 2 minutes after a normal close, CLOSE for 10 s after a reset, and
// counts it in the destination's InactiveConns meanwhile (lc, wlc and
// friends see it). The proxy does the same with a compact record per
// closed connection, so listings and scheduling match the kernel's; the
// sockets themselves are gone.
//
// Both states have a fixed timeout, so records of one state expire in the
// order they were added: a FIFO per state suffices.

const (
	lingerTimeWait = 0
	lingerClose    = 1

	// maxLinger bounds a queue (48 bytes a record): past it the oldest
	// records expire early. At 8,700 closes/s for 2 minutes the kernel
	// would hold about that many TIME_WAIT entries.
	maxLinger = 1 << 20
)

var epoch = time.Now()

// mono is t as monotonic nanoseconds since the package was loaded.
func mono(t time.Time) int64 { return int64(t.Sub(epoch)) }

type lingerRec struct {
	addr   [16]byte
	port   uint16
	v4     bool
	state  lvs.ConnState
	expire int64 // mono
	dest   *destination
	tmpl   *lvs.Template
}

func (r *lingerRec) client() netip.AddrPort {
	a := netip.AddrFrom16(r.addr)
	if r.v4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, r.port)
}

type lingerQueue struct {
	buf  []lingerRec
	head int
	n    int
}

func (q *lingerQueue) len() int { return q.n }

func (q *lingerQueue) push(r lingerRec, s *service) {
	if q.n == maxLinger {
		q.pop(s)
	}
	if q.n == len(q.buf) {
		nb := make([]lingerRec, max(64, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = r
	q.n++
}

// pop expires the oldest record: its destination and template stop
// counting it.
func (q *lingerQueue) pop(s *service) {
	r := &q.buf[q.head]
	s.unbind(r.dest, r.tmpl, r.state)
	*r = lingerRec{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

func (q *lingerQueue) expire(now time.Time, s *service) {
	m := mono(now)
	for q.n > 0 && q.buf[q.head].expire <= m {
		q.pop(s)
	}
	// Give memory back after a burst.
	if len(q.buf) > 1024 && q.n < len(q.buf)/4 {
		nb := make([]lingerRec, len(q.buf)/2)
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
}

func (q *lingerQueue) entries(now time.Time, key lvs.ServiceKey, out []lvs.ConnEntry) []lvs.ConnEntry {
	m := mono(now)
	for i := 0; i < q.n; i++ {
		r := &q.buf[(q.head+i)%len(q.buf)]
		left := time.Duration(r.expire - m)
		if left < 0 {
			left = 0
		}
		out = append(out, lvs.ConnEntry{
			Proto: key.Proto, Expire: left, State: r.state.String(),
			Client: r.client(), Virtual: key.Addr, Dest: r.dest.Addr, FWMark: key.FWMark,
		})
	}
	return out
}

func newLingerRec(client netip.AddrPort, st lvs.ConnState, expire time.Time, d *destination, t *lvs.Template) lingerRec {
	a := client.Addr()
	return lingerRec{addr: a.As16(), port: client.Port(), v4: a.Is4(), state: st, expire: mono(expire), dest: d, tmpl: t}
}
