package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vipd/vipd/internal/lab"
	"github.com/vipd/vipd/internal/manpage"
)

// TestPagesFromBinaries renders the pages from the real binaries' help:
// deterministic, every option and command of --help in the manual, and
// groff finds nothing to warn about.
func TestPagesFromBinaries(t *testing.T) {
	vipd := lab.Binary(t, "./cmd/vipd")
	vipctl := lab.Binary(t, "./cmd/vipctl")
	m := manpage.Meta{Version: "1.2.3", Date: "2026-01-31"}
	d1, c1, err := Pages(vipd, vipctl, m)
	if err != nil {
		t.Fatal(err)
	}
	d2, c2, err := Pages(vipd, vipctl, m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1, d2) || !bytes.Equal(c1, c2) {
		t.Fatal("two renderings differ")
	}

	// Every long option of vipd --help is an item of vipd(8).
	h, err := help(vipd, "--help")
	if err != nil {
		t.Fatal(err)
	}
	longs := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([\w-]+)`).FindAllStringSubmatch(h, -1)
	if len(longs) < 10 {
		t.Fatalf("found only %d options in vipd --help", len(longs))
	}
	for _, l := range longs {
		if !strings.Contains(string(d1), `\fB\-\-`+strings.ReplaceAll(l[1], "-", `\-`)+`\fR`) {
			t.Errorf("vipd.8 lacks --%s", l[1])
		}
	}
	// Every command of vipctl --help has its subsection, and every flag
	// of its help is in vipctl(8).
	h, err = help(vipctl, "--help")
	if err != nil {
		t.Fatal(err)
	}
	cmds := regexp.MustCompile(`(?m)^  ([a-z]+)  +\S`).FindAllStringSubmatch(h, -1)
	if len(cmds) < 8 {
		t.Fatalf("found only %d commands in vipctl --help", len(cmds))
	}
	for _, c := range cmds {
		if !strings.Contains(string(c1), ".SS \""+c[1]+"\"") {
			t.Errorf("vipctl.8 has no subsection for %s", c[1])
		}
		if c[1] == "help" {
			continue
		}
		ch, err := help(vipctl, "help", c[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range regexp.MustCompile(`(?m)^  (?:-\w, )?(--?[\w-]+)`).FindAllStringSubmatch(ch, -1) {
			if !strings.Contains(string(c1), `\fB`+strings.ReplaceAll(f[1], "-", `\-`)+`\fR`) {
				t.Errorf("vipctl.8 lacks flag %s of %s", f[1], c[1])
			}
		}
	}

	lab.RequireCommand(t, "groff")
	dir := t.TempDir()
	if err := run(vipd, vipctl, dir, m); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"vipd.8", "vipctl.8"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, map[string][]byte{"vipd.8": d1, "vipctl.8": c1}[page]) {
			t.Errorf("%s written differs from the rendering", page)
		}
		cmd := exec.Command("groff", "-man", "-ww", "-Tutf8", "-P-c", "-P-b", "-P-o", "-P-u", filepath.Join(dir, page))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("groff %s: %v\n%s", page, err, stderr.String())
		}
		if !bytes.Contains(out, []byte("SEE ALSO")) || !bytes.Contains(out, []byte("vipd 1.2.3")) {
			t.Errorf("%s renders without its sections:\n%s", page, out)
		}
	}
}
