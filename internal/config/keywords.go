package config

import (
	"sort"
)

// Status says what vipd does with a keyword keepalived accepts.
type Status int

// Keyword statuses.
const (
	// Supported keywords are parsed into the model and acted upon.
	Supported Status = iota
	// Ignored keywords are accepted and noted, without effect in vipd
	// (SNMP, DBus, process scheduling, ...).
	Ignored
	// Refused keywords are accepted by `vipd -t` (which judges a
	// configuration as keepalived does) but make the daemon refuse to run
	// the configuration, because vipd cannot honour them.
	Refused
	// NotYet keywords are parsed, but vipd does not act on them yet: it
	// runs without them, with a notice (vipd -t) or a warning (daemon).
	NotYet
)

// String names the status as docs/compat.md does.
func (s Status) String() string {
	switch s {
	case Supported:
		return "supported"
	case Ignored:
		return "ignored"
	case Refused:
		return "refused"
	case NotYet:
		return "not yet"
	}
	return "?"
}

// NoValue says what keepalived 2.2.7 does with a keyword that takes a
// value and is given none. Found by running keepalived -t on each keyword
// without its value; where keepalived crashed (SSL_GET http_protocol and
// virtualhost, bfd_instance), vipd reports an error.
type NoValue int

const (
	// NoValueAborts: keepalived aborts the parse
	// (KEEPALIVED_EXIT_PROGRAM_ERROR); most keywords.
	NoValueAborts NoValue = iota
	// NoValueError: keepalived reports an error and goes on (exit 5).
	NoValueError
	// NoValueIgnored: keepalived accepts the keyword without its value.
	NoValueIgnored
)

// Keyword is one entry of the keyword table, the one source of what vipd
// knows of a keyword. The table drives parsing (which keywords exist
// where, which open blocks), the construction of the model (set), the
// arity check (Min, NoValue), the status notices, and docs/compat.md
// (Args, Default, Status, Note). An alias (Deprecated) takes its
// target's Status, Note and NoValue when both are in one section.
type Keyword struct {
	Name    string
	Args    string // argument syntax, as keepalived.conf(5) writes it
	Min     int    // arguments keepalived requires
	NoValue NoValue
	Default string // keepalived's default, for the documentation
	Status  Status
	Note    string // what vipd does differently, or why it ignores/refuses
	// Deprecated names the keyword to use instead; keepalived accepts
	// the old one. Warn says whether keepalived 2.2 prints a deprecation
	// warning (which makes keepalived -t fail).
	Deprecated string
	Warn       bool
	// VipdOnly marks vipd's extensions (unknown to keepalived).
	VipdOnly bool
	// Since is the keepalived version that introduced a keyword unknown
	// to keepalived 2.2.7 (which vipd's side-by-side tests run against);
	// "" for keywords 2.2.7 knows.
	Since string
	// Block holds the sub-keywords of a block keyword; List marks a block
	// of free-form items (addresses, names, routes).
	Block *Section
	List  bool
	// OptionalBlock: the keyword may stand alone or open its Block.
	OptionalBlock bool

	set func(c *cx, n *Node)
}

// Section is the set of keywords valid in one block.
type Section struct {
	Name     string
	Doc      string
	Keywords []*Keyword
	idx      map[string]*Keyword
}

func newSection(name, doc string, kws ...*Keyword) *Section {
	s := &Section{Name: name, Doc: doc}
	s.addKeywords(kws...)
	return s
}

func (s *Section) addKeywords(kws ...*Keyword) {
	if s.idx == nil {
		s.idx = map[string]*Keyword{}
	}
	for _, k := range kws {
		if _, dup := s.idx[k.Name]; dup {
			panic("config: duplicate keyword " + k.Name + " in " + s.Name)
		}
		s.idx[k.Name] = k
		s.Keywords = append(s.Keywords, k)
	}
	// Aliases follow their targets, whichever was added first.
	for _, a := range s.Keywords {
		if a.Deprecated == "" {
			continue
		}
		if t := s.idx[a.Deprecated]; t != nil {
			a.Status, a.Note, a.NoValue = t.Status, t.Note, t.NoValue
		}
	}
}

