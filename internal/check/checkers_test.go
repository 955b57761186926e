package check

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/vipd/vipd/internal/lab"
)

func freeAddr(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return netip.MustParseAddrPort(c.LocalAddr().String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestTCP(t *testing.T) {
	open := serveTCP(t, func(c net.Conn) { c.Close() })
	tests := []struct {
		name   string
		ep     Endpoint
		up     bool
		reason string
	}{
		{"open", Endpoint{Addr: open}, true, "connected"},
		{"refused", Endpoint{Addr: freeAddr(t, "tcp")}, false, "connect: connection refused"},
		{"bindto and bind_port", Endpoint{Addr: open, BindTo: netip.MustParseAddr("127.0.0.2"), BindPort: uint16(freeAddr(t, "tcp").Port())}, true, "connected"},
		{"bind_if lo", Endpoint{Addr: open, BindIf: "lo"}, true, "connected"},
		{"bind_if missing", Endpoint{Addr: open, BindIf: "nosuch0"}, false, "connect: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ep.BindIf != "" && os.Geteuid() != 0 {
				lab.Skip(t, "SO_BINDTODEVICE needs root")
			}
			tt.ep.Timeout = time.Second
			r := (&TCP{Endpoint: tt.ep}).Check(context.Background())
			if r.Up != tt.up || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Errorf("got %+v, want up=%v %q", r, tt.up, tt.reason)
			}
		})
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in         string
		wild       bool
		data, mask []byte
		err        bool
	}{
		{in: "Ab12f 3 456 546443123", data: []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}},
		{in: "0a0B", data: []byte{0x0a, 0x0b}},
		{in: "1x xX", wild: true, data: []byte{0x10, 0x00}, mask: []byte{0xf0, 0x00}},
		{in: "1x", err: true},
		{in: "  ", err: true},
		{in: "zz", err: true},
	}
	for _, tt := range tests {
		d, m, err := ParseHex(tt.in, tt.wild)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if !slices.Equal(d, tt.data) {
			t.Errorf("%q: data %x, want %x", tt.in, d, tt.data)
		}
		if tt.mask != nil && !slices.Equal(m, tt.mask) {
			t.Errorf("%q: mask %x, want %x", tt.in, m, tt.mask)
		}
	}
}

// udpServer answers datagrams with reply(payload); nil means no answer.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestUDP(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return append([]byte(nil), b...) })
	silent := udpServer(t, func([]byte) []byte { return nil })
	fixed := udpServer(t, func([]byte) []byte { return []byte{0xde, 0xad, 0x42, 0x01} })
	closed := freeAddr(t, "udp")
	pat, mask, _ := ParseHex("dEaD X2", true)
	tests := []struct {
		name   string
		c      UDP
		up     bool
		reason string
	}{
		{"echo, no reply required", UDP{Endpoint: Endpoint{Addr: echo}}, true, "reply"},
		{"silence is up without require_reply", UDP{Endpoint: Endpoint{Addr: silent}}, true, "no ICMP error"},
		{"silence is down with require_reply", UDP{Endpoint: Endpoint{Addr: silent}, RequireReply: true}, false, "no reply: timeout"},
		{"port unreachable", UDP{Endpoint: Endpoint{Addr: closed}}, false, "recv: connection refused"},
		{"payload echoed and matched", UDP{Endpoint: Endpoint{Addr: echo}, Payload: []byte("ping"), RequireReply: true, ReplyPattern: []byte("pi")}, true, "reply"},
		{"pattern with wildcard", UDP{Endpoint: Endpoint{Addr: fixed}, RequireReply: true, ReplyPattern: pat, ReplyMask: mask}, true, "reply"},
		{"pattern mismatch", UDP{Endpoint: Endpoint{Addr: fixed}, RequireReply: true, ReplyPattern: []byte{0xbe, 0xef}}, false, "does not match"},
		{"too short", UDP{Endpoint: Endpoint{Addr: fixed}, RequireReply: true, MinReply: 5}, false, "reply length 4 not in 5-255"},
		{"too long", UDP{Endpoint: Endpoint{Addr: fixed}, RequireReply: true, MaxReply: 3}, false, "reply length 4 not in 0-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Timeout = 300 * time.Millisecond
			r := tt.c.Check(context.Background())
			if r.Up != tt.up || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("got %+v, want up=%v %q", r, tt.up, tt.reason)
			}
		})
	}
}

