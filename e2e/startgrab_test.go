package e2e

import (
	"bufio"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// addrMonitor is `ip -o monitor address` running in a host: every address
// added or deleted there, as the kernel reports it.
type addrMonitor struct {
	h *lab.Host
	p *lab.Proc
}

func monitorAddrs(t *testing.T, h *lab.Host) *addrMonitor {
	t.Helper()
	m := &addrMonitor{h: h, p: h.Start("ip", "-o", "monitor", "address")}
	m.sync(t, "198.18.3.1")
	return m
}

// sync adds a marker address on lo and waits until the monitor printed
// it: everything the kernel reported before is in the output by then.
// The monitor may not have subscribed yet when it was just started, so
// the marker is removed and added again until it shows. Markers are
// 198.18.3.x, one per call.
func (m *addrMonitor) sync(t *testing.T, marker string) {
	t.Helper()
	seen := func() bool { return strings.Contains(m.p.Output(), " "+marker+"/32") }
	lab.Eventually(t, 10*time.Second, func() bool {
		_, _ = m.h.Run("ip", "addr", "del", marker+"/32", "dev", "lo")
		m.h.MustRun("ip", "addr", "add", marker+"/32", "dev", "lo")
		for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if seen() {
				return true
			}
		}
		return false
	}, "ip monitor on %s did not report %s:\n%s", m.h.Name, marker, m.p.Output())
}

// lines returns the monitor's lines that mention addr.
func (m *addrMonitor) lines(addr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(m.p.Output()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), " "+addr+"/") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// TestStateMasterRestartBehindKeepalived (issue 15, item 5): a vipd
// configured `state MASTER` at priority 100 is restarted, cleanly and
// with SIGKILL, while a priority-150 keepalived is master. The VIP never
// leaves the keepalived node: `ip monitor address` in both namespaces
// for the whole time shows no VIP added on the vipd node and none
// deleted on the keepalived node. Before the fix vipd claimed the VIP
// the moment it started and handed it back at keepalived's next advert.
func TestStateMasterRestartBehindKeepalived(t *testing.T) {
	l := lab.New(t)
	dv := l.Host("vipd")
	dk := l.Host("kad")
	const vip = "198.18.0.100"

	keepalived(t, dk, mixedConf("MASTER", "150"))
	lab.Eventually(t, 10*time.Second, func() bool { return hasAddr(dk, vip) }, "keepalived did not take the VIP")

	mv := monitorAddrs(t, dv)
	mk := monitorAddrs(t, dk)

	v := startVipd(t, dv, mixedConf("MASTER", "100"))
	heard := func(d *director, n uint64) func() bool {
		return func() bool {
			st := d.status().Instances[0]
			return st.State == "BACKUP" && st.Stats.AdvertRcvd >= n && st.MasterAddr.String() == dk.Addr.String()
		}
	}
	lab.Eventually(t, 10*time.Second, heard(v, 2), "vipd does not follow keepalived: %s", v.state("VI_1"))

	// Each incarnation listens past its master down interval (3.6 s at
	// advert_int 1 and priority 100): 5 adverts heard, still BACKUP.
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := v.proc.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-v.proc.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("restart %d: vipd did not exit on %v", i+1, sig)
		}
		v = startVipd(t, dv, mixedConf("MASTER", "100"))
		lab.Eventually(t, 15*time.Second, heard(v, 5), "restart %d (%v): vipd not a backup hearing keepalived: %s", i+1, sig, v.state("VI_1"))
	}

	mv.sync(t, "198.18.3.2")
	mk.sync(t, "198.18.3.2")
	if got := mv.lines(vip); len(got) > 0 {
		t.Errorf("the VIP moved to the restarting vipd node:\n%s", strings.Join(got, "\n"))
	}
	if got := mk.lines(vip); len(got) > 0 {
		t.Errorf("the VIP left the keepalived node:\n%s", strings.Join(got, "\n"))
	}
	if !hasAddr(dk, vip) || hasAddr(dv, vip) {
		t.Errorf("VIP on keepalived %v, on vipd %v", hasAddr(dk, vip), hasAddr(dv, vip))
	}
	if n := v.status().Instances[0].Stats.BecomeMaster; n != 0 {
		t.Errorf("vipd became master %d times", n)
	}
}
