package netif

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestWatchAddrs: adding and deleting an address on eth0 in a namespace
// each send eth0's index, and LinkAddrs reads the address set then.
func TestWatchAddrs(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	extra := netip.MustParseAddr("198.18.0.241")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ch <-chan int
	var index int
	do(t, h, func() error {
		var err error
		ch, err = WatchAddrs(ctx, nil)
		if err != nil {
			return err
		}
		st, err := LinkUp("eth0")
		index = st.Index
		return err
	})
	has := func() bool {
		t.Helper()
		var as []netip.Addr
		do(t, h, func() error {
			var err error
			as, err = LinkAddrs("eth0")
			if err == nil && !slices.Contains(as, h.Addr) {
				err = fmt.Errorf("LinkAddrs(eth0) = %v: no %v", as, h.Addr)
			}
			return err
		})
		return slices.Contains(as, extra)
	}
	wait := func(what string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case i := <-ch:
				if i == index {
					return
				}
			case <-deadline:
				t.Fatalf("no address update for eth0 after %s", what)
			}
		}
	}
	if has() {
		t.Fatalf("%v on eth0 before it was added", extra)
	}
	h.MustRun("ip", "addr", "add", extra.String()+"/24", "dev", "eth0")
	wait("ip addr add")
	if !has() {
		t.Fatalf("LinkAddrs does not list %v once added", extra)
	}
	h.MustRun("ip", "addr", "del", extra.String()+"/24", "dev", "eth0")
	wait("ip addr del")
	if has() {
		t.Fatalf("LinkAddrs still lists %v once deleted", extra)
	}
	do(t, h, func() error {
		if _, err := LinkAddrs("nope0"); err == nil {
			return fmt.Errorf("LinkAddrs of a missing interface: no error")
		}
		return nil
	})
	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}
