package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestGenhashSideBySide runs keepalived's genhash (Debian's keepalived
// package, /usr/bin/genhash) and the vipctl binary with the same
// arguments, in a network namespace, against real servers: nginx over
// HTTP and HTTPS (with a certificate made here, and a virtual host), and
// small servers of this test for what nginx never does (hang, close
// early, a header that never ends, Content-Length shorter than the body,
// TLS without close_notify). Each case says what genhash must print, so
// a case that does not test what it names fails; then vipctl must print
// the same stdout byte for byte (the response time of -v and, where
// nginx's Date ticked between two runs, a rerun aside), the same stderr
// and exit with the same code. Bad command lines: the same exit code, and
// the same message where genhash has one (docs/vipctl.md lists the rest).
func TestGenhashSideBySide(t *testing.T) {
	lab.RequireCommand(t, "genhash", "nginx")
	l := lab.New(t)
	web := l.Host("web")
	ip := web.Addr.String()
	vipctlBin := lab.Binary(t, "./cmd/vipctl")
	dir := genhashNginx(t, web)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &rawServers{t: t, h: web, cert: cert, done: make(chan struct{})}
	t.Cleanup(func() { close(srv.done) })
	readClose := srv.serve(0, func(c net.Conn, _ net.Conn) { readRequest(c) })
	hold := srv.serve(0, func(c net.Conn, _ net.Conn) { srv.hold(c) })
	headerHang := srv.serve(0, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nX: y\r\n\r\nabc")
		srv.hold(c)
	})
	noHeaderEnd := srv.serve(0, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nX: y\r\n")
	})
	shortLength := srv.serve(0, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhello")
	})
	tlsHold := srv.serve(tls.VersionTLS13, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		srv.hold(c)
	})
	tls12Hold := srv.serve(tls.VersionTLS12, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		srv.hold(c)
	})
	tlsHeaderHang := srv.serve(tls.VersionTLS13, func(c net.Conn, _ net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nabc")
		srv.hold(c)
	})
	tlsNoCloseNotify := srv.serve(tls.VersionTLS13, func(c net.Conn, raw net.Conn) {
		readRequest(c)
		_, _ = io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nabc")
		_ = raw.Close() // TCP FIN without TLS close_notify
	})
	tlsCloseNotify := srv.serve(tls.VersionTLS13, func(c net.Conn, _ net.Conn) { readRequest(c) }) // tls.Conn.Close sends close_notify
	backlogFull := srv.fullBacklog()

	md5hex := func(s string) string { return fmt.Sprintf("%x\n", md5.Sum([]byte(s))) }
	digest := `^[0-9a-f]{32}\n$`
	type tc struct {
		name string
		args []string
		want string // regexp genhash's stdout must match
		// wantErr is genhash's stderr.
		wantErr string
	}
	P := func(port int) string { return fmt.Sprint(port) }
	cases := []tc{
		{"plain", []string{"-s", ip, "-p", "80", "-u", "/"}, "^" + md5hex("hello default\n") + "$", ""},
		{"plain 1.1", []string{"-s", ip, "-p", "80", "-u", "/", "-P", "1.1"}, "^" + md5hex("hello default\n") + "$", ""},
		{"plain 1.0c", []string{"-s", ip, "-p", "80", "-u", "/", "-P", "1.0c"}, "^" + md5hex("hello default\n") + "$", ""},
		{"plain big", []string{"-s", ip, "-p", "80", "-u", "/big"}, "^" + md5hex(bigPage) + "$", ""},
		{"plain empty", []string{"-s", ip, "-p", "80", "-u", "/empty"}, "^" + md5hex("") + "$", ""},
		{"plain fwmark", []string{"-s", ip, "-p", "80", "-u", "/", "-m", "5"}, "^" + md5hex("hello default\n") + "$", ""},
		{"plain IPv6 loopback", []string{"-s", "::1", "-p", "80", "-u", "/host"}, "^" + md5hex("sni= host=[::1]:80\n") + "$", ""},
		{"vhost", []string{"-s", ip, "-p", "80", "-u", "/", "-V", "vh.example"}, "^" + md5hex("hello vhost\n") + "$", ""},
		{"404", []string{"-s", ip, "-p", "80", "-u", "/missing"}, digest, ""},
		{"verbose", []string{"-s", ip, "-p", "80", "-u", "/", "-v"}, `HTTP Header Ascii Buffer(.|\n)*hello default(.|\n)*HTML hash final resulting(.|\n)*usecs\n$`, ""},
		{"verbose vhost", []string{"-s", ip, "-p", "80", "-u", "/", "-v", "-V", "vh.example"}, `hello vhost(.|\n)*usecs\n$`, ""},
		{"verbose 404", []string{"-s", ip, "-p", "80", "-u", "/missing", "-v"}, `404 Not Found(.|\n)*usecs\n$`, ""},
		{"TLS", []string{"-S", "-s", ip, "-p", "443", "-u", "/"}, "^" + md5hex("hello default\n") + "$", ""},
		{"TLS big", []string{"-S", "-s", ip, "-p", "443", "-u", "/big"}, "^" + md5hex(bigPage) + "$", ""},
		{"TLS vhost", []string{"-S", "-s", ip, "-p", "443", "-u", "/", "-V", "vh.example"}, "^" + md5hex("hello vhost\n") + "$", ""},
		{"TLS vhost SNI", []string{"-S", "-I", "-s", ip, "-p", "443", "-u", "/host", "-V", "vh.example"}, "^" + md5hex("sni=vh.example host=vh.example\n") + "$", ""},
		{"TLS vhost no SNI", []string{"-S", "-s", ip, "-p", "443", "-u", "/host", "-V", "vh.example"}, "^" + md5hex("sni= host=vh.example\n") + "$", ""},
		{"TLS SNI without vhost", []string{"-S", "-I", "-s", ip, "-p", "443", "-u", "/host"}, "^" + md5hex("sni= host="+ip+":443\n") + "$", ""},
		{"TLS 404", []string{"-S", "-s", ip, "-p", "443", "-u", "/missing"}, digest, ""},
		{"TLS verbose", []string{"-S", "-s", ip, "-p", "443", "-u", "/", "-v"}, `hello default(.|\n)*HTML hash final resulting(.|\n)*usecs\n$`, ""},
		{"TLS verbose vhost", []string{"-S", "-s", ip, "-p", "443", "-u", "/", "-v", "-V", "vh.example"}, `hello vhost(.|\n)*usecs\n$`, ""},
		{"TLS to plain HTTP", []string{"-S", "-s", ip, "-p", "80", "-u", "/"}, "^SSL handshake/communication error connecting to\n$", ""},
		{"plain HTTP to TLS", []string{"-s", ip, "-p", "443", "-u", "/"}, digest, ""},
		{"refused", []string{"-s", ip, "-p", "1", "-u", "/"}, "^Connection failed\n$", ""},
		{"refused verbose", []string{"-s", ip, "-p", "1", "-u", "/", "-v"}, "^Connection failed\n\nGlobal response time for \\[/\\] = \\d+ usecs\n$", ""},
		{"TLS refused", []string{"-S", "-s", ip, "-p", "1", "-u", "/"}, "^Connection failed\n$", ""},
		{"closed without answer", []string{"-s", ip, "-p", P(readClose), "-u", "/"}, "^$", "no data received from remote webserver\n"},
		{"closed without answer verbose", []string{"-s", ip, "-p", P(readClose), "-u", "/", "-v"}, "^\n-+\\[    HTML hash resulting", "no data received from remote webserver\n"},
		{"header never ends", []string{"-s", ip, "-p", P(noHeaderEnd), "-u", "/"}, "^$", "no data received from remote webserver\n"},
		{"header never ends verbose", []string{"-s", ip, "-p", P(noHeaderEnd), "-u", "/", "-v"}, `^-+\[    HTTP Header Buffer    \]-+\n\n`, "no data received from remote webserver\n"},
		{"Content-Length shorter than the body", []string{"-s", ip, "-p", P(shortLength), "-u", "/"}, "^" + md5hex("hel") + "$", ""},
		{"Content-Length verbose", []string{"-s", ip, "-p", P(shortLength), "-u", "/", "-v"}, `hel  `, ""},
		{"no answer", []string{"-s", ip, "-p", P(hold), "-u", "/", "-t", "1"}, "^Timeout WEB read\n$", ""},
		{"answer stops", []string{"-s", ip, "-p", P(headerHang), "-u", "/", "-t", "1"}, "^Timeout HTTP read\n$", ""},
		{"answer stops verbose", []string{"-s", ip, "-p", P(headerHang), "-u", "/", "-t", "1", "-v"}, "abc +\nTimeout HTTP read\n\nGlobal", ""},
		{"connect timeout", []string{"-s", ip, "-p", P(backlogFull), "-u", "/", "-t", "1"}, "^Timeout connecting\n$", ""},
		{"TLS handshake timeout", []string{"-S", "-s", ip, "-p", P(hold), "-u", "/", "-t", "1"}, "^Timeout connecting\n$", ""},
		// TLS 1.3 session tickets wake genhash up: it waits in its SSL reader.
		{"TLS 1.3 no answer", []string{"-S", "-s", ip, "-p", P(tlsHold), "-u", "/", "-t", "1"}, "^Timeout SSL read\n$", ""},
		{"TLS 1.2 no answer", []string{"-S", "-s", ip, "-p", P(tls12Hold), "-u", "/", "-t", "1"}, "^Timeout WEB read\n$", ""},
		{"TLS answer stops", []string{"-S", "-s", ip, "-p", P(tlsHeaderHang), "-u", "/", "-t", "1"}, "^Timeout SSL read\n$", ""},
		{"TLS without close_notify", []string{"-S", "-s", ip, "-p", P(tlsNoCloseNotify), "-u", "/"}, "^" + md5hex("abc") + "$", ""},
		{"TLS without close_notify verbose", []string{"-S", "-s", ip, "-p", P(tlsNoCloseNotify), "-u", "/", "-v"}, "abc +\n" + md5hex("abc") + "\nGlobal", ""},
		{"TLS close_notify without answer", []string{"-S", "-s", ip, "-p", P(tlsCloseNotify), "-u", "/"}, "^SSL read error from\n$", ""},
		{"TLS close_notify without answer verbose", []string{"-S", "-s", ip, "-p", P(tlsCloseNotify), "-u", "/", "-v"}, "HTML hash final resulting(.|\n)*SSL read error from\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			k := genhashRun(t, web, "genhash", c.args...)
			v := genhashRun(t, web, vipctlBin, append([]string{"genhash"}, c.args...)...)
			if !regexp.MustCompile(c.want).MatchString(k.stdout) || k.stderr != c.wantErr || k.code != 0 {
				t.Fatalf("genhash %s does not do what this case is about: exit %d, stdout\n%s\nstderr %q; want stdout matching %q, stderr %q",
					strings.Join(c.args, " "), k.code, k.stdout, k.stderr, c.want, c.wantErr)
			}
			if strings.Contains(k.stdout, "Server: nginx") && !httpDate.MatchString(k.stdout) {
				t.Fatalf("nginx's Date header not found in genhash's dump (it would not be masked):\n%s", k.stdout)
			}
			// nginx's Date header is in -v's dumps and may change
			// between the two runs: it is masked in both.
			if g, w := maskRun(v.stdout), maskRun(k.stdout); g != w {
				t.Errorf("stdout differs\n--- genhash:\n%s--- vipctl genhash:\n%s", w, g)
			}
			if v.stderr != k.stderr {
				t.Errorf("stderr differs: genhash %q, vipctl genhash %q", k.stderr, v.stderr)
			}
			if v.code != k.code {
				t.Errorf("genhash exits %d, vipctl genhash %d", k.code, v.code)
			}
		})
	}

	// Bad command lines: genhash prints a message (or none) and its usage
	// on stderr and exits 1. vipctl genhash exits 1 too, with "vipctl
	// genhash: " and genhash's message where genhash has one, or its
	// own (want) where genhash has none or vipctl judges otherwise.
	bad := []struct {
		name string
		args []string
		want string // vipctl's message when it is not genhash's
	}{
		{"no arguments", nil, "-s ADDR, -p PORT and -u PATH are all needed"},
		{"no url", []string{"-s", ip, "-p", "80"}, "-s ADDR, -p PORT and -u PATH are all needed"},
		{"port out of range", []string{"-s", ip, "-p", "99999", "-u", "/"}, ""},
		{"port zero", []string{"-s", ip, "-p", "0", "-u", "/"}, ""},
		{"port not a number", []string{"-s", ip, "-p", "http", "-u", "/"}, ""},
		{"protocol", []string{"-s", ip, "-p", "80", "-u", "/", "-P", "2"}, ""},
		{"timeout negative", []string{"-s", ip, "-p", "80", "-u", "/", "-t", "-1"}, ""},
		{"timeout not a number", []string{"-s", ip, "-p", "80", "-u", "/", "-t", "abc"}, ""},
		{"fwmark not a number", []string{"-s", ip, "-p", "80", "-u", "/", "-m", "abc"}, ""},
		{"extra argument", []string{"-s", ip, "-p", "80", "-u", "/", "extra"}, ""},
		{"server not an IP", []string{"-s", "198.18.0.999", "-p", "80", "-u", "/"}, "server should be an IP, not 198.18.0.999 (nor a host name that resolves: "},
		{"unknown option", []string{"-s", ip, "-p", "80", "-u", "/", "--bogus"}, "flag provided but not defined: -bogus"},
		{"missing parameter", []string{"-s", ip, "-p", "80", "-u"}, "flag needs an argument: -u"},
	}
	for _, b := range bad {
		t.Run("bad/"+b.name, func(t *testing.T) {
			t.Parallel()
			k := genhashRun(t, web, "genhash", b.args...)
			v := genhashRun(t, web, vipctlBin, append([]string{"genhash"}, b.args...)...)
			if k.code != 1 || k.stdout != "" || !strings.Contains(k.stderr, "Usage: genhash") {
				t.Fatalf("genhash %s: want usage and exit 1, got exit %d\n%s%s", strings.Join(b.args, " "), k.code, k.stdout, k.stderr)
			}
			if v.code != k.code || v.stdout != "" {
				t.Errorf("vipctl genhash exits %d (stdout %q), genhash %d", v.code, v.stdout, k.code)
			}
			kmsg, _, _ := strings.Cut(k.stderr, "\n")
			if strings.HasPrefix(kmsg, "Usage:") {
				kmsg = ""
			}
			vmsg, _, _ := strings.Cut(v.stderr, "\n")
			want := kmsg
			if b.want != "" {
				want = b.want
			} else if kmsg == "" {
				t.Fatalf("genhash prints no message; the case must say vipctl's")
			}
			if !strings.HasPrefix(vmsg, "vipctl genhash: "+want) || !strings.Contains(v.stderr, "\nUsage: vipctl genhash") {
				t.Errorf("vipctl genhash's stderr starts %q, want %q and its usage (genhash: %q)", vmsg, "vipctl genhash: "+want, kmsg)
			}
		})
	}
}

