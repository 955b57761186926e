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
)

var kindNames = [...]string{"HTTP_GET", "SSL_GET", "TCP_CHECK", "SMTP_CHECK", "DNS_CHECK", "MISC_CHECK", "PING_CHECK", "UDP_CHECK", "FILE_CHECK"}

// String returns the keepalived.conf keyword.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "CHECK?"
}

// Timing is the resolved timing of one checker.
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

// Layer holds the timing keywords written at one level of the
// configuration (virtual_server, real_server or the checker block); a nil
// field was not written there.
type Layer struct {
	DelayLoop        *time.Duration
	Retry            *int
	DelayBeforeRetry *time.Duration
	Warmup           *time.Duration
	// Timeout is connect_timeout, or misc_timeout for MISC_CHECK.
	Timeout *time.Duration
	Alpha   *bool
}

// Defaults keepalived uses when no level sets a keyword.
const (
	DefaultDelayLoop = 60 * time.Second
)

// Resolve computes a checker's timing from the three levels keepalived
// inherits through: the most specific level that sets a keyword wins
// (checker over real_server over virtual_server), and keepalived's per-kind
// defaults fill the rest. Defaults that depend on delay_loop (warmup,
// DNS_CHECK's delay_before_retry, MISC_CHECK's misc_timeout) use the
// resolved delay_loop.
func Resolve(kind Kind, vs, rs, ck Layer) Timing {
	pick := func(f func(Layer) bool) (Layer, bool) {
		for _, l := range []Layer{ck, rs, vs} {
			if f(l) {
				return l, true
			}
		}
		return Layer{}, false
	}
	var t Timing
	if l, ok := pick(func(l Layer) bool { return l.DelayLoop != nil }); ok {
		t.DelayLoop = *l.DelayLoop
	} else {
		t.DelayLoop = DefaultDelayLoop
	}
	switch kind {
	case KindDNS:
		t.Retry = 3
	case KindMisc, KindFile:
		t.Retry = 0
	default:
		t.Retry = 1
	}
	if l, ok := pick(func(l Layer) bool { return l.Retry != nil }); ok && kind != KindFile {
		t.Retry = *l.Retry
	}
	switch kind {
	case KindHTTP, KindSSL:
		t.DelayBeforeRetry = 3 * time.Second
	case KindDNS:
		t.DelayBeforeRetry = t.DelayLoop
	default:
		t.DelayBeforeRetry = time.Second
	}
	if l, ok := pick(func(l Layer) bool { return l.DelayBeforeRetry != nil }); ok {
		t.DelayBeforeRetry = *l.DelayBeforeRetry
	}
	t.Warmup = t.DelayLoop
	if l, ok := pick(func(l Layer) bool { return l.Warmup != nil }); ok {
		t.Warmup = *l.Warmup
	}
	t.Timeout = DefaultConnectTimeout
	if kind == KindMisc {
		t.Timeout = t.DelayLoop
	}
	if l, ok := pick(func(l Layer) bool { return l.Timeout != nil }); ok {
		t.Timeout = *l.Timeout
	}
	if l, ok := pick(func(l Layer) bool { return l.Alpha != nil }); ok {
		t.Alpha = *l.Alpha
	}
	if kind == KindFile {
		// A track file has no attempts that fail transiently; it is
		// read, not probed, so it starts from its content at once.
		t.Warmup = 0
	}
	return t
}
