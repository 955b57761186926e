package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// rawServer answers every connection on loopback with resp (written in one
// go, then closed) and records the requests it got.
type rawServer struct {
	at   netip.AddrPort
	mu   sync.Mutex
	reqs []string
	resp []byte
}

func newRawServer(t *testing.T, resp string) *rawServer {
	t.Helper()
	s := &rawServer{resp: []byte(resp)}
	s.at = serveTCP(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := br.ReadString('\n')
			req.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req.String())
		resp := s.resp
		s.mu.Unlock()
		_, _ = c.Write(resp)
	})
	return s
}

func (s *rawServer) addr() netip.AddrPort { return s.at }

func (s *rawServer) setResp(r string) {
	s.mu.Lock()
	s.resp = []byte(r)
	s.mu.Unlock()
}

func (s *rawServer) lastReq() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return ""
	}
	return s.reqs[len(s.reqs)-1]
}

func md5hex(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }

func TestHTTPCheck(t *testing.T) {
	srv := newRawServer(t, "")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	body := "hello vipd\n"
	tests := []struct {
		name    string
		resp    string
		check   HTTP
		wantUp  bool
		reason  string // substring of the reason
		wantReq string // exact request, when given
	}{
		{name: "200 default range", resp: "HTTP/1.0 200 OK\r\n\r\n" + body, check: HTTP{URLs: []URL{{Path: "/"}}}, wantUp: true,
			wantReq: "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: " + srv.addr().String() + "\r\n\r\n"},
		{name: "503 not in default range", resp: "HTTP/1.1 503 Service Unavailable\r\n\r\n", check: HTTP{URLs: []URL{{Path: "/"}}}, reason: "HTTP status 503 not in 200-299"},
		{name: "status ranges", resp: "HTTP/1.1 404 Not Found\r\n\r\n", check: HTTP{URLs: []URL{{Path: "/", Status: []StatusRange{{200, 200}, {400, 499}}}}}, wantUp: true},
		{name: "status ranges miss", resp: "HTTP/1.1 302 Found\r\n\r\n", check: HTTP{URLs: []URL{{Path: "/", Status: []StatusRange{{200, 200}, {400, 499}}}}}, reason: "HTTP status 302 not in 200 400-499"},
		{name: "digest ok", resp: "HTTP/1.0 200 OK\r\nX: y\r\n\r\n" + body, check: HTTP{URLs: []URL{{Path: "/i", Digest: strings.ToUpper(md5hex(body))}}}, wantUp: true},
		// keepalived hashes up to Content-Length, as its genhash does.
		{name: "digest up to Content-Length", resp: "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhello", check: HTTP{URLs: []URL{{Path: "/i", Digest: md5hex("hel")}}}, wantUp: true},
		{name: "digest mismatch", resp: "HTTP/1.0 200 OK\r\n\r\nother", check: HTTP{URLs: []URL{{Path: "/i", Digest: md5hex(body)}}}, reason: "digest mismatch: got " + md5hex("other")},
		{name: "regex", resp: "HTTP/1.0 200 OK\r\n\r\nstatus: green", check: HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("green")}}}, wantUp: true},
		{name: "regex miss", resp: "HTTP/1.0 200 OK\r\n\r\nstatus: red", check: HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("green")}}}, reason: `does not match regex "green"`},
		{name: "regex_no_match", resp: "HTTP/1.0 200 OK\r\n\r\nstatus: red", check: HTTP{URLs: []URL{{Path: "/", Regex: regexp.MustCompile("red"), RegexNoMatch: true}}}, reason: `body matches regex "red"`},
		{name: "1.1 and virtualhost", resp: "HTTP/1.1 200 OK\r\n\r\n", check: HTTP{Protocol: "1.1", VirtualHost: "www.example.com", URLs: []URL{{Path: "/a"}}}, wantUp: true,
			wantReq: "GET /a HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"},
		{name: "1.0C and url virtualhost", resp: "HTTP/1.0 200 OK\r\n\r\n", check: HTTP{Protocol: "1.0C", VirtualHost: "vs.example", URLs: []URL{{Path: "/b", VirtualHost: "url.example"}}}, wantUp: true,
			wantReq: "GET /b HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: url.example\r\n\r\n"},
		{name: "second url fails", resp: "HTTP/1.0 200 OK\r\n\r\nA", check: HTTP{URLs: []URL{{Path: "/a"}, {Path: "/b", Digest: md5hex("B")}}}, reason: "url 2 /b: digest mismatch"},
		{name: "garbage", resp: "SSH-2.0-OpenSSH\r\n\r\n", check: HTTP{URLs: []URL{{Path: "/"}}}, reason: "bad HTTP status line"},
		{name: "no data", resp: "", check: HTTP{URLs: []URL{{Path: "/"}}}, reason: "no data received"},
		{name: "refused", check: HTTP{Endpoint: Endpoint{Addr: closedAddr}, URLs: []URL{{Path: "/"}}}, reason: "connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.setResp(tt.resp)
			c := tt.check
			if !c.Addr.IsValid() {
				c.Addr = srv.addr()
			}
			c.Timeout = 2 * time.Second
			r := c.Check(context.Background())
			if r.Up != tt.wantUp || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("Check = %+v, want up=%v reason ~%q", r, tt.wantUp, tt.reason)
			}
			if tt.wantReq != "" && srv.lastReq() != tt.wantReq {
				t.Errorf("request %q, want %q", srv.lastReq(), tt.wantReq)
			}
		})
	}
}

