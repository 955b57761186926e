package check

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
)

// SMTP is SMTP_CHECK: the server must greet with a 220 banner and answer
// HELO with 250; the checker then says QUIT. Like keepalived it speaks
// plain SMTP (no STARTTLS).
type SMTP struct {
	Endpoint
	// HeloName is helo_name; empty: the local host name.
	HeloName string
}

// Check runs one banner + HELO exchange.
func (c *SMTP) Check(ctx context.Context) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	conn, release, err := connectGuarded(ctx, c.dialTCP) // lastchance.go
	if err != nil {
		return down("%s", reason("connect", err))
	}
	defer release()
	br := bufio.NewReaderSize(conn, 1024)
	code, text, err := readSMTPReply(br)
	if err != nil {
		return down("%s", reason("banner", ctxErr(ctx, err)))
	}
	if code != 220 {
		return down("bad SMTP banner %d %s", code, text)
	}
	helo := c.HeloName
	if helo == "" {
		helo, _ = os.Hostname()
	}
	if _, err := fmt.Fprintf(conn, "HELO %s\r\n", helo); err != nil {
		return down("%s", reason("HELO", ctxErr(ctx, err)))
	}
	code, text, err = readSMTPReply(br)
	if err != nil {
		return down("%s", reason("HELO", ctxErr(ctx, err)))
	}
	if code != 250 {
		return down("bad HELO response %d %s", code, text)
	}
	_, _ = conn.Write([]byte("QUIT\r\n"))
	return up("SMTP 250")
}

// readSMTPReply reads one (possibly multi-line, "250-...") reply and
// returns its code and the text of its last line.
func readSMTPReply(br *bufio.Reader) (int, string, error) {
	for lines := 0; lines < 100; lines++ {
		line, err := br.ReadString('\n')
		if err != nil {
			if line == "" {
				return 0, "", err
			}
			return 0, "", fmt.Errorf("truncated reply %q", truncate([]byte(line), 40))
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, "", fmt.Errorf("bad SMTP reply %q", line)
		}
		var code int
		if _, err := fmt.Sscanf(line[:3], "%03d", &code); err != nil || code < 100 || code > 599 {
			return 0, "", fmt.Errorf("bad SMTP reply %q", truncate([]byte(line), 40))
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		return code, strings.TrimSpace(line[3:]), nil
	}
	return 0, "", fmt.Errorf("SMTP reply longer than 100 lines")
}
