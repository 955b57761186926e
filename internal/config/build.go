package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// builder turns the parse tree into the model, applying keepalived's
// defaults and range checks; validate.go then checks the whole.
type builder struct {
	diags
	opts Options
	cfg  *Config

	// set records which inheritable options were given explicitly.
	instGARP      map[*Instance]*garpSet
	globalSet     map[string]bool
	bfdInstances  map[string]bool
	ruleNoPref    uint32
	scriptUserPos Pos
}

// garpSet remembers which per-instance GARP options were given, so the
// others inherit the global values at the end (global_defs may come after
// the instance in the file).
type garpSet struct {
	masterDelay, masterRepeat, lowerDelay, lowerRepeat, refresh, refreshRepeat, extraIf bool
	version, downTimer, lowerNoAdvert, higherSend, skipCheck, strict, accept            bool
	unicastKeyword                                                                      *Node
}

func newBuilder(opts Options, prior Diagnostics) *builder {
	b := &builder{opts: opts, cfg: &Config{}, instGARP: map[*Instance]*garpSet{}, globalSet: map[string]bool{}}
	b.list = prior
	b.cfg.Global = defaultGlobal()
	return b
}

// cx is the context keyword handlers run in: the objects of the enclosing
// blocks.
type cx struct {
	b    *builder
	sec  *Section
	inst *Instance
	sg   *SyncGroup
	scr  *VRRPScript
	tp   *TrackProcess
	tf   *TrackFile
	bfd  *BFDInstance
	gg   *GARPGroup
	tg   *TrackGroup
	vs   *VirtualServer
	rs   *RealServer
	chk  *Checker
	cset *checkSet
	url  *URL

	methodSet           bool
	chkPortSet          bool
	miscUser, miscGroup string
	bfdName             string
	bfdNamePos          Pos
}

func (b *builder) build(nodes []*Node) *Config {
	c := &cx{b: b, sec: topSection}
	c.walk(topSection, nodes)
	b.finish()
	b.validate()
	return b.cfg
}

// walk runs the handlers of the nodes of a section.
func (c *cx) walk(sec *Section, nodes []*Node) {
	saved := c.sec
	c.sec = sec
	defer func() { c.sec = saved }()
	for _, n := range nodes {
		k := sec.lookup(n.Name)
		if k == nil {
			continue // reported by the parser
		}
		if len(n.Args) < k.Min {
			hint := fmt.Sprintf("write: %s %s", k.Name, k.Args)
			switch k.NoValue {
			case NoValueAborts:
				c.b.add(n.Pos, Fatal, n.Name, hint, "missing parameter after keyword '%s'", n.Name).Exit = ExitProgramError
			case NoValueIgnored:
				c.b.add(n.Pos, Notice, n.Name, hint, "'%s' without a value is ignored", n.Name)
			default:
				c.b.add(n.Pos, Error, n.Name, hint, "'%s' without a value - ignoring", n.Name)
			}
			continue
		}
		if k.Deprecated != "" && k.Warn {
			c.b.add(n.Pos, Warning, n.Name, "use '"+k.Deprecated+"'", "'%s' is deprecated", n.Name)
		}
		if k.Since != "" && versionBefore(c.b.opts.KeepalivedVersion, k.Since) {
			// The chosen keepalived does not know it: it reports an
			// unknown keyword and skips it (a block with its contents).
			d := c.b.add(n.Pos, Error, n.Name, "keepalived "+k.Since+" added it: judge with --keepalived-version 2.4 if your keepalived is that recent",
				"unknown keyword '%s' for keepalived %s (added in keepalived %s)", n.Name, c.b.opts.KeepalivedVersion, k.Since)
			if c.b.opts.Daemon {
				d.Exit = ExitConfig // never run without what the file asks for
			}
			continue
		}
		switch k.Status {
		case Ignored:
			c.b.add(n.Pos, Notice, n.Name, k.Note, "ignored by vipd")
		case NotYet:
			c.b.add(n.Pos, Notice, n.Name, k.Note, "not yet implemented by vipd")
		case Refused:
			sev := Notice
			if c.b.opts.Dataplane != "" {
				sev = Error
			}
			d := c.b.add(n.Pos, sev, n.Name, k.Note, "not supported by vipd; the daemon refuses this configuration")
			if sev == Error {
				d.Exit = ExitConfig // the daemon cannot run it
			}
		}
		if k.set != nil {
			k.set(c, n)
		} else if k.Block != nil && k.Status != Supported {
			c.walk(k.Block, n.Children)
		}
	}
}