func TestDNS(t *testing.T) {
	// A responder that first sends a reply with a wrong id (to be
	// ignored), then the real one with the rcode the name asks for.
	srv := udpServer(t, func(b []byte) []byte {
		var m dnsmessage.Message
		if err := m.Unpack(b); err != nil || len(m.Questions) != 1 || !m.RecursionDesired {
			return nil
		}
		q := m.Questions[0]
		m.Response = true
		switch q.Name.String() {
		case "nx.example.":
			m.RCode = dnsmessage.RCodeNameError
		case "silent.example.":
			return nil
		}
		out, _ := m.Pack()
		return out
	})
	tests := []struct {
		name   string
		c      DNS
		up     bool
		reason string
	}{
		{"default SOA .", DNS{}, true, "DNS NOERROR"},
		{"A record", DNS{Type: dnsmessage.TypeA, Name: "web.example"}, true, "DNS NOERROR"},
		{"NXDOMAIN", DNS{Type: dnsmessage.TypeA, Name: "nx.example"}, false, "DNS rcode 3 (NameError)"},
		{"no answer", DNS{Name: "silent.example"}, false, "recv: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Addr, tt.c.Timeout = srv, 300*time.Millisecond
			r := tt.c.Check(context.Background())
			if r.Up != tt.up || r.Reason != tt.reason {
				t.Errorf("got %+v, want up=%v %q", r, tt.up, tt.reason)
			}
		})
	}
	if _, err := DNSType("PTR"); err == nil {
		t.Error("PTR accepted")
	}
}

// smtpServer speaks just enough SMTP: banner, then an answer to HELO.
func smtpServer(t *testing.T, banner, heloReply string, gotHelo chan<- string) netip.AddrPort {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprint(c, banner)
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		if gotHelo != nil {
			gotHelo <- line
		}
		fmt.Fprint(c, heloReply)
	})
}