// maskRun hides what changes from run to run in genhash's output: the
// response time, and the Date header's value in the ASCII header and in
// the hex dump of the header buffer (bytes after "Date: " up to the CR).
func maskRun(out string) string {
	out = usecs.ReplaceAllString(out, "= N usecs")
	out = httpDate.ReplaceAllStringFunc(out, func(m string) string {
		return "\nDate: " + strings.Repeat("D", len(m)-len("\nDate: "))
	})
	lines := strings.Split(out, "\n")
	// Hex dump lines: "0016  0a 53 ... 31 - 20 32 ...   ascii"; byte i of
	// a line is at column 6+3i (+2 past the dash), its ASCII at 58+i.
	col := func(i int) int {
		if i < 8 {
			return 6 + 3*i
		}
		return 8 + 3*i
	}
	var dump []byte
	var where [][2]int // line, byte index in the line
	for n, ln := range lines {
		if strings.Contains(ln, "HTTP Header Ascii Buffer") {
			break
		}
		if !hexLine.MatchString(ln) {
			continue
		}
		for i := 0; i < 16 && col(i)+2 <= len(ln) && ln[col(i)] != ' '; i++ {
			var b byte
			if _, err := fmt.Sscanf(ln[col(i):col(i)+2], "%02x", &b); err != nil {
				break
			}
			dump = append(dump, b)
			where = append(where, [2]int{n, i})
		}
	}
	if i := bytes.Index(dump, []byte("\nDate: ")); i >= 0 {
		for j := i + len("\nDate: "); j < len(dump) && dump[j] != '\r'; j++ {
			n, k := where[j][0], where[j][1]
			b := []byte(lines[n])
			b[col(k)], b[col(k)+1] = 'X', 'X'
			if 58+k < len(b) {
				b[58+k] = 'D'
			}
			lines[n] = string(b)
		}
	}
	return strings.Join(lines, "\n")
}