// Value helpers. Each reports a diagnostic naming the position and the
// keyword when the value is bad, and returns ok=false so that the caller
// keeps the default, as keepalived does.

func (c *cx) errf(n *Node, hint, format string, args ...any) {
	c.b.add(n.Pos, Error, n.Name, hint, format, args...)
}

func (c *cx) warnf(n *Node, hint, format string, args ...any) {
	c.b.add(n.Pos, Warning, n.Name, hint, format, args...)
}

func arg(n *Node, i int) string {
	if i < len(n.Args) {
		return n.Args[i]
	}
	return ""
}

// integer parses argument i as an integer in [lo, hi].
func (c *cx) integer(n *Node, i int, lo, hi int64) (int64, bool) {
	s := arg(n, i)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		c.errf(n, fmt.Sprintf("give an integer between %d and %d", lo, hi), "invalid number '%s'", s)
		return 0, false
	}
	if v < lo || v > hi {
		c.errf(n, fmt.Sprintf("give a value between %d and %d", lo, hi), "number '%s' outside range [%d, %d]", s, lo, hi)
		return 0, false
	}
	return v, true
}

// intVal sets *dst from argument 0 when it is valid.
func (c *cx) intVal(n *Node, dst *int, lo, hi int64) bool { return c.intArg(n, 0, dst, lo, hi) }

// intArg sets *dst from argument i when it is valid.
func (c *cx) intArg(n *Node, i int, dst *int, lo, hi int64) bool {
	v, ok := c.integer(n, i, lo, hi)
	if ok {
		*dst = int(v)
	}
	return ok
}

// seconds parses a decimal number of seconds (resolution 1 µs) in
// [lo, hi] seconds.
func (c *cx) seconds(n *Node, i int, lo, hi float64) (time.Duration, bool) {
	s := arg(n, i)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpP_") {
		c.errf(n, "give a number of seconds, e.g. 1 or 0.5", "invalid time value '%s'", s)
		return 0, false
	}
	if f < lo || f > hi {
		c.errf(n, fmt.Sprintf("give a value between %g and %g seconds", lo, hi), "time value '%s' outside range [%g, %g]", s, lo, hi)
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

// durVal sets *dst from argument 0 (seconds) when it is valid.
func (c *cx) durVal(n *Node, dst *time.Duration, lo, hi float64) bool {
	v, ok := c.seconds(n, 0, lo, hi)
	if ok {
		*dst = v
	}
	return ok
}

// boolOpt parses an optional <BOOL> argument: absent means true.
func (c *cx) boolOpt(n *Node) (bool, bool) {
	if len(n.Args) == 0 {
		return true, true
	}
	switch strings.ToLower(n.Args[0]) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	c.errf(n, "give one of on|off|true|false|yes|no", "invalid boolean '%s'", n.Args[0])
	return false, false
}

func (c *cx) boolVal(n *Node, dst *bool) {
	if v, ok := c.boolOpt(n); ok {
		*dst = v
	}
}

func (c *cx) boolPtr(n *Node, dst **bool) {
	if v, ok := c.boolOpt(n); ok {
		*dst = &v
	}
}

// addr parses argument i as an IP address.
func (c *cx) addr(n *Node, i int) (netip.Addr, bool) {
	s := arg(n, i)
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" && !a.Is6() {
		c.errf(n, "give an IPv4 or IPv6 address", "invalid IP address '%s'", s)
		return netip.Addr{}, false
	}
	return a, true
}

// addrPort parses "IPADDR [PORT]" from the first two arguments, as
// sorry_server, real_server and virtual_server write it; the port is 0
// when absent.
func (c *cx) addrPort(n *Node) (netip.AddrPort, bool) {
	a, ok := c.addr(n, 0)
	if !ok {
		return netip.AddrPort{}, false
	}
	var p uint16
	if len(n.Args) > 1 {
		if p, ok = c.port(n, 1); !ok {
			return netip.AddrPort{}, false
		}
	}
	return netip.AddrPortFrom(a, p), true
}

