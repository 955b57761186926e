package config

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Unset markers of inheritable checker options.
const (
	unsetInt = -1
	unsetDur = time.Duration(-1)
)

// checkSet is the explicitly configured part of CheckDefaults, so that
// inheritance (virtual server -> real server -> checker) can be applied
// once the whole block is read.
type checkSet struct {
	DelayLoop, ConnectTimeout, DelayBeforeRetry, Warmup time.Duration
	Retry                                               int
	Alpha, Inhibit                                      *bool
	Virtualhost                                         *string
	SMTPAlert                                           *bool
}

func newCheckSet() *checkSet {
	return &checkSet{DelayLoop: unsetDur, ConnectTimeout: unsetDur, DelayBeforeRetry: unsetDur, Warmup: unsetDur, Retry: unsetInt}
}

const maxTimer = 9e9 // seconds; fits time.Duration

func timerKw(name, def string, dst func(s *checkSet) *time.Duration, lo, hi float64) *Keyword {
	return kw(name, "SECONDS", 1, def, func(c *cx, n *Node) {
		if v, ok := c.seconds(n, 0, lo, hi); ok {
			*dst(c.cset) = v
		}
	})
}

func retryKw(name string) *Keyword {
	return kw(name, "INTEGER", 1, "1 (DNS_CHECK 3, MISC_CHECK 0)", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
			c.cset.Retry = int(v)
		}
	})
}

func alphaKw() *Keyword {
	return flagKw("alpha", func(c *cx, n *Node) {
		if v, ok := c.boolOpt(n); ok {
			c.cset.Alpha = &v
		}
	}).args("[<BOOL>]", 0)
}

// smtpAlertKw is smtp_alert in a virtual_server or real_server: it sets
// the alert flag of the checks being built (the current check set).
func smtpAlertKw() *Keyword {
	return flagKw("smtp_alert", func(c *cx, n *Node) {
		if v, ok := c.boolOpt(n); ok {
			c.cset.SMTPAlert = &v
		}
	}).args("[<BOOL>]", 0)
}

func inhibitKw() *Keyword {
	return flagKw("inhibit_on_failure", func(c *cx, n *Node) {
		if v, ok := c.boolOpt(n); ok {
			c.cset.Inhibit = &v
		}
	}).args("[<BOOL>]", 0)
}

func virtualhostKw(url bool) *Keyword {
	return kw("virtualhost", "STRING", 1, "", func(c *cx, n *Node) {
		if url {
			c.url.Virtualhost = n.Args[0]
			return
		}
		v := n.Args[0]
		c.cset.Virtualhost = &v
	}).noValue(NoValueError)
}

// commonTiming are the options shared by virtual servers, real servers
// and checkers.
func commonTiming() []*Keyword {
	return []*Keyword{
		timerKw("connect_timeout", "5", func(s *checkSet) *time.Duration { return &s.ConnectTimeout }, 0.000001, 4294.967295),
		retryKw("retry"),
		timerKw("delay_before_retry", "3 (HTTP_GET, SSL_GET), delay_loop (DNS_CHECK), 1 (others)", func(s *checkSet) *time.Duration { return &s.DelayBeforeRetry }, 0, maxTimer),
		timerKw("warmup", "delay_loop", func(s *checkSet) *time.Duration { return &s.Warmup }, 0, maxTimer),
		timerKw("delay_loop", "60", func(s *checkSet) *time.Duration { return &s.DelayLoop }, 0, maxTimer),
		alphaKw(),
	}
}

// parseMethod parses "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]".
func (c *cx) parseMethod(n *Node) (Method, bool) {
	var m Method
	switch n.Args[0] {
	case "NAT":
		m.Forward = lvs.Masq
	case "DR":
		m.Forward = lvs.Route
	case "TUN":
		m.Forward = lvs.Tunnel
		t := &TunnelConfig{Type: lvs.TunnelIPIP}
		for i := 1; i < len(n.Args); i++ {
			switch n.Args[i] {
			case "type":
				i++
				switch arg(n, i) {
				case "ipip":
					t.Type = lvs.TunnelIPIP
				case "gue":
					t.Type = lvs.TunnelGUE
					if arg(n, i+1) != "port" {
						c.errf(n, "write TUN type gue port N", "GUE tunnels need a port")
						return m, false
					}
					p, ok := c.port(n, i+2)
					if !ok || p == 0 {
						return m, false
					}
					t.Port = p
					i += 2
				case "gre":
					t.Type = lvs.TunnelGRE
				default:
					c.errf(n, "use ipip, gue or gre", "unknown tunnel type '%s'", arg(n, i))
					return m, false
				}
			case "nocsum", "csum", "remcsum":
				t.Csum = n.Args[i]
			default:
				c.errf(n, "write TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]", "unknown tunnel option '%s'", n.Args[i])
				return m, false
			}
		}
		m.Tunnel = t
	default:
		c.errf(n, "use NAT, DR or TUN", "unknown [%s] routing method", n.Args[0])
		return m, false
	}
	return m, true
}

