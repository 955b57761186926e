// Command checks measures the cost of health checking at scale: N real
// servers with HTTP_GET at delay_loop D against local nginx servers, run by
// check.Runner in this process. It prints checks per second, CPU use (as a
// share of one core), checks per CPU-second and peak RSS, and, as a
// reference measured in the same run, the CPU cost of the same HTTP check
// made in a bare sequential loop (no Runner), so the ratio shows what the
// scheduling costs on top of the probes themselves.
//
// keepalived's checker is tried too (-keepalived): on a kernel without IPVS
// it exits at start ("IPVS: Can't initialize ipvs"), which the report says.
//
//	go run ./bench/checks -servers 10000 -delay 6s -measure 60s
package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipd/vipd/internal/check"
	"golang.org/x/sys/unix"
)

func main() {
	servers := flag.Int("servers", 10000, "real servers, one HTTP_GET each")
	delay := flag.Duration("delay", 6*time.Second, "delay_loop")
	measure := flag.Duration("measure", 60*time.Second, "measurement window, after one warmup delay_loop")
	ports := flag.Int("ports", 20, "nginx listening ports the servers are spread over")
	keepalived := flag.Bool("keepalived", true, "also try keepalived's checker on the same configuration")
	coalesce := flag.Duration("coalesce", 0, "check.Options.Coalesce (0: the Runner's default)")
	raw := flag.Bool("raw", true, "also measure the same checks run by a bare epoll loop (one thread, no goroutines) as a second reference")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measurement window to this file")
	flag.Parse()
	profilePath = *cpuProfile
	rawRef = *raw
	coalesceOpt = *coalesce
	if err := run(*servers, *delay, *measure, *ports, *keepalived); err != nil {
		fmt.Fprintln(os.Stderr, "bench/checks:", err)
		os.Exit(1)
	}
}

const page = "vipd bench page\n"

var (
	profilePath string
	rawRef      bool
	coalesceOpt time.Duration
)

