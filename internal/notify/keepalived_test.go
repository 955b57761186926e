package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestSameAsKeepalived gives the same notify scripts to keepalived 2.2.7
// (the Debian package, running VRRP in a network namespace) and to vipd,
// with enable_script_security: the same scripts must run, the same must
// be refused, and the generic notify script must get the same arguments.
func TestSameAsKeepalived(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "keepalived")
	dir := scriptDir(t)
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	if err := os.Chmod(outDir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// Each script appends its own name and its arguments to one file,
	// emptied between the keepalived run and the vipd run.
	body := "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> " + outDir + "/out\n"
	mk := func(rel string, mode os.FileMode, uid, gid int) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	scripts := []string{
		mk("good.sh", 0o755, 0, 0),
		mk("world.sh", 0o777, 0, 0),
		mk("user.sh", 0o755, 1000, 0),
		mk("noexec.sh", 0o644, 0, 0),
		mk("grp/g.sh", 0o755, 0, 0),
		mk("rootgrp.sh", 0o775, 0, 0),
	}
	grp := filepath.Join(dir, "grp")
	if err := os.Chown(grp, 0, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(grp, 0o775); err != nil {
		t.Fatal(err)
	}
	notifyCmd := scripts[0] + ` 'a b' c\x41 "d e"`

	// keepalived: one instance per script, all becoming master alone on
	// their link; one more with the generic notify script.
	var conf strings.Builder
	fmt.Fprintf(&conf, "global_defs {\n  router_id T1\n  enable_script_security\n  script_user root\n}\n")
	for i, s := range scripts {
		fmt.Fprintf(&conf, "vrrp_instance VI_%d {\n  state MASTER\n  interface eth0\n  virtual_router_id %d\n  priority 100\n  advert_int 1\n  notify_master %s\n  virtual_ipaddress {\n    198.18.0.%d/32\n  }\n}\n",
			i+1, 51+i, s, 100+i)
	}
	fmt.Fprintf(&conf, "vrrp_instance VI_N {\n  state MASTER\n  interface eth0\n  virtual_router_id 70\n  priority 100\n  advert_int 1\n  notify \"%s\"\n  virtual_ipaddress {\n    198.18.0.120/32\n  }\n}\n",
		strings.ReplaceAll(strings.ReplaceAll(notifyCmd, `\`, `\\`), `"`, `\"`))
	confPath := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l := lab.New(t)
	h := l.Host("ka")
	run := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	p := h.Start("keepalived", "-n", "-l", "-D", "-P", "-f", confPath,
		"-p", filepath.Join(run, "k.pid"), "-r", filepath.Join(run, "v.pid"), "-c", filepath.Join(run, "c.pid"))
	out := filepath.Join(outDir, "out")
	// good.sh and rootgrp.sh as notify_master, the generic notify for
	// BACKUP (the initial state) and MASTER.
	lab.Eventually(t, 20*time.Second, func() bool { return len(readLines(out)) >= 4 }, "keepalived ran %q; log:\n%s", readLines(out), p.Output())
	_ = p.Signal(syscall.SIGTERM) // the generic notify gets STOP
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		p.Kill()
	}
	lab.Eventually(t, 5*time.Second, func() bool { return len(readLines(out)) >= 5 }, "keepalived's STOP notification missing: %q", readLines(out))
	keepalived := readLines(out)
	kaLog := p.Output()
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}

	// vipd, same scripts, same global settings.
	// The same life as keepalived's instances: BACKUP at start, MASTER,
	// STOP at shutdown.
	n, _ := newNotifier(t, Config{RouterID: "T1", ScriptSecurity: true, ScriptUser: "root"})
	ns, err := ParseScript(notifyCmd, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []State{StateBackup, StateMaster, StateStop} {
		for i, s := range scripts {
			n.VRRP(VRRPEvent{Name: fmt.Sprintf("VI_%d", i+1), State: st, Priority: 100,
				Scripts: VRRPScripts{Master: &Script{Args: []string{s}}}})
		}
		n.VRRP(VRRPEvent{Name: "VI_N", State: st, Priority: 100, Scripts: VRRPScripts{Notify: ns}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	vipd := readLines(out)

	sort.Strings(keepalived)
	sort.Strings(vipd)
	if strings.Join(keepalived, "\n") != strings.Join(vipd, "\n") {
		t.Errorf("keepalived ran:\n%s\nvipd ran:\n%s\nkeepalived's log:\n%s", strings.Join(keepalived, "\n"), strings.Join(vipd, "\n"), kaLog)
	}
	want := []string{"good.sh ", "good.sh a b cA d e INSTANCE VI_N BACKUP 100", "good.sh a b cA d e INSTANCE VI_N MASTER 100",
		"good.sh a b cA d e INSTANCE VI_N STOP 100", "rootgrp.sh "}
	if strings.Join(vipd, "\n") != strings.Join(want, "\n") {
		t.Errorf("vipd ran %q, want %q", vipd, want)
	}
}
