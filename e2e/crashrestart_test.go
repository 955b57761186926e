package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestCrashRestartWhileMaster (issue 15, item 4, the VRRP part): a
// `state MASTER` vipd at priority 150 is master, a priority-100
// keepalived its backup. vipd is killed with SIGKILL: its VIP stays on
// the interface (no process is left to remove it) and keepalived takes
// over after its down interval. vipd started again removes that stale
// VIP first, then hears keepalived's lower-priority adverts and
// preempts at once: in the end the VIP is on the vipd node alone, and
// `ip monitor address` on the vipd node shows the stale VIP deleted
// before it is added again.
func TestCrashRestartWhileMaster(t *testing.T) {
	l := lab.New(t)
	dv := l.Host("vipd")
	dk := l.Host("kad")
	const vip = "198.18.0.100"
	only := func(h *lab.Host) func() bool {
		return func() bool { return hasAddr(h, vip) && !hasAddr(otherOf(h, dv, dk), vip) }
	}

	v := startVipd(t, dv, mixedConf("MASTER", "150"))
	keepalived(t, dk, mixedConf("BACKUP", "100"))
	lab.Eventually(t, 10*time.Second, func() bool { return v.state("VI_1") == "MASTER" && only(dv)() }, "vipd not the only master: %s", v.state("VI_1"))

	if err := v.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-v.proc.Done()
	// keepalived's down interval is 3 x 1 s + skew; vipd's VIP stays.
	lab.Eventually(t, 10*time.Second, func() bool { return hasAddr(dk, vip) }, "keepalived did not take over from the killed vipd")
	if !hasAddr(dv, vip) {
		t.Fatal("the killed vipd's VIP went away by itself: the test's premise (a stale VIP) does not hold")
	}

	mv := monitorAddrs(t, dv)
	restarted := time.Now()
	v = startVipd(t, dv, mixedConf("MASTER", "150"))
	lab.Eventually(t, 5*time.Second, func() bool { return v.state("VI_1") == "MASTER" && only(dv)() },
		"vipd restarted did not take the VIP back alone: vipd %s, on vipd %v, on keepalived %v", v.state("VI_1"), hasAddr(dv, vip), hasAddr(dk, vip))
	took := time.Since(restarted)
	mv.sync(t, "198.18.3.2")
	lines := mv.lines(vip)
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Deleted ") || strings.HasPrefix(lines[1], "Deleted ") {
		t.Fatalf("on the vipd node the stale VIP was not deleted before being added again:\n%s", strings.Join(lines, "\n"))
	}
	st := v.status().Instances[0]
	if st.Stats.BecomeMaster != 1 {
		t.Errorf("vipd became master %d times after the restart", st.Stats.BecomeMaster)
	}
	t.Logf("restarted vipd master alone %v after its start (keepalived's lower adverts preempted at once)", took.Round(time.Millisecond))
	// It stays that way: keepalived follows.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if !only(dv)() {
			t.Fatalf("VIP on vipd %v, on keepalived %v after the preemption", hasAddr(dv, vip), hasAddr(dk, vip))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func otherOf(h, a, b *lab.Host) *lab.Host {
	if h == a {
		return b
	}
	return a
}
