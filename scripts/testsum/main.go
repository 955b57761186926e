// Command testsum turns `go test -json` into readable output and counts
// tests, so scripts/test can end with how many tests ran and skipped.
//
//	go test -json ./... 2>&1 | testsum -counts unit.json
//	testsum -sum tests=unit.json race=race.json -vlog VM=vm.log -vlog-rc 0
//
// With -counts it reads test2json events on stdin and prints what go test
// prints without -v: a line per package, and the whole output of every
// failed test; it also prints each skipped test with its reason, because a
// skip is a claim nobody checked. Lines that are not JSON (go vet or build
// messages) are copied. It writes the counts to the -counts file and exits
// 1 when anything failed.
//
// With -sum it adds up counts files and the "--- PASS/FAIL/SKIP" lines of
// verbose (-v) logs (the VM tests' output), each given as [LABEL=]PATH,
// prints one line per input and,
// last and alone on its line, "N passed, N failed, N skipped". Every test
// counts, subtests included; a package that failed outside any test (build
// error, panic, timeout) counts as one failure.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Counts is what one run of go test did.
type Counts struct {
	Passed, Failed, Skipped int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

func (c *Counts) add(o Counts) {
	c.Passed += o.Passed
	c.Failed += o.Failed
	c.Skipped += o.Skipped
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

func main() {
	countsFile := flag.String("counts", "", "read go test -json on stdin, print it readably, write the counts to `file`")
	sum := flag.Bool("sum", false, "add up the counts files given as arguments and the -vlog files")
	var vlogs multiFlag
	flag.Var(&vlogs, "vlog", "a verbose go test log whose --- PASS/FAIL/SKIP lines count (repeatable)")
	vlogRC := flag.Int("vlog-rc", 0, "exit code of the run that wrote the -vlog files: non-zero with no failed test counts one failure")
	flag.Parse()
	switch {
	case *countsFile != "" && !*sum:
		c, err := stream(os.Stdin, os.Stdout)
		if err == nil {
			err = writeCounts(*countsFile, c)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		if c.Failed > 0 {
			os.Exit(1)
		}
	case *sum:
		total, err := sumAll(os.Stdout, flag.Args(), vlogs, *vlogRC)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
		fmt.Println(total)
	default:
		flag.Usage()
		os.Exit(2)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// stream prints the events of r readably to w and counts the tests.
func stream(r io.Reader, w io.Writer) (Counts, error) {
	var c Counts
	type key struct{ pkg, test string }
	out := map[key][]string{}          // buffered output per test
	pkgOut := map[string][]string{}    // all output per package, for failures outside tests
	pkgFailedTests := map[string]int{} // failed tests per package
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
			continue
		case "build-fail":
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			pkgOut[e.Package] = append(pkgOut[e.Package], e.Output)
			if e.Test != "" {
				out[k] = append(out[k], e.Output)
				continue
			}
			// Package lines: "ok  pkg 1.2s", "FAIL pkg", "? pkg [no test
			// files]"; the bare PASS/FAIL verdicts add nothing.
			if s := strings.TrimSpace(e.Output); s != "PASS" && s != "FAIL" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Fprint(w, e.Output)
			}
		case "pass":
			if e.Test != "" {
				c.Passed++
				delete(out, k)
			}
		case "skip":
			if e.Test != "" {
				c.Skipped++
				for _, l := range out[k] {
					switch {
					case strings.HasPrefix(l, "=== "):
					case strings.HasPrefix(strings.TrimSpace(l), "--- SKIP"):
						fmt.Fprintf(w, "%s %s", strings.TrimRight(l, "\n"), e.Package+"\n")
					default:
						fmt.Fprint(w, l)
					}
				}
				delete(out, k)
			}
		case "fail":
			if e.Test != "" {
				c.Failed++
				pkgFailedTests[e.Package]++
				for _, l := range out[k] {
					fmt.Fprint(w, l)
				}
				delete(out, k)
				continue
			}
			if pkgFailedTests[e.Package] == 0 {
				// Failed outside any test: show all it printed.
				c.Failed++
				fmt.Fprintf(w, "--- %s failed outside any test (build error, panic or timeout); its output:\n", e.Package)
				for _, l := range pkgOut[e.Package] {
					fmt.Fprint(w, l)
				}
			}
			delete(pkgOut, e.Package)
		}
		if e.Test == "" && (e.Action == "pass" || e.Action == "skip") {
			delete(pkgOut, e.Package)
		}
	}
	return c, sc.Err()
}

func writeCounts(path string, c Counts) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// verdict matches the result lines of go test -v, subtests indented.
var verdict = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): `)

// countVerbose counts the verdict lines of a verbose log.
func countVerbose(r io.Reader) (Counts, error) {
	var c Counts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		m := verdict.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "PASS":
			c.Passed++
		case m[1] == "FAIL":
			c.Failed++
		default:
			c.Skipped++
		}
	}
	return c, sc.Err()
}

// sumAll adds the counts files and verbose logs, printing each to w.
func sumAll(w io.Writer, countsFiles, vlogs []string, vlogRC int) (Counts, error) {
	var total Counts
	for _, arg := range countsFiles {
		label, f, ok := strings.Cut(arg, "=")
		if !ok {
			label, f = arg, arg
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return total, err
		}
		var c Counts
		if err := json.Unmarshal(b, &c); err != nil {
			return total, fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(w, "  %s: %s\n", label, c)
		total.add(c)
	}
	var vm Counts
	for _, arg := range vlogs {
		label, f, ok := strings.Cut(arg, "=")
		if !ok {
			label, f = arg, arg
		}
		fh, err := os.Open(f)
		if err != nil {
			return total, err
		}
		c, err := countVerbose(fh)
		fh.Close()
		if err != nil {
			return total, fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(w, "  %s: %s\n", label, c)
		vm.add(c)
	}
	if len(vlogs) > 0 && vlogRC != 0 && vm.Failed == 0 {
		fmt.Fprintf(w, "  the verbose run exited %d without a failed test: one failure\n", vlogRC)
		vm.Failed++
	}
	total.add(vm)
	if len(countsFiles)+len(vlogs) == 0 {
		return total, errors.New("nothing to add up")
	}
	return total, nil
}
