// Package proctrack follows processes by name for keepalived's
// vrrp_track_process: an initial scan of /proc, then the kernel's process
// events connector (NETLINK_CONNECTOR, CN_IDX_PROC) for fork, exec, comm
// change and exit, counted against a quorum with keepalived's fork and
// terminate delays.
//
// The package has three layers: the wire format of the connector
// (wire.go), the matcher and the counting state machine (match.go,
// tracker.go: pure, time passed in) and the driver that owns the socket
// and reads /proc (monitor_linux.go).
package proctrack

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The connector's identifiers for process events (linux/connector.h) and
// the multicast control operations (linux/cn_proc.h).
const (
	CnIdxProc = 1
	CnValProc = 1

	opMcastListen = 1
	opMcastIgnore = 2
)

// What is a proc_event's kind (enum what in linux/cn_proc.h).
type What uint32

// Kinds of process events. vipd acts on Fork, Exec, Comm and Exit; None
// is the kernel's answer to the listen request.
const (
	EvNone     What = 0x00000000
	EvFork     What = 0x00000001
	EvExec     What = 0x00000002
	EvUID      What = 0x00000004
	EvGID      What = 0x00000040
	EvSID      What = 0x00000080
	EvPtrace   What = 0x00000100
	EvComm     What = 0x00000200
	EvNonzero  What = 0x20000000
	EvCoredump What = 0x40000000
	EvExit     What = 0x80000000
)

func (w What) String() string {
	switch w {
	case EvNone:
		return "none"
	case EvFork:
		return "fork"
	case EvExec:
		return "exec"
	case EvUID:
		return "uid"
	case EvGID:
		return "gid"
	case EvSID:
		return "sid"
	case EvPtrace:
		return "ptrace"
	case EvComm:
		return "comm"
	case EvNonzero:
		return "nonzero_exit"
	case EvCoredump:
		return "coredump"
	case EvExit:
		return "exit"
	}
	return fmt.Sprintf("what(%#x)", uint32(w))
}

// Sizes of the wire structures: struct cn_msg (without its data), the
// proc_event header (what, cpu, timestamp_ns) and the largest event
// payload the decoder reads (exit: six u32).
const (
	cnMsgLen     = 20
	procHdrLen   = 16
	forkLen      = 16
	execLen      = 8
	commLen      = 8 + 16
	exitLen      = 16 // parent_pid and parent_tgid follow since Linux 4.18
	listenOpSize = 4
)

// Event is one decoded process event. Only the fields of its kind are
// set: PID and TGID for exec, comm and exit (of the task); Parent and
// Child for fork.
type Event struct {
	What      What
	CPU       uint32
	Timestamp uint64 // ns since boot
	Seq       uint32 // the connector's sequence number (per CPU)

	PID, TGID             int32
	ParentPID, ParentTGID int32
	ChildPID, ChildTGID   int32
	Comm                  string
	ExitCode, ExitSignal  uint32
	// Err is the kernel's answer to a listen request (EvNone).
	Err uint32
}

// Errors of Decode; each is counted by the driver, which drops the
// message and keeps going.
var (
	ErrShort   = errors.New("proc connector: message too short")
	ErrNotProc = errors.New("proc connector: not a process event (cn_msg id)")
	ErrLength  = errors.New("proc connector: cn_msg length disagrees with the payload")
)

var ne = binary.NativeEndian

// Decode reads one connector message: the payload of a netlink message
// (struct cn_msg, then struct proc_event). Fields are in the host's byte
// order, as the kernel writes them. Events of kinds vipd does not use
// are returned with their header only.
func Decode(b []byte) (Event, error) {
	var ev Event
	if len(b) < cnMsgLen {
		return ev, fmt.Errorf("%w: %d bytes, want a %d-byte cn_msg", ErrShort, len(b), cnMsgLen)
	}
	idx, val := ne.Uint32(b[0:]), ne.Uint32(b[4:])
	if idx != CnIdxProc || val != CnValProc {
		return ev, fmt.Errorf("%w: idx %d val %d", ErrNotProc, idx, val)
	}
	ev.Seq = ne.Uint32(b[8:])
	n := int(ne.Uint16(b[16:]))
	data := b[cnMsgLen:]
	if n > len(data) {
		return ev, fmt.Errorf("%w: cn_msg says %d bytes, %d follow", ErrLength, n, len(data))
	}
	data = data[:n]
	if len(data) < procHdrLen {
		return ev, fmt.Errorf("%w: %d bytes of proc_event, want at least %d", ErrShort, len(data), procHdrLen)
	}
	ev.What = What(ne.Uint32(data[0:]))
	ev.CPU = ne.Uint32(data[4:])
	ev.Timestamp = ne.Uint64(data[8:])
	p := data[procHdrLen:]
	need := map[What]int{EvNone: 4, EvFork: forkLen, EvExec: execLen, EvComm: commLen, EvExit: exitLen}[ev.What]
	if len(p) < need {
		return ev, fmt.Errorf("%w: %s event has %d bytes of data, want %d", ErrShort, ev.What, len(p), need)
	}
	i32 := func(off int) int32 { return int32(ne.Uint32(p[off:])) }
	switch ev.What {
	case EvNone:
		ev.Err = ne.Uint32(p)
	case EvFork:
		ev.ParentPID, ev.ParentTGID, ev.ChildPID, ev.ChildTGID = i32(0), i32(4), i32(8), i32(12)
	case EvExec:
		ev.PID, ev.TGID = i32(0), i32(4)
	case EvComm:
		ev.PID, ev.TGID = i32(0), i32(4)
		c := p[8:24]
		for i, ch := range c {
			if ch == 0 {
				c = c[:i]
				break
			}
		}
		ev.Comm = string(c)
	case EvExit:
		ev.PID, ev.TGID = i32(0), i32(4)
		ev.ExitCode, ev.ExitSignal = ne.Uint32(p[8:]), ne.Uint32(p[12:])
		if len(p) >= 24 {
			ev.ParentPID, ev.ParentTGID = i32(16), i32(20)
		}
	}
	return ev, nil
}

// ListenRequest is the payload of the netlink message (type NLMSG_DONE)
// that starts (listen) or stops the kernel's process events for the
// socket: a cn_msg for the proc connector carrying the multicast op.
func ListenRequest(listen bool) []byte {
	b := make([]byte, cnMsgLen+listenOpSize)
	ne.PutUint32(b[0:], CnIdxProc)
	ne.PutUint32(b[4:], CnValProc)
	ne.PutUint16(b[16:], listenOpSize)
	op := uint32(opMcastListen)
	if !listen {
		op = opMcastIgnore
	}
	ne.PutUint32(b[cnMsgLen:], op)
	return b
}
