package check

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// The Runner logs checker state the way keepalived 2.2.7's checker
// process does, so the log lines users grep and alert on keep working:
//
//   - when a checker becomes up, or reports its first result up:
//     "TCP connection to [198.18.0.14]:tcp:80 success.",
//     "HTTP status code success to [..]:tcp:80 url(/health)." and
//     "Remote Web server [..]:tcp:80 succeed on service.";
//   - when a checker goes down, or reports its first result down:
//     "TCP_CHECK on service [..]:tcp:80 failed after 1 retries." (or
//     "... failed." without retries);
//   - every failed attempt of a checker that is up (those that lead to
//     retries and the last one): "TCP connection to [..]:tcp:80 failed.",
//     "Timeout connecting server [..]:tcp:80.", "HTTP status code error to
//     server [..]:tcp:80."; at Info with log_all_failures (or
//     checker_log_all_failures, which the caller folds into
//     Spec.LogAllFailures), at Debug otherwise, as keepalived prints them
//     only with log_all_failures.
//
// Each line carries the checker's name and the attempt's Reason as
// attributes. The daemon logs the data plane side ("Removing service
// [..]:tcp:80 from VS [..]:tcp:80"). keepalived's MISC_CHECK and
// PING_CHECK lines also name the virtual server, which the Runner does not
// know; vipd leaves that part out.

// logAttempt logs the result res of an attempt of the checker sp, whose
// status was before before the result and is after after it.
func (r *Runner) logAttempt(sp Spec, before, after Status, res Result) {
	lg := r.opts.Logger
	ctx := context.Background()
	first := before.Checks == 0
	if res.Up {
		if (!before.Up || first) && lg.Enabled(ctx, slog.LevelInfo) {
			for _, line := range upLines(sp.Checker, before.Server) {
				lg.Info(line, "checker", sp.Name, "reason", res.Reason)
			}
		}
		return
	}
	wentDown := !after.Up && (before.Up || first)
	failLevel := slog.LevelDebug
	if sp.LogAllFailures {
		failLevel = slog.LevelInfo
	}
	var failure string
	if (before.Up || first) && lg.Enabled(ctx, failLevel) {
		failure = failureLine(sp.Checker, before.Server, res.Reason)
	}
	var downLine string
	if wentDown && lg.Enabled(ctx, slog.LevelInfo) {
		retries := sp.Timing.Retry
		if first {
			retries = 0
		}
		downLine = downLineOf(sp.Checker, before.Server, res.Reason, retries)
	}
	if failure != "" && failure != downLine {
		lg.Log(ctx, failLevel, failure, "checker", sp.Name, "reason", res.Reason, "failures", after.Failures, "retry", sp.Timing.Retry)
	}
	if downLine != "" {
		lg.Info(downLine, "checker", sp.Name, "reason", res.Reason)
	}
}

// isTimeout reports whether a Reason says an attempt ran out of time.
func isTimeout(reason string) bool {
	return strings.HasSuffix(reason, ": timeout") || strings.HasPrefix(reason, "timed out")
}

// httpStep names a failed HTTP attempt as keepalived's log does, from the
// Reason HTTP.Check gave.
func httpStep(reason string) string {
	// "url 2 /x: HTTP status 503 ..." when there are several URLs.
	if strings.HasPrefix(reason, "url ") {
		if _, rest, ok := strings.Cut(reason, ": "); ok {
			reason = rest
		}
	}
	switch {
	case reason == "connect: timeout" || reason == "TLS handshake: timeout":
		return "Timeout connecting"
	case strings.HasPrefix(reason, "connect: "):
		return "Error connecting"
	case strings.HasPrefix(reason, "TLS handshake"):
		return "SSL handshake/communication error connecting to"
	case reason == "write: timeout":
		return "Timeout WEB write"
	case strings.HasPrefix(reason, "write: "):
		return "Cannot send get request to"
	case reason == "read: timeout":
		return "Timeout HTTP read"
	case strings.HasPrefix(reason, "read: no data"):
		return "Read, no data received from"
	case strings.HasPrefix(reason, "read: "):
		return "Read error with"
	case strings.HasPrefix(reason, "HTTP status"):
		return "HTTP status code error to"
	case strings.HasPrefix(reason, "digest mismatch"):
		return "MD5 digest error to"
	case strings.Contains(reason, "regex"):
		return "Regex match failed"
	}
	return "Error connecting"
}

// failureLine is keepalived's line for one failed attempt.
func failureLine(ck Checker, srv, reason string) string {
	switch c := ck.(type) {
	case *TCP:
		if isTimeout(reason) {
			return fmt.Sprintf("TCP connection to %s timeout.", srv)
		}
		return fmt.Sprintf("TCP connection to %s failed.", srv)
	case *HTTP:
		return fmt.Sprintf("%s server %s.", httpStep(reason), srv)
	case *UDP:
		if strings.HasPrefix(reason, "reply ") {
			return fmt.Sprintf("UDP check to %s reply data mismatch.", srv)
		}
		return fmt.Sprintf("UDP connection to %s failed.", srv)
	case *Ping:
		if isTimeout(reason) {
			return fmt.Sprintf("ICMP connection to address %s timeout.", srv)
		}
		return fmt.Sprintf("ICMP connection to %s failed.", srv)
	case *SMTP:
		return smtpLine(reason, srv)
	case *DNS:
		return fmt.Sprintf("DNS_CHECK (%s) %s", srv, dnsStep(reason))
	case *Misc:
		return fmt.Sprintf("Misc check for [%s] by [%s] %s.", srv, miscProgram(c), miscOutcome(reason))
	}
	return fmt.Sprintf("%s on service %s failed: %s", kindName(ck), srv, reason)
}

