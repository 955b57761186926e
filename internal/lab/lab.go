// Package lab builds throwaway test networks out of Linux network
// namespaces: one namespace per host, each with a veth cable into a bridge
// that lives in a namespace of its own, so nothing of the host is touched
// and pulling a cable is setting the bridge-side port down.
//
// Every name carries a per-lab prefix, so tests may run in parallel, and
// everything is removed in t.Cleanup, even when the test fails. Addresses
// come from 198.18.0.0/15 (RFC 2544, the benchmarking range).
//
// Tests that need a lab need root. Without root they skip, except under
// CI (CI set to anything), where a skip would hide an untested feature, so
// they fail. Other skips go through Skip and the machine-fact helpers of
// skip.go for the same reason.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireRoot skips the test when not root, or fails it under CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if CI() {
		t.Fatal("this test needs root and network namespaces; CI must run it as root")
	}
	t.Skip("needs root (network namespaces)")
}

// RequireCommand skips the test when a program is missing, or fails it under
// CI (scripts/test installs every program the tests need).
func RequireCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if CI() {
				t.Fatalf("%s not installed; add its package to scripts/packages.txt", n)
			}
			t.Skipf("%s not installed (scripts/test installs it)", n)
		}
	}
}

// Lab is one test network: a bridge and the hosts plugged into it.
type Lab struct {
	t      testing.TB
	Prefix string // unique per lab, at most 6 characters
	Bridge string // namespace holding the bridge "br0"
	Subnet netip.Prefix

	mu    sync.Mutex
	hosts []*Host
	next  int // next host number, for addresses and MACs
}

// New creates an empty lab with its bridge. The subnet defaults to
// 198.18.0.0/24; host N gets 198.18.0.(10+N) unless told otherwise.
func New(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "ip")
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &Lab{t: t, Prefix: "v" + hex.EncodeToString(b[:])[:5], Subnet: netip.MustParsePrefix("198.18.0.0/24")}
	l.Bridge = l.Prefix + "-br"
	t.Cleanup(l.cleanup)
	l.must("ip", "netns", "add", l.Bridge)
	l.must("ip", "-n", l.Bridge, "link", "set", "lo", "up")
	l.must("ip", "-n", l.Bridge, "link", "add", "br0", "type", "bridge")
	// Forward at once (no STP learning delay) and do not let IGMP snooping
	// hide multicast VRRP adverts.
	l.must("ip", "-n", l.Bridge, "link", "set", "br0", "type", "bridge", "forward_delay", "0", "mcast_snooping", "0")
	l.must("ip", "-n", l.Bridge, "link", "set", "br0", "up")
	return l
}

// Host is one machine of the lab: a network namespace with an interface
// "eth0" cabled to the lab bridge.
type Host struct {
	lab   *Lab
	Name  string     // short name given by the test ("d1")
	NS    string     // namespace name
	Iface string     // interface inside the namespace: "eth0"
	Port  string     // bridge-side port name
	Addr  netip.Addr // first IPv4 address
	MAC   string
	procs []*Proc
}

// Host adds a host with the given addresses (CIDR, IPv4 or IPv6). With no
// address it gets the next free one of the lab subnet with its prefix.
func (l *Lab) Host(name string, addrs ...string) *Host {
	l.t.Helper()
	l.mu.Lock()
	l.next++
	n := l.next
	l.mu.Unlock()
	h := &Host{lab: l, Name: name, NS: l.Prefix + "-" + name, Iface: "eth0", Port: fmt.Sprintf("%s-p%d", l.Prefix, n)}
	h.MAC = fmt.Sprintf("02:00:%02x:00:00:%02x", n>>8&0xff, n&0xff)
	if len(addrs) == 0 {
		a := l.Subnet.Addr().As4()
		a[3] = byte(10 + n)
		addrs = []string{fmt.Sprintf("%s/%d", netip.AddrFrom4(a), l.Subnet.Bits())}
	}
	l.must("ip", "netns", "add", h.NS)
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	l.must("ip", "-n", h.NS, "link", "set", "lo", "up")
	for _, k := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
		l.must("ip", "netns", "exec", h.NS, "sysctl", "-qw", k)
	}
	tmp := h.Port + "x"
	l.must("ip", "link", "add", tmp, "type", "veth", "peer", "name", h.Port)
	l.must("ip", "link", "set", tmp, "netns", h.NS)
	l.must("ip", "link", "set", h.Port, "netns", l.Bridge)
	l.must("ip", "-n", h.NS, "link", "set", tmp, "name", h.Iface)
	l.must("ip", "-n", h.NS, "link", "set", h.Iface, "address", h.MAC)
	for _, a := range addrs {
		l.must("ip", "-n", h.NS, "addr", "add", a, "dev", h.Iface)
		if p, err := netip.ParsePrefix(a); err == nil && p.Addr().Is4() && !h.Addr.IsValid() {
			h.Addr = p.Addr()
		}
	}
	l.must("ip", "-n", h.NS, "link", "set", h.Iface, "up")
	l.must("ip", "-n", l.Bridge, "link", "set", h.Port, "master", "br0")
	l.must("ip", "-n", l.Bridge, "link", "set", h.Port, "up")
	return h
}

