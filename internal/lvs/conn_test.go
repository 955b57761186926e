package lvs

import (
	"testing"
	"time"
)

func TestConnStateNext(t *testing.T) {
	// Each row is a proxied connection's life as a sequence of events and
	// the states IPVS shows after each one for the same packets.
	tests := []struct {
		name   string
		events []ConnEvent
		want   []ConnState
	}{
		{"client closes first", []ConnEvent{EvClientSyn, EvEstablished, EvClientFin, EvServerFin},
			[]ConnState{StateSynRecv, StateEstablished, StateCloseWait, StateTimeWait}},
		{"server closes first", []ConnEvent{EvClientSyn, EvEstablished, EvServerFin, EvClientFin},
			[]ConnState{StateSynRecv, StateEstablished, StateFinWait, StateTimeWait}},
		{"reset while established", []ConnEvent{EvClientSyn, EvEstablished, EvReset},
			[]ConnState{StateSynRecv, StateEstablished, StateClose}},
		{"destination refuses", []ConnEvent{EvClientSyn, EvReset},
			[]ConnState{StateSynRecv, StateClose}},
		{"client gives up while connecting", []ConnEvent{EvClientSyn, EvClientFin},
			[]ConnState{StateSynRecv, StateTimeWait}},
		{"duplicate FINs change nothing", []ConnEvent{EvClientSyn, EvEstablished, EvClientFin, EvClientFin},
			[]ConnState{StateSynRecv, StateEstablished, StateCloseWait, StateCloseWait}},
		{"late established after FIN is ignored", []ConnEvent{EvClientSyn, EvEstablished, EvServerFin, EvEstablished},
			[]ConnState{StateSynRecv, StateEstablished, StateFinWait, StateFinWait}},
		{"reset after both FINs", []ConnEvent{EvClientSyn, EvEstablished, EvServerFin, EvClientFin, EvReset},
			[]ConnState{StateSynRecv, StateEstablished, StateFinWait, StateTimeWait, StateClose}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := StateNone
			for i, ev := range tt.events {
				s = s.Next(ev)
				if s != tt.want[i] {
					t.Fatalf("after event %d: state %v, want %v", i, s, tt.want[i])
				}
			}
		})
	}
}

func TestConnStateNames(t *testing.T) {
	tests := map[ConnState]string{
		StateNone: "NONE", StateEstablished: "ESTABLISHED", StateSynRecv: "SYN_RECV",
		StateFinWait: "FIN_WAIT", StateTimeWait: "TIME_WAIT", StateClose: "CLOSE",
		StateCloseWait: "CLOSE_WAIT", StateLastAck: "LAST_ACK", StateSynAck: "SYNACK",
		StateUDP: "UDP", ConnState(99): "state99",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

func TestTimeout(t *testing.T) {
	custom := Timeouts{TCP: 50 * time.Second, TCPFin: 30 * time.Second, UDP: 7 * time.Second}
	tests := []struct {
		t     Timeouts
		proto Protocol
		state ConnState
		want  time.Duration
	}{
		{Timeouts{}, TCP, StateEstablished, 900 * time.Second},
		{Timeouts{}, TCP, StateFinWait, 120 * time.Second},
		{Timeouts{}, UDP, StateUDP, 300 * time.Second},
		{Timeouts{}, TCP, StateSynRecv, 60 * time.Second},
		{Timeouts{}, TCP, StateTimeWait, 120 * time.Second},
		{Timeouts{}, TCP, StateCloseWait, 60 * time.Second},
		{Timeouts{}, TCP, StateClose, 10 * time.Second},
		{custom, TCP, StateEstablished, 50 * time.Second},
		{custom, TCP, StateFinWait, 30 * time.Second},
		{custom, TCP, StateTimeWait, 120 * time.Second}, // not settable
		{custom, UDP, StateUDP, 7 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.t.Timeout(tt.proto, tt.state); got != tt.want {
			t.Errorf("%v %v %v: %v, want %v", tt.t, tt.proto, tt.state, got, tt.want)
		}
	}
}

func TestThresholds(t *testing.T) {
	type step struct {
		op         string // bind, unbind, est (move SYN_RECV->ESTABLISHED), tmpl, untmpl
		overloaded bool
	}
	tests := []struct {
		name         string
		upper, lower int
		steps        []step
	}{
		{"no thresholds", 0, 0, []step{{"bind", false}, {"bind", false}, {"unbind", false}}},
		{"upper only clears below 3/4", 4, 0, []step{
			{"bind", false}, {"bind", false}, {"bind", false}, {"bind", true}, // 4 >= 4
			{"unbind", true},  // 3*4=12 < 12? no
			{"unbind", false}, // 2*4=8 < 12
		}},
		{"lower threshold", 3, 2, []step{
			{"bind", false}, {"bind", false}, {"bind", true},
			{"unbind", true},  // 2 < 2? no
			{"unbind", false}, // 1 < 2
		}},
		{"state moves do not re-evaluate", 2, 0, []step{
			{"bind", false}, {"est", false}, {"bind", true}, {"est", true},
		}},
		{"templates do not count but bind checks", 2, 0, []step{
			{"tmpl", false}, {"tmpl", false}, {"bind", false}, {"bind", true}, {"untmpl", true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dest{UThreshold: tt.upper, LThreshold: tt.lower}
			for i, s := range tt.steps {
				switch s.op {
				case "bind":
					d.BindConn(StateSynRecv)
				case "unbind":
					d.UnbindConn(StateSynRecv)
				case "est":
					d.MoveConn(StateSynRecv, StateEstablished)
				case "tmpl":
					d.BindTemplate()
				case "untmpl":
					d.UnbindTemplate()
				}
				if d.Overloaded != s.overloaded {
					t.Fatalf("step %d (%s): overloaded %v, want %v (active %d inactive %d)", i, s.op, d.Overloaded, s.overloaded, d.ActiveConns, d.InactiveConns)
				}
			}
		})
	}
}

func TestActiveInactiveAccounting(t *testing.T) {
	d := &Dest{}
	d.BindConn(StateSynRecv)
	d.BindConn(StateSynRecv)
	d.MoveConn(StateSynRecv, StateEstablished)
	if d.ActiveConns != 1 || d.InactiveConns != 1 {
		t.Fatalf("active %d inactive %d, want 1 1", d.ActiveConns, d.InactiveConns)
	}
	d.MoveConn(StateEstablished, StateCloseWait)
	d.MoveConn(StateCloseWait, StateTimeWait) // inactive to inactive
	if d.ActiveConns != 0 || d.InactiveConns != 2 {
		t.Fatalf("active %d inactive %d, want 0 2", d.ActiveConns, d.InactiveConns)
	}
	d.UnbindConn(StateTimeWait)
	d.UnbindConn(StateSynRecv)
	if d.TotalConns() != 0 {
		t.Fatalf("total %d, want 0", d.TotalConns())
	}
}

func TestSetThresholds(t *testing.T) {
	tests := []struct {
		oldUpper, newUpper int
		wasOver, want      bool
	}{
		{4, 0, true, false},
		{4, 8, true, false},
		{4, 4, true, true},
		{4, 2, true, true},
		{4, 2, false, false},
	}
	for _, tt := range tests {
		d := &Dest{UThreshold: tt.oldUpper, Overloaded: tt.wasOver}
		d.SetThresholds(tt.newUpper, 0)
		if d.Overloaded != tt.want {
			t.Errorf("%d -> %d (over %v): %v, want %v", tt.oldUpper, tt.newUpper, tt.wasOver, d.Overloaded, tt.want)
		}
	}
}
