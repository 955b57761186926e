package config

import (
	"fmt"
	"os"
	"strings"
)

// Options control loading and validation.
type Options struct {
	// ConfigID selects @id conditional lines (keepalived -i/--config-id);
	// empty means the short host name.
	ConfigID string
	// Dataplane is the data plane the daemon will run: "" (unspecified:
	// judge the configuration as keepalived -t does, refusing nothing
	// keepalived accepts), "proxy", "ipvs" or "xdp". The daemon resolves "auto"
	// before loading. With a data plane set, features vipd cannot run on
	// it (and keywords vipd refuses) are errors.
	Dataplane string
	// Host answers the questions keepalived asks the running system at
	// load time (do the interfaces exist, are scripts present and
	// secure). Nil skips those checks.
	Host Host
	// Limits cap includes, expansion and line lengths.
	Limits Limits
	// ReadFile and Glob replace os.ReadFile and filepath.Glob (tests).
	ReadFile func(string) ([]byte, error)
	Glob     func(string) ([]string, error)
	// RandomSeed seeds ${_RANDOM}; 0 uses a fixed seed.
	RandomSeed int64
	// KeepalivedVersion is the keepalived whose judgement vipd applies
	// ("2.2", the default, what Debian 12 ships; or "2.4"; a patch level
	// is allowed: "2.4.3"): a keyword that version does not know (Keyword.Since)
	// is an unknown keyword, reported and skipped as that keepalived does.
	// ParseKeepalivedVersion checks a value.
	KeepalivedVersion string
	// Daemon: the daemon is loading the configuration. A keyword the
	// chosen keepalived does not know is then refused (the daemon does
	// not start) rather than skipped: skipping auth_hmac, say, would send
	// unsigned adverts that the peers reject.
	Daemon bool
}

// KeepalivedVersions are the versions Options.KeepalivedVersion accepts:
// the two vipd's side-by-side tests run against (2.2.7 and 2.4.3).
var KeepalivedVersions = []string{"2.2", "2.4"}

// DefaultKeepalivedVersion is the version judged by default.
const DefaultKeepalivedVersion = "2.2"

// ParseKeepalivedVersion returns the minor version ("2.2" or "2.4") of a
// --keepalived-version value, which may carry a patch level.
func ParseKeepalivedVersion(v string) (string, error) {
	if v == "" {
		return DefaultKeepalivedVersion, nil
	}
	mm := v
	if parts := strings.Split(v, "."); len(parts) == 3 {
		mm = parts[0] + "." + parts[1]
	}
	for _, k := range KeepalivedVersions {
		if mm == k {
			return k, nil
		}
	}
	return "", fmt.Errorf("keepalived version %q: vipd judges as keepalived %s", v, strings.Join(KeepalivedVersions, " or "))
}

// v24 reports whether the configuration is judged as keepalived 2.4.
func (b *builder) v24() bool { return !versionBefore(b.opts.KeepalivedVersion, "2.4") }

// versionBefore reports whether keepalived version a (major.minor) is
// older than b.
func versionBefore(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || am == bm && an < bn
}

func (o Options) withDefaults() Options {
	if o.ConfigID == "" {
		o.ConfigID = ShortHostname()
	}
	if v, err := ParseKeepalivedVersion(o.KeepalivedVersion); err == nil {
		o.KeepalivedVersion = v
	} else {
		o.KeepalivedVersion = DefaultKeepalivedVersion
	}
	return o
}

// ShortHostname returns the host name up to the first dot, keepalived's
// default config id.
func ShortHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h
}

// DefaultPath is keepalived's default configuration file.
const DefaultPath = "/etc/keepalived/keepalived.conf"

// Load reads, parses and validates the configuration file at path. The
// Config is nil only when the main file cannot be read; otherwise it holds
// whatever could be built, and the diagnostics say what was wrong (as
// keepalived, vipd drops what it cannot use and reports it).
func Load(path string, opts Options) (*Config, Diagnostics) {
	read := opts.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	src, err := read(path)
	if err != nil {
		d := Diagnostic{Pos: Pos{File: path}, Severity: Fatal, Keyword: "", Msg: fmt.Sprintf("cannot read configuration: %v", err),
			Hint: "give an existing file with -f", Exit: ExitNoConfig}
		return nil, Diagnostics{d}
	}
	return Parse(path, src, opts)
}

// Check loads a configuration as `vipd -t` judges it. With
// opts.Dataplane empty it judges as keepalived -t does, unless the
// configuration itself selects a data plane (global_defs vipd_dataplane
// proxy|ipvs), which it is then also validated for. "auto" is treated as
// empty: the daemon resolves it.
func Check(path string, opts Options) (*Config, Diagnostics) {
	if opts.Dataplane == DataplaneAuto {
		opts.Dataplane = ""
	}
	cfg, diags := Load(path, opts)
	if opts.Dataplane == "" && cfg != nil {
		if dp := cfg.Global.Dataplane; dp == DataplaneProxy || dp == DataplaneIPVS || dp == DataplaneXDP {
			opts.Dataplane = dp
			cfg, diags = Load(path, opts)
		}
	}
	return cfg, diags
}

