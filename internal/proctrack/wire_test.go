package proctrack

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The golden messages are little-endian (x86-64, arm64), as the kernel
// writes them there: cn_msg (idx, val, seq, ack, len, flags), then
// proc_event (what, cpu, timestamp_ns, event data).
func golden(t *testing.T, s string) []byte {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden bytes are little-endian; this host is big-endian")
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want Event
	}{
		{"fork", `01000000 01000000 07000000 00000000 2800 0000
			01000000 01000000 8877665544332211
			e8030000 e8030000 e9030000 e9030000 0000000000000000 0000000000000000`,
			Event{What: EvFork, CPU: 1, Seq: 7, Timestamp: 0x1122334455667788, ParentPID: 1000, ParentTGID: 1000, ChildPID: 1001, ChildTGID: 1001}},
		{"exec", `01000000 01000000 08000000 00000000 2800 0000
			02000000 00000000 0100000000000000
			e9030000 e9030000 0000000000000000 0000000000000000 0000000000000000`,
			Event{What: EvExec, Seq: 8, Timestamp: 1, PID: 1001, TGID: 1001}},
		{"comm", `01000000 01000000 09000000 00000000 2800 0000
			00020000 03000000 0200000000000000
			e9030000 ea030000 736c656570000000 0000000000000000`,
			Event{What: EvComm, CPU: 3, Seq: 9, Timestamp: 2, PID: 1001, TGID: 1002, Comm: "sleep"}},
		{"exit", `01000000 01000000 0a000000 00000000 2800 0000
			00000080 00000000 0300000000000000
			e9030000 e9030000 09000000 11000000 e8030000 e8030000`,
			Event{What: EvExit, Seq: 10, Timestamp: 3, PID: 1001, TGID: 1001, ExitCode: 9, ExitSignal: 17, ParentPID: 1000, ParentTGID: 1000}},
		{"listen ack", `01000000 01000000 00000000 01000000 1400 0000
			00000000 00000000 0000000000000000 00000000`,
			Event{What: EvNone}},
		{"uid (header only)", `01000000 01000000 0b000000 00000000 1800 0000
			04000000 00000000 0000000000000000 e9030000 e9030000`,
			Event{What: EvUID, Seq: 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(golden(t, tc.hex))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"empty", ``, ErrShort},
		{"short cn_msg", `01000000 01000000`, ErrShort},
		{"other connector", `02000000 01000000 00000000 00000000 1000 0000 00000000000000000000000000000000`, ErrNotProc},
		{"length beyond data", `01000000 01000000 00000000 00000000 2800 0000 01000000 00000000`, ErrLength},
		{"no proc_event header", `01000000 01000000 00000000 00000000 0800 0000 0100000000000000`, ErrShort},
		{"fork cut short", `01000000 01000000 00000000 00000000 1800 0000
			01000000 00000000 0000000000000000 e8030000 e8030000`, ErrShort},
		{"comm without its name", `01000000 01000000 00000000 00000000 1800 0000
			00020000 00000000 0000000000000000 e8030000 e8030000`, ErrShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(golden(t, tc.hex)); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestListenRequestGolden(t *testing.T) {
	want := golden(t, `01000000 01000000 00000000 00000000 0400 0000 01000000`)
	if got := ListenRequest(true); string(got) != string(want) {
		t.Fatalf("listen: % x, want % x", got, want)
	}
	want[20] = 2
	if got := ListenRequest(false); string(got) != string(want) {
		t.Fatalf("ignore: % x, want % x", got, want)
	}
}

// FuzzDecode: no input makes Decode panic, and a message it accepts
// carries the proc connector's id and a length within the input.
func FuzzDecode(f *testing.F) {
	f.Add(ListenRequest(true))
	for _, s := range []string{
		"01000000010000000700000000000000280000000100000001000000887766554433221 1e8030000e8030000e9030000e90300000000000000000000000000000000000000",
		"0100000001000000090000000000000028000000000200000300000002000000000000 00e9030000ea030000736c6565700000000000000000000000",
	} {
		if b, err := hex.DecodeString(strings.ReplaceAll(s, " ", "")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			return
		}
		if len(b) < cnMsgLen+procHdrLen || binary.NativeEndian.Uint32(b) != CnIdxProc {
			t.Fatalf("accepted %x as %+v", b, ev)
		}
		if len(ev.Comm) > 16 {
			t.Fatalf("comm %q longer than the kernel's 16 bytes", ev.Comm)
		}
	})
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in    string
		comm  string
		state byte
		ok    bool
	}{
		{"1234 (sleep) S 1 1234 1234 0 -1", "sleep", 'S', true},
		{"1234 (a) b) c) Z 1 2", "a) b) c", 'Z', true},
		{"1234 (Web Content) R 1", "Web Content", 'R', true},
		{"1234 (sleep)", "", 0, false},
		{"1234 sleep S", "", 0, false},
		{"", "", 0, false},
	} {
		comm, state, ok := ParseStat([]byte(tc.in))
		if comm != tc.comm || state != tc.state || ok != tc.ok {
			t.Errorf("ParseStat(%q) = %q %q %v, want %q %q %v", tc.in, comm, state, ok, tc.comm, tc.state, tc.ok)
		}
	}
}
