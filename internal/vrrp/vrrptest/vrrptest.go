// Package vrrptest runs VRRP scenarios in a network-namespace lab: the
// same instance described once, run by the vipd daemon (DaemonCommand),
// by the vrrpnode test program (VipdCommand: a vrrp.Node alone) or by
// keepalived; a UDP client probing the VIP every 10 ms; and helpers to
// wait for and measure failovers. The VRRP end-to-end tests and
// bench/failover share it.
package vrrptest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/netif"
	"github.com/vipd/vipd/internal/vrrp"
	"golang.org/x/sys/unix"
)

// Spec is one VRRP instance on one director.
type Spec struct {
	Name      string // instance name, default VI_1
	Iface     string // default eth0
	VRID      int
	Version   int
	Priority  int
	State     string // MASTER or BACKUP (default)
	AdvertInt time.Duration
	VIPs      []netip.Prefix
	AuthPass  string // PASS authentication when set (VRRPv2)
	// HMACKey signs the adverts with auth_hmac (keepalived 2.4.2+): key
	// id 1, active, mode enforce, when set (32 to 64 bytes).
	HMACKey   string
	NoPreempt bool
	// Unicast: UnicastSrc and UnicastPeers set.
	UnicastSrc   netip.Addr
	UnicastPeers []netip.Addr
	// VMAC writes use_vmac (VMACXmitBase adds vmac_xmit_base).
	VMAC, VMACXmitBase bool
	// Extra adjusts the vipd configuration (scripts, tracking...); the
	// keepalived.conf does not see it.
	Extra func(*vrrp.Config)
	// Global lines go into keepalived.conf's global_defs (read by
	// keepalived and the vipd daemon; the vrrpnode program ignores them).
	Global []string
}

func (s Spec) name() string {
	if s.Name == "" {
		return "VI_1"
	}
	return s.Name
}

func (s Spec) iface() string {
	if s.Iface == "" {
		return "eth0"
	}
	return s.Iface
}

// Config is the spec as a vrrp.Config.
func (s Spec) Config() vrrp.Config {
	in := vrrp.InstanceConfig{
		Name: s.name(), Interface: s.iface(), VRID: s.VRID, Version: s.Version, Priority: s.Priority,
		State: s.State, AdvertInt: s.AdvertInt, NoPreempt: s.NoPreempt,
		UnicastSrcIP: s.UnicastSrc, UnicastPeers: s.UnicastPeers,
	}
	if s.AuthPass != "" {
		in.AuthType, in.AuthPass = "PASS", s.AuthPass
	}
	if s.HMACKey != "" {
		in.AuthHMAC = &vrrp.AuthHMACConfig{Keys: []vrrp.HMACKey{{ID: 1, Key: []byte(s.HMACKey)}}, ActiveKey: 1}
	}
	for _, v := range s.VIPs {
		in.VIPs = append(in.VIPs, vrrp.VIP{Prefix: v, Dev: s.iface()})
	}
	cfg := vrrp.Config{Instances: []vrrp.InstanceConfig{in}}
	if s.Extra != nil {
		s.Extra(&cfg)
	}
	return cfg
}

func seconds(d time.Duration) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", d.Seconds()), "0"), ".")
}

