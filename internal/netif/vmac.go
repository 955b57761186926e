package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VMAC is a VRRP virtual MAC interface (keepalived's use_vmac): a
// macvlan in private mode on Base carrying MAC (00:00:5e:00:01:VRID for
// IPv4, 00:00:5e:00:02:VRID for IPv6). The instance's VIPs live on it, so
// the virtual router answers ARP and ND with the virtual MAC and a
// takeover moves the MAC with the addresses: a neighbour's cache entry
// stays right across the takeover.
type VMAC struct {
	Name string
	Base string
	MAC  net.HardwareAddr
	// V6 is the instance's family: an IPv4 instance's VMAC gets no IPv6
	// at all (no link-local address, no MLD or router solicitation sent
	// with the virtual MAC); an IPv6 one gets the base interface's
	// link-local address (the adverts' source) and no address derived
	// from the virtual MAC (RFC 5798 7.4).
	V6 bool
}

func (v VMAC) String() string { return fmt.Sprintf("%s@%s %s", v.Name, v.Base, v.MAC) }

// VirtualMAC is the VRRP virtual router MAC of a VRID (RFC 5798 7.3).
func VirtualMAC(vrid int, v6 bool) net.HardwareAddr {
	fam := byte(1)
	if v6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, byte(vrid)}
}

// VMACs creates and removes VMAC interfaces and remembers the ones it
// made and the base interfaces' ARP settings it changed, so that
// RemoveAll undoes exactly that. Safe for concurrent use.
type VMACs struct {
	mu    sync.Mutex
	added map[string]VMAC
	// saved holds a base interface's arp_ignore and arp_filter before
	// the first VMAC on it changed them.
	saved map[string][2]string
}

// NewVMACs returns an empty manager.
func NewVMACs() *VMACs { return &VMACs{added: map[string]VMAC{}, saved: map[string][2]string{}} }

// Add creates the VMAC and brings it up; a macvlan already there with the
// same base and MAC (left by a process that died) is taken over. Any
// other interface of that name is an error: vipd never changes an
// interface it did not make.
//
// The sysctls are keepalived's, for the same reasons: on the VMAC
// arp_ignore=1 (answer ARP only for its own addresses, the VIPs),
// accept_local=1 (hear the other routers' adverts whatever their source),
// rp_filter=0 (receive adverts from a subnet the VMAC has no address in)
// and promote_secondaries=1; on the base interface arp_ignore=1 and
// arp_filter=1, so that the base never answers an ARP for a VIP with its
// own MAC (restored when its last VMAC goes).
func (m *VMACs) Add(v VMAC) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(v.MAC) != 6 {
		return fmt.Errorf("vmac %s: hardware address %v is not Ethernet", v.Name, v.MAC)
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter"); !v.V6 && err == nil && strings.TrimSpace(string(b)) == "1" {
		// The VMAC has no address in the senders' subnet: strict
		// reverse path filtering (the larger of all and the
		// interface's) would drop every advert it receives.
		// keepalived rewrites every interface's rp_filter to lift
		// it; vipd leaves the host's policy alone and says so.
		return fmt.Errorf("vmac %s: net.ipv4.conf.all.rp_filter is 1 (strict): adverts received on the VMAC would be dropped; set it to 0 or 2 (loose)", v.Name)
	}
	base, err := netlink.LinkByName(v.Base)
	if err != nil {
		return fmt.Errorf("vmac %s: base interface %s: %w", v.Name, v.Base, err)
	}
	link, err := netlink.LinkByName(v.Name)
	switch {
	case err == nil:
		mv, ok := link.(*netlink.Macvlan)
		if !ok || mv.Attrs().ParentIndex != base.Attrs().Index || !slices.Equal(mv.Attrs().HardwareAddr, v.MAC) {
			return fmt.Errorf("vmac %s: an interface of that name exists and is not a macvlan on %s with MAC %s", v.Name, v.Base, v.MAC)
		}
		if mv.Mode != netlink.MACVLAN_MODE_PRIVATE {
			if err := netlink.LinkSetMacvlanMode(mv, netlink.MACVLAN_MODE_PRIVATE); err != nil {
				return fmt.Errorf("vmac %s: mode private: %w", v.Name, err)
			}
		}
	case isNotFound(err):
		mv := &netlink.Macvlan{Mode: netlink.MACVLAN_MODE_PRIVATE}
		mv.LinkAttrs = netlink.NewLinkAttrs()
		mv.Name, mv.ParentIndex, mv.HardwareAddr = v.Name, base.Attrs().Index, v.MAC
		if err := netlink.LinkAdd(mv); err != nil {
			return fmt.Errorf("vmac %s: create macvlan on %s: %w", v.Name, v.Base, err)
		}
		if link, err = netlink.LinkByName(v.Name); err != nil {
			return fmt.Errorf("vmac %s: %w", v.Name, err)
		}
	default:
		return fmt.Errorf("vmac %s: %w", v.Name, err)
	}
	m.added[v.Name] = v
	fail := func(err error) error {
		_ = netlink.LinkDel(link)
		delete(m.added, v.Name)
		return fmt.Errorf("vmac %s: %w", v.Name, err)
	}
	if err := m.configure(v, link); err != nil {
		return fail(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fail(fmt.Errorf("set up: %w", err))
	}
	if v.V6 {
		if err := addLinkLocal(link, base); err != nil {
			return fail(err)
		}
	}
	return nil
}

