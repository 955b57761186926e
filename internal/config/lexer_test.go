package config

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"
)

// memFS serves files from a map, for include tests.
type memFS map[string]string

func (m memFS) read(p string) ([]byte, error) {
	s, ok := m[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func (m memFS) glob(pattern string) ([]string, error) {
	var out []string
	for p := range m {
		if ok, err := path.Match(pattern, p); err != nil {
			return nil, err
		} else if ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// render shows logical lines as "LINE: words" for comparison.
func render(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%d: %s\n", l.Pos.Line, l.String())
	}
	return b.String()
}

func TestLex(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
		id   string
	}{
		{"comments anywhere", "a 1 # c\n! whole line\nb 2!c\n", "1: a 1\n3: b 2\n", ""},
		{"comment glued to a value (seed 004)", "virtual_router_id 33#这个虚拟ip\n", "1: virtual_router_id 33\n", ""},
		{"brace glued to a name (seed 004)", "vrrp_instance VI_2{\n}\n", "1: vrrp_instance VI_2 {\n2: }\n", ""},
		{"brace glued to a comment", "virtual_ipaddress {#虚拟ip地址\n", "1: virtual_ipaddress {\n", ""},
		{"braces split a line", "a { b c } d\n", "1: a {\n1: b c\n1: }\n1: d\n", ""},
		{"brace in a word", "x abc{def\n", "1: x abc {\n1: def\n", ""},
		{"closing brace in a word", "x abc}def\n", "1: x abc\n1: }\n1: def\n", ""},
		{"lone brace", "vrrp_instance V\n{\n}\n", "1: vrrp_instance V\n2: {\n3: }\n", ""},
		{"quotes group words", `script "/bin/x a b" user` + "\n", "1: script \"/bin/x a b\" user\n", ""},
		{"quotes protect comments and braces", `router_id "a#b{c}"` + "\n", "1: router_id \"a#b{c}\"\n", ""},
		{"a quote starts a new word", `router_id a"b c"d` + "\n", "1: router_id a \"b c\" d\n", ""},
		{"backslashes are kept", `x "a\tb"` + "\n", "1: x a\\tb\n", ""},
		{"single quotes do not group", "x 'a b'\n", "1: x 'a b'\n", ""},
		{"crlf", "a 1\r\nb 2\r\n", "1: a 1\n2: b 2\n", ""},
		{"conditional match", "@n1 a 1\n@n2 a 2\n", "1: a 1\n", "n1"},
		{"negated conditional", "@^n1 a 1\n@^n2 a 2\n", "2: a 2\n", "n1"},
		{"definition", "$X=10.0.0.1\na $X\n", "2: a 10.0.0.1\n", ""},
		{"braced definition glued", "$X=10.0\na ${X}.0.1\n", "2: a 10.0.0.1\n", ""},
		{"dollar name must be followed by space", "$X=1\na $Xy\n", "2: a $Xy\n", ""},
		{"undefined stays", "a \"${NOPE}\" $NOPE\n", "1: a \"${NOPE}\" $NOPE\n", ""},
		{"lazy recursive definitions", "$B=10.2.${S}\n$S=0\na ${B}.1\n$S=10\na ${B}.1\n", "3: a 10.2.0.1\n5: a 10.2.10.1\n", ""},
		{"empty definition", "$E=\na x${E}y\n", "2: a xy\n", ""},
		{"conditional definition", "@m $P=240\n@b $P=200\npriority $P\n", "3: priority 200\n", "b"},
		{"definition expands to a conditional", "$IF_MAIN=@main\n$IF_MAIN priority 240\n", "2: priority 240\n", "main"},
		{"multi-line definition", "$I= \\\n v {\\\n  p ${N} \\\n }\n$N=1\n$I\n", "6: v {\n6: p 1\n6: }\n", ""},
		{"predefined hash and bang", "a ${_HASH}x${_BANG}\n", "1: a \"#x!\"\n", ""},
		{"predefined instance", "a ${_INSTANCE}\n", "1: a node9\n", "node9"},
		{"SEQ", "~SEQ(A, 1, 3) x 10.0.${A}.1\n", "1: x 10.0.1.1\n1: x 10.0.2.1\n1: x 10.0.3.1\n", ""},
		{"SEQ end only", "~SEQ(A, 2) x $A\n", "1: x 1\n1: x 2\n", ""},
		{"SEQ down", "~SEQ(A, 5, 3) x $A\n", "1: x 5\n1: x 4\n1: x 3\n", ""},
		{"SEQ negative end", "~SEQ(A, -2) x $A\n", "1: x -1\n1: x -2\n", ""},
		{"SEQ step", "~SEQ(A, 0, 5, 12) x $A\n", "1: x 0\n1: x 5\n1: x 10\n", ""},
		{"SEQ empty", "~SEQ(A, 3, 1, 1) x $A\n", "", ""},
		{"SEQx", "~SEQx(A, 0x9, 0x10, 0x2a) x fe80::${A}\n", "1: x fe80::9\n1: x fe80::19\n1: x fe80::29\n", ""},
		{"nested SEQ", "~SEQ(A, 1, 2) ~SEQ(B, 1, 2) x ${A}.${B}\n", "1: x 1.1\n1: x 1.2\n1: x 2.1\n1: x 2.2\n", ""},
		{"LST", "~LST(A, x, y) v $A\n", "1: v x\n1: v y\n", ""},
		{"LST tuples", "~LST({A,B}, {1,2},{3,4}) v ${A}.${B}\n", "1: v 1.2\n1: v 3.4\n", ""},
		{"LST and SEQ", "~LST(A, 1, 2) ~SEQ(B, 7, 8) v ${A}${B}\n", "1: v 17\n1: v 18\n1: v 27\n1: v 28\n", ""},
		{"SEQ with multi-line definition", "$V= \\\n i v${N} { \\\n }\n~SEQ(N, 1, 2) $V\n", "4: i v1 {\n4: }\n4: i v2 {\n4: }\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				id = "test"
			}
			lines, diags := Lex("t.conf", []byte(tc.in), Options{ConfigID: id})
			if got := render(lines); got != tc.want {
				t.Errorf("Lex(%q):\n%s\nwant:\n%s", tc.in, got, tc.want)
			}
			if diags.HasProblems() {
				t.Errorf("unexpected diagnostics:\n%s", diags)
			}
		})
	}
}