// Keepalived is the spec as keepalived.conf.
func (s Spec) Keepalived() string {
	var b strings.Builder
	version := s.Version
	if version == 0 {
		version = 2
	}
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n    vrrp_version %d\n", s.name()+"_rid", version)
	for _, l := range s.Global {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "vrrp_instance %s {\n", s.name())
	state := s.State
	if state == "" {
		state = "BACKUP"
	}
	fmt.Fprintf(&b, "    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n", state, s.iface(), s.VRID, s.Priority)
	ai := s.AdvertInt
	if ai == 0 {
		ai = time.Second
	}
	fmt.Fprintf(&b, "    advert_int %s\n", seconds(ai))
	if s.NoPreempt {
		b.WriteString("    nopreempt\n")
	}
	if s.VMAC {
		b.WriteString("    use_vmac\n")
	}
	if s.VMACXmitBase {
		b.WriteString("    vmac_xmit_base\n")
	}
	if s.AuthPass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", s.AuthPass)
	}
	if s.HMACKey != "" {
		fmt.Fprintf(&b, "    auth_hmac {\n        key 1 %s\n        active_key 1\n    }\n", s.HMACKey)
	}
	if s.UnicastSrc.IsValid() {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", s.UnicastSrc)
		for _, p := range s.UnicastPeers {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("    virtual_ipaddress {\n")
	for _, v := range s.VIPs {
		fmt.Fprintf(&b, "        %s dev %s\n", v, s.iface())
	}
	b.WriteString("    }\n}\n")
	return b.String()
}

// Director is a VRRP daemon running on a lab host.
type Director struct {
	Host *lab.Host
	Kind string // "vipd" or "keepalived"
	Spec Spec
	Proc *lab.Proc
	Dir  string
	cmd  []string
}

// DaemonCommand runs the vipd daemon (cmd/vipd) on the spec's
// keepalived.conf, with private runtime paths. Placeholders: {json}
// (vrrp.Config as JSON), {conf} (keepalived.conf), {dir} (a private
// directory), {vipd} (the daemon, built once per test process), {bin}
// (the vrrpnode test program).
const DaemonCommand = "{vipd} -n -l -D -f {conf} -p {dir}/vipd.pid --control {dir}/vipd.sock --data-file {dir}/vipd.data --stats-file {dir}/vipd.stats"

// VipdCommand runs the vrrpnode test program: a vrrp.Node alone, from
// the spec as JSON (Spec.Extra included), with its status written to
// {dir}/status.json on SIGUSR1. It is a stand-in for the daemon, for the
// tests of the Node itself (hot reload of a vrrp.Config, drop counters)
// and bench/failover's default.
const VipdCommand = "{bin} -config {json} -status {dir}/status.json"

// KeepalivedCommand runs keepalived in the foreground, VRRP only, with
// private pid files.
const KeepalivedCommand = "keepalived -n -l -D -G -P -f {conf} -p {dir}/k.pid -r {dir}/v.pid -c {dir}/c.pid -b {dir}/b.pid"

// Start writes the spec's configuration files and runs the command
// template on the host.
func Start(t testing.TB, h *lab.Host, kind, template string, s Spec) *Director {
	t.Helper()
	dir, err := os.MkdirTemp("", "vrrptest-"+h.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	js, _ := json.MarshalIndent(s.Config(), "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "vrrp.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(s.Keepalived()), 0o644); err != nil {
		t.Fatal(err)
	}
	line := template
	if strings.Contains(line, "{bin}") {
		line = strings.ReplaceAll(line, "{bin}", lab.Binary(t, "./internal/vrrp/internal/vrrpnode"))
	}
	if strings.Contains(line, "{vipd}") {
		line = strings.ReplaceAll(line, "{vipd}", lab.Binary(t, "./cmd/vipd"))
	}
	line = strings.NewReplacer("{json}", filepath.Join(dir, "vrrp.json"), "{conf}", filepath.Join(dir, "keepalived.conf"), "{dir}", dir).Replace(line)
	args := strings.Fields(line)
	d := &Director{Host: h, Kind: kind, Spec: s, Dir: dir, cmd: args}
	d.Proc = StartProc(h, args[0], args[1:]...)
	return d
}

// spawn runs functions on one OS thread that never exits. lab.Host.Start
// sets Pdeathsig, which the kernel fires when the *thread* that forked the
// child exits; lab.Host.Do ends the threads it uses, so a child forked
// from a thread a Do later locks would be killed at random.
var spawn = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawn {
			f()
		}
	}()
}

// StartProc is h.Start run from a thread that lives as long as the
// process, so the child survives other goroutines' namespace switches.
func StartProc(h *lab.Host, name string, args ...string) *lab.Proc {
	var p *lab.Proc
	done := make(chan struct{})
	spawn <- func() {
		defer close(done)
		p = h.Start(name, args...)
	}
	<-done
	return p
}

