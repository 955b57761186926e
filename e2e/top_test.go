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
)

// topConf is one director, MASTER alone, with a virtual server over one
// nginx.
func topConf(rs string) string {
	return fmt.Sprintf(`global_defs {
   router_id top
   vrrp_version 3
}
%svirtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, vipInstance("VI_TOP", "MASTER", 71, 150, "0.5"), rs)
}

// topRow returns the fields of the first line of a top view starting
// with prefix (nil when there is none).
func topRow(view, prefix string) []string {
	for _, l := range strings.Split(view, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), prefix))
		}
	}
	return nil
}

// TestTopTmux runs `vipctl top` in a tmux pane against a running vipd and
// reads the screen with capture-pane: the instance and the virtual server
// are shown, the view refreshes by itself (the connection counter follows
// the client's requests) and the rate column shows connections per
// second while the client keeps connecting. Piped, top prints one plain
// frame without terminal escapes.
func TestTopTmux(t *testing.T) {
	t.Parallel()
	lab.RequireRoot(t)
	lab.RequireCommand(t, "tmux")
	l := lab.New(t)
	client := l.Host("client")
	h1 := l.Host("d1")
	rs1 := l.Host("rs1")
	nginx(t, rs1, "rs1")
	d := startVipd(t, h1, topConf(rs1.Addr.String()))
	lab.Eventually(t, 5*time.Second, func() bool { return d.state("VI_TOP") == "MASTER" }, "VI_TOP never MASTER")
	lab.Eventually(t, 5*time.Second, func() bool {
		_, err := get(client, "198.18.0.100", time.Second)
		return err == nil
	}, "the VIP never answered")
	vipctl := lab.Binary(t, "./cmd/vipctl")

	// Piped: one frame, plain text, rates over -d.
	out, err := exec.Command(vipctl, "--socket", d.sock, "top", "-d", "200ms").CombinedOutput()
	if err != nil {
		t.Fatalf("vipctl top, piped: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "\x1b") || topRow(string(out), "VI_TOP") == nil || topRow(string(out), "TCP 198.18.0.100:80") == nil {
		t.Errorf("piped vipctl top is not one plain frame with VI_TOP and TCP 198.18.0.100:80:\n%q", out)
	}

	// In a terminal: tmux with a private server socket, so nothing else
	// of the machine's tmux is touched.
	tsock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) (string, error) {
		cmd := exec.Command("tmux", append([]string{"-S", tsock}, args...)...)
		cmd.Env = append(os.Environ(), "TERM=xterm")
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "200", "-y", "50",
		vipctl+" --socket "+d.sock+" top -d 300ms; sleep 60"); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tmux("kill-server") })
	screen := func() string {
		out, err := tmux("capture-pane", "-p", "-t", "top")
		if err != nil {
			t.Fatalf("tmux capture-pane: %v\n%s", err, out)
		}
		return out
	}
	conns := func(view string) string {
		// TCP 198.18.0.100:80 | rr 1/1 CONN/S IN OUT ACTIVE INACTIVE CONNS
		r := topRow(view, "TCP 198.18.0.100:80")
		if len(r) < 8 {
			return ""
		}
		return r[7]
	}
	var view string
	lab.Eventually(t, 10*time.Second, func() bool {
		view = screen()
		return topRow(view, "VI_TOP") != nil && conns(view) != ""
	}, "vipctl top never showed VI_TOP and TCP 198.18.0.100:80:\n%s", &view)
	if r := topRow(view, "VI_TOP"); len(r) < 3 || r[2] != "MASTER" {
		t.Errorf("VI_TOP row %q, want eth0 71 MASTER ...", r)
	}
	before := conns(view)
	t.Logf("before traffic:\n%s", view)

	// Keep connecting until the pane shows a non-zero rate and a counter
	// above the first one: both only change if top redraws by itself.
	deadline := time.Now().Add(15 * time.Second)
	made := 0
	for {
		gets(t, client, "198.18.0.100", 3)
		made += 3
		view = screen()
		r := topRow(view, "TCP 198.18.0.100:80")
		if len(r) >= 8 && r[7] != before && r[3] != "0" && r[3] != "-" {
			t.Logf("after %d requests:\n%s", made, view)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d requests the pane shows %q for the virtual server (connections first %s), no new count or no rate:\n%s", made, r, before, view)
		}
	}
	if rs := topRow(view, "-> "+rs1.Addr.String()+":80"); len(rs) < 2 || rs[1] != "UP" {
		t.Errorf("real server row %q, want weight 1 UP ...", rs)
	}
}
