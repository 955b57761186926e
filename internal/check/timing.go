package check

import "time"

// Kind is a checker type, named as in keepalived.conf.
type Kind uint8

// Checker kinds.
const (
	KindHTTP Kind = iota // HTTP_GET
	KindSSL              // SSL_GET
	KindTCP              // TCP_CHECK
	KindSMTP             // SMTP_CHECK
	KindDNS              // DNS_CHECK
	KindMisc             // MISC_CHECK
	KindPing             // PING_CHECK
	KindUDP              // UDP_CHECK
	KindFile             // FILE_CHECK
	KindBFD              // BFD_CHECK
)

var kindNames = [...]string{"HTTP_GET", "SSL_GET", "TCP_CHECK", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "PING_CHECK", "UDP_CHECK", "FILE_CHECK", "BFD_CHECK"}

// String returns the keepalived.conf keyword.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "CHECK?"
}

// Timing is the resolved timing of one checker. The configuration
// resolves it (config.Checker.ResolveTiming: levels and keepalived's
// defaults per type); the runner takes it as it is.
type Timing struct {
	// DelayLoop is the pause between two rounds (delay_loop, default 60 s).
	DelayLoop time.Duration
	// Retry is how many extra attempts a failing check of a server that
	// is up gets before the checker is declared down (retry; default 1,
	// 3 for DNS_CHECK, 0 for MISC_CHECK and FILE_CHECK).
	Retry int
	// DelayBeforeRetry spaces those extra attempts (delay_before_retry;
	// default 3 s for HTTP_GET/SSL_GET, delay_loop for DNS_CHECK, 1 s
	// otherwise).
	DelayBeforeRetry time.Duration
	// Warmup is the upper bound of the random delay before the first
	// attempt (warmup; default delay_loop; 0 starts at once).
	Warmup time.Duration
	// Timeout bounds one attempt: connect_timeout (default 5 s), or
	// misc_timeout for MISC_CHECK (default delay_loop).
	Timeout time.Duration
	// Alpha starts the checker down: the server joins the pool only after
	// its first success. Without alpha it starts up.
	Alpha bool
}
