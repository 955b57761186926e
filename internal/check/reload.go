package check

import "reflect"

// SameSpec reports whether b configures the same checker as a, so that a
// configuration reload keeps a's state (Scheduler.Update): same Name, same
// Timing, and the same Checker configuration.
//
// Checkers are compared by value (reflect.DeepEqual of what the pointers
// point to), not by pointer, because a reload builds new values. Two
// exceptions, where a value holds something DeepEqual cannot compare:
//   - HTTP's regular expressions compare by their source text;
//   - HTTP's TLS configuration compares by presence only (SSL_GET against
//     HTTP_GET). The SSL block's certificate, key and CA are the daemon's
//     credentials, not what is checked: a reload that changes them keeps
//     the checker's state, and the kept checker uses the new
//     configuration from its next attempt on, as keepalived's own
//     comparison of HTTP checkers ignores the SSL block.
//
// A Checker of a type that is not comparable (a func) never equals
// another, so such checkers always restart.
func SameSpec(a, b Spec) bool {
	return a.Name == b.Name && a.Timing == b.Timing && sameChecker(a.Checker, b.Checker)
}

// sameConfiger is implemented by checkers that DeepEqual cannot compare.
type sameConfiger interface {
	sameConfig(o Checker) bool
}

func sameChecker(a, b Checker) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta := reflect.TypeOf(a)
	if ta != reflect.TypeOf(b) {
		return false
	}
	if ta.Kind() == reflect.Pointer && a == b {
		return true
	}
	if s, ok := a.(sameConfiger); ok {
		return s.sameConfig(b)
	}
	return reflect.DeepEqual(a, b)
}
