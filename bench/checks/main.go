// Command checks measures the cost of health checking at scale: N real
// servers with HTTP_GET at delay_loop D against local nginx servers, run by
// check.Runner in this process, once with each engine: the event loop
// (loop, the default since issue 17) and a goroutine per attempt
// (goroutines, check.Options.NoLoop, the engine before). It prints checks
// per second, attempt latency, the share of servers checked on schedule,
// CPU use (getrusage of the process: CPU-seconds per check, and the share
// of one core at N/D checks/s), RSS and the load average, and, as
// references measured in the same run, the CPU cost of the same HTTP check
// made in a bare sequential loop (no Runner), of the bare blocking system
// calls (the floor), and of a bare epoll loop on one locked thread
// (rawloop.go), with the ratios.
//
// With -vm it is the program bench/checks/vm.sh runs in a QEMU VM beside
// keepalived's checker (vm.go).
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
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the first engine's measurement window to this file")
	flag.StringVar(&engines, "engines", "loop,goroutines", "Runner engines to measure, in this order: loop (the event loop) and goroutines (check.Options.NoLoop, the engine before issue 17)")
	vm := flag.Bool("vm", false, "inside the VM of bench/checks/vm.sh: compare vipd with keepalived's checker (vm.go)")
	vmWindow := flag.Duration("vm-window", 60*time.Second, "with -vm: measurement window per daemon")
	vmRounds := flag.Int("vm-rounds", 1, "with -vm: rounds (each measures both daemons, alternating who goes first)")
	vipdPath := flag.String("vipd", "/usr/local/bin/vipd", "with -vm: the vipd binary")
	vmDataplane := flag.String("vm-dataplane", "ipvs", "with -vm: vipd's data plane (ipvs as keepalived; proxy when programming IPVS does not finish in a starved VM)")
	flag.Parse()
	if *vm {
		if err := vmCompare(*servers, *delay, *vmWindow, *vmRounds, *vipdPath, *vmDataplane); err != nil {
			fmt.Fprintln(os.Stderr, "bench/checks -vm:", err)
			os.Exit(1)
		}
		return
	}
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
	engines     string
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
	fmt.Printf("load average before: %s", loadavg())
	var runs []runnerRun
	for _, e := range strings.Split(engines, ",") {
		if e != "loop" && e != "goroutines" {
			return fmt.Errorf("engine %q: want loop or goroutines", e)
		}
		rr, err := measureRunner(srv, e, delay, measure)
		if err != nil {
			return err
		}
		runs = append(runs, rr)
		fmt.Printf("load average after %s: %s", e, loadavg())
	}
	// Measured after the Runner's window so its thousands of closed
	// connections do not disturb the window.
	floorPerCheck, err := syscallFloor(addr(2), 3000)
	if err != nil {
		return err
	}
	for _, rr := range runs {
		rr.print(n, delay)
	}
	fmt.Printf("reference, same check in a bare loop: %d checks, %v CPU per check, %.0f checks per CPU-s (%.0f checks/s wall)\n",
		refChecks, refPerCheck.Round(time.Microsecond), float64(refChecks)/refCPU.Seconds(), float64(refChecks)/refWall.Seconds())
	fmt.Printf("floor, blocking syscalls only (socket, connect, write, read to EOF, close): %v CPU per check\n", floorPerCheck.Round(time.Microsecond))
	for _, rr := range runs {
		fmt.Printf("ratio Runner[%s]/bare CPU per check: %.2f, Runner[%s]/floor: %.2f\n", rr.engine, float64(rr.perCheck)/float64(refPerCheck), rr.engine, float64(rr.perCheck)/float64(floorPerCheck))
	}
	if len(runs) == 2 {
		fmt.Printf("ratio Runner[%s]/Runner[%s] CPU per check: %.2f (the engine before issue 17 is goroutines)\n", runs[0].engine, runs[1].engine, float64(runs[0].perCheck)/float64(runs[1].perCheck))
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
		for _, rr := range runs {
			fmt.Printf("ratio Runner[%s]/epoll loop CPU per check: %.2f\n", rr.engine, float64(rr.perCheck)/float64(rawPer))
		}
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
worker_processes 2;
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

// runnerRun is one engine's measurement window.
type runnerRun struct {
	engine         string
	checks         float64
	failed         uint64
	downs          int64
	wall           time.Duration
	cpu, user, sys time.Duration
	perCheck       time.Duration
	rss, hwm       string
	meanDur        time.Duration
	maxDur         time.Duration
	onTime         float64 // share of the servers checked as often as the schedule allows
	reasons        map[string]int
}

func (rr runnerRun) print(n int, delay time.Duration) {
	fmt.Printf("vipd check.Runner[%s]: %d real servers, HTTP_GET, delay_loop %v, window %v\n", rr.engine, n, delay, rr.wall.Round(time.Millisecond))
	fmt.Printf("  checks:            %.0f (%.0f/s; expected %.0f/s), failed %d, servers down %d; attempt mean %v, max %v\n", rr.checks, rr.checks/rr.wall.Seconds(), float64(n)/delay.Seconds(), rr.failed, rr.downs, rr.meanDur.Round(time.Microsecond), rr.maxDur.Round(time.Millisecond))
	fmt.Printf("  on schedule:       %.1f %% of the servers checked at every due time in the window\n", 100*rr.onTime)
	fmt.Printf("  CPU:               %.3f s in %.1f s = %.2f %% of one core (user %.2f s, system %.2f s)\n", rr.cpu.Seconds(), rr.wall.Seconds(), 100*rr.cpu.Seconds()/rr.wall.Seconds(), rr.user.Seconds(), rr.sys.Seconds())
	fmt.Printf("  checks per CPU-s:  %.0f (%v CPU per check; at %.0f checks/s that is %.2f %% of one core)\n", rr.checks/rr.cpu.Seconds(), rr.perCheck.Round(time.Microsecond), float64(n)/delay.Seconds(), 100*rr.perCheck.Seconds()*float64(n)/delay.Seconds())
	fmt.Printf("  RSS:               %s (peak of the process so far %s)\n", rr.rss, rr.hwm)
	if rr.failed > 0 {
		fmt.Printf("  last reason of the checkers that failed: %v\n", rr.reasons)
	}
}

// measureRunner runs a Runner over srv with one engine, waits out the
// warmup, and measures one window.
func measureRunner(srv []check.Server, engine string, delay, measure time.Duration) (runnerRun, error) {
	rr := runnerRun{engine: engine, reasons: map[string]int{}}
	runtime.GC()
	var downs atomic.Int64
	r := check.NewRunner(srv, check.Options{
		Coalesce: coalesceOpt,
		NoLoop:   engine == "goroutines",
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
	snap := func() []check.Status {
		st, _ := r.Status(context.Background())
		return st
	}
	// warmup spreads the first round over one delay_loop; measure after it.
	time.Sleep(delay + delay/2)
	st0 := snap()
	cpu1, w1 := cpuTime(), time.Now()
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if profilePath != "" {
		f, err := os.Create(profilePath)
		if err != nil {
			return rr, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return rr, err
		}
	}
	time.Sleep(measure)
	if profilePath != "" {
		pprof.StopCPUProfile()
		profilePath = ""
	}
	var ru2 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru2)
	cpu2, w2 := cpuTime(), time.Now()
	st1 := snap()
	rr.rss, rr.hwm = procStatus("VmRSS"), procStatus("VmHWM")
	cancel()
	<-done
	var total, failed uint64
	var durSum time.Duration
	onTime := 0
	for i := range st1 {
		a, b := st0[i], st1[i]
		total += b.Checks - a.Checks
		failed += b.Failed - a.Failed
		durSum += b.Duration
		rr.maxDur = max(rr.maxDur, b.Duration)
		if b.Failed > a.Failed {
			rr.reasons[b.Last.Reason]++
		}
		// On schedule: the checks a server got in the window are as
		// many as its due times that fell in it (delay_loop after each
		// attempt ended), give or take the one at each edge.
		due := int(measure / (delay + b.Duration))
		if int(b.Checks-a.Checks) >= due {
			onTime++
		}
	}
	rr.checks, rr.failed, rr.downs = float64(total), failed, downs.Load()
	rr.wall, rr.cpu = w2.Sub(w1), cpu2-cpu1
	rr.user = time.Duration(ru2.Utime.Nano() - ru1.Utime.Nano())
	rr.sys = time.Duration(ru2.Stime.Nano() - ru1.Stime.Nano())
	if total > 0 {
		rr.perCheck = time.Duration(float64(rr.cpu) / float64(total))
		rr.meanDur = durSum / time.Duration(len(st1))
		rr.onTime = float64(onTime) / float64(len(st1))
	}
	return rr, nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}