// Restart starts the director's command again (after a stop or kill).
// Pid files left by a killed daemon are removed first (keepalived refuses
// to start while its VRRP child's pid file names a pid it sees).
func (d *Director) Restart(t testing.TB) {
	t.Helper()
	if old, _ := filepath.Glob(filepath.Join(d.Dir, "*.pid")); len(old) > 0 {
		for _, f := range old {
			os.Remove(f)
		}
	}
	d.Proc = StartProc(d.Host, d.cmd[0], d.cmd[1:]...)
}

// Log returns what the daemon logged so far.
func (d *Director) Log() string { return d.Proc.Output() }

// Term sends SIGTERM and waits for the exit (at most 10 s).
func (d *Director) Term(t testing.TB) {
	t.Helper()
	if err := d.Proc.Stop(10 * time.Second); err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Errorf("%s on %s: stop: %v", d.Kind, d.Host.Name, err)
	}
}

// Kill kills the daemon and every process in the host's namespace
// (keepalived's children leave its process group): it cannot clean up.
func (d *Director) Kill() {
	d.Proc.Kill()
	if out, err := exec.Command("ip", "netns", "pids", d.Host.NS).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// Signal sends a signal to the daemon.
func (d *Director) Signal(sig syscall.Signal) error { return d.Proc.Signal(sig) }

// HasVIP reports whether the host has the address configured (false when
// it cannot tell).
func HasVIP(h *lab.Host, vip netip.Addr) bool {
	ok, _ := VIPState(h, vip)
	return ok
}

// VIPState reports whether the host has the address configured, or why
// it could not tell.
func VIPState(h *lab.Host, vip netip.Addr) (bool, error) {
	out, err := h.Run("ip", "-o", "addr", "show")
	if err != nil {
		return false, err
	}
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && p.Addr() == vip {
			return true, nil
		}
	}
	return false, nil
}

// WaitLog waits until the director logged a line containing s, at most
// timeout, and returns the number of occurrences.
func (d *Director) WaitLog(t testing.TB, s string, count int, timeout time.Duration) {
	t.Helper()
	lab.Eventually(t, timeout, func() bool { return strings.Count(d.Log(), s) >= count },
		"%s on %s did not log %q %d times; log:\n%s", d.Kind, d.Host.Name, s, count, d.Log())
}

// Responder answers UDP probes on port with the host's name.
func Responder(t testing.TB, h *lab.Host, port int) {
	t.Helper()
	var pc net.PacketConn
	if err := h.Do(func() (err error) { pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port)); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := append(append([]byte(nil), buf[:n]...), []byte(" "+h.Name)...)
			_, _ = pc.WriteTo(reply, from)
		}
	}()
}

// Reply is one answered probe.
type Reply struct {
	Sent, At time.Time
	From     string // responder host name
}

// Prober sends a UDP probe to the VIP every Interval from the client and
// records the replies.
type Prober struct {
	mu      sync.Mutex
	replies []Reply
	pc      net.PacketConn
	stop    chan struct{}
	done    sync.WaitGroup
}

// Probe starts probing vip:port from host every interval until the test
// ends or Stop.
func Probe(t testing.TB, h *lab.Host, vip netip.Addr, port int, interval time.Duration) *Prober {
	t.Helper()
	p := &Prober{stop: make(chan struct{})}
	if err := h.Do(func() (err error) { p.pc, err = net.ListenPacket("udp4", ":0"); return }); err != nil {
		t.Fatal(err)
	}
	to := &net.UDPAddr{IP: vip.AsSlice(), Port: port}
	start := time.Now()
	// Replies are stamped with the kernel's receive time (SO_TIMESTAMPNS):
	// a busy test process reads them late, the client got them on time.
	uc := p.pc.(*net.UDPConn)
	if rc, err := uc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) })
	}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		buf := make([]byte, 128)
		oob := make([]byte, 128)
		for {
			n, oobn, _, _, err := uc.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			now := time.Now()
			if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SO_TIMESTAMPNS && len(cm.Data) >= 16 {
						ts := time.Unix(int64(binary.NativeEndian.Uint64(cm.Data[0:8])), int64(binary.NativeEndian.Uint64(cm.Data[8:16])))
						now = now.Add(-max(time.Since(ts), 0))
					}
				}
			}
			f := strings.Fields(string(buf[:n]))
			if len(f) != 2 {
				continue
			}
			var ns int64
			fmt.Sscan(f[0], &ns)
			p.mu.Lock()
			p.replies = append(p.replies, Reply{Sent: start.Add(time.Duration(ns)), At: now, From: f[1]})
			p.mu.Unlock()
		}
	}()
	go func() {
		defer p.done.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				_, _ = p.pc.WriteTo([]byte(fmt.Sprint(int64(time.Since(start)))), to)
			}
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

