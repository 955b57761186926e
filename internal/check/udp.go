package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
)

// UDP is UDP_CHECK. It sends one datagram (Payload, or 16 random bytes)
// on a connected socket and waits up to connect_timeout. An ICMP error
// (port, host or network unreachable) is down. Without RequireReply,
// silence is up (a UDP service need not answer); with it, a reply must
// come, with a length in [MinReply, MaxReply] and matching ReplyPattern.
type UDP struct {
	Endpoint
	Payload      []byte
	RequireReply bool
	// ReplyPattern is require_reply's hex string: the reply must equal it
	// on the first min(len(reply), len(pattern)) bytes, except where
	// ReplyMask (from X nibbles) is 0. Empty: any content.
	ReplyPattern, ReplyMask []byte
	MinReply                int // min_reply_length, default 0
	MaxReply                int // max_reply_length, default 255
}

// Check sends one probe.
func (c *UDP) Check(ctx context.Context) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	conn, release, err := connectGuarded(ctx, c.dialUDP) // lastchance.go
	if err != nil {
		return down("%s", reason("connect", err))
	}
	defer release()
	payload := c.Payload
	if len(payload) == 0 {
		payload = make([]byte, 16)
		_, _ = rand.Read(payload)
	}
	if _, err := conn.Write(payload); err != nil {
		return down("%s", reason("send", ctxErr(ctx, err)))
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		if ne := net.Error(nil); ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			if c.RequireReply {
				return down("no reply: timeout")
			}
			return up("no ICMP error")
		}
		return down("%s", reason("recv", err))
	}
	if !c.RequireReply {
		return up("reply")
	}
	max := c.MaxReply
	if max == 0 {
		max = 255
	}
	if n < c.MinReply || n > max {
		return down("reply length %d not in %d-%d", n, c.MinReply, max)
	}
	if !matchPattern(buf[:n], c.ReplyPattern, c.ReplyMask) {
		return down("reply %x does not match require_reply", truncate(buf[:min(n, 32)], 32))
	}
	return up("reply")
}

func matchPattern(b, pattern, mask []byte) bool {
	n := min(len(b), len(pattern))
	for i := range n {
		m := byte(0xff)
		if i < len(mask) {
			m = mask[i]
		}
		if b[i]&m != pattern[i]&m {
			return false
		}
	}
	return true
}

// ParseHex parses keepalived's free-format hex strings (payload,
// require_reply): whitespace separates groups, each group is read two
// digits a byte from the left and an odd last digit is a byte of its own,
// so "Ab12f 3 456" is AB 12 0F 03 45 06. With wild, an X digit matches
// anything: mask has 0 bits there.
func ParseHex(s string, wild bool) (data, mask []byte, err error) {
	for _, g := range strings.Fields(s) {
		for i := 0; i < len(g); i += 2 {
			pair := g[i:min(i+2, len(g))]
			var v, m byte
			for _, ch := range []byte(pair) {
				d, dm, ok := hexDigit(ch, wild)
				if !ok {
					return nil, nil, fmt.Errorf("hex string %q: bad digit %q", s, ch)
				}
				v, m = v<<4|d, m<<4|dm
			}
			data, mask = append(data, v), append(mask, m)
		}
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("hex string %q: empty", s)
	}
	return data, mask, nil
}

func hexDigit(c byte, wild bool) (v, mask byte, ok bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', 0xf, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, 0xf, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, 0xf, true
	case wild && (c == 'x' || c == 'X'):
		return 0, 0, true
	}
	return 0, 0, false
}
