package check

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// GenhashOptions are genhash's command-line options.
type GenhashOptions struct {
	Server      netip.AddrPort // -s, -p
	URL         string         // -u
	SSL         bool           // -S
	SNI         bool           // -I: send VirtualHost as SNI
	VirtualHost string         // -V
	Protocol    string         // -P: "1.0" (default), "1.0c", "1.1"
	Timeout     time.Duration  // -t, default 5 s
	Fwmark      uint32         // -m
	Verbose     bool           // -v
}

// genhashBuffer is keepalived's receive buffer (MAX_BUFFER_LENGTH): one
// byte is kept for a terminating NUL, so reads ask for at most 4095 bytes,
// and the header must arrive within that.
const genhashBuffer = 4096

// Genhash fetches a URL and prints what keepalived 2.2.7's genhash prints,
// byte for byte and on the same stream: on stdout the MD5 of the body (up
// to Content-Length when the header gives one), or with Verbose the hex
// dumps of the header and of each body read, the hash and the response
// time; a failure as genhash's one-line message on stdout ("Connection
// failed", "Timeout connecting", "Timeout WEB read", ...), and a response
// without a complete header as "no data received from remote webserver"
// on stderr. Like genhash it returns nil for all of these (genhash exits
// 0); an error means ctx ended or an output could not be written.
//
// The waits follow genhash's: connect and TLS handshake share one
// Timeout; then the first byte of the answer gets a Timeout; after it,
// each read gets a Timeout over plain HTTP, and all the remaining reads
// share one over TLS.
//
// The body dump is split where the reads returned data, as genhash's is,
// so a page of more than one segment dumps differently from run to run;
// digests never do.
func Genhash(ctx context.Context, stdout, stderr io.Writer, o GenhashOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	start := time.Now()
	g := &genhashRun{o: o}
	g.fetch(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.Verbose {
		fmt.Fprintf(&g.out, "\nGlobal response time for [%s] = %d usecs\n", o.URL, time.Since(start).Microseconds())
	}
	if _, err := stdout.Write(g.out.Bytes()); err != nil {
		return fmt.Errorf("genhash: write output: %w", err)
	}
	if _, err := stderr.Write(g.errOut.Bytes()); err != nil {
		return fmt.Errorf("genhash: write output: %w", err)
	}
	return nil
}

// genhashRun is one fetch: what it prints on stdout and stderr.
type genhashRun struct {
	o           GenhashOptions
	out, errOut bytes.Buffer
}

func (g *genhashRun) fail(msg string) { g.out.WriteString(msg + "\n") }

func (g *genhashRun) fetch(ctx context.Context) {
	o := g.o
	connectCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ep := Endpoint{Addr: o.Server, Fwmark: o.Fwmark, Timeout: o.Timeout}
	conn, err := ep.dialTCP(connectCtx)
	if err != nil {
		if deadlineErr(err) || errors.Is(err, syscall.ETIMEDOUT) {
			g.fail("Timeout connecting")
		} else {
			g.fail("Connection failed")
		}
		return
	}
	defer conn.Close()
	// The caller's ctx (a signal) ends the fetch at once; Genhash then
	// prints nothing.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	host := o.VirtualHost
	if host == "" {
		host = formatAddr(o.Server)
	}
	rw := io.ReadWriter(conn)
	var wire *tlsWire
	if o.SSL {
		wire = &tlsWire{Conn: conn, timeout: o.Timeout}
		cfg := &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // genhash does not verify either
			// A session cache makes the ClientHello offer session
			// resumption, as OpenSSL's does, so TLS 1.3 servers send
			// session tickets after the handshake, as they do to genhash.
			ClientSessionCache: tls.NewLRUClientSessionCache(1),
		}
		if o.SNI && o.VirtualHost != "" {
			cfg.ServerName = o.VirtualHost
		}
		tc := tls.Client(wire, cfg)
		if err := tc.HandshakeContext(connectCtx); err != nil {
			if connectCtx.Err() != nil {
				g.fail("Timeout connecting")
			} else {
				g.fail("SSL handshake/communication error connecting to")
			}
			return
		}
		rw = tc
	}
	proto := o.Protocol
	if strings.EqualFold(proto, "1.0c") {
		proto = "1.0C"
	}
	_ = conn.SetWriteDeadline(time.Now().Add(o.Timeout))
	if _, err := rw.Write(httpRequest(o.URL, proto, host)); err != nil {
		g.fail("Cannot send get request to")
		return
	}
	if wire != nil {
		wire.armed = true
	}
	g.read(conn, rw, wire)
}

