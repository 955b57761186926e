package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

func reloadConf(rs []string, weights []int) string {
	var b strings.Builder
	b.WriteString(`global_defs {
    router_id reload
}
` + vipInstance("VI_1", "MASTER", 71, 150, "1") + `virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
`)
	for i, r := range rs {
		fmt.Fprintf(&b, "    real_server %s 80 {\n        weight %d\n        TCP_CHECK { connect_timeout 1 }\n    }\n", r, weights[i])
	}
	b.WriteString("}\n")
	return b.String()
}

// TestReloadUnderLoad is issue 6's acceptance: under a steady wrk load
// through the VIP, 20 reloads alternating configurations that add and
// remove a real server and change a weight lose no request and cause no
// VRRP transition.
func TestReloadUnderLoad(t *testing.T) {
	lab.RequireCommand(t, "wrk")
	l := lab.New(t)
	client := l.Host("client")
	d1 := l.Host("d1")
	var rss []string
	for i := 1; i <= 3; i++ {
		h := l.Host(fmt.Sprintf("rs%d", i))
		nginx(t, h, h.Name)
		rss = append(rss, h.Addr.String())
	}
	confA := reloadConf(rss[:2], []int{1, 1})
	confB := reloadConf(rss, []int{3, 1, 1})
	d := startVipd(t, d1, confA)
	lab.Eventually(t, 10*time.Second, func() bool { return d.state("VI_1") == "MASTER" }, "not MASTER")
	lab.Eventually(t, 5*time.Second, func() bool { _, err := get(client, "198.18.0.100", time.Second); return err == nil }, "VIP not serving")
	before := d.status().Instances[0].Transitions

	w := client.Start("wrk", "-t1", "-c8", "-d60s", "--latency", "http://198.18.0.100/")
	c := api.NewClient(d.sock)
	// The load is on before the first reload: wrk's 8 connections are in
	// the proxy's table.
	lab.Eventually(t, 10*time.Second, func() bool {
		svcs, err := c.Services(context.Background())
		active := 0
		for _, s := range svcs {
			for _, ds := range s.Dests {
				active += ds.ActiveConns
			}
		}
		return err == nil && active >= 8
	}, "wrk's connections never showed up")
	// Reloads are paced over 2 s (a ticker paces the load test; nothing
	// waits on it for a result), so traffic flows between them.
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	started := time.Now()
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		<-pace.C
		conf := confB
		if i%2 == 1 {
			conf = confA
		}
		if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := c.Reload(ctx); err != nil {
			cancel()
			t.Fatalf("reload %d: %v", i, err)
		}
		cancel()
		// Let traffic flow on the new configuration for a moment, and
		// make sure the new real server does get requests.
		lab.Eventually(t, 5*time.Second, func() bool {
			b, err := get(client, "198.18.0.100", time.Second)
			seen[b] = true
			return err == nil
		}, "VIP not serving after reload %d", i)
	}
	window := time.Since(started)
	if err := w.Signal(2); err != nil { // SIGINT: wrk prints its summary
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("wrk did not stop")
	}
	out := w.Output()
	t.Logf("wrk:\n%s", out)
	m := regexp.MustCompile(`(\d+) requests in ([0-9.]+)(m?s)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("wrk made no requests:\n%s", out)
	}
	if d, err := time.ParseDuration(m[2] + m[3]); err != nil || d < window {
		t.Fatalf("wrk ran %s%s, less than the %v the reloads took: the load did not cover them", m[2], m[3], window)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx"} {
		if strings.Contains(out, bad) {
			t.Errorf("requests lost during reloads (%s):\n%s", bad, out)
		}
	}
	if after := d.status().Instances[0].Transitions; after != before {
		t.Errorf("VRRP transitions went from %d to %d during reloads", before, after)
	}
	if !seen["rs3"] {
		t.Errorf("the real server added by reload never answered (saw %v)", seen)
	}
}

// TestReloadRefusedByDataplane is issue 12's acceptance for reload as a
// transaction: a valid configuration whose new service the proxy cannot
// listen on (another program holds the port) makes `vipctl reload` exit
// non-zero naming the step and what runs, and the previous
// configuration keeps serving.
func TestReloadRefusedByDataplane(t *testing.T) {
	l := lab.New(t)
	client := l.Host("client")
	d1 := l.Host("d1")
	rs := l.Host("rs1")
	nginx(t, rs, rs.Name)
	conf := reloadConf([]string{rs.Addr.String()}, []int{1})
	d := startVipd(t, d1, conf)
	lab.Eventually(t, 10*time.Second, func() bool { return d.state("VI_1") == "MASTER" }, "not MASTER")
	lab.Eventually(t, 5*time.Second, func() bool { _, err := get(client, "198.18.0.100", time.Second); return err == nil }, "VIP not serving")

	// Another program on the director holds port 8080 (no SO_REUSEPORT):
	// the proxy cannot listen there, which no check can know beforehand.
	var held net.Listener
	if err := d1.Do(func() error {
		var err error
		held, err = net.Listen("tcp4", "0.0.0.0:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	next := conf + fmt.Sprintf(`virtual_server 198.18.0.100 8080 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %s 80 { weight 1 }
}
`, rs.Addr)
	if err := os.WriteFile(d.conf, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lab.Binary(t, "./cmd/vipctl"), "--socket", d.sock, "reload")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("vipctl reload: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, `reload failed at step "data plane"`) || !strings.Contains(out, "198.18.0.100:8080") ||
		!strings.Contains(out, "running now: the previous configuration") {
		t.Errorf("vipctl reload's answer does not name the step, the service and what runs:\n%s", out)
	}
	t.Logf("vipctl reload:\n%s", out)

	// The previous configuration serves, unchanged.
	if b, err := get(client, "198.18.0.100", 2*time.Second); err != nil || b != "rs1" {
		t.Errorf("after the failed reload, GET 198.18.0.100:80 = %q, %v", b, err)
	}
	st := d.status()
	if st.Reloads != 0 || st.ReloadResults[api.ReloadFailed] != 1 {
		t.Errorf("reloads %d, results %v: want 0 and failed=1", st.Reloads, st.ReloadResults)
	}
	for _, s := range st.Services {
		if s.Key.Addr.Port() == 8080 {
			t.Errorf("the refused service runs: %v", s.Key)
		}
	}
	if !strings.Contains(d.proc.Output(), "Reload failed at step data plane") {
		t.Errorf("the daemon did not log the failed step:\n%s", d.proc.Output())
	}

	// Once the port is free, the same configuration commits.
	held.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.NewClient(d.sock).Reload(ctx); err != nil {
		t.Fatalf("reload once the port is free: %v", err)
	}
	lab.Eventually(t, 5*time.Second, func() bool {
		b, err := getPath(client, "198.18.0.100:8080", "/", time.Second)
		return err == nil && b == "rs1"
	}, "the new service does not serve after the second reload")
}