func methodKw(name string, dst func(c *cx) *Method) *Keyword {
	return kw(name, "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]", 1, "NAT", func(c *cx, n *Node) {
		if m, ok := c.parseMethod(n); ok {
			*dst(c) = m
			if name != "sorry_server_lvs_method" {
				c.methodSet = true
			}
		}
	})
}

var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true, "dh": true, "sh": true,
	"sed": true, "nq": true, "fo": true, "ovf": true, "mh": true, "twos": true,
}

func schedKw(name string) *Keyword {
	return kw(name, "rr|wrr|lc|wlc|lblc|sh|mh|dh|fo|ovf|lblcr|sed|nq|twos", 1, "wlc", func(c *cx, n *Node) {
		s := n.Args[0]
		c.vs.schedPos = n.Pos
		if len(s) > 15 {
			s = s[:15]
		}
		c.vs.Scheduler = s
	})
}

func schedFlag(name string, f lvs.SchedFlags) *Keyword {
	return flagKw(name, func(c *cx, n *Node) { c.vs.Flags |= f })
}

var urlSection = newSection("url", "HTTP_GET / SSL_GET url",
	kw("path", "STRING", 1, "", func(c *cx, n *Node) { c.url.Path = n.Args[0] }),
	kw("digest", "MD5_HEX", 1, "", func(c *cx, n *Node) {
		d := strings.ToLower(n.Args[0])
		if c.url.Digest != "" {
			c.errf(n, "give one digest per url block", "digest '%s' is a duplicate", n.Args[0])
			return
		}
		if len(d) != 32 {
			c.errf(n, "give the 32 hex digits genhash prints", "digest '%s' character length should be 32 rather than %d", n.Args[0], len(d))
			return
		}
		if b, err := hex.DecodeString(d); err != nil || len(b) != 16 {
			c.errf(n, "give the 32 hex digits genhash prints", "digest '%s' is not an MD5 digest", n.Args[0])
			return
		}
		c.url.Digest = d
	}),
	kw("status_code", "INTEGER|RANGE ...", 1, "200-299", func(c *cx, n *Node) {
		for i, a := range n.Args {
			lo, hi, isRange := strings.Cut(a, "-")
			l, err1 := strconv.Atoi(lo)
			h := l
			var err2 error
			if isRange {
				h, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || l < 100 || h > 599 || h < l {
				c.errf(n, "give HTTP status codes (100-599) or ranges such as 200-299", "invalid HTTP status code '%s'", n.Args[i])
				continue
			}
			c.url.StatusCodes = append(c.url.StatusCodes, StatusRange{Min: l, Max: h})
		}
	}).noValue(NoValueError),
	virtualhostKw(true),
	kw("regex", "STRING", 1, "", func(c *cx, n *Node) { c.url.Regex = n.Args[0] }).noValue(NoValueError),
	flagKw("regex_no_match", func(c *cx, n *Node) { c.url.RegexNoMatch = true }),
	kw("regex_options", "OPTIONS...", 1, "", func(c *cx, n *Node) { c.url.RegexOptions = append(c.url.RegexOptions, n.Args...) }).noValue(NoValueError),
	kw("regex_stack", "START MAX", 2, "", func(c *cx, n *Node) {}).noValue(NoValueError).status(Ignored).note("Go's regexp engine needs no JIT stack"),
	kw("regex_min_offset", "OFFSET", 1, "0", func(c *cx, n *Node) { c.intVal(n, &c.url.RegexMinOffset, 0, 1<<31-1) }).noValue(NoValueError),
	flagKw("tls_compliant", nil).status(Ignored).note("set tls_compliant on the SSL_GET checker").since("2.3"),
	kw("regex_max_offset", "OFFSET", 1, "", func(c *cx, n *Node) { c.intVal(n, &c.url.RegexMaxOffset, 0, 1<<31-1) }).noValue(NoValueError),
)

// checkerConn are the connection options of the network checkers.
func checkerConn() []*Keyword {
	return []*Keyword{
		kw("connect_ip", "IPADDR", 1, "real server address", func(c *cx, n *Node) {
			if a, err := netip.ParseAddr(n.Args[0]); err == nil {
				c.chk.ConnectIP = a
			} else {
				c.errf(n, "give an IP address", "invalid connect_ip address %s - ignoring", n.Args[0])
			}
		}),
		kw("connect_port", "PORT", 1, "real server port", func(c *cx, n *Node) {
			if p, ok := c.port(n, 0); ok {
				c.chk.ConnectPort = p
				c.chkPortSet = true
			}
		}),
		kw("bindto", "IPADDR", 1, "", func(c *cx, n *Node) {
			if a, err := netip.ParseAddr(n.Args[0]); err == nil {
				c.chk.BindTo = a
			} else {
				c.errf(n, "give an IP address", "invalid bindto address %s - ignoring", n.Args[0])
			}
		}),
		kw("bind_if", "IFNAME", 1, "", func(c *cx, n *Node) { c.chk.BindIf = n.Args[0] }),
		kw("bind_port", "PORT", 1, "", func(c *cx, n *Node) {
			if p, ok := c.port(n, 0); ok {
				c.chk.BindPort = p
			}
		}),
		kw("fwmark", "INTEGER", 1, "", func(c *cx, n *Node) {
			if v, ok := c.integer(n, 0, 0, 1<<32-1); ok {
				c.chk.FWMark = uint32(v)
			}
		}),
		flagKw("log_all_failures", func(c *cx, n *Node) { c.boolVal(n, &c.chk.LogAllFailures) }).args("[<BOOL>]", 0),
	}
}

func checkerSection(t CheckerType, doc string, conn bool, extra ...*Keyword) *Section {
	s := newSection(string(t), doc)
	for _, k := range commonTiming() {
		if k.Name == "connect_timeout" && !conn {
			continue // MISC_CHECK has no connection
		}
		s.addKeywords(k)
	}
	if conn {
		s.addKeywords(checkerConn()...)
	} else {
		s.addKeywords(flagKw("log_all_failures", func(c *cx, n *Node) { c.boolVal(n, &c.chk.LogAllFailures) }).args("[<BOOL>]", 0))
	}
	s.addKeywords(extra...)
	return s
}

func httpExtra() []*Keyword {
	return []*Keyword{
		kw("http_protocol", "1.0|1.0C|1.1", 1, "1.0", func(c *cx, n *Node) {
			switch n.Args[0] {
			case "1.0", "1.0C", "1.1":
				c.chk.HTTP.Protocol = n.Args[0]
			case "1.0c":
				c.chk.HTTP.Protocol = "1.0C"
			default:
				c.errf(n, "use 1.0, 1.0C or 1.1", "invalid http_protocol version %s", n.Args[0])
			}
		}).noValue(NoValueError),
		flagKw("fast_recovery", func(c *cx, n *Node) { c.boolVal(n, &c.chk.HTTP.FastRecovery) }).args("[<BOOL>]", 0),
		flagKw("enable_sni", func(c *cx, n *Node) { c.boolVal(n, &c.chk.HTTP.EnableSNI) }).args("[<BOOL>]", 0),
		kw("sni_name", "NAME", 1, "virtualhost", func(c *cx, n *Node) { c.chk.HTTP.SNIName = n.Args[0] }).since("2.3"),
		flagKw("tls_compliant", func(c *cx, n *Node) { c.chk.HTTP.TLSCompliant = true }).since("2.3"),
		kw("virtualhost", "STRING", 1, "real/virtual server virtualhost", func(c *cx, n *Node) { c.chk.HTTP.Virtualhost = n.Args[0] }).noValue(NoValueError),
		block("url", "{ path ...; digest ...; status_code ... }", 0, urlSection, func(c *cx, n *Node) {
			c.url = &URL{Pos: n.Pos}
			c.walk(urlSection, n.Children)
			if c.url.Path == "" {
				c.errf(n, "add path /... to the url block", "url has no path - skipping")
			} else {
				if len(c.url.StatusCodes) == 0 && c.url.Digest == "" {
					c.url.StatusCodes = []StatusRange{{Min: 200, Max: 299}}
				}
				c.chk.HTTP.URLs = append(c.chk.HTTP.URLs, *c.url)
			}
			c.url = nil
		}),
		alias("nb_get_retry", retryKw("retry"), true),
	}
}

// smtpHostSection is the obsolete SMTP_CHECK host block: its keywords
// are accepted, the block is refused as a whole.
var smtpHostSection = func() *Section {
	s := newSection("host", "SMTP_CHECK host (obsolete)")
	for _, k := range checkerConn() {
		s.addKeywords(ign(k.Name, k.Args, k.Min, "part of a refused SMTP_CHECK host block"))
	}
	return s
}()

var (
	httpSection = checkerSection(CheckHTTP, "HTTP_GET checker", true, httpExtra()...)
	sslSection  = checkerSection(CheckSSL, "SSL_GET checker", true, httpExtra()...)
	tcpSection  = checkerSection(CheckTCP, "TCP_CHECK checker", true)
	smtpSection = checkerSection(CheckSMTP, "SMTP_CHECK checker", true,
		kw("helo_name", "STRING|QUOTED_STRING", 1, "smtpchecker.keepalived.org", func(c *cx, n *Node) { c.chk.SMTP.HeloName = n.Args[0] }).noValue(NoValueError),
		&Keyword{Name: "host", Args: "{ connect_ip ...; connect_port ... }", Status: Refused, Block: smtpHostSection,
			Note: "SMTP_CHECK host blocks (several servers per checker) are obsolete; use one SMTP_CHECK per real server"},
	)
	dnsSection = checkerSection(CheckDNS, "DNS_CHECK checker", true,
		kw("type", "A|NS|CNAME|SOA|MX|TXT|AAAA", 1, "SOA", func(c *cx, n *Node) {
			t := strings.ToUpper(n.Args[0])
			switch t {
			case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
				c.chk.DNS.Type = t
			default:
				c.errf(n, "use A, NS, CNAME, SOA, MX, TXT or AAAA", "unknown DNS check type %s - ignoring", n.Args[0])
			}
		}),
		kw("name", "STRING", 1, ".", func(c *cx, n *Node) {
			name := n.Args[0]
			if c.chk.DNS.nameSet {
				c.warnf(n, "give name once", "DNS_CHECK name already specified - ignoring")
				return
			}
			c.chk.DNS.nameSet = true
			if strings.Contains(strings.TrimSuffix(name, "."), "..") || (strings.HasPrefix(name, ".") && name != ".") {
				c.errf(n, "give a domain name such as example.com", "DNS_CHECK name '%s' has empty label - ignoring", name)
				return
			}
			c.chk.DNS.Name = name
		}),
	)
	miscSection = checkerSection(CheckMisc, "MISC_CHECK checker", false,
		kw("misc_path", "STRING|QUOTED_STRING", 1, "", func(c *cx, n *Node) { c.chk.Misc.Path = c.script(n, 0) }).noValue(NoValueError),
		kw("misc_timeout", "SECONDS", 1, "delay_loop", func(c *cx, n *Node) {
			if v, ok := c.integer(n, 0, 1, 1<<31-1); ok {
				c.chk.Misc.Timeout = time.Duration(v) * time.Second
			}
		}),
		flagKw("misc_dynamic", func(c *cx, n *Node) { c.chk.Misc.Dynamic = true }),
		kw("user", "USERNAME [GROUPNAME]", 1, "script_user", func(c *cx, n *Node) {
			c.miscUser, c.miscGroup = n.Args[0], arg(n, 1)
		}).noValue(NoValueError),
	)
	pingSection = checkerSection(CheckPing, "PING_CHECK checker", true)
	udpSection  = checkerSection(CheckUDP, "UDP_CHECK checker", true,
		kw("payload", "HEX_STR", 1, "random", func(c *cx, n *Node) {
			b, _, err := parseHexString(strings.Join(n.Args, " "), false)
			if err != nil {
				c.errf(n, "give hex digits", "invalid payload: %v", err)
				return
			}
			c.chk.UDP.Payload = b
		}).noValue(NoValueError),
		kw("require_reply", "[HEX_STR]", 0, "", func(c *cx, n *Node) {
			c.chk.UDP.RequireReply = true
			if len(n.Args) == 0 {
				return
			}
			b, mask, err := parseHexString(strings.Join(n.Args, " "), true)
			if err != nil {
				c.errf(n, "give hex digits (X for a nibble to ignore)", "invalid require_reply: %v", err)
				return
			}
			c.chk.UDP.ReplyData, c.chk.UDP.ReplyMask = b, mask
		}),
		kw("min_reply_length", "INT", 1, "0", func(c *cx, n *Node) { c.intVal(n, &c.chk.UDP.MinReplyLength, 0, 65535) }),
		kw("max_reply_length", "INT", 1, "255", func(c *cx, n *Node) { c.intVal(n, &c.chk.UDP.MaxReplyLength, 0, 65535) }),
	)
	fileSection = newSection(string(CheckFile), "FILE_CHECK checker",
		flagKw("dynamic", func(c *cx, n *Node) { c.chk.File.Dynamic = true }).since("2.3"),
		kw("track_file", "STRING", 1, "", func(c *cx, n *Node) { c.chk.File.TrackFile = n.Args[0] }),
		kw("weight", "-2147483647..2147483647 [reverse]", 1, "track_file weight", func(c *cx, n *Node) {
			w, set, rev := c.weightArgs(&Node{Pos: n.Pos, Name: n.Name, Args: append([]string{"weight"}, n.Args...)}, 0, -2147483647, 2147483647)
			if set {
				c.chk.File.Weight, c.chk.File.WeightSet, c.chk.File.Reverse = w, true, rev
			}
		}).noValue(NoValueError),
	)
	bfdCheckSection = newSection(string(CheckBFD), "BFD_CHECK checker: the real server is up while its bfd_instance's session is Up",
		kw("name", "STRING", 1, "", func(c *cx, n *Node) {
			if c.bfdName != "" {
				c.errf(n, "give one name", "(%s) BFD_CHECK - BFD %s already specified as %s", c.rs.Addr, n.Args[0], c.bfdName)
				return
			}
			c.bfdName, c.bfdNamePos = n.Args[0], n.Pos
		}),
		flagKw("alpha", func(c *cx, n *Node) { c.boolVal(n, &c.chk.Alpha) }).args("[<BOOL>]", 0),
	)
)

// parseHexString parses keepalived's free-format hex strings: groups of
// hex digits separated by spaces, each group padded to whole bytes from
// the left ("Ab12f 3" = AB 12 0F 03). With mask, X/x is a nibble to
// ignore.
func parseHexString(s string, mask bool) (data, m []byte, err error) {
	for _, g := range strings.Fields(s) {
		if len(g)%2 == 1 {
			g = g[:len(g)-1] + "0" + g[len(g)-1:]
		}
		for i := 0; i < len(g); i += 2 {
			var b, mb byte
			for j := 0; j < 2; j++ {
				ch := g[i+j]
				var v byte
				mv := byte(0xf)
				switch {
				case ch >= '0' && ch <= '9':
					v = ch - '0'
				case ch >= 'a' && ch <= 'f':
					v = ch - 'a' + 10
				case ch >= 'A' && ch <= 'F':
					v = ch - 'A' + 10
				case mask && (ch == 'x' || ch == 'X'):
					v, mv = 0, 0
				default:
					return nil, nil, strconvErr(g)
				}
				b = b<<4 | v
				mb = mb<<4 | mv
			}
			data = append(data, b)
			m = append(m, mb)
		}
	}
	if !mask {
		m = nil
	}
	return data, m, nil
}

type hexErr string

func (e hexErr) Error() string { return "'" + string(e) + "' is not hexadecimal" }

func strconvErr(g string) error { return hexErr(g) }

// checkerKw builds a checker block keyword of a real server.
func checkerKw(t CheckerType, sec *Section, status Status, note string) *Keyword {
	k := block(string(t), "{ ... }", 0, sec, func(c *cx, n *Node) {
		ch := &Checker{Pos: n.Pos, Type: t}
		switch t {
		case CheckHTTP, CheckSSL:
			ch.HTTP = &HTTPCheck{Protocol: "1.0"}
		case CheckSMTP:
			ch.SMTP = &SMTPCheck{HeloName: "smtpchecker.keepalived.org"}
		case CheckDNS:
			ch.DNS = &DNSCheck{Type: "SOA", Name: "."}
		case CheckMisc:
			ch.Misc = &MiscCheck{}
		case CheckUDP:
			ch.UDP = &UDPCheck{MaxReplyLength: 255}
		case CheckFile:
			ch.File = &FileCheck{}
		}
		saved, savedSet := c.chk, c.cset
		c.chk, c.cset = ch, newCheckSet()
		c.chkPortSet = false
		c.miscUser, c.miscGroup = "", ""
		c.bfdName = ""
		c.walk(sec, n.Children)
		keep := c.b.finishChecker(c, n, ch)
		if keep {
			c.rs.Checkers = append(c.rs.Checkers, ch)
			c.rs.checkSets = append(c.rs.checkSets, c.cset)
			c.rs.portSet = append(c.rs.portSet, c.chkPortSet)
		}
		c.chk, c.cset = saved, savedSet
	})
	k.Status, k.Note = status, note
	return k
}

var realServerSection = newSection("real_server", "Real server",
	kw("weight", "INTEGER", 1, "1", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 0, 2147483647); ok {
			c.rs.Weight = int(v)
			c.rs.weightSet = true
		}
	}),
	methodKw("lvs_method", func(c *cx) *Method { return &c.rs.Method }),
	kw("notify_up", "STRING|QUOTED_STRING [username [groupname]]", 1, "", func(c *cx, n *Node) { setScriptOnce(c, n, &c.rs.NotifyUp) }),
	kw("notify_down", "STRING|QUOTED_STRING [username [groupname]]", 1, "", func(c *cx, n *Node) { setScriptOnce(c, n, &c.rs.NotifyDown) }),
	kw("uthreshold", "INTEGER", 1, "0 (none)", func(c *cx, n *Node) { c.intVal(n, &c.rs.UThreshold, 0, 1<<31-1) }),
	kw("lthreshold", "INTEGER", 1, "0 (none)", func(c *cx, n *Node) { c.intVal(n, &c.rs.LThreshold, 0, 1<<31-1) }),
	smtpAlertKw(),
	virtualhostKw(false),
	kw("snmp_name", "STRING", 1, "", func(c *cx, n *Node) { c.rs.SNMPName = n.Args[0] }).noValue(NoValueError).note("kept for vipctl output; no SNMP"),
	inhibitKw(),
	checkerKw(CheckHTTP, httpSection, Supported, ""),
	checkerKw(CheckSSL, sslSection, Supported, ""),
	checkerKw(CheckTCP, tcpSection, Supported, ""),
	checkerKw(CheckSMTP, smtpSection, Supported, ""),
	checkerKw(CheckDNS, dnsSection, Supported, ""),
	checkerKw(CheckMisc, miscSection, Supported, ""),
	checkerKw(CheckPing, pingSection, Supported, ""),
	checkerKw(CheckUDP, udpSection, Supported, ""),
	checkerKw(CheckFile, fileSection, Supported, ""),
	checkerKw(CheckBFD, bfdCheckSection, Supported, ""),
)