// read consumes the answer as genhash's http_process_response does; wire
// is the TCP stream under TLS, nil over plain HTTP.
func (g *genhashRun) read(conn net.Conn, r io.Reader, wire *tlsWire) {
	o := g.o
	var (
		buf       = make([]byte, genhashBuffer-1)
		hdr       []byte // the answer until its header is complete
		extracted bool   // the header is complete
		clen      = int64(-1)
		rx        int64 // body bytes received
		h         = md5.New()
		first     = true // nothing has arrived yet
	)
	// Over TLS the wire sets the one deadline of the reads when the
	// first bytes arrive (a TLS 1.3 session ticket counts, as it wakes
	// genhash up).
	_ = conn.SetReadDeadline(time.Now().Add(o.Timeout))
	for {
		limit := len(buf)
		if !extracted {
			limit -= len(hdr)
		}
		if wire == nil {
			_ = conn.SetReadDeadline(time.Now().Add(o.Timeout))
		}
		n, err := 0, io.EOF // a full header buffer reads nothing: the end, for genhash
		if limit > 0 {
			n, err = r.Read(buf[:limit])
		}
		if wire != nil {
			first = !wire.started
		} else if n > 0 {
			first = false
		}
		data := buf[:n]
		switch {
		case n == 0:
		case !extracted:
			if o.Verbose {
				g.out.WriteString(banner("   HTTP Header Buffer   "))
			}
			hdr = append(hdr, data...)
			end := headerEnd(hdr)
			if end < 0 {
				break
			}
			extracted = true
			clen = contentLength(hdr)
			if o.Verbose {
				hexDump(&g.out, hdr[:end])
				g.out.WriteString(banner("HTTP Header Ascii Buffer"))
				g.out.Write(hdr[:end])
				g.out.WriteString("\n")
			}
			body := hdr[end:]
			if k := bodyTake(clen, rx, len(body)); k > 0 {
				if o.Verbose {
					g.out.WriteString(banner("       HTML Buffer       "))
				}
				g.hashBody(h, body[:k])
			}
			rx = int64(len(body))
		default:
			if k := bodyTake(clen, rx, n); k > 0 {
				g.hashBody(h, data[:k])
			}
			rx += int64(n)
		}
		if err == nil {
			continue
		}
		switch {
		case deadlineErr(err) && first:
			g.fail("Timeout WEB read")
		case deadlineErr(err) && o.SSL:
			g.fail("Timeout SSL read")
		case deadlineErr(err):
			g.fail("Timeout HTTP read")
		case !o.SSL && err != io.EOF:
			g.fail("Read error with")
		case !o.SSL || (err == io.EOF && !wire.eof):
			// The end: plain EOF, or TLS close_notify (OpenSSL's
			// SSL_ERROR_ZERO_RETURN, after which genhash shuts the
			// TLS session down and calls a missing header an error).
			g.hashEnd(h)
			if !extracted && o.SSL {
				g.fail("SSL read error from")
				return
			}
			g.result(h, extracted)
		default:
			// TLS ended without close_notify, or broken: genhash
			// prints no hash dump, then the result.
			g.result(h, extracted)
		}
		return
	}
}

// bodyTake is how many of n body bytes genhash hashes after rx of them:
// all, or up to Content-Length.
func bodyTake(clen, rx int64, n int) int {
	switch {
	case clen < 0 || clen >= rx+int64(n):
		return n
	case clen > rx:
		return int(clen - rx)
	}
	return 0
}

func (g *genhashRun) hashBody(h hash.Hash, b []byte) {
	h.Write(b)
	if g.o.Verbose {
		hexDump(&g.out, b)
	}
}

// hashEnd dumps the hash in verbose mode, as genhash does at the end of
// the stream.
func (g *genhashRun) hashEnd(h hash.Hash) {
	if g.o.Verbose {
		g.out.WriteString("\n")
		g.out.WriteString(banner("   HTML hash resulting   "))
		hexDump(&g.out, h.Sum(nil))
		g.out.WriteString(banner("HTML hash final resulting"))
	}
}

