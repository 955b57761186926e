package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vipd/vipd/internal/check"
	"github.com/vipd/vipd/internal/netif"
)

// ha_suspend, as keepalived does it: the checkers of a virtual server
// with ha_suspend run only while one of its addresses is on this host
// (typically while this node is the VRRP master); otherwise they are
// suspended and its real servers keep the state they had. The daemon
// learns the host's addresses from netlink, as keepalived's checker
// process does, so an address added by anything (VRRP, an administrator)
// counts.

// hostAddr is one address on one interface: an address on two interfaces
// stays local until both lose it.
type hostAddr struct {
	addr  netip.Addr
	index int
}

// watchAddrs lists the host's addresses into d.local, then sends every
// change to the loop until ctx ends. It returns once the first list is
// in.
func (d *Daemon) watchAddrs(ctx context.Context) error {
	// Watch first, then list: a change in between is read again.
	errc := make(chan error, 1)
	changed, err := netif.WatchAddrs(ctx, errc)
	if err != nil {
		return fmt.Errorf("ha_suspend: %w", err)
	}
	d.local = map[hostAddr]bool{}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("ha_suspend: list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			d.local[hostAddr{ip.Unmap(), a.LinkIndex}] = true
		}
	}
	go func() {
		for index := range changed {
			// A link that is gone has no addresses left.
			now, _ := netif.LinkIndexAddrs(index)
			d.do(func() {
				for k := range d.local {
					if k.index == index {
						delete(d.local, k)
					}
				}
				for _, a := range now {
					d.local[hostAddr{a, index}] = true
				}
				d.applySuspend(d.gen.plans, false)
			})
		}
		// The channel closes at stop (ctx done) or when the socket failed.
		select {
		case err := <-errc:
			d.log.Error("ha_suspend: address updates stopped", "err", err)
		default:
		}
	}()
	return nil
}

// isLocal says whether the address is on some interface of this host.
func (d *Daemon) isLocal(a netip.Addr) bool {
	for k := range d.local {
		if k.addr == a {
			return true
		}
	}
	return false
}

// suspended returns the check servers ha_suspend holds now.
func (d *Daemon) suspended(plans []*vsPlan) map[string]bool {
	out := map[string]bool{}
	for _, p := range plans {
		if !p.cfg.HASuspend || p.cfg.FWMark != 0 {
			continue
		}
		here := false
		for _, k := range p.keys {
			if k.key.Addr.IsValid() && d.isLocal(k.key.Addr.Addr()) {
				here = true
				break
			}
		}
		if !here {
			for _, rs := range p.rss {
				out[rs.check] = true
			}
		}
	}
	return out
}

// markSuspended sets the initial suspension of servers about to start.
func (d *Daemon) markSuspended(plans []*vsPlan, servers []check.Server) {
	if d.local == nil {
		return
	}
	s := d.suspended(plans)
	for i := range servers {
		servers[i].Suspended = s[servers[i].Name]
	}
}

// applySuspend hands the runner the servers ha_suspend holds and logs
// the changes in keepalived's words. start logs the ones held from the
// start ("Deactivating").
func (d *Daemon) applySuspend(plans []*vsPlan, start bool) {
	if d.runner == nil || d.local == nil {
		return
	}
	s := d.suspended(plans)
	var changed []string
	if start {
		for name := range s {
			changed = append(changed, name)
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if changed, err = d.runner.Suspend(ctx, s); err != nil {
			d.log.Error("ha_suspend", "err", err)
			return
		}
	}
	is := map[string]bool{}
	for _, n := range changed {
		is[n] = true
	}
	for _, p := range plans {
		for _, rs := range p.rss {
			if !is[rs.check] {
				continue
			}
			verb := "Activating"
			switch {
			case start:
				verb = "Deactivating"
			case s[rs.check]:
				verb = "Suspending"
			}
			d.log.Info(fmt.Sprintf("%s healthchecker for service %s for VS %s", verb, rs.check, p.name))
		}
	}
}
