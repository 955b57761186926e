package notify

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/lvs"
)

// logBuffer collects the notifier's log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("notifier log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// scriptDir makes a directory for scripts that is safe for root to run
// from (the test's temporary directories are root's and 0700).
func scriptDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder is a script that appends its name and arguments to out, after
// waiting (at most 20 s) for the file gate to exist when gate is set.
func recorder(t *testing.T, dir, name, out, gate string) *Script {
	body := "#!/bin/sh\n"
	if gate != "" {
		body += "i=0; while [ ! -e " + gate + " ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done\n"
	}
	body += "echo \"" + name + " $*\" >> " + out + "\n"
	return &Script{Args: []string{writeScript(t, dir, name, body)}}
}

func readLines(p string) []string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func newNotifier(t *testing.T, cfg Config) (*Notifier, *logBuffer) {
	t.Helper()
	var buf *logBuffer
	if cfg.Logger == nil {
		cfg.Logger, buf = testLogger(t)
	}
	if cfg.ScriptUser == "" {
		cfg.ScriptUser = "root"
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n, buf
}

func waitLines(t *testing.T, p string, n int) []string {
	t.Helper()
	lab.Eventually(t, 10*time.Second, func() bool { return len(readLines(p)) >= n }, "%s has %d lines, want %d", p, len(readLines(p)), n)
	return readLines(p)
}

// TestVRRPScriptsRunInOrder: keepalived starts notify scripts without
// waiting for each other, so a quick backup script can finish before the
// slow master script it follows. vipd runs them in event order, and the
// daemon does not wait for them.
func TestVRRPScriptsRunInOrder(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	gate := filepath.Join(dir, "gate")
	n, _ := newNotifier(t, Config{})
	scripts := VRRPScripts{
		Master: recorder(t, dir, "master", out, gate),
		Backup: recorder(t, dir, "backup", out, ""),
		Notify: &Script{Args: append(recorder(t, dir, "notify", out, "").Args, "a b", "c")},
	}
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Priority: 100, Scripts: scripts})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateBackup, Priority: 90, Scripts: scripts})
	n.VRRP(VRRPEvent{Name: "VI_1", State: EventMasterPriority, Priority: 80, Scripts: scripts})         // FIFO only
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateBackup, Priority: 90, Scripts: scripts, FIFOOnly: true}) // a reload's repeat
	// VRRP returned although the master script waits for the gate.
	if l := readLines(out); len(l) != 0 {
		t.Fatalf("scripts ran before the gate opened: %q", l)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := waitLines(t, out, 4)
	want := []string{"master ", "notify a b c INSTANCE VI_1 MASTER 100", "backup ", "notify a b c INSTANCE VI_1 BACKUP 90"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("scripts ran as\n%q\nwant\n%q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s.ScriptsRun != 4 || s.ScriptsFailed != 0 || s.ScriptsRefused != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// TestSourcesDoNotWaitForEachOther: a script blocked on one instance
// does not hold up another instance's scripts.
func TestSourcesDoNotWaitForEachOther(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	gate := filepath.Join(dir, "gate")
	n, _ := newNotifier(t, Config{})
	slow, group, rs := recorder(t, dir, "slow", out, gate), recorder(t, dir, "group", out, ""), recorder(t, dir, "rs", out, "")
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Scripts: VRRPScripts{Master: slow}})
	n.VRRP(VRRPEvent{Group: true, Name: "G1", State: StateFault, Scripts: VRRPScripts{Notify: group}})
	n.RealServer(RealServerEvent{VS: VirtualServer{Key: lvs.ServiceKey{Proto: lvs.TCP, Addr: netip.MustParseAddrPort("198.18.0.100:80")}},
		RS: netip.MustParseAddrPort("198.18.0.21:80"), Up: true, Script: rs})
	got := waitLines(t, out, 2)
	if strings.Contains(strings.Join(got, "\n"), "slow") {
		t.Fatalf("the gated script ran: %q", got)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got = waitLines(t, out, 3)
	if got[2] != "slow " {
		t.Errorf("lines %q: want the slow script last", got)
	}
	for _, w := range []string{"group GROUP G1 FAULT 0", "rs "} {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("lines %q lack %q", got, w)
		}
	}
}

func TestScriptTimeoutKillsProcessGroup(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	pidFile := filepath.Join(dir, "pid")
	out := filepath.Join(dir, "out")
	hang := writeScript(t, dir, "hang.sh", "#!/bin/sh\nsleep 60 &\necho $! > "+pidFile+"\nwait\n")
	after := recorder(t, dir, "after", out, "")
	n, logs := newNotifier(t, Config{ScriptTimeout: 300 * time.Millisecond})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Scripts: VRRPScripts{Master: &Script{Args: []string{hang}}}})
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateBackup, Scripts: VRRPScripts{Backup: after}})
	waitLines(t, out, 1) // the next script of the instance ran
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	lab.Eventually(t, 5*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }, "the script's child %d survived the timeout", pid)
	if s := n.Stats(); s.ScriptsFailed != 1 {
		t.Errorf("stats = %+v, want one failed script", s)
	}
	if !strings.Contains(logs.String(), "script timed out") {
		t.Errorf("no timeout in the log:\n%s", logs)
	}
}

