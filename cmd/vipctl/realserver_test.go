package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

// TestRealserverInNamespace runs the built vipctl realserver up/down in a
// real server's network namespace, as an operator would on the host, and
// checks the kernel's state after each step.
func TestRealserverInNamespace(t *testing.T) {
	l := lab.New(t)
	rs := l.Host("rs1")
	bin := lab.Binary(t, "./cmd/vipctl")
	state := filepath.Join(t.TempDir(), "realserver.json")
	sysctl := func(name string) string { return strings.TrimSpace(rs.MustRun("sysctl", "-n", name)) }
	loAddrs := func() string { return rs.MustRun("ip", "-o", "addr", "show", "dev", "lo") }
	knobs := []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce", "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.lo.arp_announce"}
	for _, k := range knobs {
		if v := sysctl(k); v != "0" {
			t.Fatalf("fresh namespace: %s = %s", k, v)
		}
	}

	out := rs.MustRun(bin, "realserver", "up", "--vip", "198.18.0.100,198.18.0.101/32", "--state", state)
	t.Logf("up:\n%s", out)
	for _, want := range []string{
		"sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
		"sysctl net.ipv4.conf.lo.arp_announce: 0 -> 2",
		"198.18.0.100/32",
		"198.18.0.101/32",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q", want)
		}
	}
	for _, k := range knobs {
		want := "1"
		if strings.HasSuffix(k, "arp_announce") {
			want = "2"
		}
		if v := sysctl(k); v != want {
			t.Errorf("after up: %s = %s, want %s", k, v, want)
		}
	}
	if a := loAddrs(); !strings.Contains(a, "inet 198.18.0.100/32") || !strings.Contains(a, "inet 198.18.0.101/32") {
		t.Errorf("after up, lo has:\n%s", a)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file: %v", err)
	}

	// Again: nothing changes, and -o json says so.
	out = rs.MustRun(bin, "realserver", "up", "--vip", "198.18.0.100", "--state", state, "-o", "json")
	var res struct {
		Changes []changeJSON `json:"changes"`
		Error   string       `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("up -o json: %v\n%s", err, out)
	}
	if res.Error != "" || len(res.Changes) == 0 {
		t.Fatalf("second up: %+v", res)
	}
	for _, c := range res.Changes {
		if c.From != c.To {
			t.Errorf("second up changed %s: %s -> %s", c.What, c.From, c.To)
		}
	}

	// Down one VIP: the other stays, so do the sysctls.
	rs.MustRun(bin, "realserver", "down", "--vip", "198.18.0.101", "--state", state)
	if a := loAddrs(); !strings.Contains(a, "198.18.0.100/32") || strings.Contains(a, "198.18.0.101/32") {
		t.Errorf("after down 101, lo has:\n%s", a)
	}
	if v := sysctl("net.ipv4.conf.all.arp_ignore"); v != "1" {
		t.Errorf("after partial down arp_ignore = %s, want 1 (a VIP is still up)", v)
	}

	// Down the rest: back to where we started.
	rs.MustRun(bin, "realserver", "down", "--state", state)
	for _, k := range knobs {
		if v := sysctl(k); v != "0" {
			t.Errorf("after down: %s = %s, want 0", k, v)
		}
	}
	if a := loAddrs(); strings.Contains(a, "198.18.0.10") {
		t.Errorf("after down, lo has:\n%s", a)
	}

	// Errors: exit 1 with the reason, exit 2 for bad usage.
	out, err := rs.Run(bin, "realserver", "down", "--state", state)
	if err == nil || !strings.Contains(out, "vipctl: realserver: no state file") {
		t.Errorf("down with nothing set up: %v\n%s", err, out)
	}
	out, err = rs.Run(bin, "realserver", "up", "--vip", "not-an-ip", "--state", state)
	if err == nil || !strings.Contains(out, `vipctl realserver: --vip "not-an-ip": want an IP address`) {
		t.Errorf("bad VIP: %v\n%s", err, out)
	}
}
