package realserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

const vip = "198.18.0.100"

func sysctl(t *testing.T, h *lab.Host, name string) string {
	t.Helper()
	return strings.TrimSpace(h.MustRun("sysctl", "-n", name))
}

// The tests run Up and Down in the real server's network namespace in a
// child process (this test binary, re-executed through ip netns exec), so
// that no thread of the test process itself ever enters the namespace.
const helperEnv = "VIPD_REALSERVER_HELPER"

type helperReply struct {
	Changes []Change
	Err     string
}

func TestMain(m *testing.M) {
	if op := os.Getenv(helperEnv); op != "" {
		var cfg Config
		var r helperReply
		if err := json.Unmarshal([]byte(os.Getenv(helperEnv+"_CONFIG")), &cfg); err != nil {
			r.Err = err.Error()
		} else {
			var err error
			if op == "up" {
				r.Changes, err = Up(cfg)
			} else {
				r.Changes, err = Down(cfg)
			}
			if err != nil {
				r.Err = err.Error()
			}
		}
		_ = json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inHost runs Up or Down in the host's network namespace.
func inHost(t *testing.T, h *lab.Host, op string, cfg Config) ([]Change, error) {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+op, helperEnv+"_CONFIG="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v", op, h.Name, err)
	}
	var r helperReply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%s in %s: %v: %s", op, h.Name, err, out)
	}
	for _, c := range r.Changes {
		t.Logf("%s: %s", op, c)
	}
	if r.Err != "" {
		return r.Changes, errors.New(r.Err)
	}
	return r.Changes, nil
}

