package daemon

import (
	"fmt"
	"net/netip"

	"github.com/vipd/vipd/internal/config"
	"github.com/vipd/vipd/internal/dataplane"
	"github.com/vipd/vipd/internal/lvs"
)

// defaultScheduler is IPVS's (and keepalived's) when lvs_sched is not set.
const defaultScheduler = "wlc"

// maxGroupExpansion caps the services one virtual_server_group range may
// expand into, so a typo such as 10.0.0.1-255 on an IPv6 range cannot eat
// the machine.
const maxGroupExpansion = 65536

// vsPlan is one configured virtual server as the daemon runs it: the data
// plane services it expands into (several for a virtual_server_group) and
// its real servers with the names their health checks report under.
type vsPlan struct {
	cfg  *config.VirtualServer
	name string // as keepalived logs it: [198.18.0.100]:tcp:80, FWM 1, group G
	keys []vsKey
	rss  []rsPlan
}

// port is the port real servers without one use: the first expanded
// service's (0 for a group with no entries).
func (p *vsPlan) port() uint16 {
	if len(p.keys) == 0 {
		return 0
	}
	return p.keys[0].port
}

// vsKey is one expanded service: its IPVS key and the port its real
// servers use when they give none.
type vsKey struct {
	key  lvs.ServiceKey
	port uint16
}

// rsPlan is one real server of a virtual server.
type rsPlan struct {
	cfg   *config.RealServer
	check string // name of its check.Server (unique in the configuration)
}

// health is what the checkers last said about a real server.
type health struct {
	up     bool
	weight int64 // effective weight: configured plus dynamic weights
}

// planServices expands the configuration's virtual servers.
func planServices(c *config.Config) ([]*vsPlan, error) {
	groups := map[string]*config.VSGroup{}
	for _, g := range c.VSGroups {
		groups[g.Name] = g
	}
	var plans []*vsPlan
	rsNames := map[string]int{}
	for _, vs := range c.VirtualServers {
		p := &vsPlan{cfg: vs, name: vs.String()}
		switch vs.Kind {
		case config.VSFWMark:
			p.keys = []vsKey{{key: lvs.ServiceKey{FWMark: vs.FWMark, IPv6: vs.IPv6, Proto: vs.Protocol}}}
		case config.VSGroupK:
			g := groups[vs.Group]
			if g == nil {
				return nil, fmt.Errorf("%s: virtual_server group %s: no virtual_server_group of that name", vs.Pos, vs.Group)
			}
			for _, e := range g.Entries {
				if e.FWMark != 0 {
					p.keys = append(p.keys, vsKey{key: lvs.ServiceKey{FWMark: e.FWMark, IPv6: e.Family == "inet6", Proto: vs.Protocol}})
					continue
				}
				n := 0
				for a := e.First; a.IsValid(); a = a.Next() {
					if n++; n > maxGroupExpansion {
						return nil, fmt.Errorf("%s: virtual_server_group %s: range %s-%s expands into more than %d services", e.Pos, g.Name, e.First, e.Last, maxGroupExpansion)
					}
					p.keys = append(p.keys, vsKey{key: lvs.ServiceKey{Proto: vs.Protocol, Addr: netip.AddrPortFrom(a, e.Port)}, port: e.Port})
					if a == e.Last || !e.Last.IsValid() {
						break
					}
				}
			}
		default:
			p.keys = []vsKey{{key: lvs.ServiceKey{Proto: vs.Protocol, Addr: vs.Addr}, port: vs.Addr.Port()}}
		}
		for _, rs := range vs.RealServers {
			rsNames[rsName(vs, rs)]++
		}
		plans = append(plans, p)
	}
	// Name each real server as keepalived's logs do, and add the virtual
	// server where the same real server serves several.
	for _, p := range plans {
		for _, rs := range p.cfg.RealServers {
			n := rsName(p.cfg, rs)
			if rsNames[n] > 1 {
				n += " of " + p.name
			}
			p.rss = append(p.rss, rsPlan{cfg: rs, check: n})
		}
	}
	return plans, nil
}

// rsName formats a real server as keepalived's FMT_RS: [IP]:proto:port.
func rsName(vs *config.VirtualServer, rs *config.RealServer) string {
	port := rs.Addr.Port()
	if port == 0 {
		port = vs.Addr.Port()
	}
	return fmt.Sprintf("[%s]:%s:%d", rs.Addr.Addr(), protoName(vs.Protocol), port)
}

func protoName(p lvs.Protocol) string {
	switch p {
	case lvs.UDP:
		return "udp"
	case lvs.SCTP:
		return "sctp"
	}
	return "tcp"
}

// quorumSum returns the live weight of a virtual server: the sum of the
// effective weights of its real servers that are up (keepalived's
// weight_sum).
func quorumSum(p *vsPlan, h map[string]health) int64 {
	var sum int64
	for _, rs := range p.rss {
		if st, ok := h[rs.check]; ok && st.up {
			sum += st.weight
		}
	}
	return sum
}

// nextQuorum applies keepalived's hysteresis: quorum is lost when the live
// weight falls below quorum-hysteresis (or to 0), and gained when it
// reaches quorum+hysteresis.
func nextQuorum(p *vsPlan, up bool, sum int64) bool {
	q, hy := int64(p.cfg.Quorum), int64(p.cfg.Hysteresis)
	if up {
		return !(sum == 0 || sum < q-hy)
	}
	return sum > 0 && sum >= q+hy
}

