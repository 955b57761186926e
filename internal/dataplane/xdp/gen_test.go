package xdp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
)

// TestGeneratedUpToDate runs gen.go's go:generate command into a
// temporary directory and compares the result with the committed object
// and bindings: editing bpf/xdplb.c without running `go generate` fails
// here.
func TestGeneratedUpToDate(t *testing.T) {
	lab.RequireCommand(t, "clang", "llvm-strip")
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, ln := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(ln, "//go:generate go run "); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) == 0 {
		t.Fatal("gen.go has no go:generate line")
	}
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"run", args[0], "-output-dir", out}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=xdp", "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	for _, f := range []string{"xdplb_bpfel.o", "xdplb_bpfel.go"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./internal/dataplane/xdp` and commit the result", f)
		}
	}
}
