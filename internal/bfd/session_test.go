package bfd

import (
	"testing"
	"time"
)

// pair is two sessions joined by a simulated link with a fixed delay and
// a virtual clock: the simulated network of the VRRP core's tests.
type pair struct {
	t       *testing.T
	now     time.Time
	s       [2]*Session
	cut     bool // link down: packets are lost
	delay   time.Duration
	queue   []inflight
	changes [2][]Change
	sent    [2]int
}

type inflight struct {
	at time.Time
	to int
	p  Packet
}

func newPair(t *testing.T, a, b Config) *pair {
	now := time.Unix(1_000_000, 0)
	return &pair{t: t, now: now, delay: 100 * time.Microsecond,
		s: [2]*Session{NewSession(a, 1, 1, now), NewSession(b, 2, 2, now)}}
}

func (n *pair) apply(i int, out Output) {
	if out.Change != nil {
		n.changes[i] = append(n.changes[i], *out.Change)
	}
	for _, p := range out.Send {
		n.sent[i]++
		if n.cut {
			continue
		}
		// Through the wire format, as the driver does.
		q, err := Decode(p.Append(nil))
		if err != nil {
			n.t.Fatalf("session %d sent an undecodable packet %+v: %v", i, p, err)
		}
		n.queue = append(n.queue, inflight{n.now.Add(n.delay), 1 - i, q})
	}
}

// run advances the clock by d, one event at a time.
func (n *pair) run(d time.Duration) {
	end := n.now.Add(d)
	for steps := 0; steps < 1_000_000; steps++ {
		next := end
		for _, s := range n.s {
			if dl := s.Deadline(); !dl.IsZero() && dl.Before(next) {
				next = dl
			}
		}
		for _, f := range n.queue {
			if f.at.Before(next) {
				next = f.at
			}
		}
		if next.After(end) {
			next = end
		}
		n.now = next
		var due []inflight
		q := n.queue[:0:0]
		for _, f := range n.queue {
			if !f.at.After(n.now) {
				due = append(due, f)
			} else {
				q = append(q, f)
			}
		}
		n.queue = q
		for _, f := range due {
			n.apply(f.to, n.s[f.to].Receive(n.now, f.p))
		}
		for i, s := range n.s {
			if dl := s.Deadline(); !dl.IsZero() && !dl.After(n.now) {
				n.apply(i, s.Tick(n.now))
			}
		}
		if !n.now.Before(end) {
			return
		}
	}
	n.t.Fatal("simulation did not end")
}

func (n *pair) untilState(i int, st State, limit time.Duration) time.Duration {
	start := n.now
	for n.now.Sub(start) < limit {
		if n.s[i].State() == st {
			return n.now.Sub(start)
		}
		n.run(100 * time.Microsecond)
	}
	n.t.Fatalf("session %d not %s after %v (is %s)", i, st, limit, n.s[i].State())
	return 0
}

var fast = Config{MinTx: 10 * time.Millisecond, MinRx: 10 * time.Millisecond, IdleTx: time.Second, Multiplier: 3}

func TestSessionComesUpAndNegotiates(t *testing.T) {
	n := newPair(t, fast, fast)
	n.untilState(0, Up, 3*time.Second)
	n.untilState(1, Up, 10*time.Millisecond)
	n.run(100 * time.Millisecond) // poll sequences finish
	for i, s := range n.s {
		st := s.Status()
		if st.TxInterval != 10*time.Millisecond || st.DetectTime != 30*time.Millisecond || st.Poll {
			t.Errorf("session %d: tx %v detect %v poll %v, want 10ms 30ms false", i, st.TxInterval, st.DetectTime, st.Poll)
		}
		if st.RemoteDiscr != uint32(2-i) {
			t.Errorf("session %d: remote discriminator %d", i, st.RemoteDiscr)
		}
		// Down -> Init -> Up or Down -> Up, never anything else.
		for _, c := range n.changes[i] {
			if c.To != Init && c.To != Up {
				t.Errorf("session %d: unexpected change %+v", i, c)
			}
		}
	}
	// ~10 packets in 100 ms each once Up (jitter 0-25% faster).
	before := n.sent
	n.run(time.Second)
	for i := range n.sent {
		if d := n.sent[i] - before[i]; d < 95 || d > 140 {
			t.Errorf("session %d sent %d packets in 1 s at 10 ms", i, d)
		}
	}
}

func TestSessionDetectsDeadPeer(t *testing.T) {
	n := newPair(t, fast, fast)
	n.untilState(0, Up, 3*time.Second)
	n.run(100 * time.Millisecond)
	n.cut = true
	took := n.untilState(0, Down, time.Second)
	if took > 31*time.Millisecond || took < 20*time.Millisecond {
		t.Errorf("detected after %v, want within 10 ms x 3", took)
	}
	c := n.changes[0][len(n.changes[0])-1]
	if c.Diag != DiagTimeExpired || c.From != Up || c.DeadTime < 30*time.Millisecond {
		t.Errorf("change %+v, want Up->Down, expired, dead >= 30ms", c)
	}
	if st := n.s[0].Status(); st.RemoteDiscr != 0 || st.LastDown != DiagTimeExpired || st.TxInterval != time.Second {
		t.Errorf("after expiry: %+v", st)
	}
	// The link comes back: both sessions meet again.
	n.cut = false
	n.untilState(0, Up, 5*time.Second)
	n.untilState(1, Up, 100*time.Millisecond)
}