// TestHTTPTimeout: a server that accepts and never answers fails the check
// at connect_timeout.
func TestHTTPTimeout(t *testing.T) {
	hold := make(chan struct{}) // the server keeps every connection open until the test ends
	defer close(hold)
	addr := serveTCP(t, func(c net.Conn) {
		<-hold
		c.Close()
	})
	c := HTTP{Endpoint: Endpoint{Addr: addr, Timeout: 300 * time.Millisecond}, URLs: []URL{{Path: "/"}}}
	start := time.Now()
	r := c.Check(context.Background())
	if el := time.Since(start); r.Up || r.Reason != "read: timeout" || el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("Check = %+v after %v", r, el)
	}
}

func TestParseStatusCodes(t *testing.T) {
	got, err := ParseStatusCodes([]string{"200", "200-299", "400-499", "503"})
	if err != nil || statusText(got) != "200 200-299 400-499 503" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"abc", "99", "300-200", "200-", "1000"} {
		if _, err := ParseStatusCodes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestGenhashMatchesKeepalived runs keepalived's genhash and Genhash
// against the same server and compares their output byte for byte (except
// the measured response time).
func TestGenhashMatchesKeepalived(t *testing.T) {
	lab.RequireCommand(t, "genhash")
	usecs := regexp.MustCompile(`= \d+ usecs`)
	srv := newRawServer(t, "")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	var bin []byte
	for i := range 300 {
		bin = append(bin, byte(i*7))
	}
	tests := []struct {
		name string
		resp string
		opts GenhashOptions
		args []string
	}{
		{"plain", "HTTP/1.0 200 OK\r\nX: y\r\n\r\nabc", GenhashOptions{URL: "/a"}, []string{"-u", "/a"}},
		{"verbose", "HTTP/1.0 200 OK\r\nX: y\r\n\r\nabc", GenhashOptions{URL: "/a", Verbose: true}, []string{"-v", "-u", "/a"}},
		{"verbose empty body", "HTTP/1.0 200 OK\r\nX: y\r\n\r\n", GenhashOptions{URL: "/", Verbose: true}, []string{"-v", "-u", "/"}},
		{"verbose binary body", "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + string(bin), GenhashOptions{URL: "/bin", Verbose: true, VirtualHost: "h.example", Protocol: "1.1"}, []string{"-v", "-u", "/bin", "-V", "h.example", "-P", "1.1"}},
		{"verbose 404", "HTTP/1.1 404 Not Found\r\n\r\nnope\n", GenhashOptions{URL: "/x", Verbose: true, Protocol: "1.0c"}, []string{"-v", "-u", "/x", "-P", "1.0c"}},
		{"no data", "", GenhashOptions{URL: "/"}, []string{"-u", "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.setResp(tt.resp)
			a := srv.addr()
			var out, outErr bytes.Buffer
			cmd := exec.Command("genhash", append([]string{"-s", a.Addr().String(), "-p", itoa(int(a.Port()))}, tt.args...)...)
			cmd.Stdout, cmd.Stderr = &out, &outErr
			if err := cmd.Run(); err != nil {
				t.Fatalf("genhash: %v: %s%s", err, &out, &outErr)
			}
			wantReq := srv.lastReq()
			var got, gotErr bytes.Buffer
			o := tt.opts
			o.Server = a
			if err := Genhash(context.Background(), &got, &gotErr, o); err != nil {
				t.Fatal(err)
			}
			if srv.lastReq() != wantReq {
				t.Errorf("request %q, genhash sent %q", srv.lastReq(), wantReq)
			}
			g, w := usecs.ReplaceAllString(got.String(), "= N usecs"), usecs.ReplaceAllString(out.String(), "= N usecs")
			if g != w {
				t.Errorf("output differs\n--- vipd:\n%s\n--- genhash:\n%s", g, w)
			}
			if gotErr.String() != outErr.String() {
				t.Errorf("stderr differs: vipd %q, genhash %q", &gotErr, &outErr)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		for _, v := range []bool{false, true} {
			args := []string{"-s", "127.0.0.1", "-p", itoa(int(closedAddr.Port())), "-u", "/"}
			if v {
				args = append(args, "-v")
			}
			out, _ := exec.Command("genhash", args...).CombinedOutput()
			var got bytes.Buffer
			_ = Genhash(context.Background(), &got, &got, GenhashOptions{Server: closedAddr, URL: "/", Verbose: v})
			if g, w := usecs.ReplaceAllString(got.String(), "= N usecs"), usecs.ReplaceAllString(string(out), "= N usecs"); g != w {
				t.Errorf("verbose=%v: vipd %q, genhash %q", v, g, w)
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
