package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

// trackProcessConf is one configuration for both daemons, each tracking
// its own sleep (the two run on one kernel, which reports every process
// to both): VI_1 faults while the sleep of `param` is gone (weight 0),
// VI_2 loses 60 of its priority while the sleep of `param2` is gone.
func trackProcessConf(iface, mask, state, prio, param, param2 string) string {
	return strings.NewReplacer("IFACE", iface, "MASK", mask, "STATE", state, "PRIO", prio, "PARAM2", param2, "PARAM", param).Replace(`global_defs {
    router_id trackproc
}
vrrp_track_process proc_ha {
    process sleep 86400 PARAM
    param_match initial
}
vrrp_track_process proc_wt {
    process sleep 86400 PARAM2
    weight -60
}
vrrp_instance VI_1 {
    state STATE
    interface IFACE
    virtual_router_id 71
    priority PRIO
    version 3
    advert_int 0.5
    track_process {
        proc_ha
    }
    virtual_ipaddress {
        198.18.0.100/MASK dev IFACE
    }
}
vrrp_instance VI_2 {
    state STATE
    interface IFACE
    virtual_router_id 72
    priority PRIO
    version 3
    advert_int 0.5
    track_process {
        proc_wt
    }
    virtual_ipaddress {
        198.18.0.101/MASK dev IFACE
    }
}
`)
}

// hostProc is a program run in the test's own network namespace (not a
// lab host's), killed at cleanup.
type hostProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *hostProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}
func (p *hostProc) Output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

func startHostProc(t *testing.T, name string, args ...string) *hostProc {
	t.Helper()
	p := &hostProc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.Output())
		}
	})
	return p
}

func (p *hostProc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v did not die", p.cmd.Args)
	}
}

// TestTrackProcessWithKeepalived: vipd and keepalived 2.2.7 share two
// VIPs, each tracking a process of its own. vipd is master of both.
// Killing vipd's process puts VI_1 in FAULT (weight 0) and costs VI_2 60
// of its priority: keepalived takes both over. Restarted, the processes
// bring vipd back (preempting). Then keepalived's process dies and comes
// back: keepalived logs the same lines vipd did.
//
// The kernel's process events reach the initial network namespace only,
// and Debian's keepalived is built without net_namespace (which would
// open its process monitor there before entering the lab): so keepalived
// runs in the test's own namespace on a veth of its own cabled to the lab
// bridge, with a /32 address and /32 VIPs (no route to the lab subnet
// there), interface that port only. vipd runs in a lab host and opens its
// monitor in its parent's namespace.
func TestTrackProcessWithKeepalived(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "keepalived", "sleep")
	l := lab.New(t)
	dv := l.Host("vipd")
	port := hostPort(t, l, "198.18.0.250/32")
	nonce := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	// sleep adds its arguments: 86400 + 0.000...; unique per process.
	pv, pv2, pk, pk2 := "0.1"+nonce, "0.2"+nonce, "0.3"+nonce, "0.4"+nonce
	sleeper := func(param string) *hostProc { return startHostProc(t, "sleep", "86400", param) }
	sv, sv2, sk, _ := sleeper(pv), sleeper(pv2), sleeper(pk), sleeper(pk2)

	dir := t.TempDir()
	kconf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(kconf, []byte(trackProcessConf(port, "32", "BACKUP", "100", pk, pk2)), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startHostProc(t, "keepalived", "-n", "-l", "-D", "-P", "-f", kconf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"), "-b", filepath.Join(dir, "b.pid"))
	// keepalived first: it waits as BACKUP, then takes both VIPs.
	lab.Eventually(t, 10*time.Second, func() bool { return strings.Contains(k.Output(), "(VI_2) Entering MASTER STATE") }, "keepalived not MASTER")
	v := startVipd(t, dv, trackProcessConf("eth0", "24", "BACKUP", "150", pv, pv2))

	has := func(h *lab.Host, a string) bool {
		if h != nil {
			return hasAddr(h, a)
		}
		out, err := exec.Command("ip", "-o", "addr", "show", "dev", port).CombinedOutput()
		return err == nil && strings.Contains(string(out), " "+a+"/")
	}
	masterOf := func(h *lab.Host, vips ...string) func() bool {
		return func() bool {
			for _, a := range vips {
				if !has(h, a) {
					return false
				}
			}
			return true
		}
	}
	var dk *lab.Host // keepalived: the test's namespace
	lab.Eventually(t, 10*time.Second, masterOf(dv, "198.18.0.100", "198.18.0.101"), "vipd (150) did not become master of both VIPs")
	lab.Eventually(t, 5*time.Second, func() bool { return !has(dk, "198.18.0.100") && !has(dk, "198.18.0.101") }, "keepalived kept a VIP")
	st := v.status()
	if len(st.Processes) != 2 || st.Processes[0].State != "UP" || st.Processes[0].Count != 1 {
		t.Fatalf("vipd's tracked processes: %+v", st.Processes)
	}

	// vipd's processes die: VI_1 faults, VI_2 drops to 90; keepalived
	// (100) takes both.
	sv.kill(t)
	sv2.kill(t)
	lab.Eventually(t, 5*time.Second, func() bool { return v.state("VI_1") == "FAULT" }, "vipd VI_1 not FAULT: %s", v.state("VI_1"))
	lab.Eventually(t, 5*time.Second, masterOf(dk, "198.18.0.100", "198.18.0.101"), "keepalived did not take over both VIPs")
	lab.Eventually(t, 5*time.Second, func() bool { return !hasAddr(dv, "198.18.0.100") && !hasAddr(dv, "198.18.0.101") }, "vipd kept a VIP")
	for _, in := range v.status().Instances {
		if in.Name == "VI_2" && (in.EffectivePriority != 90 || in.State != "BACKUP") {
			t.Fatalf("vipd VI_2: %s at %d, want BACKUP at 90", in.State, in.EffectivePriority)
		}
	}

	// They come back: vipd preempts both.
	sleeper(pv)
	sleeper(pv2)
	lab.Eventually(t, 10*time.Second, masterOf(dv, "198.18.0.100", "198.18.0.101"), "vipd did not take the VIPs back")
	lab.Eventually(t, 5*time.Second, func() bool { return !has(dk, "198.18.0.100") && !has(dk, "198.18.0.101") }, "keepalived kept a VIP")

	// keepalived's process dies and comes back.
	sk.kill(t)
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(k.Output(), "(VI_1) Entering FAULT STATE") }, "keepalived VI_1 not FAULT")
	if st := v.state("VI_1"); st != "MASTER" {
		t.Fatalf("vipd VI_1 %s after keepalived's process died, want MASTER", st)
	}
	sleeper(pk)
	lab.Eventually(t, 5*time.Second, func() bool {
		_, after, ok := strings.Cut(k.Output(), "Quorum gained for tracked process proc_ha")
		return ok && strings.Contains(after, "(VI_1) Entering BACKUP STATE")
	}, "keepalived VI_1 not BACKUP again")

	// The same events, the same lines.
	vlog := v.proc.Output()
	for _, want := range []string{
		"Quorum lost for tracked process proc_ha",
		"Quorum lost for tracked process proc_wt",
		"Quorum gained for tracked process proc_ha",
		"Quorum gained for tracked process proc_wt",
		"(VI_1) Entering FAULT STATE",
		"(VI_2) Changing effective priority from 150 to 90",
	} {
		if !strings.Contains(vlog, want) {
			t.Errorf("vipd did not log %q", want)
		}
	}
	for _, want := range []string{
		"Quorum lost for tracked process proc_ha",
		"Quorum gained for tracked process proc_ha",
		"(VI_1) Entering FAULT STATE",
	} {
		if !strings.Contains(k.Output(), want) {
			t.Errorf("keepalived did not log %q", want)
		}
	}
	if t.Failed() {
		t.Logf("vipd:\n%s\nkeepalived:\n%s", vlog, k.Output())
	}
}

