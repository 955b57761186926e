package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/netif"
)

// TestVMACTakeover: with use_vmac on both routers, the VIP lives on a
// macvlan carrying the virtual router MAC (00:00:5e:00:01:51 here,
// 00:00:5e:00:02:51 for IPv6), so a takeover moves the MAC with the
// address. A client whose neighbour entry for the VIP is permanent (it
// can never change) keeps reaching the VIP across a takeover in both
// directions: vipd master to keepalived and back, keepalived master to
// vipd and back, and between two vipd.
func TestVMACTakeover(t *testing.T) {
	lab.RequireRoot(t)
	t.Parallel()
	for _, v6 := range []bool{false, true} {
		fam := "ipv4"
		if v6 {
			fam = "ipv6"
		}
		t.Run(fam+"/vipd-vipd", func(t *testing.T) {
			t.Parallel()
			runVMACCase(t, v6, [2]string{"vipd", "vipd"}, "")
		})
		for _, peer := range keepalivedPeers {
			t.Run(fam+"/keepalived-"+peer.Name, func(t *testing.T) {
				t.Parallel()
				bin := peer.binary(t)
				for _, vipdMaster := range []bool{true, false} {
					kinds := [2]string{"vipd", "keepalived " + peer.Name}
					role := "vipd-master"
					if !vipdMaster {
						kinds[0], kinds[1] = kinds[1], kinds[0]
						role = "vipd-backup"
					}
					t.Run(role, func(t *testing.T) {
						t.Parallel()
						runVMACCase(t, v6, kinds, bin)
					})
				}
			})
		}
	}
}

