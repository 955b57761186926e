package netif

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

const etherTypeARP = 0x0806

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// GARPFrame returns the gratuitous ARP keepalived sends for a VIP: a
// broadcast ARP request whose sender and target protocol addresses are
// both the VIP, sender hardware address the interface's, target hardware
// address ff:ff:ff:ff:ff:ff.
func GARPFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("gratuitous ARP: hardware address %v is not Ethernet", mac)
	}
	if !ip.Is4() {
		return nil, fmt.Errorf("gratuitous ARP: %v is not IPv4", ip)
	}
	b := make([]byte, 42)
	copy(b[0:6], broadcastMAC)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	binary.BigEndian.PutUint16(b[14:16], 1)      // hardware type Ethernet
	binary.BigEndian.PutUint16(b[16:18], 0x0800) // protocol IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:22], 1) // request
	a := ip.As4()
	copy(b[22:28], mac)
	copy(b[28:32], a[:])
	copy(b[32:38], broadcastMAC)
	copy(b[38:42], a[:])
	return b, nil
}

// Announcer sends gratuitous ARPs (IPv4) and unsolicited neighbour
// advertisements (IPv6) so that neighbours move a VIP to our MAC at once.
// Its sockets are opened on first use per interface and kept.
type Announcer struct {
	// Interval between two messages on one interface (keepalived's
	// vrrp_garp_interval / vrrp_gna_interval; default 0).
	Interval time.Duration

	mu   sync.Mutex
	arp  map[string]*rawEther
	ndp  map[string]*ipv6.PacketConn
	macs map[string]net.HardwareAddr
}

// NewAnnouncer returns an Announcer without open sockets.
func NewAnnouncer() *Announcer {
	return &Announcer{arp: map[string]*rawEther{}, ndp: map[string]*ipv6.PacketConn{}, macs: map[string]net.HardwareAddr{}}
}

// Announce sends count messages for ip on the interface.
func (a *Announcer) Announce(ifname string, ip netip.Addr, count int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("announce %v: %w", ip, err)
	}
	if ip.Is4() {
		return a.garp(ifi, ip, count)
	}
	return a.na(ifi, ip, count)
}

func (a *Announcer) garp(ifi *net.Interface, ip netip.Addr, count int) error {
	c := a.arp[ifi.Name]
	if c == nil || a.macs[ifi.Name].String() != ifi.HardwareAddr.String() {
		if c != nil {
			c.Close()
		}
		var err error
		c, err = listenEther(ifi, etherTypeARP)
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", ifi.Name, err)
		}
		a.arp[ifi.Name], a.macs[ifi.Name] = c, ifi.HardwareAddr
	}
	f, err := GARPFrame(ifi.HardwareAddr, ip)
	if err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		if i > 0 && a.Interval > 0 {
			time.Sleep(a.Interval)
		}
		if err := c.send(f); err != nil {
			// A socket of an interface that went away and came back is
			// stale: reopen next time.
			c.Close()
			delete(a.arp, ifi.Name)
			return fmt.Errorf("gratuitous ARP for %v on %s: %w", ip, ifi.Name, err)
		}
	}
	return nil
}

// allNodes is where unsolicited neighbour advertisements go (RFC 4861 7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

func (a *Announcer) na(ifi *net.Interface, ip netip.Addr, count int) error {
	c := a.ndp[ifi.Name]
	if c == nil {
		var err error
		c, err = listenICMPv6(ifi)
		if err != nil {
			return fmt.Errorf("neighbour advertisement on %s: %w", ifi.Name, err)
		}
		a.ndp[ifi.Name] = c
	}
	src, err := PrimaryAddr(ifi.Name, true)
	if err != nil {
		return fmt.Errorf("neighbour advertisement for %v: %w", ip, err)
	}
	m := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	}
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return fmt.Errorf("neighbour advertisement for %v: %w", ip, err)
	}
	// Hop limit 255 (RFC 4861 7.1.2); the kernel fills the ICMPv6 checksum.
	cm := &ipv6.ControlMessage{HopLimit: 255, Src: src.AsSlice(), IfIndex: ifi.Index}
	to := &net.IPAddr{IP: allNodes.AsSlice(), Zone: strconv.Itoa(ifi.Index)}
	for i := 0; i < count; i++ {
		if i > 0 && a.Interval > 0 {
			time.Sleep(a.Interval)
		}
		if _, err := c.WriteTo(b, cm, to); err != nil {
			c.Close()
			delete(a.ndp, ifi.Name)
			return fmt.Errorf("neighbour advertisement for %v on %s: %w", ip, ifi.Name, err)
		}
	}
	return nil
}

// listenICMPv6 opens a raw ICMPv6 socket for sending on one interface.
// (ndp.Listen names the interface by its zone, which the net package
// resolves through a process-wide cache: wrong when namespaces differ.)
func listenICMPv6(ifi *net.Interface) (*ipv6.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifi.Name)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, err
	}
	c := ipv6.NewPacketConn(pc)
	// Receive nothing: this socket only sends.
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := c.SetICMPFilter(&f); err != nil {
		pc.Close()
		return nil, err
	}
	return c, nil
}

// Close closes every socket.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.arp {
		c.Close()
		delete(a.arp, k)
	}
	for k, c := range a.ndp {
		c.Close()
		delete(a.ndp, k)
	}
	return nil
}

// rawEther is an AF_PACKET socket that sends whole Ethernet frames on one
// interface. (mdlayher/packet would do, but the version the module pins
// does not build against the pinned mdlayher/socket.)
type rawEther struct {
	fd int
	sa *unix.SockaddrLinklayer
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func listenEther(ifi *net.Interface, proto uint16) (*rawEther, error) {
	// Protocol 0: we only send, so the socket receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], broadcastMAC)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", ifi.Name, err)
	}
	return &rawEther{fd: fd, sa: sa}, nil
}

func (r *rawEther) send(frame []byte) error { return unix.Sendto(r.fd, frame, 0, r.sa) }

// Close closes the socket.
func (r *rawEther) Close() error { return unix.Close(r.fd) }