func init() {
	realServerSection.addKeywords(commonTiming()...)
}

var virtualServerSection = newSection("virtual_server", "Virtual server",
	schedKw("lvs_sched"),
	alias("lb_algo", schedKw("lvs_sched"), false),
	schedFlag("flag-1", lvs.FlagSched1), schedFlag("flag-2", lvs.FlagSched2), schedFlag("flag-3", lvs.FlagSched3),
	schedFlag("sh-fallback", lvs.FlagSHFallback), schedFlag("sh-port", lvs.FlagSHPort),
	schedFlag("mh-fallback", lvs.FlagMHFallback), schedFlag("mh-port", lvs.FlagMHPort),
	schedFlag("ops", lvs.FlagOnePacket),
	schedFlag("hashed", lvs.FlagHashed).note("the hashed flag is set by the kernel itself"),
	methodKw("lvs_method", func(c *cx) *Method { return &c.vs.Method }),
	alias("lb_kind", methodKw("lvs_method", func(c *cx) *Method { return &c.vs.Method }), false),
	kw("persistence_engine", "sip", 1, "", func(c *cx, n *Node) { c.vs.PersistenceEngine = n.Args[0] }).
		status(Refused).note("IPVS persistence engines (sip) are not implemented"),
	kw("persistence_timeout", "[SECONDS]", 0, "360 when given without a value", func(c *cx, n *Node) {
		if len(n.Args) == 0 {
			c.vs.PersistenceTimeout = 360 * time.Second
			return
		}
		if v, ok := c.integer(n, 0, 1, 2678400); ok {
			c.vs.PersistenceTimeout = time.Duration(v) * time.Second
		}
	}),
	kw("persistence_granularity", "NETMASK|PREFIXLEN", 1, "/32 (/128)", func(c *cx, n *Node) {
		s := n.Args[0]
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			if bits, ok := maskBits(a); ok {
				c.vs.PersistenceGranularity = netip.PrefixFrom(a, bits)
				return
			}
		}
		if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 128 {
			c.vs.PersistenceGranularity = netip.PrefixFrom(netip.IPv6Unspecified(), v)
			return
		}
		c.errf(n, "give a netmask (255.255.255.0) or an IPv6 prefix length", "invalid persistence_granularity '%s'", s)
	}),
	kw("protocol", "TCP|UDP|SCTP", 1, "TCP", func(c *cx, n *Node) {
		switch strings.ToUpper(n.Args[0]) {
		case "TCP":
			c.vs.Protocol = lvs.TCP
		case "UDP":
			c.vs.Protocol = lvs.UDP
		case "SCTP":
			c.vs.Protocol = lvs.SCTP
		default:
			c.errf(n, "use TCP, UDP or SCTP", "unknown protocol '%s'", n.Args[0])
			return
		}
		c.vs.protoSet = true
	}),
	flagKw("ha_suspend", func(c *cx, n *Node) { c.vs.HASuspend = true }).note("the checkers run only while one of the virtual server's addresses is on the host (netlink address events, as keepalived); refused for fwmarks as keepalived does"),
	smtpAlertKw(),
	virtualhostKw(false),
	kw("snmp_name", "STRING", 1, "", func(c *cx, n *Node) { c.vs.SNMPName = n.Args[0] }).noValue(NoValueError).note("kept for vipctl output; no SNMP"),
	flagKw("omega", func(c *cx, n *Node) { c.vs.Omega = true }),
	kw("quorum", "INTEGER", 1, "1", func(c *cx, n *Node) { c.intVal(n, &c.vs.Quorum, 1, 1<<32-1) }),
	kw("hysteresis", "INTEGER", 1, "0", func(c *cx, n *Node) { c.intVal(n, &c.vs.Hysteresis, 0, 1<<32-1) }),
	kw("quorum_up", "STRING|QUOTED_STRING [username [groupname]]", 1, "", func(c *cx, n *Node) { c.vs.QuorumUp = c.script(n, 0) }),
	kw("quorum_down", "STRING|QUOTED_STRING [username [groupname]]", 1, "", func(c *cx, n *Node) { c.vs.QuorumDown = c.script(n, 0) }),
	kw("ip_family", "inet|inet6", 1, "inet", func(c *cx, n *Node) {
		switch n.Args[0] {
		case "inet":
			c.vs.family = "inet"
		case "inet6":
			c.vs.family = "inet6"
		default:
			c.errf(n, "use inet or inet6", "unknown ip_family '%s'", n.Args[0])
		}
	}),
	kw("sorry_server", "IPADDR [PORT]", 1, "", func(c *cx, n *Node) {
		ap, ok := c.addrPort(n)
		if !ok {
			return
		}
		ss := &SorryServer{Pos: n.Pos, Addr: ap}
		if c.vs.SorryServer != nil {
			ss.Method, ss.Inhibit = c.vs.SorryServer.Method, c.vs.SorryServer.Inhibit
			ss.methodSet = c.vs.SorryServer.methodSet
		}
		c.vs.SorryServer = ss
	}),
	flagKw("sorry_server_inhibit", func(c *cx, n *Node) {
		if c.vs.SorryServer == nil {
			c.errf(n, "put sorry_server_inhibit after sorry_server", "ignoring sorry_server_inhibit used before or without sorry_server")
			return
		}
		c.vs.SorryServer.Inhibit = true
	}),
	kw("sorry_server_lvs_method", "NAT|DR|TUN ...", 1, "the virtual server's", func(c *cx, n *Node) {
		if c.vs.SorryServer == nil {
			c.errf(n, "put sorry_server_lvs_method after sorry_server", "sorry_server_lvs_method used before or without sorry_server")
			return
		}
		if m, ok := c.parseMethod(n); ok {
			c.vs.SorryServer.Method = m
			c.vs.SorryServer.methodSet = true
		}
	}).noValue(NoValueError),
	inhibitKw(),
	kw("weight", "INTEGER", 1, "1", func(c *cx, n *Node) {
		if v, ok := c.integer(n, 0, 1, 2147483647); ok {
			c.vs.defaultWeight = int(v)
		}
	}).note("default weight of the real servers"),
	kw("proxy_protocol", "1|2", 1, "none", func(c *cx, n *Node) { c.intVal(n, &c.vs.ProxyProtocol, 1, 2) }).
		vipd().note("vipd extension: send a PROXY protocol header (v1 or v2) to the real servers; proxy data plane only"),
	block("real_server", "IPADDR [PORT] { ... }", 1, realServerSection, func(c *cx, n *Node) {
		ap, ok := c.addrPort(n)
		if !ok {
			return
		}
		rs := &RealServer{Pos: n.Pos, Addr: ap, Weight: 1}
		saved, savedMethod := c.cset, c.methodSet
		c.rs, c.cset = rs, newCheckSet()
		c.methodSet = false
		c.walk(realServerSection, n.Children)
		rs.cset, rs.methodSet = c.cset, c.methodSet
		c.vs.RealServers = append(c.vs.RealServers, rs)
		c.rs, c.cset, c.methodSet = nil, saved, savedMethod
	}),
)

