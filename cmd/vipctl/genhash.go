package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/check"
)

type genhashFlags struct {
	server, url, vhost, proto string
	port                      uint
	ssl, sni, verbose, rel    bool
	mark                      uint
	timeout                   uint
}

func (g *genhashFlags) add(fs *flag.FlagSet) {
	both := func(short, long string, f func(name string)) { f(short); f(long) }
	both("s", "server", func(n string) {
		fs.StringVar(&g.server, n, "", "real server to fetch from, an IP address or a host name (`ADDR`)")
	})
	both("p", "port", func(n string) { fs.UintVar(&g.port, n, 0, "`PORT` to connect to") })
	both("u", "url", func(n string) { fs.StringVar(&g.url, n, "", "`PATH` of the page to hash, as in url { path ... }") })
	both("S", "use-ssl", func(n string) { fs.BoolVar(&g.ssl, n, false, "use TLS, as SSL_GET does") })
	both("I", "use-sni", func(n string) { fs.BoolVar(&g.sni, n, false, "send the virtual host as SNI in the TLS handshake") })
	both("V", "use-virtualhost", func(n string) {
		fs.StringVar(&g.vhost, n, "", "`HOST` for the Host header (default: the server address)")
	})
	both("v", "verbose", func(n string) {
		fs.BoolVar(&g.verbose, n, false, "dump the header and body in hex, and the response time")
	})
	both("m", "fwmark", func(n string) { fs.UintVar(&g.mark, n, 0, "firewall `MARK` to set on the socket") })
	both("P", "protocol", func(n string) {
		fs.StringVar(&g.proto, n, "1.0", "HTTP `VERSION`: 1.0, 1.0c (1.0 with Connection: close) or 1.1")
	})
	both("t", "timeout", func(n string) { fs.UintVar(&g.timeout, n, 5, "connection timeout in `SECONDS`") })
	both("r", "release", func(n string) { fs.BoolVar(&g.rel, n, false, "print the version and exit") })
}

func init() {
	var g genhashFlags
	commands = append(commands, &command{
		name:    "genhash",
		args:    "-s ADDR -p PORT -u PATH [-S [-I]] [-V HOST] [-P 1.0|1.0c|1.1] [-t SECONDS] [-m MARK] [-v]",
		summary: "print the MD5 digest of a page, for HTTP_GET/SSL_GET digest lines (keepalived's genhash)",
		help: `Fetches http(s)://ADDR:PORT/PATH and prints exactly what keepalived's
genhash prints: the MD5 digest of the body to put in a url { digest ... }
block, or with -v the hex dumps of the header and body, the digest and the
response time. Options are genhash's, short and long. A connection that
fails prints "Connection failed", as genhash does. Runs locally: no
daemon needed. With -o json, prints {"url", "server", "digest"} or
{"error"}.`,
		local: true,
		flags: func(fs *flag.FlagSet) { g.add(fs) },
		run:   func(ctx context.Context, a *app, args []string) error { return runGenhash(ctx, a, args, g) },
	})
}

var md5Line = regexp.MustCompile(`^[0-9a-f]{32}$`)

func runGenhash(ctx context.Context, a *app, args []string, g genhashFlags) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	if g.rel {
		_, err := fmt.Fprintf(a.stdout, "vipctl genhash %s\n", Version)
		return err
	}
	if g.server == "" || g.port == 0 || g.url == "" {
		return usagef("-s ADDR, -p PORT and -u PATH are all needed")
	}
	if g.port > 65535 {
		return usagef("-p %d: want a port, 1 to 65535", g.port)
	}
	if g.mark > 0xffffffff {
		return usagef("-m %d: want a firewall mark below 2^32", g.mark)
	}
	switch strings.ToLower(g.proto) {
	case "1.0", "1.0c", "1.1":
	default:
		return usagef("-P %q: want 1.0, 1.0c or 1.1", g.proto)
	}
	addr, err := netip.ParseAddr(g.server)
	if err != nil {
		ips, rerr := net.DefaultResolver.LookupNetIP(ctx, "ip", g.server)
		if rerr != nil || len(ips) == 0 {
			return fmt.Errorf("genhash: -s %q: not an address and does not resolve: %v", g.server, rerr)
		}
		addr = ips[0]
	}
	o := check.GenhashOptions{
		Server:      netip.AddrPortFrom(addr.Unmap(), uint16(g.port)),
		URL:         g.url,
		SSL:         g.ssl,
		SNI:         g.sni,
		VirtualHost: g.vhost,
		Protocol:    g.proto,
		Timeout:     time.Duration(g.timeout) * time.Second,
		Fwmark:      uint32(g.mark),
		Verbose:     g.verbose && a.output != "json",
	}
	if a.output != "json" {
		return check.Genhash(ctx, a.stdout, o)
	}
	var b bytes.Buffer
	if err := check.Genhash(ctx, &b, o); err != nil {
		return err
	}
	out := strings.TrimSpace(b.String())
	res := map[string]string{"server": o.Server.String(), "url": g.url}
	if md5Line.MatchString(out) {
		res["digest"] = out
	} else {
		res["error"] = out
	}
	if err := a.json(res); err != nil {
		return err
	}
	if res["error"] != "" {
		return &failed{err: fmt.Errorf("genhash: %s", out)}
	}
	return nil
}
