package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// The tests of examples/: every configuration there passes `vipd -t`
// (and `keepalived -t`, unless it uses vipd extensions), and each
// deployment runs, from its files as committed, in network namespaces
// with the addresses the files name.

const examplesDir = "../examples"

// exampleConfs lists the keepalived configurations under examples/
// (files named keepalived*.conf), relative to examplesDir.
func exampleConfs(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(examplesDir, "*", "keepalived*.conf"))
	if err != nil || len(all) == 0 {
		t.Fatalf("no configurations in %s: %v", examplesDir, err)
	}
	var rel []string
	for _, p := range all {
		r, _ := filepath.Rel(examplesDir, p)
		rel = append(rel, r)
	}
	return rel
}

// readExample returns the text of an example file.
func readExample(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examplesDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runExit runs a program in h and returns its combined output and exit
// status (-1 when it could not run).
func runExit(t *testing.T, h *lab.Host, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	return "", -1
}

// keepalivedObjections lists, for the examples that use vipd extensions, the
// keywords keepalived -t objects to; it must object to nothing else.
var keepalivedObjections = map[string][]string{
	"tcp-proxy/keepalived-master.conf": {"vipd_dataplane", "proxy_protocol"},
	"tcp-proxy/keepalived-backup.conf": {"vipd_dataplane", "proxy_protocol"},
}

// ipvsOnly are the examples that only the ipvs data plane can run (DR):
// vipd -t accepts them as keepalived does and with --dataplane ipvs,
// and refuses them with --dataplane proxy, naming the line.
var ipvsOnly = map[string]bool{
	"lvs-dr/keepalived-master.conf": true,
	"lvs-dr/keepalived-backup.conf": true,
}

// TestExamplesConfigTest: every example configuration passes vipd -t with
// no finding at all, and keepalived 2.2.7 -t too (or objects only to the
// vipd extensions the example's README names), in a namespace that has
// the interface they name.
func TestExamplesConfigTest(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "keepalived")
	l := lab.New(t)
	h := l.Host("kt")
	vipd := lab.Binary(t, "./cmd/vipd")
	confs := exampleConfs(t)
	for _, want := range []string{"quickstart", "lvs-nat", "lvs-dr", "tcp-proxy", "master-master", "unicast"} {
		if !slices.ContainsFunc(confs, func(c string) bool { return strings.HasPrefix(c, want+"/") }) {
			t.Errorf("examples/%s has no keepalived*.conf", want)
		}
	}
	for _, rel := range confs {
		t.Run(rel, func(t *testing.T) {
			path, _ := filepath.Abs(filepath.Join(examplesDir, rel))
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), "README.md")); err != nil {
				t.Errorf("examples/%s has no README.md", filepath.Dir(rel))
			}
			if out, code := runExit(t, h, vipd, "-t", "-f", path); code != 0 || out != "" {
				t.Errorf("vipd -t exits %d, want 0 and no finding:\n%s", code, out)
			}
			if ipvsOnly[rel] {
				if out, code := runExit(t, h, vipd, "-t", "--dataplane", "ipvs", "-f", path); code != 0 || out != "" {
					t.Errorf("vipd -t --dataplane ipvs exits %d:\n%s", code, out)
				}
				out, code := runExit(t, h, vipd, "-t", "--dataplane", "proxy", "-f", path)
				if code == 0 || !regexp.MustCompile(`keepalived-\w+\.conf:\d+: error: virtual_server: .*lb_kind DR needs the ipvs data plane`).MatchString(out) {
					t.Errorf("vipd -t --dataplane proxy exits %d, want a file:line error naming DR:\n%s", code, out)
				}
			}
			pids := t.TempDir()
			out, code := runExit(t, h, "keepalived", "-t", "-f", path,
				"-p", pids+"/k.pid", "-r", pids+"/v.pid", "-c", pids+"/c.pid", "-b", pids+"/b.pid")
			objections, extended := keepalivedObjections[rel]
			if !extended {
				if code != 0 {
					t.Errorf("keepalived -t exits %d:\n%s", code, out)
				}
				return
			}
			if code == 0 {
				t.Fatalf("keepalived -t accepts %s, which uses vipd extensions %v: update keepalivedObjections", rel, objections)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !slices.ContainsFunc(objections, func(kw string) bool { return strings.Contains(line, "Unknown keyword '"+kw+"'") }) {
					t.Errorf("keepalived -t objects to more than the vipd extensions %v: %q", objections, line)
				}
			}
			for _, kw := range objections {
				if !strings.Contains(out, "'"+kw+"'") {
					t.Errorf("keepalived -t does not mention %s:\n%s", kw, out)
				}
			}
		})
	}
}