func TestScriptRunsAsScriptUser(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	outDir := t.TempDir()
	if err := os.Chmod(outDir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "id")
	script := writeScript(t, dir, "id.sh", "#!/bin/sh\nid -u > "+out+"\nid -G >> "+out+"\n")
	n, _ := newNotifier(t, Config{ScriptUser: "nobody", ScriptSecurity: true})
	// The test's directory is root's alone: nobody cannot reach the script.
	parent := filepath.Dir(dir)
	if err := n.CheckScript(&Script{Args: []string{script}}); err == nil || !strings.Contains(err.Error(), "directory "+parent+" is not searchable by uid:gid 65534:65534") {
		t.Errorf("CheckScript = %v, want a refusal naming %s", err, parent)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	n.Quorum(QuorumEvent{VS: VirtualServer{Key: lvs.ServiceKey{FWMark: 7}}, Up: true, Script: &Script{Args: []string{script}}})
	got := waitLines(t, out, 2)
	if got[0] != "65534" || got[1] != "65534" {
		t.Errorf("script ran as uid / groups %q, want 65534 / 65534", got)
	}
}

func TestInsecureScriptRefused(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	s := recorder(t, dir, "unsafe.sh", out, "")
	if err := os.Chmod(s.Args[0], 0o777); err != nil {
		t.Fatal(err)
	}
	n, logs := newNotifier(t, Config{ScriptSecurity: true})
	if err := n.CheckScript(s); err == nil {
		t.Error("CheckScript accepted a world-writable root script")
	}
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Scripts: VRRPScripts{Master: s}})
	lab.Eventually(t, 5*time.Second, func() bool { return n.Stats().ScriptsRefused == 1 }, "script not refused: %+v", n.Stats())
	want := "refusing to run notify_master script: script refused: " + s.Args[0] + " would run as root but file " +
		s.Args[0] + " is writable by everyone (mode -rwxrwxrwx)"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the refused script ran")
	}
}

// TestScriptWithoutShebang: a script the kernel cannot execute runs
// through /bin/sh, as keepalived runs it through system(3).
func TestScriptWithoutShebang(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	s := writeScript(t, dir, "plain", "echo \"plain $1 $2\" > "+out+"\n")
	n, _ := newNotifier(t, Config{})
	n.RealServer(RealServerEvent{RS: netip.MustParseAddrPort("198.18.0.21:80"), Script: &Script{Args: []string{s, "it's", "x y"}}})
	if got := waitLines(t, out, 1); got[0] != "plain it's x y" {
		t.Errorf("got %q", got)
	}
}

// TestCloseWaitsThenKills: Close runs what is queued while its context
// lasts and kills the rest.
func TestCloseWaitsThenKills(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	n, _ := newNotifier(t, Config{ScriptTimeout: -1})
	quick := recorder(t, dir, "stop", out, "")
	hang := writeScript(t, dir, "hang.sh", "#!/bin/sh\nexec sleep 60\n")
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateStop, Scripts: VRRPScripts{Stop: quick}})
	n.VRRP(VRRPEvent{Name: "VI_2", State: StateStop, Scripts: VRRPScripts{Stop: &Script{Args: []string{hang}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := n.Close(ctx); err == nil {
		t.Error("Close reported success with a script still running")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got := readLines(out); len(got) != 1 || got[0] != "stop " {
		t.Errorf("the quick stop script did not run before Close returned: %q", got)
	}
	// After Close, notifications are dropped, not run.
	before := n.Stats()
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateStop, Scripts: VRRPScripts{Stop: quick}})
	lab.Eventually(t, 5*time.Second, func() bool { return n.Stats().ScriptsDropped == before.ScriptsDropped+1 },
		"the script after Close was not counted as dropped")
	if s := n.Stats(); s.ScriptsRun != before.ScriptsRun {
		t.Errorf("scripts run after Close: %d, before %d", s.ScriptsRun, before.ScriptsRun)
	}
	if got := readLines(out); len(got) != 1 {
		t.Errorf("a script ran after Close: %q", got)
	}
}

func TestQueueLimit(t *testing.T) {
	lab.RequireRoot(t)
	dir := scriptDir(t)
	out := filepath.Join(dir, "out")
	gate := filepath.Join(dir, "gate")
	n, _ := newNotifier(t, Config{QueueLimit: 3})
	started := filepath.Join(dir, "started")
	m := writeScript(t, dir, "m", "#!/bin/sh\ntouch "+started+"\n"+
		"i=0; while [ ! -e "+gate+" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done\necho m >> "+out+"\n")
	s := VRRPScripts{Master: &Script{Args: []string{m}}}
	n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Scripts: s})
	lab.Eventually(t, 10*time.Second, func() bool { _, err := os.Stat(started); return err == nil }, "first script did not start")
	for i := 0; i < 9; i++ {
		n.VRRP(VRRPEvent{Name: "VI_1", State: StateMaster, Scripts: s})
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// One running (taken off the queue) and three queued; six dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := readLines(out)
	st := n.Stats()
	if len(got) != 4 || st.ScriptsDropped != 6 {
		t.Errorf("ran %d scripts, dropped %d; want 4 and 6", len(got), st.ScriptsDropped)
	}
}
