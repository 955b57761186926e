// Package manpage turns the --help text of vipd and vipctl into man pages
// (roff, the man(7) macros), so the manual and --help come from one source
// and cannot disagree: cmd/mkman runs the binaries and calls this package.
//
// Help text is read by layout, the way a person reads it: a line at column
// 0 that ends with a colon is a heading ("Options:"); other lines at
// column 0 make paragraphs; an indented block is a list of items, each a
// term ("-f, --use-file=FILE", "checks") and its description, which may
// continue on deeper-indented lines; an indented line that is neither is
// kept verbatim. Rendering is deterministic: the same text, name, version
// and date give the same bytes.
package manpage

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Kind is the kind of a Block.
type Kind int

// The kinds of blocks help text is made of.
const (
	Para     Kind = iota // a paragraph of running text
	Heading              // "Options:" and the like: a subsection
	Item                 // a term and its description
	Verbatim             // indented lines kept as they are
	Usage                // a command's synopsis line, in Text
)

// Block is one piece of parsed help text.
type Block struct {
	Kind  Kind
	Text  string   // Para and Heading text; Item term
	Desc  string   // Item description
	Lines []string // Verbatim lines, without their common indentation
}

// Parse splits help text into blocks.
func Parse(help string) []Block {
	var blocks []Block
	lines := strings.Split(strings.ReplaceAll(help, "\t", "    "), "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			blocks = append(blocks, Block{Kind: Para, Text: strings.Join(para, " ")})
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " ")
		ind := indent(line)
		switch {
		case line == "":
			flush()
		case ind == 0 && strings.HasSuffix(line, ":") && len(para) == 0:
			blocks = append(blocks, Block{Kind: Heading, Text: strings.TrimSuffix(line, ":")})
		case ind == 0:
			para = append(para, line)
		default:
			flush()
			// An indented block: items at its first line's indentation,
			// continuation lines deeper.
			base := ind
			j := i
			for j < len(lines) && strings.TrimSpace(lines[j]) != "" && indent(lines[j]) >= base {
				j++
			}
			blocks = append(blocks, items(lines[i:j], base)...)
			i = j - 1
		}
	}
	flush()
	return blocks
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// items parses one indented block.
func items(lines []string, base int) []Block {
	var out []Block
	var verb []string
	flushVerb := func() {
		if len(verb) > 0 {
			out = append(out, Block{Kind: Verbatim, Lines: verb})
			verb = nil
		}
	}
	// An option without a short form is indented to line up with the
	// long ones ("      --control=PATH"): it starts an item too.
	starts := func(l string) bool {
		n := indent(l)
		return n == base || (n <= base+4 && strings.HasPrefix(strings.TrimSpace(l), "-"))
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " ")
		if !starts(line) {
			// A deeper line with no item above it.
			verb = append(verb, line[base:])
			continue
		}
		text := strings.TrimSpace(line)
		var desc []string
		j := i + 1
		for j < len(lines) && !starts(lines[j]) {
			desc = append(desc, strings.TrimSpace(lines[j]))
			j++
		}
		term, rest := splitTerm(text)
		if rest != "" {
			desc = append([]string{rest}, desc...)
		}
		if len(desc) == 0 {
			verb = append(verb, text)
			continue
		}
		flushVerb()
		out = append(out, Block{Kind: Item, Text: term, Desc: strings.Join(desc, " ")})
		i = j - 1
	}
	flushVerb()
	return out
}

