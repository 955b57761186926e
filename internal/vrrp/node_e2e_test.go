package vrrp_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/vrrp"
	"github.com/vipd/vipd/internal/vrrp/vrrptest"
)

// writeConfig replaces a vrrpnode's configuration file.
func writeConfig(t *testing.T, d *vrrptest.Director, cfg vrrp.Config) {
	t.Helper()
	b, _ := json.MarshalIndent(cfg, "", "  ")
	tmp := filepath.Join(d.Dir, "vrrp.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Dir, "vrrp.json")); err != nil {
		t.Fatal(err)
	}
}

// watchVIP polls the VIP every 5 ms in the background and counts the
// samples where it was missing.
func watchVIP(t *testing.T, h *lab.Host, a netip.Addr) (missing *atomic.Int64, stop func()) {
	missing = &atomic.Int64{}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if ok, err := vrrptest.VIPState(h, a); err == nil && !ok {
				missing.Add(1)
			}
		}
	}()
	return missing, func() { close(done); <-finished }
}

// TestHotReload: a reload leaves unchanged instances alone (no state
// change, no VIP flap, no GARP), adds and removes instances, and changes
// an instance's priority in place.
func TestHotReload(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	s := spec(3, 100*time.Millisecond, 150)
	d := vrrptest.Start(t, p.d1, "vipd", vrrptest.VipdCommand, s)
	p.waitMaster(t, p.d1, 5*time.Second)
	cfg := s.Config()
	vi2 := cfg.Instances[0]
	vi2.Name, vi2.VRID = "VI_2", 52
	vi2.VIPs = []vrrp.VIP{{Prefix: netip.MustParsePrefix("198.18.0.101/24"), Dev: "eth0"}}

	missing, stop := watchVIP(t, p.d1, vip)
	garps := strings.Count(d.Log(), "(VI_1) Sending/queueing gratuitous ARPs")
	entering := strings.Count(d.Log(), "(VI_1) Entering")

	// 1. Add VI_2.
	writeConfig(t, d, vrrp.Config{Instances: []vrrp.InstanceConfig{cfg.Instances[0], vi2}})
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, "(VI_2) Entering MASTER STATE", 1, 5*time.Second)
	lab.Eventually(t, time.Second, func() bool { return vrrptest.HasVIP(p.d1, netip.MustParseAddr("198.18.0.101")) }, "VI_2's VIP missing")

	// 2. Change VI_1's priority: in place.
	changed := cfg.Instances[0]
	changed.Priority = 120
	writeConfig(t, d, vrrp.Config{Instances: []vrrp.InstanceConfig{changed, vi2}})
	_ = d.Signal(syscall.SIGHUP)
	d.WaitLog(t, "(VI_1) Changing effective priority from 150 to 120", 1, 5*time.Second)

	// 3. Remove VI_2: its VIP goes, VI_1 stays.
	writeConfig(t, d, vrrp.Config{Instances: []vrrp.InstanceConfig{changed}})
	_ = d.Signal(syscall.SIGHUP)
	lab.Eventually(t, 5*time.Second, func() bool { return !vrrptest.HasVIP(p.d1, netip.MustParseAddr("198.18.0.101")) }, "VI_2's VIP left behind")

	// 4. An invalid configuration is refused and changes nothing.
	bad := changed
	bad.VRID = 300
	writeConfig(t, d, vrrp.Config{Instances: []vrrp.InstanceConfig{bad}})
	_ = d.Signal(syscall.SIGHUP)
	d.WaitLog(t, "reload refused, running configuration kept", 1, 5*time.Second)
	// Watch the VIP while VI_1 sends three more adverts (300 ms): the
	// refused reload must not disturb it either.
	sent := status(t, d).Instances[0].Stats.AdvertSent
	lab.Eventually(t, 5*time.Second, func() bool { return status(t, d).Instances[0].Stats.AdvertSent >= sent+3 },
		"VI_1 stopped advertising after the refused reload")
	stop()

	if n := missing.Load(); n != 0 {
		t.Errorf("VI_1's VIP was missing in %d samples during the reloads", n)
	}
	if n := strings.Count(d.Log(), "(VI_1) Sending/queueing gratuitous ARPs"); n != garps {
		t.Errorf("reload sent %d extra GARP bursts for VI_1", n-garps)
	}
	if n := strings.Count(d.Log(), "(VI_1) Entering"); n != entering {
		t.Errorf("VI_1 changed state %d times during reloads:\n%s", n-entering, d.Log())
	}
	st := status(t, d)
	if len(st.Instances) != 1 || st.Instances[0].State != "MASTER" || st.Instances[0].EffectivePriority != 120 {
		t.Fatalf("status after reloads: %+v", st.Instances)
	}
}

