package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Severity orders diagnostics. The levels map onto keepalived's
// --config-test exit codes (see ExitCode), so `vipd -t` exits as
// `keepalived -t` does.
type Severity int

// Severities, least to most severe.
const (
	// Notice is vipd's own remark that keepalived would not make (a
	// keyword vipd ignores, a feature the daemon will refuse): it never
	// changes the exit status of a config test.
	Notice Severity = iota
	// Warning is a problem keepalived reports and works around (a
	// deprecated keyword, a value out of range replaced by the default).
	Warning
	// Error is a problem keepalived reports and resolves by dropping the
	// item (an unknown keyword, an invalid address, an instance without
	// a virtual_router_id).
	Error
	// Security is a script that would run as root without
	// enable_script_security (keepalived's SECURITY VIOLATION).
	Security
	// Fatal makes the configuration unusable: a keyword missing its
	// parameter, an unreadable main file, include loops.
	Fatal
)

// String returns the lower-case name used in messages.
func (s Severity) String() string {
	switch s {
	case Notice:
		return "notice"
	case Warning:
		return "warning"
	case Error:
		return "error"
	case Security:
		return "security"
	case Fatal:
		return "fatal"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Exit statuses of a configuration test, keepalived's KEEPALIVED_EXIT_*
// values (keepalived 2.2: lib/scheduler.h) as keepalived -t returns them.
const (
	ExitOK                 = 0 // KEEPALIVED_EXIT_OK
	ExitProgramError       = 2 // KEEPALIVED_EXIT_PROGRAM_ERROR: keepalived -t aborts on a missing parameter with it
	ExitFatal              = 3 // KEEPALIVED_EXIT_FATAL
	ExitConfig             = 4 // KEEPALIVED_EXIT_CONFIG: the configuration cannot be run
	ExitConfigTest         = 5 // KEEPALIVED_EXIT_CONFIG_TEST: errors or warnings
	ExitConfigTestSecurity = 6 // KEEPALIVED_EXIT_CONFIG_TEST_SECURITY
	ExitNoConfig           = 7 // KEEPALIVED_EXIT_NO_CONFIG
)

// Diagnostic is one finding about a configuration.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	// Keyword is the keyword the finding is about ("" when none).
	Keyword string
	// Msg says what is wrong; Hint says what to do about it.
	Msg  string
	Hint string
	// Exit overrides the exit status this finding causes in a config
	// test (0: derived from Severity).
	Exit int
}

// String formats the diagnostic as "file:line: severity: keyword: msg (hint)".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.Pos.Line > 0 || d.Pos.File != "" {
		b.WriteString(d.Pos.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	if d.Keyword != "" {
		b.WriteString(d.Keyword)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	if d.Hint != "" {
		b.WriteString(" (")
		b.WriteString(d.Hint)
		b.WriteString(")")
	}
	return b.String()
}

func (d Diagnostic) exitCode() int {
	if d.Exit != 0 {
		return d.Exit
	}
	switch d.Severity {
	case Warning, Error:
		return ExitConfigTest
	case Security:
		return ExitConfigTestSecurity
	case Fatal:
		return ExitConfig
	}
	return ExitOK
}

// Diagnostics is the list of findings of one load, in the order found.
type Diagnostics []Diagnostic

// Max returns the highest severity, or Notice for an empty list.
func (ds Diagnostics) Max() Severity {
	m := Notice
	for _, d := range ds {
		if d.Severity > m {
			m = d.Severity
		}
	}
	return m
}

// HasProblems reports whether keepalived would have complained: any
// finding above Notice.
func (ds Diagnostics) HasProblems() bool { return ds.Max() > Notice }

// ExitCode returns the status `keepalived -t` exits with for these
// findings: 0 when there are only notices; a missing parameter's 2 wins
// (keepalived aborts there), then a security violation's 6, then a fatal
// 4, then 5 for any other warning or error.
func (ds Diagnostics) ExitCode() int {
	rank := map[int]int{ExitOK: 0, ExitConfigTest: 1, ExitConfig: 2, ExitFatal: 2, ExitConfigTestSecurity: 3, ExitProgramError: 4, ExitNoConfig: 5}
	best := ExitOK
	for _, d := range ds {
		c := d.exitCode()
		if rank[c] > rank[best] {
			best = c
		}
	}
	return best
}

// Sorted returns the diagnostics ordered by file, line, then severity
// (most severe first), keeping the order of equal ones.
func (ds Diagnostics) Sorted() Diagnostics {
	out := append(Diagnostics(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Severity > b.Severity
	})
	return out
}

// Err returns nil when nothing exceeds Notice, else an error listing the
// findings of severity Warning and above.
func (ds Diagnostics) Err() error {
	var msgs []string
	for _, d := range ds {
		if d.Severity > Notice {
			msgs = append(msgs, d.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// String lists one diagnostic per line.
func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// diags collects findings; it is embedded in the reader and the builder.
type diags struct {
	list Diagnostics
}

// add records a diagnostic and returns it for adjustments (valid until
// the next add).
func (d *diags) add(pos Pos, sev Severity, kw, hint, format string, args ...any) *Diagnostic {
	d.list = append(d.list, Diagnostic{Pos: pos, Severity: sev, Keyword: kw, Msg: fmt.Sprintf(format, args...), Hint: hint})
	return &d.list[len(d.list)-1]
}

// Blocking reports whether the daemon cannot run a configuration with
// this finding: keepalived could not load it (fatal, a missing parameter,
// no file), or vipd cannot honour it (a refused keyword, a feature the
// data plane lacks). Other errors name items keepalived drops while
// running the rest, and vipd does the same at start.
func (d Diagnostic) Blocking() bool {
	if d.Severity == Fatal {
		return true
	}
	switch d.Exit {
	case ExitConfig, ExitProgramError, ExitNoConfig:
		return true
	}
	return false
}
