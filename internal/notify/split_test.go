package notify

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{in: "/etc/keepalived/master.sh", want: []string{"/etc/keepalived/master.sh"}},
		{in: "  /bin/echo   a\tb \n", want: []string{"/bin/echo", "a", "b"}},
		// keepalived.conf(5): ´abcd" efg h jkl "mnop´ is one string.
		{in: `abcd" efg h jkl "mnop`, want: []string{"abcd efg h jkl mnop"}},
		{in: `abcd "efg h jkl" mnop`, want: []string{"abcd", "efg h jkl", "mnop"}},
		// What keepalived 2.2.7 passed to a script for
		// notify "/tmp/kx/n.sh 'a b' c\x41 \"d e\"" (observed).
		{in: `/tmp/kx/n.sh 'a b' c\x41 "d e"`, want: []string{"/tmp/kx/n.sh", "a b", "cA", "d e"}},
		{in: `x 'it"s' "it's"`, want: []string{"x", `it"s`, "it's"}},
		{in: `x "" ''`, want: []string{"x", "", ""}},
		{in: `x \"q\" \\ a\ b`, want: []string{"x", `"q"`, `\`, "a b"}},
		{in: `x \a\b\E\f\n\r\t\v`, want: []string{"x", "\a\b\x1b\f\n\r\t\v"}},
		{in: `x \101\0\1234 \x41\x4a4 \xZ`, want: []string{"x", "A\x00S4", "A\xa4", "xZ"}},
		{in: `x \cA\cz \c`, want: []string{"x", "\x01\x1a", "c"}},
		{in: `x "in \"quotes\" \t"`, want: []string{"x", "in \"quotes\" \t"}},
		{in: `x 'single \' still'`, want: []string{"x", "single ' still"}},
		{in: "", err: ErrEmptyCommand},
		{in: "   ", err: ErrEmptyCommand},
		{in: `x "open`, err: ErrUnterminatedQuote},
		{in: `x 'open`, err: ErrUnterminatedQuote},
		{in: `x \`, err: ErrTrailingBackslash},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("SplitCommand(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SplitCommand(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseScript(t *testing.T) {
	s, err := ParseScript(`/usr/local/bin/notify.sh "VI 1"`, "nobody", "nogroup")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Args, []string{"/usr/local/bin/notify.sh", "VI 1"}) || s.User != "nobody" || s.Group != "nogroup" {
		t.Errorf("ParseScript = %+v", s)
	}
	if got := s.String(); got != `'/usr/local/bin/notify.sh' 'VI 1'` {
		t.Errorf("String() = %s", got)
	}
	if _, err := ParseScript("x", "", "wheel"); err == nil {
		t.Error("a group without a user was accepted")
	}
	if _, err := ParseScript(`"`, "", ""); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

// FuzzSplitCommand checks that any input splits without panicking, and
// that words quoted back for the shell-like syntax split into themselves.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		`/tmp/kx/n.sh 'a b' c\x41 "d e"`,
		`abcd" efg h jkl "mnop`,
		`x \101\0\1234 \x41\x4a4 \cA`,
		`x "open`,
		`\`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			return
		}
		if len(words) == 0 {
			t.Fatalf("SplitCommand(%q) returned no words and no error", s)
		}
		// Re-quote each word with escapes only and split again.
		var b strings.Builder
		for i, w := range words {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteByte('"')
			for j := 0; j < len(w); j++ {
				c := w[j]
				if c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(c)
			}
			b.WriteByte('"')
		}
		again, err := SplitCommand(b.String())
		if err != nil {
			t.Fatalf("re-split of %q (%q): %v", words, b.String(), err)
		}
		if !reflect.DeepEqual(again, words) {
			t.Fatalf("re-split of %q = %q", words, again)
		}
	})
}

// TestParseStateInvertsString: every state and event parses back from
// keepalived's spelling of it; anything else is refused.
func TestParseStateInvertsString(t *testing.T) {
	for st := StateMaster; st <= EventBackupPriority; st++ {
		if got, ok := ParseState(st.String()); !ok || got != st {
			t.Errorf("ParseState(%q) = %v, %v; want %v", st.String(), got, ok, st)
		}
	}
	for _, s := range []string{"", "master", "{UNKNOWN}", "INIT"} {
		if got, ok := ParseState(s); ok {
			t.Errorf("ParseState(%q) = %v, want refused", s, got)
		}
	}
}
