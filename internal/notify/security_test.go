package notify

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

// tree builds files for the security checks: each entry is a path under
// the test's root directory, a mode, an owner and, for links, a target.
type node struct {
	path     string
	mode     os.FileMode // with os.ModeDir for directories
	uid, gid int
	link     string // symlink target (relative to root when not absolute)
}

func build(t *testing.T, nodes []node) string {
	t.Helper()
	root := t.TempDir()
	// Let unprivileged script users reach the tree.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		p := filepath.Join(root, n.path)
		var err error
		switch {
		case n.link != "":
			target := n.link
			if !filepath.IsAbs(target) {
				target = filepath.Join(root, target)
			}
			err = os.Symlink(target, p)
		case n.mode.IsDir():
			err = os.Mkdir(p, 0o700)
		default:
			err = os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n.link != "" {
			continue
		}
		if err := os.Chown(p, n.uid, n.gid); err != nil {
			t.Fatal(err)
		}
		// Chmod after chown: chown clears set-id bits.
		if err := os.Chmod(p, n.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCheckScript(t *testing.T) {
	lab.RequireRoot(t) // files owned by other users
	root := identity{uid: 0, gid: 0}
	nobody := identity{uid: 65534, gid: 65534}
	dir := os.ModeDir
	tests := []struct {
		name     string
		nodes    []node
		script   string // relative to the root
		id       identity
		security bool
		want     string // substring of the refusal; "" for accepted
		warn     string // substring of a warning
		exe      string // expected path to execute, relative to root; "" = script
	}{
		{name: "safe", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o755}},
			script: "d/s.sh", id: root, security: true},
		{name: "world-writable file", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o757}},
			script: "d/s.sh", id: root, security: true, want: "s.sh is writable by everyone"},
		{name: "world-writable file without script security runs with a warning",
			nodes:  []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o757}},
			script: "d/s.sh", id: root, security: false, warn: "running it anyway because enable_script_security is not set"},
		{name: "group-writable file, non-root group", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o775, gid: 1000}},
			script: "d/s.sh", id: root, security: true, want: "file " + "ROOT/d/s.sh is writable by group 1000"},
		{name: "group-writable file, root group", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o775}},
			script: "d/s.sh", id: root, security: true},
		{name: "file owned by a user", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o755, uid: 1000}},
			script: "d/s.sh", id: root, security: true, want: "file ROOT/d/s.sh is owned by uid 1000, not root"},
		{name: "directory owned by a user", nodes: []node{{path: "d", mode: dir | 0o755, uid: 1000}, {path: "d/s.sh", mode: 0o755}},
			script: "d/s.sh", id: root, security: true, want: "directory ROOT/d is owned by uid 1000"},
		{name: "group-writable directory", nodes: []node{{path: "d", mode: dir | 0o775, gid: 1000}, {path: "d/s.sh", mode: 0o755}},
			script: "d/s.sh", id: root, security: true, want: "directory ROOT/d is writable by group 1000"},
		{name: "world-writable directory", nodes: []node{{path: "d", mode: dir | 0o777}, {path: "d/s.sh", mode: 0o755}},
			script: "d/s.sh", id: root, security: true, want: "directory ROOT/d is writable by everyone"},
		{name: "sticky world-writable directory like /tmp", nodes: []node{{path: "d", mode: dir | os.ModeSticky | 0o777}, {path: "d/s.sh", mode: 0o755}},
			script: "d/s.sh", id: root, security: true},
		{name: "link to a file in an unsafe directory",
			nodes: []node{{path: "d", mode: dir | 0o755}, {path: "bad", mode: dir | 0o777}, {path: "bad/x.sh", mode: 0o755},
				{path: "d/s.sh", link: "bad/x.sh"}},
			script: "d/s.sh", id: root, security: true, want: "directory ROOT/bad is writable by everyone"},
		{name: "link under another name keeps the name",
			nodes:  []node{{path: "d", mode: dir | 0o755}, {path: "d/real.sh", mode: 0o755}, {path: "d/alias", link: "d/real.sh"}},
			script: "d/alias", id: root, security: true, exe: "d/alias"},
		{name: "linked directory is resolved",
			nodes:  []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o755}, {path: "ld", link: "d"}},
			script: "ld/s.sh", id: root, security: true, exe: "d/s.sh"},
		{name: "missing", nodes: []node{{path: "d", mode: dir | 0o755}},
			script: "d/s.sh", id: root, security: true, want: "cannot be accessed: no such file or directory"},
		{name: "not executable", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o644}},
			script: "d/s.sh", id: root, security: true, want: "is not executable by uid:gid 0:0"},
		{name: "not executable by its user", nodes: []node{{path: "d", mode: dir | 0o755}, {path: "d/s.sh", mode: 0o750}},
			script: "d/s.sh", id: nobody, security: true, want: "is not executable by uid:gid 65534:65534"},
		{name: "a directory", nodes: []node{{path: "d", mode: dir | 0o755}},
			script: "d", id: root, security: true, want: "is not a regular file"},
		{name: "unsafe script run by an unprivileged user needs no protection",
			nodes:  []node{{path: "d", mode: dir | 0o777}, {path: "d/s.sh", mode: 0o757}},
			script: "d/s.sh", id: nobody, security: true},
		{name: "set-uid root script is protected whoever runs it",
			nodes:  []node{{path: "d", mode: dir | 0o777}, {path: "d/s.sh", mode: os.ModeSetuid | 0o755}},
			script: "d/s.sh", id: nobody, security: true, want: "would run as uid 65534 with root privileges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build(t, tt.nodes)
			var warnings []string
			exe, err := checkScript(filepath.Join(r, tt.script), tt.id, tt.security, func(s string) { warnings = append(warnings, s) })
			want := strings.ReplaceAll(tt.want, "ROOT", r)
			if want != "" {
				if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want refusal containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			wantExe := filepath.Join(r, tt.script)
			if tt.exe != "" {
				wantExe = filepath.Join(r, tt.exe)
			}
			if real, _ := filepath.EvalSymlinks(r); tt.exe == "" && real != r {
				wantExe = filepath.Join(real, tt.script)
			}
			if exe != wantExe {
				t.Errorf("exe = %s, want %s", exe, wantExe)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tt.warn) {
				t.Errorf("warnings %q lack %q", warnings, tt.warn)
			}
		})
	}
}

