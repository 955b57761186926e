package vrrp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// frame reads the first captured Ethernet frame of a vector file (tcpdump
// -xx output: lines of "\t0x0000:  hhhh hhhh ...").
func frame(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	var hexs strings.Builder
	started := false
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.TrimSpace(line)
		if !strings.HasPrefix(l, "0x") {
			if started {
				break // first frame only
			}
			continue
		}
		started = true
		_, rest, _ := strings.Cut(l, ":")
		hexs.WriteString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
	}
	b, err := hex.DecodeString(hexs.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// splitFrame returns the IP source, destination and VRRP message of an
// Ethernet frame carrying IPv4 or IPv6.
func splitFrame(t *testing.T, f []byte) (src, dst netip.Addr, msg []byte) {
	t.Helper()
	switch et := uint16(f[12])<<8 | uint16(f[13]); et {
	case 0x0800:
		ip := f[14:]
		ihl := int(ip[0]&0x0f) * 4
		tot := int(ip[2])<<8 | int(ip[3])
		return netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])), ip[ihl:tot]
	case 0x86dd:
		ip := f[14:]
		plen := int(ip[4])<<8 | int(ip[5])
		return netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), ip[40 : 40+plen]
	default:
		t.Fatalf("ethertype %#x", et)
	}
	return
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// TestGoldenVectors decodes every advert keepalived 2.2.7 sent in the lab
// and encodes the decoded packet back to the identical bytes.
func TestGoldenVectors(t *testing.T) {
	pass := [8]byte{}
	copy(pass[:], "secret12")
	tests := []struct {
		file     string
		want     Packet
		interval time.Duration
		msgHex   string // from the vectors README, independently recomputed there
	}{
		{"vrrp_v2_adv.txt", Packet{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1, Addrs: addrs("198.18.0.100"), Checksum: 0xb453}, time.Second,
			"213364010001b453c61200640000000000000000"},
		{"vrrp_v2_auth_pass.txt", Packet{Version: 2, Type: 1, VRID: 51, Priority: 100, AdvertInt: 1, AuthType: AuthPass, AuthData: pass, Addrs: addrs("198.18.0.100"), Checksum: 0x45d5}, time.Second,
			"21336401010145d5c61200647365637265743132"},
		{"vrrp_v2_three_vips.txt", Packet{Version: 2, Type: 1, VRID: 52, Priority: 100, AdvertInt: 1, Addrs: addrs("198.18.0.100", "198.18.0.101", "198.18.0.102"), Checksum: 0x2760}, time.Second,
			"2134640300012760c6120064c6120065c61200660000000000000000"},
		{"vrrp_v2_prio0_sigterm.txt", Packet{Version: 2, Type: 1, VRID: 54, Priority: 0, AdvertInt: 1, Addrs: addrs("198.18.0.100"), Checksum: 0x1851}, time.Second,
			"2136000100011851c61200640000000000000000"},
		{"vrrp_v3_adv.txt", Packet{Version: 3, Type: 1, VRID: 51, Priority: 100, AdvertInt: 10, Addrs: addrs("198.18.0.100"), Checksum: 0xfd9d}, 100 * time.Millisecond,
			"31336401000afd9dc6120064"},
		{"vrrp_v3_two_vips_prio200.txt", Packet{Version: 3, Type: 1, VRID: 53, Priority: 200, AdvertInt: 100, Addrs: addrs("198.18.0.100", "198.18.0.101"), Checksum: 0xd2c4}, time.Second,
			"3135c8020064d2c4c6120064c6120065"},
		{"vrrp_v3_prio0_sigterm.txt", Packet{Version: 3, Type: 1, VRID: 55, Priority: 0, AdvertInt: 10, Addrs: addrs("198.18.0.100"), Checksum: 0x619a}, 100 * time.Millisecond,
			"31370001000a619ac6120064"},
		{"vrrp_v3_ipv6.txt", Packet{Version: 3, Type: 1, VRID: 56, Priority: 100, AdvertInt: 100, Addrs: addrs("fe80::100", "fd00::100"), Checksum: 0x6ef4}, time.Second,
			"3138640200646ef4fe800000000000000000000000000100fd000000000000000000000000000100"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, dst, msg := splitFrame(t, frame(t, tt.file))
			if got := hex.EncodeToString(msg); got != tt.msgHex {
				t.Fatalf("captured message %s, README says %s", got, tt.msgHex)
			}
			wantDst := MulticastGroup4
			if src.Is6() {
				wantDst = MulticastGroup6
			}
			if dst != wantDst {
				t.Errorf("destination %v, want %v", dst, wantDst)
			}
			p, err := Decode(msg, src, dst, DecodeOptions{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equalPacket(*p, tt.want) {
				t.Fatalf("Decode =\n %+v\nwant\n %+v", *p, tt.want)
			}
			if p.Interval() != tt.interval {
				t.Errorf("Interval() = %v, want %v", p.Interval(), tt.interval)
			}
			// Encode from scratch: a zero checksum in, the right one out.
			q := tt.want
			q.Checksum = 0
			b, err := q.Marshal(src, dst, EncodeOptions{})
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(b, msg) {
				t.Fatalf("Marshal =\n %x\nwant\n %x", b, msg)
			}
			if q.Checksum != tt.want.Checksum {
				t.Errorf("Marshal set checksum %#04x, want %#04x", q.Checksum, tt.want.Checksum)
			}
		})
	}
}

func equalPacket(a, b Packet) bool {
	if a.Version != b.Version || a.Type != b.Type || a.VRID != b.VRID || a.Priority != b.Priority ||
		a.AdvertInt != b.AdvertInt || a.AuthType != b.AuthType || a.AuthData != b.AuthData ||
		a.Checksum != b.Checksum || len(a.Addrs) != len(b.Addrs) {
		return false
	}
	for i := range a.Addrs {
		if a.Addrs[i] != b.Addrs[i] {
			return false
		}
	}
	return true
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.11"), MulticastGroup4
	good := func() []byte {
		b, _ := hex.DecodeString("213364010001b453c61200640000000000000000")
		return b
	}
	v3 := func() []byte {
		b, _ := hex.DecodeString("31336401000afd9dc6120064")
		return b
	}
	tests := []struct {
		name   string
		msg    []byte
		src    netip.Addr
		field  string
		reason string
	}{
		{"empty", nil, src, "header", DropLength},
		{"short header", good()[:7], src, "header", DropLength},
		{"version 4", func() []byte { b := good(); b[0] = 0x41; return b }(), src, "version", DropVersion},
		{"version 1", func() []byte { b := good(); b[0] = 0x11; return b }(), src, "version", DropVersion},
		{"type 2", func() []byte { b := good(); b[0] = 0x22; return b }(), src, "type", DropType},
		{"truncated addresses", good()[:14], src, "count_ip_addrs", DropLength},
		{"count too large", func() []byte { b := good(); b[3] = 9; return b }(), src, "count_ip_addrs", DropLength},
		{"trailing bytes", append(good(), 0, 0, 0, 0), src, "count_ip_addrs", DropLength},
		{"v2 checksum", func() []byte { b := good(); b[7] ^= 1; return b }(), src, "checksum", DropChecksum},
		{"v2 body changed", func() []byte { b := good(); b[2] = 101; return b }(), src, "checksum", DropChecksum},
		{"v3 checksum", func() []byte { b := v3(); b[6] ^= 0x80; return b }(), src, "checksum", DropChecksum},
		{"v3 wrong source in pseudo-header", v3(), netip.MustParseAddr("198.18.0.12"), "checksum", DropChecksum},
		{"v2 over IPv6", good(), netip.MustParseAddr("fe80::1"), "version", DropVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dst
			if tt.src.Is6() {
				d = MulticastGroup6
			}
			_, err := Decode(tt.msg, tt.src, d, DecodeOptions{})
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error = %v, want *DecodeError", err)
			}
			if de.Field != tt.field || de.Reason != tt.reason {
				t.Fatalf("field %q reason %q, want %q %q (%v)", de.Field, de.Reason, tt.field, tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field %q", err, tt.field)
			}
		})
	}
}

