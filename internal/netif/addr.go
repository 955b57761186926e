// Package netif is vipd's hands on the host's network: virtual addresses
// (netlink), gratuitous ARP and unsolicited neighbour adverts, link state
// watching, and the raw IP protocol 112 sockets VRRP speaks over.
//
// Everything works on the network namespace of the calling process, so
// several daemons on one host each run in their own namespace.
package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addr is a virtual address as keepalived's virtual_ipaddress describes
// it: "198.18.0.100/24 brd 198.18.0.255 dev eth0 scope global label eth0:1".
type Addr struct {
	Prefix    netip.Prefix // the address and its prefix length
	Dev       string       // interface
	Label     string       // IPv4 label, "<dev>:<anything>"
	Scope     string       // global (default), site, link, host, nowhere
	Broadcast netip.Addr   // IPv4 broadcast; none unless given, like keepalived
}

func (a Addr) String() string {
	s := a.Prefix.String() + " dev " + a.Dev
	if a.Label != "" {
		s += " label " + a.Label
	}
	return s
}

type addrKey struct {
	addr netip.Addr
	dev  string
}

// ScopeValue maps a keepalived/iproute2 scope name to its number.
func ScopeValue(s string) (int, error) {
	switch strings.ToLower(s) {
	case "", "global", "universe":
		return unix.RT_SCOPE_UNIVERSE, nil
	case "site":
		return unix.RT_SCOPE_SITE, nil
	case "link":
		return unix.RT_SCOPE_LINK, nil
	case "host":
		return unix.RT_SCOPE_HOST, nil
	case "nowhere":
		return unix.RT_SCOPE_NOWHERE, nil
	}
	return 0, fmt.Errorf("scope %q: want global, site, link, host or nowhere", s)
}

// Addrs adds and removes virtual addresses and remembers which ones it
// added, so that a clean shutdown removes exactly those. Adding an address
// that is already there and removing one that is not are not errors.
type Addrs struct {
	mu    sync.Mutex
	added map[addrKey]Addr
}

// NewAddrs returns an empty manager.
func NewAddrs() *Addrs { return &Addrs{added: map[addrKey]Addr{}} }

func (a Addr) nl() (netlink.Link, *netlink.Addr, error) {
	link, err := netlink.LinkByName(a.Dev)
	if err != nil {
		return nil, nil, fmt.Errorf("address %v: interface %s: %w", a.Prefix, a.Dev, err)
	}
	scope, err := ScopeValue(a.Scope)
	if err != nil {
		return nil, nil, fmt.Errorf("address %v: %w", a.Prefix, err)
	}
	na := &netlink.Addr{
		IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())},
		Label: a.Label,
		Scope: scope,
	}
	if a.Prefix.Addr().Is4() {
		// netlink would compute a broadcast address; keepalived sets none
		// unless told, and 0.0.0.0 tells the library to leave it out.
		na.Broadcast = net.IPv4zero
		if a.Broadcast.IsValid() {
			na.Broadcast = a.Broadcast.AsSlice()
		}
	} else {
		// A VIP must be usable at once: no duplicate address detection.
		na.Flags = unix.IFA_F_NODAD
	}
	return link, na, nil
}

// Add configures the address (idempotent) and remembers it.
func (m *Addrs) Add(a Addr) error {
	link, na, err := a.nl()
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, na); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %v: %w", a, err)
	}
	m.mu.Lock()
	m.added[addrKey{a.Prefix.Addr(), a.Dev}] = a
	m.mu.Unlock()
	return nil
}

// Remove deletes the address if present (idempotent) and forgets it.
func (m *Addrs) Remove(a Addr) error {
	m.mu.Lock()
	delete(m.added, addrKey{a.Prefix.Addr(), a.Dev})
	m.mu.Unlock()
	return m.del(a)
}

func (m *Addrs) del(a Addr) error {
	link, na, err := a.nl()
	if err != nil {
		return err
	}
	err = netlink.AddrDel(link, na)
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove %v: %w", a, err)
	}
	return nil
}

// Present reports whether the address is configured on its interface.
// An interface that does not exist (deleted) holds no address.
func Present(a Addr) (bool, error) {
	link, err := netlink.LinkByName(a.Dev)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return false, nil
		}
		return false, fmt.Errorf("interface %s: %w", a.Dev, err)
	}
	family := netlink.FAMILY_V4
	if a.Prefix.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := netlink.AddrList(link, family)
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", a.Dev, err)
	}
	for _, x := range list {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Prefix.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// RemoveStale removes the address if it is configured although we did not
// add it (left behind by a killed daemon): a backup must not answer for a
// VIP. It reports whether it removed one.
func (m *Addrs) RemoveStale(a Addr) (bool, error) {
	ok, err := Present(a)
	if err != nil || !ok {
		return false, err
	}
	return true, m.Remove(a)
}

// Added returns the addresses added and not removed since.
func (m *Addrs) Added() []Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Addr, 0, len(m.added))
	for _, a := range m.added {
		out = append(out, a)
	}
	return out
}

// RemoveAll removes every address this manager added.
func (m *Addrs) RemoveAll() error {
	var errs []error
	for _, a := range m.Added() {
		if err := m.Remove(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PrimaryAddr returns the interface's first IPv4 address that is not
// secondary (v6 false), or its link-local IPv6 address (v6 true): the
// source of VRRP adverts unless configured.
func PrimaryAddr(ifname string, v6 bool) (netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, err)
	}
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	list, err := netlink.AddrList(link, family)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	for _, x := range list {
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if v6 && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !v6 && x.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address", ifname, fam)
}

// LinkAddrs returns every address on an interface, sorted (both
// families, tentative IPv6 ones included, as netlink reports them).
func LinkAddrs(ifname string) ([]netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	return linkAddrs(link)
}

// LinkIndexAddrs is LinkAddrs by interface index (what WatchAddrs sends).
func LinkIndexAddrs(index int) ([]netip.Addr, error) {
	link, err := netlink.LinkByIndex(index)
	if err != nil {
		return nil, fmt.Errorf("interface %d: %w", index, err)
	}
	return linkAddrs(link)
}

func linkAddrs(link netlink.Link) ([]netip.Addr, error) {
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, x := range list {
		if ip, ok := netip.AddrFromSlice(x.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

// WatchAddrs sends the index of an interface each time an address is
// added to it or removed from it, until ctx ends. The channel is closed
// when watching stops (ctx done, or the netlink socket failed: err is
// then sent to errc if not nil). Read the addresses with LinkAddrs: the
// update is only a nudge, so that a burst of them costs one read each.
func WatchAddrs(ctx context.Context, errc chan<- error) (<-chan int, error) {
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	failed := make(chan error, 1)
	err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case failed <- err:
			default:
			}
		},
	})
	if err != nil {
		close(done)
		return nil, fmt.Errorf("subscribe to address updates: %w", err)
	}
	return relay(ctx, updates, done, failed, errc, "address updates", func(u netlink.AddrUpdate) int { return u.LinkIndex }), nil
}
