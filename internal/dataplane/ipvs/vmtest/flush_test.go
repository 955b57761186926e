package vmtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestDaemonLVSFlush: keepalived's lvs_flush and lvs_flush_on_stop with
// the vipd daemon on the kernel's IPVS. A service vipd does not own (an
// administrator's, added with ipvsadm) survives vipd's start and stop by
// default; lvs_flush empties the table at start; lvs_flush_on_stop
// empties it at stop; lvs_flush_on_stop VS removes only vipd's own
// virtual servers.
func TestDaemonLVSFlush(t *testing.T) {
	requireIPVS(t)
	const (
		ours    = "198.18.200.1:80"
		foreign = "198.18.200.9:81"
	)
	conf := func(global string) string {
		return fmt.Sprintf(`global_defs {
    %s
}
virtual_server 198.18.200.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.18.200.2 80 {
        weight 1
    }
}
`, global)
	}
	cases := []struct {
		name, global      string
		foreignAfterStart bool
		foreignAfterStop  bool
	}{
		{name: "default", global: "router_id d", foreignAfterStart: true, foreignAfterStop: true},
		{name: "lvs_flush", global: "lvs_flush", foreignAfterStart: false, foreignAfterStop: false},
		{name: "lvs_flush_on_stop", global: "lvs_flush_on_stop", foreignAfterStart: true, foreignAfterStop: false},
		{name: "lvs_flush_on_stop VS", global: "lvs_flush_on_stop VS", foreignAfterStart: true, foreignAfterStop: true},
		{name: "lvs_flush_onstop", global: "lvs_flush_onstop", foreignAfterStart: true, foreignAfterStop: false},
	}
	l := lab.New(t)
	for i, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			h := l.Host(fmt.Sprintf("f%d", i))
			h.MustRun("ipvsadm", "-A", "-t", foreign, "-s", "rr")
			h.MustRun("ipvsadm", "-a", "-t", foreign, "-r", "198.18.200.10:81", "-m")
			list := func() string { return h.MustRun("ipvsadm", "-L", "-n") }
			v := startDaemon(t, h, conf(c.global))
			lab.Eventually(t, 10*time.Second, func() bool { return strings.Contains(list(), ours) }, "vipd did not program %s:\n%s", ours, list())
			if got := strings.Contains(list(), foreign); got != c.foreignAfterStart {
				t.Fatalf("after start: foreign service there = %v, want %v:\n%s\n%s", got, c.foreignAfterStart, list(), v.proc.Output())
			}
			if err := v.proc.Stop(20 * time.Second); err != nil {
				t.Fatalf("vipd did not stop: %v\n%s", err, v.proc.Output())
			}
			out := list()
			if strings.Contains(out, ours) {
				t.Fatalf("after stop: vipd's service is still there:\n%s", out)
			}
			if got := strings.Contains(out, foreign); got != c.foreignAfterStop {
				t.Fatalf("after stop: foreign service there = %v, want %v:\n%s\n%s", got, c.foreignAfterStop, out, v.proc.Output())
			}
		})
	}
}
