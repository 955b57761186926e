package notify

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/vipd/vipd/internal/lab"
)

// received is one message as a real SMTP server (go-smtp) saw it.
type received struct {
	helo, from string
	rcpt       []string
	data       string
}

type smtpServer struct {
	addr string
	mu   sync.Mutex
	msgs []received
}

type smtpSession struct {
	srv *smtpServer
	cur received
}

func (s *smtpSession) Reset()        { s.cur = received{helo: s.cur.helo} }
func (s *smtpSession) Logout() error { return nil }
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpt = append(s.cur.rcpt, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.cur)
	s.srv.mu.Unlock()
	return nil
}

// startSMTP runs a real SMTP server on a loopback port for the test.
func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	srv := &smtpServer{}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: srv, cur: received{helo: c.Hostname()}}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = "mx.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return srv
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func TestSMTPAlerts(t *testing.T) {
	srv := startSMTP(t)
	host, port, _ := net.SplitHostPort(srv.addr)
	n, _ := newNotifier(t, Config{
		RouterID:         "LVS_DEVEL",
		Email:            []string{"ops@example.com", "Oncall <oncall@example.com>"},
		EmailFrom:        "vipd@lb1.example.com",
		SMTPServer:       host + " " + port,
		SMTPHeloName:     "lb1.example.com",
		SMTPAlertVRRP:    yes(),
		SMTPAlertChecker: yes(),
		NoEmailFaults:    true,
	})
	vs := web()
	rs := netip.MustParseAddrPort("198.18.0.21:80")
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100}) // same state: no second mail
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateFault, Priority: 100})  // no_email_faults
	n.VRRP(VRRPEvent{Name: "VI_1", State: EventMasterRxLowerPri})      // not a state
	n.VRRP(VRRPEvent{Name: "VI_2", State: StateBackup, SMTPAlert: no()})
	n.VRRP(VRRPEvent{Group: true, Name: "G1", State: StateBackup})
	n.RealServer(RealServerEvent{VS: vs, RS: rs, Checker: "TCP CHECK"})
	n.RealServer(RealServerEvent{VS: vs, RS: rs, Up: true, SMTPAlert: no()})
	n.Quorum(QuorumEvent{VS: vs, Quorum: 2, Hysteresis: 1, Threshold: 1, LiveSum: 0})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateStop, Priority: 100})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []struct{ subject, body string }{
		{"[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="},
		{"[LVS_DEVEL] VRRP Group G1 - Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="},
		{"[LVS_DEVEL] Realserver [198.18.0.21]:tcp:80 of virtual server [198.18.0.100]:tcp:80 - DOWN", "=> TCP CHECK failed on service <="},
		{"[LVS_DEVEL] Virtualserver [198.18.0.100]:tcp:80 - DOWN", "=> Lost quorum 2+1=1 <= 0 <="},
		{"[LVS_DEVEL] VRRP Instance VI_1 - Stopping", "=> VRRP Instance stopping <="},
	}
	msgs := srv.messages()
	if len(msgs) != len(want) {
		for _, m := range msgs {
			t.Logf("got mail:\n%s", m.data)
		}
		t.Fatalf("got %d mails, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if m.helo != "lb1.example.com" || m.from != "vipd@lb1.example.com" ||
			strings.Join(m.rcpt, ",") != "ops@example.com,oncall@example.com" {
			t.Errorf("mail %d: HELO %q, MAIL FROM %q, RCPT TO %q", i, m.helo, m.from, m.rcpt)
		}
		msg, err := mail.ReadMessage(strings.NewReader(m.data))
		if err != nil {
			t.Fatalf("mail %d: %v\n%s", i, err, m.data)
		}
		body, _ := io.ReadAll(msg.Body)
		if got := msg.Header.Get("Subject"); got != want[i].subject {
			t.Errorf("mail %d: subject %q, want %q", i, got, want[i].subject)
		}
		if got := strings.TrimRight(string(body), "\r\n"); got != want[i].body {
			t.Errorf("mail %d: body %q, want %q", i, got, want[i].body)
		}
		if got := msg.Header.Get("To"); got != "ops@example.com, Oncall <oncall@example.com>" {
			t.Errorf("mail %d: To %q", i, got)
		}
		if msg.Header.Get("From") != "vipd@lb1.example.com" || msg.Header.Get("X-Mailer") != "vipd" {
			t.Errorf("mail %d: headers %v", i, msg.Header)
		}
		if _, err := msg.Header.Date(); err != nil {
			t.Errorf("mail %d: Date: %v", i, err)
		}
	}
	if s := n.Stats(); s.MailsSent != 5 || s.MailsFailed != 0 || s.MailsDropped != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// TestSMTPAlertDefaults: without any smtp_alert setting keepalived mails
// real server changes but not VRRP transitions or quorum changes.
func TestSMTPAlertDefaults(t *testing.T) {
	srv := startSMTP(t)
	n, _ := newNotifier(t, Config{RouterID: "R1", Email: []string{"ops@example.com"}, SMTPServer: srv.addr})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster})
	n.Quorum(QuorumEvent{VS: web(), Up: true, Init: true})
	n.RealServer(RealServerEvent{VS: web(), RS: netip.MustParseAddrPort("198.18.0.21:80"), Up: true})
	n.Quorum(QuorumEvent{VS: web(), SMTPAlert: yes(), Init: true, Quorum: 1, Threshold: 1})
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range srv.messages() {
		msg, err := mail.ReadMessage(strings.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(msg.Body)
		subjects = append(subjects, msg.Header.Get("Subject")+" | "+strings.TrimSpace(string(body)))
		if m.from != "vipd@"+hostname() || m.helo != hostname() {
			t.Errorf("default sender %q and HELO %q, want vipd@%s and %s", m.from, m.helo, hostname(), hostname())
		}
	}
	want := []string{
		"[R1] Realserver [198.18.0.21]:tcp:80 of virtual server [198.18.0.100]:tcp:80 - UP | => CHECK succeed on service <=",
		"[R1] Virtualserver [198.18.0.100]:tcp:80 - DOWN | => Starting with quorum down 1+0=1 <= 0 <=",
	}
	if strings.Join(subjects, "\n") != strings.Join(want, "\n") {
		t.Errorf("mails:\n%s\nwant\n%s", strings.Join(subjects, "\n"), strings.Join(want, "\n"))
	}
}

