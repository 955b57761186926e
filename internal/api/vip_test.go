package api

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitVIP(t *testing.T) {
	tests := []struct{ in, ip, intf string }{
		{"198.18.0.100/24", "198.18.0.100", "eth0"},
		{"198.18.0.100", "198.18.0.100", "eth0"},
		{"198.18.0.100/24 dev eth1 label eth1:1", "198.18.0.100", "eth1"},
		{"2001:db8::1/64 dev eth2 scope global", "2001:db8::1", "eth2"},
		{"198.18.0.100/32 dev", "198.18.0.100", "eth0"},
		{"", "", "eth0"},
		{"   ", "", "eth0"},
	}
	for _, tt := range tests {
		ip, intf := splitVIP(tt.in, "eth0")
		if ip != tt.ip || intf != tt.intf {
			t.Errorf("splitVIP(%q) = %q, %q; want %q, %q", tt.in, ip, intf, tt.ip, tt.intf)
		}
	}
}

// FuzzSplitVIP: any VIP text the daemon hands over yields a label without
// spaces and never panics.
func FuzzSplitVIP(f *testing.F) {
	for _, s := range []string{"198.18.0.100/24", "198.18.0.100/24 dev eth1 label eth1:1", "dev dev dev", "/", "fe80::1%eth0/64 dev eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, intf := splitVIP(s, "eth0")
		if strings.ContainsAny(ip, " \t\n/") {
			t.Errorf("ip label %q", ip)
		}
		if intf == "" || (utf8.ValidString(s) && strings.ContainsAny(intf, " \t\n")) {
			t.Errorf("intf label %q", intf)
		}
	})
}
