// kernelcheck runs the scheduler scenarios of sched_kernel_test.go
// against the real kernel IPVS and prints the kernel's choices, one line
// per scenario. It needs root and a kernel with IPVS, so it runs in the
// project's VM:
//
//	cd internal/lvs/testdata/kernelcheck && CGO_ENABLED=0 go build -o /tmp/kernelcheck .
//	VIPD_VM_LOAD="crc32c_generic ip_vs dummy ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc \
//	  ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh" \
//	  scripts/run-in-vm /tmp/kernelcheck
//
// Clients are local addresses (IPVS schedules locally generated packets
// too); each UDP datagram from a new source creates a connection whose
// destination `ipvsadm -L -n -c` shows. The destinations are unreachable
// (routed into dummy0): only the scheduling decision matters. UDP
// connections count as inactive.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

func sh(args ...string) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		fmt.Printf("ERR %v: %v %s\n", args, err, out)
		os.Exit(1)
	}
}

var letters = map[string]string{"198.18.1.1:80": "A", "198.18.1.2:80": "B", "198.18.1.3:80": "C"}
var addrs = map[string]string{"A": "198.18.1.1:80", "B": "198.18.1.2:80", "C": "198.18.1.3:80"}

func conns() map[string]string {
	out, _ := exec.Command("ipvsadm", "-L", "-n", "-c").CombinedOutput()
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[0] == "UDP" {
			m[f[3]+">"+f[4]] = f[5]
		}
	}
	return m
}

func send(src string, port int, vip string) {
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src), Port: port}, &net.UDPAddr{IP: net.ParseIP(vip), Port: 80})
	if err != nil {
		fmt.Println("dial", err)
		return
	}
	c.Write([]byte("x"))
	c.Close()
}

type pkt struct {
	src  string
	port int
	vip  string
}

func result(ps []pkt) string {
	time.Sleep(100 * time.Millisecond)
	m := conns()
	var out []string
	for _, p := range ps {
		d, ok := m[fmt.Sprintf("%s:%d>%s:80", p.src, p.port, p.vip)]
		if !ok {
			out = append(out, "-")
		} else if l, ok := letters[d]; ok {
			out = append(out, l)
		} else {
			out = append(out, d)
		}
	}
	return strings.Join(out, " ")
}

// service creates vip with sched/flags and adds dests in the given order
// (each "A:1" = name:weight); the kernel list ends up reversed.
func service(vip, sched, flags string, adds ...string) {
	a := []string{"ipvsadm", "-A", "-u", vip + ":80", "-s", sched}
	if flags != "" {
		a = append(a, "-b", flags)
	}
	sh(a...)
	for _, x := range adds {
		n, w, _ := strings.Cut(x, ":")
		sh("ipvsadm", "-a", "-u", vip+":80", "-r", addrs[n], "-m", "-w", w)
	}
}

func edit(vip, n, w string) {
	sh("ipvsadm", "-e", "-u", vip+":80", "-r", addrs[n], "-m", "-w", w)
}

func clients(vip string, port int) []pkt {
	var ps []pkt
	for i := 1; i <= 8; i++ {
		ps = append(ps, pkt{fmt.Sprintf("198.18.0.%d", i), port, vip})
	}
	return ps
}

func run(name string, ps []pkt) {
	for _, p := range ps {
		send(p.src, p.port, p.vip)
	}
	fmt.Printf("%-28s %s\n", name, result(ps))
}

