package check

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// onLoop runs one attempt of c on a probeLoop of its own, polling until
// it ends (bounded), and checks that it left no socket behind.
func onLoop(t *testing.T, c Checker, timeout time.Duration) Result {
	t.Helper()
	l, err := newProbeLoop(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	l.start(7, c, timeout)
	deadline := time.Now().Add(timeout + 5*time.Second)
	for len(l.done) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not end the attempt within %v", timeout+5*time.Second)
		}
		l.poll()
		if len(l.done) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if len(l.done) != 1 || l.done[0].id != 7 || l.inFlight() != 0 || len(l.dl) != 0 {
		t.Fatalf("loop after the attempt: done %+v, in flight %d, deadlines %d", l.done, l.inFlight(), len(l.dl))
	}
	for _, p := range l.slots {
		if p.fd >= 0 {
			t.Fatalf("socket %d left open", p.fd)
		}
	}
	return l.done[0].res
}

// TestLoopMatchesCheck runs every HTTP_GET and TCP_CHECK case both ways,
// (*HTTP).Check / (*TCP).Check on a goroutine and one attempt on the
// Runner's event loop, against the same servers, and wants the same
// verdict and the same reason, and the same request bytes on the wire.
func TestLoopMatchesCheck(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, "")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	body := "hello vipd\n"
	big := strings.Repeat("0123456789abcdef", 5000) // 80 kB: several reads of the loop's buffer
	// drip answers in pieces, so the loop sees the response over several
	// polls (edge-triggered epoll must report each piece).
	drip := serveTCP(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		for _, part := range []string{"HTTP/1.0 2", "00 OK\r\nContent-Le", "ngth: 5\r\n\r\nhel", "lo"} {
			_, _ = c.Write([]byte(part))
			time.Sleep(20 * time.Millisecond)
		}
	})
	reset := serveTCP(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		_, _ = c.Read(buf)
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	hold := make(chan struct{})
	defer close(hold)
	silent := serveTCP(t, func(c net.Conn) {
		<-hold
		c.Close()
	})
	tests := []struct {
		name   string
		resp   string
		ck     Checker
		wantUp bool
	}{
		{"200", "HTTP/1.0 200 OK\r\n\r\n" + body, &HTTP{URLs: []URL{{Path: "/"}}}, true},
		{"503", "HTTP/1.1 503 Service Unavailable\r\n\r\n", &HTTP{URLs: []URL{{Path: "/"}}}, false},
		{"status ranges", "HTTP/1.1 404 Not Found\r\n\r\n", &HTTP{URLs: []URL{{Path: "/", Status: []StatusRange{{200, 200}, {400, 499}}}}}, true},
		{"status ranges miss", "HTTP/1.1 302 Found\r\n\r\n", &HTTP{URLs: []URL{{Path: "/", Status: []StatusRange{{200, 200}, {400, 499}}}}}, false},
		{"digest", "HTTP/1.0 200 OK\r\nX: y\r\n\r\n" + body, &HTTP{URLs: []URL{{Path: "/i", Digest: strings.ToUpper(md5hex(body))}}}, true},
		{"digest up to Content-Length", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhello", &HTTP{URLs: []URL{{Path: "/i", Digest: md5hex("hel")}}}, true},
		{"digest mismatch", "HTTP/1.0 200 OK\r\n\r\nother", &HTTP{URLs: []URL{{Path: "/i", Digest: md5hex(body)}}}, false},
		{"big body digest", "HTTP/1.0 200 OK\r\n\r\n" + big, &HTTP{URLs: []URL{{Path: "/big", Digest: md5hex(big)}}}, true},
		{"big body over MaxBody", "HTTP/1.0 200 OK\r\n\r\n" + big, &HTTP{MaxBody: 1000, URLs: []URL{{Path: "/big"}}}, false},
		{"regex", "HTTP/1.0 200 OK\r\n\r\nstatus: green", &HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("green")}}}, true},
		{"regex miss", "HTTP/1.0 200 OK\r\n\r\nstatus: red", &HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("green")}}}, false},
		{"regex_no_match", "HTTP/1.0 200 OK\r\n\r\nstatus: red", &HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("red"), RegexNoMatch: true}}}, false},
		{"1.1 virtualhost", "HTTP/1.1 200 OK\r\n\r\n", &HTTP{Protocol: "1.1", VirtualHost: "www.example.com", URLs: []URL{{Path: "/a"}}}, true},
		{"1.0C url virtualhost", "HTTP/1.0 200 OK\r\n\r\n", &HTTP{Protocol: "1.0C", VirtualHost: "vs.example", URLs: []URL{{Path: "/b", VirtualHost: "url.example"}}}, true},
		{"two urls", "HTTP/1.0 200 OK\r\n\r\nA", &HTTP{URLs: []URL{{Path: "/a"}, {Path: "/b", Digest: md5hex("A")}}}, true},
		{"second url fails", "HTTP/1.0 200 OK\r\n\r\nA", &HTTP{URLs: []URL{{Path: "/a"}, {Path: "/b", Digest: md5hex("B")}}}, false},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", &HTTP{URLs: []URL{{Path: "/"}}}, false},
		{"header only", "HTTP/1.0 204 No Content\r\n", &HTTP{URLs: []URL{{Path: "/"}}}, true},
		{"no data", "", &HTTP{URLs: []URL{{Path: "/"}}}, false},
		{"refused", "", &HTTP{Endpoint: Endpoint{Addr: closedAddr}, URLs: []URL{{Path: "/"}}}, false},
		{"reset", "", &HTTP{Endpoint: Endpoint{Addr: reset}, URLs: []URL{{Path: "/"}}}, false},
		{"drip", "", &HTTP{Endpoint: Endpoint{Addr: drip}, URLs: []URL{{Path: "/", Digest: md5hex("hello")}}}, true},
		{"timeout", "", &HTTP{Endpoint: Endpoint{Addr: silent, Timeout: 300 * time.Millisecond}, URLs: []URL{{Path: "/"}}}, false},
		{"tcp", "", &TCP{Endpoint{}}, true},
		{"tcp refused", "", &TCP{Endpoint{Addr: closedAddr}}, false},
	}
	for _, tt := range tests {
		// Sequential: the cases share srv's response.
		srv.setResp(tt.resp)
		var ep *Endpoint
		switch c := tt.ck.(type) {
		case *HTTP:
			ep = &c.Endpoint
		case *TCP:
			ep = &c.Endpoint
		}
		if !ep.Addr.IsValid() {
			ep.Addr = srv.addr()
		}
		if ep.Timeout == 0 {
			ep.Timeout = 3 * time.Second
		}
		if !loopable(tt.ck) {
			t.Fatalf("%s: not run on the loop", tt.name)
		}
		want := tt.ck.Check(context.Background())
		wantReq := srv.lastReq()
		start := time.Now()
		got := onLoop(t, tt.ck, 5*time.Second)
		el := time.Since(start)
		if got.Up != want.Up || got.Reason != want.Reason || got.Up != tt.wantUp {
			t.Errorf("%s: loop %+v, Check %+v (want up=%v)", tt.name, got, want, tt.wantUp)
		}
		if srv.lastReq() != wantReq {
			t.Errorf("%s: loop sent %q, Check sent %q", tt.name, srv.lastReq(), wantReq)
		}
		if tt.name == "timeout" && (el < 250*time.Millisecond || el > 3*time.Second) {
			t.Errorf("timeout after %v, want about 300 ms", el)
		}
	}
}

