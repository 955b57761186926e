package netif

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkState is an interface's state as VRRP cares about it: up means
// administratively up with carrier (IFF_UP and IFF_RUNNING), as keepalived
// judges it.
type LinkState struct {
	Name  string
	Index int
	Up    bool
	// Gone is set when the interface was deleted.
	Gone bool
}

func flagsUp(f uint32) bool { return f&unix.IFF_UP != 0 && f&unix.IFF_RUNNING != 0 }

// LinkUp returns the current state of one interface.
func LinkUp(name string) (LinkState, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return LinkState{Name: name, Gone: true}, fmt.Errorf("interface %s: %w", name, err)
	}
	a := l.Attrs()
	return LinkState{Name: a.Name, Index: a.Index, Up: flagsUp(a.RawFlags)}, nil
}

// WatchLinks sends the state of every interface at once, then every
// change, until ctx ends. The channel is closed when watching stops (ctx
// done, or the netlink socket failed: err is then sent to errc if not nil).
func WatchLinks(ctx context.Context, errc chan<- error) (<-chan LinkState, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	failed := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case failed <- err:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return nil, fmt.Errorf("subscribe to link updates: %w", err)
	}
	return relay(ctx, updates, done, failed, errc, "link updates", func(u netlink.LinkUpdate) LinkState {
		return LinkState{Name: u.Attrs().Name, Index: int(u.Index), Up: flagsUp(u.Flags), Gone: u.Header.Type == unix.RTM_DELLINK}
	}), nil
}

// relay forwards a netlink subscription's updates, converted, until ctx
// ends or the subscription reports an error (sent to errc if not nil,
// prefixed with what); then it closes done (which ends the
// subscription) and the returned channel.
func relay[U, T any](ctx context.Context, updates <-chan U, done chan struct{}, failed <-chan error, errc chan<- error, what string, conv func(U) T) <-chan T {
	out := make(chan T, 64)
	go func() {
		defer close(out)
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-failed:
				if errc != nil {
					errc <- fmt.Errorf("%s: %w", what, err)
				}
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				select {
				case out <- conv(u):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
