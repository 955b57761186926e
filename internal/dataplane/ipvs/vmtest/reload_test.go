package vmtest

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/dataplane/ipvs"
	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// testReload: an unchanged reload issues no netlink write and resets no
// counter; a service someone else created is never touched; a restart
// after a crash (no Close) adopts the running services without a write,
// so held connections live on, and still deletes, thanks to the state
// file, a service dropped from the configuration meanwhile.
func testReload(t *testing.T, n *natLab) {
	foreign := "198.18.1.100:7777"
	n.dir.MustRun("ipvsadm", "-A", "-t", foreign, "-s", "rr")
	n.dir.MustRun("ipvsadm", "-a", "-t", foreign, "-r", "198.18.2.21:8080", "-m")
	defer n.dir.MustRun("ipvsadm", "-D", "-t", foreign)

	state := filepath.Join(t.TempDir(), "ipvs.json")
	// KeepOnClose: this instance "crashes", its cleanup must not delete.
	d1 := newDataplane(t, n.dir, ipvs.Options{StateFile: state, KeepOnClose: true})
	a := lvs.Service{Key: vipKey(81), Scheduler: "wlc", Destinations: []lvs.Destination{natDest(0, 8081, 1), natDest(1, 8081, 1)}}
	b := lvs.Service{Key: vipKey(82), Scheduler: "rr", Destinations: []lvs.Destination{natDest(2, 8081, 1)}}
	apply(t, d1, a, b)
	w := d1.Writes()
	if w != 5 {
		t.Errorf("creating 2 services with 3 destinations took %d writes, want 5", w)
	}

	c, err := dialHold(n.client, n.srcs[0], 32000, a.Key.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.echo("before"); err != nil {
		t.Fatal(err)
	}
	lab.Eventually(t, 10*time.Second, func() bool { return find(t, d1, a.Key).Stats.Conns == 1 }, "connection not counted")
	snap := snapshot(t, n.dir)

	// Reload with the same configuration: no write, same table.
	apply(t, d1, a, b)
	if d1.Writes() != w {
		t.Errorf("unchanged reload issued %d netlink writes", d1.Writes()-w)
	}
	if got := snapshot(t, n.dir); got != snap {
		t.Errorf("unchanged reload changed the table:\nbefore:\n%s\nafter:\n%s", snap, got)
	}
	if s := find(t, d1, a.Key); s.Stats.Conns != 1 {
		t.Errorf("counters reset by a reload: %+v", s.Stats)
	}

	// "Crash" d1 and start again with b dropped from the configuration.
	d2 := newDataplane(t, n.dir, ipvs.Options{StateFile: state})
	if err := d2.Apply(context.Background(), []lvs.Service{a}); err != nil {
		t.Fatal(err)
	}
	if d2.Writes() != 1 {
		t.Errorf("restart with one service dropped took %d writes, want 1 (delete it)", d2.Writes())
	}
	got := snapshot(t, n.dir)
	if !strings.Contains(got, "TCP  198.18.1.100:81") || strings.Contains(got, "198.18.1.100:82") || !strings.Contains(got, foreign) {
		t.Errorf("after restart the table should hold :81 and the foreign %s, not :82:\n%s", foreign, got)
	}
	if err := c.echo("after restart"); err != nil {
		t.Errorf("held connection broken by the restart: %v", err)
	}
	if s := find(t, d2, a.Key); s.Stats.Conns != 1 {
		t.Errorf("counters reset by the restart: %+v", s.Stats)
	}

	// lvs_timeouts: set, then dropped from the configuration: the
	// kernel's previous values come back.
	orig, err := d2.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	a.Timeouts = lvs.Timeouts{TCP: 7200 * time.Second}
	apply(t, d2, a)
	if tm := n.dir.MustRun("ipvsadm", "-L", "--timeout"); !strings.Contains(tm, "7200 ") {
		t.Errorf("lvs_timeouts not set: %s", tm)
	}
	a.Timeouts = lvs.Timeouts{}
	apply(t, d2, a)
	if tm, _ := d2.Timeouts(); tm != orig {
		t.Errorf("timeouts after lvs_timeouts was dropped: %+v, want %+v", tm, orig)
	}

	// Close removes what vipd owns and nothing else.
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	got = snapshot(t, n.dir)
	if strings.Contains(got, "198.18.1.100:81") || !strings.Contains(got, foreign) {
		t.Errorf("after Close only the foreign service should remain:\n%s", got)
	}
}

// snapshot is the table without counters: services and destinations in
// ipvsadm's save format, sorted.
func snapshot(t *testing.T, h *lab.Host) string {
	t.Helper()
	out := h.MustRun("ipvsadm", "-L", "-n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
