package e2e

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// countingListener accepts TCP connections on addr inside h's namespace
// and counts them: a real server that sees every health check.
func countingListener(t *testing.T, h *lab.Host, addr string) *atomic.Int64 {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return n
}

// TestHASuspend: the checkers of a virtual server with ha_suspend run
// only while its address is on the director, as keepalived's do; another
// virtual server without it is checked all along. The log lines are
// keepalived's.
func TestHASuspend(t *testing.T) {
	lab.RequireRoot(t)
	t.Parallel()
	l := lab.New(t)
	d1 := l.Host("d1", "198.18.0.11/24")
	rs := l.Host("rs", "198.18.0.12/24")
	held := countingListener(t, rs, "198.18.0.12:8080")
	free := countingListener(t, rs, "198.18.0.12:8081")
	d := startVipd(t, d1, `
virtual_server 198.18.0.100 80 {
    delay_loop 1
    protocol TCP
    ha_suspend
    real_server 198.18.0.12 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 198.18.0.101 80 {
    delay_loop 1
    protocol TCP
    real_server 198.18.0.12 8081 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`)
	const (
		svc = "service [198.18.0.12]:tcp:8080 for VS [198.18.0.100]:tcp:80"
	)
	logged := func(s string, n int) bool { return strings.Count(d.proc.Output(), s) >= n }
	// The line may follow the control socket's readiness by a moment.
	lab.Eventually(t, 2*time.Second, func() bool { return logged("Deactivating healthchecker for "+svc, 1) },
		"no Deactivating line at start:\n%s", d.proc.Output)
	// Suspended from the start: the other server is checked, this one
	// not, over three delay_loops.
	lab.Eventually(t, 5*time.Second, func() bool { return free.Load() >= 3 }, "the server without ha_suspend is not checked")
	if n := held.Load(); n != 0 {
		t.Fatalf("the suspended server was checked %d times", n)
	}

	// The address arrives (as a VRRP master would add it): checks start.
	d1.MustRun("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0")
	lab.Eventually(t, 5*time.Second, func() bool { return logged("Activating healthchecker for "+svc, 1) }, "no Activating line:\n%s", d.proc.Output)
	lab.Eventually(t, 5*time.Second, func() bool { return held.Load() >= 2 }, "the resumed server is not checked")

	// It goes: checks stop (one attempt under way may still land).
	d1.MustRun("ip", "addr", "del", "198.18.0.100/32", "dev", "eth0")
	lab.Eventually(t, 5*time.Second, func() bool { return logged("Suspending healthchecker for "+svc, 1) }, "no Suspending line:\n%s", d.proc.Output)
	n, f := held.Load(), free.Load()
	lab.Eventually(t, 10*time.Second, func() bool { return free.Load() >= f+3 }, "the server without ha_suspend stopped being checked")
	if got := held.Load(); got > n+1 {
		t.Fatalf("the suspended server was checked %d more times after Suspending", got-n)
	}
}