// hostPort cables a veth of the test's own network namespace to the lab
// bridge, with addr (a /32: no route to the lab subnet here), and
// returns its name; it is deleted at cleanup.
func hostPort(t *testing.T, l *lab.Lab, addr string) string {
	t.Helper()
	port, peer := l.Prefix+"-k", l.Prefix+"-kb"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("link", "add", port, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", port).Run() })
	run("link", "set", peer, "netns", l.Bridge)
	run("-n", l.Bridge, "link", "set", peer, "master", "br0")
	run("-n", l.Bridge, "link", "set", peer, "up")
	run("addr", "add", addr, "dev", port)
	run("link", "set", port, "up")
	return port
}

// TestTrackProcessStartAndReload: an instance configured MASTER whose
// tracked process does not run starts in FAULT without ever holding its
// VIP (the first read of /proc comes before the instance starts), with
// keepalived's line; a reload that tracks a process that runs brings it
// up, and vipctl's status document counts it.
func TestTrackProcessStartAndReload(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "sleep")
	l := lab.New(t)
	d1 := l.Host("d1")
	nonce := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	conf := func(param string) string {
		return `
vrrp_track_process proc_ha {
    process sleep 86400 ` + param + `
}
` + soloMasterConf("    track_process {\n        proc_ha\n    }\n")
	}
	d := startVipd(t, d1, conf("0.5"+nonce))
	lab.Eventually(t, 5*time.Second, func() bool { return d.state("VI_1") == "FAULT" }, "VI_1 not FAULT: %s", d.state("VI_1"))
	out := d.proc.Output()
	if !strings.Contains(out, "(VI_1) entering FAULT state (tracked process proc_ha quorum not achieved)") {
		t.Errorf("vipd did not log keepalived's start-up line:\n%s", out)
	}
	// keepalived goes from INIT straight to FAULT: the instance starts
	// knowing its process.
	if strings.Contains(out, "Entering BACKUP STATE") || strings.Contains(out, "Entering MASTER STATE") || strings.Contains(out, "setting VIPs") || hasAddr(d1, "198.18.0.100") {
		t.Fatalf("VI_1 started (BACKUP or MASTER) before its process was known:\n%s", out)
	}

	// Reload onto a process that runs.
	startHostProc(t, "sleep", "86400", "0.6"+nonce)
	if err := os.WriteFile(d.conf, []byte(conf("0.6"+nonce)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.NewClient(d.sock).Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	lab.Eventually(t, 5*time.Second, func() bool { return d.state("VI_1") == "MASTER" && hasAddr(d1, "198.18.0.100") }, "VI_1 not MASTER after the reload: %s", d.state("VI_1"))
	if p := d.status().Processes; len(p) != 1 || p[0].State != "UP" || p[0].Count != 1 {
		t.Fatalf("status after the reload: %+v", p)
	}
}
