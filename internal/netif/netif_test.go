package netif

import (
	"bytes"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// vectorFrame reads the first frame of a keepalived capture (tcpdump -xx).
func vectorFrame(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../vrrp/testdata/vectors/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var h strings.Builder
	started := false
	for _, line := range strings.Split(string(raw), "\n") {
		l := strings.TrimSpace(line)
		if !strings.HasPrefix(l, "0x") {
			if started {
				break
			}
			continue
		}
		started = true
		_, rest, _ := strings.Cut(l, ":")
		h.WriteString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGARPFrameMatchesKeepalived(t *testing.T) {
	want := vectorFrame(t, "garp_adv.txt")
	mac, _ := net.ParseMAC("06:f8:9c:d6:c3:f3")
	got, err := GARPFrame(mac, netip.MustParseAddr("198.18.0.100"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GARP\n got  %x\n want %x", got, want)
	}
	if _, err := GARPFrame(mac, netip.MustParseAddr("fd00::1")); err == nil {
		t.Error("GARP for IPv6 accepted")
	}
	if _, err := GARPFrame(net.HardwareAddr{1, 2}, netip.MustParseAddr("198.18.0.1")); err == nil {
		t.Error("short MAC accepted")
	}
}

// TestIPv4HeaderMatchesKeepalived compares our advert IP header with the
// captured ones, except the identification and the checksum the kernel
// computes.
func TestIPv4HeaderMatchesKeepalived(t *testing.T) {
	for _, name := range []string{"vrrp_v2_adv.txt", "vrrp_v2_three_vips.txt", "vrrp_v3_adv.txt", "vrrp_v3_two_vips_prio200.txt"} {
		t.Run(name, func(t *testing.T) {
			f := vectorFrame(t, name)
			ip := f[14:34]
			tot := int(ip[2])<<8 | int(ip[3])
			src, _ := netip.AddrFromSlice(ip[12:16])
			dst, _ := netip.AddrFromSlice(ip[16:20])
			id := int(ip[4])<<8 | int(ip[5])
			h := IPv4Header(src, dst, tot-20, 255, id)
			b, err := h.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte(nil), ip...)
			want[10], want[11] = 0, 0 // checksum: the kernel's
			if !bytes.Equal(b, want) {
				t.Fatalf("header\n got  %x\n want %x", b, want)
			}
		})
	}
}

func TestScopeValue(t *testing.T) {
	for s, want := range map[string]int{"": 0, "global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255, "HOST": 254} {
		if got, err := ScopeValue(s); err != nil || got != want {
			t.Errorf("ScopeValue(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	if _, err := ScopeValue("galaxy"); err == nil {
		t.Error("bad scope accepted")
	}
}
