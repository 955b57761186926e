package manpage

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		help string
		want []Block
	}{
		{
			name: "usage, paragraph, heading",
			help: "Usage: vipd [OPTION]...\n\nvipd is a load balancer\nthat reads keepalived.conf.\n\nOptions:\n",
			want: []Block{{Kind: Para, Text: "Usage: vipd [OPTION]..."}, {Kind: Para, Text: "vipd is a load balancer that reads keepalived.conf."}, {Kind: Heading, Text: "Options"}},
		},
		{
			name: "vipd options: inline description, continuation, long-only option, = and [=] arguments",
			help: "Options:\n" +
				"  -f, --use-file=FILE          use the configuration file FILE (default\n" +
				"                               /etc/keepalived/keepalived.conf)\n" +
				"  -t, --config-test[=FILE]     check the configuration\n" +
				"      --dataplane=auto|proxy|ipvs data plane of the virtual servers: proxy\n" +
				"                               (userspace)\n" +
				"      --control=PATH           unix socket\n",
			want: []Block{
				{Kind: Heading, Text: "Options"},
				{Kind: Item, Text: "-f, --use-file=FILE", Desc: "use the configuration file FILE (default /etc/keepalived/keepalived.conf)"},
				{Kind: Item, Text: "-t, --config-test[=FILE]", Desc: "check the configuration"},
				{Kind: Item, Text: "--dataplane=auto|proxy|ipvs", Desc: "data plane of the virtual servers: proxy (userspace)"},
				{Kind: Item, Text: "--control=PATH", Desc: "unix socket"},
			},
		},
		{
			name: "vipctl flags: term alone, description below",
			help: "Flags:\n  -o, --output FORMAT\n        output FORMAT: text or json (default text)\n  --vip A[,B...]\n        the virtual addresses\n  -t VIP:PORT\n        only the TCP service\n",
			want: []Block{
				{Kind: Heading, Text: "Flags"},
				{Kind: Item, Text: "-o, --output FORMAT", Desc: "output FORMAT: text or json (default text)"},
				{Kind: Item, Text: "--vip A[,B...]", Desc: "the virtual addresses"},
				{Kind: Item, Text: "-t VIP:PORT", Desc: "only the TCP service"},
			},
		},
		{
			name: "command list and a verbatim usage",
			help: "Usage:\n  vipctl [--socket PATH] COMMAND\n\nCommands:\n  checks      show every health checker\n  conns       list the connection table\n              exactly as ipvsadm\n",
			want: []Block{
				{Kind: Heading, Text: "Usage"},
				{Kind: Verbatim, Lines: []string{"vipctl [--socket PATH] COMMAND"}},
				{Kind: Heading, Text: "Commands"},
				{Kind: Item, Text: "checks", Desc: "show every health checker"},
				{Kind: Item, Text: "conns", Desc: "list the connection table exactly as ipvsadm"},
			},
		},
		{
			name: "a list inside prose; a line ending in a colon inside a paragraph is text",
			help: "Run on a real server, in place of\nthe usual dr.sh:\n\n  up    sets arp_ignore=1\n        and adds each VIP\n  down  removes them\n\nup is idempotent.\n",
			want: []Block{
				{Kind: Para, Text: "Run on a real server, in place of the usual dr.sh:"},
				{Kind: Item, Text: "up", Desc: "sets arp_ignore=1 and adds each VIP"},
				{Kind: Item, Text: "down", Desc: "removes them"},
				{Kind: Para, Text: "up is idempotent."},
			},
		},
		{
			name: "tabs count as indentation",
			help: "Examples:\n\tvipd -t    check\n",
			want: []Block{{Kind: Heading, Text: "Examples"}, {Kind: Item, Text: "vipd -t", Desc: "check"}},
		},
		{name: "empty", help: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse(tt.help); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSplitTerm(t *testing.T) {
	tests := []struct{ in, term, desc string }{
		{"-f, --use-file=FILE          use FILE", "-f, --use-file=FILE", "use FILE"},
		{"-n, --numeric", "-n, --numeric", ""},
		{"--sctp-service VIP:PORT", "--sctp-service VIP:PORT", ""},
		{"-P, --protocol VERSION", "-P, --protocol VERSION", ""},
		{"--socket PATH   control socket", "--socket PATH", "control socket"},
		{"-o, --output F  output format", "-o, --output F", "output format"},
		{"--dataplane=auto|proxy|ipvs data plane", "--dataplane=auto|proxy|ipvs", "data plane"},
		{"-C, --check     run only the checks (no VRRP)", "-C, --check", "run only the checks (no VRRP)"},
		{"checks      show", "checks", "show"},
		{"vipctl [--socket PATH] COMMAND", "vipctl [--socket PATH] COMMAND", ""},
	}
	for _, tt := range tests {
		term, desc := splitTerm(tt.in)
		if term != tt.term || desc != tt.desc {
			t.Errorf("splitTerm(%q) = %q, %q; want %q, %q", tt.in, term, desc, tt.term, tt.desc)
		}
	}
}

func TestRoff(t *testing.T) {
	p := &Page{Name: "vipd", Section: "8", Summary: "a balancer", Date: "2026-01-31", Source: "vipd 1.0", Manual: "System Administration",
		Synopsis: []string{"vipd [OPTION]..."},
		Sections: []Section{{Title: "Options", Blocks: []Block{
			{Kind: Para, Text: ".starts with a dot, has a \\ backslash"},
			{Kind: Item, Text: "-t, --config-test[=FILE]", Desc: "'quoted first"},
			{Kind: Item, Text: "--socket PATH", Desc: "the socket"},
			{Kind: Heading, Text: `say "hi"`},
			{Kind: Usage, Text: "vipctl list [-n]"},
			{Kind: Verbatim, Lines: []string{"  up    sets -x"}},
		}}}}
	want := `.\" Generated by cmd/mkman from --help; do not edit.
.TH "VIPD" 8 "2026\-01\-31" "vipd 1.0" "System Administration"
.SH NAME
vipd \- a balancer
.SH SYNOPSIS
\fBvipd\fR [OPTION]...
.SH "OPTIONS"
\&.starts with a dot, has a \e backslash
.TP
\fB\-t,\fR \fB\-\-config\-test\fR[=\fIFILE\fR]
\&'quoted first
.TP
\fB\-\-socket\fR \fIPATH\fR
the socket
.SS "say \(dqhi\(dq"
.PP
\fBvipctl\fR \fBlist\fR [\-n]
.PP
.RS 4
.nf
  up    sets \-x
.fi
.RE
`
	if got := string(p.Roff()); got != want {
		t.Errorf("Roff:\n%s\nwant:\n%s", got, want)
	}
}

// A page must name every option of the help it came from.
func TestVipdPage(t *testing.T) {
	help := "Usage: vipd [OPTION]...\n\nvipd balances.\n\nOptions:\n  -f, --use-file=FILE   use FILE\n      --metrics=ADDR    serve metrics\n\nExamples:\n  vipd -t -f F   check\n"
	p, err := Vipd(help, Meta{Version: "1.0", Date: "2026-01-31"})
	if err != nil {
		t.Fatal(err)
	}
	r := string(p.Roff())
	for _, want := range []string{`.SH SYNOPSIS` + "\n" + `\fBvipd\fR [OPTION]...`, `\fB\-\-use\-file\fR=\fIFILE\fR`, `\fB\-\-metrics\fR=\fIADDR\fR`, ".SH \"EXAMPLES\"", "vipd balances.", ".SH \"SIGNALS\""} {
		if !strings.Contains(r, want) {
			t.Errorf("vipd page lacks %q:\n%s", want, r)
		}
	}
	if _, err := Vipd("vipd balances.\n", Meta{}); err == nil {
		t.Error("help without Usage accepted")
	}
	if _, err := Vipd("Usage: vipd\n\nvipd balances.\n", Meta{}); err == nil {
		t.Error("help without Options accepted")
	}
}

func TestVipctlPage(t *testing.T) {
	main := "vipctl controls vipd.\n\nUsage:\n  vipctl [--socket PATH] COMMAND\n\nCommands:\n  status  show status\n  help    show the help of a command\n\nCommon flags (before or after the command):\n  --socket PATH   control socket\n\nExit status: 0 success, 1 failure.\n"
	status := "Usage: vipctl status [-o json]\n\nshow status\n\nPrints the daemon.\n\nFlags:\n  -o, --output FORMAT\n        output FORMAT\n  --socket PATH\n        control socket\n"
	p, err := Vipctl(main, map[string]string{"status": status}, Meta{Version: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	r := string(p.Roff())
	for _, want := range []string{".SS \"status\"", `\fBvipctl\fR \fBstatus\fR [\-o json]`, "Prints the daemon.", ".SH \"COMMON FLAGS\"", "These flags go before or after the command.", ".SH \"EXIT STATUS\"\n0 success, 1 failure."} {
		if !strings.Contains(r, want) {
			t.Errorf("vipctl page lacks %q:\n%s", want, r)
		}
	}
	// The common flags are listed once, not under each command; a
	// command whose only flags are the common ones has no Flags list.
	if strings.Count(r, `\fB\-\-socket\fR`) != 1 || strings.Contains(r, "Flags:") {
		t.Errorf("common flags repeated per command:\n%s", r)
	}
	if _, err := Vipctl(main, nil, Meta{}); err == nil || !strings.Contains(err.Error(), "status") {
		t.Errorf("missing command help: err %v", err)
	}
}
