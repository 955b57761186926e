package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// natPair is the seeds' LVS-NAT + VRRP deployment in a lab: a client, two
// directors d1 and d2 that share the VIP 198.18.0.100, and two nginx real
// servers rs1 and rs2 behind it.
type natPair struct {
	client, d1, d2, rs1, rs2 *lab.Host
	ng1                      *lab.Proc // rs1's nginx, for killing
}

// newNATPair builds the lab and starts both real servers.
func newNATPair(t *testing.T) *natPair {
	t.Helper()
	l := lab.New(t)
	p := &natPair{client: l.Host("client"), d1: l.Host("d1"), d2: l.Host("d2"), rs1: l.Host("rs1"), rs2: l.Host("rs2")}
	p.ng1 = nginx(t, p.rs1, "rs1")
	nginx(t, p.rs2, "rs2")
	return p
}

// natConf is keepalived.conf for a natPair, as a user writes it with
// faster timers: a VRRP instance holding the VIP, and virtual server
// VIP:80 (rr, NAT) with rs1 checked by HTTP_GET and rs2 by TCP_CHECK.
type natConf struct {
	instance  string // the VRRP instance's name; "" is VI_1
	routerID  string // %s in it is the director's state
	vrid      int
	advert    string // advert_int, seconds
	rs2Weight int
	vrrpV2    bool // leave vrrp_version at its default, 2
}

// name is the VRRP instance's name.
func (c natConf) name() string {
	if c.instance == "" {
		return "VI_1"
	}
	return c.instance
}

// forState renders the configuration of the director of p in state with prio.
func (c natConf) forState(state string, prio int, p *natPair) string {
	return c.render(state, prio, p.rs1.Addr.String(), p.rs2.Addr.String())
}

// render is the configuration of a director in state with prio, over the
// real servers rs1 and rs2.
func (c natConf) render(state string, prio int, rs1, rs2 string) string {
	version := "\n   vrrp_version 3"
	if c.vrrpV2 {
		version = ""
	}
	return fmt.Sprintf(`! Configuration File for keepalived
global_defs {
   router_id %[1]s%[2]s
}
%[3]svirtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server %[4]s 80 {
        weight 1
        HTTP_GET {
            url {
              path /
              status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server %[5]s 80 {
        weight %[6]d
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`, strings.ReplaceAll(c.routerID, "%s", state), version, vipInstance(c.name(), state, c.vrid, prio, c.advert),
		rs1, rs2, c.rs2Weight)
}

// start runs vipd on d1 (MASTER, priority 150, with args1) and d2
// (BACKUP, 100, with args2) and waits until both are in their state.
func (p *natPair) start(t *testing.T, c natConf, args1, args2 []string) (m, b *director) {
	t.Helper()
	m = startVipd(t, p.d1, c.forState("MASTER", 150, p), args1...)
	b = startVipd(t, p.d2, c.forState("BACKUP", 100, p), args2...)
	vi := c.name()
	lab.Eventually(t, 5*time.Second, func() bool { return m.state(vi) == "MASTER" && b.state(vi) == "BACKUP" },
		"d1 MASTER and d2 BACKUP expected, got %s and %s", m.state(vi), b.state(vi))
	return m, b
}

// vipInstance is a vrrp_instance block holding the lab's VIP
// 198.18.0.100/24 on eth0.
func vipInstance(name, state string, vrid, prio int, advert string) string {
	return fmt.Sprintf(`vrrp_instance %s {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
}
`, name, state, vrid, prio, advert)
}
