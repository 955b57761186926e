package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// The end-to-end tests run the proxy in the director's network namespace.
// A Go program cannot move its worker threads into another namespace, so
// the test binary runs itself there as a helper process (TestMain below)
// that applies the services it reads on stdin, one JSON request a line.

const helperEnv = "VIPD_PROXY_E2E_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runHelper()
		return
	}
	os.Exit(m.Run())
}

type helperReq struct {
	Apply  []lvs.Service `json:"apply,omitempty"`
	Status bool          `json:"status,omitempty"`
}

type helperResp struct {
	Err      string              `json:"err,omitempty"`
	Services []lvs.ServiceStatus `json:"services,omitempty"`
}

func runHelper() {
	dp, err := New(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer dp.Close()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req helperReq
		var resp helperResp
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp.Err = err.Error()
		} else if req.Status {
			resp.Services = dp.Services()
		} else if err := dp.Apply(context.Background(), req.Apply); err != nil {
			resp.Err = err.Error()
		}
		enc.Encode(resp)
	}
}

// director is the helper process running the proxy in a lab host.
type director struct {
	t   *testing.T
	mu  sync.Mutex
	in  io.Writer
	out *bufio.Scanner
}

func startDirector(t *testing.T, h *lab.Host) *director {
	t.Helper()
	cmd := h.Cmd(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("director stderr:\n%s", stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &director{t: t, in: stdin, out: sc}
}

func (d *director) do(req helperReq) helperResp {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("director: %v", err)
	}
	if !d.out.Scan() {
		d.t.Fatalf("director exited: %v", d.out.Err())
	}
	var resp helperResp
	if err := json.Unmarshal(d.out.Bytes(), &resp); err != nil {
		d.t.Fatalf("director: %v", err)
	}
	return resp
}

func (d *director) apply(svcs ...lvs.Service) {
	d.t.Helper()
	if resp := d.do(helperReq{Apply: svcs}); resp.Err != "" {
		d.t.Fatalf("apply: %s", resp.Err)
	}
}

func (d *director) services() []lvs.ServiceStatus {
	d.t.Helper()
	return d.do(helperReq{Status: true}).Services
}

// startNginx serves a page naming the server on port 80 of host h.
func startNginx(t *testing.T, h *lab.Host, name string) {
	t.Helper()
	lab.StartNginx(t, h, map[string]string{"www/index.html": name + "\n"}, func(dir string) string {
		return fmt.Sprintf("    server { listen %s:80; root %s/www; }", h.Addr, dir)
	})
	var last error
	lab.Eventually(t, 10*time.Second, func() bool {
		_, last = h.Run("curl", "-sf", "--max-time", "1", "http://"+h.Addr.String()+"/")
		return last == nil
	}, "nginx on %s did not start: %v", h.Name, &last)
}

// testbed is the lab: a client, a director with the VIP, two
// nginx real servers and a sorry server.
type testbed struct {
	l               *lab.Lab
	cli, dir        *lab.Host
	rs1, rs2, sorry *lab.Host
	d               *director
	vip             netip.AddrPort
}

const e2eVIP = "198.18.0.100"

func newTestbed(t *testing.T, withVIP bool) *testbed {
	lab.RequireCommand(t, "nginx", "curl")
	l := lab.New(t)
	tb := &testbed{l: l, vip: netip.MustParseAddrPort(e2eVIP + ":80")}
	tb.cli = l.Host("cli")
	if withVIP {
		tb.dir = l.Host("dir", "198.18.0.12/24", e2eVIP+"/24")
	} else {
		tb.dir = l.Host("dir", "198.18.0.12/24")
	}
	tb.rs1 = l.Host("rs1", "198.18.0.21/24")
	tb.rs2 = l.Host("rs2", "198.18.0.22/24")
	tb.sorry = l.Host("sorry", "198.18.0.29/24")
	startNginx(t, tb.rs1, "rs1")
	startNginx(t, tb.rs2, "rs2")
	startNginx(t, tb.sorry, "sorry")
	tb.d = startDirector(t, tb.dir)
	return tb
}

func (tb *testbed) service(sched string, weights ...int) lvs.Service {
	s := lvs.Service{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: tb.vip}, Scheduler: sched}
	for i, h := range []*lab.Host{tb.rs1, tb.rs2} {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		s.Destinations = append(s.Destinations, lvs.Destination{Addr: netip.AddrPortFrom(h.Addr, 80), Weight: w})
	}
	return s
}

