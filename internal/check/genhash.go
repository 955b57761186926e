package check

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
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

// Genhash fetches a URL and prints what keepalived's genhash prints, byte
// for byte: the MD5 of the body, or with Verbose the hex dumps of the
// header and of each body read, the hash and the response time. Like
// genhash it reports a failure on w ("Connection failed") and still
// returns nil; an error means w failed.
//
// The body dump is split where the reads returned data, as genhash's is,
// so a large page dumps differently from run to run; digests never do.
func Genhash(ctx context.Context, w io.Writer, o GenhashOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	start := time.Now()
	var out bytes.Buffer
	ew := &errWriter{w: w}
	finish := func() error {
		if o.Verbose {
			fmt.Fprintf(&out, "\nGlobal response time for [%s] = %d usecs\n", o.URL, time.Since(start).Microseconds())
		}
		ew.Write(out.Bytes())
		return ew.err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ep := Endpoint{Addr: o.Server, Fwmark: o.Fwmark, Timeout: o.Timeout}
	conn, err := ep.dialTCP(ctx)
	if err != nil {
		out.WriteString("Connection failed\n")
		return finish()
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	host := o.VirtualHost
	if host == "" {
		host = formatAddr(o.Server)
	}
	rw := io.ReadWriter(conn)
	if o.SSL {
		cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // genhash does not verify either
		if o.SNI && o.VirtualHost != "" {
			cfg.ServerName = o.VirtualHost
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			out.WriteString("Connection failed\n")
			return finish()
		}
		rw = tc
	}
	proto := o.Protocol
	if strings.EqualFold(proto, "1.0c") {
		proto = "1.0C"
	}
	if _, err := rw.Write(httpRequest(o.URL, proto, host)); err != nil {
		out.WriteString("Connection failed\n")
		return finish()
	}
	var hdr []byte
	inBody, bodyBanner := false, false
	h := md5.New()
	buf := make([]byte, 4095)
	total := 0
	for {
		n, err := rw.Read(buf)
		total += n
		data := buf[:n]
		if !inBody && n > 0 {
			hdr = append(hdr, data...)
			end := headerEnd(hdr)
			if end < 0 {
				data = nil
			} else {
				inBody = true
				if o.Verbose {
					out.WriteString(banner("   HTTP Header Buffer   "))
					hexDump(&out, hdr[:end])
					out.WriteString(banner("HTTP Header Ascii Buffer"))
					out.Write(hdr[:end])
					out.WriteString("\n")
				}
				data = hdr[end:]
			}
		}
		if inBody && len(data) > 0 {
			h.Write(data)
			if o.Verbose {
				if !bodyBanner {
					out.WriteString(banner("       HTML Buffer       "))
					bodyBanner = true
				}
				hexDump(&out, data)
			}
		}
		if err != nil {
			break
		}
	}
	if total == 0 {
		out.WriteString("no data received from remote webserver\n")
		return finish()
	}
	sum := h.Sum(nil)
	if o.Verbose {
		out.WriteString("\n")
		out.WriteString(banner("   HTML hash resulting   "))
		hexDump(&out, sum)
		out.WriteString(banner("HTML hash final resulting"))
	}
	fmt.Fprintf(&out, "%x\n", sum)
	return finish()
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

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) {
	if e.err != nil {
		return
	}
	if _, err := e.w.Write(b); err != nil {
		e.err = errors.Join(errors.New("genhash: write output"), err)
	}
}
