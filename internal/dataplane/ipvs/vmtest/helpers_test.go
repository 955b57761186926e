package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/realserver"
)

// requireIPVS skips unless the kernel has IPVS (scripts/vmtest provides
// one); inside the VM a missing IPVS is a failure, not a skip.
func requireIPVS(t *testing.T) { t.Helper(); lab.RequireIPVS(t) }

func sysctl(t *testing.T, h *lab.Host, kv ...string) {
	t.Helper()
	for _, s := range kv {
		h.MustRun("sysctl", "-qw", s)
	}
}

// realServerUp prepares a DR real server as `vipctl realserver up` does
// (package realserver: the VIP on lo, arp_ignore=1, arp_announce=2), and
// turns off reverse-path filtering, which the TUN tests need for packets
// decapsulated on tunl0/gre0 from a client routed via eth0.
func realServerUp(t *testing.T, h *lab.Host, vip string) {
	t.Helper()
	cfg := realserver.Config{VIPs: []netip.Addr{netip.MustParseAddr(vip)}, Mode: realserver.DR, StateFile: filepath.Join(t.TempDir(), "realserver.json")}
	if err := inNS(h, func() error { _, err := realserver.Up(cfg); return err }); err != nil {
		t.Fatalf("realserver up on %s: %v", h.Name, err)
	}
	sysctl(t, h, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0")
}

// newDataplane opens the IPVS of h's namespace, closed at cleanup.
func newDataplane(t *testing.T, h *lab.Host, opts ipvs.Options) *ipvs.Dataplane {
	t.Helper()
	opts.NetNS = h.NS
	if opts.StateFile == "" {
		opts.StateFile = filepath.Join(t.TempDir(), "ipvs.json")
	}
	d, err := ipvs.New(opts)
	if err != nil {
		t.Fatalf("ipvs.New in %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close data plane of %s: %v", h.Name, err)
		}
	})
	return d
}

func apply(t *testing.T, d *ipvs.Dataplane, svcs ...lvs.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Apply(ctx, svcs); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func find(t *testing.T, d *ipvs.Dataplane, k lvs.ServiceKey) lvs.ServiceStatus {
	t.Helper()
	svcs, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if s.Key.FWMark == k.FWMark && s.Key.Addr == k.Addr && (k.FWMark != 0 || s.Key.Proto == k.Proto) {
			return s
		}
	}
	t.Fatalf("service %s not in the kernel", k)
	return lvs.ServiceStatus{}
}

// listen opens a TCP listener inside h's namespace.
func listen(t *testing.T, h *lab.Host, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNS(h, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("%s: listen %s: %v", h.Name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveHTTP runs a web server in h answering its name; /big?n=N answers
// N bytes (to measure which way the bytes flow).
func serveHTTP(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	ln := listen(t, h, addr)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, name) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		buf := make([]byte, 32<<10)
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// serveHold runs a server in h that greets each connection with its name
// and a newline, then echoes lines until the client closes: a connection
// that stays ESTABLISHED as long as the test holds it.
func serveHold(t *testing.T, h *lab.Host, addr, name string) {
	t.Helper()
	ln := listen(t, h, addr)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}

// dial connects from h (from src when valid) to dst.
func dial(h *lab.Host, src netip.Addr, srcPort uint16, dst string) (net.Conn, error) {
	var c net.Conn
	err := inNS(h, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, srcPort))
		}
		var err error
		c, err = d.Dial("tcp", dst)
		return err
	})
	return c, err
}

// holdConn is a client connection to a serveHold server.
type holdConn struct {
	net.Conn
	r      *bufio.Reader
	server string // the greeting: which real server answered
}

func dialHold(h *lab.Host, src netip.Addr, srcPort uint16, dst string) (*holdConn, error) {
	c, err := dial(h, src, srcPort, dst)
	if err != nil {
		return nil, err
	}
	hc := &holdConn{Conn: c, r: bufio.NewReader(c)}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := hc.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", dst, err)
	}
	hc.server = strings.TrimSpace(line)
	return hc, nil
}

// echo sends a line and waits for it to come back.
func (c *holdConn) echo(msg string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != msg {
		return fmt.Errorf("echo %q came back as %q", msg, line)
	}
	return nil
}

// txBytes reads an interface's transmit counter in h's namespace.
func txBytes(t *testing.T, h *lab.Host, dev string) int64 {
	t.Helper()
	out := h.MustRun("cat", "/sys/class/net/"+dev+"/statistics/tx_bytes")
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("%s tx_bytes %q: %v", dev, out, err)
	}
	return n
}

// inNS runs fn on an OS thread switched into h's network namespace and
// switches the thread back afterwards. lab's Host.Do instead lets the
// thread die with its goroutine, which fails when that thread is the
// process's main thread: Go cannot end it and parks it for good, still in
// the namespace, so `ip netns pids` then lists the test process itself and
// the lab's cleanup kills it (seen in the VM).
func inNS(h *lab.Host, fn func() error) error {
	return netif.InNetns("/run/netns/"+h.NS, fn)
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