// getPath is get for any host:port and path: it fetches http://addr/path
// from inside h with HTTP/1.0 and returns the trimmed body of a 200
// answer.
func getPath(h *lab.Host, addr, path string, timeout time.Duration) (string, error) {
	var body string
	err := h.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.0\r\nHost: vip\r\n\r\n"); err != nil {
			return err
		}
		r := bufio.NewReader(c)
		status, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.Contains(status, " 200 ") {
			return fmt.Errorf("status %q", strings.TrimSpace(status))
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		_, after, _ := strings.Cut(string(b), "\r\n\r\n")
		body = strings.TrimSpace(after)
		return nil
	})
	return body, err
}

// alternates reports whether bodies cycle over exactly the names given,
// in some order (rr over equal weights).
func alternates(bodies []string, names ...string) bool {
	if len(bodies) < 2*len(names) {
		return false
	}
	for i, b := range bodies {
		if !slices.Contains(names, b) || (i >= len(names) && b != bodies[i-len(names)]) {
			return false
		}
	}
	seen := map[string]bool{}
	for _, b := range bodies[:len(names)] {
		seen[b] = true
	}
	return len(seen) == len(names)
}

// eventuallyOnly waits until n answers in a row through addr come from
// want alone.
func eventuallyOnly(t *testing.T, h *lab.Host, addr, want string, timeout time.Duration) {
	t.Helper()
	var last []string
	lab.Eventually(t, timeout, func() bool {
		last = last[:0]
		for i := 0; i < 4; i++ {
			b, err := getPath(h, addr, "/", 2*time.Second)
			if err != nil {
				b = err.Error()
			}
			last = append(last, b)
		}
		return !slices.ContainsFunc(last, func(b string) bool { return b != want })
	}, "answers through %s are not all %q: %v", addr, want, &last)
}