func TestV3ChecksumAsV2(t *testing.T) {
	src, dst := netip.MustParseAddr("198.18.0.11"), MulticastGroup4
	p := Packet{Version: 3, VRID: 9, Priority: 100, AdvertInt: 100, Addrs: addrs("198.18.0.100")}
	b, err := p.Marshal(src, dst, EncodeOptions{V3ChecksumAsV2: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b, src, dst, DecodeOptions{V3ChecksumAsV2: true}); err != nil {
		t.Fatalf("as-v2 checksum rejected with the option: %v", err)
	}
	if _, err := Decode(b, src, dst, DecodeOptions{}); err == nil {
		t.Fatal("as-v2 checksum accepted without the option")
	}
	if checksum(nil, b) != 0 {
		t.Fatal("as-v2 checksum is not the plain Internet checksum")
	}
}

func TestMarshalRejects(t *testing.T) {
	v4, v6 := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("fe80::1")
	tests := []struct {
		name string
		p    Packet
		src  netip.Addr
	}{
		{"version 4", Packet{Version: 4}, v4},
		{"v2 over IPv6", Packet{Version: 2, AdvertInt: 1}, v6},
		{"v2 interval 256", Packet{Version: 2, AdvertInt: 256}, v4},
		{"v3 interval 4096", Packet{Version: 3, AdvertInt: 4096}, v4},
		{"IPv6 address in IPv4 advert", Packet{Version: 3, AdvertInt: 1, Addrs: addrs("fd00::1")}, v4},
		{"IPv4 address in IPv6 advert", Packet{Version: 3, AdvertInt: 1, Addrs: addrs("198.18.0.1")}, v6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.p.Marshal(tt.src, MulticastGroup4, EncodeOptions{}); err == nil {
				t.Fatal("Marshal accepted it")
			}
		})
	}
}

func TestIntervalField(t *testing.T) {
	tests := []struct {
		version int
		d       time.Duration
		want    uint16
		ok      bool
	}{
		{2, time.Second, 1, true},
		{2, 255 * time.Second, 255, true},
		{2, 256 * time.Second, 0, false},
		{2, 1500 * time.Millisecond, 0, false},
		{2, 0, 0, false},
		{3, 10 * time.Millisecond, 1, true},
		{3, 20 * time.Millisecond, 2, true},
		{3, 50 * time.Millisecond, 5, true},
		{3, time.Second, 100, true},
		{3, 40950 * time.Millisecond, 4095, true},
		{3, 41 * time.Second, 0, false},
		{3, 15 * time.Millisecond, 0, false},
		{3, 0, 0, false},
		{1, time.Second, 0, false},
	}
	for _, tt := range tests {
		got, err := IntervalField(tt.version, tt.d)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("IntervalField(%d, %v) = %d, %v; want %d ok=%v", tt.version, tt.d, got, err, tt.want, tt.ok)
		}
	}
}
