package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lab"

	"github.com/vipd/vipd/internal/notify"
	"github.com/vipd/vipd/internal/vrrp"
)

// TestNotifyPriorityChangesResolved checks keepalived's precedence for
// notify_priority_changes: the instance's own setting (even "no"), else
// its sync group's, else the global vrrp_notify_priority_changes.
func TestNotifyPriorityChangesResolved(t *testing.T) {
	c := parse(t, `
global_defs {
    vrrp_notify_priority_changes
}
vrrp_sync_group G_OFF {
    group { VI_GRP }
    notify_priority_changes no
}
vrrp_instance VI_GLOBAL {
    interface lo
    virtual_router_id 1
    virtual_ipaddress { 198.18.0.1 }
}
vrrp_instance VI_OWN_OFF {
    interface lo
    virtual_router_id 2
    notify_priority_changes false
    virtual_ipaddress { 198.18.0.2 }
}
vrrp_instance VI_GRP {
    interface lo
    virtual_router_id 3
    virtual_ipaddress { 198.18.0.3 }
}
`)
	got := map[string]bool{}
	for _, ic := range vrrpConfig(c, nil, slog.Default()).Instances {
		got[ic.Name] = ic.NotifyPriorityChanges
	}
	want := map[string]bool{"VI_GLOBAL": true, "VI_OWN_OFF": false, "VI_GRP": false}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: notify priority changes %v, want %v", name, got[name], w)
		}
	}

	c = parse(t, `
vrrp_sync_group G_ON {
    group { VI_A }
    notify_priority_changes
}
vrrp_instance VI_A {
    interface lo
    virtual_router_id 1
    virtual_ipaddress { 198.18.0.1 }
}
vrrp_instance VI_B {
    interface lo
    virtual_router_id 2
    virtual_ipaddress { 198.18.0.2 }
}
`)
	got = map[string]bool{}
	for _, ic := range vrrpConfig(c, nil, slog.Default()).Instances {
		got[ic.Name] = ic.NotifyPriorityChanges
	}
	if !got["VI_A"] || got["VI_B"] {
		t.Errorf("sync group on, no global: got %v, want VI_A only", got)
	}
}

// TestVRRPEventOf checks that the priority events the VRRP core emits
// reach the notifier (which writes them to the FIFOs) instead of being
// dropped.
func TestVRRPEventOf(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  notify.State
	}{
		{"MASTER", notify.StateMaster},
		{"BACKUP", notify.StateBackup},
		{"FAULT", notify.StateFault},
		{"STOP", notify.StateStop},
		{"MASTER_RX_LOWER_PRI", notify.EventMasterRxLowerPri},
		{"MASTER_PRIORITY", notify.EventMasterPriority},
		{"BACKUP_PRIORITY", notify.EventBackupPriority},
	} {
		ev, ok := vrrpEventOf(vrrp.Notification{Type: "INSTANCE", Name: "VI_1", State: tc.state, Priority: 80})
		if !ok || ev.State != tc.want || ev.Priority != 80 || ev.Name != "VI_1" || ev.Group {
			t.Errorf("%s: got %+v ok=%v, want state %s priority 80", tc.state, ev, ok, tc.want)
		}
	}
	for _, s := range []string{"INIT", "DELETED"} {
		if _, ok := vrrpEventOf(vrrp.Notification{State: s}); ok {
			t.Errorf("%s: want no event", s)
		}
	}
}