// serveTCP listens on a free loopback port until the test ends and runs
// handle in its own goroutine for every connection accepted; handle owns
// the connection.
func serveTCP(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestSMTP(t *testing.T) {
	helo := make(chan string, 1)
	good := smtpServer(t, "220-mail.example ESMTP\r\n220 ready\r\n", "250 mail.example\r\n", helo)
	busy := smtpServer(t, "554 go away\r\n", "", nil)
	badHelo := smtpServer(t, "220 ok\r\n", "501 syntax\r\n", nil)
	garbage := smtpServer(t, "SSH-2.0-x\r\n", "", nil)
	r := (&SMTP{Endpoint: Endpoint{Addr: good, Timeout: time.Second}, HeloName: "lb1.example"}).Check(context.Background())
	if !r.Up {
		t.Fatalf("good: %+v", r)
	}
	if h := <-helo; h != "HELO lb1.example\r\n" {
		t.Errorf("HELO line %q", h)
	}
	for _, tt := range []struct {
		addr   netip.AddrPort
		reason string
	}{
		{busy, "bad SMTP banner 554 go away"},
		{badHelo, "bad HELO response 501 syntax"},
		{garbage, "banner: bad SMTP reply"},
		{freeAddr(t, "tcp"), "connect: connection refused"},
	} {
		r := (&SMTP{Endpoint: Endpoint{Addr: tt.addr, Timeout: time.Second}}).Check(context.Background())
		if r.Up || !strings.HasPrefix(r.Reason, tt.reason) {
			t.Errorf("%v: got %+v, want %q", tt.addr, r, tt.reason)
		}
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMisc(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		dynamic bool
		up      bool
		reason  string
		weight  Weight
	}{
		{"exit 0", "exit 0", false, true, "exit 0", Weight{}},
		{"exit 1", "exit 1", false, false, "exit 1", Weight{}},
		{"exit 12 without dynamic", "exit 12", false, false, "exit 12", Weight{}},
		{"exit 12 dynamic", "exit 12", true, true, "exit 12: weight 10", Weight{WeightSet, 10}},
		{"exit 255 dynamic", "exit 255", true, true, "exit 255: weight 253", Weight{WeightSet, 253}},
		{"exit 1 dynamic", "exit 1", true, false, "exit 1", Weight{}},
		{"killed", "kill -9 $$", false, false, "killed by signal killed", Weight{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (&Misc{Argv: []string{writeScript(t, tt.body)}, Dynamic: tt.dynamic, Timeout: 5 * time.Second}).Check(context.Background())
			if r.Up != tt.up || r.Reason != tt.reason || r.Weight != tt.weight {
				t.Errorf("got %+v", r)
			}
		})
	}
	t.Run("missing program", func(t *testing.T) {
		r := (&Misc{Argv: []string{"/nonexistent/check"}}).Check(context.Background())
		if r.Up || !strings.Contains(r.Reason, "no such file") {
			t.Errorf("got %+v", r)
		}
	})
}

// TestMiscTimeoutKillsGroup: a script that hangs, with a child that hangs
// too, is killed with its child at misc_timeout and leaves no process.
func TestMiscTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	s := writeScript(t, "sleep 60 & echo $! > "+pidFile+"\nsleep 60")
	start := time.Now()
	r := (&Misc{Argv: []string{s}, Timeout: 300 * time.Millisecond}).Check(context.Background())
	if el := time.Since(start); r.Up || !strings.HasPrefix(r.Reason, "timed out after") || el > 3*time.Second {
		t.Fatalf("got %+v after %v", r, el)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	deadline := time.Now().Add(3 * time.Second)
	for {
		// The child was reparented to init, which reaps it once killed.
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			break
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			break // killed, waiting for init to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out script still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMiscUser(t *testing.T) {
	lab.RequireRoot(t) // to switch users
	cred, err := LookupCredential("nobody", "")
	if err != nil {
		lab.Skipf(t, "no user nobody: %v", err)
	}
	s := writeScript(t, `[ "$(id -u)" = "`+fmt.Sprint(cred.Uid)+`" ] && [ "$(id -G)" = "`+fmt.Sprint(cred.Gid)+`" ]`)
	for d := filepath.Dir(s); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := (&Misc{Argv: []string{s}, Credential: cred, Timeout: 5 * time.Second}).Check(context.Background())
	if !r.Up {
		t.Fatalf("script did not run as nobody with only its group: %+v", r)
	}
	if _, err := LookupCredential("no-such-user-vipd", ""); err == nil {
		t.Error("unknown user accepted")
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "track")
	tests := []struct {
		name    string
		content string
		c       File
		up      bool
		weight  Weight
		reason  string
	}{
		{"weight 0, value 0", "0\n", File{}, true, Weight{}, "value 0"},
		{"weight 0, value 3", "3\n", File{}, false, Weight{}, "value 3"},
		{"weight 2 adds", "5", File{Weight: 2}, true, Weight{WeightAdd, 10}, "value 5"},
		{"reverse", "5", File{Weight: 2, Reverse: true}, true, Weight{WeightAdd, -10}, "value 5"},
		{"negative", "-4", File{Weight: 1}, true, Weight{WeightAdd, -4}, "value -4"},
		{"fault", "-2147483648", File{Weight: 1}, false, Weight{}, "out of range"},
		{"empty file is 0", "", File{}, true, Weight{}, "value 0"},
		{"not a number", "abc", File{}, false, Weight{}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			c := tt.c
			c.Path = p
			r := c.Check(context.Background())
			if r.Up != tt.up || r.Weight != tt.weight || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("got %+v", r)
			}
		})
	}
	r := (&File{Path: filepath.Join(t.TempDir(), "missing")}).Check(context.Background())
	if r.Up || !strings.Contains(r.Reason, "no such file") {
		t.Errorf("missing file: %+v", r)
	}
}

func TestPingLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		b, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		var lo, hi int
		fmt.Sscan(string(b), &lo, &hi)
		if gid := os.Getegid(); gid < lo || gid > hi {
			lab.Skip(t, "neither root nor in ping_group_range")
		}
	}
	for _, a := range []string{"127.0.0.1", "::1"} {
		r := (&Ping{Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: time.Second}}).Check(context.Background())
		if !r.Up {
			t.Errorf("ping %s: %+v", a, r)
		}
	}
	// An address nobody answers for: 198.18.255.254 is routed nowhere
	// here, so either no route (down at once) or no reply (timeout).
	r := (&Ping{Endpoint{Addr: netip.MustParseAddrPort("[fe80::1%lo]:0"), Timeout: 300 * time.Millisecond}}).Check(context.Background())
	if r.Up {
		t.Errorf("ping of a silent address: %+v", r)
	}
}