// port parses argument i as a port number.
func (c *cx) port(n *Node, i int) (uint16, bool) {
	v, ok := c.integer(n, i, 0, 65535)
	return uint16(v), ok
}

// weightArgs parses "weight N [reverse|noreverse|no_reverse]" starting at
// argument i.
func (c *cx) weightArgs(n *Node, i int, lo, hi int64) (w int, set, reverse bool) {
	for ; i < len(n.Args); i++ {
		switch n.Args[i] {
		case "weight":
			if i+1 >= len(n.Args) {
				c.errf(n, "write weight N", "weight without a value")
				return
			}
			v, err := strconv.ParseInt(n.Args[i+1], 10, 64)
			if err != nil || v < lo || v > hi {
				c.errf(n, fmt.Sprintf("give a weight between %d and %d", lo, hi), "weight '%s' invalid or outside range [%d, %d]", n.Args[i+1], lo, hi)
				return
			}
			w, set = int(v), true
			i++
		case "reverse":
			reverse = true
		case "noreverse", "no_reverse":
			reverse = false
		default:
			c.errf(n, "expected weight N [reverse]", "unknown option '%s'", n.Args[i])
		}
	}
	return
}

// script parses "SCRIPT [USER [GROUP]]": SCRIPT is one word (quote it to
// give arguments), split into argv as keepalived splits it.
func (c *cx) script(n *Node, from int) *Script {
	cmd := arg(n, from)
	argv, err := splitCommand(cmd)
	if err != nil {
		c.errf(n, "check the quotes and escapes of the command", "cannot parse script '%s': %v", cmd, err)
		return nil
	}
	if len(argv) == 0 {
		c.errf(n, "give the path of the script", "empty script")
		return nil
	}
	s := &Script{Pos: n.Pos, Argv: argv, User: arg(n, from+1), Group: arg(n, from+2)}
	return s
}

// splitCommand splits a command line as keepalived does for scripts:
// whitespace separates words; single and double quotes group; backslash
// escapes (\n, \t, \xHH, \NNN, \cC, \C) are interpreted.
func splitCommand(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	have := false
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0 && ch == quote:
			quote = 0
		case quote == 0 && (ch == '\'' || ch == '"'):
			quote = ch
			have = true
		case quote == 0 && (ch == ' ' || ch == '\t'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		case ch == '\\' && quote != '\'':
			i++
			if i >= len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			r, adv := unescape(s[i:])
			cur.WriteString(r)
			i += adv - 1
			have = true
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("missing terminating %c", quote)
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

// unescape interprets the escape at the start of s (after the backslash)
// and returns the text and the number of bytes used.
func unescape(s string) (string, int) {
	switch s[0] {
	case 'a':
		return "\a", 1
	case 'b':
		return "\b", 1
	case 'E', 'e':
		return "\x1b", 1
	case 'f':
		return "\f", 1
	case 'n':
		return "\n", 1
	case 'r':
		return "\r", 1
	case 't':
		return "\t", 1
	case 'v':
		return "\v", 1
	case 'x':
		j := 1
		for j < len(s) && j < 3 && isHex(s[j]) {
			j++
		}
		if j == 1 {
			return "x", 1
		}
		v, _ := strconv.ParseUint(s[1:j], 16, 8)
		return string([]byte{byte(v)}), j
	case 'c':
		if len(s) > 1 {
			return string([]byte{s[1] & 0x1f}), 2
		}
		return "c", 1
	}
	if s[0] >= '0' && s[0] <= '7' {
		j := 0
		for j < len(s) && j < 3 && s[j] >= '0' && s[j] <= '7' {
			j++
		}
		v, _ := strconv.ParseUint(s[:j], 8, 16)
		return string([]byte{byte(v)}), j
	}
	return s[:1], 1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// names collects the words of a list block (one name per line).
func names(n *Node) []string {
	var out []string
	for _, ch := range n.Children {
		out = append(out, ch.Name)
		out = append(out, ch.Args...)
	}
	return out
}