var (
	usecs    = regexp.MustCompile(`= \d+ usecs`)
	httpDate = regexp.MustCompile(`\nDate: [^\r\n]*GMT`)
	hexLine  = regexp.MustCompile(`^\d{4}  [0-9a-f]{2} `)
	bigPage  = strings.Repeat("0123456789abcdef", 6000)
)

type genhashResult struct {
	stdout, stderr string
	code           int
}

// genhashRun runs a program in the host's namespace.
func genhashRun(t *testing.T, h *lab.Host, name string, args ...string) genhashResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, &out, &errb)
	}
	return genhashResult{out.String(), errb.String(), code}
}

// genhashNginx starts nginx in h on port 80 and 443 (TLS, a self-signed
// certificate made here) with a default server, a virtual host
// vh.example and /host, which answers with the TLS server name and Host
// header it got. It returns nginx's directory (cert.pem and key.pem).
func genhashNginx(t *testing.T, h *lab.Host) string {
	t.Helper()
	files := map[string]string{
		"www/index.html": "hello default\n",
		"www/big":        bigPage,
		"www/empty":      "",
		"vh/index.html":  "hello vhost\n",
	}
	certPEM, keyPEM := lab.SelfSignedCert(t, "vh.example", net.IP(h.Addr.AsSlice()))
	files["cert.pem"], files["key.pem"] = string(certPEM), string(keyPEM)
	_, dir := lab.StartNginx(t, h, files, func(dir string) string {
		return fmt.Sprintf(`    ssl_certificate %[1]s/cert.pem;
    ssl_certificate_key %[1]s/key.pem;
    server {
        listen 80 default_server;
        listen [::]:80 default_server;
        listen 443 ssl default_server;
        root %[1]s/www;
        location = /host { return 200 "sni=$ssl_server_name host=$http_host\n"; }
    }
    server {
        listen 80;
        listen 443 ssl;
        server_name vh.example;
        root %[1]s/vh;
        location = /host { return 200 "sni=$ssl_server_name host=$http_host\n"; }
    }
`, dir)
	})
	var last genhashResult
	lab.Eventually(t, 10*time.Second, func() bool {
		last = genhashRun(t, h, "genhash", "-s", h.Addr.String(), "-p", "443", "-S", "-u", "/", "-t", "1")
		return last.stdout == fmt.Sprintf("%x\n", md5.Sum([]byte("hello default\n")))
	}, "nginx not serving HTTPS: %+v", &last)
	return dir
}