// Parse is Load for configuration text already in memory; name is its
// file name (for positions and relative includes).
func Parse(name string, src []byte, opts Options) (*Config, Diagnostics) {
	opts = opts.withDefaults()
	r := newReader(opts)
	r.lexSource(name, src)
	p := &parser{lines: r.out}
	p.list = r.list
	nodes := p.parseBlock(topSection, 0, Pos{})
	b := newBuilder(opts, p.list)
	cfg := b.build(nodes)
	cfg.Files = r.files
	return cfg, b.list
}

// Node is one keyword line of the parse tree with its block, if any. In a
// list block (virtual_ipaddress, notification_email, ...) each line is a
// Node whose Name is its first word.
type Node struct {
	Pos      Pos
	Name     string
	Args     []string
	Block    bool // the keyword opened a block
	Children []*Node
}

// ParseTree lexes and parses configuration text into its tree without
// building the model (for tools and fuzzing).
func ParseTree(name string, src []byte, opts Options) ([]*Node, Diagnostics) {
	opts = opts.withDefaults()
	r := newReader(opts)
	r.lexSource(name, src)
	p := &parser{lines: r.out}
	p.list = r.list
	return p.parseBlock(topSection, 0, Pos{}), p.list
}

type parser struct {
	diags
	lines []Line
	i     int
}

// parseBlock parses keyword lines of section sec until the '}' closing the
// block (depth > 0) opened at open, or the end of input.
func (p *parser) parseBlock(sec *Section, depth int, open Pos) []*Node {
	var nodes []*Node
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		p.i++
		if l.Close {
			if depth == 0 {
				p.add(l.Pos, Error, "}", "remove it or add the block it should close", "extra '}' found")
				continue
			}
			return nodes
		}
		if len(l.Words) == 0 {
			p.add(l.Pos, Error, "{", "put '{' after the keyword that opens the block", "unexpected '{' - ignoring")
			continue
		}
		name := l.Words[0]
		kw := sec.lookup(name)
		if kw == nil {
			p.unknown(sec, l)
			if l.Open {
				p.add(l.Pos, Error, name, "", "unexpected '{' - ignoring")
			}
			continue
		}
		n := &Node{Pos: l.Pos, Name: name, Args: l.Words[1:]}
		if kw.Block != nil || kw.List {
			n.Block = true
			if !l.Open {
				if p.i < len(p.lines) && p.lines[p.i].Open && len(p.lines[p.i].Words) == 0 {
					p.i++
				} else if kw.OptionalBlock {
					n.Block = false
					nodes = append(nodes, n)
					continue
				} else {
					p.add(l.Pos, Error, name, "add '{' after "+name, "missing '{' at beginning of configuration block")
				}
			}
			if kw.List {
				n.Children = p.parseList(name, depth+1, l.Pos)
			} else {
				n.Children = p.parseBlock(kw.Block, depth+1, l.Pos)
			}
		} else if l.Open {
			p.add(l.Pos, Error, name, name+" takes no block; remove the '{'", "unexpected '{' - ignoring")
		}
		nodes = append(nodes, n)
	}
	if depth == 1 {
		p.add(open, Error, sec.Name, "add the '}' that closes it", "block never closed: end of configuration inside it")
	}
	return nodes
}

// parseList reads the lines of a list block: each is an item, not a
// keyword.
func (p *parser) parseList(name string, depth int, open Pos) []*Node {
	var nodes []*Node
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		p.i++
		if l.Close {
			return nodes
		}
		if len(l.Words) == 0 {
			p.add(l.Pos, Error, name, "a "+name+" block holds one item per line, without blocks", "unexpected '{' - ignoring")
			continue
		}
		if l.Open {
			p.add(l.Pos, Error, name, "a "+name+" block holds one item per line, without blocks", "unexpected '{' - ignoring")
		}
		nodes = append(nodes, &Node{Pos: l.Pos, Name: l.Words[0], Args: l.Words[1:]})
	}
	if depth == 1 {
		p.add(open, Error, name, "add the '}' that closes it", "block never closed: end of configuration inside it")
	}
	return nodes
}

// unknown reports an unknown keyword with the nearest known one.
func (p *parser) unknown(sec *Section, l Line) {
	name := l.Words[0]
	hint := suggest(sec, name)
	p.add(l.Pos, Error, name, hint, "unknown keyword '%s' in %s", name, sec.Name)
}

// suggest proposes what the user may have meant.
func suggest(sec *Section, name string) string {
	if best := nearest(sec, name); best != "" {
		return fmt.Sprintf("did you mean '%s'?", best)
	}
	if where := sectionsWith(name); len(where) > 0 {
		return fmt.Sprintf("'%s' belongs in %s, not in %s", name, strings.Join(where, " or "), sec.Name)
	}
	return "see docs/compat.md for the keywords of " + sec.Name
}

// nearest returns the keyword of sec closest to name: one it is a prefix
// of (status -> status_code) or within a small edit distance.
func nearest(sec *Section, name string) string {
	lname := strings.ToLower(name)
	best, bestD := "", 1<<30
	for _, k := range sec.Keywords {
		kn := strings.ToLower(k.Name)
		if k.Deprecated != "" {
			continue
		}
		d := levenshtein(lname, kn)
		if len(lname) >= 3 && (strings.HasPrefix(kn, lname+"_") || strings.HasPrefix(kn, lname)) {
			d = 1 // a truncated keyword
		}
		if d < bestD || (d == bestD && k.Name < best) {
			best, bestD = k.Name, d
		}
	}
	limit := len(name) / 3
	if limit < 2 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