// TestLoopAttemptBound: an attempt of several URLs stops at the
// attempt's bound (Timing.Timeout) even when each URL's connect_timeout
// would allow more, as Check under the Runner's context does.
func TestLoopAttemptBound(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	defer close(hold)
	silent := serveTCP(t, func(c net.Conn) {
		<-hold
		c.Close()
	})
	c := &HTTP{Endpoint: Endpoint{Addr: silent, Timeout: 5 * time.Second}, URLs: []URL{{Path: "/"}}}
	start := time.Now()
	r := onLoop(t, c, 200*time.Millisecond)
	if el := time.Since(start); r.Up || r.Reason != "read: timeout" || el > 2*time.Second {
		t.Fatalf("got %+v after %v, want read: timeout at about 200 ms", r, el)
	}
}

// TestLoopLastChance: an answer that is already in the socket when the
// deadline is handled counts, as on the goroutine path (lastchance.go):
// the deadline is processed before any poll saw the answer.
func TestLoopLastChance(t *testing.T) {
	t.Parallel()
	srv := newRawServer(t, "HTTP/1.0 200 OK\r\n\r\nok")
	l, err := newProbeLoop(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	c := &HTTP{Endpoint: Endpoint{Addr: srv.addr(), Timeout: 50 * time.Millisecond}, URLs: []URL{{Path: "/"}}}
	saved := lastChanceSaved.Load()
	l.start(1, c, time.Second)
	p := l.byID[1]
	// Wait, without polling, until the server's answer and close are
	// queued on the socket, then let the deadline pass.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if p.state == reading {
			n, _, _ = unix.Recvfrom(p.fd, make([]byte, 64), unix.MSG_PEEK|unix.MSG_DONTWAIT)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer queued")
		}
		if p.state != reading {
			l.write(p) // the connect may still be in progress
		}
		time.Sleep(time.Millisecond)
	}
	for time.Now().Before(p.deadline.Add(time.Millisecond)) {
		time.Sleep(5 * time.Millisecond)
	}
	// Drop the readiness the poll would report, so that only the
	// deadline sees the socket.
	ev := unix.EpollEvent{}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, p.fd, &ev)
	l.poll()
	if len(l.done) != 1 || !l.done[0].res.Up || lastChanceSaved.Load() != saved+1 {
		t.Fatalf("done %+v, last chances %d -> %d; want up, saved by the last chance", l.done, saved, lastChanceSaved.Load())
	}
}

