package config

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Line is one logical line of configuration after preprocessing: the words
// of a keyword line. keepalived splits physical lines at unquoted braces, so
// "a { b } c" yields the lines "a {", "b", "}" and "c": Open marks a line
// that ends with "{", Close a line that is a lone "}".
type Line struct {
	Pos   Pos
	Words []string
	Open  bool
	Close bool
}

// String renders the line as it would be written.
func (l Line) String() string {
	if l.Close {
		return "}"
	}
	var b strings.Builder
	for i, w := range l.Words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w == "" || strings.ContainsAny(w, " \t{}#!") {
			b.WriteString(strconv.Quote(w))
		} else {
			b.WriteString(w)
		}
	}
	if l.Open {
		if len(l.Words) > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('{')
	}
	return b.String()
}

// Limits bound the work the preprocessor does, so that hostile or broken
// input (include loops, ~SEQ explosions, self-referencing definitions)
// ends with a diagnostic instead of exhausting the machine.
type Limits struct {
	MaxIncludeDepth int   // nested include levels (default 32)
	MaxLines        int   // logical lines produced in total (default 4,000,000)
	MaxFileSize     int64 // bytes per file (default 64 MiB)
	MaxSubstDepth   int   // nested definition substitutions (default 64)
	MaxLineLength   int   // bytes of one line after substitution (default 1 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxIncludeDepth <= 0 {
		l.MaxIncludeDepth = 32
	}
	if l.MaxLines <= 0 {
		l.MaxLines = 4_000_000
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 64 << 20
	}
	if l.MaxSubstDepth <= 0 {
		l.MaxSubstDepth = 64
	}
	if l.MaxLineLength <= 0 {
		l.MaxLineLength = 1 << 20
	}
	return l
}

// errLimit stops preprocessing when a limit is hit.
type errLimit struct{ msg string }

func (e errLimit) Error() string { return e.msg }

// definition is a $NAME=value parameter: its value, one string per line
// (several for multi-line definitions), substituted lazily at use.
type definition struct {
	lines []string
}

// reader is keepalived's configuration preprocessor: it reads the main file
// and its includes and turns them into logical lines, applying comments,
// @id conditions, $NAME definitions, ~SEQ/~LST blocks and substitution.
type reader struct {
	diags
	configID string
	lim      Limits
	readFile func(string) ([]byte, error)
	glob     func(string) ([]string, error)
	rnd      *rand.Rand

	defs  map[string]*definition
	out   []Line
	files []string
	stack []string // files being read, for loop detection
	dir   string   // directory of the file being read (${_PWD})
	err   error    // limit hit
	steps int      // lines processed, including expansions
}

func newReader(opts Options) *reader {
	r := &reader{
		configID: opts.ConfigID,
		lim:      opts.Limits.withDefaults(),
		readFile: opts.ReadFile,
		glob:     opts.Glob,
		defs:     map[string]*definition{},
	}
	if r.readFile == nil {
		r.readFile = os.ReadFile
	}
	if r.glob == nil {
		r.glob = filepath.Glob
	}
	seed := opts.RandomSeed
	if seed == 0 {
		seed = 1
	}
	r.rnd = rand.New(rand.NewSource(seed))
	return r
}

// Lex preprocesses configuration text as keepalived does and returns its
// logical lines. name is used in positions and to resolve relative
// includes (through opts.ReadFile / opts.Glob).
func Lex(name string, src []byte, opts Options) ([]Line, Diagnostics) {
	r := newReader(opts)
	r.lexSource(name, src)
	return r.out, r.list
}

func (r *reader) lexSource(name string, src []byte) {
	r.files = append(r.files, name)
	r.stack = append(r.stack, name)
	saved := r.dir
	r.dir = filepath.Dir(name)
	lines := splitLines(src)
	if r.out == nil {
		r.out = make([]Line, 0, min(len(lines), r.lim.MaxLines))
	}
	r.lexLines(name, lines)
	r.dir = saved
	r.stack = r.stack[:len(r.stack)-1]
}

func splitLines(src []byte) []string {
	s := string(src)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	return lines
}