// Hosts returns the hosts in creation order.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// Cut pulls the host's cable: its bridge-side port goes down, so the host
// sees carrier loss on eth0 and nobody hears it.
func (h *Host) Cut() { h.lab.must("ip", "-n", h.lab.Bridge, "link", "set", h.Port, "down") }

// Restore plugs the cable back in.
func (h *Host) Restore() { h.lab.must("ip", "-n", h.lab.Bridge, "link", "set", h.Port, "up") }

// Blackhole drops, on the bridge, every frame to and from the host while
// keeping its link up (a silent failure, unlike Cut): the port is detached
// from the bridge.
func (h *Host) Blackhole() { h.lab.must("ip", "-n", h.lab.Bridge, "link", "set", h.Port, "nomaster") }

// Unblackhole reattaches the host's port to the bridge.
func (h *Host) Unblackhole() {
	h.lab.must("ip", "-n", h.lab.Bridge, "link", "set", h.Port, "master", "br0")
}

// Cmd returns a command that runs in the host's namespace.
func (h *Host) Cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in the host's namespace and returns its combined
// output. It gives up after 30 s.
func (h *Host) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (h *Host) MustRun(name string, args ...string) string {
	h.lab.t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		h.lab.t.Fatal(err)
	}
	return out
}

// Proc is a background process started in a host.
type Proc struct {
	Cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start starts a program in the host's namespace in the background. It is
// killed (SIGKILL to its process group) at cleanup if still running; its
// output is kept and logged when the test fails.
func (h *Host) Start(name string, args ...string) *Proc {
	h.lab.t.Helper()
	p := &Proc{Cmd: h.Cmd(name, args...), out: &syncBuffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startPinned(p.Cmd); err != nil {
		h.lab.t.Fatalf("%s: start %s: %v", h.Name, name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	h.procs = append(h.procs, p)
	t := h.lab.t
	hostName := h.Name
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s on %s:\n%s", name, hostName, p.Output())
		}
	})
	return p
}

// The kernel sends Pdeathsig when the thread that forked the child exits,
// not the process. Go ends a thread when a goroutine locked to it returns
// (as Host.Do's do), so children are forked from one goroutine locked to
// a thread that lives as long as the test process: they die with the test
// binary (a timeout or a crash leaves nothing behind), and only then.
var (
	spawnOnce sync.Once
	spawnReq  chan spawnCall
)

type spawnCall struct {
	cmd *exec.Cmd
	err chan error
}

func startPinned(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnCall)
		go func() {
			runtime.LockOSThread()
			for c := range spawnReq {
				c.err <- c.cmd.Start()
			}
		}()
	})
	c := spawnCall{cmd: cmd, err: make(chan error, 1)}
	spawnReq <- c
	return <-c.err
}

// Output returns what the process wrote so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done.
func (p *Proc) Err() error { return p.err }

// Signal sends a signal to the process (ip netns exec execs the program, so
// the pid is the program's).
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Kill kills the process group and waits for it (at most 10 s).
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Stop sends SIGTERM and waits up to timeout for the exit, then kills.
func (p *Proc) Stop(timeout time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return errors.New("did not stop in time; killed")
	}
}

// Do runs fn with the calling goroutine's thread inside the host's network
// namespace, so sockets fn creates (net.Dial, net.Listen) belong to it.
func (h *Host) Do(fn func() error) error {
	return inNetns(h.NS, fn)
}

func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread goes back to its own namespace afterwards. Go ends a
		// locked thread whose goroutine returns, except the main thread,
		// which it parks: left in the lab's namespace, that would make
		// the test process one of the namespace's pids.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := setns(int(target.Fd())); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		err = fn()
		if setns(int(self.Fd())) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func setns(fd int) error {
	const sysSetns = 308 // x86_64; CLONE_NEWNET = 0x40000000
	_, _, e := syscall.Syscall(sysSetns, uintptr(fd), 0x40000000, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Eventually polls cond every 10 ms until it returns true or the timeout
// passes, then fails the test with msg. Use it instead of sleeping. An
// argument of type func() string is called when the message is printed,
// so it shows the state at the deadline (p.Output, not p.Output()).
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			for i, a := range args {
				if f, ok := a.(func() string); ok {
					args[i] = f()
				}
			}
			t.Fatalf("after %v: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *Lab) must(name string, args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

func (l *Lab) cleanup() {
	l.mu.Lock()
	hosts := l.hosts
	l.mu.Unlock()
	for _, h := range hosts {
		for _, p := range h.procs {
			p.Kill()
		}
		// Anything else still running in the namespace (daemons that
		// forked) goes too.
		if out, err := exec.Command("ip", "netns", "pids", h.NS).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "netns", "del", l.Bridge).Run()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