// downLineOf is keepalived's line for a checker that goes down after
// retries more attempts (0: none, or its first result).
func downLineOf(ck Checker, srv, reason string, retries int) string {
	after := ""
	if retries > 0 {
		after = fmt.Sprintf(" after %d retries", retries)
	}
	switch c := ck.(type) {
	case *TCP:
		return fmt.Sprintf("TCP_CHECK on service %s failed%s.", srv, after)
	case *HTTP:
		return fmt.Sprintf("HTTP_CHECK on service %s failed%s.", srv, after)
	case *UDP:
		return fmt.Sprintf("UDP_CHECK on service %s failed%s.", srv, after)
	case *Ping:
		return fmt.Sprintf("ICMP CHECK on service %s failed%s.", srv, after)
	case *SMTP:
		// keepalived's SMTP_CHECK has no line of its own for going
		// down: its failure line is the last word.
		return smtpLine(reason, srv)
	case *DNS:
		return fmt.Sprintf("DNS_CHECK (%s) %s%s", srv, dnsStep(reason), after)
	case *Misc:
		return fmt.Sprintf("Misc check for [%s] by [%s] %s.", srv, miscProgram(c), miscOutcome(reason))
	}
	return fmt.Sprintf("%s on service %s failed%s.", kindName(ck), srv, after)
}

// upLines are keepalived's lines for a checker that comes up.
func upLines(ck Checker, srv string) []string {
	switch c := ck.(type) {
	case *TCP:
		return []string{fmt.Sprintf("TCP connection to %s success.", srv)}
	case *HTTP:
		var lines []string
		if n := len(c.URLs); n > 0 {
			u := &c.URLs[n-1]
			what := "HTTP status code"
			switch {
			case u.Regex != nil:
				what = "Regex match"
			case u.Digest != "":
				what = "MD5 digest"
			}
			lines = append(lines, fmt.Sprintf("%s success to %s url(%s).", what, srv, u.Path))
		}
		return append(lines, fmt.Sprintf("Remote Web server %s succeed on service.", srv))
	case *UDP:
		return []string{fmt.Sprintf("UDP connection to %s success.", srv)}
	case *Ping:
		return []string{fmt.Sprintf("ICMP connection to %s success.", srv)}
	case *SMTP:
		return []string{fmt.Sprintf("Remote SMTP server %s succeed on service.", srv)}
	case *DNS:
		return []string{fmt.Sprintf("DNS_CHECK (%s) succeed on service.", srv)}
	case *Misc:
		return []string{fmt.Sprintf("Misc check for [%s] by [%s] succeeded.", srv, miscProgram(c))}
	}
	return []string{fmt.Sprintf("%s on service %s succeeded.", kindName(ck), srv)}
}

func smtpLine(reason, srv string) string {
	switch {
	case reason == "connect: timeout":
		return "Connection timeout to server " + srv
	case strings.HasPrefix(reason, "connect: "):
		return "Error connecting to server " + srv
	case strings.HasPrefix(reason, "bad SMTP banner"):
		return "Bad greeting banner from server " + srv
	case strings.HasPrefix(reason, "bad HELO"):
		return "Bad HELO response from server " + srv
	case reason == "banner: timeout" || reason == "HELO: timeout":
		return "Read timeout from server " + srv
	}
	return "Read failure from server " + srv
}

func dnsStep(reason string) string {
	switch {
	case reason == "connect: timeout":
		return "connection timeout."
	case strings.HasPrefix(reason, "connect: "):
		return "connection error."
	case strings.HasPrefix(reason, "send: "):
		return "failed to write socket."
	case reason == "recv: timeout":
		return "read timeout from socket"
	case strings.HasPrefix(reason, "DNS rcode "):
		var rc int
		_, _ = fmt.Sscanf(reason, "DNS rcode %d", &rc)
		return fmt.Sprintf("read error occurred. (rcode = %d)", rc)
	}
	return reason
}

func miscProgram(c *Misc) string {
	if len(c.Argv) == 0 {
		return ""
	}
	return c.Argv[0]
}

// miscOutcome turns Misc's Reason into keepalived's wording.
func miscOutcome(reason string) string {
	var n int
	switch {
	case strings.HasPrefix(reason, "timed out"):
		return "timed out"
	case strings.HasPrefix(reason, "exit "):
		if _, err := fmt.Sscanf(reason, "exit %d", &n); err == nil {
			return fmt.Sprintf("failed (exited with status %d)", n)
		}
	case strings.HasPrefix(reason, "killed by signal "):
		return "failed (due to signal " + strings.TrimPrefix(reason, "killed by signal ") + ")"
	}
	return "failed (" + reason + ")"
}

// kindName is the keepalived keyword of a checker, for lines of checkers
// keepalived has no wording for.
func kindName(ck Checker) string {
	switch ck.(type) {
	case *File:
		return "FILE_CHECK"
	}
	return "check"
}
