package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzOptions keep fuzzing inside memory and small: no file system, a low
// line limit, shallow nesting.
func fuzzOptions() Options {
	return Options{
		ConfigID:  "node1",
		Limits:    Limits{MaxLines: 20000, MaxIncludeDepth: 4, MaxLineLength: 1 << 16, MaxSubstDepth: 32},
		ReadFile:  func(string) ([]byte, error) { return nil, errors.New("no files while fuzzing") },
		Glob:      func(string) ([]string, error) { return nil, nil },
		Host:      newFakeHost(),
		Dataplane: DataplaneProxy,
	}
}

// addSeeds adds the repository's configurations and, when installed,
// keepalived's samples (read at run time, not copied into the corpus).
func addSeeds(f *testing.F) {
	var files []string
	for _, g := range []string{"testdata/seeds/*.conf", "testdata/golden/*.conf", keepalivedSamples + "/keepalived.conf.*"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, tc := range diagCases {
		f.Add([]byte(tc.conf))
	}
}

func FuzzLex(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, _ := Lex("fuzz.conf", data, fuzzOptions())
		if len(lines) > 20000 {
			t.Fatalf("%d lines: the limit was not enforced", len(lines))
		}
		for _, l := range lines {
			if l.Close && (l.Open || len(l.Words) > 0) {
				t.Fatalf("malformed line %+v", l)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, diags := Parse("fuzz.conf", data, fuzzOptions())
		if cfg == nil {
			t.Fatal("nil configuration")
		}
		for _, d := range diags {
			if d.Severity > Notice && d.Msg == "" {
				t.Fatalf("diagnostic without a message: %+v", d)
			}
		}
		_ = Dump(cfg)
		_ = diags.ExitCode()
	})
}
