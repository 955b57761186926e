// Package bfd implements Bidirectional Forwarding Detection (RFC 5880)
// over UDP: single hop (RFC 5881) and multihop (RFC 5883).
//
// The package is split as the VRRP code is: packet.go is the wire format
// (no state), session.go is the protocol as a pure state machine (events
// and the current time in, packets and state changes out, no socket,
// goroutine or clock), and server.go is the thin driver that owns the
// sockets and the timers and feeds the sessions.
package bfd

import (
	"encoding/binary"
	"fmt"
	"time"
)

// State is a session state (RFC 5880 section 4.1, "Sta").
type State uint8

const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "AdminDown"
	case Down:
		return "Down"
	case Init:
		return "Init"
	case Up:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code: why the session last left Up (section 4.1).
type Diag uint8

const (
	DiagNone              Diag = 0
	DiagTimeExpired       Diag = 1 // control detection time expired
	DiagEchoFailed        Diag = 2
	DiagNeighborDown      Diag = 3 // neighbor signaled session down
	DiagForwardingReset   Diag = 4
	DiagPathDown          Diag = 5
	DiagConcatPathDown    Diag = 6
	DiagAdminDown         Diag = 7
	DiagRevConcatPathDown Diag = 8
)

var diagNames = [...]string{
	"No Diagnostic", "Control Detection Time Expired", "Echo Function Failed",
	"Neighbor Signaled Session Down", "Forwarding Plane Reset", "Path Down",
	"Concatenated Path Down", "Administratively Down", "Reverse Concatenated Path Down",
}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("Diag(%d)", uint8(d))
}

// Packet is a BFD Control packet without authentication (vipd neither
// sends nor accepts the authentication section; keepalived has none).
// Intervals are microseconds on the wire and time.Duration here.
type Packet struct {
	Diag           Diag
	State          State
	Poll           bool
	Final          bool
	CPI            bool // control plane independent
	Demand         bool
	DetectMult     uint8
	MyDiscr        uint32
	YourDiscr      uint32
	DesiredMinTx   time.Duration
	RequiredMinRx  time.Duration
	RequiredEchoRx time.Duration
}

// Len is the length of an encoded control packet without authentication.
const Len = 24

// Ports of RFC 5881 (single hop) and RFC 5883 (multihop).
const (
	PortSingleHop = 3784
	PortMultiHop  = 4784
	SrcPortMin    = 49152
	SrcPortMax    = 65535
)

// maxInterval is the largest interval the 32-bit microsecond fields hold.
const maxInterval = time.Duration(1<<32-1) * time.Microsecond

func us(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	if d > maxInterval {
		return 1<<32 - 1
	}
	return uint32(d / time.Microsecond)
}

// Append appends p's wire form to b.
func (p *Packet) Append(b []byte) []byte {
	flags := byte(p.State) << 6
	if p.Poll {
		flags |= 0x20
	}
	if p.Final {
		flags |= 0x10
	}
	if p.CPI {
		flags |= 0x08
	}
	if p.Demand {
		flags |= 0x02
	}
	b = append(b, 1<<5|byte(p.Diag)&0x1f, flags, p.DetectMult, Len)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscr)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscr)
	b = binary.BigEndian.AppendUint32(b, us(p.DesiredMinTx))
	b = binary.BigEndian.AppendUint32(b, us(p.RequiredMinRx))
	b = binary.BigEndian.AppendUint32(b, us(p.RequiredEchoRx))
	return b
}

// Field names a packet field a decode error is about; the driver counts
// dropped packets by it.
type Field string

const (
	FieldLength     Field = "length"
	FieldVersion    Field = "version"
	FieldDetectMult Field = "detect_mult"
	FieldMultipoint Field = "multipoint"
	FieldMyDiscr    Field = "my_discriminator"
	FieldYourDiscr  Field = "your_discriminator"
	FieldAuth       Field = "auth"
)

// Fields lists every Field, for counters that start at zero.
var Fields = []Field{FieldLength, FieldVersion, FieldDetectMult, FieldMultipoint, FieldMyDiscr, FieldYourDiscr, FieldAuth}

// DecodeError says which field made a packet invalid (RFC 5880 6.8.6).
type DecodeError struct {
	Field Field
	Msg   string
}

func (e *DecodeError) Error() string { return "bfd: " + string(e.Field) + ": " + e.Msg }

func bad(f Field, format string, a ...any) error {
	return &DecodeError{Field: f, Msg: fmt.Sprintf(format, a...)}
}

// Decode parses and checks a control packet as RFC 5880 section 6.8.6
// requires before any session is looked at. A packet with the
// authentication bit is refused: vipd has no authentication configured,
// and the RFC says to discard it then.
func Decode(b []byte) (Packet, error) {
	var p Packet
	if len(b) < Len {
		return p, bad(FieldLength, "%d bytes, want at least %d", len(b), Len)
	}
	if v := b[0] >> 5; v != 1 {
		return p, bad(FieldVersion, "version %d, want 1", v)
	}
	l := int(b[3])
	if l < Len {
		return p, bad(FieldLength, "length field %d, want at least %d", l, Len)
	}
	if l > len(b) {
		return p, bad(FieldLength, "length field %d but %d bytes received", l, len(b))
	}
	flags := b[1]
	if flags&0x04 != 0 {
		return p, bad(FieldAuth, "authentication present, none configured")
	}
	if flags&0x01 != 0 {
		return p, bad(FieldMultipoint, "multipoint bit set")
	}
	p = Packet{
		Diag:           Diag(b[0] & 0x1f),
		State:          State(flags >> 6),
		Poll:           flags&0x20 != 0,
		Final:          flags&0x10 != 0,
		CPI:            flags&0x08 != 0,
		Demand:         flags&0x02 != 0,
		DetectMult:     b[2],
		MyDiscr:        binary.BigEndian.Uint32(b[4:]),
		YourDiscr:      binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:   time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond,
		RequiredMinRx:  time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond,
		RequiredEchoRx: time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Microsecond,
	}
	if p.DetectMult == 0 {
		return p, bad(FieldDetectMult, "detect multiplier 0")
	}
	if p.MyDiscr == 0 {
		return p, bad(FieldMyDiscr, "my discriminator 0")
	}
	if p.YourDiscr == 0 && p.State != Down && p.State != AdminDown {
		return p, bad(FieldYourDiscr, "your discriminator 0 in state %s", p.State)
	}
	return p, nil
}
