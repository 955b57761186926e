package vrrp_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrp"
	"github.com/vipd/vipd/internal/vrrp/vrrptest"
)

// TestInteropKeepalived runs mixed pairs: vipd and keepalived 2.2.7 in
// both roles, VRRPv2 with PASS authentication and VRRPv3, multicast and
// unicast. In each, the master fails (link cut, SIGTERM, or killed with
// its address flushed), the backup takes over within the protocol's
// bound, keepalived logs the transitions, the master returns and
// preempts, and the VIP is never held twice once converged.
func TestInteropKeepalived(t *testing.T) {
	requireKeepalived(t)
	t.Parallel()
	type tc struct {
		name     string
		version  int
		interval time.Duration
		pass     string
		unicast  bool
		vipdIsD1 bool   // vipd is the (higher priority) master, keepalived the backup
		failure  string // cut, term, kill
	}
	cases := []tc{
		{"v2-pass-mcast/vipd-master/cut", 2, time.Second, "secret12", false, true, "cut"},
		{"v2-pass-mcast/keepalived-master/term", 2, time.Second, "secret12", false, false, "term"},
		{"v2-pass-unicast/keepalived-master/cut", 2, time.Second, "pw", true, false, "cut"},
		{"v3-unicast/vipd-master/term", 3, 100 * time.Millisecond, "", true, true, "term"},
		{"v3-unicast/keepalived-master/cut", 3, 100 * time.Millisecond, "", true, false, "cut"},
		{"v3-mcast/vipd-master/kill", 3, 100 * time.Millisecond, "", false, true, "kill"},
		{"v3-mcast/keepalived-master/kill", 3, 100 * time.Millisecond, "", false, false, "kill"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t)
			s1, s2 := spec(c.version, c.interval, 150), spec(c.version, c.interval, 100)
			s1.AuthPass, s2.AuthPass = c.pass, c.pass
			if c.unicast {
				s1.UnicastSrc, s1.UnicastPeers = p.d1.Addr, []netip.Addr{p.d2.Addr}
				s2.UnicastSrc, s2.UnicastPeers = p.d2.Addr, []netip.Addr{p.d1.Addr}
			}
			kind1, cmd1, kind2, cmd2 := "keepalived", vrrptest.KeepalivedCommand, "vipd", vrrptest.VipdCommand
			if c.vipdIsD1 {
				kind1, cmd1, kind2, cmd2 = kind2, cmd2, kind1, cmd1
			}
			// The backup first, so that the master's arrival (preemption)
			// is part of the test.
			d2 := vrrptest.Start(t, p.d2, kind2, cmd2, s2)
			p.probe(t)
			p.waitMaster(t, p.d2, 2*vrrptest.DownInterval(c.version, 100, c.interval)+3*time.Second)
			d1 := vrrptest.Start(t, p.d1, kind1, cmd1, s1)
			p.waitMaster(t, p.d1, 2*vrrptest.DownInterval(c.version, 150, c.interval)+3*time.Second)
			higher := "(VI_1) Master received advert from 198.18.0.11 with higher priority 150, ours 100"
			d2.WaitLog(t, higher, 1, 2*time.Second)
			d2.WaitLog(t, "(VI_1) Entering BACKUP STATE", 1, time.Second)
			lab.Eventually(t, time.Second, func() bool { return !vrrptest.HasVIP(p.d2, vip) }, "%s kept the VIP", kind2)
			vrrptest.Exclusive(t, vip, 3*c.interval+500*time.Millisecond, p.d1, p.d2)

			down := vrrptest.DownInterval(c.version, 100, c.interval)
			switch c.failure {
			case "cut":
				p.failover(t, p.d2, down+vrrptest.Slack(t), p.cut(p.d1))
			case "term":
				p.failover(t, p.d2, vrrptest.Skew(c.version, 100, c.interval)+vrrptest.Slack(t), func() { d1.Term(t) })
				d2.WaitLog(t, "(VI_1) Backup received priority 0 advertisement", 1, time.Second)
				if vrrptest.HasVIP(p.d1, vip) {
					t.Errorf("%s left the VIP behind on SIGTERM", kind1)
				}
			case "kill":
				p.failover(t, p.d2, down+vrrptest.Slack(t), func() {
					d1.Kill()
					p.d1.MustRun("ip", "addr", "flush", "dev", "eth0")
				})
			}
			d2.WaitLog(t, "(VI_1) Entering MASTER STATE", 2, time.Second)

			// The master returns and takes its role back.
			switch c.failure {
			case "cut":
				p.d1.Restore()
			case "term":
				d1.Restart(t)
			case "kill":
				p.d1.MustRun("ip", "addr", "add", p.d1.Addr.String()+"/24", "dev", "eth0")
				d1.Restart(t)
			}
			p.waitMaster(t, p.d1, 2*vrrptest.DownInterval(c.version, 150, c.interval)+3*time.Second)
			d2.WaitLog(t, higher, 2, 2*time.Second)
			d2.WaitLog(t, "(VI_1) Entering BACKUP STATE", 2, time.Second)
			lab.Eventually(t, time.Second, func() bool { return !vrrptest.HasVIP(p.d2, vip) }, "%s kept the VIP", kind2)
			vrrptest.Exclusive(t, vip, 3*c.interval+500*time.Millisecond, p.d1, p.d2)
		})
	}
}

// TestInteropWrongPassword: adverts with the wrong password are dropped
// and counted on both sides, neither changes state for them (both end up
// master: the classic symptom), and a fixed configuration heals it.
func TestInteropWrongPassword(t *testing.T) {
	requireKeepalived(t)
	t.Parallel()
	p := newPair(t)
	s1, s2 := spec(2, time.Second, 150), spec(2, time.Second, 100)
	s1.AuthPass, s2.AuthPass = "right", "wrong"
	d1 := vrrptest.Start(t, p.d1, "vipd", vrrptest.VipdCommand, s1)
	d2 := vrrptest.Start(t, p.d2, "keepalived", vrrptest.KeepalivedCommand, s2)
	lab.Eventually(t, 10*time.Second, func() bool { return vrrptest.HasVIP(p.d1, vip) && vrrptest.HasVIP(p.d2, vip) },
		"with different passwords both should be master")
	d2.WaitLog(t, "(VI_1) received an invalid passwd!", 1, 3*time.Second)
	st := status(t, d1)
	if st.Instances[0].Stats.Dropped[vrrp.DropAuth] == 0 || st.Instances[0].State != "MASTER" {
		t.Fatalf("vipd did not count the wrong password: %+v", st.Instances[0])
	}
}

// status asks a vrrpnode for its status (SIGUSR1 writes it to a file).
func status(t *testing.T, d *vrrptest.Director) vrrp.Status {
	t.Helper()
	path := filepath.Join(d.Dir, "status.json")
	os.Remove(path)
	if err := d.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var st vrrp.Status
	lab.Eventually(t, 3*time.Second, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(b, &st) == nil
	}, "no status from %s", d.Host.Name)
	return st
}
