package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// vmCompare is the comparison with keepalived's checker, run inside the
// QEMU VM of scripts/run-in-vm by bench/checks/vm.sh (keepalived's checker
// needs IPVS, which the host kernel lacks). It follows the method of
// ../shared/labs/checkscale: N real servers 198.19.(1+i/250).(1+i%250):80
// on a dummy interface, one backend in this process answering every
// request with 200 and counting connections per real server, the same
// keepalived.conf (HTTP_GET, path /, status_code 200, connect_timeout 3,
// delay_loop D, 100 real servers per virtual server) for both daemons.
// Each daemon in turn (rounds times, alternating) is started, waited for
// until the backend saw its first N checks plus one delay_loop, then
// measured over a window: utime+stime of its whole process tree from
// /proc (CPU per check), checks per real server from the backend (on
// schedule), VmRSS summed over the tree at the end. It prints the figures
// and the ratios vipd/keepalived.
func vmCompare(n int, delay, window time.Duration, rounds int, vipd, dataplane string) error {
	if err := run1("ip", "link", "add", "fzrs", "type", "dummy"); err != nil {
		return err
	}
	if err := run1("ip", "link", "set", "fzrs", "up"); err != nil {
		return err
	}
	var batch bytes.Buffer
	for i := range n {
		fmt.Fprintf(&batch, "address add %s/32 dev fzrs\n", vmRS(i))
	}
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = &batch
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, out)
	}
	be, err := startBackend(n)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "checkcmp")
	if err != nil {
		return err
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(vmConf(n, delay)), 0o644); err != nil {
		return err
	}
	cs, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	fmt.Printf("VM: N=%d HTTP_GET delay_loop %v window %v rounds %d, vipd data plane %s, %d vCPU, clocksource %s", n, delay, window, rounds, dataplane, runtimeNumCPU(), cs)
	daemons := []struct {
		name string
		argv []string
	}{
		{"keepalived", []string{"keepalived", "-n", "-l", "-C", "-f", conf, "-p", dir + "/ka.pid", "-c", dir + "/kac.pid", "-r", dir + "/kar.pid"}},
		{"vipd", []string{vipd, "-n", "-l", "-C", "-f", conf, "--dataplane", dataplane, "-p", dir + "/vipd.pid", "--control", dir + "/vipd.sock", "--ipvs-state", dir + "/ipvs.json"}},
	}
	var results [2][]vmResult
	for r := range rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			d := daemons[k]
			res, err := vmMeasure(d.name, d.argv, be, n, delay, window, dir)
			if err != nil {
				return fmt.Errorf("%s: %w", d.name, err)
			}
			res.print()
			results[k] = append(results[k], res)
			_ = run1("ipvsadm", "-C")
		}
	}
	fmt.Println("ratios vipd/keepalived, same VM, same run (per round):")
	for r := range rounds {
		k, v := results[0][r], results[1][r]
		fmt.Printf("  round %d: CPU per check %.2f, checks %.3f, RSS %.2f (keepalived %.1f MiB, vipd %.1f MiB), on schedule keepalived %.1f %% vipd %.1f %%\n",
			r+1, v.perCheck/k.perCheck, float64(v.checks)/float64(k.checks), float64(v.rssKB)/float64(k.rssKB),
			float64(k.rssKB)/1024, float64(v.rssKB)/1024, k.onSchedule, v.onSchedule)
	}
	return nil
}

func runtimeNumCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return bytes.Count(b, []byte("\nprocessor")) + 1
}

func vmRS(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 19, byte(1 + i/250), byte(1 + i%250)})
}

// vmConf is checkscale's gen-keepalived-conf.sh http output, except the
// virtual servers listen on 8080: the backend holds *:80, where vipd's proxy
// data plane could not bind a virtual server.
func vmConf(n int, delay time.Duration) string {
	var b strings.Builder
	for j := 0; j*100 < n; j++ {
		fmt.Fprintf(&b, "virtual_server 198.19.%d.%d 8080 {\n  delay_loop %d\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n", 200+j/250, 1+j%250, int(delay.Seconds()))
		for i := j * 100; i < min(n, (j+1)*100); i++ {
			fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout 3\n    }\n  }\n", vmRS(i))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// backend answers every request head with 200 and counts connections per
// real server (its local address).
type backend struct {
	conns []atomic.Uint64
}

func startBackend(n int) (*backend, error) {
	ln, err := net.Listen("tcp4", ":80")
	if err != nil {
		return nil, err
	}
	be := &backend{conns: make([]atomic.Uint64, n)}
	resp := []byte("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nvipd bench page\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if a, ok := netip.AddrFromSlice(c.LocalAddr().(*net.TCPAddr).IP); ok {
					b := a.Unmap().As4()
					if i := (int(b[2])-1)*250 + int(b[3]) - 1; b[0] == 198 && b[1] == 19 && i >= 0 && i < n {
						be.conns[i].Add(1)
					}
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 2048)
				var got []byte
				for !bytes.Contains(got, []byte("\r\n\r\n")) {
					m, err := c.Read(buf)
					if m == 0 || err != nil {
						return // TCP_CHECK-like: closed without a request
					}
					got = append(got, buf[:m]...)
				}
				_, _ = c.Write(resp)
			}()
		}
	}()
	return be, nil
}

