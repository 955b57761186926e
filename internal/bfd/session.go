package bfd

import (
	"math/rand/v2"
	"time"
)

// Config is one session's parameters, as a bfd_instance gives them.
type Config struct {
	MinTx      time.Duration // desired min TX interval while Up (keepalived min_tx, default 10 ms)
	MinRx      time.Duration // required min RX interval (min_rx, default 10 ms)
	IdleTx     time.Duration // desired min TX interval while not Up (idle_tx, default 1 s)
	Multiplier uint8         // detect multiplier (multiplier, default 5)
	Passive    bool          // speak only once the peer has spoken
}

// Defaults are keepalived's bfd_instance defaults.
var Defaults = Config{MinTx: 10 * time.Millisecond, MinRx: 10 * time.Millisecond, IdleTx: time.Second, Multiplier: 5}

// Change is a session state change, with what the logs and the status
// need to explain it.
type Change struct {
	From, To   State
	Diag       Diag          // local diagnostic: why (DiagNone when rising)
	RemoteDiag Diag          // the peer's last diagnostic
	DeadTime   time.Duration // with DiagTimeExpired: time since the last packet
	Overdue    time.Duration // with DiagTimeExpired: how late detection fired
}

// Output is what a session asks of its driver after an event: packets to
// send now (in order) and at most one state change to report.
type Output struct {
	Send   []Packet
	Change *Change
}

// Session is one BFD session (RFC 5880 section 6.8) as a pure state
// machine: it owns no socket, goroutine or clock. The driver passes the
// current time to every call and sends what comes back; Deadline says
// when to call Tick next. A Session is not safe for concurrent use.
type Session struct {
	cfg Config
	rng *rand.Rand

	state, remoteState State
	localDiscr         uint32
	remoteDiscr        uint32
	localDiag          Diag
	remoteDiag         Diag
	remoteMinRx        time.Duration // bfd.RemoteMinRxInterval
	remoteMinTx        time.Duration
	remoteMult         uint8
	remoteDemand       bool
	poll               bool // a Poll Sequence is under way

	txInterval time.Duration // operative transmit interval
	detectTime time.Duration // operative detection time
	nextTx     time.Time     // zero: no periodic transmission scheduled
	detectAt   time.Time     // zero: detection timer not running
	lastRx     time.Time

	lastDown   Diag
	lastChange time.Time
}

// NewSession returns a session in state Down with local discriminator
// discr (non-zero, unique among the driver's sessions); seed feeds the
// transmit jitter so tests are deterministic.
func NewSession(cfg Config, discr uint32, seed uint64, now time.Time) *Session {
	if cfg.Multiplier == 0 {
		cfg.Multiplier = Defaults.Multiplier
	}
	if cfg.IdleTx < time.Second {
		// RFC 5880 6.8.3: at least one second while not Up.
		cfg.IdleTx = time.Second
	}
	s := &Session{
		cfg:         cfg,
		rng:         rand.New(rand.NewPCG(seed, uint64(discr))),
		state:       Down,
		remoteState: Down,
		localDiscr:  discr,
		remoteMinRx: time.Microsecond, // RFC 5880 6.8.1: initialized to 1
		lastChange:  now,
	}
	s.updateIntervals()
	if s.canSend() {
		s.nextTx = now
	}
	return s
}

// State is the session's local state.
func (s *Session) State() State { return s.state }

// LocalDiscr is the session's discriminator, the key the driver finds
// it by when a packet's Your Discriminator is set.
func (s *Session) LocalDiscr() uint32 { return s.localDiscr }

// advertisedTx is the Desired Min TX Interval this system sends: min_tx
// while Up, idle_tx otherwise (RFC 5880 6.8.3).
func (s *Session) advertisedTx() time.Duration {
	if s.state == Up {
		return s.cfg.MinTx
	}
	return s.cfg.IdleTx
}

// updateIntervals recomputes the operative transmit interval and
// detection time from the local and the last received parameters.
func (s *Session) updateIntervals() {
	s.txInterval = max(s.advertisedTx(), s.remoteMinRx)
	if s.remoteMult != 0 {
		// Asynchronous mode (6.8.4): the remote's multiplier times the
		// agreed remote transmit interval.
		s.detectTime = time.Duration(s.remoteMult) * max(s.cfg.MinRx, s.remoteMinTx)
	}
}

// canSend says whether periodic transmission is allowed (6.8.7).
func (s *Session) canSend() bool {
	switch {
	case s.state == AdminDown:
		return false
	case s.cfg.Passive && s.remoteDiscr == 0:
		return false
	case s.remoteMinRx == 0:
		return false
	case s.remoteDemand && s.state == Up && s.remoteState == Up:
		return false
	}
	return true
}

// jitter returns the next transmit gap: the interval reduced by 0-25%,
// by 10-25% with a multiplier of 1 (6.8.7).
func (s *Session) jitter() time.Duration {
	lo, span := 0.75, 0.25
	if s.cfg.Multiplier == 1 {
		span = 0.15
	}
	return time.Duration(float64(s.txInterval) * (lo + span*s.rng.Float64()))
}

func (s *Session) packet() Packet {
	return Packet{
		Diag:          s.localDiag,
		State:         s.state,
		Poll:          s.poll,
		DetectMult:    s.cfg.Multiplier,
		MyDiscr:       s.localDiscr,
		YourDiscr:     s.remoteDiscr,
		DesiredMinTx:  s.advertisedTx(),
		RequiredMinRx: s.cfg.MinRx,
	}
}

