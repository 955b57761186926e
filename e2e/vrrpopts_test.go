package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestPromoteSecondaries runs vipd with promote_secondaries in a
// namespace: the kernel's net.ipv4.conf.eth0.promote_secondaries is on
// while the instance runs and back off after vipd stops (it was off).
func TestPromoteSecondaries(t *testing.T) {
	l := lab.New(t)
	d1 := l.Host("d1")
	read := func() string {
		out, err := d1.Run("cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries")
		if err != nil {
			t.Fatalf("promote_secondaries: %v: %s", err, out)
		}
		return strings.TrimSpace(out)
	}
	d1.MustRun("sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=0")
	m := startVipd(t, d1, `
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.2
    promote_secondaries
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`)
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "MASTER" }, "d1 not MASTER")
	if v := read(); v != "1" {
		t.Fatalf("promote_secondaries = %s while the instance runs, want 1", v)
	}
	stop(t, m.proc)
	if v := read(); v != "0" {
		t.Fatalf("promote_secondaries = %s after vipd stopped, want 0 as before", v)
	}
}
