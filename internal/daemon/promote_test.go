package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPromoter checks promote_secondaries over a stand-in sysctl tree (a
// temporary directory, not /proc): on for the interfaces that ask,
// untouched when already on, back to 0 at stop only where vipd set it.
func TestPromoter(t *testing.T) {
	root := t.TempDir()
	for name, v := range map[string]string{"eth0": "0", "eth1": "1", "eth2": "0"} {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name, "promote_secondaries"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name, "promote_secondaries"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	c := parse(t, `
vrrp_instance VI_0 {
    interface eth0
    virtual_router_id 1
    promote_secondaries
    virtual_ipaddress { 198.18.0.1/24 }
}
vrrp_instance VI_1 {
    interface eth1
    virtual_router_id 2
    promote_secondaries
    virtual_ipaddress { 198.18.0.2/24 }
}
vrrp_instance VI_2 {
    interface eth2
    virtual_router_id 3
    virtual_ipaddress { 198.18.0.3/24 }
}
vrrp_instance VI_3 {
    interface eth9
    virtual_router_id 4
    promote_secondaries
    virtual_ipaddress { 198.18.0.4/24 }
}
`)
	p := newPromoter(slog.Default())
	p.root = root
	p.apply(c)
	if got := read("eth0") + read("eth1") + read("eth2"); got != "110" {
		t.Errorf("after start: eth0 eth1 eth2 = %s, want 110", got)
	}
	p.reset()
	if got := read("eth0") + read("eth1") + read("eth2"); got != "010" {
		t.Errorf("after stop: eth0 eth1 eth2 = %s, want 010 (eth1 was on before vipd)", got)
	}
}
