package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/daemon"
	"github.com/vipd/vipd/internal/lab"
)

// daemonEnv makes the test binary run the vipd daemon (what cmd/vipd's run
// does) instead of the tests: the VM ships one binary, and this is how the
// daemon runs in it. The value is "CONF,SOCKET".
const daemonEnv = "VIPD_VMTEST_DAEMON"

func TestMain(m *testing.M) {
	if v := os.Getenv(daemonEnv); v != "" {
		os.Exit(runDaemon(v))
	}
	os.Exit(m.Run())
}

func runDaemon(v string) int {
	conf, sock, _ := strings.Cut(v, ",")
	d, err := daemon.New(daemon.Options{
		ConfigFile: conf, Control: sock, Dataplane: "ipvs", Version: "vmtest",
		PIDFile: filepath.Join(filepath.Dir(sock), "vipd.pid"), IPVSState: filepath.Join(filepath.Dir(sock), "ipvs.json"),
		Logger: nil,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vipd:", err)
		return 4
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vipd:", err)
		return 1
	}
	return 0
}

func daemonConf(state string, prio int, rs1, rs2 string) string {
	return fmt.Sprintf(`global_defs {
    router_id %[1]s
    lvs_sync_daemon eth0 VI_1 id 51
}
vrrp_instance VI_1 {
    state %[1]s
    interface eth0
    virtual_router_id 51
    priority %[2]d
    advert_int 1
    virtual_ipaddress {
        %[5]s/32 dev eth0
    }
}
virtual_server %[5]s 80 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server %[3]s 80 {
        weight 1
        TCP_CHECK { connect_timeout 2 }
    }
    real_server %[4]s 80 {
        weight 1
        TCP_CHECK { connect_timeout 2 }
    }
}
`, state, prio, rs1, rs2, drVIP)
}

type vipdProc struct {
	proc *lab.Proc
	sock string
}

func startDaemon(t *testing.T, h *lab.Host, conf string) *vipdProc {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "vipd.sock")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := h.Start("env", daemonEnv+"="+cf+","+sock, self)
	v := &vipdProc{proc: p, sock: sock}
	lab.Eventually(t, 60*time.Second, func() bool {
		select {
		case <-p.Done():
			t.Fatalf("vipd on %s exited: %v\n%s", h.Name, p.Err(), p.Output())
		default:
		}
		r, err := api.NewClient(sock).Ready(context.Background())
		return err == nil && r.Ready
	}, "vipd on %s not ready:\n%s", h.Name, p.Output())
	return v
}

func (v *vipdProc) state(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := api.NewClient(v.sock).Status(ctx)
	if err != nil || len(st.Instances) == 0 {
		return ""
	}
	return st.Instances[0].State
}

// TestDaemonDR runs what the seeds run, with the vipd daemon itself: two
// directors reading a keepalived.conf with VRRP, an LVS-DR virtual server
// with health checks and lvs_sync_daemon, on the kernel's IPVS. The
// master programs IPVS and serves the VIP; the sync daemon follows VRRP;
// after SIGTERM the backup takes over and serves.
func TestDaemonDR(t *testing.T) {
	requireIPVS(t)
	l := lab.New(t)
	client := l.Host("cli")
	d1 := l.Host("d1")
	d2 := l.Host("d2")
	var rs []*lab.Host
	for i := 1; i <= 2; i++ {
		h := l.Host(fmt.Sprintf("rs%d", i))
		realServerUp(t, h, drVIP)
		serveHTTP(t, h, ":80", h.Name)
		rs = append(rs, h)
	}
	m := startDaemon(t, d1, daemonConf("MASTER", 150, rs[0].Addr.String(), rs[1].Addr.String()))
	b := startDaemon(t, d2, daemonConf("BACKUP", 100, rs[0].Addr.String(), rs[1].Addr.String()))
	lab.Eventually(t, 30*time.Second, func() bool { return m.state(t) == "MASTER" && b.state(t) == "BACKUP" },
		"d1 MASTER and d2 BACKUP expected: %q %q", m.state(t), b.state(t))

	// The master's IPVS table is what ipvsadm would have programmed.
	out := d1.MustRun("ipvsadm", "-L", "-n")
	for _, want := range []string{"TCP  " + drVIP + ":80 rr", rs[0].Addr.String() + ":80", "Route"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ipvsadm -L -n on d1 lacks %q:\n%s", want, out)
		}
	}
	// vipctl list's first line comes from the kernel through the daemon
	// (IPVS_CMD_GET_INFO in the status): the line ipvsadm prints.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := api.NewClient(m.sock).Status(ctx)
	cancel()
	if err != nil || st.IPVS == nil {
		t.Fatalf("status of d1: %v, IPVS %+v", err, st.IPVS)
	}
	if got, want := fmt.Sprintf("IP Virtual Server version %s (size=%d)", st.IPVS.Version, st.IPVS.ConnTabSize), strings.SplitN(out, "\n", 2)[0]; got != want {
		t.Errorf("daemon reports %q, ipvsadm prints %q", got, want)
	}
	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		body, err := client.Get("http://" + drVIP + "/")
		if err != nil {
			t.Fatalf("GET through the VIP: %v\n%s", err, m.proc.Output())
		}
		seen[strings.TrimSpace(body)]++
	}
	if seen["rs1"] != 2 || seen["rs2"] != 2 {
		t.Errorf("rr over the DR real servers answered %v", seen)
	}
	// The sync daemon follows VRRP: master on d1, backup on d2.
	lab.Eventually(t, 10*time.Second, func() bool {
		a, _ := d1.Run("ipvsadm", "-L", "--daemon")
		b, _ := d2.Run("ipvsadm", "-L", "--daemon")
		return strings.Contains(a, "master sync daemon") && strings.Contains(b, "backup sync daemon")
	}, "sync daemons not master on d1 and backup on d2")

	// SIGTERM on the master: priority 0; d2 takes the VIP and serves.
	if err := m.proc.Stop(20 * time.Second); err != nil {
		t.Fatalf("d1 did not stop: %v", err)
	}
	lab.Eventually(t, 15*time.Second, func() bool { return b.state(t) == "MASTER" }, "d2 not MASTER after d1 stopped")
	lab.Eventually(t, 15*time.Second, func() bool {
		_, err := client.Get("http://" + drVIP + "/")
		return err == nil
	}, "VIP not served by d2")
	lab.Eventually(t, 10*time.Second, func() bool {
		a, _ := d2.Run("ipvsadm", "-L", "--daemon")
		return strings.Contains(a, "master sync daemon")
	}, "d2's sync daemon did not become master")
	// d1 removed what it created.
	if out := d1.MustRun("ipvsadm", "-L", "-n"); strings.Contains(out, drVIP) {
		t.Errorf("d1 left its IPVS service behind after SIGTERM:\n%s", out)
	}
}