func run(n int, delay, measure time.Duration, ports int, tryKeepalived bool) error {
	dir, err := os.MkdirTemp("", "vipd-bench-checks")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stopNginx, err := startNginx(dir, ports)
	if err != nil {
		return err
	}
	defer stopNginx()
	sum := md5.Sum([]byte(page))
	digest := hex.EncodeToString(sum[:])

	// Servers are spread over 127.0.x.y addresses and the nginx ports, so
	// no two share an address:port.
	addr := func(i int) netip.AddrPort {
		ip := netip.AddrFrom4([4]byte{127, byte(1 + i/60000), byte(i / 250 % 240), byte(1 + i%250)})
		return netip.AddrPortFrom(ip, uint16(18100+i%ports))
	}
	mkHTTP := func(i int) *check.HTTP {
		return &check.HTTP{Endpoint: check.Endpoint{Addr: addr(i), Timeout: 3 * time.Second}, URLs: []check.URL{{Path: "/index.html", Digest: digest}}}
	}
	if r := mkHTTP(0).Check(context.Background()); !r.Up {
		return fmt.Errorf("nginx not serving: %s", r.Reason)
	}

	// Reference: the same check, sequentially, without the Runner.
	const refChecks = 3000
	ref := mkHTTP(1)
	cpu0 := cpuTime()
	t0 := time.Now()
	for range refChecks {
		if r := ref.Check(context.Background()); !r.Up {
			return fmt.Errorf("reference check failed: %s", r.Reason)
		}
	}
	refCPU := cpuTime() - cpu0
	refWall := time.Since(t0)
	refPerCheck := refCPU / refChecks

	// HTTP_GET's defaults (config.Checker.ResolveTiming) with this delay_loop.
	tm := check.Timing{DelayLoop: delay, Retry: 1, DelayBeforeRetry: 3 * time.Second, Warmup: delay, Timeout: 5 * time.Second}
	var srv []check.Server
	for i := range n {
		srv = append(srv, check.Server{Name: addr(i).String(), Weight: 1, Checkers: []check.Spec{{Name: "HTTP_GET", Checker: mkHTTP(i), Timing: tm}}})
	}
	var downs atomic.Int64
	r := check.NewRunner(srv, check.Options{
		Coalesce: coalesceOpt,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEvent: func(e check.Event) {
			if e.Kind == check.ServerDown {
				downs.Add(1)
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	reasons := map[string]int{}
	countChecks := func() (total, failed uint64) {
		st, _ := r.Status(context.Background())
		clear(reasons)
		for _, s := range st {
			total += s.Checks
			failed += s.Failed
			if s.Failed > 0 {
				reasons[s.Last.Reason]++
			}
		}
		return
	}
	// warmup spreads the first round over one delay_loop; measure after it.
	time.Sleep(delay + delay/2)
	c0, f0 := countChecks()
	cpu1, w1 := cpuTime(), time.Now()
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if profilePath != "" {
		f, err := os.Create(profilePath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	time.Sleep(measure)
	if profilePath != "" {
		pprof.StopCPUProfile()
	}
	var ru2 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru2)
	c1, f1 := countChecks()
	cpu2, w2 := cpuTime(), time.Now()
	cancel()
	<-done

	// Measured after the Runner's window so its thousands of closed
	// connections do not disturb the window.
	floorPerCheck, err := syscallFloor(addr(2), 3000)
	if err != nil {
		return err
	}
	checks := float64(c1 - c0)
	wall := w2.Sub(w1).Seconds()
	cpu := (cpu2 - cpu1).Seconds()
	perCheck := time.Duration(float64(cpu2-cpu1) / checks)
	fmt.Printf("vipd check.Runner: %d real servers, HTTP_GET, delay_loop %v, window %v\n", n, delay, w2.Sub(w1).Round(time.Millisecond))
	fmt.Printf("  checks:            %.0f (%.0f/s; expected %.0f/s), failed %d, servers down %d\n", checks, checks/wall, float64(n)/delay.Seconds(), f1-f0, downs.Load())
	fmt.Printf("  CPU:               %.3f s in %.1f s = %.2f %% of one core (user %.2f s, system %.2f s)\n", cpu, wall, 100*cpu/wall,
		time.Duration(ru2.Utime.Nano()-ru1.Utime.Nano()).Seconds(), time.Duration(ru2.Stime.Nano()-ru1.Stime.Nano()).Seconds())
	fmt.Printf("  checks per CPU-s:  %.0f (%v CPU per check)\n", checks/cpu, perCheck.Round(time.Microsecond))
	fmt.Printf("  peak RSS:          %s (now %s)\n", procStatus("VmHWM"), procStatus("VmRSS"))
	fmt.Printf("reference, same check in a bare loop: %d checks, %v CPU per check, %.0f checks per CPU-s (%.0f checks/s wall)\n",
		refChecks, refPerCheck.Round(time.Microsecond), float64(refChecks)/refCPU.Seconds(), float64(refChecks)/refWall.Seconds())
	fmt.Printf("floor, blocking syscalls only (socket, connect, write, read to EOF, close): %v CPU per check\n", floorPerCheck.Round(time.Microsecond))
	fmt.Printf("ratio Runner/bare CPU per check: %.2f, Runner/floor: %.2f\n", float64(perCheck)/float64(refPerCheck), float64(perCheck)/float64(floorPerCheck))
	if f1 > f0 {
		fmt.Printf("  last reason of the checkers that failed: %v\n", reasons)
	}
	if rawRef {
		addrs := make([]netip.AddrPort, n)
		for i := range addrs {
			addrs[i] = addr(i)
		}
		window := min(measure, 30*time.Second)
		rc, rf, rcpu, err := rawLoop(addrs, delay, window, 3*time.Second, sum)
		if err != nil {
			return fmt.Errorf("raw loop: %w", err)
		}
		rawPer := time.Duration(float64(rcpu) / float64(rc))
		fmt.Printf("reference, bare epoll loop (one thread, non-blocking sockets, same checks and rate): %d checks (%.0f/s), failed %d, %.2f %% of one core, %v CPU per check\n",
			rc, float64(rc)/window.Seconds(), rf, 100*rcpu.Seconds()/window.Seconds(), rawPer.Round(time.Microsecond))
		fmt.Printf("ratio Runner/epoll loop CPU per check: %.2f\n", float64(perCheck)/float64(rawPer))
	}
	if tryKeepalived {
		fmt.Println("keepalived checker:", runKeepalived(dir, n, delay, addr))
	}
	return nil
}

// syscallFloor measures the kernel's share: the same HTTP exchange with
// blocking system calls and nothing else (no poller, no timers, no
// digest), n times in a row.
func syscallFloor(a netip.AddrPort, n int) (time.Duration, error) {
	req := []byte("GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + a.String() + "\r\n\r\n")
	sa := &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	buf := make([]byte, 4096)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0 := cpuTime()
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		if err := unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			return 0, err
		}
		if _, err := unix.Write(fd, req); err != nil {
			unix.Close(fd)
			return 0, err
		}
		for {
			m, err := unix.Read(fd, buf)
			if err != nil || m == 0 {
				break
			}
		}
		unix.Close(fd)
	}
	return (cpuTime() - c0) / time.Duration(n), nil
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procStatus(key string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 {
				if kb, err := strconv.Atoi(f[0]); err == nil {
					return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
				}
			}
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func startNginx(dir string, ports int) (func(), error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return nil, fmt.Errorf("nginx not installed (Debian nginx-light)")
	}
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(page), 0o644); err != nil {
		return nil, err
	}
	var listen strings.Builder
	for p := range ports {
		fmt.Fprintf(&listen, "listen %d reuseport backlog=4096; ", 18100+p)
	}
	conf := filepath.Join(dir, "nginx.conf")
	cfg := fmt.Sprintf(`daemon off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server { %[2]s root %[3]s; }
}
`, dir, listen.String(), www)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	probe := &check.TCP{Endpoint: check.Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 18100), Timeout: time.Second}}
	for range 100 {
		if probe.Check(context.Background()).Up {
			return stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("nginx did not start: %s", out.String())
}

// runKeepalived starts keepalived's checker (-C) on the same servers and
// reports what happens in its first seconds.
func runKeepalived(dir string, n int, delay time.Duration, addr func(int) netip.AddrPort) string {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return "not installed"
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "virtual_server 127.0.0.1 18099 {\n  delay_loop %g\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n", delay.Seconds())
	for i := range n {
		a := addr(i)
		fmt.Fprintf(&conf, "  real_server %s %d {\n    HTTP_GET {\n      url {\n        path /index.html\n      }\n      connect_timeout 3\n    }\n  }\n", a.Addr(), a.Port())
	}
	conf.WriteString("}\n")
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "keepalived", "-C", "-n", "-l", "-D", "-f", path,
		"-p", filepath.Join(dir, "k.pid"), "-c", filepath.Join(dir, "c.pid"), "-r", filepath.Join(dir, "r.pid"))
	out, err := cmd.CombinedOutput()
	text := string(out)
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "IPVS") && strings.Contains(line, "initialize") {
			return "cannot run on this kernel: " + strings.TrimSpace(line[strings.Index(line, "IPVS"):]) + " (its checker process exits FATAL without IPVS); compare on a kernel with IPVS"
		}
	}
	if ctx.Err() != nil {
		return "ran 15 s; measure it with pidstat on a kernel with IPVS"
	}
	return fmt.Sprintf("exited: %v", err)
}
