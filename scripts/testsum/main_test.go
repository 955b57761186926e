package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamRealGoTest counts the events of a real `go test -json` run of
// a throwaway module: passes, a failure, skips, subtests and a package
// that does not build.
func TestStreamRealGoTest(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"a/a_test.go": `package a

import "testing"

func TestPass(t *testing.T) {}
func TestFail(t *testing.T) { t.Log("details of boom"); t.Fatal("boom") }
func TestSkip(t *testing.T) { t.Skip("no widget here") }
func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("skipped", func(t *testing.T) { t.Skip("sub skipped") })
}
`,
		"b/b_test.go": "package b\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { undefined() }\n",
		"d/d_test.go": "package d\n\nimport \"testing\"\n\nfunc TestD(t *testing.T) {}\n",
		"c/c_test.go": "package c\n\nimport \"testing\"\n\nfunc TestPanics(t *testing.T) { go func() { panic(\"outside\") }(); select {} }\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on", "GOTOOLCHAIN=local")
	raw, _ := cmd.CombinedOutput() // fails: that is the point
	var out bytes.Buffer
	c, err := stream(bytes.NewReader(raw), &out)
	if err != nil {
		t.Fatal(err)
	}
	// TestPass, TestSub, TestSub/ok and TestD pass; TestFail fails,
	// package b does not build, package c panics in a goroutine (test2json
	// reports no test verdict, only the package's failure); TestSkip and
	// TestSub/skipped skip.
	want := Counts{Passed: 4, Failed: 3, Skipped: 2}
	if c != want {
		t.Errorf("counts %v, want %v\ngo test -json:\n%s", c, want, raw)
	}
	for _, s := range []string{"details of boom", "boom", "--- FAIL: TestFail", "no widget here", "--- SKIP: TestSkip", "undefined: undefined", "panic: outside", "ok  \texample.com/m/d"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "=== RUN   TestPass") {
		t.Errorf("output shows a passed test's lines:\n%s", out.String())
	}
}

func TestSum(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.json")
	if err := writeCounts(a, Counts{Passed: 10, Failed: 1, Skipped: 2}); err != nil {
		t.Fatal(err)
	}
	vlog := filepath.Join(dir, "vm.log")
	log := "=== RUN   TestNAT\n    --- PASS: TestNAT/rr (0.1s)\n    --- SKIP: TestNAT/twos (0.0s)\n--- PASS: TestNAT (1s)\n--- FAIL: TestDR (1s)\nok\n"
	if err := os.WriteFile(vlog, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c, err := sumAll(&out, []string{"unit=" + a}, []string{vlog}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Passed: 12, Failed: 2, Skipped: 3}); c != want {
		t.Errorf("sum %v, want %v", c, want)
	}
	if !strings.Contains(out.String(), "  unit: 10 passed, 1 failed, 2 skipped\n") {
		t.Errorf("no labelled line:\n%s", out.String())
	}
	if got := c.String(); got != "12 passed, 2 failed, 3 skipped" {
		t.Errorf("line %q", got)
	}
	// A verbose run that failed without a failed test (VM did not boot)
	// counts as one failure.
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, []byte("run-in-vm: no kernel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _ := sumAll(&out, nil, []string{empty}, 126); c != (Counts{Failed: 1}) {
		t.Errorf("failed VM run without tests: %v", c)
	}
}
