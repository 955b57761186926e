package check

// End-to-end acceptance: real servers (nginx over HTTP and HTTPS, dnsmasq,
// Python's smtpd, socat) in network namespaces, checked by a Runner in a
// helper process inside the load balancer's namespace, with faults
// injected (process stopped, packets dropped, server frozen). Each case
// measures how long the Runner takes to declare the server down and up and
// asserts it against keepalived's formula.

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// e2eChecker describes a checker for the helper process.
type e2eChecker struct {
	Server       string
	Kind         string
	Addr         string
	Timing       Timing
	Path, Digest string
	TLS          bool
	DNSName      string
	DNSType      string
	RequireReply bool
	Payload      []byte
	Argv         []string
	Helo         string
}

func (c e2eChecker) build() (Checker, error) {
	ep := Endpoint{Addr: netip.MustParseAddrPort(c.Addr), Timeout: c.Timing.Timeout}
	switch c.Kind {
	case "HTTP_GET", "SSL_GET":
		h := &HTTP{Endpoint: ep, URLs: []URL{{Path: c.Path, Digest: c.Digest}}}
		if c.TLS {
			cfg, err := SSL{}.Config()
			if err != nil {
				return nil, err
			}
			h.TLS = cfg
		}
		return h, nil
	case "TCP_CHECK":
		return &TCP{Endpoint: ep}, nil
	case "PING_CHECK":
		return &Ping{Endpoint: ep}, nil
	case "DNS_CHECK":
		typ, err := DNSType(c.DNSType)
		if err != nil {
			return nil, err
		}
		return &DNS{Endpoint: ep, Name: c.DNSName, Type: typ}, nil
	case "SMTP_CHECK":
		return &SMTP{Endpoint: ep, HeloName: c.Helo}, nil
	case "UDP_CHECK":
		return &UDP{Endpoint: ep, Payload: c.Payload, RequireReply: c.RequireReply}, nil
	case "MISC_CHECK":
		return &Misc{Argv: c.Argv, Timeout: c.Timing.Timeout}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", c.Kind)
}

const helperEnv = "VIPD_CHECK_E2E_CONFIG"

// TestMain runs the test binary as one of TestE2E's helper processes when
// their environment variable is set (helpers are not tests: they neither
// pass nor skip), and as the tests otherwise.
func TestMain(m *testing.M) {
	// The genhash helper runs while the Runner's variable is still set.
	if opts := os.Getenv(genhashEnv); opts != "" {
		if err := genhashProcess(opts); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if path := os.Getenv(helperEnv); path != "" {
		if err := runnerProcess(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runnerProcess is the Runner process the e2e test starts in the load
// balancer's namespace (this test binary with $VIPD_CHECK_E2E_CONFIG set
// to the checkers' file). It prints each event as a JSON line prefixed
// with "EVENT ", until the test kills it.
func runnerProcess(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cs []e2eChecker
	if err := json.Unmarshal(b, &cs); err != nil {
		return err
	}
	var servers []Server
	for _, c := range cs {
		chk, err := c.build()
		if err != nil {
			return err
		}
		servers = append(servers, Server{Name: c.Server, Weight: 1, Checkers: []Spec{{Name: c.Kind + " " + c.Addr, Checker: chk, Timing: c.Timing}}})
		// A twin checked every 50 ms without retries tells the test when
		// the real server serves again after a repair.
		fast := Timing{DelayLoop: 50 * time.Millisecond, Timeout: c.Timing.Timeout, Alpha: true}
		servers = append(servers, Server{Name: "probe:" + c.Server, Weight: 1, Checkers: []Spec{{Name: "probe", Checker: chk, Timing: fast}}})
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	r := NewRunner(servers, Options{OnEvent: func(e Event) {
		b, _ := json.Marshal(e)
		mu.Lock()
		fmt.Fprintf(out, "EVENT %s\n", b)
		out.Flush()
		mu.Unlock()
	}})
	return r.Run(context.Background())
}

const genhashEnv = "VIPD_CHECK_E2E_GENHASH"

// genhashProcess prints Genhash's output for the options in
// $VIPD_CHECK_E2E_GENHASH; TestE2E runs it inside a namespace.
func genhashProcess(opts string) error {
	var o GenhashOptions
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		return err
	}
	return Genhash(context.Background(), os.Stdout, os.Stderr, o)
}

// eventLog follows the helper's output.
type eventLog struct {
	p *lab.Proc
}

func (l *eventLog) events() []Event {
	var evs []Event
	for _, line := range strings.Split(l.p.Output(), "\n") {
		if s, ok := strings.CutPrefix(line, "EVENT "); ok {
			var e Event
			if json.Unmarshal([]byte(s), &e) == nil {
				evs = append(evs, e)
			}
		}
	}
	return evs
}

// wait returns the first event of server of kind after t.
func (l *eventLog) wait(tb testing.TB, server string, kind EventKind, after time.Time, timeout time.Duration) Event {
	tb.Helper()
	var found Event
	lab.Eventually(tb, timeout, func() bool {
		for _, e := range l.events() {
			if e.Server == server && e.Kind == kind && e.Time.After(after) {
				found = e
				return true
			}
		}
		return false
	}, "no %s event for %s after %s", kind, server, after.Format("15:04:05.000"))
	return found
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// selfSignedCert writes a self-signed certificate for rs.vipd.test and its
// key to dir, and returns their paths.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	cert, key := lab.SelfSignedCert(t, "rs.vipd.test")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, string(cert))
	writeFile(t, keyFile, string(key))
	return certFile, keyFile
}

// nginxConf writes an nginx config serving dir/www over HTTP on ip:80 and
// HTTPS on ip:443.
func nginxConf(t *testing.T, ip netip.Addr, page string) (conf, dir string) {
	t.Helper()
	dir = lab.PublicDir(t, map[string]string{"www/index.html": page}) // nginx's workers read it
	cert, key := selfSignedCert(t, dir)
	conf = filepath.Join(dir, "nginx.conf")
	tmp := filepath.Join(dir, "tmp")
	writeFile(t, conf, fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[2]s; proxy_temp_path %[2]s; fastcgi_temp_path %[2]s; uwsgi_temp_path %[2]s; scgi_temp_path %[2]s;
  server { listen %[3]s:80; root %[1]s/www; }
  server { listen %[3]s:443 ssl; ssl_certificate %[4]s; ssl_certificate_key %[5]s; root %[1]s/www; }
}
`, dir, tmp, ip, cert, key))
	return conf, dir
}

type e2eCase struct {
	name   string
	server string
	fault  func(t *testing.T)
	repair func(t *testing.T)
	// slow: every failing attempt waits connect_timeout (no RST, no ICMP).
	slow bool
}

func TestE2E(t *testing.T) {
	stalls.run()
	lab.RequireRoot(t)
	lab.RequireCommand(t, "nginx", "dnsmasq", "socat", "python3")
	if err := exec.Command("python3", "-c", "import smtpd").Run(); err != nil {
		lab.Skip(t, "python3 lacks the smtpd module (Python <= 3.11 ships it)")
	}
	l := lab.New(t)
	lb := l.Host("lb", "198.18.0.11/24", "2001:2::11/64")
	web := l.Host("web", "198.18.0.12/24")
	web2 := l.Host("web2", "198.18.0.13/24", "2001:2::13/64")
	dns := l.Host("dns", "198.18.0.14/24")
	mail := l.Host("mail", "198.18.0.15/24")
	udp := l.Host("udp", "198.18.0.16/24")
	tcp := l.Host("tcp", "198.18.0.17/24")
	// Unprivileged ICMP sockets in the balancer's namespace: PING_CHECK
	// takes its datagram-socket path here (the unit test covers raw).
	lb.MustRun("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	// The kernel sends at most about one ICMP error a second to a peer;
	// the 50 ms probe twins would use that up and turn "port unreachable"
	// into a timeout for the checker under test.
	for _, h := range []*lab.Host{dns, udp} {
		h.MustRun("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	}

	page := "vipd e2e page\n"
	sum := md5.Sum([]byte(page))
	digest := hex.EncodeToString(sum[:])

	// Real servers.
	webConf, _ := nginxConf(t, web.Addr, page)
	web2Conf, _ := nginxConf(t, web2.Addr, page)
	// Every process is started from one pinned thread: lab.Start sets
	// Pdeathsig, which fires when the forking *thread* exits, so a thread
	// that ends (after any LockOSThread without unlock, lab.Do's for one)
	// would take the real servers it forked with it.
	pin := newPinnedThread(t)
	startNginx := func(h *lab.Host, conf string) (p *lab.Proc) {
		pin.do(func() { p = h.Start("nginx", "-c", conf, "-e", filepath.Join(filepath.Dir(conf), "error.log")) })
		return p
	}
	var mu sync.Mutex
	procs := map[string]*lab.Proc{}
	setProc := func(k string, p *lab.Proc) { mu.Lock(); procs[k] = p; mu.Unlock() }
	getProc := func(k string) *lab.Proc { mu.Lock(); defer mu.Unlock(); return procs[k] }
	setProc("web", startNginx(web, webConf))
	setProc("web2", startNginx(web2, web2Conf))
	dnsDir := lab.PublicDir(t, nil)
	startDNS := func() (p *lab.Proc) {
		pin.do(func() {
			p = dns.Start("dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "-u", "root",
				"--bind-interfaces", "--listen-address="+dns.Addr.String(), "--port=53",
				"--pid-file="+filepath.Join(dnsDir, "pid"), "--address=/web.vipd.test/198.18.0.12", "--log-facility=-")
		})
		return p
	}
	setProc("dns", startDNS())
	startSMTP := func() (p *lab.Proc) {
		pin.do(func() {
			p = mail.Start("python3", "-W", "ignore", "-m", "smtpd", "-n", "-c", "DebuggingServer", mail.Addr.String()+":25")
		})
		return p
	}
	setProc("mail", startSMTP())
	startUDP := func() (p *lab.Proc) {
		pin.do(func() { p = udp.Start("socat", "UDP4-RECVFROM:7,bind="+udp.Addr.String()+",fork", "EXEC:cat") })
		return p
	}
	setProc("udp", startUDP())
	startTCP := func() (p *lab.Proc) {
		pin.do(func() {
			p = tcp.Start("socat", "TCP4-LISTEN:5000,bind="+tcp.Addr.String()+",reuseaddr,fork", "EXEC:cat")
		})
		return p
	}
	setProc("tcp", startTCP())
	miscDir := lab.PublicDir(t, nil)
	flag := filepath.Join(miscDir, "healthy")
	writeFile(t, flag, "1")
	miscScript := filepath.Join(miscDir, "check.sh")
	if err := os.WriteFile(miscScript, []byte("#!/bin/sh\ntest -f "+flag+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	tm := Timing{DelayLoop: time.Second, Retry: 1, DelayBeforeRetry: 500 * time.Millisecond, Timeout: time.Second, Alpha: true}
	checkers := []e2eChecker{
		{Server: "web-http", Kind: "HTTP_GET", Addr: "198.18.0.12:80", Path: "/index.html", Digest: digest},
		{Server: "web-freeze", Kind: "HTTP_GET", Addr: "198.18.0.12:80", Path: "/"},
		{Server: "web-https", Kind: "SSL_GET", Addr: "198.18.0.12:443", Path: "/index.html", Digest: digest, TLS: true},
		{Server: "web2-http", Kind: "HTTP_GET", Addr: "198.18.0.13:80", Path: "/index.html", Digest: digest},
		{Server: "web2-ping", Kind: "PING_CHECK", Addr: "198.18.0.13:0"},
		{Server: "web2-ping6", Kind: "PING_CHECK", Addr: "[2001:2::13]:0"},
		{Server: "dns", Kind: "DNS_CHECK", Addr: "198.18.0.14:53", DNSName: "web.vipd.test", DNSType: "A"},
		{Server: "mail", Kind: "SMTP_CHECK", Addr: "198.18.0.15:25", Helo: "lb.vipd.test"},
		{Server: "udp", Kind: "UDP_CHECK", Addr: "198.18.0.16:7", Payload: []byte("vipd"), RequireReply: true},
		{Server: "tcp", Kind: "TCP_CHECK", Addr: "198.18.0.17:5000"},
		{Server: "misc", Kind: "MISC_CHECK", Argv: []string{miscScript}, Addr: "198.18.0.12:0"},
	}
	for i := range checkers {
		checkers[i].Timing = tm
	}
	cfg, _ := json.Marshal(checkers)
	cfgPath := filepath.Join(t.TempDir(), "checkers.json")
	writeFile(t, cfgPath, string(cfg))
	t.Setenv(helperEnv, cfgPath)
	start := time.Now()
	var helper *lab.Proc
	pin.do(func() { helper = lb.Start(os.Args[0], "-test.run=^$", "-test.timeout=10m") })
	log := &eventLog{p: helper}

	// alpha: every server starts down and comes up at its first success,
	// which is also the sign that the real servers are ready.
	for _, c := range checkers {
		log.wait(t, c.Server, ServerUp, start, 20*time.Second)
	}

	pgKill := func(key string, sig syscall.Signal) func(t *testing.T) {
		return func(t *testing.T) {
			if err := syscall.Kill(-getProc(key).Cmd.Process.Pid, sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := func(key string) func(t *testing.T) {
		return func(t *testing.T) {
			p := getProc(key)
			p.Kill()
			<-p.Done()
		}
	}
	restart := func(key string, start func() *lab.Proc) func(t *testing.T) {
		return func(t *testing.T) { setProc(key, start()) }
	}
	// Cases on different hosts run in parallel; cases on one host run in
	// sequence inside one group.
	groups := [][]e2eCase{
		{
			{name: "nginx stopped", server: "web-http", fault: stop("web"), repair: restart("web", func() *lab.Proc { return startNginx(web, webConf) })},
			{name: "nginx frozen (SIGSTOP): no answer within connect_timeout", server: "web-freeze", fault: pgKill("web", syscall.SIGSTOP), repair: pgKill("web", syscall.SIGCONT), slow: true},
			{name: "nginx https stopped", server: "web-https", fault: stop("web"), repair: restart("web", func() *lab.Proc { return startNginx(web, webConf) })},
		},
		{
			{name: "web2 blackholed: HTTP", server: "web2-http", fault: func(*testing.T) { web2.Blackhole() }, repair: func(*testing.T) { web2.Unblackhole() }, slow: true},
		},
		{
			{name: "dnsmasq stopped", server: "dns", fault: stop("dns"), repair: restart("dns", startDNS)},
			{name: "dnsmasq frozen", server: "dns", fault: pgKill("dns", syscall.SIGSTOP), repair: pgKill("dns", syscall.SIGCONT), slow: true},
		},
		{
			{name: "smtpd stopped", server: "mail", fault: stop("mail"), repair: restart("mail", startSMTP)},
			{name: "mail host blackholed", server: "mail", fault: func(*testing.T) { mail.Blackhole() }, repair: func(*testing.T) { mail.Unblackhole() }, slow: true},
		},
		{
			{name: "udp echo stopped (ICMP port unreachable)", server: "udp", fault: stop("udp"), repair: restart("udp", startUDP)},
			{name: "udp echo frozen (no reply)", server: "udp", fault: pgKill("udp", syscall.SIGSTOP), repair: pgKill("udp", syscall.SIGCONT), slow: true},
		},
		{
			{name: "tcp listener stopped", server: "tcp", fault: stop("tcp"), repair: restart("tcp", startTCP)},
		},
		{
			{name: "misc script fails", server: "misc", fault: func(t *testing.T) { os.Remove(flag) }, repair: func(t *testing.T) { writeFile(t, flag, "1") }},
		},
	}
	var rmu sync.Mutex
	var report []string
	t.Run("faults", func(t *testing.T) {
		for gi, g := range groups {
			t.Run(fmt.Sprint("group", gi), func(t *testing.T) {
				t.Parallel()
				for _, c := range g {
					t.Run(c.name, func(t *testing.T) {
						line := runFaultCase(t, log, tm, c)
						rmu.Lock()
						report = append(report, line)
						rmu.Unlock()
					})
				}
			})
		}
	})
	t.Run("ping over a blackhole", func(t *testing.T) {
		// After the HTTP group has restored web2 (which took the pings
		// down too): both address families.
		for _, s := range []string{"web2-ping", "web2-ping6"} {
			lab.Eventually(t, 15*time.Second, func() bool { return log.isUp(s) }, "%s not up before the fault", s)
		}
		fault := time.Now()
		web2.Blackhole()
		for _, s := range []string{"web2-ping", "web2-ping6"} {
			e := log.wait(t, s, ServerDown, fault, 10*time.Second)
			checkBound(t, s+" down", e.Time.Sub(fault), tm, true)
		}
		fix := time.Now()
		web2.Unblackhole()
		for _, s := range []string{"web2-ping", "web2-ping6"} {
			e := log.wait(t, s, ServerUp, fix, 10*time.Second)
			lost := stalls.lostSince(fix)
			if d := e.Time.Sub(fix); d > tm.DelayLoop+tm.Timeout+tolerance+lost {
				t.Errorf("%s up %v after repair, want <= %v (with %v lost to CPU starvation)", s, d, tm.DelayLoop+tm.Timeout+tolerance+lost, lost)
			}
		}
	})
	t.Run("genhash equals keepalived's genhash", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", 5000)
		writeFile(t, filepath.Join(filepath.Dir(webConf), "www", "big.html"), big)
		for _, tc := range []struct {
			url string
			ssl bool
		}{{"/index.html", false}, {"/big.html", false}, {"/index.html", true}, {"/big.html", true}} {
			args := []string{"-s", web.Addr.String(), "-u", tc.url, "-p", "80"}
			port := uint16(80)
			if tc.ssl {
				args = append(args, "-S", "-p", "443")
				port = 443
			}
			want := lb.MustRun("genhash", args...)
			// Genhash runs in a process of the test binary inside the
			// namespace (lab.Do would leave a thread of this process in it).
			o, _ := json.Marshal(GenhashOptions{Server: netip.AddrPortFrom(web.Addr, port), URL: tc.url, SSL: tc.ssl})
			t.Setenv(genhashEnv, string(o))
			got, err := lb.Run(os.Args[0], "-test.run=^$")
			if err != nil || got != want {
				t.Errorf("%s ssl=%v: vipd %q (%v), genhash %q", tc.url, tc.ssl, got, err, want)
			}
		}
	})
	for _, r := range report {
		t.Log(r)
	}
}

// tolerance absorbs scheduling on two shared cores and process start-up.
const tolerance = time.Second

// downBound is keepalived's detection bound: the next round comes within
// delay_loop, then retry more attempts spaced by delay_before_retry; when
// attempts time out rather than fail at once, each also waits
// connect_timeout.
func downBound(tm Timing, slow bool) time.Duration {
	b := tm.DelayLoop + time.Duration(tm.Retry)*tm.DelayBeforeRetry
	if slow {
		b += time.Duration(tm.Retry+1) * tm.Timeout
	}
	return b
}

func checkBound(t *testing.T, what string, d time.Duration, tm Timing, slow bool) {
	t.Helper()
	lower := time.Duration(tm.Retry) * tm.DelayBeforeRetry
	if slow {
		lower += time.Duration(tm.Retry+1) * tm.Timeout
	}
	// What starvation cost this process while the fault was being
	// detected is added to the upper tolerance (see stallMonitor).
	lost := stalls.lostSince(time.Now().Add(-d))
	if d < lower-100*time.Millisecond || d > downBound(tm, slow)+tolerance+lost {
		t.Errorf("%s after %v, want in [%v, %v] (bound + %v tolerance + %v lost to CPU starvation)", what, d.Round(time.Millisecond), lower, downBound(tm, slow)+tolerance+lost, tolerance, lost.Round(time.Millisecond))
	}
}

// pinnedThread runs functions on one OS thread that lives until the test
// ends.
type pinnedThread struct{ fns chan func() }

func newPinnedThread(t *testing.T) *pinnedThread {
	p := &pinnedThread{fns: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine, after the test
		for f := range p.fns {
			f()
		}
	}()
	t.Cleanup(func() { close(p.fns) })
	return p
}

func (p *pinnedThread) do(f func()) {
	done := make(chan struct{})
	p.fns <- func() { defer close(done); f() }
	<-done
}

// isUp says whether the server's last event says up.
func (l *eventLog) isUp(server string) bool {
	up := false
	for _, e := range l.events() {
		if e.Server == server {
			up = e.Up
		}
	}
	return up
}

func runFaultCase(t *testing.T, log *eventLog, tm Timing, c e2eCase) string {
	// A previous case on the same host may have taken this server down
	// too; start from up.
	lab.Eventually(t, 15*time.Second, func() bool { return log.isUp(c.server) }, "%s not up before the fault", c.server)
	fault := time.Now()
	c.fault(t)
	e := log.wait(t, c.server, ServerDown, fault, 15*time.Second)
	detect := e.Time.Sub(fault)
	checkBound(t, "down", detect, tm, c.slow)
	// The twin probe went down long before the checker did.
	repaired := time.Now()
	c.repair(t)
	// The clock for recovery starts when the server serves again (a
	// restarted python or nginx takes a while on two busy cores).
	fix := log.wait(t, "probe:"+c.server, ServerUp, repaired, 15*time.Second).Time
	u := log.wait(t, c.server, ServerUp, fix.Add(-tm.DelayLoop-tm.Timeout), 15*time.Second)
	back := max(u.Time.Sub(fix), 0)
	if lost := stalls.lostSince(fix); back > tm.DelayLoop+tolerance+lost {
		t.Errorf("up %v after the server serves again, want <= delay_loop (+%v tolerance, +%v lost to CPU starvation) = %v", back.Round(time.Millisecond), tolerance, lost.Round(time.Millisecond), tm.DelayLoop+tolerance+lost)
	}
	return fmt.Sprintf("%-55s down after %6v (bound %v), up after %6v (reason: %s)", c.name, detect.Round(time.Millisecond), downBound(tm, c.slow), back.Round(time.Millisecond), e.Reason)
}
