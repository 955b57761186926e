package config

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestKeywordTableMatchesKeepalived compares the keyword table with the
// keywords keepalived 2.2.7 accepts in each block (testdata: found by
// probing the keepalived binary). Every keyword keepalived knows must be
// in the table (supported, ignored or refused), and the table must not
// accept keywords keepalived rejects, except vipd's own extensions.
func TestKeywordTableMatchesKeepalived(t *testing.T) {
	f, err := os.Open("testdata/keepalived-2.2.7-keywords.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sec, kw, _ := strings.Cut(line, " ")
		if want[sec] == nil {
			want[sec] = map[string]bool{}
		}
		want[sec][kw] = true
	}
	probed := 0
	for _, s := range Sections() {
		name := s.Name
		if name == "top level" {
			name = "top"
		}
		w, ok := want[name]
		if !ok {
			continue // not probed (the obsolete SMTP_CHECK host block, auth_hmac of keepalived 2.4)
		}
		probed++
		have := map[string]bool{}
		for _, k := range s.Keywords {
			if k.VipdOnly || k.Since != "" {
				continue
			}
			have[k.Name] = true
			if !w[k.Name] {
				t.Errorf("%s: %s is in the table but keepalived 2.2.7 does not accept it", name, k.Name)
			}
		}
		var missing []string
		for k := range w {
			if !have[k] && !isInclude(k) {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("%s: keepalived 2.2.7 accepts %s but the table does not", name, k)
		}
	}
	if probed < len(want)-1 {
		t.Errorf("only %d of %d probed blocks found in the table", probed, len(want))
	}
}

// TestAliasesFollowTargets: a deprecated name is its target under another
// name; what vipd does with it (status, note, a missing value) is the
// target's, whichever order the table adds them in.
func TestAliasesFollowTargets(t *testing.T) {
	n := 0
	for _, s := range Sections() {
		for _, a := range s.Keywords {
			if a.Deprecated == "" {
				continue
			}
			tk := s.Lookup(a.Deprecated)
			if tk == nil {
				continue // the new name lives in another block
			}
			n++
			if a.Status != tk.Status || a.Note != tk.Note || a.NoValue != tk.NoValue {
				t.Errorf("%s: alias %s is %v %q (no value: %d), its target %s is %v %q (no value: %d)",
					s.Name, a.Name, a.Status, a.Note, a.NoValue, tk.Name, tk.Status, tk.Note, tk.NoValue)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alias found: the test checks nothing")
	}
}