func (s *Section) lookup(name string) *Keyword { return s.idx[name] }

// Lookup returns the keyword of this section with the given name.
func (s *Section) Lookup(name string) *Keyword { return s.idx[name] }

// Sections returns every section of the keyword table, the top level
// first, in documentation order.
func Sections() []*Section {
	var out []*Section
	seen := map[*Section]bool{}
	var walk func(s *Section)
	walk = func(s *Section) {
		if seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		for _, k := range s.Keywords {
			if k.Block != nil {
				walk(k.Block)
			}
		}
	}
	walk(topSection)
	return out
}

// sectionsWith lists the sections in which a keyword is valid.
func sectionsWith(name string) []string {
	var out []string
	for _, s := range Sections() {
		if s.lookup(name) != nil {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	if len(out) > 3 {
		out = append(out[:3], "...")
	}
	return out
}

// Keyword constructors keep the tables compact.

// kw is a supported keyword with a value.
func kw(name, args string, min int, def string, set func(c *cx, n *Node)) *Keyword {
	return &Keyword{Name: name, Args: args, Min: min, Default: def, set: set}
}

// flag is a supported keyword without arguments (or with an optional
// boolean).
func flagKw(name string, set func(c *cx, n *Node)) *Keyword {
	return &Keyword{Name: name, set: set}
}

// ign is an accepted keyword without effect in vipd.
func ign(name, args string, min int, note string) *Keyword {
	return &Keyword{Name: name, Args: args, Min: min, Status: Ignored, Note: note}
}

// refuse is an accepted keyword vipd cannot honour.
func refuse(name, args string, min int, note string) *Keyword {
	return &Keyword{Name: name, Args: args, Min: min, Status: Refused, Note: note}
}

// block is a supported block keyword.
func block(name, args string, min int, sec *Section, set func(c *cx, n *Node)) *Keyword {
	return &Keyword{Name: name, Args: args, Min: min, Block: sec, set: set}
}

// list is a supported block of items.
func list(name, args string, set func(c *cx, n *Node)) *Keyword {
	return &Keyword{Name: name, Args: args, List: true, set: set}
}

func (k *Keyword) note(s string) *Keyword { k.Note = s; return k }

// notYet marks a keyword vipd parses but does not act on yet; note says
// what happens instead.
func (k *Keyword) notYet(note string) *Keyword { k.Status, k.Note = NotYet, note; return k }

// noValue says what keepalived does when the keyword has no value.
func (k *Keyword) noValue(v NoValue) *Keyword      { k.NoValue = v; return k }
func (k *Keyword) status(s Status) *Keyword        { k.Status = s; return k }
func (k *Keyword) vipd() *Keyword                  { k.VipdOnly = true; return k }
func (k *Keyword) args(a string, min int) *Keyword { k.Args, k.Min = a, min; return k }

// alias makes a deprecated synonym of k.
func alias(old string, k *Keyword, warn bool) *Keyword {
	a := *k
	a.Name = old
	a.Deprecated = k.Name
	a.Warn = warn
	return &a
}

func (k *Keyword) since(v string) *Keyword { k.Since = v; return k }

// checkInt makes an ignored keyword check its integer argument as
// keepalived does, so that vipd -t rejects what keepalived -t rejects.
func (k *Keyword) checkInt(lo, hi int64) *Keyword {
	k.set = func(c *cx, n *Node) {
		for i := range n.Args {
			c.integer(n, i, lo, hi)
		}
	}
	return k
}

// checkBool makes an ignored keyword check its optional <BOOL> argument.
func (k *Keyword) checkBool() *Keyword {
	k.set = func(c *cx, n *Node) { c.boolOpt(n) }
	return k
}
