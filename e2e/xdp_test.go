package e2e

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/xdp"
	"github.com/vipd/vipd/internal/lab"
	"golang.org/x/sys/unix"
)

var xdpConf = `global_defs {
    router_id xdp_d1
}

` + vipInstance("VI_1", "MASTER", 61, 150, "1") + `
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lvs_sched mh
    mh-port
    lvs_method DR
    protocol TCP

` + tcpCheckedServers("198.18.0.21", "198.18.0.22", "198.18.0.23") + "}\n"

// TestXDPDirector runs vipd --dataplane xdp as a VRRP master in front of
// three DR real servers (vipctl realserver up, nginx): clients reach all
// three through the VIP, vipctl list shows the service with its counters,
// a failed TCP_CHECK takes a server out of the Maglev table, stopping
// vipd detaches the program and leaves the pinned maps for the next start
// (an open connection survives the restart), and a crash leaves the
// program forwarding until the next vipd takes it over.
//
// Lab facts (docs/dataplanes.md): XDP_TX frames leave a veth only when its
// peer runs an XDP program, so the director's bridge port gets one; the
// client's veth sends with tx checksum offload off.
func TestXDPDirector(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "nginx", "ethtool")
	l := lab.New(t)
	client := l.Host("client", "198.18.0.11/24")
	d1 := l.Host("d1", "198.18.0.12/24")
	const vip = "198.18.0.100"
	procs := map[string]*lab.Proc{}
	for i, a := range []string{"198.18.0.21/24", "198.18.0.22/24", "198.18.0.23/24"} {
		h := l.Host("rs"+string(rune('1'+i)), a)
		realServerUp(t, h, vip)
		procs[h.Name] = nginx(t, h, h.Name)
	}
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	pass, err := xdp.AttachPass(l.Bridge, d1.Port)
	if err != nil {
		t.Fatalf("XDP on d1's peer veth: %v", err)
	}
	defer pass.Close()

	bpffs := filepath.Join(t.TempDir(), "bpffs")
	if err := os.Mkdir(bpffs, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", bpffs, "bpf", 0, ""); err != nil {
		t.Fatalf("mounting bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bpffs, unix.MNT_DETACH) })
	pins := filepath.Join(bpffs, "vipd")

	d := startVipd(t, d1, xdpConf, "--dataplane", "xdp", "--xdp-pins", pins, "--metrics", "198.18.0.12:9650")
	lab.Eventually(t, 10*time.Second, func() bool { return d.state("VI_1") == "MASTER" }, "d1 not MASTER")
	if out, _ := d1.Run("ip", "-d", "link", "show", "eth0"); !strings.Contains(out, "xdp") {
		t.Fatalf("no XDP program on d1's eth0:\n%s", out)
	}

	reach := func(n int) map[string]int {
		seen := map[string]int{}
		for range n {
			b, err := getPath(client, vip+":80", "/", 2*time.Second)
			if err != nil {
				seen["error: "+err.Error()]++
				continue
			}
			seen[b]++
		}
		return seen
	}
	var seen map[string]int
	lab.Eventually(t, 15*time.Second, func() bool {
		seen = reach(30)
		return len(seen) == 3 && seen["rs1"] > 0 && seen["rs2"] > 0 && seen["rs3"] > 0
	}, "30 requests through the VIP reached %v, want rs1, rs2 and rs3 only\n%s", &seen, d.proc.Output())

	vipctl := lab.Binary(t, "./cmd/vipctl")
	list := func(args ...string) string {
		out, err := d1.Run(vipctl, append([]string{"--socket", d.sock, "list", "-n"}, args...)...)
		if err != nil {
			t.Fatalf("vipctl list: %v\n%s", err, out)
		}
		return out
	}
	if out := list(); !strings.Contains(out, "TCP  198.18.0.100:80 mh") || strings.Count(out, "Route") != 3 {
		t.Errorf("vipctl list -n:\n%s", out)
	}
	t.Logf("vipctl list -n --stats:\n%s", list("--stats"))
	if out := list("--stats"); strings.Contains(out, "198.18.0.100:80                     0        0        0") {
		t.Errorf("vipctl list -n --stats shows no traffic:\n%s", out)
	}

	// -c: the flow table, as ipvsadm -L -n -c lists connections.
	if out := list("-c"); !strings.Contains(out, "ESTABLISHED") || !strings.Contains(out, "198.18.0.100:80") {
		t.Errorf("vipctl list -n -c shows no flow:\n%s", out)
	}
	// Metrics: the same counters.
	metrics, err := getPath(d1, "198.18.0.12:9650", "/metrics", 2*time.Second)
	if err != nil || !strings.Contains(metrics, "vipd_virtual_server_in_packets_total") {
		t.Errorf("metrics: %v\n%.2000s", err, metrics)
	} else {
		counted, forwarded, newFlows := false, false, false
		for _, ln := range strings.Split(metrics, "\n") {
			nonZero := !strings.HasSuffix(ln, " 0")
			switch {
			case strings.HasPrefix(ln, "vipd_virtual_server_connections_total{"):
				counted = counted || nonZero
			case strings.HasPrefix(ln, `vipd_dataplane_packets_total{reason="tx"}`):
				forwarded = nonZero
			case strings.HasPrefix(ln, `vipd_dataplane_packets_total{reason="flow_new"}`):
				newFlows = nonZero
			}
		}
		if !counted {
			t.Errorf("metrics count no connection of the xdp service:\n%.3000s", metrics)
		}
		if !forwarded || !newFlows {
			t.Errorf("metrics: the packet path's counters show no forwarded packet or new flow (tx %v, flow_new %v):\n%.3000s", forwarded, newFlows, metrics)
		}
	}

	// --rate: the per-CPU counters feed IPVS's estimator every 2 s.
	lab.Eventually(t, 8*time.Second, func() bool {
		for _, ln := range strings.Split(list("--rate"), "\n") {
			if f := strings.Fields(ln); len(f) > 3 && f[1] == "198.18.0.100:80" {
				return f[3] != "0"
			}
		}
		return false
	}, "vipctl list -n --rate shows no packet rate:\n%s", list("--rate"))

	// rs3's nginx stops: its TCP_CHECK fails, vipd takes it out, and no
	// request reaches it any more (nor fails).
	stop(t, procs["rs3"])
	lab.Eventually(t, 10*time.Second, func() bool { return !strings.Contains(list(), "198.18.0.23:80") },
		"rs3 still listed after its nginx stopped:\n%s", list())
	if seen = reach(20); seen["rs1"]+seen["rs2"] != 20 {
		t.Fatalf("after rs3 left, 20 requests reached %v", seen)
	}

	// An open keep-alive connection across a restart: the new vipd
	// adopts the pinned flow table, so the connection stays on its real
	// server even though the new configuration drains that server.
	var conn net.Conn
	if err := client.Do(func() (err error) { conn, err = net.DialTimeout("tcp4", vip+":80", 2*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	keepAlive := func() (string, error) {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		body, _, err := getKeepAlive(conn, br)
		return body, err
	}
	held, err := keepAlive()
	if err != nil {
		t.Fatal(err)
	}

	// A clean stop detaches the program and keeps the pins.
	stop(t, d.proc)
	if out, _ := d1.Run("ip", "-d", "link", "show", "eth0"); strings.Contains(out, "prog/xdp") {
		t.Errorf("XDP program still attached after vipd stopped:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(pins, "flows")); err != nil {
		t.Errorf("pinned flow table gone after a clean stop: %v", err)
	}

	heldAddr := map[string]string{"rs1": "198.18.0.21", "rs2": "198.18.0.22"}[held]
	drained := strings.Replace(xdpConf, "real_server "+heldAddr+" 80 {", "real_server "+heldAddr+" 80 {\n        weight 0", 1)
	d = startVipd(t, d1, drained, "--dataplane", "xdp", "--xdp-pins", pins)
	lab.Eventually(t, 10*time.Second, func() bool { return d.state("VI_1") == "MASTER" }, "d1 not MASTER after the restart")
	// The VIP was off d1 while the new vipd listened before claiming
	// (3.4 s): new connections count only once the client's neighbour
	// entry names d1 again (its gratuitous ARPs), as a client's would.
	var neigh string
	lab.Eventually(t, 5*time.Second, func() bool {
		_, _ = client.Run("ping", "-c1", "-W1", vip)
		neigh, _ = client.Run("ip", "neigh", "show", vip)
		return strings.Contains(neigh, d1.MAC)
	}, "the client's neighbour entry for the VIP does not name d1 (%s) after the restart: %s", d1.MAC, func() string { return neigh })
	if !strings.Contains(d.proc.Output(), "adopted pinned maps") {
		t.Errorf("the restarted vipd did not adopt the pinned maps:\n%s", d.proc.Output())
	}
	again, err := keepAlive()
	if err != nil || again != held {
		t.Fatalf("the connection open across the restart: %q, %v; want it still on %s", again, err, held)
	}
	if seen = reach(20); seen[held] != 0 {
		t.Errorf("new connections reached the drained %s: %v", held, seen)
	}

	// A crash (SIGKILL) leaves the pinned attachment forwarding: the open
	// connection and new ones keep working with no vipd running, and the
	// next vipd takes the attachment over. (First the restarted vipd's
	// check takes the stopped rs3 out again.)
	lab.Eventually(t, 10*time.Second, func() bool { return !strings.Contains(list(), "198.18.0.23:80") },
		"rs3 listed again after the restart:\n%s", list())
	d.proc.Kill()
	if again, err := keepAlive(); err != nil || again != held {
		t.Fatalf("with vipd crashed, the open connection: %q, %v; want it still on %s", again, err, held)
	}
	if seen = reach(10); seen["rs1"]+seen["rs2"]+seen["rs3"] != 10 {
		t.Fatalf("with vipd crashed, 10 new connections reached %v", seen)
	}
	d = startVipd(t, d1, drained, "--dataplane", "xdp", "--xdp-pins", pins)
	lab.Eventually(t, 10*time.Second, func() bool { return strings.Contains(d.proc.Output(), "took over the attachment") },
		"the vipd started after the crash did not take over the attachment:\n%s", d.proc.Output())
	if again, err := keepAlive(); err != nil || again != held {
		t.Fatalf("after the crash and restart, the open connection: %q, %v; want it still on %s", again, err, held)
	}
	stop(t, d.proc)
	if out, _ := d1.Run("ip", "-d", "link", "show", "eth0"); strings.Contains(out, "prog/xdp") {
		t.Errorf("XDP program still attached after the last clean stop:\n%s", out)
	}
	if links, _ := filepath.Glob(filepath.Join(pins, "link_*")); len(links) != 0 {
		t.Errorf("attachment pins left after a clean stop: %v", links)
	}
}
