package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/lab"
)

// routesConf is a vipd pair's configuration with virtual routes and
// rules: 198.19.5.0/24 (behind the lab router r1) is reached through the
// master only.
func routesConf(state string, prio int, router string) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s_node
    vrrp_version 3
}
vrrp_instance VI_1 {
    state %[1]s
    interface eth0
    virtual_router_id 52
    priority %[2]d
    advert_int 0.2
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
    virtual_routes {
        198.19.5.0/24 via %[3]s dev eth0
        198.19.6.0/24 via %[3]s dev eth0 table 100
        src 198.18.0.100 198.19.8.0/24 via %[3]s dev eth0
    }
    virtual_rules {
        to 198.19.6.0/24 table 100 preference 100
    }
}
`, state, prio, router)
}

// routeState says whether h has the master's virtual route and rule,
// and whether r1's network answers through them.
func routeState(h *lab.Host) (route, rule bool) {
	out, _ := h.Run("ip", "route", "show")
	route = strings.Contains(out, "198.19.5.0/24 via ") && strings.Contains(out, "proto keepalived") &&
		strings.Contains(out, "198.19.8.0/24 via ") && strings.Contains(out, "src 198.18.0.100")
	out, _ = h.Run("ip", "rule", "show", "pref", "100")
	rule = strings.Contains(out, "100:\tfrom all to 198.19.6.0/24 lookup 100")
	return route, rule
}

func pings(h *lab.Host, addr string) bool {
	_, err := h.Run("ping", "-c1", "-W1", addr)
	return err == nil
}

// TestVirtualRoutesFollowMaster runs a vipd pair whose instance has
// virtual_routes and virtual_rules: only the master has them (and reaches
// the network behind the router), a failover moves them, and SIGTERM
// takes them away.
func TestVirtualRoutesFollowMaster(t *testing.T) {
	lab.RequireCommand(t, "ping")
	l := lab.New(t)
	d1 := l.Host("d1")
	d2 := l.Host("d2")
	r1 := l.Host("r1")
	r1.MustRun("ip", "addr", "add", "198.19.5.1/24", "dev", "lo")
	r1.MustRun("ip", "addr", "add", "198.19.6.1/24", "dev", "lo")
	router := r1.Addr.String()

	m := startVipd(t, d1, routesConf("MASTER", 150, router))
	b := startVipd(t, d2, routesConf("BACKUP", 100, router))
	lab.Eventually(t, 5*time.Second, func() bool { return m.state("VI_1") == "MASTER" && b.state("VI_1") == "BACKUP" },
		"d1 MASTER and d2 BACKUP expected, got %s and %s", m.state("VI_1"), b.state("VI_1"))
	only := func(has, hasnt *lab.Host, why string) {
		t.Helper()
		lab.Eventually(t, 5*time.Second, func() bool {
			r, u := routeState(has)
			return r && u
		}, "%s: %s lacks the virtual route or rule:\n%s\n%s", why, has.Name,
			has.MustRun("ip", "route", "show", "table", "all"), has.MustRun("ip", "rule", "show"))
		lab.Eventually(t, 5*time.Second, func() bool {
			r, u := routeState(hasnt)
			return !r && !u
		}, "%s: %s still has the virtual route or rule:\n%s\n%s", why, hasnt.Name,
			hasnt.MustRun("ip", "route", "show", "table", "all"), hasnt.MustRun("ip", "rule", "show"))
		// Through the route and through the rule's table.
		if !pings(has, "198.19.5.1") || !pings(has, "198.19.6.1") {
			t.Fatalf("%s: %s has the routes but does not reach 198.19.5.1 and 198.19.6.1", why, has.Name)
		}
		if pings(hasnt, "198.19.5.1") {
			t.Fatalf("%s: %s reaches 198.19.5.1 without the route", why, hasnt.Name)
		}
	}
	only(d1, d2, "at start")

	// The master's cable is pulled: d2 takes over, d1 (FAULT) lets go.
	d1.Cut()
	cut := time.Now()
	lab.Eventually(t, 5*time.Second, func() bool { r, u := routeState(d2); return r && u }, "d2 has no virtual route after d1's cable was cut")
	t.Logf("d2 had the virtual route and rule %v after the cut (3 x advert_int 0.2 s + skew is the VRRP part)", time.Since(cut).Round(time.Millisecond))
	if s := b.state("VI_1"); s != "MASTER" {
		t.Fatalf("d2 has the virtual route as %s", s)
	}
	lab.Eventually(t, 5*time.Second, func() bool { r, u := routeState(d1); return !r && !u }, "d1 kept its virtual route in %s", m.state("VI_1"))
	// Back: d1 preempts and the routes move back.
	d1.Restore()
	lab.Eventually(t, 10*time.Second, func() bool { return m.state("VI_1") == "MASTER" && b.state("VI_1") == "BACKUP" },
		"d1 did not take MASTER back: %s and %s", m.state("VI_1"), b.state("VI_1"))
	only(d1, d2, "after preemption")

	// A tracked virtual route someone deletes is put back.
	d1.MustRun("ip", "route", "del", "198.19.5.0/24")
	lab.Eventually(t, 5*time.Second, func() bool { r, _ := routeState(d1); return r }, "deleted virtual route not reinstated")

	// SIGTERM: d1 removes them as it leaves, d2 adds them.
	stop(t, m.proc)
	if r, u := routeState(d1); r || u {
		t.Fatalf("d1's virtual route or rule outlived vipd:\n%s\n%s", d1.MustRun("ip", "route", "show", "table", "all"), d1.MustRun("ip", "rule", "show"))
	}
	only(d2, d1, "after d1 stopped")
	stop(t, b.proc)
	if r, u := routeState(d2); r || u {
		t.Fatalf("d2's virtual route or rule outlived vipd")
	}
	// The route from the VIP waited for the VIP: nothing was refused.
	for _, d := range []*director{m, b} {
		for _, line := range strings.Split(d.proc.Output(), "\n") {
			if (strings.Contains(line, "ERROR") || strings.Contains(line, "WARN")) && !strings.Contains(line, "was deleted; reinstating it") {
				t.Fatalf("%s logged %q:\n%s", d.host.Name, line, d.proc.Output())
			}
		}
	}
}

func staticConf(router string, extra string) string {
	return fmt.Sprintf(`global_defs {
    router_id static_node
}
static_ipaddress {
    198.18.0.200/24 dev eth0 label eth0:st
}
static_routes {
    198.19.7.0/24 via %[1]s dev eth0
    blackhole 198.19.9.0/24
    198.19.10.0/24 via 198.20.0.1
%[2]s}
static_rules {
    from 198.18.0.200 table 100 preference 200
}
`, router, extra)
}

// TestStaticRoutes: static_ipaddress, static_routes and static_rules are
// there while vipd runs (without any vrrp_instance), a route the kernel
// refuses is logged with its file:line without stopping the others, a
// deleted one is put back, a reload applies the difference, and all go
// when vipd stops.
func TestStaticRoutes(t *testing.T) {
	lab.RequireCommand(t, "ping")
	l := lab.New(t)
	h := l.Host("d1")
	r1 := l.Host("r1")
	r1.MustRun("ip", "addr", "add", "198.19.7.1/24", "dev", "lo")
	router := r1.Addr.String()
	d := startVipd(t, h, staticConf(router, ""))

	has := func(args ...string) func(string) bool {
		return func(want string) bool {
			out, _ := h.Run("ip", args...)
			return strings.Contains(out, want)
		}
	}
	addr, route, rule := has("-o", "addr", "show", "dev", "eth0"), has("route", "show", "table", "all"), has("rule", "show")
	present := func(why string) {
		t.Helper()
		lab.Eventually(t, 5*time.Second, func() bool {
			return addr("inet 198.18.0.200/24 scope global secondary eth0:st") &&
				route("198.19.7.0/24 via "+router+" dev eth0 proto keepalived") &&
				route("blackhole 198.19.9.0/24 proto keepalived") &&
				rule("200:\tfrom 198.18.0.200 lookup 100 proto keepalived")
		}, "%s: static items missing:\n%s\n%s\n%s", why, h.MustRun("ip", "addr"), h.MustRun("ip", "route", "show", "table", "all"), h.MustRun("ip", "rule"))
	}
	present("at start")
	if !pings(h, "198.19.7.1") {
		t.Fatal("198.19.7.1 unreachable through the static route")
	}
	// The refused route is named by file:line (line 10) and the reason.
	lab.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(d.proc.Output(), "keepalived.conf:10: static_routes: add route 198.19.10.0/24 via 198.20.0.1: network is unreachable")
	}, "the refused route is not logged with its file:line:\n%s", d.proc.Output())

	// Deleted by someone: put back.
	h.MustRun("ip", "route", "del", "198.19.7.0/24")
	h.MustRun("ip", "rule", "del", "pref", "200")
	h.MustRun("ip", "addr", "del", "198.18.0.200/24", "dev", "eth0")
	deleted := time.Now()
	present("after deletion")
	t.Logf("address, route and rule reinstated within %v of their deletion", time.Since(deleted).Round(time.Millisecond))

	// Reload: the blackhole goes (by removing the line would shift the
	// refused route's line; replace it), another route comes.
	conf := strings.Replace(staticConf(router, "    198.19.11.0/24 via "+router+" metric 7\n"), "blackhole 198.19.9.0/24", "unreachable 198.19.12.0/24", 1)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.NewClient(d.sock).Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if route("198.19.9.0/24") || !route("unreachable 198.19.12.0/24 proto keepalived") ||
		!route("198.19.11.0/24 via "+router+" dev eth0 proto keepalived metric 7") || !route("198.19.7.0/24 via "+router) {
		t.Fatalf("reload did not apply the difference:\n%s", h.MustRun("ip", "route", "show", "table", "all"))
	}

	stop(t, d.proc)
	for _, gone := range []struct {
		ok   func(string) bool
		what string
	}{{addr, "198.18.0.200"}, {route, "198.19.7.0"}, {route, "198.19.11.0"}, {route, "198.19.12.0"}, {rule, "200:"}} {
		if gone.ok(gone.what) {
			t.Errorf("%s still there after vipd stopped", gone.what)
		}
	}
	if !addr("198.18.0.11/24") && !addr(h.Addr.String()+"/24") {
		t.Errorf("the host's own address went:\n%s", h.MustRun("ip", "addr"))
	}
}

func reloadRoutesConf(router string, routes string) string {
	return fmt.Sprintf(`global_defs {
    router_id solo
    vrrp_version 3
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 53
    priority 150
    advert_int 0.2
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
    virtual_routes {
        198.19.20.0/24 via %[1]s dev eth0 no_track
%[2]s    }
}
`, router, routes)
}

// TestVirtualRoutesReload: a reload changes a MASTER's virtual routes by
// the difference, without a transition; a deleted no_track route stays
// deleted until the instance next becomes MASTER.
func TestVirtualRoutesReload(t *testing.T) {
	l := lab.New(t)
	h := l.Host("d1")
	router := "198.18.0.1"
	d := startVipd(t, h, reloadRoutesConf(router, "        198.19.21.0/24 via "+router+" dev eth0\n"))
	lab.Eventually(t, 5*time.Second, func() bool { return d.state("VI_1") == "MASTER" }, "not MASTER")
	routes := func() string { return h.MustRun("ip", "route", "show", "proto", "keepalived") }
	lab.Eventually(t, 5*time.Second, func() bool {
		r := routes()
		return strings.Contains(r, "198.19.20.0/24") && strings.Contains(r, "198.19.21.0/24")
	}, "virtual routes missing:\n%s", routes())
	before := d.status().Instances[0].Transitions

	// no_track: deleted, not put back (give a reinstatement pass time to
	// run: it would follow the deletion within milliseconds).
	h.MustRun("ip", "route", "del", "198.19.20.0/24")
	h.MustRun("ip", "route", "del", "198.19.21.0/24")
	lab.Eventually(t, 5*time.Second, func() bool { return strings.Contains(routes(), "198.19.21.0/24") }, "tracked route not reinstated")
	if strings.Contains(routes(), "198.19.20.0/24") {
		t.Fatalf("no_track route put back:\n%s", routes())
	}

	if err := os.WriteFile(d.conf, []byte(reloadRoutesConf(router, "        198.19.22.0/24 via "+router+" dev eth0 metric 9\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.NewClient(d.sock).Reload(ctx); err != nil {
		t.Fatal(err)
	}
	r := routes()
	if strings.Contains(r, "198.19.21.0/24") || !strings.Contains(r, "198.19.22.0/24 via "+router+" dev eth0 metric 9") {
		t.Fatalf("reload did not move the master's virtual routes:\n%s", r)
	}
	if strings.Contains(r, "198.19.20.0/24") {
		t.Fatalf("reload put back a deleted no_track route:\n%s", r)
	}
	if after := d.status().Instances[0].Transitions; after != before || d.state("VI_1") != "MASTER" {
		t.Fatalf("reload caused transitions: %d -> %d, state %s", before, after, d.state("VI_1"))
	}
	stop(t, d.proc)
	if r := routes(); strings.TrimSpace(r) != "" {
		t.Fatalf("routes left after stop:\n%s", r)
	}
}