// TestRSInitNotifies runs a daemon (checkers only, stand-in data plane)
// whose real server starts up: with rs_init_notifies its notify_up runs
// once at start; without, it does not.
func TestRSInitNotifies(t *testing.T) {
	for _, on := range []bool{true, false} {
		out := filepath.Join(t.TempDir(), "out")
		conf := fmt.Sprintf(`global_defs {
    %s
}
virtual_server 127.0.0.1 18080 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 19080 {
        weight 1
        notify_up "/bin/sh -c 'echo up >> %s'"
    }
}
virtual_server 127.0.0.1 18081 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 19081 {
        weight 1
        notify_up "/bin/sh -c 'echo marker >> %s'"
    }
}
`, map[bool]string{true: "rs_init_notifies", false: "rs_init_notifies no"}[on], out, out)
		d, file := runDaemon(t, conf, &refusingDataplane{})
		if on {
			lab.Eventually(t, 10*time.Second, func() bool {
				b, _ := os.ReadFile(out)
				return strings.Count(string(b), "up\n") == 1 && strings.Count(string(b), "marker\n") == 1
			}, "rs_init_notifies: notify_up did not run once per server at start")
			continue
		}
		// Without: a reload adding a server with the option on is the
		// marker that the start's notifications would have come by now
		// (the daemon handles events in order).
		if err := reloadWith(t, d, file, strings.Replace(conf, "rs_init_notifies no", "rs_init_notifies", 1)+
			fmt.Sprintf("virtual_server 127.0.0.1 18082 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 127.0.0.1 19082 {\n weight 1\n notify_up \"/bin/sh -c 'echo marker2 >> %s'\"\n }\n}\n", out)); err != nil {
			t.Fatal(err)
		}
		lab.Eventually(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(out)
			return strings.Contains(string(b), "marker2")
		}, "the server a reload adds was not notified")
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "up\n") || strings.Count(string(b), "marker\n") != 0 {
			t.Errorf("without rs_init_notifies the start notified: %q", b)
		}
	}
}

// TestStartupShutdownScripts: startup_script has run to its end before
// the daemon is ready; shutdown_script runs when it stops, after
// everything else, and a script over its timeout is killed so that the
// stop is not held up.
func TestStartupShutdownScripts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	conf := fmt.Sprintf(`global_defs {
    startup_script "/bin/sh -c 'sleep 0.3; echo start >> %[1]s'"
    shutdown_script "/bin/sh -c 'echo stop >> %[1]s; exec sleep 30'"
    shutdown_script_timeout 1
}
`, out) + vsConf(18090)
	file := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigFile: file, Dataplane: config.DataplaneProxy, CheckOnly: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d.openDP = func() (dataplane.Dataplane, error) { return &refusingDataplane{}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	lab.Eventually(t, 10*time.Second, func() bool {
		return (*source)(d).Ready() == nil && !(*source)(d).Status().ConfigLoaded.IsZero()
	}, "daemon not ready")
	if b, _ := os.ReadFile(out); string(b) != "start\n" {
		t.Fatalf("ready before startup_script finished: out = %q", b)
	}
	cancel()
	stopped := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return: the shutdown_script timeout was not enforced")
	}
	if b, _ := os.ReadFile(out); string(b) != "start\nstop\n" {
		t.Errorf("after stop: out = %q, want start then stop", b)
	}
	if took := time.Since(stopped); took > 8*time.Second {
		t.Errorf("stop took %v with a 1 s shutdown_script_timeout", took)
	}
}

// TestTrackGroup: the instances of a track_group track it as an
// external object (weight 0: FAULT while down), and the routing worker
// reports a group down while one of its static items is failing, up
// when it is installed again, and only on changes.
func TestTrackGroup(t *testing.T) {
	c := parse(t, `
track_group TG {
    group { VI_1 }
}
static_ipaddress {
    198.18.5.1/24 dev dummy0 track_group TG
    198.18.5.2/24 dev dummy0
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 1
    virtual_ipaddress { 198.18.0.1 }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 2
    virtual_ipaddress { 198.18.0.2 }
}
`)
	vc := vrrpConfig(c, nil, slog.Default())
	for _, ic := range vc.Instances {
		want := 0
		if ic.Name == "VI_1" {
			want = 1
		}
		if len(ic.TrackExternal) != want || (want == 1 && (ic.TrackExternal[0].Name != "track_group TG" || ic.TrackExternal[0].Weight != nil)) {
			t.Errorf("%s tracks %+v", ic.Name, ic.TrackExternal)
		}
	}
	plan, _ := planRouting(c)
	var heard []string
	r := &routing{log: slog.New(slog.DiscardHandler), plan: plan, failing: map[string]bool{}, groupUp: map[string]bool{},
		onTrack: func(g string, up bool) { heard = append(heard, fmt.Sprintf("%s %v", g, up)) }}
	r.reportGroups()
	untracked, tracked := plan.static[1].key, plan.static[0].key
	r.failing[untracked] = true
	r.reportGroups()
	r.failing[tracked] = true
	r.reportGroups()
	r.reportGroups()
	delete(r.failing, tracked)
	r.reportGroups()
	if got, want := strings.Join(heard, ", "), "TG true, TG false, TG true"; got != want {
		t.Errorf("heard %q, want %q", got, want)
	}
}