func (g *genhashRun) result(h hash.Hash, extracted bool) {
	if !extracted {
		g.errOut.WriteString("no data received from remote webserver\n")
		return
	}
	fmt.Fprintf(&g.out, "%x\n", h.Sum(nil))
}

// contentLength reads Content-Length as genhash does: the first
// "Content-Length:" (that spelling) anywhere in what the first reads
// returned, up to a NUL byte, with the number strtoul would take; -1 when
// there is none or it is not followed by the end of the line.
func contentLength(b []byte) int64 {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	const key = "Content-Length:"
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return -1
	}
	rest := b[i+len(key):]
	j := 0
	for j < len(rest) && strings.IndexByte(" \t\n\v\f\r", rest[j]) >= 0 {
		j++
	}
	neg := false
	if j < len(rest) && (rest[j] == '+' || rest[j] == '-') {
		neg = rest[j] == '-'
		j++
	}
	var v int64
	digits := 0
	for ; j < len(rest) && rest[j] >= '0' && rest[j] <= '9'; j++ {
		digits++
		if v < 1<<60 {
			v = v*10 + int64(rest[j]-'0')
		}
	}
	end := j
	if digits == 0 {
		end = 0 // strtoul leaves the end where it started
	}
	if end < len(rest) && rest[end] != '\r' && rest[end] != '\n' {
		return -1
	}
	if neg && v != 0 || v >= 1<<60 {
		return -1 // strtoul wraps a negative number to a huge one
	}
	return v
}

// tlsWire is the TCP stream under a TLS session, read as OpenSSL reads it
// without read-ahead: never past the end of the current record, so a
// record that arrives after the handshake (a TLS 1.3 session ticket) is
// still unread when the request goes out, as it is for genhash, which it
// wakes up. Once armed (the request sent), the first bytes that arrive
// give all further reads one deadline, as genhash's SSL reader does. It
// also tells whether the stream ended: crypto/tls returns io.EOF both for
// close_notify and for a bare end of stream, which genhash tells apart.
type tlsWire struct {
	net.Conn
	timeout        time.Duration
	armed, started bool
	eof            bool
	hdr            [5]byte // the current record's header
	nhdr           int     // bytes of hdr read
	left           int     // bytes of the current record's body to read
}

func (w *tlsWire) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	inHeader := w.nhdr < len(w.hdr)
	if inHeader {
		b = b[:min(len(b), len(w.hdr)-w.nhdr)]
	} else {
		b = b[:min(len(b), w.left)]
	}
	n, err := w.Conn.Read(b)
	if n > 0 && w.armed && !w.started {
		w.started = true
		_ = w.Conn.SetReadDeadline(time.Now().Add(w.timeout))
	}
	if err == io.EOF {
		w.eof = true
	}
	if inHeader {
		w.nhdr += copy(w.hdr[w.nhdr:], b[:n])
		if w.nhdr == len(w.hdr) {
			w.left = int(w.hdr[3])<<8 | int(w.hdr[4])
		}
	} else {
		w.left -= n
	}
	if w.nhdr == len(w.hdr) && w.left == 0 {
		w.nhdr = 0 // the record is complete (or has no body)
	}
	return n, err
}

func deadlineErr(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func banner(title string) string {
	return "-----------------------[ " + title + " ]-----------------------\n"
}

// hexDump writes genhash's dump: decimal offset, 16 bytes in two groups of
// eight split by "-", then the printable characters.
func hexDump(w *bytes.Buffer, b []byte) {
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		fmt.Fprintf(w, "%04d  ", off)
		for i := range 16 {
			if i == 8 {
				w.WriteString("- ")
			}
			if i < len(line) {
				fmt.Fprintf(w, "%02x ", line[i])
			} else {
				w.WriteString("   ")
			}
		}
		w.WriteString("  ")
		for i := range 16 {
			switch {
			case i >= len(line):
				w.WriteByte(' ')
			case line[i] >= 0x20 && line[i] < 0x7f:
				w.WriteByte(line[i])
			default:
				w.WriteByte('.')
			}
		}
		w.WriteString("\n")
	}
}
