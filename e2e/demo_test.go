package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// TestDemo runs the README's first command as a user would, without a
// terminal: every narrated check must pass and it must clean up.
func TestDemo(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "nginx", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("..", "scripts", "demo"), "--no-keep")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo: %v\n%s", err, out)
	}
	for _, want := range []string{"rs1, rs2, rs1", "only rs2 answers", "the client reached the VIP again", "d1 MASTER, d2 BACKUP", "All checks passed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if ns, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(ns), "vipd-demo-") {
		t.Errorf("demo left namespaces behind:\n%s", ns)
	}
}
