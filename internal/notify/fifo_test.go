package notify

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"

	"golang.org/x/sys/unix"
)

// fifoReader reads lines from a FIFO until its writers are gone.
type fifoReader struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func readFIFO(t *testing.T, path string) *fifoReader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &fifoReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *fifoReader) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

func web() VirtualServer {
	return VirtualServer{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}}
}

func TestFIFOLines(t *testing.T) {
	dir := t.TempDir()
	all, vrrp, lvsPath := filepath.Join(dir, "notify"), filepath.Join(dir, "vrrp"), filepath.Join(dir, "lvs")
	n, _ := newNotifier(t, Config{
		NotifyFIFO:     FIFOConfig{Path: all},
		VRRPNotifyFIFO: FIFOConfig{Path: vrrp},
		LVSNotifyFIFO:  FIFOConfig{Path: lvsPath},
	})
	for _, p := range []string{all, vrrp, lvsPath} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeNamedPipe == 0 || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %s, want a 0644 named pipe", p, fi.Mode())
		}
	}
	rAll, rVRRP, rLVS := readFIFO(t, all), readFIFO(t, vrrp), readFIFO(t, lvsPath)

	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100})
	n.VRRP(VRRPEvent{Group: true, Name: "G1", State: StateBackup})
	n.RealServer(RealServerEvent{VS: web(), RS: netip.MustParseAddrPort("198.18.0.21:80"), Up: true})
	n.Quorum(QuorumEvent{VS: web()})
	n.VRRP(VRRPEvent{Name: "VI_1", State: EventMasterPriority, Priority: 80})
	n.RealServer(RealServerEvent{VS: VirtualServer{Key: lvs.ServiceKey{Proto: lvs.UDP, FWMark: 7}}, RS: netip.MustParseAddrPort("[2001:db8::21]:53")})
	n.Quorum(QuorumEvent{VS: VirtualServer{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("0.0.0.0:80")}, Group: "WEB"}, Up: true})
	n.VRRP(VRRPEvent{Name: "VI_2", State: StateDeleted, Priority: 50})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100, FIFOOnly: true})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*fifoReader{rAll, rVRRP, rLVS} {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("reader did not see the end of the FIFO after Close")
		}
	}
	vrrpLines := []string{
		`INSTANCE "VI_1" MASTER 100`,
		`GROUP "G1" BACKUP 0`,
		`INSTANCE "VI_1" MASTER_PRIORITY 80`,
		`INSTANCE "VI_2" DELETED 50`,
		`INSTANCE "VI_1" MASTER 100`,
	}
	lvsLines := []string{
		"RS [198.18.0.21]:tcp:80 [198.18.0.100]:tcp:80 UP",
		"VS [198.18.0.100]:tcp:80 DOWN",
		"RS [2001:db8::21]:udp:53 FWM 7 DOWN",
		"VS [WEB]:80 UP",
	}
	allLines := []string{vrrpLines[0], vrrpLines[1], lvsLines[0], lvsLines[1], vrrpLines[2], lvsLines[2], lvsLines[3], vrrpLines[3], vrrpLines[4]}
	for _, c := range []struct {
		name string
		r    *fifoReader
		want []string
	}{{"notify_fifo", rAll, allLines}, {"vrrp_notify_fifo", rVRRP, vrrpLines}, {"lvs_notify_fifo", rLVS, lvsLines}} {
		if got := c.r.get(); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	for _, p := range []string{all, vrrp, lvsPath} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s was not removed at Close: %v", p, err)
		}
	}
	if s := n.Stats(); s.FIFOLines != 18 || s.FIFODropped != 0 {
		t.Errorf("stats = %+v, want 18 lines written and none dropped", s)
	}
}

// TestFIFOWithoutReader: with nobody reading, notifications neither block
// the daemon nor Close beyond its deadline.
func TestFIFOWithoutReader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	n, _ := newNotifier(t, Config{VRRPNotifyFIFO: FIFOConfig{Path: p}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			n.VRRP(VRRPEvent{Name: "VI_1", State: StateBackup, Priority: i % 255})
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("sending to a FIFO without reader blocked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	closed := make(chan struct{})
	go func() { _ = n.Close(ctx); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a FIFO without reader")
	}
	s := n.Stats()
	if s.FIFODropped == 0 || s.FIFOLines+s.FIFODropped != 10000 {
		t.Errorf("stats = %+v: want drops, and written + dropped = 10000", s)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("FIFO not removed: %v", err)
	}
}

func TestFIFOExisting(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{NotifyFIFO: FIFOConfig{Path: file}}); err == nil || !strings.Contains(err.Error(), "exists and is not a FIFO") {
		t.Errorf("New with a regular file as FIFO: %v", err)
	}
	if _, err := New(Config{NotifyFIFO: FIFOConfig{Path: file}, LVSNotifyFIFO: FIFOConfig{Path: file}}); err == nil || !strings.Contains(err.Error(), "must all be different") {
		t.Errorf("New with the same FIFO twice: %v", err)
	}
	fifoPath := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifoPath, 0o600); err != nil {
		t.Fatal(err)
	}
	n, _ := newNotifier(t, Config{NotifyFIFO: FIFOConfig{Path: fifoPath}})
	r := readFIFO(t, fifoPath)
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateFault, Priority: 100})
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.done
	if got := r.get(); len(got) != 1 || got[0] != `INSTANCE "VI_1" FAULT 100` {
		t.Errorf("got %q", got)
	}
	if _, err := os.Lstat(fifoPath); err != nil {
		t.Errorf("a FIFO vipd did not create was removed: %v", err)
	}
}