// TestExampleQuickstart follows examples/quickstart/README.md as an
// unprivileged user: two python3 web servers on 127.0.0.1:8081/8082, vipd
// -C on the file as committed, curl 127.0.0.100:8080 (round robin), a
// real server stops (only the other answers) and comes back. The
// namespace only keeps its loopback ports apart from the machine's.
func TestExampleQuickstart(t *testing.T) {
	t.Parallel()
	lab.RequireCommand(t, "python3", "setpriv")
	l := lab.New(t)
	h := l.Host("qs")
	// Everything the unprivileged processes touch lives in a directory
	// they can read, and write to (the socket, the pid file).
	files := map[string]string{}
	for _, f := range []string{"keepalived.conf", "rs1/index.html", "rs2/index.html"} {
		files[f] = readExample(t, "quickstart/"+f)
	}
	dir := lab.PublicDir(t, files)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{}
	for _, pkg := range []string{"./cmd/vipd", "./cmd/vipctl"} {
		b, err := os.ReadFile(lab.Binary(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		bins[pkg] = filepath.Join(dir, filepath.Base(pkg))
		if err := os.WriteFile(bins[pkg], b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asUser := func(args ...string) []string {
		return append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	// Debian's python3, which any user may run (a python3 found first on
	// root's PATH may live under /root).
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python, _ = exec.LookPath("python3")
	}
	webServer := func(name, port string) *lab.Proc {
		p := h.Start("setpriv", asUser(python, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", filepath.Join(dir, name))...)
		lab.Eventually(t, 10*time.Second, func() bool { b, _ := getPath(h, "127.0.0.1:"+port, "/", time.Second); return b == name },
			"python3 http.server %s not serving on %s", name, port)
		return p
	}
	rs1 := webServer("rs1", "8081")
	webServer("rs2", "8082")

	sock := filepath.Join(dir, "vipd.sock")
	v := h.Start("setpriv", asUser(bins["./cmd/vipd"], "-C", "-n", "-l", "-f", filepath.Join(dir, "keepalived.conf"),
		"--control", sock, "-p", filepath.Join(dir, "vipd.pid"))...)
	const vip = "127.0.0.100:8080"
	roundRobin := func(what string) {
		t.Helper()
		var got []string
		lab.Eventually(t, 10*time.Second, func() bool {
			got = got[:0]
			for range 4 {
				b, _ := getPath(h, vip, "/", time.Second)
				got = append(got, b)
			}
			return alternates(got, "rs1", "rs2")
		}, "%s through %s: %v\n%s", what, vip, &got, v.Output())
	}
	roundRobin("round robin")
	// The proxy may serve a moment before the control socket is open
	// (the daemon opens it last).
	lab.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil },
		"no control socket %s:\n%s", sock, v.Output)

	vipctl := func(args ...string) string {
		out, err := h.Run("setpriv", asUser(append([]string{bins["./cmd/vipctl"], "--socket", sock}, args...)...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := vipctl("list", "-n"); !strings.Contains(out, "TCP  127.0.0.100:8080 rr") || strings.Count(out, "Masq") != 2 {
		t.Errorf("vipctl list -n:\n%s", out)
	}

	// "kill %1": rs1 stops; HTTP_GET takes it out of the pool (delay_loop
	// 2 + connect_timeout 1 + retry 1 x delay_before_retry 1, plus slack).
	rs1.Kill()
	lab.Eventually(t, 10*time.Second, func() bool { return !strings.Contains(vipctl("list", "-n"), "127.0.0.1:8081") },
		"rs1 still in the pool:\n%s", v.Output())
	if out := vipctl("checks"); !strings.Contains(out, "DOWN") {
		t.Errorf("vipctl checks shows no DOWN checker after rs1 left the pool:\n%s", out)
	}
	eventuallyOnly(t, h, vip, "rs2", 2*time.Second)
	webServer("rs1", "8081")
	roundRobin("rs1 back in round robin")

	if err := v.Stop(10 * time.Second); err != nil {
		t.Fatalf("vipd did not stop on SIGTERM: %v\n%s", err, v.Output())
	}
	if out := v.Output(); strings.Contains(out, "ERROR") || strings.Contains(out, "WARN") {
		t.Errorf("vipd logged errors or warnings as an unprivileged user:\n%s", out)
	}
}

// natLab is the lvs-nat example's network on one bridge: the outside
// 198.18.0.0/24 (client, the directors, the VIP) and the inside
// 198.18.1.0/24 (the directors, the real servers, their gateway VIP).
type natLab struct {
	client, d1, d2, rs1, rs2 *lab.Host
}

// TestExampleLVSNAT runs examples/lvs-nat on two directors: traffic from
// the outside reaches the inside real servers only through the VIP, a
// real server fails and returns, the master stops (the backup takes both
// VIPs, the sync group), and comes back (preemption).
func TestExampleLVSNAT(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	n := natLab{
		client: l.Host("client", "198.18.0.11/24"),
		d1:     l.Host("d1", "198.18.0.12/24", "198.18.1.12/24"),
		d2:     l.Host("d2", "198.18.0.13/24", "198.18.1.13/24"),
		rs1:    l.Host("rs1", "198.18.1.21/24"),
		rs2:    l.Host("rs2", "198.18.1.22/24"),
	}
	for _, rs := range []*lab.Host{n.rs1, n.rs2} {
		rs.MustRun("ip", "route", "add", "default", "via", "198.18.1.1")
	}
	ng1 := nginx(t, n.rs1, "rs1")
	nginx(t, n.rs2, "rs2")
	if _, err := get(n.client, "198.18.1.21", 500*time.Millisecond); err == nil {
		t.Fatal("the client reaches a real server directly; the NAT topology is wrong")
	}

	m := startVipd(t, n.d1, readExample(t, "lvs-nat/keepalived-master.conf"))
	b := startVipd(t, n.d2, readExample(t, "lvs-nat/keepalived-backup.conf"))
	both := func(d *director, state string) bool { return d.state("VI_EXT") == state && d.state("VI_INT") == state }
	lab.Eventually(t, 10*time.Second, func() bool { return both(m, "MASTER") && both(b, "BACKUP") },
		"want d1 MASTER and d2 BACKUP for VI_EXT and VI_INT")
	if !hasAddr(n.d1, "198.18.0.100") || !hasAddr(n.d1, "198.18.1.1") {
		t.Fatal("d1 is MASTER but lacks a VIP")
	}
	const vip = "198.18.0.100"
	var got []string
	lab.Eventually(t, 10*time.Second, func() bool { got, _ = getsQuiet(n.client, vip, 4); return alternates(got, "rs1", "rs2") },
		"wrr over equal weights through the VIP: %v", &got)
	if _, err := n.rs1.Run("ping", "-c1", "-W2", "198.18.1.1"); err != nil {
		t.Errorf("rs1 cannot reach its gateway VIP: %v", err)
	}

	// rs1 fails: out within delay_loop 3 + connect_timeout 2 + retry 1 x
	// delay_before_retry 1 (+ slack); back after one good check.
	ng1.Kill()
	lab.Eventually(t, 15*time.Second, func() bool { return !m.inPool("198.18.1.21:80") }, "rs1 not taken out of the pool")
	eventuallyOnly(t, n.client, vip+":80", "rs2", 2*time.Second)
	nginx(t, n.rs1, "rs1")
	lab.Eventually(t, 10*time.Second, func() bool { got, _ = getsQuiet(n.client, vip, 4); return alternates(got, "rs1", "rs2") },
		"rs1 did not come back: %v", &got)

	// The master stops (priority 0): the backup takes both VIPs at once.
	stop(t, m.proc)
	lab.Eventually(t, 3*time.Second, func() bool { return both(b, "MASTER") && hasAddr(n.d2, vip) && hasAddr(n.d2, "198.18.1.1") },
		"d2 did not take both VIPs after d1 stopped")
	if hasAddr(n.d1, vip) || hasAddr(n.d1, "198.18.1.1") {
		t.Fatal("d1 left a VIP behind after SIGTERM")
	}
	lab.Eventually(t, 5*time.Second, func() bool { got, _ = getsQuiet(n.client, vip, 4); return alternates(got, "rs1", "rs2") },
		"no service through d2: %v", &got)
	if _, err := n.rs2.Run("ping", "-c1", "-W2", "198.18.1.1"); err != nil {
		t.Errorf("rs2 cannot reach its gateway VIP on d2: %v", err)
	}

	// d1 comes back with the higher priority and takes both VIPs back.
	m = startVipd(t, n.d1, readExample(t, "lvs-nat/keepalived-master.conf"))
	lab.Eventually(t, 10*time.Second, func() bool { return both(m, "MASTER") && both(b, "BACKUP") && !hasAddr(n.d2, vip) },
		"d1 did not preempt: d1 %s/%s, d2 %s/%s", m.state("VI_EXT"), m.state("VI_INT"), b.state("VI_EXT"), b.state("VI_INT"))
	lab.Eventually(t, 5*time.Second, func() bool { got, _ = getsQuiet(n.client, vip, 4); return alternates(got, "rs1", "rs2") },
		"no service after preemption: %v", &got)
}

// inPool reports whether a real server (ADDR:PORT) is in one of the
// director's running services.
func (d *director) inPool(rs string) bool {
	for _, s := range d.status().Services {
		for _, dst := range s.Dests {
			if dst.Addr.String() == rs {
				return true
			}
		}
	}
	return false
}

// getsQuiet fetches http://addr/ n times; failed fetches appear as their
// error text, so a caller can wait for a pattern.
func getsQuiet(h *lab.Host, addr string, n int) ([]string, error) {
	var out []string
	var first error
	for i := 0; i < n; i++ {
		b, err := get(h, addr, 2*time.Second)
		if err != nil {
			b = "error: " + err.Error()
			if first == nil {
				first = err
			}
		}
		out = append(out, b)
	}
	return out, first
}

// realServerUp prepares h as a DR real server with vipctl realserver, as
// examples/lvs-dr/README.md says.
func realServerUp(t *testing.T, h *lab.Host, vip string) {
	t.Helper()
	vipctl := lab.Binary(t, "./cmd/vipctl")
	out := h.MustRun(vipctl, "realserver", "up", "--vip", vip, "--state", filepath.Join(t.TempDir(), "rs.json"))
	if !strings.Contains(out, vip) {
		t.Fatalf("vipctl realserver up on %s says nothing of %s:\n%s", h.Name, vip, out)
	}
}

// neighMAC returns the MAC address h's neighbour table holds for addr
// after reaching it with ping, or "".
func neighMAC(h *lab.Host, addr string) string {
	_, _ = h.Run("ping", "-c1", "-W1", addr)
	out, err := h.Run("ip", "neigh", "show", addr)
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	if i := slices.Index(f, "lladdr"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

// flatLab is the one-subnet lab (198.18.0.0/24) of the examples whose
// configuration files name these addresses: client .11, directors d1 .12
// and d2 .13, real servers rs1 .21 and rs2 .22. The real servers come
// bare: each test starts on them what its example runs.
type flatLab struct {
	l                        *lab.Lab
	client, d1, d2, rs1, rs2 *lab.Host
}

func newFlatLab(t *testing.T) *flatLab {
	t.Helper()
	l := lab.New(t)
	return &flatLab{
		l:      l,
		client: l.Host("client", "198.18.0.11/24"),
		d1:     l.Host("d1", "198.18.0.12/24"),
		d2:     l.Host("d2", "198.18.0.13/24"),
		rs1:    l.Host("rs1", "198.18.0.21/24"),
		rs2:    l.Host("rs2", "198.18.0.22/24"),
	}
}

// nginx starts nginx on both real servers, each answering its name.
func (f *flatLab) nginx(t *testing.T) {
	t.Helper()
	nginx(t, f.rs1, "rs1")
	nginx(t, f.rs2, "rs2")
}

// TestExampleLVSDR: this kernel has no IPVS, so the DR pair runs with
// vipd -P (VRRP only): the VIP lives on the master, the real servers
// prepared by vipctl realserver up hold it on lo without answering ARP
// for it (the client resolves the VIP to the master's MAC), and after the
// master stops the backup owns it and the client follows. Traffic through
// the kernel's IPVS in DR mode is scripts/vmtest's (dr_test.go).
func TestExampleLVSDR(t *testing.T) {
	t.Parallel()
	f := newFlatLab(t)
	client, d1, d2 := f.client, f.d1, f.d2
	const vip = "198.18.0.100"
	for _, rs := range []*lab.Host{f.rs1, f.rs2} {
		realServerUp(t, rs, vip)
		if !hasAddr(rs, vip) {
			t.Fatalf("%s lacks the VIP on lo after vipctl realserver up", rs.Name)
		}
	}

	// -P: VRRP only, and the file judged as keepalived -t judges it (no
	// data plane would accept DR here).
	m := startVipd(t, d1, readExample(t, "lvs-dr/keepalived-master.conf"), "-P")
	b := startVipd(t, d2, readExample(t, "lvs-dr/keepalived-backup.conf"), "-P")
	lab.Eventually(t, 10*time.Second, func() bool { return m.state("VI_1") == "MASTER" && b.state("VI_1") == "BACKUP" },
		"want d1 MASTER, d2 BACKUP")
	lab.Eventually(t, 5*time.Second, func() bool { return neighMAC(client, vip) == d1.MAC },
		"the client resolves the VIP to %s, want d1's %s (a real server answered ARP?)", neighMAC(client, vip), d1.MAC)

	stop(t, m.proc)
	lab.Eventually(t, 3*time.Second, func() bool { return b.state("VI_1") == "MASTER" && hasAddr(d2, vip) }, "d2 did not take the VIP")
	// d2's gratuitous ARP moves the client's entry at once.
	lab.Eventually(t, 5*time.Second, func() bool { return neighMAC(client, vip) == d2.MAC },
		"the client resolves the VIP to %s after failover, want d2's %s", neighMAC(client, vip), d2.MAC)
}

// nginxWith starts nginx in h with the server blocks of an example file
// included as they are.
func nginxWith(t *testing.T, h *lab.Host, include string) *lab.Proc {
	t.Helper()
	inc, _ := filepath.Abs(include)
	p, _ := lab.StartNginx(t, h, nil, func(string) string { return "    include " + inc + ";" })
	return p
}

// TestExampleTCPProxy runs examples/tcp-proxy with nginx real servers
// configured by its nginx-realserver.conf: the proxy's PROXY protocol v2
// header gives them the client's own address, health checks use the plain
// port, and service continues when the master stops.
func TestExampleTCPProxy(t *testing.T) {
	t.Parallel()
	f := newFlatLab(t)
	client, d1, d2 := f.client, f.d1, f.d2
	for _, rs := range []*lab.Host{f.rs1, f.rs2} {
		p := nginxWith(t, rs, filepath.Join(examplesDir, "tcp-proxy", "nginx-realserver.conf"))
		lab.Eventually(t, 10*time.Second, func() bool { b, _ := getPath(rs, rs.Addr.String()+":8080", "/healthz", time.Second); return b == "ok" },
			"nginx on %s not serving:\n%s", rs.Name, p.Output())
		// A plain request on the PROXY-protocol port is refused: the
		// header is what the real server relies on.
		if _, err := get(rs, rs.Addr.String(), time.Second); err == nil {
			t.Fatalf("nginx on %s answers a request without PROXY header on port 80", rs.Name)
		}
	}
	m := startVipd(t, d1, readExample(t, "tcp-proxy/keepalived-master.conf"))
	b := startVipd(t, d2, readExample(t, "tcp-proxy/keepalived-backup.conf"))
	lab.Eventually(t, 10*time.Second, func() bool { return m.state("VI_1") == "MASTER" && b.state("VI_1") == "BACKUP" }, "want d1 MASTER, d2 BACKUP")
	const vip = "198.18.0.100"
	want := regexp.MustCompile(`^198\.18\.0\.2[12] client=198\.18\.0\.11$`)
	check := func(who string) {
		t.Helper()
		seen := map[string]bool{}
		var got []string
		lab.Eventually(t, 10*time.Second, func() bool {
			got, _ = getsQuiet(client, vip, 4)
			for _, g := range got {
				if !want.MatchString(g) {
					return false
				}
				seen[strings.Fields(g)[0]] = true
			}
			return len(seen) == 2
		}, "through %s: answers %v, want both real servers reporting client=198.18.0.11", who, &got)
	}
	check("d1")
	stop(t, m.proc)
	lab.Eventually(t, 3*time.Second, func() bool { return b.state("VI_1") == "MASTER" }, "d2 not MASTER after d1 stopped")
	check("d2")
}

// TestExampleMasterMaster runs examples/master-master: each director
// masters one VIP and both serve; when d1 stops, d2 holds and serves
// both; when d1 returns it takes its VIP back.
func TestExampleMasterMaster(t *testing.T) {
	t.Parallel()
	f := newFlatLab(t)
	f.nginx(t)
	client, h1, h2 := f.client, f.d1, f.d2
	d1 := startVipd(t, h1, readExample(t, "master-master/keepalived-d1.conf"))
	d2 := startVipd(t, h2, readExample(t, "master-master/keepalived-d2.conf"))
	const vip1, vip2 = "198.18.0.100", "198.18.0.101"
	lab.Eventually(t, 10*time.Second, func() bool {
		return d1.state("VI_1") == "MASTER" && d1.state("VI_2") == "BACKUP" && d2.state("VI_1") == "BACKUP" && d2.state("VI_2") == "MASTER"
	}, "want d1 MASTER of VI_1 and d2 MASTER of VI_2")
	lab.Eventually(t, 3*time.Second, func() bool {
		return hasAddr(h1, vip1) && !hasAddr(h1, vip2) && hasAddr(h2, vip2) && !hasAddr(h2, vip1)
	}, "each director should hold exactly its own VIP")
	serves := func(vip string) {
		t.Helper()
		var got []string
		lab.Eventually(t, 10*time.Second, func() bool { got, _ = getsQuiet(client, vip, 4); return alternates(got, "rs1", "rs2") },
			"rr through %s: %v", vip, &got)
	}
	serves(vip1)
	serves(vip2)

	stop(t, d1.proc)
	lab.Eventually(t, 3*time.Second, func() bool { return d2.state("VI_1") == "MASTER" && hasAddr(h2, vip1) && hasAddr(h2, vip2) },
		"d2 does not hold both VIPs after d1 stopped")
	serves(vip1)
	serves(vip2)

	d1 = startVipd(t, h1, readExample(t, "master-master/keepalived-d1.conf"))
	lab.Eventually(t, 10*time.Second, func() bool {
		return d1.state("VI_1") == "MASTER" && d2.state("VI_1") == "BACKUP" && d2.state("VI_2") == "MASTER" && !hasAddr(h2, vip1)
	}, "d1 did not take VI_1 back")
	serves(vip1)
}

// TestExampleUnicast runs examples/unicast on a switch that floods no
// multicast (mcast_flood off on every port, checked with a multicast
// ping): the pair still agrees on one MASTER, serves, and fails over.
func TestExampleUnicast(t *testing.T) {
	t.Parallel()
	f := newFlatLab(t)
	f.nginx(t)
	client, h1, h2 := f.client, f.d1, f.d2

	// d2 answers pings to 224.0.0.1, so d1 can tell whether multicast
	// crosses the switch.
	h2.MustRun("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0")
	mcastReachesD2 := func() bool {
		out, _ := h1.Run("ping", "-c2", "-i0.2", "-W1", "-I", "eth0", "224.0.0.1")
		return strings.Contains(out, "from 198.18.0.13")
	}
	if !mcastReachesD2() {
		t.Fatal("control: multicast does not reach d2 even before it is blocked")
	}
	for _, h := range f.l.Hosts() {
		out, err := exec.Command("ip", "-n", f.l.Bridge, "link", "set", h.Port, "type", "bridge_slave", "mcast_flood", "off").CombinedOutput()
		if err != nil {
			t.Fatalf("mcast_flood off on %s: %v: %s", h.Port, err, out)
		}
	}
	if mcastReachesD2() {
		t.Fatal("multicast still crosses the switch after mcast_flood off")
	}

	d1 := startVipd(t, h1, readExample(t, "unicast/keepalived-master.conf"))
	d2 := startVipd(t, h2, readExample(t, "unicast/keepalived-backup.conf"))
	const vip = "198.18.0.100"
	lab.Eventually(t, 10*time.Second, func() bool { return d1.state("VI_1") == "MASTER" && d2.state("VI_1") == "BACKUP" },
		"want d1 MASTER and d2 BACKUP with unicast adverts (got %s and %s)", d1.state("VI_1"), d2.state("VI_1"))
	lab.Eventually(t, 5*time.Second, func() bool {
		st := d2.status().Instances[0]
		return st.Stats.AdvertRcvd >= 2 && st.MasterAddr.String() == "198.18.0.12"
	}, "d2 does not hear d1's unicast adverts")
	if hasAddr(h2, vip) {
		t.Fatal("both directors hold the VIP")
	}
	var got []string
	lab.Eventually(t, 10*time.Second, func() bool { got, _ = getsQuiet(client, vip, 4); return alternates(got, "rs1", "rs2") },
		"rr through the VIP: %v", &got)

	stop(t, d1.proc)
	lab.Eventually(t, 3*time.Second, func() bool { return d2.state("VI_1") == "MASTER" && hasAddr(h2, vip) }, "d2 did not take over")
	lab.Eventually(t, 5*time.Second, func() bool { got, _ = getsQuiet(client, vip, 4); return alternates(got, "rs1", "rs2") },
		"no service through d2: %v", &got)
}
