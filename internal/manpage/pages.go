package manpage

import (
	"fmt"
	"strings"
)

// Meta is what a page shows besides the help text.
type Meta struct {
	Version string // "1.2.0"; the footer says "vipd 1.2.0"
	Date    string // the footer's date, e.g. the release commit's (YYYY-MM-DD)
}

// Vipd builds vipd(8) from the output of `vipd --help`. The options and
// examples are the help's own; the sections that --help has no room for
// (signals, files, exit status) are written here.
func Vipd(help string, m Meta) (*Page, error) {
	intro, secs := Split(Parse(help))
	usage, intro := takeUsage(intro, "vipd")
	if usage == "" {
		return nil, fmt.Errorf("vipd --help: no Usage line")
	}
	opts := find(secs, "Options")
	if opts == nil {
		return nil, fmt.Errorf("vipd --help: no Options section")
	}
	p := &Page{Name: "vipd", Section: "8", Date: m.Date, Source: "vipd " + m.Version, Manual: "System Administration",
		Summary:  "high-availability load balancer that reads keepalived.conf",
		Synopsis: []string{usage}}
	desc := append(intro, paras(
		"vipd runs what the \"LVS + Keepalived\" and \"HAProxy + Keepalived\" setups run, as one program: VRRP (v2 and v3, "+
			"on the wire compatible with keepalived 2.2.7, so a vipd and a keepalived node can share a virtual router), "+
			"virtual servers balanced over health-checked real servers with every LVS scheduler, notify scripts and mail.",
		"It reads keepalived.conf(5) as keepalived does: the same keywords, defaults and diagnostics. Virtual servers run "+
			"on a userspace L4 proxy (the proxy data plane, which needs nothing from the kernel) or on the kernel's IPVS (the "+
			"ipvs data plane, needed for direct routing and tunnelling); see --dataplane.",
		"vipd never forks: it is one process, whatever -n says. Control it with vipctl(8).")...)
	p.Sections = append(p.Sections, Section{Title: "DESCRIPTION", Blocks: desc})
	p.Sections = append(p.Sections, Section{Title: "OPTIONS", Blocks: opts.Blocks})
	p.Sections = append(p.Sections, Section{Title: "SIGNALS", Blocks: []Block{
		{Kind: Item, Text: "HUP", Desc: "Reload the configuration. The new one is validated completely first; if it has errors, " +
			"they are logged with file:line and the running configuration stays (vipctl reload reports them to you)."},
		{Kind: Item, Text: "TERM, INT", Desc: "Stop: send priority 0 adverts so a backup takes over at once, remove every VIP " +
			"vipd added, stop the checkers and the data plane."},
		{Kind: Item, Text: "USR1", Desc: "Write the full state as JSON to /tmp/vipd.data (keepalived: /tmp/keepalived.data)."},
		{Kind: Item, Text: "USR2", Desc: "Write the VRRP counters to /tmp/vipd.stats (keepalived: /tmp/keepalived.stats)."},
	}})
	p.Sections = append(p.Sections, Section{Title: "EXIT STATUS", Blocks: paras(
		"0 after a clean stop, or when -t finds nothing. With -t and -d, keepalived's codes: 4 cannot run, 5 errors or warnings " +
			"in the configuration, 6 scripts would run as root without enable_script_security, 7 no configuration file. " +
			"When it starts, vipd exits with 4 if the configuration has errors, 1 on any other failure.")})
	p.Sections = append(p.Sections, Section{Title: "FILES", Blocks: []Block{
		{Kind: Item, Text: "/etc/keepalived/keepalived.conf", Desc: "The configuration (-f), as keepalived's."},
		{Kind: Item, Text: "/etc/default/vipd", Desc: "Options of the systemd unit vipd.service (VIPD_OPTIONS)."},
		{Kind: Item, Text: "/etc/vipd/keepalived.conf.example", Desc: "A commented example configuration."},
		{Kind: Item, Text: "/run/vipd/vipd.sock", Desc: "The control socket vipctl talks to (--control)."},
		{Kind: Item, Text: "/run/vipd/vipd.pid", Desc: "The process id (-p)."},
		{Kind: Item, Text: "/run/vipd/ipvs.json", Desc: "The IPVS services vipd owns (ipvs data plane), so a restart removes only its own."},
	}})
	if ex := find(secs, "Examples"); ex != nil {
		p.Sections = append(p.Sections, Section{Title: "EXAMPLES", Blocks: ex.Blocks})
	}
	p.Sections = append(p.Sections, Section{Title: "SEE ALSO", Blocks: paras("vipctl(8), keepalived.conf(5), keepalived(8), ipvsadm(8)")})
	return p, nil
}

