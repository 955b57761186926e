package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vipd/vipd/internal/api/apitest"
	"github.com/vipd/vipd/internal/lab"
)

// TestBinary runs the built vipctl: as root it reads the daemon, as an
// unprivileged user the 0600 socket keeps it out with a message that says
// why.
func TestBinary(t *testing.T) {
	lab.RequireRoot(t)
	bin := filepath.Join(t.TempDir(), "vipctl")
	b, err := os.ReadFile(lab.Binary(t, "./cmd/vipctl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := apitest.Serve(t, apitest.NewSource())
	// Let anyone reach the socket file itself; only its mode guards it.
	for d := filepath.Dir(sock); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(bin, "--socket", sock, "list", "-n").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "IP Virtual Server version 1.2.1 (size=0)\n") {
		t.Fatalf("as root: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "--socket", sock, "status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err = cmd.CombinedOutput()
	want := "vipctl: cannot reach vipd at " + sock + ": connect: permission denied (the control socket is root-only: run vipctl as root)\n"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != want {
		t.Errorf("as nobody: %v\n got %q\nwant %q", err, out, want)
	}
}
