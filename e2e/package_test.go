package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

// TestGoInstall: `go install ./cmd/...` builds the commands a user gets.
func TestGoInstall(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	cmd := exec.Command("go", "install", "./cmd/...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/...: %v\n%s", err, out)
	}
	for _, name := range []string{"vipd", "vipctl"} {
		out, err := exec.Command(filepath.Join(bin, name), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), name+" ") {
			t.Errorf("%s --version: %v: %s", name, err, out)
		}
	}
}

// packageVersion is the version TestPackage builds; the package name
// carries it.
const packageVersion = "0.0.0+e2e"

// TestPackage builds the .deb with scripts/package, installs it with
// dpkg into a throwaway root (busybox as its /bin/sh, so the maintainer
// scripts run chrooted as on a real system), and runs what it installed:
// vipd -t on the example configuration, the daemon with the unit's command
// line and systemd's notify protocol, the man pages, systemd-analyze
// verify of the unit; then removes and purges it.
func TestPackage(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "dpkg", "dpkg-deb", "busybox", "groff", "systemd-analyze")
	t.Parallel()

	// Build. scripts/package writes dist/ in the repository (ignored by
	// git); the test takes its package out of it.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "scripts/package")
	build.Dir = ".."
	build.Env = append(os.Environ(), "VERSION="+packageVersion, "SOURCE_DATE_EPOCH=1767225600")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package: %v\n%s", err, out)
	}
	deb := filepath.Join(t.TempDir(), "vipd.deb")
	built := filepath.Join("..", "dist", "vipd_"+packageVersion+"_amd64.deb")
	if err := os.Rename(built, deb); err != nil {
		t.Fatalf("scripts/package made no %s: %v", built, err)
	}
	if v := mustOut(t, "dpkg-deb", "-f", deb, "Version"); strings.TrimSpace(v) != packageVersion {
		t.Errorf("package version %q, want %q", v, packageVersion)
	}
	if c := mustOut(t, "dpkg-deb", "-I", deb, "conffiles"); c != "/etc/default/vipd\n/etc/vipd/keepalived.conf.example\n" {
		t.Errorf("conffiles:\n%s", c)
	}

	// A throwaway root: dpkg's database and a shell for the maintainer
	// scripts, nothing else.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "bin", "tmp", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", bb, filepath.Join(root, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("cp busybox: %v: %s", err, out)
	}
	for _, applet := range []string{"sh", "cat", "mkdir", "rm", "rmdir", "kill", "env"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return mustOut(t, "dpkg", append([]string{"--root=" + root, "--log=/dev/null"}, args...)...)
	}
	out := dpkg("-i", deb)
	if !strings.Contains(out, "vipd is installed but not started") {
		t.Errorf("postinst did not run (or said nothing):\n%s", out)
	}
	for path, mode := range map[string]os.FileMode{
		"usr/sbin/vipd": 0o755, "usr/bin/vipctl": 0o755, "lib/systemd/system/vipd.service": 0o644,
		"etc/default/vipd": 0o644, "etc/vipd/keepalived.conf.example": 0o644,
		"usr/share/man/man8/vipd.8.gz": 0o644, "usr/share/man/man8/vipctl.8.gz": 0o644,
		"usr/share/doc/vipd/copyright":              0o644,
		"usr/share/vipd/prometheus/vipd-alerts.yml": 0o644, "usr/share/vipd/prometheus/vipd-alerts.test.yml": 0o644, "usr/share/doc/vipd/examples/lvs-nat/keepalived-master.conf": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Errorf("not installed: /%s", path)
		} else if fi.Mode().Perm() != mode {
			t.Errorf("/%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	for _, f := range []string{"migrating.md", "choosing-a-dataplane.md"} {
		if _, err := os.Stat(filepath.Join(root, "usr/share/doc/vipd", f)); err != nil {
			t.Errorf("docs/%s not installed in /usr/share/doc/vipd", f)
		}
	}

	// The installed binaries, run from the root, in a namespace that has
	// the eth0 the example configuration names.
	l := lab.New(t)
	h := l.Host("pkg", "198.18.0.12/24")
	inRoot := func(args ...string) (string, int) { return runExit(t, h, "chroot", append([]string{root}, args...)...) }
	for _, name := range []string{"/usr/sbin/vipd", "/usr/bin/vipctl"} {
		if out, code := inRoot(name, "--version"); code != 0 || !strings.Contains(out, packageVersion) {
			t.Errorf("%s --version exits %d: %s", name, code, out)
		}
	}
	if out, code := inRoot("/usr/sbin/vipd", "-t", "-f", "/etc/vipd/keepalived.conf.example"); code != 0 || out != "" {
		t.Errorf("installed vipd -t on the installed example exits %d:\n%s", code, out)
	}
	examples, _ := filepath.Glob(filepath.Join(root, "usr/share/doc/vipd/examples/*/keepalived*.conf"))
	if len(examples) < 6 {
		t.Errorf("only %d example configurations installed", len(examples))
	}
	for _, e := range examples {
		rel := strings.TrimPrefix(e, root)
		if out, code := inRoot("/usr/sbin/vipd", "-t", "-f", rel); code != 0 {
			t.Errorf("installed vipd -t %s exits %d:\n%s", rel, code, out)
		}
	}

	// The daemon as the unit starts it (ExecStart with /etc/default/vipd's
	// options) speaks systemd's notify protocol: READY=1 once running,
	// RELOADING=1 then READY=1 around a SIGHUP (ExecReload), STOPPING=1 on
	// SIGTERM.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/vipd.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStart=/usr/sbin/vipd --dont-fork $VIPD_OPTIONS", "ExecReload=/bin/kill -HUP $MAINPID", "EnvironmentFile=-/etc/default/vipd", "Conflicts=keepalived.service"} {
		if !bytes.Contains(unit, []byte(want+"\n")) {
			t.Errorf("vipd.service lacks %q", want)
		}
	}
	def, err := os.ReadFile(filepath.Join(root, "etc/default/vipd"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VIPD_OPTIONS="([^"]*)"$`).FindSubmatch(def)
	if m == nil {
		t.Fatalf("/etc/default/vipd does not set VIPD_OPTIONS:\n%s", def)
	}
	notify := listenNotify(t, filepath.Join(root, "run", "notify.sock"))
	if err := os.WriteFile(filepath.Join(root, "etc/keepalived.conf"), mustRead(t, filepath.Join(root, "etc/vipd/keepalived.conf.example")), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"env", "NOTIFY_SOCKET=/run/notify.sock", "/usr/sbin/vipd", "--dont-fork"}, strings.Fields(string(m[1]))...)
	args = append(args, "-l", "-f", "/etc/keepalived.conf")
	d := h.Start("chroot", append([]string{root}, args...)...)
	notify.expect(t, "READY=1", 10*time.Second, d)
	// The control socket is where vipctl looks by default, inside the root.
	st, err := api.NewClient(filepath.Join(root, "run/vipd/vipd.sock")).Status(context.Background())
	if err != nil {
		t.Fatalf("status over the installed vipd's default socket: %v\n%s", err, d.Output())
	}
	if st.Version != packageVersion {
		t.Errorf("running vipd reports version %q, want %q", st.Version, packageVersion)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	notify.expect(t, "RELOADING=1", 10*time.Second, d)
	notify.expect(t, "READY=1", 10*time.Second, d)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notify.expect(t, "STOPPING=1", 10*time.Second, d)
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("vipd did not stop on SIGTERM:\n%s", d.Output())
	}

	// The man pages render without a warning and carry the version.
	for _, page := range []string{"vipd", "vipctl"} {
		gz := filepath.Join(root, "usr/share/man/man8", page+".8.gz")
		cmd := exec.Command("sh", "-c", `gzip -dc "$1" | groff -man -ww -Tutf8 -P-c -P-b -P-o -P-u`, "sh", gz)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("vipd "+packageVersion)) || !bytes.Contains(out, []byte("SEE ALSO")) {
			t.Errorf("%s(8): %v\n%s\n%.2000s", page, err, stderr.String(), out)
		}
	}

	// systemd-analyze verify, against the root: it needs the targets the
	// unit names, and MANPATH for its Documentation= man pages.
	targets, _ := filepath.Glob("/lib/systemd/system/*.target")
	for _, tg := range targets {
		if b, err := os.ReadFile(tg); err == nil {
			_ = os.WriteFile(filepath.Join(root, "lib/systemd/system", filepath.Base(tg)), b, 0o644)
		}
	}
	verify := exec.Command("systemd-analyze", "verify", "--root="+root, "/lib/systemd/system/vipd.service")
	verify.Env = append(os.Environ(), "MANPATH="+filepath.Join(root, "usr/share/man"))
	if out, err := verify.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify vipd.service: %v\n%s", err, out)
	}
	if out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--root="+root, "/lib/systemd/system/vipd.service").CombinedOutput(); err == nil {
		if i := bytes.LastIndex(out, []byte("Overall exposure level")); i >= 0 {
			t.Logf("systemd-analyze security: %s", bytes.TrimSpace(out[i:]))
		}
	}

	// Remove keeps the configuration files; purge removes them.
	_ = os.Remove(filepath.Join(root, "etc/keepalived.conf"))
	dpkg("-r", "vipd")
	for _, gone := range []string{"usr/sbin/vipd", "usr/bin/vipctl", "lib/systemd/system/vipd.service", "usr/share/man/man8/vipd.8.gz"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("/%s left after dpkg -r", gone)
		}
	}
	for _, kept := range []string{"etc/default/vipd", "etc/vipd/keepalived.conf.example"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("conffile /%s removed by dpkg -r (only purge should)", kept)
		}
	}
	dpkg("--purge", "vipd")
	for _, gone := range []string{"etc/default/vipd", "etc/vipd", "run/vipd"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("/%s left after dpkg --purge", gone)
		}
	}
}

func mustOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notifySocket plays systemd's side of sd_notify: a unix datagram socket
// whose messages the test reads in order.
type notifySocket struct {
	msgs chan string
}

func listenNotify(t *testing.T, path string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := &notifySocket{msgs: make(chan string, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// expect waits for a message holding the line want (messages before it
// are skipped).
func (n *notifySocket) expect(t *testing.T, want string, timeout time.Duration, p *lab.Proc) {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed waiting for %s", want)
			}
			seen = append(seen, m)
			for _, line := range strings.Split(m, "\n") {
				if line == want {
					return
				}
			}
		case <-deadline:
			t.Fatalf("no %s from vipd within %v (got %q)\n%s", want, timeout, seen, p.Output())
		}
	}
}
