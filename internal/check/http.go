package check

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// HTTP is HTTP_GET and, with TLS set, SSL_GET. Each attempt fetches every
// URL in turn, each on a new connection (as keepalived does: a reused
// connection would hide a server that stopped accepting), and is up when
// every URL answers with an accepted status, digest and regex.
//
// keepalived, while a checker is down or in alpha mode, checks one URL per
// delay_loop unless fast_recovery is set; vipd always checks them all in
// one attempt (fast_recovery's behaviour), so a recovered server comes back
// one delay_loop after recovery, whatever the number of URLs.
type HTTP struct {
	Endpoint
	// Protocol is http_protocol: "1.0" (default), "1.0C" (1.0 with
	// "Connection: close") or "1.1" (which sends "Connection: close").
	Protocol string
	// VirtualHost is the Host header for URLs that set none (the
	// checker's, real server's or virtual server's virtualhost, resolved by
	// the caller). Empty: the address and port.
	VirtualHost string
	URLs        []URL
	// TLS makes this an SSL_GET; build it with SSL.Config.
	TLS *tls.Config
	// EnableSNI sends a server name in the TLS handshake: SNIName, or the
	// URL's virtual host.
	EnableSNI bool
	SNIName   string
	// MaxBody bounds how much of a body is read (default 16 MiB); a
	// larger body fails the check rather than exhaust memory.
	MaxBody int64
}

// URL is one url{} block of an HTTP checker.
type URL struct {
	Path string
	// Digest is the expected MD5 of the body in hex (genhash prints it);
	// empty: not checked.
	Digest string
	// Status lists the accepted status codes; empty means 200-299.
	Status      []StatusRange
	VirtualHost string
	// Regex must match the body (Go RE2 syntax, not PCRE); with
	// RegexNoMatch a match fails the check instead.
	Regex        *regexp.Regexp
	RegexNoMatch bool
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// ParseStatusCodes parses status_code arguments: "200", "200-299", ...
func ParseStatusCodes(args []string) ([]StatusRange, error) {
	var out []StatusRange
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		min, err := strconv.Atoi(lo)
		if err != nil || min < 100 || min > 999 {
			return nil, fmt.Errorf("status_code %q: not a status code (100-999)", a)
		}
		max := min
		if isRange {
			max, err = strconv.Atoi(hi)
			if err != nil || max < min || max > 999 {
				return nil, fmt.Errorf("status_code %q: bad range", a)
			}
		}
		out = append(out, StatusRange{min, max})
	}
	return out, nil
}

func statusOK(ranges []StatusRange, code int) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

func statusText(ranges []StatusRange) string {
	if len(ranges) == 0 {
		return "200-299"
	}
	s := make([]string, len(ranges))
	for i, r := range ranges {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

// Check fetches every URL.
func (c *HTTP) Check(ctx context.Context) Result {
	if len(c.URLs) == 0 {
		return down("no url configured")
	}
	for i := range c.URLs {
		if r := c.checkURL(ctx, &c.URLs[i]); !r.Up {
			return c.urlFailed(i, r)
		}
	}
	return up("")
}

func (c *HTTP) host(u *URL) string {
	switch {
	case u.VirtualHost != "":
		return u.VirtualHost
	case c.VirtualHost != "":
		return c.VirtualHost
	}
	return formatAddr(c.Addr)
}

// httpRequest is the GET keepalived sends, byte for byte.
func httpRequest(path, protocol, host string) []byte {
	minor, closeHdr := "0", ""
	switch strings.ToUpper(protocol) {
	case "1.1":
		minor, closeHdr = "1", "Connection: close\r\n"
	case "1.0C":
		closeHdr = "Connection: close\r\n"
	}
	return []byte("GET " + path + " HTTP/1." + minor + "\r\nUser-Agent: KeepAliveClient\r\n" + closeHdr + "Host: " + host + "\r\n\r\n")
}

// dial opens the connection for one URL, with TLS for SSL_GET, guarded
// by ctx (lastchance.go); stop undoes the guard.
func (c *HTTP) dial(ctx context.Context, host string) (conn net.Conn, stop func() bool, err error) {
	raw, err := c.dialTCP(ctx)
	if err != nil {
		return nil, nil, errors.New(reason("connect", err))
	}
	conn, stop = guard(ctx, raw)
	if c.TLS == nil {
		return conn, stop, nil
	}
	cfg := c.TLS.Clone()
	cfg.ServerName = ""
	if c.EnableSNI {
		cfg.ServerName = c.SNIName
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = strings.Cut(host, ":")
		}
	}
	// Handshake, not HandshakeContext: that one closes the socket when
	// ctx ends, which would lose a server's answer already received.
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		stop()
		_ = raw.Close()
		return nil, nil, errors.New(reason("TLS handshake", ctxErr(ctx, err)))
	}
	return tc, stop, nil
}

