package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

// director is a vipd running in a lab host.
type director struct {
	t    testing.TB
	host *lab.Host
	proc *lab.Proc
	dir  string
	conf string
	sock string
}

// startVipd writes conf into a temporary directory and starts vipd on it in
// h's namespace, with every runtime path private to the test.
func startVipd(t testing.TB, h *lab.Host, conf string, args ...string) *director {
	t.Helper()
	bin := lab.Binary(t, "./cmd/vipd")
	dir := t.TempDir()
	d := &director{t: t, host: h, dir: dir, conf: filepath.Join(dir, "keepalived.conf"), sock: filepath.Join(dir, "vipd.sock")}
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	all := append([]string{"-n", "-l", "-D", "-f", d.conf, "-p", filepath.Join(dir, "vipd.pid"), "--control", d.sock}, args...)
	d.proc = h.Start(bin, all...)
	lab.Eventually(t, 10*time.Second, func() bool {
		select {
		case <-d.proc.Done():
			t.Fatalf("vipd on %s exited: %v\n%s", h.Name, d.proc.Err(), d.proc.Output())
		default:
		}
		r, err := api.NewClient(d.sock).Ready(context.Background())
		return err == nil && r.Ready
	}, "vipd on %s not ready:\n%s", h.Name, d.proc.Output())
	return d
}

// status asks the director's control API.
func (d *director) status() api.Status {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := api.NewClient(d.sock).Status(ctx)
	if err != nil {
		d.t.Fatalf("status of %s: %v", d.host.Name, err)
	}
	return st
}

// state returns the state of the named VRRP instance.
func (d *director) state(instance string) string {
	for _, in := range d.status().Instances {
		if in.Name == instance {
			return in.State
		}
	}
	return ""
}

// nginx starts nginx in h serving a page that names the server.
func nginx(t testing.TB, h *lab.Host, name string) *lab.Proc {
	t.Helper()
	p, _ := lab.StartNginx(t, h, map[string]string{"index.html": name + "\n"}, func(dir string) string {
		return fmt.Sprintf("    server { listen 80 reuseport; root %s; }", dir)
	})
	var lastErr error
	lab.Eventually(t, 10*time.Second, func() bool {
		_, lastErr = get(h, h.Addr.String(), time.Second)
		return lastErr == nil
	}, "nginx on %s not serving: %v", h.Name, &lastErr)
	return p
}

// get fetches http://addr/ from inside h's namespace and returns the body
// with surrounding space trimmed (getPath for port 80 and /).
func get(h *lab.Host, addr string, timeout time.Duration) (string, error) {
	return getPath(h, net.JoinHostPort(addr, "80"), "/", timeout)
}

// gets fetches n times and returns the bodies.
func gets(t testing.TB, h *lab.Host, addr string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		b, err := get(h, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", addr, h.Name, err)
		}
		out = append(out, b)
	}
	return out
}

// stop sends SIGTERM to a process and waits for it.
func stop(t testing.TB, p *lab.Proc) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("did not stop within 10 s:\n%s", p.Output())
	}
}

// hasAddr reports whether h has addr on any interface.
func hasAddr(h *lab.Host, addr string) bool {
	out, err := h.Run("ip", "-o", "addr", "show")
	return err == nil && strings.Contains(out, " "+addr+"/")
}

// tcpCheckedServers is the real_server blocks, port 80, of the real
// servers at addrs in a virtual_server, each checked by a TCP_CHECK that
// takes the server out on its first failed connect (retry 0).
func tcpCheckedServers(addrs ...string) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, `    real_server %s 80 {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
`, a)
	}
	return b.String()
}

// getKeepAlive sends GET / on the HTTP/1.1 connection conn, whose reader
// is br, and returns the answer's body trimmed and whether the server
// closes the connection after it.
func getKeepAlive(conn net.Conn, br *bufio.Reader) (body string, closes bool, err error) {
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", false, err
	}
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", false, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return strings.TrimSpace(string(b)), r.Close, err
}