// Stop stops probing.
func (p *Prober) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.pc.Close()
	p.done.Wait()
}

// Replies returns the replies so far.
func (p *Prober) Replies() []Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Reply(nil), p.replies...)
}

// FirstFrom returns the first reply from host received after t0.
func (p *Prober) FirstFrom(host string, t0 time.Time) (Reply, bool) {
	for _, r := range p.Replies() {
		if r.At.After(t0) && r.From == host {
			return r, true
		}
	}
	return Reply{}, false
}

// Outage measures a failover that started at t0 (the command that
// causes it was about to run). fromEvent is the time from t0 to the first
// reply from host after t0; gap is what the client saw: the time between
// the last reply before that one (from anyone: the old master answers
// until the failure really happens) and it.
func (p *Prober) Outage(host string, t0 time.Time) (fromEvent, gap time.Duration, ok bool) {
	var last time.Time
	for _, r := range p.Replies() {
		if r.At.After(t0) && r.From == host {
			if last.IsZero() {
				last = t0
			}
			return r.At.Sub(t0), r.At.Sub(last), true
		}
		last = r.At
	}
	return 0, 0, false
}

// WaitReply waits until host answers a probe sent after t0.
func (p *Prober) WaitReply(t testing.TB, host string, t0 time.Time, timeout time.Duration) Reply {
	t.Helper()
	var r Reply
	lab.Eventually(t, timeout, func() bool {
		var ok bool
		r, ok = p.FirstFrom(host, t0)
		return ok
	}, "no probe answered by %s", host)
	return r
}

// Exclusive watches the VIP on the directors every 20 ms for d and fails
// the test if two hold it at once.
func Exclusive(t testing.TB, vip netip.Addr, d time.Duration, hosts ...*lab.Host) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		var holders []string
		for _, h := range hosts {
			if HasVIP(h, vip) {
				holders = append(holders, h.Name)
			}
		}
		if len(holders) > 1 {
			t.Fatalf("VIP %v held by %v at once", vip, holders)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Slack is the tolerance the acceptance tests give a failover on top of
// the protocol's bound: 100 ms, plus 150 ms when the host is overloaded
// (load average above twice the cores: CI runs every package's tests at
// once on two cores), so that the tests check the daemon, not the
// neighbours. The reason is logged.
func Slack(t testing.TB) time.Duration {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 100 * time.Millisecond
	}
	var load float64
	fmt.Sscan(string(b), &load)
	if load > 2*float64(runtime.NumCPU()) {
		t.Logf("host overloaded (load %.1f on %d cores): allowing 250 ms instead of 100 ms over the protocol bound", load, runtime.NumCPU())
		return 250 * time.Millisecond
	}
	return 100 * time.Millisecond
}

// Skew and DownInterval are RFC 5798's, as keepalived computes them.
func Skew(version, prio int, interval time.Duration) time.Duration {
	if version == 3 {
		return time.Duration(256-prio) * interval / 256
	}
	return time.Duration(256-prio) * time.Second / 256
}

// DownInterval is 3 x interval + skew.
func DownInterval(version, prio int, interval time.Duration) time.Duration {
	return 3*interval + Skew(version, prio, interval)
}

// Inject sends a raw VRRP message from a lab host (for drop tests).
func Inject(t testing.TB, h *lab.Host, msg []byte, src, dst netip.Addr, ttl int) {
	t.Helper()
	err := h.Do(func() error {
		c, err := netif.ListenVRRP("eth0", src.Is6())
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Write(msg, src, dst, ttl)
	})
	if err != nil {
		t.Fatal(err)
	}
}