func runVMACCase(t *testing.T, v6 bool, kinds [2]string, kaBin string) {
	l := lab.New(t)
	var hosts []*lab.Host
	for i, name := range []string{"d1", "d2", "client"} {
		addrs := []string{interopAddr4[i]}
		if v6 {
			addrs = append(addrs, interopAddr6[i])
		}
		hosts = append(hosts, l.Host(name, addrs...))
	}
	client := hosts[2]
	hosts = hosts[:2]
	c := interopCase{version: 2, ipv6: v6}
	vip, ping := interopVIP4, "-4"
	if v6 {
		c.version, vip, ping = 3, interopVIP6, "-6"
	}
	const vmacName = "vrrp.51"
	vmacMAC := netif.VirtualMAC(51, v6).String()
	var d [2]*vrrpDaemon
	for i := range d {
		spec := c.spec(i, "s3cret")
		spec.VMAC = true
		d[i] = &vrrpDaemon{t: t, kind: kinds[i], host: hosts[i], conf: spec.Keepalived()}
		if kinds[i] != "vipd" {
			d[i].bin = kaBin
		}
	}
	master, backup := d[0], d[1]
	t.Logf("d1 (priority 150): %s; d2 (priority 100): %s", master.kind, backup.kind)
	const (
		enterMaster = "(VI_1) Entering MASTER STATE"
		enterBackup = "(VI_1) Entering BACKUP STATE"
	)

	// link describes the host's VMAC: "" when it has none.
	link := func(h *lab.Host) string {
		out, err := h.Run("ip", "-d", "-o", "link", "show", "dev", vmacName)
		if err != nil {
			return ""
		}
		return out
	}
	// onVMAC checks that the VIP is on h's VMAC, the VMAC is up with the
	// virtual MAC, and the other router keeps its VMAC (up, as
	// keepalived leaves it in every state) without the VIP.
	onVMAC := func(h, other *lab.Host, what string) {
		t.Helper()
		addrs, _ := h.Run("ip", "-o", "addr", "show", "dev", vmacName)
		if !strings.Contains(addrs, vip.String()) {
			t.Fatalf("%s: the VIP %v is not on %s of %s: %q", what, vip, vmacName, h.Name, addrs)
		}
		for _, x := range []*lab.Host{h, other} {
			l := link(x)
			if !strings.Contains(l, "@eth0") || !strings.Contains(l, "macvlan mode private") || !strings.Contains(l, vmacMAC) || !strings.Contains(l, ",UP") {
				t.Fatalf("%s: %s of %s is not an up private macvlan on eth0 with MAC %s: %q", what, vmacName, x.Name, vmacMAC, l)
			}
		}
	}
	// reach waits until the client's pings of the VIP are answered again
	// and checks that its neighbour entry still is the permanent one, and
	// that the switch (the lab's bridge) learned the virtual MAC on the
	// master's port: the master sends from its VMAC (adverts, gratuitous
	// ARPs / NAs), so the frames for the VIP are not flooded but go to it.
	reach := func(master *lab.Host, what string) {
		t.Helper()
		var fdb string
		waitFor(t, 5*time.Second, func() bool {
			out, _ := exec.Command("ip", "netns", "exec", l.Bridge, "bridge", "fdb", "show", "br", "br0").Output()
			fdb = string(out)
			for _, line := range strings.Split(fdb, "\n") {
				if strings.HasPrefix(line, vmacMAC+" ") && strings.Contains(line, " dev "+master.Port+" ") {
					return true
				}
			}
			return false
		}, func() string {
			return fmt.Sprintf("%s: the bridge did not learn %s on %s's port %s:\n%s", what, vmacMAC, master.Name, master.Port, fdb)
		})
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err = client.Run("ping", ping, "-c1", "-W1", vip.Addr().String()); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the client does not reach the VIP within 5 s: %v", what, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		neigh, _ := client.Run("ip", "neigh", "show", vip.Addr().String())
		if !strings.Contains(neigh, vmacMAC) || !strings.Contains(neigh, "PERMANENT") {
			t.Fatalf("%s: the client's neighbour entry changed: %q", what, neigh)
		}
	}
	sysctl := func(h *lab.Host, fam, dev, key string) string {
		var v string
		_ = h.Do(func() error {
			b, err := os.ReadFile(filepath.Join("/proc/sys/net", fam, "conf", dev, key))
			v = strings.TrimSpace(string(b))
			return err
		})
		return v
	}
	// vipdSettings checks the kernel settings of a running vipd's VMAC
	// (keepalived's) and that a stopped one restored the base's.
	vipdSettings := func(dd *vrrpDaemon, running bool) {
		t.Helper()
		if dd.bin != "" {
			return
		}
		h := dd.host
		if !running {
			if l := link(h); l != "" {
				t.Fatalf("vipd stopped on %s and left %s: %q", h.Name, vmacName, l)
			}
			if v6 {
				return
			}
			if a, f := sysctl(h, "ipv4", "eth0", "arp_ignore"), sysctl(h, "ipv4", "eth0", "arp_filter"); a != "0" || f != "0" {
				t.Fatalf("vipd stopped on %s: eth0 arp_ignore %s arp_filter %s, want 0 0 restored", h.Name, a, f)
			}
			return
		}
		want := map[string]string{"ipv4/" + vmacName + "/arp_ignore": "1"}
		if v6 {
			want["ipv6/"+vmacName+"/addr_gen_mode"] = "1"
		} else {
			want["ipv4/"+vmacName+"/accept_local"] = "1"
			want["ipv4/"+vmacName+"/rp_filter"] = "0"
			want["ipv4/eth0/arp_ignore"] = "1"
			want["ipv4/eth0/arp_filter"] = "1"
			want["ipv6/"+vmacName+"/disable_ipv6"] = "1"
		}
		for k, w := range want {
			p := strings.SplitN(k, "/", 3)
			if got := sysctl(h, p[0], p[1], p[2]); got != w {
				t.Errorf("vipd on %s: net.%s.conf.%s.%s = %q, want %s", h.Name, p[0], p[1], p[2], got, w)
			}
		}
	}

	// 1. The master starts, then the backup. The client's neighbour
	// entry for the VIP is the virtual MAC, permanent: nothing the
	// routers send can change it. (Learned by ARP it would not stay so
	// with either daemon: the master's own ARP requests for the client,
	// sent from the base interface with the VIP as source, teach the
	// client the base's MAC, which reaches the VIP as well.)
	master.start()
	onlyHolder(t, vip.Addr(), hosts[0], hosts, 10*time.Second, 0, "master alone")
	backup.start()
	backup.waitLog(enterBackup, 1, 5*time.Second)
	lab.Eventually(t, 5*time.Second, func() bool { return link(hosts[1]) != "" }, "%s on d2 made no %s", backup.kind, vmacName)
	onVMAC(hosts[0], hosts[1], "started")
	vipdSettings(master, true)
	vipdSettings(backup, true)
	client.MustRun("ip", "neigh", "replace", vip.Addr().String(), "lladdr", vmacMAC, "dev", "eth0", "nud", "permanent")
	reach(hosts[0], "started")

	// 2. The master stops: the backup takes over, MAC and all.
	master.term()
	onlyHolder(t, vip.Addr(), hosts[1], hosts, 5*time.Second, 0, "master stopped")
	backup.waitLog(enterMaster, 1, time.Second)
	reach(hosts[1], "master stopped")
	vipdSettings(master, false)
	if l := link(hosts[0]); l != "" {
		t.Fatalf("%s stopped on d1 and left %s: %q", master.kind, vmacName, l)
	}

	// 3. It returns and preempts: the MAC moves back.
	master.start()
	onlyHolder(t, vip.Addr(), hosts[0], hosts, 10*time.Second, time.Second, "master returned")
	master.waitLog(enterMaster, 2, time.Second)
	backup.waitLog(enterBackup, 2, time.Second)
	onVMAC(hosts[0], hosts[1], "master returned")
	reach(hosts[0], "master returned")

	// 4. The backup became master, then backup again: its VMAC stayed.
	if n := strings.Count(backup.log(), enterMaster); n != 1 {
		t.Fatalf("%s on d2 entered MASTER %d times, want 1:\n%s", backup.kind, n, backup.log())
	}
}
