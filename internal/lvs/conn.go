package lvs

import (
	"fmt"
	"time"
)

// ConnState is the state of a connection entry, named as IPVS names it in
// `ipvsadm -L -n -c`. TCP entries move between the TCP states; UDP entries
// have the single state StateUDP; persistence templates stay StateNone.
type ConnState uint8

// Connection entry states.
const (
	StateNone ConnState = iota
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynAck
	StateUDP
)

var stateNames = [...]string{
	StateNone:        "NONE",
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN_SENT",
	StateSynRecv:     "SYN_RECV",
	StateFinWait:     "FIN_WAIT",
	StateTimeWait:    "TIME_WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE_WAIT",
	StateLastAck:     "LAST_ACK",
	StateListen:      "LISTEN",
	StateSynAck:      "SYNACK",
	StateUDP:         "UDP",
}

// String returns the name ipvsadm prints in its state column.
func (s ConnState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state%d", uint8(s))
}

// Active reports whether an entry in this state counts in its destination's
// ActiveConns. IPVS counts a TCP entry as active only while ESTABLISHED;
// every other state, and every UDP entry, is inactive.
func (s ConnState) Active() bool { return s == StateEstablished }

// ConnEvent is what a data plane observes on a proxied TCP connection. A
// proxy does not see individual segments, so it reports the moments that
// drive IPVS's state machine: the client's connection attempt, both legs
// being up, a FIN from either side and a reset.
type ConnEvent uint8

// Events on a proxied TCP connection.
const (
	EvClientSyn   ConnEvent = iota // the client connected to the VIP
	EvEstablished                  // the destination accepted too: data flows
	EvClientFin                    // the client closed its sending side
	EvServerFin                    // the destination closed its sending side
	EvReset                        // either side reset the connection
)

// Next returns the state after ev, following the transitions IPVS makes for
// the same packets: a FIN from the client on an established connection
// leads to CLOSE_WAIT, one from the server to FIN_WAIT, and the second FIN
// to TIME_WAIT; a reset leads to CLOSE.
func (s ConnState) Next(ev ConnEvent) ConnState {
	switch ev {
	case EvClientSyn:
		return StateSynRecv
	case EvEstablished:
		if s == StateSynRecv || s == StateNone {
			return StateEstablished
		}
	case EvClientFin:
		switch s {
		case StateEstablished:
			return StateCloseWait
		case StateFinWait, StateSynRecv:
			return StateTimeWait
		case StateNone:
			return StateClose
		}
	case EvServerFin:
		switch s {
		case StateEstablished:
			return StateFinWait
		case StateCloseWait, StateSynRecv, StateNone:
			return StateTimeWait
		}
	case EvReset:
		return StateClose
	}
	return s
}

// Kernel default idle timeouts of TCP states that ipvsadm --set cannot
// change (ip_vs_proto_tcp.c).
var tcpStateTimeouts = [...]time.Duration{
	StateNone:        2 * time.Second,
	StateEstablished: 15 * time.Minute,
	StateSynSent:     2 * time.Minute,
	StateSynRecv:     time.Minute,
	StateFinWait:     2 * time.Minute,
	StateTimeWait:    2 * time.Minute,
	StateClose:       10 * time.Second,
	StateCloseWait:   time.Minute,
	StateLastAck:     30 * time.Second,
	StateListen:      2 * time.Minute,
	StateSynAck:      2 * time.Minute,
}

// Timeout returns the idle timeout of an entry in state s of protocol p:
// the entry expires when no packet refreshed it for this long. ESTABLISHED,
// FIN_WAIT and UDP take t's values (ipvsadm --set tcp tcpfin udp, zero
// meaning the kernel default); the other states have the kernel's fixed
// timeouts.
func (t Timeouts) Timeout(p Protocol, s ConnState) time.Duration {
	t = t.WithDefaults()
	if p == UDP {
		return t.UDP
	}
	switch s {
	case StateEstablished:
		return t.TCP
	case StateFinWait:
		return t.TCPFin
	}
	if int(s) < len(tcpStateTimeouts) {
		return tcpStateTimeouts[s]
	}
	return tcpStateTimeouts[StateNone]
}

// TotalConns is what thresholds compare against: active plus inactive
// entries (templates excluded).
func (d *Dest) TotalConns() int { return d.ActiveConns + d.InactiveConns }

// BindConn counts a new connection entry on d, as the kernel does when it
// binds an entry to a destination, and sets Overloaded when the upper
// threshold is reached.
func (d *Dest) BindConn(s ConnState) {
	if s.Active() {
		d.ActiveConns++
	} else {
		d.InactiveConns++
	}
	d.checkUpper()
}

// UnbindConn uncounts an entry that expired in state s and clears
// Overloaded by the kernel's rules: below the lower threshold when one is
// set, else below 3/4 of the upper threshold, else at once.
func (d *Dest) UnbindConn(s ConnState) {
	if s.Active() {
		d.ActiveConns--
	} else {
		d.InactiveConns--
	}
	d.checkLower()
}

// MoveConn accounts a state change of an entry bound to d: leaving or
// entering ESTABLISHED moves it between ActiveConns and InactiveConns.
// Thresholds are not re-evaluated (the kernel does that only on bind and
// unbind).
func (d *Dest) MoveConn(from, to ConnState) {
	switch {
	case from.Active() && !to.Active():
		d.ActiveConns--
		d.InactiveConns++
	case !from.Active() && to.Active():
		d.InactiveConns--
		d.ActiveConns++
	}
}

// BindTemplate counts a persistence template on d.
func (d *Dest) BindTemplate() {
	d.PersistConns++
	d.checkUpper()
}

// UnbindTemplate uncounts an expired persistence template.
func (d *Dest) UnbindTemplate() {
	d.PersistConns--
	d.checkLower()
}

// SetThresholds changes d's thresholds as an edit of the destination does
// in the kernel: raising the upper threshold, or removing it, clears the
// overload flag (the next bind sets it again if still over).
func (d *Dest) SetThresholds(upper, lower int) {
	if upper == 0 || upper > d.UThreshold {
		d.Overloaded = false
	}
	d.UThreshold, d.LThreshold = upper, lower
}

func (d *Dest) checkUpper() {
	if d.UThreshold != 0 && d.TotalConns() >= d.UThreshold {
		d.Overloaded = true
	}
}

func (d *Dest) checkLower() {
	switch {
	case d.LThreshold != 0:
		if d.TotalConns() < d.LThreshold {
			d.Overloaded = false
		}
	case d.UThreshold != 0:
		if d.TotalConns()*4 < d.UThreshold*3 {
			d.Overloaded = false
		}
	default:
		d.Overloaded = false
	}
}