func main() {
	sh("ip", "link", "set", "lo", "up")
	sh("ip", "link", "set", "dummy0", "up")
	for i := 1; i <= 8; i++ {
		sh("ip", "addr", "add", fmt.Sprintf("198.18.0.%d/32", i), "dev", "lo")
	}
	for i := 1; i <= 6; i++ {
		sh("ip", "addr", "add", fmt.Sprintf("198.18.2.%d/32", i), "dev", "dummy0")
	}
	for i := 1; i <= 40; i++ {
		sh("ip", "addr", "add", fmt.Sprintf("198.18.3.%d/32", i), "dev", "dummy0")
	}
	sh("ip", "route", "add", "198.18.1.0/24", "dev", "dummy0")
	out, _ := exec.Command("uname", "-r").CombinedOutput()
	fmt.Print("kernel ", string(out))

	seqPkts := func(vip string, n int) []pkt {
		var ps []pkt
		for i := 0; i < n; i++ {
			ps = append(ps, pkt{"198.18.0.1", 50000 + i, vip})
		}
		return ps
	}
	// rr: added A, B, C -> list C B A.
	service("198.18.3.1", "rr", "", "A:1", "B:1", "C:1")
	run("rr list CBA", seqPkts("198.18.3.1", 6))
	// wrr incremental: add A w1 then B w5 -> list B A.
	service("198.18.3.2", "wrr", "", "A:1", "B:5")
	run("wrr incr B5 A1", seqPkts("198.18.3.2", 8))
	// wrr 4:2:2 list A B C: add C, B, A.
	service("198.18.3.3", "wrr", "", "C:2", "B:2", "A:4")
	run("wrr A4 B2 C2", seqPkts("198.18.3.3", 8))
	// wrr edit resets position: list A B C w1; 2 conns; B -> 2.
	service("198.18.3.4", "wrr", "", "C:1", "B:1", "A:1")
	run("wrr equal (2)", seqPkts("198.18.3.4", 2))
	edit("198.18.3.4", "B", "2")
	var ps []pkt
	for i := 0; i < 8; i++ {
		ps = append(ps, pkt{"198.18.0.2", 50000 + i, "198.18.3.4"})
	}
	run("wrr after edit B2", ps)
	// lc / wlc with UDP (connections are inactive).
	service("198.18.3.5", "lc", "", "C:1", "B:3", "A:1")
	run("lc A1 B3 C1", seqPkts("198.18.3.5", 7))
	service("198.18.3.6", "wlc", "", "B:3", "A:1")
	run("wlc A1 B3", seqPkts("198.18.3.6", 9))
	// sh list A B C.
	service("198.18.3.10", "sh", "", "C:1", "B:1", "A:1")
	run("sh A B C", clients("198.18.3.10", 40000))
	service("198.18.3.11", "sh", "", "B:1", "A:2")
	run("sh A2 B1", clients("198.18.3.11", 40000))
	service("198.18.3.12", "sh", "sh-port", "C:1", "B:1", "A:1")
	var pp []pkt
	for p := 40000; p <= 40005; p++ {
		pp = append(pp, pkt{"198.18.0.1", p, "198.18.3.12"})
	}
	run("sh-port A B C", pp)
	service("198.18.3.13", "sh", "sh-fallback", "C:1", "B:1", "A:1")
	edit("198.18.3.13", "B", "0")
	run("sh-fallback B0", clients("198.18.3.13", 40000))
	service("198.18.3.14", "sh", "sh-fallback", "C:1", "B:1", "A:1")
	edit("198.18.3.14", "B", "0")
	edit("198.18.3.14", "C", "0")
	run("sh-fallback B0 C0", clients("198.18.3.14", 40000))
	service("198.18.3.15", "sh", "", "C:1", "B:1", "A:1")
	edit("198.18.3.15", "B", "0")
	run("sh B0", clients("198.18.3.15", 40000))
	// mh list A B C.
	service("198.18.3.20", "mh", "", "C:1", "B:1", "A:1")
	run("mh A B C", clients("198.18.3.20", 40000))
	service("198.18.3.21", "mh", "", "C:3", "B:2", "A:1")
	run("mh A1 B2 C3", clients("198.18.3.21", 40000))
	service("198.18.3.22", "mh", "", "C:1", "A:1")
	run("mh A C", clients("198.18.3.22", 40000))
	service("198.18.3.23", "mh", "", "A:1", "B:1", "C:1")
	run("mh C B A", clients("198.18.3.23", 40000))
	service("198.18.3.24", "mh", "mh-port", "C:1", "B:1", "A:1")
	pp = nil
	for p := 40000; p <= 40005; p++ {
		pp = append(pp, pkt{"198.18.0.1", p, "198.18.3.24"})
	}
	run("mh-port A B C", pp)
	service("198.18.3.25", "mh", "mh-fallback", "C:1", "B:1", "A:1")
	edit("198.18.3.25", "B", "0")
	run("mh-fallback B0", clients("198.18.3.25", 40000))
	service("198.18.3.26", "mh", "", "C:1", "B:1", "A:1")
	edit("198.18.3.26", "B", "0")
	run("mh B0", clients("198.18.3.26", 40000))
	service("198.18.3.27", "mh", "", "B:100", "A:1")
	run("mh A1 B100", clients("198.18.3.27", 40000))
	// dh: six VIPs, list A B C each.
	pp = nil
	for i := 1; i <= 6; i++ {
		vip := fmt.Sprintf("198.18.2.%d", i)
		service(vip, "dh", "", "C:1", "B:1", "A:1")
		pp = append(pp, pkt{"198.18.0.1", 40000, vip})
	}
	run("dh A B C vips 1-6", pp)
	// sed / nq / fo / ovf with UDP (active stays 0).
	service("198.18.3.30", "sed", "", "B:3", "A:1")
	run("sed A1 B3", seqPkts("198.18.3.30", 3))
	service("198.18.3.31", "nq", "", "B:3", "A:1")
	run("nq A1 B3", seqPkts("198.18.3.31", 3))
	service("198.18.3.32", "fo", "", "C:3", "B:3", "A:1")
	run("fo A1 B3 C3", seqPkts("198.18.3.32", 3))
	// lblc / lblcr: UDP conns are inactive, so A stays.
	service("198.18.3.33", "lblc", "", "B:1", "A:1")
	run("lblc A B", seqPkts("198.18.3.33", 4))
	service("198.18.3.34", "lblcr", "", "B:1", "A:1")
	run("lblcr A B", seqPkts("198.18.3.34", 4))
	out, _ = exec.Command("ipvsadm", "-L", "-n", "-u", "198.18.3.33:80").CombinedOutput()
	fmt.Print(string(out))
}
