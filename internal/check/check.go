// Package check implements keepalived's real-server health checkers
// (HTTP_GET, SSL_GET, TCP_CHECK, PING_CHECK, UDP_CHECK, DNS_CHECK,
// SMTP_CHECK, MISC_CHECK, FILE_CHECK) and one Runner that applies
// keepalived's timing to all of them: delay_loop, retry,
// delay_before_retry, warmup and alpha.
//
// A Checker makes one attempt per call and says what it saw; it keeps no
// state between calls and knows nothing about retries. The Runner owns all
// state (one goroutine) and its timing rules are a pure core (Scheduler)
// driven by an injectable clock, so they are table-tested without sleeping.
//
// The package does not know keepalived.conf: the daemon maps the parsed
// configuration onto these types (Resolve does the virtual_server ->
// real_server -> checker inheritance of the timing keywords).
package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Checker makes one health-check attempt. The context carries the attempt's
// deadline (connect_timeout, or misc_timeout for MISC_CHECK); Check must
// return by then. Check must be safe for concurrent use: the Runner never
// runs two attempts of one checker at once, but different checkers may share
// values.
type Checker interface {
	Check(ctx context.Context) Result
}

// Result is the outcome of one attempt.
type Result struct {
	Up bool
	// Reason says why, in a few words a human reads in `vipctl checks`
	// and in logs: "HTTP status 503 not in 200-299", "connect: connection
	// refused", "digest mismatch". Empty is allowed for a plain success.
	Reason string
	// Weight is a dynamic weight change asked for by MISC_CHECK
	// (misc_dynamic) or FILE_CHECK; the zero value asks for none.
	Weight Weight
}

// WeightKind says how a checker's dynamic weight applies to the real
// server's configured weight.
type WeightKind uint8

// Weight kinds.
const (
	WeightNone WeightKind = iota // no change
	WeightSet                    // the real server's weight becomes Value (misc_dynamic exit code - 2)
	WeightAdd                    // Value is added to the configured weight (track file value x weight)
)

// Weight is a dynamic weight request.
type Weight struct {
	Kind  WeightKind
	Value int64
}

// up and down build Results.
func up(reason string) Result { return Result{Up: true, Reason: reason} }

func down(format string, args ...any) Result {
	return Result{Reason: fmt.Sprintf(format, args...)}
}

// Endpoint holds the connection keywords every network checker shares:
// connect_ip/connect_port (already defaulted to the real server's address
// and port by the caller), bindto, bind_port, bind_if, fwmark and
// connect_timeout.
type Endpoint struct {
	Addr     netip.AddrPort
	BindTo   netip.Addr // zero: the kernel chooses
	BindPort uint16
	BindIf   string // SO_BINDTODEVICE; needed for IPv6 link-local bindto
	Fwmark   uint32 // SO_MARK on every probe packet
	// Timeout bounds one attempt (connect_timeout, default 5 s); the
	// Runner also puts it on the context.
	Timeout time.Duration
}

// DefaultConnectTimeout is keepalived's connect_timeout default.
const DefaultConnectTimeout = 5 * time.Second

func (e Endpoint) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return DefaultConnectTimeout
}

// String prints the address as keepalived logs it: [ip]:port.
func (e Endpoint) String() string {
	return fmt.Sprintf("[%s]:%d", e.Addr.Addr(), e.Addr.Port())
}

// attemptContext bounds ctx by the endpoint's timeout, so a checker used
// without the Runner still gives up.
func (e Endpoint) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= e.timeout() {
		// The Runner's deadline already bounds it: save a timer.
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.timeout())
}

// dialer returns a net.Dialer that marks and binds UDP sockets as
// configured (TCP has dialTCP). TCP keepalive is off: a probe lives for
// one request.
func (e Endpoint) dialer() *net.Dialer {
	return &net.Dialer{Control: e.control, KeepAlive: -1}
}

// localAddrPort is the local address to bind (bindto, bind_port), or the
// zero AddrPort to let the kernel choose.
func (e Endpoint) localAddrPort() netip.AddrPort {
	if !e.BindTo.IsValid() && e.BindPort == 0 {
		return netip.AddrPort{}
	}
	ip := e.BindTo
	if !ip.IsValid() {
		if e.Addr.Addr().Is4() {
			ip = netip.IPv4Unspecified()
		} else {
			ip = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(ip, e.BindPort)
}

func (e Endpoint) control(_, _ string, c syscall.RawConn) error {
	if e.Fwmark == 0 && e.BindIf == "" && e.BindPort == 0 {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) { serr = e.setsockopts(int(fd)) })
	if err != nil {
		return err
	}
	return serr
}

// dialUDP opens a connected UDP socket to the endpoint. Without options
// it skips net.Dialer, which would bind the socket to port 0 first: the
// connect does that anyway.
func (e Endpoint) dialUDP(ctx context.Context) (*net.UDPConn, error) {
	if e.Fwmark == 0 && e.BindIf == "" && !e.localAddrPort().IsValid() {
		return net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(e.Addr))
	}
	return e.dialer().DialUDP(ctx, "udp", e.localAddrPort(), e.Addr)
}

// reason turns a network error into the short text keepalived users
// expect: "connect: connection refused", "timeout", "read: connection reset
// by peer".
func reason(op string, err error) string {
	switch {
	case err == nil:
		return op
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return op + ": timeout"
	case errors.Is(err, context.Canceled):
		return op + ": canceled"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return op + ": " + errno.Error()
	}
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		s := ne.Err.Error()
		if i := strings.LastIndex(s, ": "); i >= 0 {
			s = s[i+2:]
		}
		return op + ": " + s
	}
	return op + ": " + err.Error()
}

// formatAddr is ip:port with brackets for IPv6, as keepalived prints it in
// Host headers.
func formatAddr(ap netip.AddrPort) string {
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		return "[" + ap.Addr().String() + "]:" + strconv.Itoa(int(ap.Port()))
	}
	return ap.Addr().Unmap().String() + ":" + strconv.Itoa(int(ap.Port()))
}