func (c *HTTP) checkURL(ctx context.Context, u *URL) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	host := c.host(u)
	conn, stop, err := c.dial(ctx, host)
	if err != nil {
		return down("%s", err)
	}
	defer conn.Close()
	defer stop()
	if _, err := conn.Write(httpRequest(u.Path, c.Protocol, host)); err != nil {
		return down("%s", reason("write", ctxErr(ctx, err)))
	}
	resp, err := readResponse(conn, c.maxBody(), u.Regex != nil)
	if err != nil {
		return down("%s", reason("read", ctxErr(ctx, err)))
	}
	return u.judge(resp)
}

func (c *HTTP) maxBody() int64 {
	if c.MaxBody > 0 {
		return c.MaxBody
	}
	return 16 << 20
}

// judge says whether a complete response passes the URL's status_code,
// digest and regex; both the goroutine path (checkURL) and the Runner's
// event loop (loop.go) use it, so they give the same verdicts and words.
func (u *URL) judge(resp *httpResponse) Result {
	if !statusOK(u.Status, resp.code) {
		return down("HTTP status %d not in %s", resp.code, statusText(u.Status))
	}
	if u.Digest != "" {
		if got := hex.EncodeToString(resp.sum[:]); !strings.EqualFold(got, u.Digest) {
			return down("digest mismatch: got %s, want %s", got, strings.ToLower(u.Digest))
		}
	}
	if u.Regex != nil {
		if m := u.Regex.Match(resp.body); m == u.RegexNoMatch {
			if m {
				return down("body matches regex %q", u.Regex.String())
			}
			return down("body does not match regex %q", u.Regex.String())
		}
	}
	return up("")
}

// urlFailed prefixes the reason of a failed URL with its number and path
// when the checker has several.
func (c *HTTP) urlFailed(i int, r Result) Result {
	if len(c.URLs) > 1 {
		r.Reason = fmt.Sprintf("url %d %s: %s", i+1, c.URLs[i].Path, r.Reason)
	}
	return r
}

// ctxErr prefers the context's deadline over the error a closed socket
// gives, so a timeout reads as "timeout".
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

type httpResponse struct {
	code int
	sum  [md5.Size]byte
	body []byte // kept only when asked for (regex)
}

var errNoData = errors.New("no data received")

