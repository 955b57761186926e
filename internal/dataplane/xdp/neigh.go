package xdp

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vipd/vipd/internal/netif"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// neigh finds how to reach a real server: the interface its route leaves
// by, that interface's MAC and the server's MAC from the neighbour table.
// DR needs the server on a directly connected network.
type neigh struct {
	ns    string
	h     *netlink.Handle
	poked map[netip.Addr]time.Time // last resolution asked, to wait once
}

func newNeigh(ns string) (*neigh, error) {
	var h *netlink.Handle
	var err error
	if ns == "" {
		h, err = netlink.NewHandle()
	} else {
		var nsh netns.NsHandle
		if nsh, err = netns.GetFromPath(ns); err == nil {
			h, err = netlink.NewHandleAt(nsh)
			nsh.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("xdp: netlink: %w", err)
	}
	return &neigh{ns: ns, h: h, poked: map[netip.Addr]time.Time{}}, nil
}

func (n *neigh) close() { n.h.Close() }

// resolve returns the hop to a, asking the kernel to resolve the MAC (by
// sending one empty UDP datagram to the discard port) and waiting up to a
// second when the neighbour table has no usable entry. A neighbour asked
// for in the last 10 s is not waited for again: a real server that is
// down costs each Apply nothing (the refresher retries every 2 s).
func (n *neigh) resolve(a netip.Addr) (hop, error) {
	routes, err := n.h.RouteGet(a.AsSlice())
	if err != nil || len(routes) == 0 {
		return hop{}, fmt.Errorf("no route to %s: %v", a, err)
	}
	r := routes[0]
	next := a
	if r.Gw != nil {
		gw, _ := netip.AddrFromSlice(r.Gw)
		next = gw.Unmap()
	}
	lk, err := n.h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return hop{}, fmt.Errorf("interface %d: %w", r.LinkIndex, err)
	}
	if lk.Type() == "device" && lk.Attrs().Flags&net.FlagLoopback != 0 {
		return hop{}, fmt.Errorf("%s is a local address of this director", a)
	}
	h := hop{ifindex: r.LinkIndex, smac: lk.Attrs().HardwareAddr, mtu: lk.Attrs().MTU, gw: r.Gw != nil}
	h.src, _ = netip.AddrFromSlice(r.Src)
	h.src = h.src.Unmap()
	wait := 20
	if t, ok := n.poked[next]; ok && time.Since(t) < 10*time.Second {
		wait = 1
	}
	for i := range wait {
		if mac := n.lookup(r.LinkIndex, next); mac != nil {
			h.dmac = mac
			return h, nil
		}
		if i == 0 {
			if _, ok := n.poked[next]; !ok || wait > 1 {
				n.poked[next] = time.Now()
			}
			n.poke(a)
		}
		if wait > 1 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return hop{}, fmt.Errorf("no neighbour entry for %s on %s", next, lk.Attrs().Name)
}

func (n *neigh) lookup(ifindex int, a netip.Addr) net.HardwareAddr {
	fam := netlink.FAMILY_V4
	if a.Is6() && !a.Is4In6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := n.h.NeighList(ifindex, fam)
	if err != nil {
		return nil
	}
	const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	for _, e := range ns {
		if ip, ok := netip.AddrFromSlice(e.IP); ok && ip.Unmap() == a.Unmap() && e.State&usable != 0 && len(e.HardwareAddr) == 6 {
			return e.HardwareAddr
		}
	}
	return nil
}

// poke makes the kernel resolve a's MAC.
func (n *neigh) poke(a netip.Addr) {
	_ = netif.InNetns(n.ns, func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(nil)
		return err
	})
}
