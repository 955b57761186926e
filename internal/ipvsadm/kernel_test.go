package ipvsadm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// TestAgainstIpvsadm programs the kernel's IPVS with ipvsadm 1.31 (in a
// network namespace of its own) and compares what ipvsadm then lists with
// what this package prints for the same services, byte for byte, in every
// listing format.
//
// It needs a kernel with IPVS. The run that counts is the one in the VM:
// scripts/vmtest runs it there (scripts/run-in-vm boots Debian's stock
// kernel, which has IPVS), alone as
//
//	CGO_ENABLED=0 go test -exec "$PWD/scripts/run-in-vm" -run TestAgainstIpvsadm ./internal/ipvsadm/
//
// On a host whose kernel has IPVS it runs as root too. On a host kernel
// without IPVS it is excluded by lab.RequireIPVS, which skips naming that
// fact of the machine ("kernel without IPVS"), also under CI; in the VM a
// missing IPVS fails the test instead.
func TestAgainstIpvsadm(t *testing.T) {
	lab.RequireIPVS(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	ns := "vipdadm" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	// IPVS accepts only real servers with unicast routes: give the
	// namespace a link in their subnets.
	// Commands go in batches (ip -batch, ipvsadm -R): each program start
	// costs about a second in the emulated VM.
	batch := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s\ninput:\n%s", name, strings.Join(args, " "), err, out, stdin)
		}
	}
	batch(`link set lo up
link add v0 type veth peer name v1
link set v1 up
link set v0 up
addr add 198.18.0.10/24 dev v0
addr add 2001:db8::10/64 dev v0 nodad
`, "ip", "-n", ns, "-batch", "-")
	adm := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "ipvsadm"}, args...)...).CombinedOutput()
		return string(out), err
	}
	// ipvsadm -R reads the same options as its command line, one
	// command a line.
	batch(strings.Join([]string{
		"-A -t 198.18.0.100:80 -s wrr",
		"-a -t 198.18.0.100:80 -r 198.18.0.22:80 -g -w 2",
		"-a -t 198.18.0.100:80 -r 198.18.0.21:80 -g -w 1",
		"-a -t 198.18.0.100:80 -r 198.18.0.23:80 -g -w 0",
		"-A -t 198.18.0.100:443 -s sh -b sh-port -p 300 -M 255.255.255.0",
		"-a -t 198.18.0.100:443 -r 198.18.0.32:8443 -m -w 100 -x 1000 -y 800",
		"-a -t 198.18.0.100:443 -r 198.18.0.31:8443 -m -w 100",
		"-A -u 198.18.0.100:53 -s rr -o",
		"-a -u 198.18.0.100:53 -r 198.18.0.21:53 -g -w 1",
		"-A -t [2001:db8::100]:80 -s rr -p 60 -M 64",
		"-a -t [2001:db8::100]:80 -r [2001:db8::22]:80 -g -w 1",
		"-a -t [2001:db8::100]:80 -r [2001:db8::21]:80 -i -w 5",
		"-A -f 7 -s wlc -b flag-1,flag-3",
		"-a -f 7 -r 198.18.0.21 -g -w 1",
		"-A -f 3 -6 -s wlc",
		"-A -t 198.18.0.1:80 -s rr",
		"-A -t 10.0.0.1:80 -s rr",
		"-A -t 198.18.0.100:1 -s mh -b mh-fallback,mh-port",
		"-A --sctp-service 198.18.0.100:4 -s rr",
		"-A -t 198.18.0.100:5 -s rr",
		"-a -t 198.18.0.100:5 -r 198.18.0.24 -i --tun-type gue --tun-port 6080 --tun-remcsum -w 1",
		"-a -t 198.18.0.100:5 -r 198.18.0.25 -i --tun-type gre --tun-csum -w 1",
		"-a -t 198.18.0.100:5 -r 198.18.0.26 -i -w 1",
	}, "\n")+"\n", "ip", "netns", "exec", ns, "ipvsadm", "-R")
	if out, err := adm("--set", "7200", "30", "1"); err != nil {
		t.Fatalf("ipvsadm --set 7200 30 1: %v: %s", err, out)
	}

	// The same services in vipd's model.
	svcs := mixed()
	svcs[1].Dests[0].UThreshold, svcs[1].Dests[0].LThreshold = 1000, 800
	for i := range svcs { // counters and connection counts are zero in the kernel
		for j := range svcs[i].Dests {
			svcs[i].Dests[j].ActiveConns, svcs[i].Dests[j].InactiveConns = 0, 0
		}
	}
	tun := func(addr string, typ lvs.TunnelType, port uint16, csum uint8) lvs.DestStatus {
		return lvs.DestStatus{Destination: lvs.Destination{Addr: ap(addr), Weight: 1, Forward: lvs.Tunnel, Tunnel: typ, TunnelPort: port, TunnelCsum: csum}}
	}
	svcs = append(svcs,
		svc(tcp("198.18.0.1:80"), "rr"),
		svc(tcp("10.0.0.1:80"), "rr"),
		lvs.ServiceStatus{Service: lvs.Service{Key: tcp("198.18.0.100:1"), Scheduler: "mh", Flags: lvs.FlagMHFallback | lvs.FlagMHPort}},
		lvs.ServiceStatus{Service: lvs.Service{Key: lvs.ServiceKey{Proto: lvs.SCTP, Addr: ap("198.18.0.100:4")}, Scheduler: "rr"}},
		svc(tcp("198.18.0.100:5"), "rr",
			// ipvsadm gives direct-routing and tunnel real servers the
			// service port.
			tun("198.18.0.24:5", lvs.TunnelGUE, 6080, 2), tun("198.18.0.25:5", lvs.TunnelGRE, 0, 1), tun("198.18.0.26:5", lvs.TunnelIPIP, 0, 0)),
	)

	for _, c := range []struct {
		args []string
		opt  Options
	}{
		{[]string{"-L", "-n"}, Options{Numeric: true}},
		{[]string{"-L", "-n", "--stats"}, Options{Stats: true}},
		{[]string{"-L", "-n", "--stats", "--exact"}, Options{Stats: true, Exact: true}},
		{[]string{"-L", "-n", "--rate"}, Options{Rate: true}},
		{[]string{"-L", "-n", "--thresholds"}, Options{Thresholds: true}},
		{[]string{"-L", "-n", "--persistent-conn"}, Options{PersistentConn: true}},
		{[]string{"-L", "-n", "--tun-info"}, Options{TunInfo: true}},
	} {
		want, err := adm(c.args...)
		if err != nil {
			t.Fatalf("ipvsadm %v: %v: %s", c.args, err, want)
		}
		var got bytes.Buffer
		if err := List(&got, svcs, c.opt); err != nil {
			t.Fatal(err)
		}
		if got.String() != want {
			t.Errorf("ipvsadm %s:\n%s\nvipd:\n%s\n%s", strings.Join(c.args, " "), want, got.String(), firstDiff(got.String(), want))
		}
	}

	want, _ := adm("-L", "-n", "-u", "198.18.0.100:53")
	var got bytes.Buffer
	if err := ListService(&got, svcs, lvs.ServiceKey{Proto: lvs.UDP, Addr: ap("198.18.0.100:53")}, Options{}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("ipvsadm -L -n -u:\n%s\nvipd:\n%s", want, got.String())
	}

	want, _ = adm("-L", "-n", "-c")
	got.Reset()
	if err := Conns(&got, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("ipvsadm -L -n -c:\n%s\nvipd:\n%s", want, got.String())
	}

	want, _ = adm("-L", "--timeout")
	got.Reset()
	if err := Timeout(&got, lvs.Timeouts{TCP: 7200 * time.Second, TCPFin: 30 * time.Second, UDP: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want {
		t.Errorf("ipvsadm -L --timeout: %q, vipd %q", want, got.String())
	}
}
