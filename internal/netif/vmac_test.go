package netif

import (
	"os"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

func readSysctl(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestVMACs makes VMACs in a namespace as use_vmac does: a private
// macvlan with the virtual MAC, up, keepalived's sysctls on it and on
// its base (restored when the last VMAC goes), no IPv6 for an IPv4
// instance, the base's link-local address (no DAD) for an IPv6 one.
// An interface of the name that is not such a macvlan is refused and
// left alone.
func TestVMACs(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	m := NewVMACs()
	v4 := VMAC{Name: "vrrp.51", Base: "eth0", MAC: VirtualMAC(51, false)}
	v6 := VMAC{Name: "vrrp6.51", Base: "eth0", MAC: VirtualMAC(51, true), V6: true}
	do(t, h, func() error {
		for _, v := range []VMAC{v4, v4, v6} { // the second Add takes over the first
			if err := m.Add(v); err != nil {
				return err
			}
		}
		return nil
	})
	containsAll(t, h.MustRun("ip", "-d", "link", "show", "dev", "vrrp.51"), "vrrp.51@eth0", ",UP", "link/ether 00:00:5e:00:01:33", "macvlan mode private")
	containsAll(t, h.MustRun("ip", "-d", "link", "show", "dev", "vrrp6.51"), "vrrp6.51@eth0", ",UP", "link/ether 00:00:5e:00:02:33", "macvlan mode private")
	if out := h.MustRun("ip", "-6", "addr", "show", "dev", "vrrp.51"); out != "" {
		t.Errorf("IPv4 VMAC has IPv6 addresses:\n%s", out)
	}
	base := h.MustRun("ip", "-6", "addr", "show", "dev", "eth0", "scope", "link")
	ll := strings.Fields(base[strings.Index(base, "inet6"):])[1]
	out6 := h.MustRun("ip", "-6", "addr", "show", "dev", "vrrp6.51")
	containsAll(t, out6, "inet6 "+ll+" scope link nodad")
	if strings.Count(out6, "inet6") != 1 {
		t.Errorf("IPv6 VMAC has other addresses than the base's link-local %s:\n%s", ll, out6)
	}
	do(t, h, func() error {
		want := map[string]string{
			"/proc/sys/net/ipv4/conf/vrrp.51/arp_ignore":     "1",
			"/proc/sys/net/ipv4/conf/vrrp.51/accept_local":   "1",
			"/proc/sys/net/ipv4/conf/vrrp.51/rp_filter":      "0",
			"/proc/sys/net/ipv4/conf/eth0/arp_ignore":        "1",
			"/proc/sys/net/ipv4/conf/eth0/arp_filter":        "1",
			"/proc/sys/net/ipv6/conf/vrrp.51/disable_ipv6":   "1",
			"/proc/sys/net/ipv6/conf/vrrp6.51/addr_gen_mode": "1",
		}
		for p, w := range want {
			if got := readSysctl(t, p); got != w {
				t.Errorf("%s = %s, want %s", p, got, w)
			}
		}
		return nil
	})
	// Someone else's interface of the name is refused, and survives.
	h.MustRun("ip", "link", "add", "vrrp.52", "type", "veth", "peer", "name", "vrrp.52p")
	do(t, h, func() error {
		if err := m.Add(VMAC{Name: "vrrp.52", Base: "eth0", MAC: VirtualMAC(52, false)}); err == nil {
			t.Error("Add took over a veth interface")
		}
		if err := m.RemoveAll(); err != nil {
			return err
		}
		for _, p := range []string{"/proc/sys/net/ipv4/conf/eth0/arp_ignore", "/proc/sys/net/ipv4/conf/eth0/arp_filter"} {
			if got := readSysctl(t, p); got != "0" {
				t.Errorf("after RemoveAll %s = %s, want 0 restored", p, got)
			}
		}
		return nil
	})
	for _, name := range []string{"vrrp.51", "vrrp6.51"} {
		if out, err := h.Run("ip", "link", "show", "dev", name); err == nil {
			t.Errorf("%s left after RemoveAll: %s", name, out)
		}
	}
	h.MustRun("ip", "link", "show", "dev", "vrrp.52")
	// Strict reverse path filtering would drop the adverts: refused.
	h.MustRun("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	do(t, h, func() error {
		if err := m.Add(v4); err == nil || !strings.Contains(err.Error(), "rp_filter") {
			t.Errorf("Add with all.rp_filter=1: %v, want an rp_filter error", err)
		}
		return nil
	})
}