func TestLinkDelaysConfig(t *testing.T) {
	c := parse(t, `
interface_up_down_delays {
    eth0 2 1
    eth1 3
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress { 198.18.0.1 }
}
`)
	got := vrrpConfig(c, nil, slog.Default()).LinkDelays
	if got["eth0"] != (vrrp.LinkDelay{Down: 2 * time.Second, Up: time.Second}) || got["eth1"] != (vrrp.LinkDelay{Down: 3 * time.Second, Up: 3 * time.Second}) {
		t.Errorf("link delays %+v", got)
	}
}

// TestVMACMapping checks how use_vmac reaches the VRRP configuration:
// keepalived's default names (vmac_prefix.VRID; an IPv6 instance whose
// name is taken tries PREFIX6.VRID), a MAC of five octets completed with
// the VRID, VIPs without dev on the macvlan, and vmac_xmit_base alone
// ignored.
func TestVMACMapping(t *testing.T) {
	c := parse(t, `
global_defs {
    vmac_prefix vr
}
vrrp_instance V4 {
    interface lo
    virtual_router_id 7
    use_vmac
    virtual_ipaddress {
        198.18.0.1/24
        198.18.1.1/24 dev lo
    }
    virtual_ipaddress_excluded {
        2001:db8::7/64
        198.18.2.1/24 dev eth9
    }
}
vrrp_instance V6 {
    interface lo
    virtual_router_id 7
    use_vmac 02:00:00:00:01 netlink_notify_msg
    vmac_xmit_base
    virtual_ipaddress { 2001:db8::1/64 }
}
vrrp_instance NAMED {
    interface lo
    virtual_router_id 8
    use_vmac name group
    virtual_ipaddress { 198.18.0.2 }
}
vrrp_instance BASEONLY {
    interface lo
    virtual_router_id 9
    vmac_xmit_base
    virtual_ipaddress { 198.18.0.3 }
}
`)
	got := map[string]vrrp.InstanceConfig{}
	for _, ic := range vrrpConfig(c, nil, slog.Default()).Instances {
		got[ic.Name] = ic
	}
	check := func(name string, want *vrrp.VMACConfig) {
		t.Helper()
		g := got[name].VMAC
		if (g == nil) != (want == nil) || (g != nil && *g != *want) {
			t.Errorf("%s: VMAC %+v, want %+v", name, g, want)
		}
	}
	check("V4", &vrrp.VMACConfig{Name: "vr.7"})
	check("V6", &vrrp.VMACConfig{Name: "vr6.7", MAC: "02:00:00:00:01:07", XmitBase: true})
	check("NAMED", &vrrp.VMACConfig{Name: "group"})
	check("BASEONLY", nil)
	if v := got["V4"].VIPs; len(v) != 2 || v[0].Dev != "vr.7" || v[1].Dev != "vr.7" {
		t.Errorf("V4 VIPs %+v: want both on vr.7 (no dev, dev the instance's interface)", v)
	}
	if v := got["V4"].ExcludedVIPs; len(v) != 2 || v[0].Dev != "lo" || v[1].Dev != "eth9" {
		t.Errorf("V4 excluded VIPs %+v: want the IPv6 one on lo, the other on eth9", v)
	}
	if n := vmacName("averyverylongprefix", 255, false, nil); n != "averyverylo.255" {
		t.Errorf("long prefix: %q, want averyverylo.255", n)
	}
}

func TestRealtimeConfig(t *testing.T) {
	inst := "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress { 198.18.0.1 }\n}\n"
	c := parse(t, "global_defs {\n    vrrp_rt_priority 20\n    vrrp_no_swap\n}\n"+inst)
	vc := vrrpConfig(c, nil, slog.Default())
	if vc.RTPriority != 20 || !vc.ProcessRealtime || !c.Global.VRRPNoSwap {
		t.Errorf("vrrp_rt_priority 20, vrrp_no_swap: RTPriority %d ProcessRealtime %v NoSwap %v", vc.RTPriority, vc.ProcessRealtime, c.Global.VRRPNoSwap)
	}
	// Without the keywords: the VRRP thread alone real-time, nothing locked.
	c = parse(t, inst)
	vc = vrrpConfig(c, nil, slog.Default())
	if vc.RTPriority != 0 || vc.ProcessRealtime || vc.NoRealtime || c.Global.VRRPNoSwap {
		t.Errorf("defaults: %+v NoSwap %v", vc, c.Global.VRRPNoSwap)
	}
}