// TestFIFOWithKeepalivedSampleReader runs the reader script keepalived
// ships (doc/samples/sample_notify_fifo.sh) as vrrp_notify_fifo_script and
// lvs_notify_fifo_script and checks that it understood every line.
func TestFIFOWithKeepalivedSampleReader(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "bash", "flock", "keepalived")
	const sample = "/usr/share/doc/keepalived/samples/sample_notify_fifo.sh.gz"
	gz, err := os.Open(sample)
	if err != nil {
		lab.Skip(t, err.Error())
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dir := scriptDir(t)
	script := writeScript(t, dir, "sample_notify_fifo.sh", string(body))

	// The sample logs to /tmp/NAME.log and locks /run/NAME.pid: unique names.
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "vipd-test-" + hex.EncodeToString(b[:])
	vrrpName, lvsName := name+"-vrrp", name+"-lvs"
	for _, f := range []string{vrrpName, lvsName} {
		t.Cleanup(func() {
			os.Remove("/tmp/" + f + ".log")
			os.Remove("/run/" + f + ".pid")
		})
	}
	n, _ := newNotifier(t, Config{
		VRRPNotifyFIFO: FIFOConfig{Path: filepath.Join(dir, vrrpName), Script: &Script{Args: []string{script}}},
		LVSNotifyFIFO:  FIFOConfig{Path: filepath.Join(dir, lvsName), Script: &Script{Args: []string{script}}},
	})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100})
	n.VRRP(VRRPEvent{Group: true, Name: "G1", State: StateMaster})
	n.RealServer(RealServerEvent{VS: web(), RS: netip.MustParseAddrPort("198.18.0.21:80"), Up: true})
	n.Quorum(QuorumEvent{VS: web(), Up: true})
	wantVRRP := []string{"INSTANCE VI_1 MASTER 100", "GROUP G1 MASTER 0"}
	wantLVS := []string{"RS [198.18.0.21]:tcp:80 [198.18.0.100]:tcp:80 UP", "VS [198.18.0.100]:tcp:80 UP"}
	check := func(log string, want []string) {
		lab.Eventually(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(log)
			for _, w := range want {
				if !strings.Contains(string(b), w) {
					return false
				}
			}
			return true
		}, "the sample reader's log %s lacks %q", log, want)
	}
	check("/tmp/"+vrrpName+".log", wantVRRP)
	check("/tmp/"+lvsName+".log", wantLVS)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The script stopped (it logs STOPPING on its way out).
	check("/tmp/"+vrrpName+".log", []string{"STOPPING"})
	b2, _ := os.ReadFile("/tmp/" + vrrpName + ".log")
	if strings.Contains(string(b2), "unknown") {
		t.Errorf("the sample reader did not understand a line:\n%s", b2)
	}
}

// TestFIFOAcrossReload: a reload starts a new Notifier on the same FIFO
// before closing the old one; the FIFO must survive the old one's Close,
// keep its reader, and go with the last Notifier.
func TestFIFOAcrossReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	old, _ := newNotifier(t, Config{VRRPNotifyFIFO: FIFOConfig{Path: p}})
	r := readFIFO(t, p)
	old.VRRP(VRRPEvent{Name: "VI_1", State: StateBackup, Priority: 100})
	cur, _ := newNotifier(t, Config{VRRPNotifyFIFO: FIFOConfig{Path: p}, RouterID: "changed"})
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); err != nil {
		t.Fatalf("the old Notifier's Close removed the FIFO the new one uses: %v", err)
	}
	cur.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100})
	if err := cur.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.done
	if got := r.get(); strings.Join(got, "\n") != `INSTANCE "VI_1" BACKUP 100`+"\n"+`INSTANCE "VI_1" MASTER 100` {
		t.Errorf("reader got %q", got)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Errorf("FIFO not removed after the last Close: %v", err)
	}
}