func (s *Session) setState(now time.Time, to State, diag Diag, out *Output) {
	from := s.state
	if from == to {
		return
	}
	s.state = to
	s.lastChange = now
	c := &Change{From: from, To: to, Diag: diag, RemoteDiag: s.remoteDiag}
	switch to {
	case Up, Init:
		s.localDiag = DiagNone
		c.Diag = DiagNone
		if to == Up {
			// Our advertised TX interval drops from idle_tx to min_tx:
			// a parameter change is announced by a Poll Sequence (6.8.3).
			s.poll = true
		}
	case Down, AdminDown:
		s.localDiag = diag
		s.lastDown = diag
		s.detectAt = time.Time{}
		s.poll = false
	}
	s.updateIntervals()
	out.Change = c
}

// Receive processes a decoded control packet addressed to this session
// (RFC 5880 6.8.6, after the checks Decode makes).
func (s *Session) Receive(now time.Time, p Packet) Output {
	var out Output
	if s.state == AdminDown {
		return out
	}
	oldTx := s.txInterval
	s.remoteDiscr = p.MyDiscr
	s.remoteState = p.State
	s.remoteDiag = p.Diag
	s.remoteDemand = p.Demand
	s.remoteMinRx = p.RequiredMinRx
	s.remoteMinTx = p.DesiredMinTx
	s.remoteMult = p.DetectMult
	if p.Final {
		s.poll = false
	}
	s.updateIntervals()

	if p.State == AdminDown {
		if s.state != Down {
			s.setState(now, Down, DiagNeighborDown, &out)
		}
	} else {
		switch s.state {
		case Down:
			switch p.State {
			case Down:
				s.setState(now, Init, DiagNone, &out)
			case Init:
				s.setState(now, Up, DiagNone, &out)
			}
		case Init:
			if p.State == Init || p.State == Up {
				s.setState(now, Up, DiagNone, &out)
			}
		case Up:
			if p.State == Down {
				s.setState(now, Down, DiagNeighborDown, &out)
			}
		}
	}

	s.lastRx = now
	if s.state == Init || s.state == Up {
		s.detectAt = now.Add(s.detectTime)
	}
	if p.Poll {
		// Answer a Poll at once with Final (6.8.7), outside the schedule.
		f := s.packet()
		f.Final = true
		f.Poll = false
		out.Send = append(out.Send, f)
	}
	switch {
	case !s.canSend():
		s.nextTx = time.Time{}
	case out.Change != nil:
		// Tell the peer of the new state now, not an interval later
		// (as BIRD and keepalived do): the peer's own change waits on it.
		s.nextTx = now
	case s.nextTx.IsZero():
		// Passive and first word from the peer, or sending resumed.
		s.nextTx = now
	case s.txInterval < oldTx && s.nextTx.After(now.Add(s.txInterval)):
		s.nextTx = now.Add(s.jitter())
	}
	return out
}

// Tick runs the timers that are due at now: detection expiry first,
// then periodic transmission.
func (s *Session) Tick(now time.Time) Output {
	var out Output
	if !s.detectAt.IsZero() && !now.Before(s.detectAt) && (s.state == Init || s.state == Up) {
		dead := now.Sub(s.lastRx)
		s.remoteDiscr = 0 // 6.8.1: zeroed when the detection time passes
		s.setState(now, Down, DiagTimeExpired, &out)
		out.Change.DeadTime = dead
		out.Change.Overdue = dead - s.detectTime
		s.nextTx = now
	}
	if !s.canSend() {
		s.nextTx = time.Time{}
		return out
	}
	if s.nextTx.IsZero() {
		s.nextTx = now
	}
	if !now.Before(s.nextTx) {
		out.Send = append(out.Send, s.packet())
		s.nextTx = now.Add(s.jitter())
	}
	return out
}

// Deadline is when Tick must next run; zero when no timer is set.
func (s *Session) Deadline() time.Time {
	d := s.nextTx
	if !s.detectAt.IsZero() && (d.IsZero() || s.detectAt.Before(d)) {
		d = s.detectAt
	}
	return d
}

// Shutdown moves the session to AdminDown (diagnostic 7) and returns the
// packet that tells the peer, so it goes Down without waiting for its
// detection time (6.8.16).
func (s *Session) Shutdown(now time.Time) Output {
	var out Output
	if s.state == AdminDown {
		return out
	}
	s.setState(now, AdminDown, DiagAdminDown, &out)
	s.nextTx = time.Time{}
	if s.remoteDiscr != 0 || !s.cfg.Passive {
		out.Send = append(out.Send, s.packet())
	}
	return out
}

// Status is a session's state for vipctl, the API and the metrics.
type Status struct {
	State, RemoteState       State
	LocalDiscr, RemoteDiscr  uint32
	TxInterval, DetectTime   time.Duration // operative, as negotiated
	RemoteMinRx, RemoteMinTx time.Duration // as the peer last sent them
	RemoteMult               uint8
	LocalDiag, LastDown      Diag // LastDown: the diagnostic of the last fall
	LastChange, LastReceived time.Time
	Poll                     bool // a Poll Sequence is under way
}

// Status returns a copy of the session's state.
func (s *Session) Status() Status {
	return Status{
		State: s.state, RemoteState: s.remoteState,
		LocalDiscr: s.localDiscr, RemoteDiscr: s.remoteDiscr,
		TxInterval: s.txInterval, DetectTime: s.detectTime,
		RemoteMinRx: s.remoteMinRx, RemoteMinTx: s.remoteMinTx, RemoteMult: s.remoteMult,
		LastDown: s.lastDown, LastChange: s.lastChange, LastReceived: s.lastRx,
		LocalDiag: s.localDiag, Poll: s.poll,
	}
}