// lexLines processes the physical lines of one file.
func (r *reader) lexLines(file string, lines []string) {
	for i := 0; i < len(lines) && r.err == nil; i++ {
		pos := Pos{File: file, Line: i + 1}
		text := stripComment(lines[i])
		trim := strings.TrimSpace(text)
		if trim == "" {
			continue
		}
		// A multi-line definition: "$NAME=... \" continues on the
		// following lines while they end with a backslash.
		if name, val, ok := parseDefinition(trim); ok && strings.HasSuffix(val, `\`) {
			var vals []string
			first := strings.TrimSpace(strings.TrimSuffix(val, `\`))
			if first != "" {
				vals = append(vals, first)
			}
			for i+1 < len(lines) {
				i++
				t := strings.TrimSpace(stripComment(lines[i]))
				if t == "" {
					continue // blank lines inside a definition are skipped
				}
				if strings.HasSuffix(t, `\`) {
					if v := strings.TrimSpace(strings.TrimSuffix(t, `\`)); v != "" {
						vals = append(vals, v)
					}
					continue
				}
				vals = append(vals, t)
				break
			}
			r.define(pos, name, vals)
			continue
		}
		if w, rest := firstWord(trim); isInclude(w) {
			r.include(pos, w, strings.TrimSpace(rest))
			continue
		}
		r.process(pos, text, 0)
	}
}

// stripComment removes a '#' or '!' comment that starts outside double
// quotes, anywhere in the line (also glued to a word: "33#comment").
func stripComment(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '#', '!':
			if !inQuote {
				return s[:i]
			}
		}
	}
	return s
}

func firstWord(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

func isInclude(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// isName reports whether s is a parameter name: [A-Za-z_][A-Za-z0-9_]*.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// parseDefinition recognises "$NAME=VALUE" (no space before '=').
func parseDefinition(s string) (name, val string, ok bool) {
	if !strings.HasPrefix(s, "$") {
		return "", "", false
	}
	eq := strings.IndexByte(s, '=')
	if eq < 0 || !isName(s[1:eq]) {
		return "", "", false
	}
	return s[1:eq], strings.TrimSpace(s[eq+1:]), true
}

func (r *reader) define(pos Pos, name string, vals []string) {
	if strings.HasPrefix(name, "_") {
		r.add(pos, Notice, "$"+name, "rename the parameter; names starting with _ are reserved for keepalived's predefined ones", "parameter names starting with an underscore are reserved")
	}
	r.defs[name] = &definition{lines: vals}
}

// process handles one line of text at nesting depth depth: conditionals,
// definitions, ~SEQ/~LST, substitution, then tokenising.
func (r *reader) process(pos Pos, text string, depth int) {
	if r.err != nil {
		return
	}
	// Every expansion step counts, also those that produce no line
	// (~SEQ over an empty definition), so that nothing runs unbounded.
	r.steps++
	if r.steps > 8*r.lim.MaxLines+1000 {
		r.err = errLimit{"too many expansion steps"}
		r.add(pos, Fatal, "", "the ~SEQ/~LST blocks and $definitions expand too much", "configuration expansion exceeds %d steps", 8*r.lim.MaxLines+1000)
		return
	}
	if depth > r.lim.MaxSubstDepth {
		// keepalived accepts such a configuration (it stops expanding);
		// vipd drops the line and says so.
		r.add(pos, Notice, "", "check the $definitions used on this line for a definition that refers to itself",
			"parameter substitution nested more than %d levels deep; line dropped", r.lim.MaxSubstDepth)
		return
	}
	text = strings.TrimLeft(text, " \t")
	if text == "" {
		return
	}
	// @id / @^id conditional lines.
	if text[0] == '@' {
		neg := strings.HasPrefix(text, "@^")
		id, rest := firstWord(text[1:])
		if neg {
			id = id[1:]
		}
		if (id == r.configID) == neg {
			return
		}
		r.process(pos, rest, depth+1)
		return
	}
	if name, val, ok := parseDefinition(strings.TrimSpace(text)); ok {
		r.define(pos, name, []string{val})
		return
	}
	if strings.HasPrefix(text, "~SEQ(") || strings.HasPrefix(text, "~SEQx(") || strings.HasPrefix(text, "~LST(") {
		r.sequence(pos, text, depth)
		return
	}
	if strings.Contains(text, "$") {
		lines, changed := r.substitute(pos, text)
		if r.err != nil {
			return
		}
		if changed {
			for _, l := range lines {
				r.process(pos, l, depth+1)
			}
			return
		}
	}
	r.tokenize(pos, text)
}

// substitute replaces $NAME (followed by whitespace or the end) and ${NAME}
// with their definitions; undefined names stay. A multi-line definition
// splits the result into several lines.
func (r *reader) substitute(pos Pos, text string) ([]string, bool) {
	var b strings.Builder
	var lines []string
	changed := false
	for i := 0; i < len(text); {
		c := text[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		var name, arg string
		end := -1
		braced := i+1 < len(text) && text[i+1] == '{'
		if braced {
			if j := strings.IndexByte(text[i+2:], '}'); j >= 0 {
				inner := text[i+2 : i+2+j]
				name, arg = inner, ""
				if sp := strings.IndexAny(inner, " \t"); sp >= 0 {
					name, arg = inner[:sp], strings.TrimSpace(inner[sp:])
				}
				end = i + 2 + j + 1
			}
		} else {
			j := i + 1
			for j < len(text) && text[j] != ' ' && text[j] != '\t' {
				j++
			}
			name = text[i+1 : j]
			end = j
		}
		if end < 0 {
			b.WriteByte(c)
			i++
			continue
		}
		val, ok := r.lookup(pos, name, arg, braced)
		if !ok {
			b.WriteByte(c)
			i++
			continue
		}
		changed = true
		for k, l := range val {
			if k > 0 {
				lines = append(lines, b.String())
				b.Reset()
			}
			b.WriteString(l)
		}
		i = end
		if b.Len() > r.lim.MaxLineLength {
			r.err = errLimit{"line too long after substitution"}
			r.add(pos, Fatal, "", "check the $definitions used on this line", "line longer than %d bytes after parameter substitution", r.lim.MaxLineLength)
			return nil, false
		}
	}
	lines = append(lines, b.String())
	return lines, changed
}

// lookup returns the value of a parameter, including keepalived's
// predefined ones.
func (r *reader) lookup(pos Pos, name, arg string, braced bool) ([]string, bool) {
	switch name {
	case "_PWD":
		return []string{r.dir}, true
	case "_INSTANCE":
		return []string{r.configID}, true
	case "_ENV":
		if !braced || arg == "" {
			return nil, false
		}
		return []string{os.Getenv(arg)}, true
	case "_HASH":
		return []string{"#"}, true
	case "_BANG":
		return []string{"!"}, true
	case "_RANDOM":
		if !braced && arg != "" {
			return nil, false
		}
		lo, hi := 0, 32767
		f := strings.Fields(arg)
		if len(f) > 0 {
			if v, err := strconv.Atoi(f[0]); err == nil && v >= 0 {
				lo = v
			}
		}
		if len(f) > 1 {
			if v, err := strconv.Atoi(f[1]); err == nil && v >= 0 {
				hi = v
			}
		}
		if hi < lo {
			hi = lo
		}
		return []string{strconv.Itoa(lo + r.rnd.Intn(hi-lo+1))}, true
	}
	if arg != "" {
		return nil, false
	}
	d, ok := r.defs[name]
	if !ok {
		return nil, false
	}
	if len(d.lines) == 0 {
		return []string{""}, true
	}
	return d.lines, true
}

// sequence expands "~SEQ(var, start, step, end) rest", "~SEQx(...)" and
// "~LST(var, v1, v2, ...)" / "~LST({a,b}, {1,2}, ...)".
func (r *reader) sequence(pos Pos, text string, depth int) {
	kw := text[:strings.IndexByte(text, '(')]
	close := strings.IndexByte(text, ')')
	if kw == "~LST" {
		close = lstClose(text)
	}
	if close < 0 {
		r.add(pos, Error, kw, "write "+kw+"(VAR, ...) with a closing parenthesis", "%s block has no closing ')'", kw)
		return
	}
	spec := text[len(kw)+1 : close]
	rest := text[close+1:]
	if kw == "~LST" {
		vars, rows, err := parseLST(spec)
		if err != nil {
			r.add(pos, Error, kw, "write ~LST(VAR, v1, v2, ...) or ~LST({A,B}, {1,2}, ...)", "%v", err)
			return
		}
		for _, row := range rows {
			for i, v := range vars {
				r.defs[v] = &definition{lines: []string{row[i]}}
			}
			r.process(pos, rest, depth+1)
			if r.err != nil {
				return
			}
		}
		return
	}
	args := strings.Split(spec, ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	if len(args) < 2 || len(args) > 4 || !isName(args[0]) {
		r.add(pos, Error, kw, "write "+kw+"(VAR, [START, [STEP,]] END)", "invalid %s specification '%s'", kw, spec)
		return
	}
	nums := make([]int64, 0, 3)
	for _, a := range args[1:] {
		v, err := strconv.ParseInt(a, 0, 64)
		if err != nil {
			r.add(pos, Error, kw, "the start, step and end must be integers (decimal or 0x hex)", "invalid number '%s' in %s", a, kw)
			return
		}
		nums = append(nums, v)
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		start = 1
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
	}
	if step == 0 {
		if len(nums) == 3 {
			r.add(pos, Error, kw, "use a non-zero step", "%s step is 0", kw)
			return
		}
		step = 1
		if end < start {
			step = -1
		}
	}
	if (step > 0 && start > end) || (step < 0 && start < end) {
		return
	}
	count := (end-start)/step + 1
	if count > int64(r.lim.MaxLines) {
		r.err = errLimit{"sequence too long"}
		r.add(pos, Fatal, kw, "split the sequence or raise the limit", "%s would produce %d lines, more than the limit of %d", kw, count, r.lim.MaxLines)
		return
	}
	for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
		s := strconv.FormatInt(v, 10)
		if kw == "~SEQx" {
			if v < 0 {
				s = "-" + strconv.FormatInt(-v, 16)
			} else {
				s = strconv.FormatInt(v, 16)
			}
		}
		r.defs[args[0]] = &definition{lines: []string{s}}
		r.process(pos, rest, depth+1)
		if r.err != nil {
			return
		}
	}
}

// lstClose finds the ')' closing a ~LST( spec, skipping braces.
func lstClose(text string) int {
	depth := 0
	for i := strings.IndexByte(text, '(') + 1; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ')':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// parseLST splits "VAR, v1, v2" or "{A,B}, {1,2}, {3,4}".
func parseLST(spec string) ([]string, [][]string, error) {
	items, err := splitTop(spec)
	if err != nil {
		return nil, nil, err
	}
	if len(items) < 2 {
		return nil, nil, fmt.Errorf("~LST needs a variable and at least one value")
	}
	vars := unbrace(items[0])
	for _, v := range vars {
		if !isName(v) {
			return nil, nil, fmt.Errorf("invalid ~LST variable name '%s'", v)
		}
	}
	var rows [][]string
	for _, it := range items[1:] {
		row := unbrace(it)
		if len(row) != len(vars) {
			return nil, nil, fmt.Errorf("~LST value '%s' has %d fields, want %d", it, len(row), len(vars))
		}
		rows = append(rows, row)
	}
	return vars, rows, nil
}

func splitTop(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced '}' in ~LST")
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '{' in ~LST")
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}

func unbrace(s string) []string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		parts := strings.Split(s[1:len(s)-1], ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	return []string{s}
}

// tokenize splits a processed line into words and logical lines. Double
// quotes group words (the quotes are removed and a quote always starts a
// new word); unquoted braces are words of their own that end the logical
// line. Backslashes are kept: escapes are interpreted where keepalived
// interprets them (in scripts).
func (r *reader) tokenize(pos Pos, text string) {
	var words []string
	emit := func(l Line) {
		if len(r.out) >= r.lim.MaxLines {
			if r.err == nil {
				r.err = errLimit{"too many lines"}
				r.add(pos, Fatal, "", "the configuration expands to too many lines (check ~SEQ/~LST blocks and includes)", "more than %d configuration lines", r.lim.MaxLines)
			}
			return
		}
		r.out = append(r.out, l)
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '"':
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				r.add(pos, Warning, "", "add the closing quote", "unterminated quote in '%s'", strings.TrimSpace(text))
				words = append(words, text[i+1:])
				i = len(text)
				continue
			}
			words = append(words, text[i+1:i+1+j])
			i += j + 2
		case c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r':
			i++
		case c == '{':
			emit(Line{Pos: pos, Words: words, Open: true})
			words = nil
			i++
		case c == '}':
			if len(words) > 0 {
				emit(Line{Pos: pos, Words: words})
				words = nil
			}
			emit(Line{Pos: pos, Close: true})
			i++
		default:
			// a bare word runs to the next blank, quote or brace
			j := i + 1
			for j < len(text) {
				d := text[j]
				if d == ' ' || d == '\t' || d == '\v' || d == '\f' || d == '\r' || d == '"' || d == '{' || d == '}' {
					break
				}
				j++
			}
			words = append(words, text[i:j])
			i = j
		}
	}
	if len(words) > 0 {
		emit(Line{Pos: pos, Words: words})
	}
}

// include reads the files matching a glob pattern (with csh-style brace
// expansion), relative to the including file's directory.
func (r *reader) include(pos Pos, kw, arg string) {
	if r.err != nil {
		return
	}
	pattern := arg
	if strings.HasPrefix(pattern, `"`) && strings.HasSuffix(pattern, `"`) && len(pattern) >= 2 {
		pattern = pattern[1 : len(pattern)-1]
	}
	if pattern == "" {
		r.add(pos, Error, kw, "write "+kw+" FILE", "%s without a file name (keepalived: unknown keyword)", kw)
		return
	}
	if len(r.stack) > r.lim.MaxIncludeDepth {
		r.err = errLimit{"include depth"}
		r.add(pos, Error, kw, "includes nest too deeply; look for a file that includes itself",
			"include depth exceeds %d", r.lim.MaxIncludeDepth)
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(r.dir, pattern)
	}
	var matches []string
	for _, p := range expandBraces(pattern, 256) {
		m, err := r.glob(p)
		if err != nil {
			r.add(pos, Error, kw, "fix the file pattern", "bad include pattern '%s': %v", p, err)
			continue
		}
		if len(m) == 0 && !hasMeta(p) {
			// glob returns no match for a plain name that does not
			// exist; keep it so that the read reports it.
			if _, err := r.readFile(p); err == nil {
				m = []string{p}
			}
		}
		sort.Strings(m)
		matches = append(matches, m...)
	}
	if len(matches) == 0 {
		sev := Notice
		exit := 0
		if kw != "include" && kw != "includer" {
			sev, exit = Fatal, ExitConfigTestSecurity // keepalived -t exits 6 here
		}
		d := r.add(pos, sev, kw, "create the file, or use include to make it optional", "no file matches '%s'", arg)
		d.Exit = exit
		if sev == Notice {
			d.Hint = "keepalived ignores a missing include; use includea to make it an error"
		}
		return
	}
	for _, f := range matches {
		for _, open := range r.stack {
			if open == f {
				r.add(pos, Error, kw, "remove the include that loops back to "+f, "include loop: %s is already being read", f)
				return
			}
		}
		data, err := r.readLimited(f)
		if err != nil {
			sev := Notice
			if kw != "include" {
				sev = Error
			}
			r.add(pos, sev, kw, "", "cannot read included file: %v", err)
			continue
		}
		r.lexSource(f, data)
		if r.err != nil {
			return
		}
	}
}

func (r *reader) readLimited(f string) ([]byte, error) {
	data, err := r.readFile(f)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > r.lim.MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", f, r.lim.MaxFileSize)
	}
	return data, nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// expandBraces expands csh-style "{a,b}" alternatives (nested allowed), up
// to max results.
func expandBraces(p string, max int) []string {
	open := -1
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth == 0 {
				alts, _ := splitTop(p[open+1 : i])
				var out []string
				for _, a := range alts {
					for _, e := range expandBraces(p[:open]+a+p[i+1:], max) {
						if len(out) >= max {
							return out
						}
						out = append(out, e)
					}
				}
				return out
			}
		}
	}
	return []string{p}
}