func init() {
	virtualServerSection.addKeywords(commonTiming()...)
}

var vsGroupKw = list("virtual_server_group", "NAME { IP[-LAST|/PREFIX] [PORT] | fwmark N [inet|inet6] ... }", func(c *cx, n *Node) {
	g := &VSGroup{Pos: n.Pos, Name: n.Args[0]}
	for _, it := range n.Children {
		e := VSGroupEntry{Pos: it.Pos}
		if it.Name == "fwmark" {
			v, ok := c.integer(it, 0, 1, 1<<32-1)
			if !ok {
				continue
			}
			e.FWMark = uint32(v)
			if f := arg(it, 1); f == "inet" || f == "inet6" {
				e.Family = f
			}
			g.Entries = append(g.Entries, e)
			continue
		}
		first, last, err := parseAddrRange(it.Name)
		if err != nil {
			c.errf(it, "write IP, IP-LASTOCTET, IP-IP or IP/PREFIX, then the port", "virtual_server_group %s: %v - skipping", g.Name, err)
			continue
		}
		e.First, e.Last = first, last
		if len(it.Args) > 0 {
			p, ok := c.port(it, 0)
			if !ok {
				continue
			}
			e.Port = p
		}
		g.Entries = append(g.Entries, e)
	}
	c.b.cfg.VSGroups = append(c.b.cfg.VSGroups, g)
}).args("NAME { IP[-LAST|/PREFIX] [PORT] | fwmark N [inet|inet6] ... }", 1)

