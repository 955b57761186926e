package config

import (
	"bytes"
	"fmt"
	"strings"
)

// Difference is a deliberate difference between `vipd -t` and keepalived
// 2.2.7's `keepalived -t`, with the reason.
type Difference struct {
	What       string
	Keepalived string
	Vipd       string
	Why        string
}

// Differences lists the deliberate differences; docs/compat.md shows them.
var Differences = []Difference{
	{"Main configuration file missing",
		"`keepalived -t -f /nonexistent` prints \"Config files missing\" and exits 0",
		"exits 7 (KEEPALIVED_EXIT_NO_CONFIG) naming the file",
		"a check of a file that does not exist must not pass; CI pipelines run `vipd -t` before deploying"},
	{"Unbounded expansion",
		"expands `~SEQ`/`~LST` blocks and nested definitions without limit (`~SEQ(A, 1, 1, 99999999999)` ran for more than 30 s before the test killed it)",
		"stops at 4,000,000 logical lines (or 8x that many expansion steps), 32 nested includes and 1 MiB lines with a fatal error naming file:line (exit 4)",
		"a configuration check must end; the limits are far above the man page's 65,024-instance example"},
	{"`HTTP_GET`/`SSL_GET` without `url`",
		"keepalived 2.2.7 -t crashes with SIGSEGV",
		"reports \"no urls specified\" at the checker's line (exit 5)",
		"a crash is not a verdict"},
	{"Include loops",
		"re-reads the file until an internal limit, reporting every instance as \"already defined\"",
		"reports the include that loops back, once (exit 5)",
		"the same verdict with a message that says what is wrong"},
	{"Keywords of keepalived 2.3 and later",
		"2.2.7 rejects them as unknown keywords; 2.4.3 knows them",
		"judges as the keepalived named by `--keepalived-version` (default 2.2): unknown keywords for 2.2 (exit 5), known for 2.4; the daemon refuses to run a configuration with keywords its version does not know (see \"Judged as the version in use\")",
		"the same verdict as the keepalived the nodes run; a daemon skipping `auth_hmac` would send adverts its peers reject"},
	{"vipd extensions (`vipd_dataplane`, `proxy_protocol`)",
		"unknown keywords",
		"supported",
		"vipd-only features; keep them out of files shared with keepalived nodes"},
	{"Keywords vipd refuses (AH authentication, VRFs, ...)",
		"supported",
		"`vipd -t` accepts them as keepalived does, with a notice; the daemon (and `vipd -t --dataplane ...`) refuses to run the configuration",
		"vipd cannot honour them; running without them silently would be worse"},
	{"Data-plane checks",
		"none",
		"with `--dataplane proxy` (or `vipd_dataplane proxy`), DR and TUN forwarding and fwmark virtual servers are errors naming how to select the ipvs data plane; `proxy_protocol` needs the proxy data plane",
		"the userspace proxy forwards as NAT only"},
	{"`script_user` naming a non-root user",
		"keepalived 2.2.7 -t is killed by SIGTERM (exit 143) in our tests",
		"judges the scripts and exits 0 when nothing else is wrong",
		"a keepalived quirk in config-test mode, not a configuration problem"},
	{"hysteresis after a quorum reduction",
		"sets hysteresis to 4294967295 when the quorum was reduced to 0",
		"sets it to 0",
		"an unsigned underflow in keepalived"},
}