// TestRunnerUsesLoop: under the Runner, HTTP_GET and TCP_CHECK attempts
// run on the loop (no goroutine per attempt) and reach the Scheduler;
// with NoLoop they do not use it.
//
// Not parallel: it counts the package's loop attempts.
func TestRunnerUsesLoop(t *testing.T) {
	web := newRawServer(t, "HTTP/1.0 200 OK\r\n\r\nok")
	tm := Timing{DelayLoop: 50 * time.Millisecond, Retry: 1, DelayBeforeRetry: 50 * time.Millisecond, Timeout: 2 * time.Second}
	for _, noLoop := range []bool{false, true} {
		servers := []Server{
			{Name: "web", Weight: 1, Checkers: []Spec{{Name: "HTTP_GET", Checker: &HTTP{Endpoint: Endpoint{Addr: web.addr()}, URLs: []URL{{Path: "/"}}}, Timing: tm}}},
			{Name: "tcp", Weight: 1, Checkers: []Spec{{Name: "TCP_CHECK", Checker: &TCP{Endpoint{Addr: web.addr()}}, Timing: tm}}},
		}
		before := loopStarted.Load()
		r := NewRunner(servers, Options{NoLoop: noLoop, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, _ := r.Status(context.Background())
			n := 0
			for _, s := range st {
				if s.Checks >= 3 && s.Failed == 0 {
					n++
				}
			}
			if n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("noLoop=%v: checks did not run: %+v", noLoop, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if used := loopStarted.Load() - before; (used > 0) == noLoop {
			t.Errorf("noLoop=%v: %d attempts started on the loop", noLoop, used)
		}
	}
}