// TestSMTPServerDown: alerts to a server that refuses connections fail
// and are counted; nothing waits for them.
func TestSMTPServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	n, logs := newNotifier(t, Config{Email: []string{"ops@example.com"}, SMTPServer: addr, SMTPAlertVRRP: yes()})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster})
	lab.Eventually(t, 10*time.Second, func() bool { return n.Stats().MailsFailed == 1 }, "no failure counted: %+v", n.Stats())
	if !strings.Contains(logs.String(), "SMTP alert not sent") || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("log:\n%s", logs)
	}
}

// TestSMTPServerHangs: a server that accepts connections and never
// answers costs each alert one smtp_connect_timeout; alerts beyond the
// queue are dropped, and Close does not wait for them.
func TestSMTPServerHangs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	n, _ := newNotifier(t, Config{Email: []string{"ops@example.com"}, SMTPServer: l.Addr().String(),
		SMTPAlertVRRP: yes(), SMTPConnectTimeout: 200 * time.Millisecond})
	for i := 0; i < 100; i++ {
		n.VRRP(VRRPEvent{Name: fmt.Sprintf("VI_%d", i), State: StateMaster})
	}
	lab.Eventually(t, 10*time.Second, func() bool { return n.Stats().MailsFailed >= 1 }, "no timeout: %+v", n.Stats())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = n.Close(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	s := n.Stats()
	if s.MailsDropped == 0 || s.MailsSent != 0 || s.MailsFailed+s.MailsDropped != 100 {
		t.Errorf("stats = %+v: want all 100 failed or dropped, some dropped", s)
	}
}

func TestSMTPAddr(t *testing.T) {
	for _, tt := range []struct{ in, addr, err string }{
		{in: "127.0.0.1", addr: "127.0.0.1:25"},
		{in: "127.0.0.1 2525", addr: "127.0.0.1:2525"},
		{in: "127.0.0.1:2525", addr: "127.0.0.1:2525"},
		{in: "mail.example.com", addr: "mail.example.com:25"},
		{in: "::1", addr: "[::1]:25"},
		{in: "::1 587", addr: "[::1]:587"},
		{in: "[::1]:587", addr: "[::1]:587"},
		{in: "host 0", err: "bad port"},
		{in: "host port", err: "bad port"},
		{in: "a b c", err: "want HOST [PORT]"},
		{in: "", err: "want HOST [PORT]"},
	} {
		addr, _, err := smtpAddr(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("smtpAddr(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || addr != tt.addr {
			t.Errorf("smtpAddr(%q) = %q, %v; want %q", tt.in, addr, err, tt.addr)
		}
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