func (tb *testbed) curl(t *testing.T) string {
	t.Helper()
	out, err := tb.cli.Run("curl", "-sS", "--max-time", "5", "http://"+tb.vip.String()+"/")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (tb *testbed) curls(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for range n {
		got = append(got, tb.curl(t))
	}
	return got
}

func TestE2E(t *testing.T) {
	tb := newTestbed(t, true)

	t.Run("rr alternates", func(t *testing.T) {
		tb.d.apply(tb.service("rr"))
		got := tb.curls(t, 4)
		if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] {
			t.Fatalf("rr: %v, want rs1, rs2, rs1, rs2 (or rs2 first)", got)
		}
	})

	t.Run("wrr 1:5", func(t *testing.T) {
		tb.d.apply(tb.service("wrr", 1, 5))
		n := map[string]int{}
		for _, s := range tb.curls(t, 12) {
			n[s]++
		}
		if n["rs1"] != 2 || n["rs2"] != 10 {
			t.Fatalf("wrr 1:5 over 12 requests: %v", n)
		}
	})

	t.Run("sh keeps a client on one server", func(t *testing.T) {
		tb.d.apply(tb.service("sh"))
		got := tb.curls(t, 6)
		for _, s := range got {
			if s != got[0] {
				t.Fatalf("sh: %v", got)
			}
		}
	})

	t.Run("persistence keeps a client for the timeout", func(t *testing.T) {
		s := tb.service("rr")
		s.Persistence = 30 * time.Second
		tb.d.apply(s)
		got := tb.curls(t, 6)
		for _, x := range got {
			if x != got[0] {
				t.Fatalf("persistent rr: %v", got)
			}
		}
		st := tb.d.services()
		persist := 0
		for _, d := range st[0].Dests {
			persist += d.PersistConns
		}
		if persist != 1 {
			t.Fatalf("%d templates, want 1: %+v", persist, st[0].Dests)
		}
	})

	t.Run("weight 0 drains without cutting open connections", func(t *testing.T) {
		s := tb.service("rr")
		tb.d.apply(s)
		ka := dialKeepAlive(t, tb.cli, tb.vip)
		first := ka.get(t)
		i := 0
		if first == "rs2" {
			i = 1
		}
		s.Destinations[i].Weight = 0
		tb.d.apply(s)
		for _, x := range tb.curls(t, 4) {
			if x == first {
				t.Fatalf("new connection went to %s after its weight became 0", x)
			}
		}
		// The open keep-alive connection still reaches its server.
		for range 3 {
			if x := ka.get(t); x != first {
				t.Fatalf("open connection moved from %s to %s", first, x)
			}
		}
		// Removing it drains the same way.
		s.Destinations = append(s.Destinations[:i], s.Destinations[i+1:]...)
		tb.d.apply(s)
		if x := ka.get(t); x != first {
			t.Fatalf("open connection broke on removal: %s", x)
		}
		ka.Close()
	})

	t.Run("both down: the sorry server answers", func(t *testing.T) {
		tb.d.apply(tb.service("rr"))
		// The daemon replaces the destinations by the sorry server when
		// the checkers take both real servers out.
		s := tb.service("rr")
		s.Destinations = []lvs.Destination{{Addr: netip.AddrPortFrom(tb.sorry.Addr, 80), Weight: 1}}
		tb.d.apply(s)
		for _, x := range tb.curls(t, 3) {
			if x != "sorry" {
				t.Fatalf("got %q, want the sorry server", x)
			}
		}
		tb.d.apply(tb.service("rr"))
		got := tb.curls(t, 2)
		if got[0] == "sorry" || got[1] == "sorry" {
			t.Fatalf("sorry server still answering after the real servers came back: %v", got)
		}
	})
}

// TestE2EListenBeforeVIP: a backup director binds the VIP before it owns
// it, and serves the moment the address arrives.
func TestE2EListenBeforeVIP(t *testing.T) {
	tb := newTestbed(t, false)
	tb.d.apply(tb.service("rr"))
	if _, err := tb.cli.Run("curl", "-sS", "--max-time", "1", "http://"+tb.vip.String()+"/"); err == nil {
		t.Fatal("VIP answered before it was added")
	}
	tb.dir.MustRun("ip", "addr", "add", e2eVIP+"/24", "dev", "eth0")
	lab.Eventually(t, 10*time.Second, func() bool {
		out, err := tb.cli.Run("curl", "-sS", "--max-time", "1", "http://"+tb.vip.String()+"/")
		return err == nil && strings.HasPrefix(out, "rs")
	}, "VIP does not answer after it was added")
}

// keepAlive is an HTTP/1.1 connection from a lab host, reused for several
// requests.
type keepAlive struct {
	net.Conn
	r *bufio.Reader
}

func dialKeepAlive(t *testing.T, h *lab.Host, to netip.AddrPort) *keepAlive {
	t.Helper()
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", to.String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{Conn: c, r: bufio.NewReader(c)}
}

func (k *keepAlive) get(t *testing.T) string {
	t.Helper()
	k.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		t.Fatalf("keep-alive request: %v", err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("keep-alive response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