func (be *backend) snapshot() []uint64 {
	out := make([]uint64, len(be.conns))
	for i := range be.conns {
		out[i] = be.conns[i].Load()
	}
	return out
}

type vmResult struct {
	name         string
	checks       uint64
	expected     float64
	cpuS         float64
	perCheck     float64 // CPU seconds per check
	rssKB, hwmKB int
	anonKB       int
	minRS, maxRS uint64
	onSchedule   float64 // % of real servers checked at every due time of the window
	achieved     float64 // % of N*window/delay
	startupWait  time.Duration
}

func (r vmResult) print() {
	fmt.Printf("%-10s checks %d (%.1f %% of N x window / delay_loop), per real server %d-%d, on schedule %.1f %% of the real servers\n", r.name, r.checks, r.achieved, r.minRS, r.maxRS, r.onSchedule)
	fmt.Printf("%-10s CPU %.2f s in the window: %.2f ms per check (%.2f s per 1,000 checks); RSS %.1f MiB (anon %.1f MiB, HWM %.1f MiB), summed over its processes; first round after %v\n",
		r.name, r.cpuS, 1000*r.perCheck, 1000*r.perCheck, float64(r.rssKB)/1024, float64(r.anonKB)/1024, float64(r.hwmKB)/1024, r.startupWait.Round(100*time.Millisecond))
}

func vmMeasure(name string, argv []string, be *backend, n int, delay, window time.Duration, dir string) (vmResult, error) {
	res := vmResult{name: name}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	base := be.snapshot()
	var baseSum uint64
	for _, v := range base {
		baseSum += v
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	// First round: every real server checked once.
	deadline := time.Now().Add(10*delay + 120*time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			return res, fmt.Errorf("exited (%v) before its first round: %s", err, tail(b, 2000))
		case <-time.After(500 * time.Millisecond):
		}
		cur := be.snapshot()
		seen := 0
		for i := range cur {
			if cur[i] > base[i] {
				seen++
			}
		}
		if seen == n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return res, fmt.Errorf("only %d of %d real servers checked after %v", seen, n, time.Since(t0))
		}
	}
	res.startupWait = time.Since(t0)
	time.Sleep(delay)
	pids := procTree(cmd.Process.Pid)
	c0 := treeTicks(pids)
	s0 := be.snapshot()
	w0 := time.Now()
	time.Sleep(window)
	s1 := be.snapshot()
	w1 := time.Now()
	pids = procTree(cmd.Process.Pid)
	c1 := treeTicks(pids)
	for _, p := range pids {
		res.rssKB += statusKB(p, "VmRSS")
		res.hwmKB += statusKB(p, "VmHWM")
		res.anonKB += statusKB(p, "RssAnon")
	}
	stop()
	wl := w1.Sub(w0)
	res.minRS = ^uint64(0)
	due := int(window / delay) // due times that fall in the window, at the least
	onTime := 0
	for i := range s1 {
		d := s1[i] - s0[i]
		res.checks += d
		res.minRS = min(res.minRS, d)
		res.maxRS = max(res.maxRS, d)
		if int(d) >= due {
			onTime++
		}
	}
	res.expected = float64(n) * wl.Seconds() / delay.Seconds()
	res.achieved = 100 * float64(res.checks) / res.expected
	res.onSchedule = 100 * float64(onTime) / float64(n)
	res.cpuS = float64(c1-c0) / 100 // USER_HZ
	if res.checks > 0 {
		res.perCheck = res.cpuS / float64(res.checks)
	}
	return res, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// procTree is pid and its descendants.
func procTree(root int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[pid] = pp
		}
	}
	keep := []int{root}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if slices.Contains(keep, pp) && !slices.Contains(keep, p) {
				keep = append(keep, p)
				changed = true
			}
		}
	}
	return keep
}

// treeTicks sums utime+stime (clock ticks) over pids.
func treeTicks(pids []int) int64 {
	var t int64
	for _, p := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			t += u + s
		}
	}
	return t
}

func statusKB(pid int, key string) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				kb, _ := strconv.Atoi(fs[0])
				return kb
			}
		}
	}
	return 0
}

func run1(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
