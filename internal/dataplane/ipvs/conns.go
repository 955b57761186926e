package ipvs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// IPVS has no netlink dump of its connection table; ipvsadm -c reads
// /proc/net/ip_vs_conn, and so do we. Its lines look like
//
//	Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//	TCP C6120102 9C41 C6120164 0050 C6120215 0050 ESTABLISHED     897
//	IP  C6120102 0000 C6120164 0050 C6120215 0050 NONE            297
//
// with IPv4 addresses as 8 hex digits (host order of the big-endian
// address, so plain reading order), IPv6 addresses as eight groups of
// four hex digits, ports as 4 hex digits and the time left in seconds.

// maxConnLine bounds a line: the longest legal one (IPv6, persistence
// engine data) is well under 300 bytes.
const maxConnLine = 4096

// parseConns reads a /proc/net/ip_vs_conn listing. A malformed line is an
// error naming its line number and field; nothing panics on bad input.
func parseConns(r io.Reader) ([]lvs.ConnEntry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxConnLine)
	var out []lvs.ConnEntry
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 && strings.HasPrefix(text, "Pro ") {
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		c, err := parseConnLine(text)
		if err != nil {
			return out, fmt.Errorf("ip_vs_conn line %d: %w", line, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("ip_vs_conn line %d: %w", line+1, err)
	}
	return out, nil
}

func parseConnLine(text string) (lvs.ConnEntry, error) {
	var c lvs.ConnEntry
	f := strings.Fields(text)
	if len(f) < 9 {
		return c, fmt.Errorf("%d fields, want at least 9", len(f))
	}
	p, err := parseConnProto(f[0])
	if err != nil {
		return c, err
	}
	c.Proto = p
	if c.Client, err = parseConnAddr(f[1], f[2]); err != nil {
		return c, fmt.Errorf("client: %w", err)
	}
	if c.Virtual, err = parseConnAddr(f[3], f[4]); err != nil {
		return c, fmt.Errorf("virtual: %w", err)
	}
	if c.Dest, err = parseConnAddr(f[5], f[6]); err != nil {
		return c, fmt.Errorf("destination: %w", err)
	}
	c.State = f[7]
	secs, err := strconv.ParseUint(f[8], 10, 64)
	if err != nil {
		return c, fmt.Errorf("expires %q: not a number", f[8])
	}
	// An entry whose timer already fired but which is not freed yet
	// shows a wrapped-around huge value; it expires now.
	if secs > 1<<31 {
		secs = 0
	}
	c.Expire = time.Duration(secs) * time.Second
	return c, nil
}

// parseConnProto reads the kernel's protocol name (ip_vs_proto_name):
// templates are "IP".
func parseConnProto(s string) (lvs.Protocol, error) {
	switch s {
	case "IP":
		return 0, nil
	case "TCP":
		return lvs.TCP, nil
	case "UDP":
		return lvs.UDP, nil
	case "SCTP":
		return lvs.SCTP, nil
	case "ICMP":
		return 1, nil
	case "ICMPv6":
		return 58, nil
	case "AH":
		return 51, nil
	case "ESP":
		return 50, nil
	}
	if n, ok := strings.CutPrefix(s, "IP_"); ok {
		v, err := strconv.ParseUint(n, 10, 8)
		if err == nil {
			return lvs.Protocol(v), nil
		}
	}
	return 0, fmt.Errorf("unknown protocol %q", s)
}

func parseConnAddr(addr, port string) (netip.AddrPort, error) {
	if len(port) != 4 {
		return netip.AddrPort{}, fmt.Errorf("port %q: want 4 hex digits", port)
	}
	pb, err := hex.DecodeString(port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: not hex", port)
	}
	pn := uint16(pb[0])<<8 | uint16(pb[1])
	var a netip.Addr
	if len(addr) == 8 {
		b, err := hex.DecodeString(addr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: not hex", addr)
		}
		a = netip.AddrFrom4([4]byte(b))
	} else {
		if !strings.Contains(addr, ":") || bytes.ContainsAny([]byte(addr), "%.") {
			return netip.AddrPort{}, fmt.Errorf("address %q: neither 8 hex digits nor IPv6", addr)
		}
		a, err = netip.ParseAddr(addr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", addr, err)
		}
	}
	return netip.AddrPortFrom(a, pn), nil
}
