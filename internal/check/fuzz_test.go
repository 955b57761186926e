package check

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"io"
	"strings"
	"testing"
)

// FuzzReadResponse feeds arbitrary server output to the HTTP response
// reader: no panic, and when it accepts a response the digest is the MD5
// of what follows the header and the status code is a valid one.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.0 200 OK\r\nX: y\r\n\r\nabc",
		"HTTP/1.1 503 Service Unavailable\r\n\r\n",
		"HTTP/1.1 200\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n",
		"SSH-2.0-OpenSSH_9.2\r\n",
		"",
		"HTTP/",
		"\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		r := &chunkReader{b: data, n: int(chunk%32) + 1}
		resp, err := readResponse(r, 1<<20, true)
		if err != nil {
			return
		}
		if resp.code < 100 || resp.code > 999 {
			t.Fatalf("status %d accepted", resp.code)
		}
		var body, hashed []byte
		if end := headerEnd(data); end >= 0 {
			body = data[end:]
			hashed = body
			// Up to Content-Length, as genhash reads it: from the
			// header and what came with it in the read that ended it.
			step := int(chunk%32) + 1
			first := min((end+step-1)/step*step, len(data))
			if n := contentLength(data[:first]); n >= 0 && n < int64(len(body)) {
				hashed = body[:n]
			}
		}
		if resp.sum != md5.Sum(hashed) || !bytes.Equal(resp.body, body) {
			t.Fatalf("body/digest mismatch for %q", data)
		}
	})
}

// chunkReader returns at most n bytes per Read, to exercise reassembly.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func FuzzParseHex(f *testing.F) {
	for _, s := range []string{"Ab12f 3 456 546443123", "xX 1x", "", "zz", "0"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, wild bool) {
		d, m, err := ParseHex(s, wild)
		if err != nil {
			return
		}
		if len(d) != len(m) || len(d) == 0 {
			t.Fatalf("%q: data %x mask %x", s, d, m)
		}
		if !matchPattern(d, d, m) {
			t.Fatalf("%q: pattern does not match itself", s)
		}
	})
}

func FuzzSMTPReply(f *testing.F) {
	for _, s := range []string{"220 ok\r\n", "250-a\r\n250-b\r\n250 c\r\n", "2\r\n", "999 x\r\n", "220-", "abc\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, _, err := readSMTPReply(bufio.NewReader(strings.NewReader(s)))
		if err == nil && (code < 100 || code > 599) {
			t.Fatalf("%q: code %d accepted", s, code)
		}
	})
}

func FuzzDNSReply(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, uint16(0x1234))
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, uint16(0x1234))
	f.Add([]byte{0x12}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, id uint16) {
		ok, _ := dnsReply(b, id)
		if ok && (len(b) < 12 || uint16(b[0])<<8|uint16(b[1]) != id || b[2]&0x80 == 0) {
			t.Fatalf("%x accepted as a reply to %04x", b, id)
		}
	})
}

func FuzzTrackValue(f *testing.F) {
	for _, s := range []string{"0", "12\n", "-5 junk", "", "abc", "99999999999", "2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseTrackValue(s)
		if err == nil && (v > 1<<31 || v < -(1<<31)) {
			t.Fatalf("%q: %d out of range accepted", s, v)
		}
	})
}