// parseAddrRange parses "IP", "A.B.C.D-E", "IP-IP" or "IP/PREFIX".
func parseAddrRange(s string) (netip.Addr, netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := parsePrefix(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
		p = p.Masked()
		last := p.Addr()
		for i := 0; i < p.Addr().BitLen()-p.Bits(); i++ {
			last = setBit(last, i)
		}
		return p.Addr(), last, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(lo)
	if err != nil {
		return a, a, errInvalidIP(lo)
	}
	if !isRange {
		return a, a, nil
	}
	b, err := netip.ParseAddr(hi)
	if err != nil {
		// last part only: 192.168.200.1-10 (IPv4 last octet, IPv6 last group)
		if a.Is4() {
			v, err := strconv.ParseUint(hi, 10, 8)
			if err != nil {
				return a, a, errInvalidIP(s)
			}
			x := a.As4()
			x[3] = byte(v)
			b = netip.AddrFrom4(x)
		} else {
			v, err := strconv.ParseUint(hi, 16, 16)
			if err != nil {
				return a, a, errInvalidIP(s)
			}
			x := a.As16()
			x[14], x[15] = byte(v>>8), byte(v)
			b = netip.AddrFrom16(x)
		}
	}
	if b.Is4() != a.Is4() || b.Less(a) {
		return a, a, errInvalidIP(s)
	}
	return a, b, nil
}

type errInvalidIP string

func (e errInvalidIP) Error() string { return "invalid address or range '" + string(e) + "'" }

func setBit(a netip.Addr, bit int) netip.Addr {
	b := a.AsSlice()
	idx := len(b) - 1 - bit/8
	b[idx] |= 1 << (bit % 8)
	r, _ := netip.AddrFromSlice(b)
	return r
}

func newVirtualServer(pos Pos) *VirtualServer {
	return &VirtualServer{Pos: pos, Scheduler: "", Protocol: lvs.TCP, Quorum: 1, defaultWeight: 1}
}

var virtualServerKw = block("virtual_server", "IP [PORT] | fwmark N | group NAME { ... }", 1, virtualServerSection, func(c *cx, n *Node) {
	vs := newVirtualServer(n.Pos)
	switch n.Args[0] {
	case "fwmark":
		vs.Kind = VSFWMark
		v, ok := c.integer(n, 1, 1, 1<<32-1)
		if !ok {
			return
		}
		vs.FWMark = uint32(v)
	case "group":
		vs.Kind = VSGroupK
		if len(n.Args) < 2 {
			c.errf(n, "write virtual_server group NAME", "virtual_server group needs a name")
			return
		}
		vs.Group = n.Args[1]
	default:
		vs.Kind = VSAddr
		ap, ok := c.addrPort(n)
		if !ok {
			return
		}
		vs.Addr = ap
		vs.IPv6 = ap.Addr().Is6()
	}
	c.vs, c.cset = vs, newCheckSet()
	c.methodSet = false
	c.walk(virtualServerSection, n.Children)
	vs.cset, vs.methodSet = c.cset, c.methodSet
	if len(vs.RealServers) == 0 && c.b.v24() {
		// keepalived 2.4 drops a virtual server without real servers.
		c.errf(n, "add a real_server", "Virtual server %s has no real servers - ignoring", strings.Join(n.Args, " "))
		c.vs, c.cset = nil, nil
		return
	}
	c.b.cfg.VirtualServers = append(c.b.cfg.VirtualServers, vs)
	c.vs, c.cset = nil, nil
})

// sslField sets one SSL setting; keepalived warns when it is given twice.
func sslField(name, what string, dst func(s *SSL) *string) *Keyword {
	return kw(name, "STRING", 1, "", func(c *cx, n *Node) {
		p := dst(c.b.cfg.SSL)
		if *p != "" {
			c.warnf(n, "give "+name+" once", "SSL %s already specified - replacing", what)
		}
		*p = n.Args[0]
	})
}

var sslSectionTop = newSection("SSL", "SSL_GET client context",
	sslField("password", "password", func(s *SSL) *string { return &s.Password }).noValue(NoValueError),
	sslField("ca", "cafile", func(s *SSL) *string { return &s.CA }).noValue(NoValueError),
	sslField("certificate", "certfile", func(s *SSL) *string { return &s.Certificate }).noValue(NoValueError),
	sslField("key", "keyfile", func(s *SSL) *string { return &s.Key }).noValue(NoValueError),
)