// TestTrackScript: a failing vrrp_script with a negative weight lowers the
// master's priority below the backup's, which takes over; when it
// succeeds again the master preempts back.
func TestTrackScript(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	flagFile := filepath.Join(t.TempDir(), "maintenance")
	s1 := spec(3, 100*time.Millisecond, 150)
	s1.Extra = func(cfg *vrrp.Config) {
		cfg.Scripts = []vrrp.ScriptConfig{{Name: "chk", Script: "test ! -e " + flagFile, Interval: 200 * time.Millisecond, Weight: -60, Fall: 2, Rise: 2}}
		cfg.Instances[0].TrackScripts = []vrrp.TrackRef{{Name: "chk"}}
	}
	d1 := vrrptest.Start(t, p.d1, "vipd", vrrptest.VipdCommand, s1)
	vrrptest.Start(t, p.d2, "vipd", vrrptest.VipdCommand, spec(3, 100*time.Millisecond, 100))
	p.waitMaster(t, p.d1, 5*time.Second)
	d1.WaitLog(t, "VRRP_Script(chk) succeeded", 1, 5*time.Second)

	if err := os.WriteFile(flagFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d1.WaitLog(t, "VRRP_Script(chk) failed (exited with status 1)", 1, 5*time.Second)
	d1.WaitLog(t, "(VI_1) Changing effective priority from 150 to 90", 1, time.Second)
	lab.Eventually(t, 5*time.Second, func() bool { return vrrptest.HasVIP(p.d2, vip) && !vrrptest.HasVIP(p.d1, vip) }, "d2 did not take over from a degraded d1")

	os.Remove(flagFile)
	d1.WaitLog(t, "(VI_1) Changing effective priority from 90 to 150", 1, 5*time.Second)
	lab.Eventually(t, 5*time.Second, func() bool { return vrrptest.HasVIP(p.d1, vip) && !vrrptest.HasVIP(p.d2, vip) }, "d1 did not preempt back")
}

// TestBadAdvertsDroppedAndCounted injects adverts that would make the
// master step down if accepted (priority 200): wrong TTL, bad checksum,
// wrong version, truncated, unknown VRID. None changes the state; each is
// counted under its reason.
func TestBadAdvertsDroppedAndCounted(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	d := vrrptest.Start(t, p.d1, "vipd", vrrptest.VipdCommand, spec(2, time.Second, 100))
	p.waitMaster(t, p.d1, 10*time.Second)
	good := func() vrrp.Packet {
		return vrrp.Packet{Version: 2, Type: 1, VRID: 51, Priority: 200, AdvertInt: 1, Addrs: []netip.Addr{vip}}
	}
	src, dst := p.d2.Addr, vrrp.MulticastGroup4
	marshal := func(pk vrrp.Packet) []byte {
		b, err := pk.Marshal(src, dst, vrrp.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := marshal(good())
	vrrptest.Inject(t, p.d2, ok, src, dst, 64) // TTL
	bad := append([]byte(nil), ok...)
	bad[6] ^= 0xff
	vrrptest.Inject(t, p.d2, bad, src, dst, 255) // checksum
	v3 := good()
	v3.Version, v3.AdvertInt = 3, 100
	vrrptest.Inject(t, p.d2, marshal(v3), src, dst, 255) // version
	vrrptest.Inject(t, p.d2, ok[:10], src, dst, 255)     // length
	other := good()
	other.VRID = 99
	vrrptest.Inject(t, p.d2, marshal(other), src, dst, 255) // unknown VRID
	// Wait until every injected packet is counted, then check the exact
	// counts (a drop counted twice would show).
	var st vrrp.Status
	lab.Eventually(t, 5*time.Second, func() bool {
		st = status(t, d)
		for _, r := range []string{vrrp.DropTTL, vrrp.DropChecksum, vrrp.DropVersion, vrrp.DropLength} {
			if st.Instances[0].Stats.Dropped[r] == 0 {
				return false
			}
		}
		return st.UnknownVRID["eth0"] > 0
	}, "not every injected packet was counted as dropped")
	in := st.Instances[0]
	if in.State != "MASTER" || in.Transitions != 2 {
		t.Fatalf("dropped adverts changed the state: %+v", in)
	}
	for _, r := range []string{vrrp.DropTTL, vrrp.DropChecksum, vrrp.DropVersion, vrrp.DropLength} {
		if in.Stats.Dropped[r] != 1 {
			t.Errorf("Dropped[%s] = %d, want 1 (all: %v)", r, in.Stats.Dropped[r], in.Stats.Dropped)
		}
	}
	if st.UnknownVRID["eth0"] != 1 {
		t.Errorf("unknown VRID count %v", st.UnknownVRID)
	}
	// The counter moves before the daemon's log line has crossed its
	// output pipe: wait for the line rather than read the log once.
	d.WaitLog(t, "(VI_1) invalid TTL/HL. Received 64 and expect 255", 1, 2*time.Second)
	// And a valid one from a higher priority router is obeyed.
	vrrptest.Inject(t, p.d2, ok, src, dst, 255)
	d.WaitLog(t, "(VI_1) Master received advert from 198.18.0.12 with higher priority 200, ours 100", 1, 2*time.Second)
}
