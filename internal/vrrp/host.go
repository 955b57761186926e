package vrrp

import (
	"context"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/netif"
)

// Host is what a Node needs from the machine it runs on, and all it uses
// of it (seesaw's HAConn/Engine split): VRRP sockets, addresses,
// gratuitous ARPs and facts about interfaces. NetifHost is the real one.
type Host interface {
	// Listen opens a VRRP socket on an interface for one family.
	Listen(iface string, v6 bool) (Conn, error)
	// Link returns an interface's facts (state, primary addresses and
	// all its addresses).
	Link(name string) LinkFacts
	// WatchLinks sends every interface's state, then every change,
	// until ctx ends (see netif.WatchLinks).
	WatchLinks(ctx context.Context, errc chan<- error) (<-chan netif.LinkState, error)
	// WatchAddrs sends an interface index each time its addresses
	// change, until ctx ends (see netif.WatchAddrs).
	WatchAddrs(ctx context.Context, errc chan<- error) (<-chan int, error)
	// AddVIP, RemoveVIP and RemoveStaleVIP change addresses;
	// RemoveAllVIPs removes whatever AddVIP added and is still there.
	AddVIP(VIP) error
	RemoveVIP(VIP) error
	RemoveStaleVIP(VIP) (removed bool, err error)
	RemoveAllVIPs() error
	// Announce sends count gratuitous ARPs or unsolicited NAs for ip,
	// interval apart.
	Announce(dev string, ip netip.Addr, count int, interval time.Duration) error
	// AddVMAC creates a VRRP virtual MAC interface (use_vmac) and
	// brings it up; RemoveVMAC deletes one AddVMAC made; RemoveAllVMACs
	// deletes whatever AddVMAC made and is still there.
	AddVMAC(netif.VMAC) error
	RemoveVMAC(name string) error
	RemoveAllVMACs() error
	// Close releases what the host opened (announcement sockets).
	Close() error
}

// Conn is a VRRP socket (netif.VRRPConn).
type Conn interface {
	Join(group netip.Addr) error
	Write(b []byte, src, dst netip.Addr, ttl int) error
	TryRead(buf []byte) (netif.Received, bool, error)
	// Fd is polled for reading.
	Fd() int
	Close() error
}

// NetifHost is Host over the real kernel (netlink, raw sockets).
type NetifHost struct {
	addrs *netif.Addrs
	ann   *netif.Announcer
	vmacs *netif.VMACs
}

// NewNetifHost returns a Host that remembers the addresses it added.
func NewNetifHost() *NetifHost {
	return &NetifHost{addrs: netif.NewAddrs(), ann: netif.NewAnnouncer(), vmacs: netif.NewVMACs()}
}

// Listen implements Host.
func (h *NetifHost) Listen(iface string, v6 bool) (Conn, error) { return netif.ListenVRRP(iface, v6) }

// Link implements Host.
func (h *NetifHost) Link(name string) LinkFacts {
	st, err := netif.LinkUp(name)
	f := LinkFacts{Name: name, Up: st.Up, Gone: err != nil}
	if err == nil {
		f.Addr4, _ = netif.PrimaryAddr(name, false)
		f.Addr6, _ = netif.PrimaryAddr(name, true)
		f.Addrs, _ = netif.LinkAddrs(name)
	}
	return f
}

// WatchLinks implements Host.
func (h *NetifHost) WatchLinks(ctx context.Context, errc chan<- error) (<-chan netif.LinkState, error) {
	return netif.WatchLinks(ctx, errc)
}

// WatchAddrs implements Host.
func (h *NetifHost) WatchAddrs(ctx context.Context, errc chan<- error) (<-chan int, error) {
	return netif.WatchAddrs(ctx, errc)
}

// AddVIP implements Host.
func (h *NetifHost) AddVIP(v VIP) error { return h.addrs.Add(v) }

// RemoveVIP implements Host.
func (h *NetifHost) RemoveVIP(v VIP) error { return h.addrs.Remove(v) }

// RemoveStaleVIP implements Host.
func (h *NetifHost) RemoveStaleVIP(v VIP) (bool, error) { return h.addrs.RemoveStale(v) }

// RemoveAllVIPs implements Host.
func (h *NetifHost) RemoveAllVIPs() error { return h.addrs.RemoveAll() }

// Announce implements Host.
func (h *NetifHost) Announce(dev string, ip netip.Addr, count int, interval time.Duration) error {
	h.ann.Interval = interval
	return h.ann.Announce(dev, ip, count)
}

// AddVMAC implements Host.
func (h *NetifHost) AddVMAC(v netif.VMAC) error { return h.vmacs.Add(v) }

// RemoveVMAC implements Host.
func (h *NetifHost) RemoveVMAC(name string) error { return h.vmacs.Remove(name) }

// RemoveAllVMACs implements Host.
func (h *NetifHost) RemoveAllVMACs() error { return h.vmacs.RemoveAll() }

// Close implements Host.
func (h *NetifHost) Close() error { return h.ann.Close() }
