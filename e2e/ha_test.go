package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// haConf: the seeds' deployment as the HA test runs it.
var haConf = natConf{routerID: "%s_node", vrid: 51, advert: "0.2", rs2Weight: 1}

// TestSeedHA runs the seeds' checks on two vipd directors: round robin,
// a real server failing and coming back, the master's link cut and
// restored (preemption), and the master stopped.
func TestSeedHA(t *testing.T) {
	p := newNATPair(t)
	client, d1, d2, rs1, rs2, ng1 := p.client, p.d1, p.d2, p.rs1, p.rs2, p.ng1
	m, b := p.start(t, haConf, nil, nil)
	const vip = "198.18.0.100"

	// Round robin: rs1, rs2 alternate.
	got := gets(t, client, vip, 4)
	if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] {
		t.Fatalf("rr through the VIP gave %v, want alternating rs1/rs2", got)
	}

	// A real server dies: within connect_timeout + retry x delay_before_retry
	// + delay_loop (1+1+1 s) plus slack it leaves the pool; only rs2 answers.
	ng1.Kill()
	lab.Eventually(t, 6*time.Second, func() bool {
		for _, s := range m.status().Services {
			if len(s.Dests) == 1 && strings.HasPrefix(s.Dests[0].Addr.String(), rs2.Addr.String()) {
				return true
			}
		}
		return false
	}, "rs1 not removed from the pool")
	for _, b := range gets(t, client, vip, 6) {
		if b != "rs2" {
			t.Fatalf("got %q after rs1 died, want only rs2", b)
		}
	}
	// It comes back after one successful check.
	nginx(t, rs1, "rs1")
	lab.Eventually(t, 5*time.Second, func() bool {
		seen := map[string]bool{}
		for _, b := range gets(t, client, vip, 4) {
			seen[b] = true
		}
		return seen["rs1"] && seen["rs2"]
	}, "rs1 did not come back")

	// The master's cable is pulled: the backup takes the VIP; the client
	// reaches it again within the master down interval (3 x 0.2 s + skew)
	// plus slack for two loaded cores.
	d1.Cut()
	cut := time.Now()
	lab.Eventually(t, 3*time.Second, func() bool { _, err := get(client, vip, 200*time.Millisecond); return err == nil },
		"VIP unreachable after the master's link was cut")
	t.Logf("client reached the VIP %v after the cut", time.Since(cut).Round(time.Millisecond))
	if s := b.state("VI_1"); s != "MASTER" {
		t.Fatalf("d2 is %s after d1's link was cut, want MASTER", s)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "FAULT" }, "d1 not in FAULT with its link down")
	if hasAddr(d1, vip) {
		t.Fatal("d1 kept the VIP while in FAULT")
	}

	// The cable comes back: d1 (priority 150) preempts.
	d1.Restore()
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "MASTER" && b.state("VI_1") == "BACKUP" },
		"d1 did not preempt after its link came back: d1 %s, d2 %s", m.state("VI_1"), b.state("VI_1"))
	lab.Eventually(t, 2*time.Second, func() bool { return !hasAddr(d2, vip) }, "d2 kept the VIP after d1 preempted")
	gets(t, client, vip, 2)

	// SIGTERM on the master: priority 0, the backup takes over at once.
	stop(t, m.proc)
	if hasAddr(d1, vip) {
		t.Fatal("d1 left its VIP behind after SIGTERM")
	}
	lab.Eventually(t, 2*time.Second, func() bool { return b.state("VI_1") == "MASTER" }, "d2 not MASTER after d1 stopped")
	gets(t, client, vip, 2)
	if !strings.Contains(m.proc.Output(), "(VI_1) sent 0 priority") {
		t.Errorf("d1's log lacks keepalived's \"(VI_1) sent 0 priority\":\n%s", m.proc.Output())
	}
}
