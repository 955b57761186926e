package bfd

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// Golden vectors, written out by hand from the layout of RFC 5880
// section 4.1 (not produced by this encoder).
var golden = []struct {
	name string
	hex  string
	p    Packet
}{
	{"down, no discriminator yet", "2040051800000007 00000000 000f4240 00002710 00000000",
		Packet{State: Down, DetectMult: 5, MyDiscr: 7, DesiredMinTx: time.Second, RequiredMinRx: 10 * time.Millisecond}},
	{"up with poll", "20e00318deadbeef0000002a0000271000002710 00000000",
		Packet{State: Up, Poll: true, DetectMult: 3, MyDiscr: 0xdeadbeef, YourDiscr: 42, DesiredMinTx: 10 * time.Millisecond, RequiredMinRx: 10 * time.Millisecond}},
	{"down after expiry, final", "2150031800000001000000020000271000002710 00000000",
		Packet{Diag: DiagTimeExpired, State: Down, Final: true, DetectMult: 3, MyDiscr: 1, YourDiscr: 2, DesiredMinTx: 10 * time.Millisecond, RequiredMinRx: 10 * time.Millisecond}},
	{"admin down", "2700011800000009000000030000000000000000 00000000",
		Packet{Diag: DiagAdminDown, State: AdminDown, DetectMult: 1, MyDiscr: 9, YourDiscr: 3}},
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		want := unhex(t, g.hex)
		if got := g.p.Append(nil); string(got) != string(want) {
			t.Errorf("%s: encode\n got %x\nwant %x", g.name, got, want)
		}
		p, err := Decode(want)
		if err != nil {
			t.Errorf("%s: decode: %v", g.name, err)
		} else if p != g.p {
			t.Errorf("%s: decode\n got %+v\nwant %+v", g.name, p, g.p)
		}
	}
}

func TestDecodeBad(t *testing.T) {
	ok := unhex(t, golden[1].hex)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), ok...)) }
	for _, c := range []struct {
		name  string
		b     []byte
		field Field
	}{
		{"short", ok[:23], FieldLength},
		{"version 0", mod(func(b []byte) []byte { b[0] &= 0x1f; return b }), FieldVersion},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2<<5 | b[0]&0x1f; return b }), FieldVersion},
		{"length field too small", mod(func(b []byte) []byte { b[3] = 23; return b }), FieldLength},
		{"length field past the datagram", mod(func(b []byte) []byte { b[3] = 26; return b }), FieldLength},
		{"auth bit", mod(func(b []byte) []byte { b[1] |= 0x04; return append(b, 1, 2) }), FieldAuth},
		{"multipoint", mod(func(b []byte) []byte { b[1] |= 0x01; return b }), FieldMultipoint},
		{"detect mult 0", mod(func(b []byte) []byte { b[2] = 0; return b }), FieldDetectMult},
		{"my discriminator 0", mod(func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }), FieldMyDiscr},
		{"your discriminator 0 while up", mod(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }), FieldYourDiscr},
	} {
		_, err := Decode(c.b)
		var de *DecodeError
		if !errors.As(err, &de) || de.Field != c.field {
			t.Errorf("%s: got %v, want a %s error", c.name, err, c.field)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range golden {
		f.Add(unhex(f, g.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Decode(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		// What decodes re-encodes to the same first 24 bytes, but for
		// the length (always 24 out) and the bits vipd does not keep.
		out := p.Append(nil)
		in := append([]byte(nil), b[:Len]...)
		in[3] = Len
		if string(out) != string(in) {
			t.Fatalf("round trip\n in %x\nout %x", in, out)
		}
		if q, err := Decode(out); err != nil || q != p {
			t.Fatalf("re-decode: %v %+v", err, q)
		}
	})
}