// placeholder matches the argument words of options: FILE, VIP:PORT,
// A[,B...], auto|proxy|ipvs (after an = sign), 1.0|1.0c|1.1.
var placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_:.]*(\[[^ ]*\])?$`)

// splitTerm separates an item's term from the description on its line.
// An option term is its dashed words and their placeholders
// ("-o, --output FORMAT"); any other term ends at the first run of two
// spaces ("checks      show every health checker").
func splitTerm(s string) (term, desc string) {
	if strings.HasPrefix(s, "-") {
		f := strings.Fields(s)
		n := 0
		for n < len(f) {
			w := f[n]
			if strings.HasPrefix(w, "-") || (n > 0 && placeholder.MatchString(w)) {
				n++
				continue
			}
			break
		}
		term = strings.Join(f[:n], " ")
		// Keep the description's own spacing: cut after the n-th word.
		rest := s
		for k := 0; k < n; k++ {
			rest = strings.TrimLeft(rest, " ")
			rest = rest[len(f[k]):]
		}
		return term, strings.TrimSpace(rest)
	}
	if i := strings.Index(s, "  "); i > 0 {
		return s[:i], strings.TrimSpace(s[i:])
	}
	return s, ""
}

// Section is one top-level section of a page (.SH).
type Section struct {
	Title  string // "OPTIONS"; upper case by convention
	Blocks []Block
}

// Page is one manual page.
type Page struct {
	Name     string // "vipd"
	Section  string // "8"
	Summary  string // the NAME line's description
	Date     string // shown in the footer; "" leaves it empty
	Source   string // "vipd 1.2.0"
	Manual   string // "System Administration"
	Synopsis []string
	Sections []Section
}

// Roff renders the page with the man(7) macros.
func (p *Page) Roff() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".\\\" Generated by cmd/mkman from --help; do not edit.\n")
	fmt.Fprintf(&b, ".TH %s %s %s %s %s\n", quote(strings.ToUpper(p.Name)), p.Section, quote(p.Date), quote(p.Source), quote(p.Manual))
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", escape(p.Name), escape(p.Summary))
	if len(p.Synopsis) > 0 {
		b.WriteString(".SH SYNOPSIS\n")
		for i, s := range p.Synopsis {
			if i > 0 {
				b.WriteString(".br\n")
			}
			b.WriteString(synopsis(s) + "\n")
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", quote(strings.ToUpper(s.Title)))
		renderBlocks(&b, s.Blocks)
	}
	return b.Bytes()
}

func renderBlocks(b *bytes.Buffer, blocks []Block) {
	for i, bl := range blocks {
		switch bl.Kind {
		case Para:
			if i > 0 {
				b.WriteString(".PP\n")
			}
			b.WriteString(line(escape(bl.Text)) + "\n")
		case Heading:
			fmt.Fprintf(b, ".SS %s\n", quote(bl.Text))
		case Item:
			b.WriteString(".TP\n")
			b.WriteString(line(term(bl.Text)) + "\n")
			b.WriteString(line(escape(bl.Desc)) + "\n")
		case Usage:
			b.WriteString(".PP\n" + synopsis(bl.Text) + "\n")
		case Verbatim:
			b.WriteString(".PP\n.RS 4\n.nf\n")
			for _, l := range bl.Lines {
				b.WriteString(line(escape(l)) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
		}
	}
}

// term renders an item's term: the command or option words bold, the
// placeholders italic.
func term(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		name, arg, hasArg := strings.Cut(w, "=")
		bracket := strings.HasSuffix(name, "[")
		name = strings.TrimSuffix(name, "[")
		switch {
		case i > 0 && placeholder.MatchString(w):
			f[i] = `\fI` + escape(w) + `\fR`
		case hasArg:
			r := `\fB` + escape(name) + `\fR`
			if bracket {
				r += "["
			}
			r += `=\fI` + escape(strings.TrimSuffix(arg, "]")) + `\fR`
			if bracket {
				r += "]"
			}
			f[i] = r
		default:
			f[i] = `\fB` + escape(w) + `\fR`
		}
	}
	return strings.Join(f, " ")
}

// synopsis renders a usage line: the program and subcommand bold, the
// rest roman with placeholders italic.
func synopsis(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		switch {
		case i == 0 || (i == 1 && regexp.MustCompile(`^[a-z]+$`).MatchString(w)):
			f[i] = `\fB` + escape(w) + `\fR`
		default:
			f[i] = escape(w)
		}
	}
	return strings.Join(f, " ")
}

// escape makes text safe inside a roff line: backslashes, and hyphens as
// \- so options stay copyable ASCII.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	return s
}

// line protects a text line that would otherwise start a request.
func line(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// quote makes a macro argument.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

// Split cuts parsed help into the blocks before the first heading and,
// per heading, the blocks under it (by heading text, in order).
func Split(blocks []Block) (intro []Block, sections []Section) {
	for _, bl := range blocks {
		if bl.Kind == Heading {
			sections = append(sections, Section{Title: bl.Text})
			continue
		}
		if len(sections) == 0 {
			intro = append(intro, bl)
		} else {
			s := &sections[len(sections)-1]
			s.Blocks = append(s.Blocks, bl)
		}
	}
	return intro, sections
}
