package proxy

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/internal/lvs"
)

// The binary upgrade (vipctl upgrade) hands the listening sockets from
// one process to the next: the new process adopts them (Inherit) so
// that a connection waiting in an accept queue is never reset, and the
// old one stops accepting (StopAccepting) while its open connections run
// to their end (Active says how many are left).

// Sockets returns the listening sockets of the running services, by
// protocol and address: one per event loop. The descriptors stay the data plane's; pass copies.
func (dp *Dataplane) Sockets() map[lvs.Protocol]map[netip.AddrPort][]int {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	out := map[lvs.Protocol]map[netip.AddrPort][]int{lvs.TCP: {}, lvs.UDP: {}}
	for k, s := range dp.services {
		for _, ln := range s.listeners {
			if ln.ep.fd >= 0 {
				out[k.Proto][k.Addr] = append(out[k.Proto][k.Addr], ln.ep.fd)
			}
		}
	}
	return out
}

// Inherit gives the data plane listening sockets another process opened
// (vipctl upgrade): the services Apply starts on these protocols and
// addresses use them instead of opening their own. The data plane owns
// the descriptors from now on; ReleaseInherited closes those no service
// took.
func (dp *Dataplane) Inherit(proto lvs.Protocol, ap netip.AddrPort, fds []int) error {
	for _, fd := range fds {
		if err := checkInherited(fd, proto, ap); err != nil {
			return err
		}
	}
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.inherited == nil {
		dp.inherited = map[inheritKey][]int{}
	}
	k := inheritKey{proto, ap}
	dp.inherited[k] = append(dp.inherited[k], fds...)
	return nil
}

type inheritKey struct {
	proto lvs.Protocol
	ap    netip.AddrPort
}

// takeInherited returns the inherited sockets of a service (under dp.mu).
func (dp *Dataplane) takeInherited(proto lvs.Protocol, ap netip.AddrPort) []int {
	k := inheritKey{proto, ap}
	fds := dp.inherited[k]
	delete(dp.inherited, k)
	return fds
}

// ReleaseInherited closes the inherited sockets no service took (the
// new configuration dropped their service) and returns how many.
func (dp *Dataplane) ReleaseInherited() int {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	n := 0
	for k, fds := range dp.inherited {
		for _, fd := range fds {
			unix.Close(fd)
			n++
		}
		delete(dp.inherited, k)
	}
	return n
}

// checkInherited makes sure fd is what it is said to be: a socket of
// the protocol bound to ap (listening, for TCP), and makes it
// non-blocking.
func checkInherited(fd int, proto lvs.Protocol, ap netip.AddrPort) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("proxy: inherited socket %d for %s %s: %w", fd, proto, ap, err)
	}
	want := unix.SOCK_STREAM
	if proto == lvs.UDP {
		want = unix.SOCK_DGRAM
	}
	if typ != want {
		return fmt.Errorf("proxy: inherited socket %d for %s %s: wrong socket type %d", fd, proto, ap, typ)
	}
	if proto == lvs.TCP {
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			return fmt.Errorf("proxy: inherited socket %d for %s %s: not listening", fd, proto, ap)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("proxy: inherited socket %d for %s %s: %w", fd, proto, ap, err)
	}
	var got netip.AddrPort
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		got = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		got = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	if got.Addr().Unmap() != ap.Addr().Unmap() || got.Port() != ap.Port() {
		return fmt.Errorf("proxy: inherited socket %d for %s %s is bound to %s", fd, proto, ap, got)
	}
	return unix.SetNonblock(fd, true)
}

// StopAccepting stops taking new connections and datagrams, for the
// process that hands over: TCP listeners leave the event loops (their
// sockets, shared with the next process, keep listening there), UDP
// services stop reading and their flows end. Open TCP connections run on
// to their end. Apply refuses to run after it.
func (dp *Dataplane) StopAccepting() {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.handedOver = true
	for _, s := range dp.services {
		dp.closeListeners(s)
	}
}

// Active returns the number of open TCP connections (those lingering in
// TIME_WAIT or CLOSE not counted): what a process that handed over waits
// for before it exits.
func (dp *Dataplane) Active() int {
	n := 0
	for _, w := range dp.workers {
		w.call(func() {
			for _, c := range w.conns {
				if !c.closed {
					n++
				}
			}
		})
	}
	return n
}

// ResumeAccepting undoes StopAccepting, for an upgrade that failed
// after it: the services whose sockets closed take the inherited ones
// (Inherit: the copies kept for this) or open new ones.
func (dp *Dataplane) ResumeAccepting() error {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.handedOver = false
	var errs []error
	for k, s := range dp.services {
		if len(s.listeners) > 0 {
			continue
		}
		if err := dp.start(s); err != nil {
			errs = append(errs, fmt.Errorf("proxy: service %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}