// rawServers are the test's own servers in the host's namespace, each on a
// port of its own, for answers nginx never gives.
type rawServers struct {
	t    *testing.T
	h    *lab.Host
	cert tls.Certificate

	done chan struct{} // closed when the test ends
}

// serve listens on a free port of the host and runs fn for every
// connection (over TLS of that version unless 0; raw is the TCP
// connection under it), then closes it. It returns the port.
func (s *rawServers) serve(tlsVersion uint16, fn func(c net.Conn, raw net.Conn)) int {
	s.t.Helper()
	var ln net.Listener
	if err := s.h.Do(func() (err error) { ln, err = net.Listen("tcp", s.h.Addr.String()+":0"); return }); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c := raw
				if tlsVersion != 0 {
					tc := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tlsVersion, MaxVersion: tlsVersion})
					_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
					if tc.Handshake() != nil {
						raw.Close()
						return
					}
					c = tc
				}
				fn(c, raw)
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// hold keeps a connection open until the test ends.
func (s *rawServers) hold(net.Conn) { <-s.done }

// fullBacklog listens with a backlog of 0 and fills it with one
// connection that is never accepted: the kernel then drops the SYNs of
// further connections, which time out. It returns the port.
func (s *rawServers) fullBacklog() int {
	s.t.Helper()
	var port int
	err := s.h.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.t.Cleanup(func() { syscall.Close(fd) })
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: s.h.Addr.As4()}); err != nil {
			return err
		}
		if err := syscall.Listen(fd, 0); err != nil {
			return err
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			return err
		}
		port = sa.(*syscall.SockaddrInet4).Port
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", s.h.Addr, port), 5*time.Second)
		if err != nil {
			return err
		}
		s.t.Cleanup(func() { c.Close() })
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return port
}

// readRequest reads an HTTP request's header.
func readRequest(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// TestMaskRun: two genhash -v runs a second apart (captured in CI,
// testdata/genhash-v-404-*.txt) differ in nginx's Date header only, in
// the ASCII header and in the hex dump: masked, they are equal; a byte
// changed elsewhere in the dump still shows.
func TestMaskRun(t *testing.T) {
	a, err := os.ReadFile("testdata/genhash-v-404-a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/genhash-v-404-b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		t.Fatal("the two captured runs are identical: nothing to mask")
	}
	if ma, mb := maskRun(string(a)), maskRun(string(b)); ma != mb {
		t.Fatalf("masked runs differ:\n%s\n---\n%s", ma, mb)
	}
	// "Server: " is in the first lines of the dump: change its 'S' (53).
	c := strings.Replace(string(b), "0a - 53 65 72", "0a - 73 65 72", 1)
	if c == string(b) {
		t.Fatal("the test's mutation did not apply")
	}
	if maskRun(string(a)) == maskRun(c) {
		t.Fatal("a changed byte outside the Date header was masked too")
	}
}