// readResponse reads a response until the server closes the connection,
// as keepalived does (HTTP/1.0, or Connection: close), hashing the body as
// sent (a chunked body is hashed with its chunk framing, like keepalived
// and genhash do), up to its Content-Length when the header gives one
// (read as genhash reads it: contentLength), as keepalived does.
func readResponse(r io.Reader, maxBody int64, keepBody bool) (*httpResponse, error) {
	var p respParser
	p.reset(maxBody, keepBody)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if ferr := p.feed(buf[:n]); ferr != nil {
			return nil, ferr
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return p.finish()
}

// respParser takes a response in pieces as they arrive (readResponse's
// reads, or the event loop's) and gives the status code and the digest of
// the body once the server has closed. A parser is reused: reset clears
// it without giving its buffers back.
type respParser struct {
	maxBody  int64
	keepBody bool
	hdr      []byte
	h        hash.Hash
	resp     httpResponse
	bodyLen  int64
	clen     int64
	inBody   bool
	total    int
}

func (p *respParser) reset(maxBody int64, keepBody bool) {
	p.maxBody, p.keepBody = maxBody, keepBody
	p.hdr = p.hdr[:0]
	if p.h == nil {
		p.h = md5.New()
	} else {
		p.h.Reset()
	}
	p.resp = httpResponse{code: -1}
	p.bodyLen, p.clen, p.inBody, p.total = 0, -1, false, 0
}

// feed takes the next bytes of the response.
func (p *respParser) feed(data []byte) error {
	const maxHeader = 64 << 10
	p.total += len(data)
	if !p.inBody && len(data) > 0 {
		p.hdr = append(p.hdr, data...)
		if end := headerEnd(p.hdr); end >= 0 {
			code, err := parseStatusLine(p.hdr[:end])
			if err != nil {
				return err
			}
			p.resp.code = code
			p.clen = contentLength(p.hdr)
			data = p.hdr[end:]
			p.inBody = true
		} else if len(p.hdr) > maxHeader {
			return errors.New("HTTP header longer than 64 KiB")
		} else {
			data = nil
		}
	}
	if p.inBody && len(data) > 0 {
		p.h.Write(data[:bodyTake(p.clen, p.bodyLen, len(data))])
		p.bodyLen += int64(len(data))
		if p.bodyLen > p.maxBody {
			return fmt.Errorf("body longer than %d bytes", p.maxBody)
		}
		if p.keepBody {
			p.resp.body = append(p.resp.body, data...)
		}
	}
	return nil
}

// finish ends the response at the server's close. The result is valid
// until the next reset.
func (p *respParser) finish() (*httpResponse, error) {
	if p.total == 0 {
		return nil, errNoData
	}
	if !p.inBody {
		// keepalived takes a response without the blank line as all
		// header; it still needs a status line.
		code, err := parseStatusLine(p.hdr)
		if err != nil {
			return nil, err
		}
		p.resp.code = code
	}
	p.h.Sum(p.resp.sum[:0])
	return &p.resp, nil
}

// headerEnd returns the offset just past the blank line ending the header
// ("\r\n\r\n"), or -1.
func headerEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// parseStatusLine reads the status code of "HTTP/1.x NNN reason".
func parseStatusLine(hdr []byte) (int, error) {
	line := hdr
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, "\r")
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return 0, fmt.Errorf("bad HTTP status line %q", truncate(line, 40))
	}
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(rest) < 3 {
		return 0, fmt.Errorf("bad HTTP status line %q", truncate(line, 40))
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, fmt.Errorf("bad HTTP status line %q", truncate(line, 40))
	}
	return code, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// SSL is the SSL{} block of keepalived.conf, shared by every SSL_GET.
type SSL struct {
	// CA, if set, is a PEM file of the CAs the servers' certificates must
	// chain to; without it, like keepalived, any certificate is accepted
	// (a health check tests that the service answers, not who it is).
	CA string
	// Certificate and Key are a client certificate (PEM) for servers that
	// ask for one. Password is for an encrypted key, which vipd does not
	// support: use an unencrypted key.
	Certificate, Key, Password string
}

// Config builds the tls.Config for SSL_GET checkers.
func (s SSL) Config() (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10} //nolint:gosec // see SSL.CA
	if s.Certificate != "" || s.Key != "" {
		if s.Password != "" {
			return nil, errors.New("SSL: encrypted private keys (password) are not supported; use an unencrypted key")
		}
		key := s.Key
		if key == "" {
			key = s.Certificate
		}
		cert, err := tls.LoadX509KeyPair(s.Certificate, key)
		if err != nil {
			return nil, fmt.Errorf("SSL certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, fmt.Errorf("SSL ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("SSL ca %s: no PEM certificate", s.CA)
		}
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			var certs []*x509.Certificate
			for _, r := range raw {
				c, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs = append(certs, c)
			}
			if len(certs) == 0 {
				return errors.New("no server certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range certs[1:] {
				inter.AddCert(c)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}
	}
	return cfg, nil
}

// sameConfig compares two HTTP checkers for SameSpec: regular expressions
// by source, TLS configurations by presence.
func (c *HTTP) sameConfig(o Checker) bool {
	d, ok := o.(*HTTP)
	if !ok || c == nil || d == nil {
		return ok && c == d
	}
	if c.Endpoint != d.Endpoint || c.Protocol != d.Protocol || c.VirtualHost != d.VirtualHost ||
		(c.TLS == nil) != (d.TLS == nil) || c.EnableSNI != d.EnableSNI || c.SNIName != d.SNIName ||
		c.MaxBody != d.MaxBody || len(c.URLs) != len(d.URLs) {
		return false
	}
	for i := range c.URLs {
		u, v := &c.URLs[i], &d.URLs[i]
		if u.Path != v.Path || !strings.EqualFold(u.Digest, v.Digest) || u.VirtualHost != v.VirtualHost ||
			u.RegexNoMatch != v.RegexNoMatch || !slices.Equal(u.Status, v.Status) ||
			(u.Regex == nil) != (v.Regex == nil) || (u.Regex != nil && u.Regex.String() != v.Regex.String()) {
			return false
		}
	}
	return true
}
