package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/golden/*.json, *.diag) and docs/compat.md")

// TestGolden parses each testdata/golden/*.conf (config id "node1", a
// host with eth0 and eth1) and compares the normalized model (Dump) and
// the diagnostics with the files next to it. Run with -update after an
// intended change and review the diff.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.conf")
	if len(files) < 12 {
		t.Fatalf("want at least a dozen golden configurations, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, diags := Parse(f, src, Options{ConfigID: "node1", Host: newFakeHost()})
			if diags.HasProblems() {
				t.Errorf("golden configurations must be valid:\n%s", diags)
			}
			base := strings.TrimSuffix(f, ".conf")
			check := func(ext string, got []byte) {
				path := base + ext
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the normalized result; run go test -run TestGolden -update and review the diff\n--- got:\n%s", path, got)
				}
			}
			check(".json", Dump(cfg))
			check(".diag", []byte(diags.String()))
		})
	}
}

// TestCompatDoc keeps docs/compat.md equal to what the keyword table
// generates (run with -update to regenerate it).
func TestCompatDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "compat.md")
	got := CompatMarkdown()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -run TestCompatDoc -args -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/compat.md is stale: run go test ./internal/config -run TestCompatDoc -args -update")
	}
	for _, s := range Sections() {
		for _, k := range s.Keywords {
			if k.Status != Supported && k.Note == "" {
				t.Errorf("%s %s is %s without a note saying why", s.Name, k.Name, k.Status)
			}
		}
	}
}