// desiredServices computes what the data plane must run: each virtual
// server's real servers that are up with their effective weights, the
// ones down with inhibit_on_failure at weight 0, and the sorry server
// while the quorum is lost (all of them removed then, as keepalived does).
func desiredServices(c *config.Config, plans []*vsPlan, h map[string]health, quorumUp map[string]bool) []lvs.Service {
	var out []lvs.Service
	var timeouts lvs.Timeouts
	if c.Global.LVSTimeouts != nil {
		timeouts = *c.Global.LVSTimeouts
	}
	for _, p := range plans {
		vs := p.cfg
		qup, ok := quorumUp[p.name]
		if !ok {
			qup = true
		}
		sorry := vs.SorryServer != nil && !qup
		for _, k := range p.keys {
			svc := lvs.Service{
				Key:            k.key,
				Scheduler:      vs.Scheduler,
				Flags:          vs.Flags,
				Persistence:    vs.PersistenceTimeout,
				PersistMask:    persistMask(vs),
				Timeouts:       timeouts,
				ConnectTimeout: vs.Check.ConnectTimeout,
				ProxyProtocol:  vs.ProxyProtocol,
			}
			if svc.Scheduler == "" {
				svc.Scheduler = defaultScheduler
			}
			if svc.Persistence > 0 {
				svc.Flags |= lvs.FlagPersistent
			}
			for _, rs := range p.rss {
				st := h[rs.check]
				d := destination(rs.cfg, k.port)
				switch {
				case st.up && !sorry:
					d.Weight = clampWeight(st.weight)
				case st.up || rs.cfg.Check.InhibitOnFailure:
					// Down with inhibit_on_failure, or live but displaced
					// by the sorry server: kept, quiesced, when inhibited.
					if !rs.cfg.Check.InhibitOnFailure {
						continue
					}
					d.Weight = 0
				default:
					continue
				}
				svc.Destinations = append(svc.Destinations, d)
			}
			if vs.SorryServer != nil && (sorry || vs.SorryServer.Inhibit) {
				s := vs.SorryServer
				d := lvs.Destination{Addr: s.Addr, Weight: 1, Forward: s.Method.Forward}
				if d.Addr.Port() == 0 {
					d.Addr = netip.AddrPortFrom(d.Addr.Addr(), k.port)
				}
				if s.Method.Tunnel != nil {
					d.Tunnel, d.TunnelPort = s.Method.Tunnel.Type, s.Method.Tunnel.Port
				}
				if !sorry {
					d.Weight = 0
				}
				svc.Destinations = append(svc.Destinations, d)
			}
			out = append(out, svc)
		}
	}
	return out
}

func destination(rs *config.RealServer, vsPort uint16) lvs.Destination {
	d := lvs.Destination{
		Addr:       rs.Addr,
		Weight:     rs.Weight,
		Forward:    rs.Method.Forward,
		UThreshold: rs.UThreshold,
		LThreshold: rs.LThreshold,
	}
	if d.Addr.Port() == 0 {
		d.Addr = netip.AddrPortFrom(d.Addr.Addr(), vsPort)
	}
	if t := rs.Method.Tunnel; t != nil {
		d.Tunnel, d.TunnelPort = t.Type, t.Port
		switch t.Csum {
		case "csum":
			d.TunnelCsum = 1
		case "remcsum":
			d.TunnelCsum = 2
		}
	}
	return d
}

func clampWeight(w int64) int {
	switch {
	case w < 0:
		return 0
	case w > 65535:
		return 65535
	}
	return int(w)
}

func persistMask(vs *config.VirtualServer) int {
	if vs.PersistenceGranularity.IsValid() {
		return vs.PersistenceGranularity.Bits()
	}
	if vs.IPv6 || vs.Addr.Addr().Is6() {
		return 128
	}
	return 32
}

// validateServices checks, before anything runs, that the data plane can
// run every service the configuration can produce (every real server up,
// and the sorry server alone), so a problem names the virtual server's
// file:line (at start, reload and in vipd -t) rather than surfacing as a
// failed Apply. The data plane's Check is the one place its limits live.
func validateServices(c *config.Config, plans []*vsPlan, check dataplane.Check, hint string) config.Diagnostics {
	if check == nil {
		return nil
	}
	allUp := map[string]health{}
	for _, p := range plans {
		for _, rs := range p.rss {
			allUp[rs.check] = health{up: true, weight: int64(rs.cfg.Weight)}
		}
	}
	var errs config.Diagnostics
	for _, p := range plans {
		one := []*vsPlan{p}
		seen := map[string]bool{}
		for _, q := range []bool{true, false} {
			for _, s := range desiredServices(c, one, allUp, map[string]bool{p.name: q}) {
				if err := check([]lvs.Service{s}); err != nil && !seen[err.Error()] {
					seen[err.Error()] = true
					errs = append(errs, config.Diagnostic{Pos: p.cfg.Pos, Severity: config.Error, Keyword: "virtual_server",
						Msg: fmt.Sprintf("virtual server %s: %v", p.name, err), Hint: hint, Exit: config.ExitConfig})
				}
			}
		}
	}
	return errs
}