// CompatMarkdown renders docs/compat.md from the keyword table: every
// keyword keepalived 2.2/2.4 accepts, per block, with its arguments,
// default and what vipd does with it, then vipd's extensions, exit codes
// and the deliberate differences.
func CompatMarkdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# vipd and keepalived.conf\n\n")
	p("<!-- Generated from the keyword table in internal/config by\n")
	p("     go test ./internal/config -run TestCompatDoc -args -update\n")
	p("     Do not edit by hand. -->\n\n")
	p("vipd reads keepalived.conf. `vipd -t [-f FILE]` judges a configuration as `keepalived -t` does\n")
	p("(same verdict and exit code; tested side by side with Debian's keepalived 2.2.7 on its samples, on\n")
	p("configurations from users' posts and on every diagnostic vipd has), and names file:line, the\n")
	p("keyword and what to do for every finding. `vipd -d` prints the normalized configuration as JSON.\n\n")
	p("Status of a keyword:\n\n")
	p("- **supported**: parsed into vipd's model and acted upon.\n")
	p("- **ignored**: accepted without effect; `vipd -t` prints a notice.\n")
	p("- **refused**: accepted by `vipd -t` like keepalived, with a notice; the daemon refuses to run a configuration using it.\n")
	p("- **not yet**: parsed, but vipd does not act on it yet and runs without it (the note says what happens instead); `vipd -t` prints a notice and the daemon logs a warning.\n")
	p("- **deprecated**: an old name of another keyword; *warns* means keepalived 2.2 prints a deprecation warning, which fails `keepalived -t` (and `vipd -t`).\n")
	p("- **since**: keepalived version that introduced a keyword keepalived 2.2.7 does not know.\n\n")

	p("## Exit codes of `vipd -t`\n\n")
	p("The values keepalived 2.2.7 returns (KEEPALIVED_EXIT_*; its man page lists older values).\n\n")
	p("| code | meaning |\n|---|---|\n")
	p("| 0 | valid (notices only) |\n")
	p("| 2 | a keyword is missing its parameter (keepalived aborts the parse) |\n")
	p("| 4 | the configuration cannot be run (expansion limits) |\n")
	p("| 5 | errors or warnings (unknown keywords, values out of range, deprecated keywords, missing interfaces, ...) |\n")
	p("| 6 | scripts would run as root without `enable_script_security` |\n")
	p("| 7 | the configuration file cannot be read |\n\n")

	p("## Judged as the version in use\n\n")
	p("`vipd -t --keepalived-version 2.2` (the default: Debian 12 ships 2.2.7) judges as keepalived 2.2.7 does,\n")
	p("`--keepalived-version 2.4` as keepalived 2.4.3 does; the daemon takes the same flag. The side-by-side test\n")
	p("(internal/config TestKeepalivedSideBySide) runs every sample, seed, diagnostic case and mutant through both\n")
	p("keepalived versions, vipd judging as each (the samples are the same 25 files in both releases). Besides the\n")
	p("keywords below, which 2.2.7 reports as unknown keywords (exit 5; the contents of a block are skipped) and\n")
	p("2.4.3 knows, the corpus showed these differences, which vipd follows under `--keepalived-version 2.4`:\n\n")
	p("| what | keepalived 2.2.7 | keepalived 2.4.3 |\n|---|---|---|\n")
	p("| a VIP listed twice in an instance (the sample keepalived.conf.vrrp) | accepted | \"(VI_1): VIP duplicates a VIP X - ignoring\", exit 5 |\n")
	p("| `virtual_server` without `real_server` | accepted | \"Virtual server X has no real servers - ignoring\", exit 5 |\n")
	p("| `notification_email_from` with two words | the first is used | \"emailfrom - ignoring extra entries\", exit 5 |\n")
	p("| a route without interface (the sample keepalived.conf.vrrp.static_ipaddress) | \"cannot track route ... with no interface specified\", exit 5 | accepted |\n")
	p("| a root script under a linked directory (`/bin/true` on merged /usr) with `enable_script_security` | accepted (the resolved path is checked) | a track script is disabled (\"Disabling track script X due to insecure\", exit 5); a notify script is dropped silently |\n\n")
	p("| keyword | block | since |\n|---|---|---|\n")
	for _, sec := range Sections() {
		for _, k := range sec.Keywords {
			if k.Since != "" {
				p("| `%s` | %s | %s |\n", k.Name, sec.Name, k.Since)
			}
		}
	}
	p("\n")

	p("## Deliberate differences from keepalived 2.2.7\n\n")
	p("| what | keepalived -t | vipd -t | why |\n|---|---|---|---|\n")
	for _, d := range Differences {
		p("| %s | %s | %s | %s |\n", d.What, d.Keepalived, d.Vipd, d.Why)
	}
	p("\n")

	p("## Preprocessor\n\n")
	p("Supported as in keepalived: `#` and `!` comments anywhere (also glued to a word, `33#comment`), braces\n")
	p("glued to words (`VI_2{`), double-quoted strings (single quotes and backslash escapes are interpreted in\n")
	p("script commands, as keepalived does), `include` with globs and `{a,b}` braces relative to the\n")
	p("including file's directory (a pattern matching nothing is a notice, as keepalived ignores it; `includea` makes it\n")
	p("an error), `$NAME=value` definitions (lazy, recursive, multi-line with `\\`), `$NAME` and `${NAME}`,\n")
	p("the predefined `${_PWD}`, `${_INSTANCE}`, `${_RANDOM [MIN [MAX]]}`, `${_HASH}`, `${_BANG}`,\n")
	p("`${_ENV VAR}`, `@id`/`@^id` conditional lines (`-i/--config-id`, default the short host name),\n")
	p("`~SEQ(VAR, [START, [STEP,]] END)`, `~SEQx(...)` and `~LST(VAR, v1, ...)` / `~LST({A,B}, {1,2}, ...)`.\n\n")

	for _, s := range Sections() {
		title := "Top level"
		if s != topSection {
			title = fmt.Sprintf("`%s` — %s", s.Name, s.Doc)
		}
		p("## %s\n\n", title)
		p("| keyword | arguments | default | status | notes |\n|---|---|---|---|---|\n")
		for _, k := range s.Keywords {
			status := k.Status.String()
			var notes []string
			if k.VipdOnly {
				status = "**vipd extension**"
			}
			if k.Deprecated != "" {
				w := "accepted silently by keepalived 2.2"
				if k.Warn {
					w = "keepalived 2.2 *warns*"
				}
				notes = append(notes, fmt.Sprintf("deprecated: use `%s` (%s)", k.Deprecated, w))
			}
			if k.Since != "" {
				notes = append(notes, "since keepalived "+k.Since)
			}
			if k.Block != nil {
				notes = append(notes, fmt.Sprintf("block: see `%s`", k.Block.Name))
			}
			if k.Note != "" {
				notes = append(notes, k.Note)
			}
			p("| `%s` | %s | %s | %s | %s |\n", k.Name, mdCell(k.Args), mdCell(k.Default), status, mdCell(strings.Join(notes, "; ")))
		}
		p("\n")
	}
	return b.Bytes()
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "<", "&lt;")
	s = strings.ReplaceAll(s, ">", "&gt;")
	return s
}
