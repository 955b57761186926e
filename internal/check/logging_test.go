package check

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logCapture is a slog handler that keeps "LEVEL message" lines.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.lines = append(c.lines, r.Level.String()+" "+r.Message)
	c.mu.Unlock()
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// take returns the lines logged since the last call, without the
// Runner's own event and reload lines.
func (c *logCapture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if strings.Contains(l, "real server") || strings.Contains(l, "health checks reloaded") {
			continue
		}
		out = append(out, l)
	}
	c.lines = nil
	return out
}

func TestKeepalivedLines(t *testing.T) {
	const rs = "[198.18.0.14]:tcp:80"
	tcp := &TCP{}
	web := &HTTP{URLs: []URL{{Path: "/a"}, {Path: "/health", Digest: "x"}}}
	tests := []struct {
		name    string
		ck      Checker
		reason  string
		retries int
		fail    string
		down    string
	}{
		{"TCP refused", tcp, "connect: connection refused", 1, "TCP connection to " + rs + " failed.", "TCP_CHECK on service " + rs + " failed after 1 retries."},
		{"TCP timeout", tcp, "connect: timeout", 0, "TCP connection to " + rs + " timeout.", "TCP_CHECK on service " + rs + " failed."},
		{"HTTP refused", web, "url 1 /a: connect: connection refused", 3, "Error connecting server " + rs + ".", "HTTP_CHECK on service " + rs + " failed after 3 retries."},
		{"HTTP connect timeout", web, "connect: timeout", 1, "Timeout connecting server " + rs + ".", "HTTP_CHECK on service " + rs + " failed after 1 retries."},
		{"HTTP status", web, "url 2 /health: HTTP status 503 not in 200-299", 1, "HTTP status code error to server " + rs + ".", ""},
		{"HTTP digest", web, "digest mismatch: got 1, want 2", 1, "MD5 digest error to server " + rs + ".", ""},
		{"HTTP regex", web, `body does not match regex "ok"`, 1, "Regex match failed server " + rs + ".", ""},
		{"HTTP read timeout", web, "read: timeout", 1, "Timeout HTTP read server " + rs + ".", ""},
		{"HTTP no data", web, "read: no data received", 1, "Read, no data received from server " + rs + ".", ""},
		{"HTTP write", web, "write: broken pipe", 1, "Cannot send get request to server " + rs + ".", ""},
		{"SSL handshake", web, "TLS handshake: remote error", 1, "SSL handshake/communication error connecting to server " + rs + ".", ""},
		{"UDP mismatch", &UDP{}, "reply 01 does not match require_reply", 1, "UDP check to " + rs + " reply data mismatch.", "UDP_CHECK on service " + rs + " failed after 1 retries."},
		{"UDP refused", &UDP{}, "recv: connection refused", 1, "UDP connection to " + rs + " failed.", ""},
		{"PING timeout", &Ping{}, "no echo reply: timeout", 1, "ICMP connection to address " + rs + " timeout.", "ICMP CHECK on service " + rs + " failed after 1 retries."},
		{"SMTP banner", &SMTP{}, "bad SMTP banner 554 go away", 1, "Bad greeting banner from server " + rs, "Bad greeting banner from server " + rs},
		{"SMTP timeout", &SMTP{}, "connect: timeout", 1, "Connection timeout to server " + rs, ""},
		{"DNS rcode", &DNS{}, "DNS rcode 2 (ServerFailure)", 3, "DNS_CHECK (" + rs + ") read error occurred. (rcode = 2)", "DNS_CHECK (" + rs + ") read error occurred. (rcode = 2) after 3 retries"},
		{"DNS timeout", &DNS{}, "recv: timeout", 0, "DNS_CHECK (" + rs + ") read timeout from socket", "DNS_CHECK (" + rs + ") read timeout from socket"},
		{"MISC exit", &Misc{Argv: []string{"/bin/chk", "x"}}, "exit 1", 0, "Misc check for [" + rs + "] by [/bin/chk] failed (exited with status 1).", "Misc check for [" + rs + "] by [/bin/chk] failed (exited with status 1)."},
		{"MISC timeout", &Misc{Argv: []string{"/bin/chk"}}, "timed out after 1s", 0, "Misc check for [" + rs + "] by [/bin/chk] timed out.", ""},
		{"MISC signal", &Misc{Argv: []string{"/bin/chk"}}, "killed by signal killed", 0, "Misc check for [" + rs + "] by [/bin/chk] failed (due to signal killed).", ""},
		{"FILE", &File{Path: "/x"}, "track_file /x: value 3", 0, "FILE_CHECK on service " + rs + " failed: track_file /x: value 3", "FILE_CHECK on service " + rs + " failed."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureLine(tt.ck, rs, tt.reason); got != tt.fail {
				t.Errorf("failure line %q, want %q", got, tt.fail)
			}
			if tt.down == "" {
				return
			}
			if got := downLineOf(tt.ck, rs, tt.reason, tt.retries); got != tt.down {
				t.Errorf("down line %q, want %q", got, tt.down)
			}
		})
	}
	up := []struct {
		ck   Checker
		want []string
	}{
		{tcp, []string{"TCP connection to " + rs + " success."}},
		{web, []string{"MD5 digest success to " + rs + " url(/health).", "Remote Web server " + rs + " succeed on service."}},
		{&HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("x")}}}, []string{"Regex match success to " + rs + " url(/).", "Remote Web server " + rs + " succeed on service."}},
		{&HTTP{URLs: []URL{{Path: "/"}}}, []string{"HTTP status code success to " + rs + " url(/).", "Remote Web server " + rs + " succeed on service."}},
		{&SMTP{}, []string{"Remote SMTP server " + rs + " succeed on service."}},
		{&Misc{Argv: []string{"/bin/chk"}}, []string{"Misc check for [" + rs + "] by [/bin/chk] succeeded."}},
	}
	for _, tt := range up {
		if got := upLines(tt.ck, rs); !slices.Equal(got, tt.want) {
			t.Errorf("%T up lines %q, want %q", tt.ck, got, tt.want)
		}
	}
}

