package handover

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	msgs := []any{
		&Hello{PID: 42, Version: "dev", Listeners: []Listener{{Name: "control", FD: 4}, {Name: "proxy/tcp/198.18.0.100:80", FD: 5}, {Name: "proxy/udp/198.18.0.100:53", FD: 6}}},
		&Ready{PID: 43, Version: "dev"},
		&State{
			VRRP:     []Instance{{Name: "VI_1", State: "MASTER", MasterAdver: 1e9, NextAdvert: 1700000000e9}, {Name: "VI_2", State: "BACKUP", MasterAddr: netip.MustParseAddr("198.18.0.2"), MasterPrio: 150, DownAt: 1700000003e9}},
			Checkers: []Checker{{Server: "198.18.1.1:80", Checker: "HTTP_GET", Up: false}},
			Servers:  []Server{{Name: "198.18.1.1:80", Up: false, Weight: 1}},
			Quorum:   []Flag{{Name: "198.18.0.100:80", Up: true}},
		},
		&Done{PID: 43},
		&Fail{Step: "load the configuration", Error: "keepalived.conf:3: unknown keyword"},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		f, err := Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.Msg, want) {
			t.Errorf("decoded %#v, want %#v", f.Msg, want)
		}
	}
	if _, err := Decode(&buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func frame(version, typ byte, body string) []byte {
	b := make([]byte, 12, 12+len(body))
	copy(b, "VPHO")
	b[4], b[5] = version, typ
	binary.BigEndian.PutUint32(b[8:], uint32(len(body)))
	return append(b, body...)
}

// TestBadInput: every kind of bad frame gives an error naming what is
// wrong.
func TestBadInput(t *testing.T) {
	big := frame(1, 1, "")
	binary.BigEndian.PutUint32(big[8:], MaxBody+1)
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte("GET / HTTP/1.1\r\n"), "bad magic"},
		{frame(2, 1, `{}`), "format version 2, this vipd speaks 1"},
		{frame(1, 9, `{}`), "unknown message type 9"},
		{big, "more than"},
		{frame(1, 1, `{"pid":1`), "hello: unexpected EOF"},
		{frame(1, 1, `{"pid":1,"color":"red"}`), `unknown field "color"`},
		{frame(1, 1, `{"pid":0}`), "pid 0"},
		{frame(1, 1, `{"pid":1,"listeners":[{"name":"control","fd":3}]}`), "listeners[0].fd 3"},
		{frame(1, 1, `{"pid":1,"listeners":[{"name":"ssh","fd":4}]}`), `listeners[0].name "ssh"`},
		{frame(1, 1, `{"pid":1,"listeners":[{"name":"proxy/tcp/nope","fd":4}]}`), `proxy/tcp/nope`},
		{frame(1, 1, `{"pid":1,"listeners":[{"name":"proxy/sctp/198.18.0.1:5","fd":4}]}`), `proxy/sctp`},
		{frame(1, 1, `{"pid":1,"listeners":[{"name":"control","fd":4},{"name":"metrics","fd":4}]}`), "given twice"},
		{frame(1, 3, `{"vrrp":[{"name":"VI_1","state":"FAULT"}]}`), `vrrp[0].state "FAULT"`},
		{frame(1, 3, `{"vrrp":[{"name":"VI_1","state":"MASTER","master_prio":300}]}`), `master_prio 300`},
		{frame(1, 3, `{"vrrp":[{"name":"VI_1","state":"MASTER","master_addr":"x"}]}`), `state`},
		{frame(1, 5, `{"step":"x"}`), "step and error"},
		{frame(1, 4, `{"pid":5} {}`), "data after"},
		{frame(1, 1, "")[:7], "reading a frame header"},
	} {
		_, err := Decode(bytes.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	_ = Encode(&buf, &Hello{PID: 1, Listeners: []Listener{{Name: "control", FD: 4}}})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = Encode(&buf, &State{VRRP: []Instance{{Name: "VI_1", State: "BACKUP", MasterPrio: 100}}})
	f.Add(buf.Bytes())
	f.Add(frame(1, 5, `{"step":"a","error":"b"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What decodes encodes, and decodes to the same message.
		var out bytes.Buffer
		if err := Encode(&out, fr.Msg); err != nil {
			t.Fatalf("re-encoding %#v: %v", fr.Msg, err)
		}
		fr2, err := Decode(&out)
		if err != nil {
			t.Fatalf("decoding the re-encoded %#v: %v", fr.Msg, err)
		}
		if !reflect.DeepEqual(fr.Msg, fr2.Msg) {
			t.Fatalf("round trip changed %#v to %#v", fr.Msg, fr2.Msg)
		}
	})
}
