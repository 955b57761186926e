package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// alert is one mail to send.
type alert struct {
	subject, body string
	at            time.Time
}

// mailer sends alerts one at a time from a bounded queue, like
// keepalived's smtp_alert: HELO, MAIL FROM, one RCPT TO per address, DATA
// with Date, From, Subject, X-Mailer and To headers. Every step has
// smtp_connect_timeout as its deadline. Alerts that find the queue full
// are dropped and counted, so a dead mail server never holds up the
// daemon.
type mailer struct {
	addr    string // host:port
	host    string // for the client (TLS name checks, not used without TLS)
	helo    string
	from    string
	to      []string
	timeout time.Duration
	log     *slog.Logger

	queue  chan alert
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	sent, failed, dropped atomic.Uint64
}

const mailQueue = 64

func newMailer(cfg *Config, log *slog.Logger) (*mailer, error) {
	addr, host, err := smtpAddr(cfg.SMTPServer)
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	m := &mailer{
		addr: addr, host: host,
		helo:    cfg.SMTPHeloName,
		from:    cfg.EmailFrom,
		to:      cfg.Email,
		timeout: cfg.SMTPConnectTimeout,
		log:     log,
		queue:   make(chan alert, mailQueue),
		done:    make(chan struct{}),
	}
	if m.helo == "" {
		m.helo = hostname
	}
	if m.helo == "" {
		m.helo = "localhost"
	}
	if m.from == "" {
		m.from = "vipd@" + hostname
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	go m.loop()
	return m, nil
}

// smtpAddr parses smtp_server: "host", "host port", "host:port",
// "[v6]:port" or a bare IPv6 address; the port defaults to 25.
func smtpAddr(s string) (addr, host string, err error) {
	f := strings.Fields(s)
	port := "25"
	switch len(f) {
	case 1:
		host = f[0]
		if h, p, err := net.SplitHostPort(host); err == nil {
			host, port = h, p
		}
	case 2:
		host, port = f[0], f[1]
	default:
		return "", "", fmt.Errorf("smtp_server %q: want HOST [PORT]", s)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("smtp_server %q: bad port %q", s, port)
	}
	if host == "" {
		return "", "", fmt.Errorf("smtp_server %q: no host", s)
	}
	return net.JoinHostPort(host, port), host, nil
}

func (m *mailer) send(subject, body string) {
	select {
	case m.queue <- alert{subject: subject, body: body, at: time.Now()}:
	default:
		m.dropped.Add(1)
		m.log.Warn("SMTP alert dropped: too many alerts waiting for the mail server", "subject", subject)
	}
}

func (m *mailer) loop() {
	defer close(m.done)
	for ml := range m.queue {
		if m.ctx.Err() != nil {
			m.dropped.Add(1)
			continue
		}
		if err := m.deliver(ml); err != nil {
			m.failed.Add(1)
			m.log.Warn("SMTP alert not sent", "server", m.addr, "subject", ml.subject, "err", err)
			continue
		}
		m.sent.Add(1)
		m.log.Info("SMTP alert successfully sent", "server", m.addr, "subject", ml.subject)
	}
}

func (m *mailer) deliver(ml alert) error {
	d := net.Dialer{Timeout: m.timeout}
	conn, err := d.DialContext(m.ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// Close aborts a delivery in progress by expiring its deadline.
	stop := context.AfterFunc(m.ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	step := func() { _ = conn.SetDeadline(time.Now().Add(m.timeout)) }

	step()
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	step()
	if err := c.Hello(m.helo); err != nil {
		return fmt.Errorf("HELO: %w", err)
	}
	step()
	if err := c.Mail(bareAddr(m.from)); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range m.to {
		step()
		if err := c.Rcpt(bareAddr(to)); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	step()
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.message(ml)); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	step()
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	step()
	return c.Quit()
}

// message is the mail as keepalived writes it (with vipd as the mailer).
func (m *mailer) message(ml alert) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Date: %s\r\n", ml.at.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(&b, "From: %s\r\n", m.from)
	fmt.Fprintf(&b, "Subject: %s\r\n", oneLine(ml.subject))
	b.WriteString("X-Mailer: vipd\r\n")
	b.WriteString("To:")
	for i, to := range m.to {
		if i > 0 {
			b.WriteString(",\r\n")
		}
		b.WriteString(" " + to)
	}
	b.WriteString("\r\n\r\n")
	b.WriteString(strings.ReplaceAll(ml.body, "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// bareAddr takes the address out of "Name <addr>", as keepalived does for
// MAIL FROM and RCPT TO.
func bareAddr(s string) string {
	if strings.HasSuffix(s, ">") {
		if i := strings.LastIndexByte(s, '<'); i >= 0 {
			return s[i+1 : len(s)-1]
		}
	}
	return s
}

// oneLine keeps names from the configuration from adding header lines.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// close sends what is queued until ctx is done, then abandons the rest.
func (m *mailer) close(ctx context.Context) {
	close(m.queue)
	select {
	case <-m.done:
	case <-ctx.Done():
		m.cancel()
		<-m.done
	}
	m.cancel()
}
