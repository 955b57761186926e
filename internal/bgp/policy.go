// Package bgp announces vipd's virtual addresses to upstream routers by
// BGP, so that several active directors share a VIP through the routers'
// ECMP (the Maglev/katran/GLB design; issue 14).
//
// The package has two halves. Policy (this file) is pure: from the state
// of the virtual servers and VRRP instances it computes which prefixes to
// announce and why the others are not; it is table-tested. Speaker
// (speaker.go) is the I/O: it embeds GoBGP v4, keeps the sessions and turns
// the wanted set into UPDATEs.
package bgp

import (
	"net/netip"
	"sort"
)

// Service is what the policy needs to know of one virtual server marked
// bgp_announce.
type Service struct {
	Name string
	VIP  netip.Addr
	// Checked: every real server has had its first full round of health
	// checks. Before that this director's view of the real servers may
	// differ from the other directors', and a flow the router moves here
	// could go to another real server.
	Checked bool
	// Served: the data plane runs the virtual server.
	Served bool
	// QuorumUp: the virtual server's quorum is met.
	QuorumUp bool
	// Alive is the number of real servers up.
	Alive int
}

// Instance is a VRRP instance marked bgp_announce.
type Instance struct {
	Name   string
	Master bool
	VIPs   []netip.Addr
}

// Input is the whole state the policy decides on.
type Input struct {
	Services  []Service
	Instances []Instance
}

// Decision says whether one prefix is announced, and why (for the logs
// and vipctl bgp).
type Decision struct {
	Prefix   netip.Prefix
	Announce bool
	Reason   string
}

// Host returns the host prefix of a (/32 or /128).
func Host(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen())
}

// Decide computes one decision per prefix, sorted by prefix.
//
// Several virtual servers may share a VIP (ports 80 and 443). The VIP is
// announced when at least one of them can serve and none of them is still
// waiting for its first round of checks: announcing earlier would send
// the router's flows for the waiting one to a director whose choice of
// real server is not settled. A VRRP instance's VIP is announced while it
// is MASTER, whatever the virtual servers say.
func Decide(in Input) []Decision {
	m := map[netip.Prefix]*acc{}
	get := func(p netip.Prefix) *acc {
		a := m[p]
		if a == nil {
			a = &acc{}
			m[p] = a
		}
		return a
	}
	for _, s := range in.Services {
		if !s.VIP.IsValid() {
			continue
		}
		a := get(Host(s.VIP))
		switch {
		case !s.Checked:
			a.pending = true
			a.reason = "virtual server " + s.Name + ": first round of health checks not complete"
		case !s.Served:
			a.setReason("virtual server " + s.Name + ": not served by the data plane")
		case s.Alive == 0:
			a.setReason("virtual server " + s.Name + ": every real server is down")
		case !s.QuorumUp:
			a.setReason("virtual server " + s.Name + ": quorum down")
		default:
			a.want = true
		}
	}
	var out []Decision
	for p, a := range m {
		d := Decision{Prefix: p}
		switch {
		case a.pending:
			d.Reason = a.reason
		case a.want:
			d.Announce, d.Reason = true, "virtual server up"
		default:
			d.Reason = a.reason
		}
		out = append(out, d)
	}
	for _, in := range in.Instances {
		for _, v := range in.VIPs {
			if !v.IsValid() {
				continue
			}
			p := Host(v)
			i := -1
			for j := range out {
				if out[j].Prefix == p {
					i = j
				}
			}
			if i < 0 {
				out = append(out, Decision{Prefix: p})
				i = len(out) - 1
			}
			if in.Master {
				out[i].Announce, out[i].Reason = true, "vrrp_instance "+in.Name+" is MASTER"
			} else if !out[i].Announce && out[i].Reason == "" {
				out[i].Reason = "vrrp_instance " + in.Name + " is not MASTER"
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.Addr().Less(out[j].Prefix.Addr()) })
	return out
}

// acc gathers what the services sharing one VIP say.
type acc struct {
	want, pending bool
	reason        string
}

// setReason keeps the first reason a VIP is not announced.
func (a *acc) setReason(r string) {
	if a.reason == "" {
		a.reason = r
	}
}
