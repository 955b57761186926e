// Package handover is the wire format of `vipctl upgrade`: what the
// running vipd and the new one it started say to each other while the
// new process takes over the sockets, the VRRP states and the checkers'
// verdicts.
//
// The two processes talk over one unix stream socket (a socketpair the
// old process makes; the new one finds its end at fd 3, the listening
// sockets after it: os/exec ExtraFiles). The exchange is, in order:
//
//	old -> new  Hello  version, the listening sockets and their fd numbers
//	new -> old  Ready  the new process loaded the configuration and is
//	                   ready to take over (nothing is committed yet)
//	old -> new  State  the VRRP, checker and quorum states, taken when the
//	                   old process stopped accepting and detached VRRP
//	new -> old  Done   the new process runs: it serves, advertises, checks
//
// Either side may send Fail instead of its next message: the step and
// why. Until Done, the old process can take everything back.
//
// A frame is a 12-byte header and a JSON body:
//
//	offset size
//	0      4    magic "VPHO"
//	4      1    format version (Version = 1)
//	5      1    type (TypeHello ... TypeFail)
//	6      2    zero
//	8      4    body length, big endian, at most MaxBody
//	12     n    body: one JSON object, the message of the type
//
// A version change is a new Version; a decoder refuses a version it does
// not know with an error naming both, so an old vipd and a new one that
// cannot understand each other fail the upgrade before anything moves.
package handover

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Version is the format version this package speaks.
const Version = 1

// MaxBody bounds a frame's body (a State of 10,000 checkers is about
// 1 MB).
const MaxBody = 16 << 20

const (
	headerLen = 12
	magic     = "VPHO"
)

// Type is a frame's message type.
type Type uint8

// Message types.
const (
	TypeHello Type = iota + 1
	TypeReady
	TypeState
	TypeDone
	TypeFail
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeReady:
		return "ready"
	case TypeState:
		return "state"
	case TypeDone:
		return "done"
	case TypeFail:
		return "fail"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// FirstFD is the new process's fd of the handover socket; the
// listeners follow (ExtraFiles start at 3).
const FirstFD = 3

// Listener is one listening socket passed to the new process.
type Listener struct {
	// Name says what it is: "control", "metrics", or "proxy/tcp/ADDR:PORT"
	// and "proxy/udp/ADDR:PORT" (a service of the proxy data plane; a
	// service has one socket per event loop, so a name may come several
	// times).
	Name string `json:"name"`
	FD   int    `json:"fd"` // in the new process
}

// Hello is the old process's first message.
type Hello struct {
	PID       int        `json:"pid"`
	Version   string     `json:"version"` // vipd's version, for the log
	Listeners []Listener `json:"listeners"`
}

// Ready is the new process's answer once it loaded its configuration.
type Ready struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// Instance is one VRRP instance's carried state (vrrp.Resume).
type Instance struct {
	Name        string     `json:"name"`
	State       string     `json:"state"` // MASTER or BACKUP
	MasterAddr  netip.Addr `json:"master_addr,omitzero"`
	MasterPrio  int        `json:"master_prio,omitempty"`
	MasterAdver int64      `json:"master_adver_ns,omitempty"`
	NextAdvert  int64      `json:"next_advert_unix_ns,omitempty"`
	DownAt      int64      `json:"down_at_unix_ns,omitempty"`
}

// Checker is one checker's verdict.
type Checker struct {
	Server  string `json:"server"`
	Checker string `json:"checker"`
	Up      bool   `json:"up"`
}

// Server is one real server's aggregate health (up and effective weight).
type Server struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	Weight int64  `json:"weight"`
}

// Flag is a named boolean: a virtual server's quorum, a track_group.
type Flag struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// State is what the old process hands over once it stopped.
type State struct {
	VRRP        []Instance `json:"vrrp"`
	Checkers    []Checker  `json:"checkers"`
	Servers     []Server   `json:"servers"`
	Quorum      []Flag     `json:"quorum"`
	TrackGroups []Flag     `json:"track_groups"`
}

// Done is the new process's word that it runs.
type Done struct {
	PID int `json:"pid"`
}

// Fail says which step failed and why.
type Fail struct {
	Step  string `json:"step"`
	Error string `json:"error"`
}

func (f *Fail) String() string { return f.Step + ": " + f.Error }

// Frame is one decoded message: Msg is *Hello, *Ready, *State, *Done or
// *Fail as Type says.
type Frame struct {
	Type Type
	Msg  any
}

// Encode writes msg (one of the message types) as a frame.
func Encode(w io.Writer, msg any) error {
	var t Type
	switch msg.(type) {
	case *Hello:
		t = TypeHello
	case *Ready:
		t = TypeReady
	case *State:
		t = TypeState
	case *Done:
		t = TypeDone
	case *Fail:
		t = TypeFail
	default:
		return fmt.Errorf("handover: cannot encode %T", msg)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("handover: encoding %s: %w", t, err)
	}
	if len(body) > MaxBody {
		return fmt.Errorf("handover: %s is %d bytes, more than %d", t, len(body), MaxBody)
	}
	b := make([]byte, headerLen, headerLen+len(body))
	copy(b, magic)
	b[4] = Version
	b[5] = byte(t)
	binary.BigEndian.PutUint32(b[8:], uint32(len(body)))
	b = append(b, body...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("handover: sending %s: %w", t, err)
	}
	return nil
}