func (m *VMACs) configure(v VMAC, link netlink.Link) error {
	conf4 := filepath.Join("/proc/sys/net/ipv4/conf", v.Name)
	set := [][2]string{{"arp_ignore", "1"}}
	if !v.V6 {
		set = append(set, [2]string{"accept_local", "1"}, [2]string{"rp_filter", "0"}, [2]string{"promote_secondaries", "1"})
	}
	for _, kv := range set {
		if err := writeSysctl(filepath.Join(conf4, kv[0]), kv[1]); err != nil {
			return err
		}
	}
	conf6 := filepath.Join("/proc/sys/net/ipv6/conf", v.Name)
	if _, err := os.Stat(conf6); err == nil {
		if v.V6 {
			// No address made from the virtual MAC, before the link
			// comes up (RFC 5798 7.4).
			if err := netlink.LinkSetIP6AddrGenMode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
				return fmt.Errorf("addr_gen_mode none: %w", err)
			}
		} else if err := writeSysctl(filepath.Join(conf6, "disable_ipv6"), "1"); err != nil {
			return err
		}
	}
	if v.V6 {
		return nil
	}
	if _, ok := m.saved[v.Base]; !ok {
		baseConf := filepath.Join("/proc/sys/net/ipv4/conf", v.Base)
		var old [2]string
		for i, k := range []string{"arp_ignore", "arp_filter"} {
			b, err := os.ReadFile(filepath.Join(baseConf, k))
			if err != nil {
				return fmt.Errorf("base interface %s: %w", v.Base, err)
			}
			old[i] = strings.TrimSpace(string(b))
		}
		for _, k := range []string{"arp_ignore", "arp_filter"} {
			if err := writeSysctl(filepath.Join(baseConf, k), "1"); err != nil {
				return err
			}
		}
		m.saved[v.Base] = old
	}
	return nil
}

// addLinkLocal gives an IPv6 VMAC the base interface's EUI-64 link-local
// address (as keepalived does), without duplicate address detection:
// it is the base's own address, and the adverts' source.
func addLinkLocal(link, base netlink.Link) error {
	mac := base.Attrs().HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("base interface %s has no Ethernet address", base.Attrs().Name)
	}
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12] = mac[0]^0x02, mac[1], mac[2], 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	ip := netip.AddrFrom16(a)
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("link-local address %v: %w", ip, err)
	}
	return nil
}

// Remove deletes a VMAC this manager made (others are left alone) and,
// with the base's last VMAC, restores its ARP settings.
func (m *VMACs) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remove(name)
}

func (m *VMACs) remove(name string) error {
	v, ok := m.added[name]
	if !ok {
		return nil
	}
	delete(m.added, name)
	var errs []error
	if link, err := netlink.LinkByName(name); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("vmac %s: delete: %w", name, err))
		}
	} else if !isNotFound(err) {
		errs = append(errs, fmt.Errorf("vmac %s: %w", name, err))
	}
	if old, ok := m.saved[v.Base]; ok && !m.baseInUse(v.Base) {
		delete(m.saved, v.Base)
		baseConf := filepath.Join("/proc/sys/net/ipv4/conf", v.Base)
		for i, k := range []string{"arp_ignore", "arp_filter"} {
			if err := writeSysctl(filepath.Join(baseConf, k), old[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (m *VMACs) baseInUse(base string) bool {
	for _, v := range m.added {
		if v.Base == base && !v.V6 {
			return true
		}
	}
	return false
}

// RemoveAll removes every VMAC this manager made.
func (m *VMACs) RemoveAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range m.added {
			if !yield(k) {
				return
			}
		}
	}) {
		errs = append(errs, m.remove(name))
	}
	return errors.Join(errs...)
}

// Added lists the VMACs made and not removed, by name.
func (m *VMACs) Added() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.added {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.TrimPrefix(path, "/proc/sys/"), value, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
