package notify

import (
	"errors"
	"fmt"
	"strings"
)

// SplitCommand splits a script's command string into words the way
// keepalived does for notify and FIFO scripts, so that configurations
// written for keepalived pass the same arguments to their scripts:
//
//   - words are separated by unquoted blanks (space, tab, CR, LF, VT, FF);
//   - "..." and '...' quote, the quotes are removed and the blanks inside
//     kept; quotes can start or end in the middle of a word (abc" d"e is
//     the one word "abc de");
//   - a backslash escapes as in C and the shell: \a \b \E \f \n \r \t \v,
//     \nnn (up to three octal digits), \xHH... (hex digits, the value cut
//     to a byte), \cC (control character), and \C for any other C is C
//     itself (so \\, \", \' and \ followed by a blank);
//   - escapes work inside quotes too.
//
// The string is the value of notify_master, notify, notify_up, ... after
// the configuration lexer removed the quotes around it.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var quote byte
	i := 0
	for i < len(s) {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		var w strings.Builder
		for i < len(s) {
			c := s[i]
			if quote == 0 && isBlank(c) {
				break
			}
			switch {
			case c == '\\':
				i++
				if i == len(s) {
					return nil, fmt.Errorf("command %q: %w", s, ErrTrailingBackslash)
				}
				var b byte
				b, i = unescape(s, i)
				w.WriteByte(b)
				continue
			case quote != 0 && c == quote:
				quote = 0
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			default:
				w.WriteByte(c)
			}
			i++
		}
		if quote != 0 {
			return nil, fmt.Errorf("command %q: missing terminating %c: %w", s, quote, ErrUnterminatedQuote)
		}
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, ErrEmptyCommand
	}
	return words, nil
}

// Errors of SplitCommand.
var (
	ErrEmptyCommand      = errors.New("empty command")
	ErrUnterminatedQuote = errors.New("unterminated quote")
	ErrTrailingBackslash = errors.New("backslash at end of command")
)

func isBlank(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// unescape decodes the escape whose first character (after the
// backslash) is s[i] and returns the byte and the index after it.
func unescape(s string, i int) (byte, int) {
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
		var v byte
		i++
		for i < len(s) && isHex(s[i]) {
			v = v<<4 | hexVal(s[i])
			i++
		}
		return v, i
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case c >= '0' && c <= '7':
		v := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; n++ {
			v = v<<3 + (s[i] - '0')
			i++
		}
		return v, i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return c, i + 1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// shellQuote builds a /bin/sh command line from words, each quoted so that
// the shell passes it through unchanged. It is used for scripts that the
// kernel cannot execute directly (no #! line), which keepalived runs
// through system(3).
func shellQuote(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(w, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