func TestInclude(t *testing.T) {
	fs := memFS{
		"/etc/k/main.conf":        "a 1\ninclude conf.d/*.conf\ninclude /etc/k/{x,y}.inc\nz 9\n",
		"/etc/k/conf.d/10.conf":   "b 2\ninclude ../sub/s.conf\n",
		"/etc/k/conf.d/20.conf":   "c 3\n",
		"/etc/k/sub/s.conf":       "d ${_PWD}\n",
		"/etc/k/x.inc":            "x 1\n",
		"/etc/k/y.inc":            "y 1\n",
		"/etc/k/loop.conf":        "l 1\ninclude loop.conf\n",
		"/etc/k/missing.conf":     "include nothere.conf\nm 1\n",
		"/etc/k/missing_all.conf": "includea nothere.conf\n",
	}
	opts := Options{ConfigID: "t", ReadFile: fs.read, Glob: fs.glob}
	lines, diags := Lex("/etc/k/main.conf", []byte(fs["/etc/k/main.conf"]), opts)
	var got []string
	for _, l := range lines {
		got = append(got, path.Base(l.Pos.File)+":"+l.String())
	}
	want := "main.conf:a 1|10.conf:b 2|s.conf:d /etc/k/sub|20.conf:c 3|x.inc:x 1|y.inc:y 1|main.conf:z 9"
	if strings.Join(got, "|") != want {
		t.Errorf("includes:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	if diags.HasProblems() {
		t.Errorf("diagnostics: %s", diags)
	}

	_, diags = Lex("/etc/k/loop.conf", []byte(fs["/etc/k/loop.conf"]), opts)
	if !strings.Contains(diags.String(), "include loop") || diags.ExitCode() != ExitConfigTest {
		t.Errorf("include loop not reported: %s", diags)
	}
	lines, diags = Lex("/etc/k/missing.conf", []byte(fs["/etc/k/missing.conf"]), opts)
	if len(lines) != 1 || diags.HasProblems() || !strings.Contains(diags.String(), "no file matches") {
		t.Errorf("missing include: lines %v diags %s", lines, diags)
	}
	_, diags = Lex("/etc/k/missing_all.conf", []byte(fs["/etc/k/missing_all.conf"]), opts)
	if diags.ExitCode() == 0 {
		t.Errorf("includea of a missing file accepted: %s", diags)
	}
}

func TestIncludeDepthLimit(t *testing.T) {
	// a chain of distinct files deeper than the limit
	fs := memFS{}
	for i := 0; i < 10; i++ {
		fs[fmt.Sprintf("/c/%d.conf", i)] = fmt.Sprintf("include %d.conf\n", i+1)
	}
	opts := Options{ReadFile: fs.read, Glob: fs.glob, Limits: Limits{MaxIncludeDepth: 5}}
	_, diags := Lex("/c/0.conf", []byte(fs["/c/0.conf"]), opts)
	if !strings.Contains(diags.String(), "include depth exceeds 5") {
		t.Errorf("include depth not capped: %s", diags)
	}
}

func TestLexLimits(t *testing.T) {
	tests := []struct {
		name, in, msg string
		lim           Limits
	}{
		{"SEQ explosion", "~SEQ(A, 1, 1000000000) x $A\n", "more than the limit", Limits{MaxLines: 1000}},
		{"nested SEQ explosion", "~SEQ(A, 1, 100) ~SEQ(B, 1, 100) ~SEQ(C, 1, 100) x $A\n", "more than 1000 configuration lines", Limits{MaxLines: 1000}},
		{"LST explosion", "~LST(A, 1,2,3,4,5,6,7,8,9,10) ~LST(B, 1,2,3,4,5,6,7,8,9,10) ~LST(C, 1,2,3,4,5,6,7,8,9,10) ~LST(D, 1,2) x\n", "more than 1000", Limits{MaxLines: 1000}},
		{"definition doubling", "$A=x x\n$B=$A $A $A $A $A $A $A $A\n$C=$B $B $B $B $B $B $B $B\n$D=$C $C $C $C $C $C $C $C\n$E=$D $D $D $D $D $D $D $D\n$F=$E $E $E $E $E $E $E $E\nv $F $F $F $F $F $F $F $F\n", "longer than", Limits{MaxLineLength: 10000}},
		{"silent SEQ explosion", "$E=\n~SEQ(A, 1, 900) ~SEQ(B, 1, 900) $E\n", "expansion exceeds", Limits{MaxLines: 1000}},
		{"definition recursion", "$A=x$A\nv $A\n", "nested more than", Limits{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Lex("t.conf", []byte(tc.in), Options{Limits: tc.lim})
			if !strings.Contains(diags.String(), tc.msg) {
				t.Errorf("want %q, got:\n%s", tc.msg, diags)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"/bin/x", []string{"/bin/x"}, false},
		{"/bin/x a  b", []string{"/bin/x", "a", "b"}, false},
		{"/bin/x 'a b' c", []string{"/bin/x", "a b", "c"}, false},
		{`/bin/x "a b"`, []string{"/bin/x", "a b"}, false},
		{`/bin/x a\ b`, []string{"/bin/x", "a b"}, false},
		{`/bin/x \x41\101\n`, []string{"/bin/x", "AA\n"}, false},
		{`/bin/x 'a\tb'`, []string{"/bin/x", `a\tb`}, false},
		{`/bin/x "a`, nil, true},
		{`/bin/x \`, nil, true},
	}
	for _, tc := range tests {
		got, err := splitCommand(tc.in)
		if (err != nil) != tc.err || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		sec  *Section
		in   string
		want string
	}{
		{urlSection, "status", "did you mean 'status_code'?"},
		{instanceSection, "virtual_router", "did you mean 'virtual_router_id'?"},
		{instanceSection, "prority", "did you mean 'priority'?"},
		{virtualServerSection, "lvs_schedule", "did you mean 'lvs_sched'?"},
		{globalSection, "vrrp_instance", "belongs in top level"},
		{instanceSection, "zzzzzzzz", "see docs/compat.md"},
	}
	for _, tc := range tests {
		if got := suggest(tc.sec, tc.in); !strings.Contains(got, tc.want) {
			t.Errorf("suggest(%s, %q) = %q, want %q", tc.sec.Name, tc.in, got, tc.want)
		}
	}
}