func TestCheckScriptPathSearch(t *testing.T) {
	lab.RequireRoot(t)
	r := build(t, []node{{path: "bin", mode: os.ModeDir | 0o755}, {path: "bin/myscript", mode: 0o755}, {path: "bin/noexec", mode: 0o644}})
	t.Setenv("PATH", "/nonexistent:"+filepath.Join(r, "bin"))
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }
	exe, err := checkScript("myscript", identity{}, true, warn)
	if err != nil {
		t.Fatal(err)
	}
	if exe != filepath.Join(r, "bin/myscript") {
		t.Errorf("exe = %s", exe)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "please give the full path") {
		t.Errorf("warnings = %q", warnings)
	}
	if _, err := checkScript("nosuchscript", identity{}, true, warn); err == nil || !strings.Contains(err.Error(), "nosuchscript not found in PATH") {
		t.Errorf("missing script: err = %v", err)
	}
	if _, err := checkScript("noexec", identity{}, true, warn); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("non-executable script: err = %v", err)
	}
}

func TestResolveIdentity(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		lab.Skip(t, "no user nobody")
	}
	// Without script_user, keepalived_script runs the script where that
	// user exists (keepalived's package may create it); elsewhere the
	// daemon's own user does, and script security refuses to guess.
	noUser, noUserSecure, noUserErr := itoa(os.Geteuid()), "", "set script_user"
	if u, err := user.Lookup(DefaultScriptUser); err == nil {
		noUser, noUserSecure, noUserErr = u.Uid, u.Uid, ""
	}
	tests := []struct {
		name    string
		script  Script
		cfg     Config
		wantUID string
		wantErr string
	}{
		{name: "script's own user", script: Script{User: "nobody"}, wantUID: nobody.Uid},
		{name: "numeric user", script: Script{User: "4242"}, wantUID: "4242"},
		{name: "global script_user", cfg: Config{ScriptUser: "nobody"}, wantUID: nobody.Uid},
		{name: "own user wins over script_user", script: Script{User: "root"}, cfg: Config{ScriptUser: "nobody"}, wantUID: "0"},
		{name: "no user: the default user's or the daemon's", wantUID: noUser},
		{name: "no user with script security", cfg: Config{ScriptSecurity: true}, wantUID: noUserSecure, wantErr: noUserErr},
		{name: "unknown user", script: Script{User: "no-such-user-x"}, wantErr: `script user "no-such-user-x" does not exist`},
		{name: "unknown group", script: Script{User: "nobody", Group: "no-such-group-x"}, wantErr: `script group "no-such-group-x" does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := resolveIdentity(&tt.script, &tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if itoa(int(id.uid)) != tt.wantUID {
				t.Errorf("uid = %d, want %s", id.uid, tt.wantUID)
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