// TestRunnerLogs runs real HTTP and TCP checkers under the Runner with a
// fake clock and checks the keepalived lines it logs, and their levels
// with and without log_all_failures.
func TestRunnerLogs(t *testing.T) {
	web := newRawServer(t, "HTTP/1.0 200 OK\r\n\r\nok")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	tm := Timing{DelayLoop: sec(6), Retry: 1, DelayBeforeRetry: sec(1), Timeout: sec(5)}
	servers := []Server{
		{Name: "web", Weight: 1, Checkers: []Spec{{Name: "HTTP_GET", Checker: &HTTP{Endpoint: Endpoint{Addr: web.addr()}, URLs: []URL{{Path: "/"}}}, Timing: tm, LogAllFailures: true}}},
		{Name: "tcp", Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &TCP{Endpoint{Addr: closedAddr}}, Timing: Timing{DelayLoop: sec(6), Timeout: sec(5)}}}},
	}
	logs := &logCapture{}
	clk := newFakeClock()
	r := NewRunner(servers, Options{Clock: clk, Logger: slog.New(logs)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// settle waits until the HTTP checker has made n attempts and both
	// are idle.
	settle := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			st, _ := r.Status(ctx)
			if len(st) == 2 && st[0].Checks >= n && !st[0].Running && !st[1].Running {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("checkers did not reach %d attempts", n)
	}
	step := func(name string, n uint64, advance time.Duration, want ...string) {
		t.Helper()
		if advance > 0 {
			clk.Advance(advance)
		}
		settle(n)
		got := logs.take()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}
	step("first results", 1, 0,
		"INFO HTTP status code success to web url(/).",
		"INFO Remote Web server web succeed on service.",
		// retry 0: the first failure is down, logged as keepalived
		// does; the failure line is Debug without log_all_failures.
		"DEBUG TCP connection to tcp failed.",
		"INFO TCP_CHECK on service tcp failed.",
	)
	web.setResp("HTTP/1.0 503 Busy\r\n\r\nno")
	step("first failure: a retry follows", 2, sec(6),
		"INFO HTTP status code error to server web.") // log_all_failures: Info
	step("retry fails: down", 3, sec(1),
		"INFO HTTP status code error to server web.",
		"INFO HTTP_CHECK on service web failed after 1 retries.")
	web.setResp("HTTP/1.0 200 OK\r\n\r\nok")
	step("recovery", 4, sec(6),
		"INFO HTTP status code success to web url(/).",
		"INFO Remote Web server web succeed on service.")
	step("steady", 5, sec(6))
	if t.Failed() {
		fmt.Println(logs.take())
	}
}
