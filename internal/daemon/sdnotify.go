package daemon

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sdNotify tells systemd about the daemon's state (Type=notify units):
// READY=1, RELOADING=1, STOPPING=1. Without NOTIFY_SOCKET it does nothing.
// The protocol is one datagram on a unix socket; no library is needed.
func sdNotify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, what systemd expects
// with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