func up(t *testing.T, h *lab.Host, cfg Config) []Change {
	t.Helper()
	ch, err := inHost(t, h, "up", cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	return ch
}

func down(t *testing.T, h *lab.Host, cfg Config) []Change {
	t.Helper()
	ch, err := inHost(t, h, "down", cfg)
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	return ch
}

// reachable pings the address from the host (one try, 1 s).
func reachable(h *lab.Host, addr string) bool {
	_, err := h.Run("ping", "-c", "1", "-W", "1", addr)
	return err == nil
}

func readState(t *testing.T, p string) state {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDR sets up a real server for direct routing in a network namespace
// and checks what matters on the wire: the real server does not answer
// ARP for the VIP, yet accepts and answers packets for the VIP that a
// director sends to its MAC (here the client routes the VIP through the
// real server, which is what a DR director does). Down puts everything
// back, and without the sysctls the same host does answer ARP for the
// VIP, so the first check can fail.
func TestDR(t *testing.T) {
	lab.RequireCommand(t, "ping", "sysctl")
	l := lab.New(t)
	client := l.Host("client")
	rs := l.Host("rs")
	// A non-default value, to see Down restore what was there.
	rs.MustRun("sysctl", "-qw", "net.ipv4.conf.lo.arp_announce=1")
	before := map[string]string{}
	names := []string{"net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce", "net.ipv4.conf.lo.arp_ignore", "net.ipv4.conf.lo.arp_announce"}
	for _, n := range names {
		before[n] = sysctl(t, rs, n)
	}
	cfg := Config{VIPs: []netip.Addr{netip.MustParseAddr(vip)}, StateFile: filepath.Join(t.TempDir(), "run", "realserver.json")}

	up(t, rs, cfg)
	for n, want := range map[string]string{names[0]: "1", names[1]: "2", names[2]: "1", names[3]: "2"} {
		if got := sysctl(t, rs, n); got != want {
			t.Errorf("after up: %s = %s, want %s", n, got, want)
		}
	}
	if out := rs.MustRun("ip", "-4", "addr", "show", "dev", "lo"); !strings.Contains(out, "inet "+vip+"/32 scope global lo") {
		t.Errorf("VIP not on lo:\n%s", out)
	}
	if reachable(client, vip) {
		t.Error("the real server answered ARP for the VIP")
	}
	client.MustRun("ip", "route", "add", vip+"/32", "via", rs.Addr.String())
	if !reachable(client, vip) {
		t.Error("the real server did not answer the VIP routed to its MAC")
	}
	client.MustRun("ip", "route", "del", vip+"/32")

	// Up again: nothing changes, the recorded prior values stay.
	for _, c := range up(t, rs, cfg) {
		if c.From != c.To {
			t.Errorf("second up changed %s", c)
		}
	}
	st := readState(t, cfg.StateFile)
	if v := st.sysctl("net/ipv4/conf/lo/arp_announce"); v == nil || v.Prior != "1" || v.Set != "2" {
		t.Errorf("state lost the prior value: %+v", st.Sysctls)
	}

	// A second VIP, then its removal alone.
	two := cfg
	two.VIPs = []netip.Addr{netip.MustParseAddr("198.18.0.101")}
	up(t, rs, two)
	down(t, rs, two)
	out := rs.MustRun("ip", "-4", "addr", "show", "dev", "lo")
	if strings.Contains(out, "198.18.0.101") || !strings.Contains(out, vip+"/32") {
		t.Errorf("down of one VIP: lo has\n%s", out)
	}
	if got := sysctl(t, rs, names[0]); got != "1" {
		t.Errorf("sysctls restored while a VIP is still up: arp_ignore = %s", got)
	}

	down(t, rs, Config{StateFile: cfg.StateFile})
	for _, n := range names {
		if got := sysctl(t, rs, n); got != before[n] {
			t.Errorf("after down: %s = %s, want %s", n, got, before[n])
		}
	}
	if out := rs.MustRun("ip", "-4", "addr", "show", "dev", "lo"); strings.Contains(out, vip) {
		t.Errorf("VIP still on lo after down:\n%s", out)
	}
	if _, err := os.Stat(cfg.StateFile); !os.IsNotExist(err) {
		t.Errorf("state file still there: %v", err)
	}

	// Control: the VIP on lo without the sysctls is answered by ARP.
	rs.MustRun("ip", "addr", "add", vip+"/32", "dev", "lo")
	client.MustRun("ip", "neigh", "flush", "all")
	lab.Eventually(t, 5*time.Second, func() bool { return reachable(client, vip) },
		"control failed: without arp_ignore the real server should answer ARP for the VIP")
}

// TestDRKeepsWhatWasThere: a VIP already on lo is not removed by Down,
// and a sysctl someone changed after Up keeps its new value.
func TestDRKeepsWhatWasThere(t *testing.T) {
	lab.RequireCommand(t, "sysctl")
	l := lab.New(t)
	rs := l.Host("rs")
	rs.MustRun("ip", "addr", "add", vip+"/32", "dev", "lo")
	cfg := Config{VIPs: []netip.Addr{netip.MustParseAddr(vip)}, StateFile: filepath.Join(t.TempDir(), "state.json")}
	up(t, rs, cfg)
	rs.MustRun("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=2")
	changes := down(t, rs, cfg)
	if got := sysctl(t, rs, "net.ipv4.conf.all.arp_ignore"); got != "2" {
		t.Errorf("down overwrote a value changed since up: arp_ignore = %s", got)
	}
	if got := sysctl(t, rs, "net.ipv4.conf.all.arp_announce"); got != "0" {
		t.Errorf("arp_announce = %s, want it restored to 0", got)
	}
	if out := rs.MustRun("ip", "-4", "addr", "show", "dev", "lo"); !strings.Contains(out, vip+"/32") {
		t.Errorf("down removed a VIP that was there before up:\n%s", out)
	}
	var noted bool
	for _, c := range changes {
		noted = noted || strings.Contains(c.Note, "changed by someone else")
	}
	if !noted {
		t.Errorf("down did not report the foreign change: %v", changes)
	}
}

func TestIPv6VIP(t *testing.T) {
	l := lab.New(t)
	rs := l.Host("rs")
	cfg := Config{VIPs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}, StateFile: filepath.Join(t.TempDir(), "state.json")}
	up(t, rs, cfg)
	if out := rs.MustRun("ip", "-6", "addr", "show", "dev", "lo"); !strings.Contains(out, "inet6 2001:db8::100/128 scope global") {
		t.Errorf("IPv6 VIP not on lo:\n%s", out)
	}
	down(t, rs, cfg)
	if out := rs.MustRun("ip", "-6", "addr", "show", "dev", "lo"); strings.Contains(out, "2001:db8::100") {
		t.Errorf("IPv6 VIP still on lo:\n%s", out)
	}
}

// TestTUN needs a kernel with IP-in-IP (CONFIG_NET_IPIP). Where the
// kernel has none it is skipped as a fact of the machine, even under CI:
// scripts/vmtest runs it in a VM whose kernel has it, and fails there if
// IP-in-IP is missing.
func TestTUN(t *testing.T) {
	lab.RequireCommand(t, "sysctl")
	l := lab.New(t)
	rs := l.Host("rs")
	// Strict reverse-path filtering, as many distributions set it: Up
	// must turn it off (for all; tunl0 may not exist yet) and Down must
	// restore it.
	rs.MustRun("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	cfg := Config{Mode: TUN, VIPs: []netip.Addr{netip.MustParseAddr(vip)}, StateFile: filepath.Join(t.TempDir(), "state.json")}
	_, err := inHost(t, rs, "up", cfg)
	if err != nil && strings.Contains(err.Error(), "ipip module") {
		if os.Getenv("VIPD_IN_VM") == "1" {
			t.Fatalf("the VM's kernel must have IP-in-IP: %v", err)
		}
		lab.SkipMachineFact(t, fmt.Sprintf("this kernel has no IP-in-IP (%v); scripts/vmtest runs TestTUN in a VM", err))
	}
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{
		"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.tunl0.arp_announce": "2",
		"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.tunl0.rp_filter": "0",
	} {
		if got := sysctl(t, rs, n); got != want {
			t.Errorf("%s = %s, want %s", n, got, want)
		}
	}
	if out := rs.MustRun("ip", "-4", "addr", "show", "dev", "tunl0"); !strings.Contains(out, vip+"/32") || !strings.Contains(out, "UP") {
		t.Errorf("tunl0:\n%s", out)
	}
	down(t, rs, cfg)
	if out := rs.MustRun("ip", "-4", "addr", "show", "dev", "tunl0"); strings.Contains(out, vip) {
		t.Errorf("VIP still on tunl0:\n%s", out)
	}
	if got := sysctl(t, rs, "net.ipv4.conf.all.rp_filter"); got != "1" {
		t.Errorf("rp_filter = %s after down, want 1 restored", got)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Down(Config{StateFile: filepath.Join(dir, "none.json")}); err == nil || !strings.Contains(err.Error(), "no state file") {
		t.Errorf("down without state: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(Config{StateFile: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt state: %v", err)
	}
	evil := filepath.Join(dir, "evil.json")
	if err := os.WriteFile(evil, []byte(`{"version":1,"mode":"dr","dev":"lo","sysctls":[{"path":"../../etc/passwd","prior":"x","set":"y"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Down(Config{StateFile: evil}); err == nil || !strings.Contains(err.Error(), "bad sysctl path") {
		t.Errorf("state with a path outside /proc/sys/net: %v", err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"version":1,"mode":"dr","dev":"eth1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Up(Config{StateFile: other}); err == nil || !strings.Contains(err.Error(), "run down first") {
		t.Errorf("up over another setup: %v", err)
	}
	for _, c := range []Config{
		{Mode: "nat"},
		{Mode: TUN, Dev: "eth0"},
		{Dev: "../x"},
		{Mode: TUN, VIPs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}},
		{VIPs: []netip.Addr{{}}},
	} {
		c.StateFile = filepath.Join(dir, "x.json")
		if _, err := Up(c); err == nil {
			t.Errorf("Up(%+v) accepted", c)
		}
	}
}

func TestChangeString(t *testing.T) {
	for c, want := range map[Change]string{
		{What: "sysctl net.ipv4.conf.all.arp_ignore", From: "0", To: "1"}:         "sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
		{What: "sysctl net.ipv4.conf.lo.arp_ignore", From: "1", To: "1"}:          "sysctl net.ipv4.conf.lo.arp_ignore: 1 (unchanged)",
		{What: "address 198.18.0.100/32 on lo", From: "absent", To: "added"}:      "address 198.18.0.100/32 on lo: absent -> added",
		{What: "x", From: "2", To: "2", Note: "changed by someone else since up"}: "x: 2 (unchanged) (changed by someone else since up)",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", c, got, want)
		}
	}
	if got := sysctlName("net/ipv4/conf/eth0.100/arp_ignore"); got != "net.ipv4.conf.eth0/100.arp_ignore" {
		t.Errorf("sysctlName = %s", got)
	}
}

// FuzzLoadState: a damaged state file gives an error, never a panic, and
// never a sysctl path outside /proc/sys/net.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"mode":"dr","dev":"lo","vips":[{"prefix":"198.18.0.100/32","added":true}],"sysctls":[{"path":"net/ipv4/conf/all/arp_ignore","prior":"0","set":"1"}]}`))
	f.Add([]byte(`{"version":1,"sysctls":[{"path":"net/../../etc/shadow"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"vips":[{"prefix":"nope"}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := load(p)
		if err != nil || st == nil {
			return
		}
		for _, s := range st.Sysctls {
			if !strings.HasPrefix(s.Path, "net/") || strings.Contains(s.Path, "..") {
				t.Fatalf("accepted sysctl path %q", s.Path)
			}
		}
	})
}