// Vipctl builds vipctl(8) from `vipctl --help` and, per command named in
// its Commands section, `vipctl help COMMAND` (help maps the command's
// name to that output; "help" itself needs none).
func Vipctl(mainHelp string, help map[string]string, m Meta) (*Page, error) {
	intro, secs := Split(Parse(mainHelp))
	us := find(secs, "Usage")
	if us == nil || len(us.Blocks) == 0 || us.Blocks[0].Kind != Verbatim {
		return nil, fmt.Errorf("vipctl --help: no Usage section")
	}
	cmds := find(secs, "Commands")
	if cmds == nil {
		return nil, fmt.Errorf("vipctl --help: no Commands section")
	}
	p := &Page{Name: "vipctl", Section: "8", Date: m.Date, Source: "vipd " + m.Version, Manual: "System Administration",
		Summary:  "control and inspect a running vipd",
		Synopsis: us.Blocks[0].Lines}
	desc := append(intro, paras(
		"vipctl is a thin client of vipd's control API on a unix socket: each command is one request, so what it prints is "+
			"what the daemon holds at that moment. Its listings are byte for byte those of ipvsadm(8), whichever data plane runs "+
			"the virtual servers.")...)
	p.Sections = append(p.Sections, Section{Title: "DESCRIPTION", Blocks: desc})

	var blocks []Block
	for _, c := range cmds.Blocks {
		if c.Kind != Item {
			continue
		}
		name := c.Text
		if name == "help" {
			blocks = append(blocks, Block{Kind: Heading, Text: "help"}, Block{Kind: Usage, Text: "vipctl help [COMMAND]"}, Block{Kind: Para, Text: c.Desc + "."})
			continue
		}
		h, ok := help[name]
		if !ok {
			return nil, fmt.Errorf("no help text for vipctl %s", name)
		}
		cintro, csecs := Split(Parse(h))
		usage, cintro := takeUsage(cintro, "vipctl")
		if usage == "" {
			return nil, fmt.Errorf("vipctl help %s: no Usage line", name)
		}
		blocks = append(blocks, Block{Kind: Heading, Text: name}, Block{Kind: Usage, Text: usage})
		blocks = append(blocks, cintro...)
		for _, s := range csecs {
			if s.Title == "Flags" {
				// The common flags are listed once, below.
				s.Blocks = dropItems(s.Blocks, "--socket PATH", "-o, --output FORMAT")
				if len(s.Blocks) == 0 {
					continue
				}
			}
			blocks = append(blocks, Block{Kind: Para, Text: s.Title + ":"})
			blocks = append(blocks, s.Blocks...)
		}
	}
	p.Sections = append(p.Sections, Section{Title: "COMMANDS", Blocks: blocks})
	// The paragraph that starts "Exit status:" (after the common flags)
	// is a section of its own.
	var exit []Block
	for _, s := range secs {
		var kept []Block
		for _, bl := range s.Blocks {
			if bl.Kind == Para && strings.HasPrefix(bl.Text, "Exit status: ") {
				exit = paras(strings.TrimPrefix(bl.Text, "Exit status: "))
				continue
			}
			kept = append(kept, bl)
		}
		if strings.HasPrefix(s.Title, "Common flags") {
			// "Common flags (before or after the command)"
			note := strings.TrimSpace(strings.TrimPrefix(s.Title, "Common flags"))
			if note != "" {
				note = "These flags go " + strings.Trim(note, "()") + "."
				kept = append(paras(note), kept...)
			}
			p.Sections = append(p.Sections, Section{Title: "COMMON FLAGS", Blocks: kept})
		}
	}
	if exit != nil {
		p.Sections = append(p.Sections, Section{Title: "EXIT STATUS", Blocks: exit})
	}
	p.Sections = append(p.Sections, Section{Title: "ENVIRONMENT", Blocks: []Block{
		{Kind: Item, Text: "VIPCTL_SOCKET", Desc: "The control socket to use when --socket is not given."},
	}})
	p.Sections = append(p.Sections, Section{Title: "FILES", Blocks: []Block{
		{Kind: Item, Text: "/run/vipd/vipd.sock", Desc: "vipd's control socket (vipd --control)."},
		{Kind: Item, Text: "/run/vipd/realserver.json", Desc: "What vipctl realserver up changed, so that down undoes exactly that."},
	}})
	p.Sections = append(p.Sections, Section{Title: "SEE ALSO", Blocks: paras("vipd(8), ipvsadm(8), keepalived.conf(5)")})
	return p, nil
}

// takeUsage removes the "Usage: PROG ..." paragraph from blocks and
// returns its synopsis.
func takeUsage(blocks []Block, prog string) (string, []Block) {
	for i, b := range blocks {
		if b.Kind == Para && strings.HasPrefix(b.Text, "Usage: "+prog) {
			return strings.TrimSpace(strings.TrimPrefix(b.Text, "Usage: ")), append(blocks[:i:i], blocks[i+1:]...)
		}
	}
	return "", blocks
}

func find(secs []Section, title string) *Section {
	for i := range secs {
		if secs[i].Title == title {
			return &secs[i]
		}
	}
	return nil
}

func dropItems(blocks []Block, terms ...string) []Block {
	var out []Block
	for _, b := range blocks {
		drop := false
		for _, t := range terms {
			if b.Kind == Item && b.Text == t {
				drop = true
			}
		}
		if !drop {
			out = append(out, b)
		}
	}
	return out
}

func paras(texts ...string) []Block {
	var out []Block
	for _, t := range texts {
		out = append(out, Block{Kind: Para, Text: t})
	}
	return out
}
