package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/check"
)

// genhashFlags are genhash's options. Port, timeout and mark stay text
// until run judges them as genhash does, so a bad value gets genhash's
// message.
type genhashFlags struct {
	server, url, vhost, proto string
	port, timeout, mark       string
	ssl, sni, verbose, rel    bool
}

func (g *genhashFlags) add(fs *flag.FlagSet) {
	both := func(short, long string, f func(name string)) { f(short); f(long) }
	both("s", "server", func(n string) {
		fs.StringVar(&g.server, n, "", "real server to fetch from, an IP address or a host name (`ADDR`)")
	})
	both("p", "port", func(n string) { fs.StringVar(&g.port, n, "", "`PORT` to connect to") })
	both("u", "url", func(n string) { fs.StringVar(&g.url, n, "", "`PATH` of the page to hash, as in url { path ... }") })
	both("S", "use-ssl", func(n string) { fs.BoolVar(&g.ssl, n, false, "use TLS, as SSL_GET does") })
	both("I", "use-sni", func(n string) { fs.BoolVar(&g.sni, n, false, "send the virtual host as SNI in the TLS handshake") })
	both("V", "use-virtualhost", func(n string) {
		fs.StringVar(&g.vhost, n, "", "`HOST` for the Host header (default: the server address)")
	})
	both("v", "verbose", func(n string) {
		fs.BoolVar(&g.verbose, n, false, "dump the header and body in hex, and the response time")
	})
	both("m", "fwmark", func(n string) { fs.StringVar(&g.mark, n, "", "firewall `MARK` to set on the socket") })
	both("P", "protocol", func(n string) {
		fs.StringVar(&g.proto, n, "1.0", "HTTP `VERSION`: 1.0, 1.0c (1.0 with Connection: close) or 1.1")
	})
	both("t", "timeout", func(n string) { fs.StringVar(&g.timeout, n, "5", "timeout of each wait in `SECONDS`") })
	both("r", "release", func(n string) { fs.BoolVar(&g.rel, n, false, "print the version and exit") })
}

func init() {
	var g genhashFlags
	commands = append(commands, &command{
		name:    "genhash",
		args:    "-s ADDR -p PORT -u PATH [-S [-I]] [-V HOST] [-P 1.0|1.0c|1.1] [-t SECONDS] [-m MARK] [-v]",
		summary: "print the MD5 digest of a page, for HTTP_GET/SSL_GET digest lines (keepalived's genhash)",
		help: `Fetches http(s)://ADDR:PORT/PATH and prints exactly what keepalived's
genhash prints, on the same stream: the MD5 digest of the body (up to its
Content-Length) to put in a url { digest ... } block, or with -v the hex
dumps of the header and body, the digest and the response time. Options
are genhash's, short and long. A failure prints genhash's message
("Connection failed", "Timeout connecting", "Timeout WEB read", ...) and
exits 0, as genhash does; a bad command line exits 1, as genhash does.
Runs locally: no daemon needed. With -o json, prints {"url", "server",
"digest"} or {"error"} (and exits 1 on an error).`,
		local:     true,
		usageExit: exitFail,
		flags:     func(fs *flag.FlagSet) { g.add(fs) },
		run:       func(ctx context.Context, a *app, args []string) error { return runGenhash(ctx, a, args, g) },
	})
}

var md5Line = regexp.MustCompile(`^[0-9a-f]{32}$`)

func runGenhash(ctx context.Context, a *app, args []string, g genhashFlags) error {
	if len(args) > 0 {
		return usagef("Unexpected argument(s): %s", strings.Join(args, " "))
	}
	if g.rel {
		_, err := fmt.Fprintf(a.stdout, "vipctl genhash %s\n", Version)
		return err
	}
	if g.server == "" || g.port == "" || g.url == "" {
		return usagef("-s ADDR, -p PORT and -u PATH are all needed")
	}
	// The values are judged as genhash judges them, with its messages.
	port, err := strconv.ParseInt(strings.TrimLeft(g.port, " \t\n\v\f\r"), 10, 32)
	if err != nil || port <= 0 || port > 65535 {
		return usagef("invalid port number '%s'", g.port)
	}
	timeout, ok := genhashUint(g.timeout, false)
	if !ok || timeout > 1<<31 {
		return usagef("invalid timeout '%s'", g.timeout)
	}
	mark, ok := genhashUint(g.mark, true)
	if !ok || mark > 0xffffffff {
		return usagef("invalid fwmark '%s'", g.mark)
	}
	switch g.proto {
	case "1.0", "1.0c", "1.0C", "1.1":
	default:
		return usagef("invalid HTTP protocol version '%s'", g.proto)
	}
	addr, err := netip.ParseAddr(g.server)
	if err != nil {
		// genhash takes an address only; vipctl also takes a name.
		ips, rerr := net.DefaultResolver.LookupNetIP(ctx, "ip", g.server)
		if rerr != nil || len(ips) == 0 {
			return usagef("server should be an IP, not %s (nor a host name that resolves: %v)", g.server, rerr)
		}
		addr = ips[0]
	}
	o := check.GenhashOptions{
		Server:      netip.AddrPortFrom(addr.Unmap(), uint16(port)),
		URL:         g.url,
		SSL:         g.ssl,
		SNI:         g.sni,
		VirtualHost: g.vhost,
		Protocol:    g.proto,
		Timeout:     time.Duration(timeout) * time.Second,
		Fwmark:      uint32(mark),
		Verbose:     g.verbose && a.output != "json",
	}
	if a.output != "json" {
		return check.Genhash(ctx, a.stdout, a.stderr, o)
	}
	var out, errOut bytes.Buffer
	if err := check.Genhash(ctx, &out, &errOut, o); err != nil {
		return err
	}
	res := map[string]string{"server": o.Server.String(), "url": g.url}
	if d := strings.TrimSpace(out.String()); md5Line.MatchString(d) {
		res["digest"] = d
	} else {
		res["error"] = strings.TrimSpace(d + "\n" + errOut.String())
	}
	if err := a.json(res); err != nil {
		return err
	}
	if res["error"] != "" {
		return &failed{err: fmt.Errorf("genhash: %s", res["error"])}
	}
	return nil
}

// genhashUint reads -t and -m as genhash does: blanks and tabs first, then
// an unsigned decimal number (strtoul's, so a leading '+' is taken), with
// nothing after it and no minus sign; empty is 0 where genhash allows it
// (-m).
func genhashUint(s string, emptyOK bool) (uint64, bool) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	if s == "" {
		return 0, emptyOK
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 64)
	return v, err == nil
}