// Decode reads one frame. Bad input gives an error that names what is
// wrong (magic, version, type, length, the body's field); io.EOF means
// the peer closed before a frame began.
func Decode(r io.Reader) (Frame, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("handover: reading a frame header: %w", err)
	}
	if string(h[:4]) != magic {
		return Frame{}, fmt.Errorf("handover: bad magic %q (want %q): not a vipd handover", h[:4], magic)
	}
	if h[4] != Version {
		return Frame{}, fmt.Errorf("handover: format version %d, this vipd speaks %d", h[4], Version)
	}
	t := Type(h[5])
	if t < TypeHello || t > TypeFail {
		return Frame{}, fmt.Errorf("handover: unknown message type %d", h[5])
	}
	if h[6] != 0 || h[7] != 0 {
		return Frame{}, fmt.Errorf("handover: %s: reserved header bytes are %#x %#x, want 0", t, h[6], h[7])
	}
	n := binary.BigEndian.Uint32(h[8:])
	if n > MaxBody {
		return Frame{}, fmt.Errorf("handover: %s: body of %d bytes, more than %d", t, n, MaxBody)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Frame{}, fmt.Errorf("handover: %s: reading %d body bytes: %w", t, n, err)
	}
	return DecodeBody(t, body)
}

// DecodeBody decodes and validates the body of a frame of type t.
func DecodeBody(t Type, body []byte) (Frame, error) {
	var msg interface{ validate() error }
	switch t {
	case TypeHello:
		msg = &Hello{}
	case TypeReady:
		msg = &Ready{}
	case TypeState:
		msg = &State{}
	case TypeDone:
		msg = &Done{}
	case TypeFail:
		msg = &Fail{}
	default:
		return Frame{}, fmt.Errorf("handover: unknown message type %d", uint8(t))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(msg); err != nil {
		return Frame{}, fmt.Errorf("handover: %s: %w", t, err)
	}
	if dec.More() {
		return Frame{}, fmt.Errorf("handover: %s: data after the JSON object", t)
	}
	if err := msg.validate(); err != nil {
		return Frame{}, fmt.Errorf("handover: %s: %w", t, err)
	}
	return Frame{Type: t, Msg: msg}, nil
}

func (m *Hello) validate() error {
	if m.PID <= 0 {
		return fmt.Errorf("pid %d: must be positive", m.PID)
	}
	seen := map[int]bool{}
	for i, l := range m.Listeners {
		switch {
		case l.Name == "":
			return fmt.Errorf("listeners[%d].name: empty", i)
		case l.Name != "control" && l.Name != "metrics" && !strings.HasPrefix(l.Name, "proxy/tcp/") && !strings.HasPrefix(l.Name, "proxy/udp/"):
			return fmt.Errorf("listeners[%d].name %q: not control, metrics, proxy/tcp/ADDR:PORT or proxy/udp/ADDR:PORT", i, l.Name)
		case l.FD <= FirstFD || l.FD > FirstFD+65536:
			return fmt.Errorf("listeners[%d].fd %d: out of range (%d..%d)", i, l.FD, FirstFD+1, FirstFD+65536)
		case seen[l.FD]:
			return fmt.Errorf("listeners[%d].fd %d: given twice", i, l.FD)
		}
		seen[l.FD] = true
		if rest, ok := strings.CutPrefix(l.Name, "proxy/"); ok {
			if _, err := netip.ParseAddrPort(rest[len("tcp/"):]); err != nil {
				return fmt.Errorf("listeners[%d].name %q: %w", i, l.Name, err)
			}
		}
	}
	return nil
}

func (m *Ready) validate() error {
	if m.PID <= 0 {
		return fmt.Errorf("pid %d: must be positive", m.PID)
	}
	return nil
}

func (m *Done) validate() error {
	if m.PID <= 0 {
		return fmt.Errorf("pid %d: must be positive", m.PID)
	}
	return nil
}

func (m *Fail) validate() error {
	if m.Step == "" || m.Error == "" {
		return errors.New("step and error must both be given")
	}
	return nil
}

func (m *State) validate() error {
	names := map[string]bool{}
	for i, in := range m.VRRP {
		switch {
		case in.Name == "":
			return fmt.Errorf("vrrp[%d].name: empty", i)
		case names[in.Name]:
			return fmt.Errorf("vrrp[%d].name %q: given twice", i, in.Name)
		case in.State != "MASTER" && in.State != "BACKUP":
			return fmt.Errorf("vrrp[%d].state %q: want MASTER or BACKUP", i, in.State)
		case in.MasterPrio < 0 || in.MasterPrio > 255:
			return fmt.Errorf("vrrp[%d].master_prio %d: out of 0..255", i, in.MasterPrio)
		case in.MasterAdver < 0 || in.MasterAdver > int64(time.Hour):
			return fmt.Errorf("vrrp[%d].master_adver_ns %d: out of range", i, in.MasterAdver)
		case in.NextAdvert < 0 || in.DownAt < 0:
			return fmt.Errorf("vrrp[%d]: negative time", i)
		}
		names[in.Name] = true
	}
	for i, c := range m.Checkers {
		if c.Server == "" || c.Checker == "" {
			return fmt.Errorf("checkers[%d]: server and checker must both be given", i)
		}
	}
	for i, s := range m.Servers {
		if s.Name == "" {
			return fmt.Errorf("servers[%d].name: empty", i)
		}
	}
	for i, f := range append(append([]Flag(nil), m.Quorum...), m.TrackGroups...) {
		if f.Name == "" {
			return fmt.Errorf("flag %d: empty name", i)
		}
	}
	return nil
}