func TestSessionAdminDownTellsPeer(t *testing.T) {
	n := newPair(t, fast, fast)
	n.untilState(1, Up, 3*time.Second)
	n.run(50 * time.Millisecond)
	n.apply(0, n.s[0].Shutdown(n.now))
	n.untilState(1, Down, 5*time.Millisecond) // well before its 30 ms detection time
	c := n.changes[1][len(n.changes[1])-1]
	if c.Diag != DiagNeighborDown || c.RemoteDiag != DiagAdminDown {
		t.Errorf("peer's change %+v, want neighbor signaled down, remote admin down", c)
	}
	// An AdminDown session neither sends nor answers.
	sent := n.sent[0]
	n.run(3 * time.Second)
	if n.sent[0] != sent || n.s[0].State() != AdminDown {
		t.Errorf("admin down session sent %d packets, state %s", n.sent[0]-sent, n.s[0].State())
	}
}

func TestSessionPassiveWaits(t *testing.T) {
	p := fast
	p.Passive = true
	n := newPair(t, p, p)
	n.run(5 * time.Second)
	if n.sent[0]+n.sent[1] != 0 {
		t.Fatalf("two passive sessions sent %v packets", n.sent)
	}
	n2 := newPair(t, p, fast)
	n2.untilState(0, Up, 3*time.Second)
	n2.untilState(1, Up, 100*time.Millisecond)
}

func TestSessionSlowPeerSetsPace(t *testing.T) {
	slow := Config{MinTx: 300 * time.Millisecond, MinRx: 200 * time.Millisecond, IdleTx: time.Second, Multiplier: 4}
	n := newPair(t, fast, slow)
	n.untilState(0, Up, 3*time.Second)
	n.run(2 * time.Second)
	a, b := n.s[0].Status(), n.s[1].Status()
	// a sends no faster than b accepts (200 ms); a detects in 4 x 300 ms,
	// b in 3 x max(200 ms, 10 ms).
	if a.TxInterval != 200*time.Millisecond || a.DetectTime != 1200*time.Millisecond {
		t.Errorf("fast side: tx %v detect %v", a.TxInterval, a.DetectTime)
	}
	if b.TxInterval != 300*time.Millisecond || b.DetectTime != 600*time.Millisecond {
		t.Errorf("slow side: tx %v detect %v", b.TxInterval, b.DetectTime)
	}
}

func TestSessionIgnoresWhileAdminDownAndTable(t *testing.T) {
	now := time.Unix(0, 0)
	for _, c := range []struct {
		from   State
		remote State
		want   State
		diag   Diag
	}{
		{Down, Down, Init, DiagNone},
		{Down, Init, Up, DiagNone},
		{Down, Up, Down, DiagNone},
		{Init, Init, Up, DiagNone},
		{Init, Up, Up, DiagNone},
		{Init, Down, Init, DiagNone},
		{Up, Down, Down, DiagNeighborDown},
		{Up, AdminDown, Down, DiagNeighborDown},
		{Init, AdminDown, Down, DiagNeighborDown},
		{Up, Init, Up, DiagNone},
	} {
		s := NewSession(fast, 5, 1, now)
		s.state = c.from
		your := uint32(5)
		out := s.Receive(now, Packet{State: c.remote, DetectMult: 3, MyDiscr: 9, YourDiscr: your, DesiredMinTx: time.Second, RequiredMinRx: time.Second})
		if s.State() != c.want {
			t.Errorf("%s + remote %s: %s, want %s", c.from, c.remote, s.State(), c.want)
		}
		if c.want != c.from && (out.Change == nil || out.Change.Diag != c.diag) {
			t.Errorf("%s + remote %s: change %+v, want diag %s", c.from, c.remote, out.Change, c.diag)
		}
	}
	s := NewSession(fast, 5, 1, now)
	s.Shutdown(now)
	if out := s.Receive(now, Packet{State: Down, DetectMult: 3, MyDiscr: 9}); out.Change != nil || s.State() != AdminDown {
		t.Errorf("admin down session moved: %+v", out)
	}
}

func TestSessionAnswersPollWithFinal(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewSession(fast, 5, 1, now)
	out := s.Receive(now, Packet{State: Down, Poll: true, DetectMult: 3, MyDiscr: 9, DesiredMinTx: time.Second, RequiredMinRx: time.Second})
	if len(out.Send) != 1 || !out.Send[0].Final || out.Send[0].Poll || out.Send[0].YourDiscr != 9 || out.Send[0].State != Init {
		t.Errorf("answer to a poll: %+v", out.Send)
	}
}
